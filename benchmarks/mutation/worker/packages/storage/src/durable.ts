// Clients of the Worker's Durable Objects: one rate limiter per `{tenantId}:ratelimit:{key}` and one
// session per `{tenantId}:{sessionId}`.
import type { Message } from "@chat/core";

export interface DurableObjectNamespace {
  idFromName(name: string): unknown;
  get(id: unknown): { fetch(request: Request): Promise<Response> };
}

export type Limit = { allowed: boolean; limit: number; remaining: number; resetAt: number };

export async function checkRateLimit(ns: DurableObjectNamespace, name: string, limit: number, windowSec: number): Promise<Limit> {
  const stub = ns.get(ns.idFromName(name));
  const response = await stub.fetch(new Request(`https://limiter/check?limit=${limit}&windowSec=${windowSec}`, { method: "POST" }));
  return (await response.json()) as Limit;
}

export function rateLimitHeaders(limit: Limit): Record<string, string> {
  return {
    "x-ratelimit-limit": String(limit.limit),
    "x-ratelimit-remaining": String(limit.remaining),
    "x-ratelimit-reset": String(limit.resetAt),
  };
}

export type StoredMessage = Message & { timestamp: number; tokenCount?: number };

export interface SessionPolicy {
  retentionDays: number;
  maxMessages: number;
}

export class SessionClient {
  private readonly stub: { fetch(request: Request): Promise<Response> };
  constructor(ns: DurableObjectNamespace, tenantId: string, sessionId: string, private readonly policy: SessionPolicy) {
    this.stub = ns.get(ns.idFromName(`${tenantId}:${sessionId}`));
  }

  async history(limit: number): Promise<StoredMessage[]> {
    const query = `limit=${limit}&retentionDays=${this.policy.retentionDays}`;
    return (await (await this.stub.fetch(new Request(`https://session/history?${query}`))).json()) as StoredMessage[];
  }

  async append(message: Message, tokenCount?: number): Promise<void> {
    const body = JSON.stringify({ message, tokenCount, ...this.policy });
    const response = await this.stub.fetch(new Request("https://session/append", { method: "POST", body }));
    if (!response.ok) throw new Error(`session append failed: ${response.status}`);
  }

  async clear(): Promise<void> {
    await this.stub.fetch(new Request("https://session/clear", { method: "POST" }));
  }
}
