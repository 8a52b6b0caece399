// Contract tests of the env.AI adapter against a scripted loopback server (node --test).
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, beforeEach, describe, test } from "node:test";

import {
  AiGatewayInternalError,
  AiGatewayLogNotFound,
  AiInternalError,
  InferenceUpstreamError,
  createAiBinding,
} from "./ai-binding.mjs";

// Each test scripts the next responses; the server records every request it saw.
let server;
let baseUrl;
let seen = [];
let script = [];

function reply(status, body, headers = {}) {
  script.push({ status, body, headers });
}

before(async () => {
  server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    seen.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
    const next = script.shift() ?? { status: 500, body: "unscripted request", headers: {} };
    res.writeHead(next.status, next.headers);
    if (Array.isArray(next.body)) {
      for (const part of next.body) res.write(part);
      res.end();
    } else {
      res.end(typeof next.body === "string" ? next.body : JSON.stringify(next.body));
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${server.address().port}/`;
});

after(() => new Promise((resolve) => server.close(resolve)));

beforeEach(() => {
  seen = [];
  script = [];
});

async function readAll(stream) {
  return await new Response(stream).text();
}

describe("AI.run", () => {
  test("posts {inputs, options} to /run?version=3 with the binding's headers", async () => {
    reply(200, { response: "hi", usage: { prompt_tokens: 1 } }, { "content-type": "application/json" });
    const ai = createAiBinding({ baseUrl });
    const result = await ai.run("@cf/meta/llama-3.1-8b-instruct-fp8-fast", { prompt: "hello" }, {
      prefix: "p",
      extraHeaders: { "x-extra": "1" },
      tags: ["a"],
    });
    assert.deepEqual(result, { response: "hi", usage: { prompt_tokens: 1 } });
    const [request] = seen;
    assert.equal(request.method, "POST");
    assert.equal(request.url, "/run?version=3");
    assert.equal(request.headers["content-type"], "application/json");
    assert.equal(request.headers["cf-consn-sdk-version"], "2.0.0");
    assert.equal(request.headers["cf-consn-model-id"], "p:@cf/meta/llama-3.1-8b-instruct-fp8-fast");
    assert.equal(request.headers["x-extra"], "1");
    assert.deepEqual(JSON.parse(request.body), { inputs: { prompt: "hello" }, options: { tags: ["a"] } });
  });

  test("gateway.id selects /ai-gateway/run and gateway options travel in the body", async () => {
    reply(200, { response: "ok" }, { "content-type": "application/json", "cf-aig-log-id": "01LOG", "cf-ai-req-id": "req-1" });
    const ai = createAiBinding({ baseUrl });
    const options = { gateway: { id: "gw1", metadata: { tenantId: "t1" }, skipCache: true }, stream: false };
    await ai.run("m", { messages: [{ role: "user", content: "x" }] }, options);
    assert.equal(seen[0].url, "/ai-gateway/run?version=3");
    assert.deepEqual(JSON.parse(seen[0].body).options, options);
    assert.equal(ai.aiGatewayLogId, "01LOG");
    assert.equal(ai.lastRequestId, "req-1");
    assert.equal(ai.lastRequestHttpStatusCode, 200);
  });

  test("a non-exact JSON content type gives the raw body stream", async () => {
    reply(200, { response: "x" }, { "content-type": "application/json; charset=utf-8" });
    const ai = createAiBinding({ baseUrl });
    const result = await ai.run("m", { prompt: "x" });
    assert.equal(typeof result.getReader, "function");
    assert.equal(await readAll(result), '{"response":"x"}');
  });

  test("an SSE reply is returned as the raw byte stream, frames untouched", async () => {
    const frames = ['data: {"response":"He","p":"ab"}\n\n', 'data: {"response":"llo"}\n\n', "data: [DONE]\n\n"];
    reply(200, frames, { "content-type": "text/event-stream" });
    const ai = createAiBinding({ baseUrl });
    const stream = await ai.run("m", { prompt: "x", stream: true }, { gateway: { id: "g" } });
    assert.equal(await readAll(stream), frames.join(""));
    assert.deepEqual(JSON.parse(seen[0].body).inputs, { prompt: "x", stream: true });
  });

  test("errors: internalCode + description, with the body's name", async () => {
    reply(429, { internalCode: 2045, description: "Spend limit exceeded", name: "AiGatewayError" }, {
      "content-type": "application/json",
      "cf-aig-log-id": "01BLOCKED",
    });
    const ai = createAiBinding({ baseUrl });
    await assert.rejects(ai.run("m", {}, { gateway: { id: "g" } }), (error) => {
      assert.ok(error instanceof InferenceUpstreamError);
      assert.equal(error.name, "AiGatewayError");
      assert.equal(error.message, "2045: Spend limit exceeded");
      return true;
    });
    assert.equal(ai.aiGatewayLogId, "01BLOCKED");
    assert.equal(ai.lastRequestHttpStatusCode, 429);
    assert.equal(ai.lastRequestInternalStatusCode, 2045);
  });

  test("errors: a body with internalCode but no description reads as workerd's does", async () => {
    reply(401, { internalCode: 2009, message: "Unauthorized", name: "AiGatewayError" }, { "content-type": "application/json" });
    const ai = createAiBinding({ baseUrl });
    await assert.rejects(ai.run("m", {}, { gateway: { id: "g" } }), { name: "AiGatewayError", message: "2009: undefined" });
  });

  test("errors: errors[0] code and message when there is no internalCode", async () => {
    reply(400, { success: false, errors: [{ code: 5007, message: "No such model" }] }, { "content-type": "application/json" });
    const ai = createAiBinding({ baseUrl });
    await assert.rejects(ai.run("m", {}), (error) => {
      assert.equal(error.name, "InferenceUpstreamError");
      assert.equal(error.message, "5007: No such model");
      return true;
    });
  });

  test("errors: the raw text when the body is not JSON, also for streaming calls", async () => {
    reply(502, "upstream went away", { "content-type": "text/plain" });
    const ai = createAiBinding({ baseUrl });
    await assert.rejects(ai.run("m", { stream: true }), { name: "InferenceUpstreamError", message: "upstream went away" });
  });

  test("returnRawResponse returns the Response without throwing and is sent in the options", async () => {
    reply(500, { errors: [{ code: 3040, message: "Capacity" }] }, { "content-type": "application/json" });
    const ai = createAiBinding({ baseUrl });
    const response = await ai.run("m", {}, { returnRawResponse: true });
    assert.equal(response.status, 500);
    assert.deepEqual(await response.json(), { errors: [{ code: 3040, message: "Capacity" }] });
    assert.deepEqual(JSON.parse(seen[0].body).options, { returnRawResponse: true });
  });

  test("aiGatewayLogId is reset to null by a reply without the header", async () => {
    reply(200, { response: "a" }, { "content-type": "application/json", "cf-aig-log-id": "01A" });
    reply(200, { response: "b" }, { "content-type": "application/json" });
    const ai = createAiBinding({ baseUrl });
    await ai.run("m", {});
    assert.equal(ai.aiGatewayLogId, "01A");
    await ai.run("m", {});
    assert.equal(ai.aiGatewayLogId, null);
  });

  test("a ReadableStream input with a gateway is refused before any request", async () => {
    const ai = createAiBinding({ baseUrl });
    const body = new Response("audio").body;
    await assert.rejects(ai.run("m", { audio: { body, contentType: "audio/wav" } }, { gateway: { id: "g" } }), (error) => {
      assert.ok(error instanceof AiInternalError);
      assert.equal(error.message, "AI Gateway does not support ReadableStreams yet.");
      return true;
    });
    assert.equal(seen.length, 0);
  });

  test("a ReadableStream input is the body, other inputs and options go in the query", async () => {
    reply(200, { text: "transcribed" }, { "content-type": "application/json" });
    const ai = createAiBinding({ baseUrl });
    const audio = { body: new Response("RIFF....").body, contentType: "audio/wav" };
    const result = await ai.run("@cf/openai/whisper", { audio, language: "en" }, { tags: ["t"] });
    assert.deepEqual(result, { text: "transcribed" });
    const [request] = seen;
    const url = new URL(request.url, "http://x");
    assert.equal(url.pathname, "/run");
    assert.equal(url.searchParams.get("version"), "3");
    assert.equal(url.searchParams.get("userInputs"), '{"language":"en"}');
    assert.equal(url.searchParams.get("tags"), "t");
    assert.equal(request.headers["content-type"], "audio/wav");
    assert.equal(request.body, "RIFF....");
  });

  test("a missing baseUrl is a clear error", () => {
    assert.throws(() => createAiBinding({}), /needs a baseUrl/);
  });
});

describe("AI.gateway(id)", () => {
  test("getLog returns the log with created_at as a Date", async () => {
    reply(200, { result: { id: "01L", model: "m", created_at: "2026-10-02T10:00:00.000Z", cost: 0.1 } }, {
      "content-type": "application/json",
    });
    const log = await createAiBinding({ baseUrl }).gateway("gw1").getLog("01L");
    assert.equal(seen[0].method, "GET");
    assert.equal(seen[0].url, "/ai-gateway/gateways/gw1/logs/01L");
    assert.ok(log.created_at instanceof Date);
    assert.equal(log.created_at.toISOString(), "2026-10-02T10:00:00.000Z");
    assert.equal(log.cost, 0.1);
  });

  test("getLog 404 raises AiGatewayLogNotFound with the server's message or the default", async () => {
    reply(404, { errors: [{ code: 7002, message: "Log not found" }] }, { "content-type": "application/json" });
    reply(404, { errors: [] }, { "content-type": "application/json" });
    const gateway = createAiBinding({ baseUrl }).gateway("gw1");
    await assert.rejects(gateway.getLog("x"), (error) => error instanceof AiGatewayLogNotFound && error.message === "Log not found");
    await assert.rejects(gateway.getLog("x"), (error) => error instanceof AiGatewayLogNotFound && error.message === "Log Not Found");
  });

  test("getLog on another status raises AiGatewayInternalError", async () => {
    reply(500, "boom", { "content-type": "text/plain" });
    await assert.rejects(createAiBinding({ baseUrl }).gateway("g").getLog("x"), (error) => {
      return error instanceof AiGatewayInternalError && error.message === "boom";
    });
  });

  test("patchLog sends a JSON PATCH and resolves to undefined", async () => {
    reply(200, { success: true, result: {} }, { "content-type": "application/json" });
    const result = await createAiBinding({ baseUrl }).gateway("gw1").patchLog("01L", { feedback: 1, score: 80 });
    assert.equal(result, undefined);
    assert.equal(seen[0].method, "PATCH");
    assert.equal(seen[0].url, "/ai-gateway/gateways/gw1/logs/01L");
    assert.deepEqual(JSON.parse(seen[0].body), { feedback: 1, score: 80 });
  });

  test("getUrl defaults to the universal provider", async () => {
    reply(200, { result: { url: "https://gateway.ai.cloudflare.com/v1/acc/gw1/" } }, { "content-type": "application/json" });
    reply(200, { result: { url: "https://gateway.ai.cloudflare.com/v1/acc/gw1/openai" } }, { "content-type": "application/json" });
    const gateway = createAiBinding({ baseUrl }).gateway("gw1");
    assert.equal(await gateway.getUrl(), "https://gateway.ai.cloudflare.com/v1/acc/gw1/");
    assert.equal(await gateway.getUrl("openai"), "https://gateway.ai.cloudflare.com/v1/acc/gw1/openai");
    assert.deepEqual(seen.map((r) => r.url), ["/ai-gateway/gateways/gw1/url/universal", "/ai-gateway/gateways/gw1/url/openai"]);
  });

  test("run posts the steps array with stringified step headers and cf-aig-* option headers", async () => {
    reply(200, { ok: true }, { "content-type": "application/json", "cf-aig-step": "1" });
    const response = await createAiBinding({ baseUrl }).gateway("gw1").run(
      { provider: "workers-ai", endpoint: "@cf/m", headers: { "cf-aig-cache-ttl": 0, meta: { a: 1 } }, query: { prompt: "x" } },
      { gateway: { skipCache: false, metadata: { u: "1" }, retries: { maxAttempts: 2, backoff: "linear" }, requestTimeoutMs: 500 } },
    );
    assert.equal(response.headers.get("cf-aig-step"), "1");
    const [request] = seen;
    assert.equal(request.url, "/ai-gateway/universal/run/gw1");
    assert.deepEqual(JSON.parse(request.body), [
      { provider: "workers-ai", endpoint: "@cf/m", headers: { "cf-aig-cache-ttl": "0", meta: '{"a":1}' }, query: { prompt: "x" } },
    ]);
    assert.equal(request.headers["cf-aig-skip-cache"], "false");
    assert.equal(request.headers["cf-aig-metadata"], '{"u":"1"}');
    assert.equal(request.headers["cf-aig-max-attempts"], "2");
    assert.equal(request.headers["cf-aig-backoff"], "linear");
    assert.equal(request.headers["cf-aig-request-timeout"], "500");
  });
});
