// Classes of upstream failure, from the HTTP status the binding saw and the Cloudflare code in its error
// message ("<code>: <message>"). Input and credential errors do not fall back: another model would fail
// the same way, with the same credentials. Everything else before the first token does.
import { StreamFault } from "./frames";

export type ErrorClass = "input" | "auth" | "model" | "rate_limited" | "server" | "timeout" | "connection" | "stream";

const MODEL_CODES = new Set([5007, 3042, 5016, 5018, 3041, 5035]);
const NO_FALLBACK = new Set<ErrorClass>(["input", "auth"]);

export class UpstreamFailure extends Error {
  constructor(readonly errorClass: ErrorClass, readonly status: number | undefined, readonly code: number | undefined, message: string) {
    super(message);
    this.name = "UpstreamFailure";
  }
  get fallsBack(): boolean {
    return !NO_FALLBACK.has(this.errorClass);
  }
}

export function classifyStatus(status: number, code: number | undefined): ErrorClass {
  if ((code !== undefined && MODEL_CODES.has(code)) || status === 403 || status === 404) return "model";
  if (status === 401 || status === 402) return "auth";
  if (status === 408) return "timeout";
  if (status === 429) return "rate_limited";
  if (status >= 500) return "server";
  return "input";
}

export function classify(error: unknown, status: number | null | undefined): UpstreamFailure {
  if (error instanceof UpstreamFailure) return error;
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  if (error instanceof StreamFault) return new UpstreamFailure(error.message.startsWith("no stream event") ? "timeout" : "stream", undefined, undefined, message);
  const match = error instanceof Error ? /^(\d+):/.exec(error.message) : null;
  const code = match ? Number(match[1]) : undefined;
  if (typeof status === "number" && status >= 400) return new UpstreamFailure(classifyStatus(status, code), status, code, message);
  // No HTTP answer at all: the connection failed.
  return new UpstreamFailure("connection", undefined, code, message);
}
