// The spike Worker: the binding path of the AI Gateway spike.
//
// POST /run with a JSON body {model, messages, max_tokens, stream, tenantId, runId, probe} and the header
// x-spike-key (compared with the SPIKE_KEY secret, so that the deployed Worker is not an open inference
// endpoint). It calls env.AI.run with the gateway option — gateway id from AIGW_GATEWAY_ID, metadata
// {tenantId, runId, probe} — and streams the answer back unchanged, with the gateway log id
// (env.AI.aiGatewayLogId) in the x-aigw-log-id header. Errors come back as JSON with the binding's message.

const encoder = new TextEncoder();

function json(status, body, extraHeaders = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...extraHeaders },
  });
}

function constantTimeEqual(a, b) {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  if (x.length !== y.length) return false;
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

function metadataOf(body) {
  const metadata = {};
  for (const key of ["tenantId", "runId", "probe"]) {
    if (typeof body[key] === "string" && body[key]) metadata[key] = body[key];
  }
  return metadata;
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname !== "/run") return json(404, { error: "not found: use POST /run" });
    if (request.method !== "POST") return json(405, { error: "method not allowed: use POST" });
    if (!env.SPIKE_KEY || !constantTimeEqual(request.headers.get("x-spike-key") ?? "", env.SPIKE_KEY)) {
      return json(401, { error: "missing or wrong x-spike-key" });
    }
    let body;
    try {
      body = await request.json();
    } catch {
      return json(400, { error: "the body is not JSON" });
    }
    if (typeof body.model !== "string" || !Array.isArray(body.messages)) {
      return json(400, { error: "model (string) and messages (array) are required" });
    }
    const stream = body.stream !== false;
    const inputs = { messages: body.messages, stream };
    if (Number.isInteger(body.max_tokens)) inputs.max_tokens = body.max_tokens;
    const options = { gateway: { id: env.AIGW_GATEWAY_ID, metadata: metadataOf(body), skipCache: true } };
    let result;
    try {
      result = await env.AI.run(body.model, inputs, options);
    } catch (error) {
      const logId = env.AI.aiGatewayLogId ?? "";
      return json(502, { error: String(error?.message ?? error), name: error?.name ?? "Error" }, {
        "x-aigw-log-id": logId,
      });
    }
    const headers = { "x-aigw-log-id": env.AI.aiGatewayLogId ?? "" };
    if (result instanceof ReadableStream) {
      return new Response(result, {
        headers: { ...headers, "content-type": "text/event-stream", "cache-control": "no-cache" },
      });
    }
    return json(200, result, headers);
  },
};
