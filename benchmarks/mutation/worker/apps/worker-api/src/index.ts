// The fetch handler: trace id, tenant (bundled tenants, by x-tenant-id, host or x-api-key), body size,
// then /health, /chat, GET /chat/:sessionId/history, DELETE /chat/:sessionId; anything else 404.
import { fail, ok, TenantRegistry, traceIdOf, UUID } from "@chat/core";
import { SessionClient } from "@chat/storage";
import { tenantDocuments } from "@chat/tenants";
import { handleChat, historyLimit } from "./chat";
import { numberSetting, setting, type Env, type ExecutionContext } from "./env";

export { RateLimiterDO } from "./rate-limiter-do";
export { SessionDO } from "./session-do";

const tenants = new TenantRegistry(tenantDocuments);

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    const traceId = traceIdOf(request);
    const { id, tenant } = tenants.resolve(request);
    if (!id) return fail("tenant_required", "Tenant required", 400, traceId);
    if (!tenant) return fail("tenant_unknown", "Unknown tenant", 404, traceId);
    if (request.method !== "GET" && request.method !== "HEAD") {
      const length = request.headers.get("content-length");
      if (length !== null && Number(length) > (numberSetting(env.MAX_REQUEST_BODY_SIZE) ?? 10240)) {
        return fail("payload_too_large", "Request body too large", 413, traceId);
      }
    }
    if (url.pathname === "/health") {
      return ok(
        {
          status: "ok",
          tenantId: tenant.tenantId,
          environment: env.ENVIRONMENT ?? "unknown",
          modelId: setting(env.MODEL_ID) ?? tenant.aiModels.chat,
          fallbackModelId: setting(env.FALLBACK_MODEL_ID) ?? tenant.aiModels.chat,
        },
        traceId,
      );
    }
    if (url.pathname === "/chat") {
      if (request.method !== "POST") return fail("method_not_allowed", "Method not allowed", 405, traceId);
      return handleChat(request, env, ctx, tenant, traceId);
    }
    const history = /^\/chat\/([^/]*)\/history$/.exec(url.pathname);
    const session = /^\/chat\/([^/]*)$/.exec(url.pathname);
    if ((history && request.method === "GET") || (session && request.method === "DELETE")) {
      const sessionId = (history ?? session)![1];
      if (!sessionId) return fail("invalid_request", "Missing sessionId", 400, traceId);
      if (!UUID.test(sessionId)) return fail("invalid_request", "Invalid sessionId", 400, traceId);
      const client = new SessionClient(env.SESSIONS, tenant.tenantId, sessionId, {
        retentionDays: tenant.sessionRetentionDays,
        maxMessages: tenant.maxMessagesPerSession,
      });
      if (history) return ok({ sessionId, messages: await client.history(historyLimit(env, tenant)) }, traceId);
      await client.clear();
      return ok({ sessionId, cleared: true }, traceId);
    }
    return fail("not_found", "Not found", 404, traceId);
  },
};
