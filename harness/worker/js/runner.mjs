// Runs a user's Worker in workerd through Miniflare, for the Python bridge (harness/worker/bridge.py).
//
//   node runner.mjs CONFIG.json
//
// CONFIG.json is written by the bridge (see WorkerConfig in wrangler.py). The runner bundles the entry
// point with esbuild, starts Miniflare with the declared bindings, `env.AI` replaced by the adapter in
// ai-binding.mjs pointed at the fake, and unsimulated bindings replaced by stubs that throw when used.
//
// It speaks JSON lines. On stdout, events: {"event":"ready","url"}, {"event":"log","level","message"},
// {"event":"exception"|"hung"|"stream-error", ...}, {"event":"warning","message"},
// {"event":"reply","id","ok","result"|"error"}, {"event":"fatal","message"}, {"event":"stopped"}.
// On stdin, commands: {"id","op":"kv.get"|"kv.put"|"kv.list"|"kv.delete"|"d1.query","binding",...},
// {"id","op":"do.storage","binding","name","key"|"prefix"} (a Durable Object's stored entries, read inside the
// object: its class, when listed in the config's "inspectClasses", answers the runner's token with them)
// {"id","op":"ping"} (answered after every event already emitted) and {"op":"stop"}. Closing stdin or SIGTERM/SIGINT also stops it.
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FRONT = "aigw-front";
// The front Worker's module name: its frames are dropped from reported stacks (they are not the user's).
const FRONT_MODULE = "aigw-front.mjs";
const AI_WORKER = "aigw-ai";
const STUB_WORKER = "aigw-stub";
// The Worker's clock: requests carrying the runner's token and an offset set it (see clock-shim.mjs).
const CLOCK_SHIM = path.join(HERE, "clock-shim.mjs");
const CLOCK_HEADER = "x-aigw-clock-offset-ms";
const CLOCK_TOKEN_HEADER = "x-aigw-clock-token";
// The request lifecycle: the front names each request it forwards, and tells the Worker's wrapper when the
// client has gone (so that the Worker's writes fail) and waits for its ctx.waitUntil work to settle.
const REQUEST_ID_HEADER = "x-aigw-request-id";
const CONTROL_HEADER = "x-aigw-control";
const WAIT_UNTIL_GRACE_MS = 30_000; // Cloudflare lets waitUntil work run this long after a disconnect

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function fatal(message) {
  emit({ event: "fatal", message });
  process.exit(1);
}

// miniflare and esbuild come from AIGW_NODE_MODULES, which the bridge sets to the folder it found and checked
// (harness/worker/node_packages.py); run by hand, from beside this file or the Worker project.
async function importPackage(name, projectDir) {
  const require = createRequire(import.meta.url);
  const searchPaths = [process.env.AIGW_NODE_MODULES, HERE, projectDir].filter(Boolean);
  let resolved;
  try {
    resolved = require.resolve(name, { paths: searchPaths });
  } catch {
    fatal(
      `the npm package '${name}' is not installed (looked from ${searchPaths.join(", ")}); ` +
        "run 'aigw worker setup' to install the pinned versions, or set AIGW_NODE_MODULES to a node_modules that has them",
    );
  }
  return await import(pathToFileURL(resolved).href);
}

// The entry worker: forwards to the user's Worker and turns uncaught exceptions and workerd's "hung"
// cancellations into events the bridge reports, answering 500 as Miniflare does.
const FRONT_SCRIPT = `
// Reported to the runner (in Node) before the client sees the 500, so that an event always precedes
// the answer of the request that caused it.
async function report(env, kind, request, error) {
  const detail = { kind, method: request.method, url: request.url,
    name: error?.name ?? "Error", message: String(error?.message ?? error), stack: String(error?.stack ?? "") };
  await env.AIGW_REPORT.fetch("http://aigw.report/", { method: "POST", body: JSON.stringify(detail) });
}
function classify(error) {
  return /had hung and would never generate a response/.test(String(error?.message ?? error)) ? "hung" : "exception";
}
function control(env, id, op) {
  return env.USER.fetch("http://aigw.control/", {
    headers: { ${JSON.stringify(CLOCK_TOKEN_HEADER)}: env.AIGW_TOKEN, ${JSON.stringify(CONTROL_HEADER)}: op,
      ${JSON.stringify(REQUEST_ID_HEADER)}: id },
  });
}
// Copies the Worker's answer to the client. When the client goes away (request.signal), the Worker's
// wrapper is told, so that the Worker's own writes fail as on Cloudflare, and its answer is read to its
// (now early) end, so that its invocation, and the ctx.waitUntil work it registered, is not cancelled.
async function pump(env, request, id, source, writable) {
  const reader = source.getReader();
  const writer = writable.getWriter();
  let gone = false;
  const leave = () => {
    if (gone) return;
    gone = true;
    writer.abort(new Error("the client disconnected")).catch(() => {});
    control(env, id, "disconnect").catch(() => {});
  };
  request.signal?.addEventListener("abort", leave);
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (error) {
      if (!gone) {
        await report(env, classify(error) === "hung" ? "hung" : "stream-error", request, error);
        await writer.abort(error).catch(() => {});
      }
      return;
    }
    if (chunk.done) {
      if (!gone) await writer.close().catch(() => {});
      return;
    }
    if (gone) continue;
    try {
      await writer.write(chunk.value);
    } catch {
      leave(); // a write failed before the runtime signalled the disconnect
    }
  }
}
async function settle(env, id) {
  let timer;
  const grace = new Promise((resolve) => { timer = setTimeout(resolve, ${WAIT_UNTIL_GRACE_MS}); });
  await Promise.race([control(env, id, "settle").then((r) => r.arrayBuffer()), grace]).catch(() => {});
  clearTimeout(timer);
}
export default {
  async fetch(request, env, ctx) {
    const id = crypto.randomUUID();
    let response;
    try {
      // Read the request body to its end first, as Cloudflare's edge does for the client: a Worker that
      // answers without reading the body must not break the client's kept-alive connection.
      const forwarded = new Request(request, request.body ? { body: await request.arrayBuffer() } : {});
      forwarded.headers.delete(${JSON.stringify(CLOCK_TOKEN_HEADER)});
      forwarded.headers.delete(${JSON.stringify(CONTROL_HEADER)});
      forwarded.headers.set(${JSON.stringify(REQUEST_ID_HEADER)}, id);
      response = await env.USER.fetch(forwarded);
    } catch (error) {
      await report(env, classify(error), request, error);
      return new Response(String(error?.stack ?? error), { status: 500 });
    }
    if (!response.body || response.webSocket || response.status === 101) {
      ctx.waitUntil(settle(env, id));
      return response;
    }
    const { readable, writable } = new TransformStream();
    ctx.waitUntil(pump(env, request, id, response.body, writable).then(() => settle(env, id)));
    return new Response(readable, response);
  },
};
`;

// Any property of an unsimulated binding throws a clear error when called.
const STUB_SCRIPT = `
export default function (env) {
  const fail = (member) => {
    throw new Error("aigw: binding " + env.binding + " (" + env.kind + ") is not simulated by the Worker bridge; " +
      "its ." + member + "() cannot run locally. Guard the call, or test this path against a deployment.");
  };
  return new Proxy({}, {
    get(_target, property) {
      if (property === "then" || typeof property === "symbol") return undefined;
      return (..._args) => fail(String(property));
    },
  });
}
`;


// The bundle's entry: the user's module re-exported, its default fetch handler answering the runner's
// clock requests (recognised by a token only the runner knows) and passing everything else through.
function entryWrapper(entry, clockToken, inspectClasses = []) {
  const user = JSON.stringify(entry);
  // Durable Object classes whose storage the runner reads: re-exported as subclasses that answer a request
  // carrying the runner's token with the entries asked for, read through the object's own storage API (so
  // the layout is the Worker's, whatever its storage backend), and pass every other request through.
  const inspected = inspectClasses
    .filter((name) => /^[A-Za-z_$][\w$]*$/.test(name))
    .map((name) => `export const ${name} = inspectable(user.${name});`)
    .join("\n");
  return `
import * as user from ${user};
import { __aigwSetClockOffset } from ${JSON.stringify(CLOCK_SHIM)};
export * from ${user};
function inspectable(Base) {
  if (typeof Base !== "function") return Base;
  return class extends Base {
    #aigwStorage;
    constructor(state, env) {
      super(state, env);
      this.#aigwStorage = state?.storage;
    }
    async fetch(request) {
      if (request.headers.get(${JSON.stringify(CLOCK_TOKEN_HEADER)}) === ${JSON.stringify(clockToken)} &&
          request.headers.get(${JSON.stringify(CONTROL_HEADER)}) === "storage") {
        const query = await request.json();
        const storage = this.#aigwStorage;
        if (!storage) return new Response("this Durable Object was given no storage", { status: 500 });
        if (query.key !== undefined && query.key !== null) {
          const value = await storage.get(query.key);
          return Response.json(value === undefined ? [] : [[query.key, value]]);
        }
        const found = await storage.list(query.prefix ? { prefix: query.prefix } : {});
        return Response.json([...found.entries()]);
      }
      if (typeof super.fetch !== "function") {
        throw new Error("this Durable Object has no fetch handler");
      }
      return super.fetch(request);
    }
  };
}
${inspected}
const handler = user.default;
// Requests in flight, by the front's id: how to make the Worker's writes fail, and its waitUntil work.
const live = new Map();
function tracked(ctx, pending) {
  return new Proxy(ctx, {
    get(target, property) {
      if (property === "waitUntil") return (promise) => { pending.push(promise); target.waitUntil(promise); };
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
async function settled(pending) {
  for (let seen = -1; seen !== pending.length; ) {
    seen = pending.length;
    await Promise.allSettled(pending);
  }
}
function wrap(inner) {
  if (!inner || typeof inner !== "object" || typeof inner.fetch !== "function") return inner;
  const outer = Object.create(inner);
  outer.fetch = async function (request, env, ctx) {
    const id = request.headers.get(${JSON.stringify(REQUEST_ID_HEADER)});
    if (request.headers.get(${JSON.stringify(CLOCK_TOKEN_HEADER)}) === ${JSON.stringify(clockToken)}) {
      const op = request.headers.get(${JSON.stringify(CONTROL_HEADER)});
      if (op === "disconnect") live.get(id)?.leave();
      else if (op === "settle") {
        await live.get(id)?.settled();
        live.delete(id);
      } else __aigwSetClockOffset(request.headers.get(${JSON.stringify(CLOCK_HEADER)}));
      return new Response(null, { status: 204 });
    }
    if (!id) return inner.fetch.call(inner, request, env, ctx);
    const forwarded = new Request(request);
    forwarded.headers.delete(${JSON.stringify(REQUEST_ID_HEADER)});
    const pending = [];
    const response = await inner.fetch.call(inner, forwarded, env, tracked(ctx, pending));
    // Registered once the handler has answered (a handler that never answers is left for workerd to
    // cancel as hung); the front's "settle" waits for it and removes it.
    const entry = { leave: () => {}, settled: () => settled(pending) };
    live.set(id, entry);
    if (!(response instanceof Response) || !response.body || response.webSocket) return response;
    // The Worker's body is read here, in its own invocation: when the client goes away, reading stops (its
    // writes then fail, as on Cloudflare) and the answer ends early instead of the invocation being cancelled.
    const reader = response.body.getReader();
    const { readable, writable } = new TransformStream();
    const writer = writable.getWriter();
    let left = false;
    entry.leave = () => {
      left = true;
      reader.cancel(new Error("the client disconnected")).catch(() => {});
    };
    pending.push((async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          await writer.write(value);
        }
        await writer.close();
      } catch (error) {
        if (left) await writer.close().catch(() => {});
        else await writer.abort(error).catch(() => {});
      }
    })());
    return new Response(readable, response);
  };
  return outer;
}
export default wrap(handler);
`;
}

async function bundle(esbuild, config, outDir, clockToken) {
  const nodeCompat = (config.compatibilityFlags ?? []).some((flag) => flag.startsWith("nodejs_compat"));
  const { builtinModules } = await import("node:module");
  const external = ["cloudflare:*", "node:*", ...(nodeCompat ? builtinModules : [])];
  const outfile = path.join(outDir, "worker.mjs");
  let result;
  try {
    // Modules replaced at build time (tenants bundled from files, handed the scenario's instead).
    const replaced = config.replaceModules ?? {};
    const replacePlugin = {
      name: "aigw-replace-modules",
      setup(build) {
        if (!Object.keys(replaced).length) return;
        build.onLoad({ filter: /\.(m?[jt]sx?|json)$/ }, (args) =>
          args.path in replaced ? { contents: replaced[args.path], loader: "js" } : undefined,
        );
      },
    };
    result = await esbuild.build({
      plugins: [replacePlugin],
      metafile: true,
      stdin: {
        contents: entryWrapper(config.entry, clockToken, config.inspectClasses ?? []),
        resolveDir: path.dirname(config.entry),
        sourcefile: "aigw-entry.mjs",
        loader: "js",
      },
      inject: [CLOCK_SHIM],
      outfile,
      bundle: true,
      format: "esm",
      target: "es2022",
      platform: "browser",
      conditions: ["workerd", "worker", "browser"],
      mainFields: ["browser", "module", "main"],
      external,
      keepNames: true,
      sourcemap: false,
      logLevel: "silent",
      define: { "process.env.NODE_ENV": JSON.stringify("development"), ...(config.define ?? {}) },
      alias: config.alias ?? {},
      loader: { ".txt": "text", ".html": "text", ".sql": "text", ".bin": "binary" },
      absWorkingDir: path.dirname(config.entry),
    });
  } catch (error) {
    const messages = (error.errors ?? []).map((m) => {
      const where = m.location ? `${path.resolve(path.dirname(config.entry), m.location.file)}:${m.location.line}:${m.location.column + 1}: ` : "";
      return `${where}${m.text}`;
    });
    // A package the Worker imports but nobody installed: its own dependencies, not the harness's.
    const missing = [...new Set((error.errors ?? [])
      .map((m) => /^Could not resolve "([^".][^"]*)"/.exec(m.text)?.[1])
      .filter(Boolean))];
    const hint = missing.length
      ? `\n  the Worker's own packages are not installed (${missing.join(", ")}): run 'npm install' (or its ` +
        "package manager's install) in the Worker's project, where its package.json is"
      : "";
    throw new Error(`bundling ${config.entry} failed:\n  ${messages.length ? messages.join("\n  ") : String(error)}${hint}`);
  }
  const output = Object.values(result.metafile?.outputs ?? {})[0];
  return { outfile, exports: new Set(output?.exports ?? []) };
}

function miniflareLog(Log, LogLevel) {
  return class BridgeLog extends Log {
    constructor() {
      super(LogLevel.WARN);
    }
    log(message) {
      emit({ event: "log", level: "runtime", message: String(message) });
    }
    error(error) {
      emit({ event: "log", level: "error", message: String(error?.stack ?? error) });
    }
    warn(message) {
      emit({ event: "warning", message: String(message) });
    }
  };
}

function onStructuredLog(entry) {
  emit({ event: "log", level: entry.level, message: String(entry.message ?? "") });
}

async function onReport(request) {
  const detail = await request.json();
  emit({ event: detail.kind, ...detail });
  return new Response(null, { status: 204 });
}

async function command(mf, workerName, request) {
  const { op, binding } = request;
  switch (op) {
    case "kv.get": {
      const kv = await mf.getKVNamespace(binding, workerName);
      return await kv.get(request.key);
    }
    case "kv.put": {
      const kv = await mf.getKVNamespace(binding, workerName);
      await kv.put(request.key, request.value);
      return null;
    }
    case "kv.delete": {
      const kv = await mf.getKVNamespace(binding, workerName);
      await kv.delete(request.key);
      return null;
    }
    case "kv.list": {
      const kv = await mf.getKVNamespace(binding, workerName);
      const keys = [];
      let cursor;
      do {
        const page = await kv.list({ prefix: request.prefix ?? undefined, cursor });
        keys.push(...page.keys.map((k) => k.name));
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
      return keys;
    }
    case "clock.set": {
      const worker = await mf.getWorker(workerName);
      const response = await worker.fetch("http://aigw.clock/", {
        headers: { [CLOCK_TOKEN_HEADER]: request.token, [CLOCK_HEADER]: String(request.offsetMs) },
      });
      if (response.status !== 204) {
        throw new Error("the Worker's default export has no fetch handler to receive the clock (a class entrypoint?)");
      }
      return null;
    }
    case "do.storage": {
      const namespace = await mf.getDurableObjectNamespace(binding, workerName);
      const stub = namespace.get(namespace.idFromName(request.name));
      const response = await stub.fetch("http://aigw.storage/", {
        method: "POST",
        headers: { [CLOCK_TOKEN_HEADER]: request.token, [CONTROL_HEADER]: "storage" },
        body: JSON.stringify({ key: request.key ?? null, prefix: request.prefix ?? null }),
      });
      const text = await response.text();
      if (!response.ok) {
        throw new Error(`reading the storage of ${binding} ${JSON.stringify(request.name)}: ${response.status} ${text.slice(0, 300)}`);
      }
      return JSON.parse(text);
    }
    case "d1.query": {
      const db = await mf.getD1Database(binding, workerName);
      const result = await db.prepare(request.sql).bind(...(request.params ?? [])).all();
      return result.results;
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(op)}`);
  }
}

async function main() {
  const configPath = process.argv[2];
  if (!configPath) fatal("usage: node runner.mjs CONFIG.json");
  const config = JSON.parse(await readFile(configPath, "utf8"));
  const projectDir = path.dirname(config.entry);
  const esbuild = await importPackage("esbuild", projectDir);
  const { Miniflare, Log, LogLevel, supportedCompatibilityDate } = await importPackage("miniflare", projectDir);

  const outDir = mkdtempSync(path.join(tmpdir(), "aigw-worker-"));
  const clockToken = randomUUID();
  const cleanup = () => rmSync(outDir, { recursive: true, force: true });
  const builder = esbuild.default ?? esbuild;
  let scriptPath;
  let exports = new Set();
  let bundleError;
  try {
    ({ outfile: scriptPath, exports } = await bundle(builder, config, outDir, clockToken));
  } catch (error) {
    bundleError = error;
  }
  // esbuild keeps a service process for later builds; the bridge builds once.
  await builder.stop?.();
  if (bundleError) {
    cleanup();
    fatal(bundleError.message);
  }

  let compatibilityDate = config.compatibilityDate ?? supportedCompatibilityDate;
  if (compatibilityDate > supportedCompatibilityDate) {
    emit({
      event: "warning",
      message:
        `compatibility_date ${compatibilityDate} is newer than this workerd supports; ` +
        `running with ${supportedCompatibilityDate} (a newer miniflare goes further)`,
    });
    compatibilityDate = supportedCompatibilityDate;
  }

  const wrappedBindings = {};
  if (config.aiBinding) {
    wrappedBindings[config.aiBinding] = { scriptName: AI_WORKER, bindings: { upstream: config.upstream } };
  }
  const durableObjects = {};
  for (const item of config.durableObjects ?? []) {
    durableObjects[item.binding] = { className: item.className, useSQLite: item.sqlite };
  }
  for (const stub of config.stubs ?? []) {
    // A Durable Object said to live in another Worker, whose class this bundle exports itself (a name
    // that changes per environment, say): simulated here, not stubbed.
    if (stub.className && exports.has(stub.className)) {
      durableObjects[stub.binding] = { className: stub.className, useSQLite: stub.sqlite };
      emit({ event: "warning", message: `${stub.binding}: ${stub.kind} is exported by this Worker's bundle; simulated here` });
      continue;
    }
    wrappedBindings[stub.binding] = { scriptName: STUB_WORKER, bindings: { binding: stub.binding, kind: stub.kind } };
  }
  const workerName = config.name;
  const BridgeLog = miniflareLog(Log, LogLevel);

  const mf = new Miniflare({
    host: config.host ?? "127.0.0.1",
    port: config.port ?? 0,
    log: new BridgeLog(),
    // Never fetch Request.cf from Cloudflare: the bridge stays on loopback.
    cf: false,
    logRequests: false,
    handleStructuredLogs: onStructuredLog,
    workers: [
      {
        name: FRONT,
        modules: [{ type: "ESModule", path: path.join(HERE, FRONT_MODULE), contents: FRONT_SCRIPT }],
        modulesRoot: HERE,
        compatibilityDate,
        bindings: { AIGW_TOKEN: clockToken },
        compatibilityFlags: ["enable_request_signal"],
        serviceBindings: { USER: workerName, AIGW_REPORT: onReport },
      },
      {
        name: workerName,
        modules: true,
        scriptPath,
        modulesRoot: outDir,
        compatibilityDate,
        compatibilityFlags: config.compatibilityFlags ?? [],
        bindings: config.vars ?? {},
        kvNamespaces: config.kvNamespaces ?? [],
        d1Databases: config.d1Databases ?? [],
        r2Buckets: config.r2Buckets ?? [],
        durableObjects,
        wrappedBindings,
      },
      { name: AI_WORKER, modules: true, scriptPath: path.join(HERE, "ai-binding.mjs"), modulesRoot: HERE },
      { name: STUB_WORKER, modules: true, script: STUB_SCRIPT },
    ],
  });

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await mf.dispose();
    } finally {
      cleanup();
      emit({ event: "stopped" });
      process.exit(0);
    }
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);

  let url;
  try {
    url = await mf.ready;
  } catch (error) {
    cleanup();
    fatal(`workerd did not start: ${error?.message ?? error}`);
  }
  emit({ event: "ready", url: url.href.replace(/\/$/, ""), name: workerName, compatibilityDate });

  const lines = readline.createInterface({ input: process.stdin });
  lines.on("line", async (line) => {
    if (!line.trim()) return;
    let request;
    try {
      request = JSON.parse(line);
    } catch {
      emit({ event: "warning", message: `ignored a command that is not JSON: ${line.slice(0, 80)}` });
      return;
    }
    if (request.op === "stop") return stop();
    if (request.op === "ping") return emit({ event: "reply", id: request.id, ok: true, result: "pong" });
    try {
      const result = await command(mf, workerName, { ...request, token: clockToken });
      emit({ event: "reply", id: request.id, ok: true, result });
    } catch (error) {
      emit({ event: "reply", id: request.id, ok: false, error: String(error?.message ?? error) });
    }
  });
  lines.on("close", stop);
}

main().catch((error) => fatal(String(error?.stack ?? error)));
