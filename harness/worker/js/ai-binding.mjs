// An `env.AI` binding that speaks the Workers AI binding wire protocol to a base URL of your choice
// (the aigw fake gateway), with the behaviour of workerd's own binding client: the same endpoints,
// body, headers, return values, error classes and messages, and the `aiGatewayLogId` / `lastRequestId`
// properties.
//
// Inside workerd the Worker bridge installs it as a wrapped binding (the default export). In your own
// tests (Vitest, node:test) install this folder's npm package, @aigw-harness/worker-bridge
// (npm install --save-dev --install-links "$(aigw worker js-path)"), and build one directly:
//
//     import { createAiBinding } from "@aigw-harness/worker-bridge";
//     const env = { AI: createAiBinding({ baseUrl: "http://127.0.0.1:8787" }) };
//
// It must stay free of Node-only APIs: it runs in workerd as well as in Node.

const SDK_VERSION = "2.0.0";

export class InferenceUpstreamError extends Error {
  constructor(message, name = "InferenceUpstreamError") {
    super(message);
    this.name = name;
  }
}

export class AiInternalError extends Error {
  constructor(message, name = "AiInternalError") {
    super(message);
    this.name = name;
  }
}

export class AiGatewayInternalError extends Error {
  constructor(message) {
    super(message);
    this.name = "AiGatewayInternalError";
  }
}

export class AiGatewayLogNotFound extends Error {
  constructor(message) {
    super(message);
    this.name = "AiGatewayLogNotFound";
  }
}

// The options that configure the client itself and never travel in the request body.
const CLIENT_ONLY_OPTIONS = new Set(["prefix", "extraHeaders", "sessionOptions", "signal"]);

function isReadableStream(value) {
  return Boolean(value && typeof value === "object" && typeof value.getReader === "function");
}

function streamInputKeys(inputs) {
  const keys = [];
  for (const [key, value] of Object.entries(inputs ?? {})) {
    if (isReadableStream(value) || (value && typeof value === "object" && isReadableStream(value.body))) {
      keys.push(key);
    }
  }
  return keys;
}

function bodyOptions(options) {
  const sent = {};
  for (const [key, value] of Object.entries(options)) {
    if (!CLIENT_ONLY_OPTIONS.has(key)) sent[key] = value;
  }
  return sent;
}

function trimBase(baseUrl) {
  if (typeof baseUrl !== "string" || baseUrl === "") {
    throw new AiInternalError("aigw: the AI binding needs a baseUrl (the fake gateway's URL, e.g. http://127.0.0.1:8787)");
  }
  return baseUrl.replace(/\/+$/, "");
}

// The "code: message" text workerd's client puts in InferenceUpstreamError, from an error body.
async function upstreamError(response) {
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    return { error: new InferenceUpstreamError(text), internalCode: null };
  }
  if (body && typeof body === "object" && body.internalCode) {
    // Exactly as workerd words it: a body without `description` reads "<code>: undefined" there too.
    return {
      error: new InferenceUpstreamError(`${body.internalCode}: ${body.description}`, body.name ?? "InferenceUpstreamError"),
      internalCode: body.internalCode,
    };
  }
  if (body && Array.isArray(body.errors) && body.errors.length > 0 && body.errors[0]) {
    const first = body.errors[0];
    return { error: new InferenceUpstreamError(`${first.code}: ${first.message}`), internalCode: null };
  }
  return { error: new InferenceUpstreamError(text), internalCode: null };
}

// Management calls (logs, URLs) report `{"errors":[{"message":...}]}`.
async function gatewayError(response, fallbackMessage = "Internal Error", ErrorClass = AiGatewayInternalError) {
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    return new AiGatewayInternalError(text);
  }
  const first = Array.isArray(body?.errors) ? body.errors[0] : undefined;
  return new ErrorClass(first?.message || fallbackMessage);
}

function headerValue(value) {
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (value !== null && typeof value === "object") return JSON.stringify(value);
  return value;
}

// Gateway options of `gateway(id).run(...)` travel as cf-aig-* headers (unlike `AI.run`, where they
// travel in the body).
function universalHeaders(gateway, extraHeaders) {
  const headers = new Headers({ "content-type": "application/json" });
  if (gateway) {
    if (gateway.skipCache !== undefined) headers.set("cf-aig-skip-cache", gateway.skipCache ? "true" : "false");
    if (gateway.cacheTtl) headers.set("cf-aig-cache-ttl", String(gateway.cacheTtl));
    if (gateway.metadata) headers.set("cf-aig-metadata", JSON.stringify(gateway.metadata));
    if (gateway.cacheKey) headers.set("cf-aig-cache-key", gateway.cacheKey);
    if (gateway.collectLog !== undefined) headers.set("cf-aig-collect-log", gateway.collectLog ? "true" : "false");
    if (gateway.eventId !== undefined) headers.set("cf-aig-event-id", gateway.eventId);
    if (gateway.requestTimeoutMs !== undefined) headers.set("cf-aig-request-timeout", String(gateway.requestTimeoutMs));
    const retries = gateway.retries;
    if (retries !== undefined) {
      if (retries.maxAttempts !== undefined) headers.set("cf-aig-max-attempts", String(retries.maxAttempts));
      if (retries.retryDelayMs !== undefined) headers.set("cf-aig-retry-delay", String(retries.retryDelayMs));
      if (retries.backoff !== undefined) headers.set("cf-aig-backoff", retries.backoff);
    }
  }
  for (const [key, value] of Object.entries(extraHeaders ?? {})) headers.set(key, String(value));
  return headers;
}

export class AiGateway {
  #base;
  #fetch;
  #gatewayId;

  constructor(base, fetchImpl, gatewayId) {
    this.#base = base;
    this.#fetch = fetchImpl;
    this.#gatewayId = gatewayId;
  }

  #url(path) {
    return `${this.#base}/ai-gateway/${path}`;
  }

  async getUrl(provider) {
    const response = await this.#fetch(this.#url(`gateways/${this.#gatewayId}/url/${provider ?? "universal"}`), {
      method: "GET",
    });
    if (!response.ok) throw await gatewayError(response);
    const body = await response.json();
    return body.result.url;
  }

  async getLog(logId) {
    const response = await this.#fetch(this.#url(`gateways/${this.#gatewayId}/logs/${logId}`), { method: "GET" });
    if (response.status === 200) {
      const body = await response.json();
      return { ...body.result, created_at: new Date(body.result.created_at) };
    }
    if (response.status === 404) throw await gatewayError(response, "Log Not Found", AiGatewayLogNotFound);
    throw await gatewayError(response);
  }

  async patchLog(logId, data) {
    const response = await this.#fetch(this.#url(`gateways/${this.#gatewayId}/logs/${logId}`), {
      method: "PATCH",
      body: JSON.stringify(data),
      headers: { "content-type": "application/json" },
    });
    if (response.status === 200) return;
    if (response.status === 404) throw await gatewayError(response, "Log Not Found", AiGatewayLogNotFound);
    throw await gatewayError(response);
  }

  run(data, options) {
    const steps = Array.isArray(data) ? data : [data];
    for (const step of steps) {
      for (const [key, value] of Object.entries(step.headers ?? {})) step.headers[key] = headerValue(value);
    }
    return this.#fetch(this.#url(`universal/run/${this.#gatewayId}`), {
      method: "POST",
      body: JSON.stringify(steps),
      headers: universalHeaders(options?.gateway, options?.extraHeaders),
    });
  }
}

export class Ai {
  #base;
  #fetch;
  lastRequestId = null;
  aiGatewayLogId = null;
  lastRequestHttpStatusCode = null;
  lastRequestInternalStatusCode = null;

  constructor({ baseUrl, fetch: fetchImpl } = {}) {
    this.#base = trimBase(baseUrl);
    // Called unbound: workerd's global fetch throws "Illegal invocation" when called as a method.
    const chosen = fetchImpl ?? globalThis.fetch;
    this.#fetch = (input, init) => chosen(input, init);
  }

  async fetch(input, init) {
    return this.#fetch(input, init);
  }

  async run(model, inputs, options = {}) {
    options = options ?? {};
    this.lastRequestId = "";
    const streamKeys = streamInputKeys(inputs);
    const modelHeader = `${options.prefix ? `${options.prefix}:` : ""}${model}`;
    const extra = { ...(options.sessionOptions?.extraHeaders ?? {}), ...(options.extraHeaders ?? {}) };
    let response;
    if (streamKeys.length === 0) {
      const url = options.gateway?.id ? `${this.#base}/ai-gateway/run?version=3` : `${this.#base}/run?version=3`;
      response = await this.#fetch(url, {
        method: "POST",
        body: JSON.stringify({ inputs, options: bodyOptions(options) }),
        headers: {
          ...extra,
          "content-type": "application/json",
          "cf-consn-sdk-version": SDK_VERSION,
          "cf-consn-model-id": modelHeader,
        },
        signal: options.signal,
      });
    } else if (streamKeys.length > 1) {
      throw new AiInternalError(`Multiple ReadableStreams are not supported. Found streams in keys: [${streamKeys.join(", ")}]`);
    } else {
      if (options.gateway?.id) throw new AiInternalError("AI Gateway does not support ReadableStreams yet.");
      const [key] = streamKeys;
      const { [key]: streamInput, ...rest } = inputs;
      const contentType = streamInput.contentType;
      if (!contentType) throw new AiInternalError("Content-Type is required with ReadableStream inputs");
      const url = new URL(`${this.#base}/run`);
      const query = { ...bodyOptions(options), version: "3", userInputs: JSON.stringify(rest) };
      for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
      response = await this.#fetch(url.href, {
        method: "POST",
        body: streamInput.body ?? streamInput,
        headers: {
          ...extra,
          "content-type": contentType,
          "cf-consn-sdk-version": SDK_VERSION,
          "cf-consn-model-id": modelHeader,
        },
        duplex: "half",
        signal: options.signal,
      });
    }

    this.lastRequestId = response.headers.get("cf-ai-req-id");
    this.aiGatewayLogId = response.headers.get("cf-aig-log-id");
    this.lastRequestHttpStatusCode = response.status;

    if (options.returnRawResponse || options.websocket) return response;

    if (!response.ok || !response.body) {
      const { error, internalCode } = await upstreamError(response);
      if (internalCode) this.lastRequestInternalStatusCode = internalCode;
      throw error;
    }
    // An exact comparison, as in workerd: "application/json; charset=utf-8" yields the raw stream.
    if (response.headers.get("content-type") === "application/json") return await response.json();
    return response.body;
  }

  async models(params = {}) {
    const url = new URL(`${this.#base}/ai-api/models/search`);
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, String(value));
    const response = await this.#fetch(url.href, { method: "GET" });
    if (response.status === 200) return (await response.json()).result;
    let message = "Internal Error";
    try {
      message = (await response.json()).errors?.[0]?.message || message;
    } catch {
      // a non-JSON body keeps the generic message, as workerd's client does
    }
    throw new AiInternalError(message);
  }

  gateway(gatewayId) {
    return new AiGateway(this.#base, this.#fetch, gatewayId);
  }

  toMarkdown() {
    return Promise.reject(new AiInternalError("aigw: AI.toMarkdown() is not simulated by the fake gateway"));
  }

  autorag(id) {
    throw new AiInternalError(`aigw: AI.autorag(${JSON.stringify(id ?? null)}) is not simulated by the fake gateway`);
  }

  aiSearch() {
    throw new AiInternalError("aigw: AI.aiSearch() is not simulated by the fake gateway");
  }
}

export function createAiBinding(options) {
  return new Ai(options);
}

// Wrapped-binding entry point: workerd calls it with the inner bindings the bridge declares.
export default function makeBinding(env) {
  return new Ai({ baseUrl: env.upstream });
}
