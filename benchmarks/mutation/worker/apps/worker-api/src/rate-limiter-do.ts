// A sliding window over stored timestamps: `allowed = active < limit`, `remaining = max(0, limit - active
// - 1)`, `resetAt` the newest active timestamp plus the window (epoch ms). An allowed call takes a slot;
// the pruned window is always written back, so no timestamp is lost.
import { DurableObject } from "cloudflare:workers";
import { json } from "@chat/core";
import type { Limit } from "@chat/storage";

export class RateLimiterDO extends DurableObject {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const limit = Number(url.searchParams.get("limit") ?? 60);
    const windowMs = Number(url.searchParams.get("windowSec") ?? 60) * 1000;
    const now = Date.now();
    const stored = ((await this.ctx.storage.get("hits")) as number[] | undefined) ?? [];
    const active = stored.filter((t) => t > now - windowMs);
    const allowed = active.length < limit;
    const remaining = Math.max(0, limit - active.length - 1);
    const resetAt = active.length ? Math.max(...active) + windowMs : now + windowMs;
    if (allowed) active.push(now);
    await this.ctx.storage.put("hits", active);
    return json({ allowed, limit, remaining, resetAt } satisfies Limit);
  }
}
