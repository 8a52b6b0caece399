// The platform's envelopes: compact JSON `{ok,data,traceId?}` / `{ok,error:{code,message},traceId?}`
// (JSON.stringify drops an undefined traceId), and SSE frames `[event: name\n]data: <json>\n\n`.

export type Headers = Record<string, string>;

export function json(body: unknown, status = 200, headers: Headers = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

export function ok(data: unknown, traceId?: string, headers: Headers = {}): Response {
  return json({ ok: true, data, traceId }, 200, headers);
}

export function fail(code: string, message: string, status = 400, traceId?: string, headers: Headers = {}): Response {
  return json({ ok: false, error: { code, message }, traceId }, status, headers);
}

const encoder = new TextEncoder();

export function sseEvent(data: unknown, event?: string): Uint8Array {
  return encoder.encode(`${event ? `event: ${event}\n` : ""}data: ${JSON.stringify(data)}\n\n`);
}

// cf-ray, else x-request-id, else none (the platform at M2).
export function traceIdOf(request: Request): string | undefined {
  return request.headers.get("cf-ray") ?? request.headers.get("x-request-id") ?? undefined;
}
