// Session history: `{role, content, timestamp, tokenCount?}` oldest first, pruned on append by retention
// days and the tenant's message cap.
import { DurableObject } from "cloudflare:workers";
import { json, type Message } from "@chat/core";
import type { StoredMessage } from "@chat/storage";

const DAY_MS = 86_400_000;

export class SessionDO extends DurableObject {
  private async load(): Promise<StoredMessage[]> {
    return ((await this.ctx.storage.get("messages")) as StoredMessage[] | undefined) ?? [];
  }

  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/append") {
      const { message, tokenCount, retentionDays, maxMessages } = (await request.json()) as {
        message: Message;
        tokenCount?: number;
        retentionDays: number;
        maxMessages: number;
      };
      const now = Date.now();
      const kept = (await this.load()).filter((m) => m.timestamp > now - retentionDays * DAY_MS);
      kept.push({ role: message.role, content: message.content, timestamp: now, ...(tokenCount !== undefined ? { tokenCount } : {}) });
      const pruned = kept.slice(-maxMessages);
      await this.ctx.storage.put("messages", pruned);
      return json({ count: pruned.length });
    }
    if (url.pathname === "/clear") {
      await this.ctx.storage.delete("messages");
      return json({ count: 0 });
    }
    const limit = Number(url.searchParams.get("limit") ?? 50);
    const retentionDays = Number(url.searchParams.get("retentionDays") ?? 30);
    const now = Date.now();
    const messages = (await this.load()).filter((m) => m.timestamp > now - retentionDays * DAY_MS);
    return json(limit > 0 ? messages.slice(-limit) : []);
  }
}
