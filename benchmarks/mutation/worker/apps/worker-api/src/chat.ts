// POST /chat, in the contract's order: JSON, schema, MAX_MESSAGE_LENGTH, model selection and allow-list,
// rate limit (an allowed call takes a slot), history, input estimate, budget (refused turns are not
// stored), the user message appended, the model call (fallback only before the first token), then the
// answer: JSON, or SSE token events, `event: error` on failure and always `event: done` last. Usage comes
// from the upstream's usage (estimates only for what it did not report) and is charged once the answer
// ends, before `done`; a ledger or session failure never costs the client its answer.
import {
  estimateTokensFromMessages,
  fail,
  ok,
  parseChatRequest,
  sseEvent,
  type Message,
  type Tenant,
} from "@chat/core";
import { completeChat, gatewayMetadata, openChatStream, type AttemptLog, type CallPlan, type ServedStream } from "@chat/ai";
import { admit, budgetKeys, charge, checkRateLimit, rateLimitHeaders, SessionClient } from "@chat/storage";
import { numberSetting, type Env, type ExecutionContext } from "./env";
import { selectModels } from "./selection";

class ClientGone extends Error {}

function logProblem(what: string, error: unknown): void {
  console.error(`${what}: ${error instanceof Error ? error.message : String(error)}`);
}

export function historyLimit(env: Env, tenant: Tenant): number {
  const perSession = tenant.maxMessagesPerSession;
  return Math.min(perSession, numberSetting(env.MAX_MESSAGE_COUNT) ?? perSession);
}

export async function handleChat(request: Request, env: Env, ctx: ExecutionContext, tenant: Tenant, traceId?: string): Promise<Response> {
  const requestStart = Date.now();
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    return fail("invalid_json", "Invalid JSON", 400, traceId);
  }
  const chat = parseChatRequest(body);
  if (!chat) return fail("invalid_request", "Invalid request", 400, traceId);
  const maxLength = numberSetting(env.MAX_MESSAGE_LENGTH);
  if (maxLength !== undefined && chat.message.length > maxLength) {
    return fail("invalid_request", "Message too long", 400, traceId);
  }

  const selection = selectModels(chat.modelId, env, tenant);
  if (!selection.allowed) return fail("model_not_allowed", "Requested model is not allowed", 403, traceId);

  const limiterKey = chat.userId ?? request.headers.get("x-user-id") ?? "anonymous";
  const limit = await checkRateLimit(env.RATE_LIMITER_DO, `${tenant.tenantId}:ratelimit:${limiterKey}`, tenant.rateLimit.perMinute, tenant.rateLimit.windowSec);
  const rateHeaders = rateLimitHeaders(limit);
  if (!limit.allowed) return fail("rate_limited", "Rate limit exceeded", 429, traceId, rateHeaders);

  const session = new SessionClient(env.SESSIONS, tenant.tenantId, chat.sessionId, {
    retentionDays: tenant.sessionRetentionDays,
    maxMessages: tenant.maxMessagesPerSession,
  });
  let history: Message[] = [];
  try {
    history = (await session.history(historyLimit(env, tenant))).map(({ role, content }) => ({ role, content }));
  } catch (error) {
    logProblem("session history unavailable", error);
  }
  const userMessage: Message = { role: "user", content: chat.message };
  const messages = [...history, userMessage];
  const estimatedIn = estimateTokensFromMessages(messages);

  let keys: { daily: string; monthly: string };
  try {
    const admission = await admit(env.RATE_LIMITER, tenant.tenantId, tenant.tokenBudget, estimatedIn, requestStart);
    if (!admission.ok) {
      const which = admission.window === "daily" ? "Daily" : "Monthly";
      return fail("budget_exceeded", `${which} token budget exceeded`, 429, traceId);
    }
    keys = admission.keys;
  } catch (error) {
    // An unreadable ledger does not refuse the turn; settlement reports the same problem and keeps the
    // stored value for inspection rather than overwriting it.
    logProblem("ledger unreadable at admission", error);
    keys = budgetKeys(tenant.tenantId, requestStart);
  }
  // Only an admitted turn enters the history.
  await session.append(userMessage).catch((error) => logProblem("session append failed", error));

  const plan: CallPlan = {
    candidates: selection.candidates,
    gatewayId: tenant.aiGatewayId,
    messages,
    metadata: gatewayMetadata({ traceId, sessionId: chat.sessionId, route: "/chat" }, tenant.tenantId),
    requestTimeoutMs: numberSetting(env.AI_REQUEST_TIMEOUT_MS),
    idleTimeoutMs: numberSetting(env.STREAM_IDLE_TIMEOUT_MS) ?? 30_000,
  };
  const attempts: AttemptLog[] = [];
  const settle = async (tokens: number) => {
    const problem = await charge(env.RATE_LIMITER, keys, tokens);
    if (problem) logProblem("usage not recorded", problem);
  };

  if (!chat.stream) {
    let completion;
    try {
      completion = await completeChat(env.AI, plan, attempts);
    } catch (error) {
      logProblem("chat failed", error);
      return fail("ai_error", "AI provider unavailable", 502, traceId);
    }
    const counts = completion.tracker.counts(estimatedIn);
    await settle(counts.totalTokens);
    await session.append({ role: "assistant", content: completion.text }, counts.tokensOut).catch((error) => logProblem("session append failed", error));
    return ok({ status: "accepted", sessionId: chat.sessionId, stream: false, message: completion.text }, traceId, {
      ...rateHeaders,
      "x-model-id": completion.model,
      "x-tokens-in": String(counts.tokensIn),
      "x-tokens-out": String(counts.tokensOut),
      "x-tokens-total": String(counts.totalTokens),
      "x-ai-latency-ms": String(completion.latencyMs),
    });
  }

  let served: ServedStream | undefined;
  let failure: unknown;
  try {
    served = await openChatStream(env.AI, plan, attempts);
  } catch (error) {
    failure = error;
  }
  const headers: Record<string, string> = {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "x-tenant-id": tenant.tenantId,
    ...(traceId ? { "x-trace-id": traceId } : {}),
    ...rateHeaders,
    // The head leaves once the first token is in, so it can name the model that actually serves.
    ...(served ? { "x-model-id": served.model } : {}),
    "x-tokens-in": String(estimatedIn),
  };
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const write = async (chunk: Uint8Array) => {
    try {
      await writer.write(chunk);
    } catch {
      throw new ClientGone();
    }
  };
  const tokenEvent = (content: string) => sseEvent({ sessionId: chat.sessionId, role: "assistant", content, tenantId: tenant.tenantId, traceId });

  const pump = async () => {
    let text = "";
    let error: unknown = failure;
    let gone = false;
    try {
      if (served) {
        if (served.firstToken !== undefined) {
          text += served.firstToken;
          await write(tokenEvent(served.firstToken));
        }
        for await (const token of served.tokens()) {
          text += token;
          await write(tokenEvent(token));
        }
      }
    } catch (caught) {
      if (caught instanceof ClientGone) {
        gone = true;
        await served?.cancel().catch(() => {});
      } else {
        error = caught;
      }
    }
    if (error) logProblem("chat stream failed", error);
    let usage: Record<string, unknown> | undefined;
    if (served) {
      // A partial answer (failed mid-way, or the client left) is charged for what was produced.
      const counts = served.tracker.counts(estimatedIn);
      const latencyMs = (served.endedAt ?? Date.now()) - served.startedAt;
      usage = { modelId: served.model, ...counts, latencyMs };
      await settle(counts.totalTokens);
      if (!error && !gone) {
        await session.append({ role: "assistant", content: text }, counts.tokensOut).catch((e) => logProblem("session append failed", e));
      }
    }
    if (gone) return;
    try {
      if (error) await write(sseEvent({ code: "ai_error", message: "AI provider unavailable", traceId }, "error"));
      await write(sseEvent(usage ? { done: true, usage } : { done: true }, "done"));
      await writer.close();
    } catch {
      // The client left while the last events were written.
    }
  };
  ctx.waitUntil(pump());
  return new Response(readable, { headers });
}
