// Token usage in KV under the platform's keys, `{tenantId}:token-usage:daily:YYYY-MM-DD` and
// `{tenantId}:token-usage:monthly:YYYY-MM` (UTC, from the clock when the request started, so a request
// spanning midnight is charged to the day it started). Every tenant is metered, budget or not.
// Admission refuses when used + estimate > limit (reaching the limit exactly is allowed), daily first.
// Settlement re-reads each key just before writing (KV has no compare-and-swap; reading late keeps the
// window for lost updates as short as KV allows), and a failed write is reported, never thrown.

export interface KVNamespace {
  get(key: string): Promise<string | null>;
  put(key: string, value: string): Promise<void>;
}

export interface BudgetLimits {
  daily?: number;
  monthly?: number;
}

export function budgetKeys(tenantId: string, now: number): { daily: string; monthly: string } {
  const day = new Date(now).toISOString().slice(0, 10);
  return { daily: `${tenantId}:token-usage:daily:${day}`, monthly: `${tenantId}:token-usage:monthly:${day.slice(0, 7)}` };
}

export async function readUsed(kv: KVNamespace, key: string): Promise<number> {
  const raw = await kv.get(key);
  if (raw === null || raw.trim() === "") return 0;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`ledger key ${key} holds ${JSON.stringify(raw.slice(0, 40))}, not a token count`);
  return Math.floor(value);
}

export type Admission = { ok: true; keys: { daily: string; monthly: string } } | { ok: false; window: "daily" | "monthly" };

export async function admit(kv: KVNamespace, tenantId: string, limits: BudgetLimits, estimate: number, now: number): Promise<Admission> {
  const keys = budgetKeys(tenantId, now);
  if (!limits.daily && !limits.monthly) return { ok: true, keys };
  const [daily, monthly] = await Promise.all([readUsed(kv, keys.daily), readUsed(kv, keys.monthly)]);
  if (limits.daily && daily + estimate > limits.daily) return { ok: false, window: "daily" };
  if (limits.monthly && monthly + estimate > limits.monthly) return { ok: false, window: "monthly" };
  return { ok: true, keys };
}

// Read-modify-write of one key at a time within this isolate, so that concurrent requests served here do
// not overwrite each other's charges (across isolates KV cannot promise that).
const pending = new Map<string, Promise<unknown>>();

function serialised<T>(key: string, work: () => Promise<T>): Promise<T> {
  const previous = pending.get(key) ?? Promise.resolve();
  const next = previous.catch(() => {}).then(work);
  pending.set(key, next);
  next.finally(() => pending.get(key) === next && pending.delete(key)).catch(() => {});
  return next;
}

export async function charge(kv: KVNamespace, keys: { daily: string; monthly: string }, tokens: number): Promise<string | undefined> {
  if (tokens <= 0) return undefined;
  const problems: string[] = [];
  await Promise.all(
    [keys.daily, keys.monthly].map(async (key) => {
      try {
        await serialised(key, async () => {
          const used = await readUsed(kv, key);
          await kv.put(key, String(used + Math.floor(tokens)));
        });
      } catch (error) {
        problems.push(`${key}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }),
  );
  return problems.length ? problems.join("; ") : undefined;
}
