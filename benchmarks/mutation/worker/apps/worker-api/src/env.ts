import type { Ai } from "@chat/ai";
import type { DurableObjectNamespace, KVNamespace } from "@chat/storage";

export interface Env {
  AI: Ai;
  // Token usage (the platform's binding name is historical: rate limiting lives in a Durable Object).
  RATE_LIMITER: KVNamespace;
  SESSIONS: DurableObjectNamespace;
  RATE_LIMITER_DO: DurableObjectNamespace;
  ENVIRONMENT?: string;
  MODEL_ID?: string;
  FALLBACK_MODEL_ID?: string;
  MAX_MESSAGE_LENGTH?: string;
  MAX_MESSAGE_COUNT?: string;
  MAX_REQUEST_BODY_SIZE?: string;
  AI_REQUEST_TIMEOUT_MS?: string;
  STREAM_IDLE_TIMEOUT_MS?: string;
}

export interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
}

// A var that is unset or empty counts as unset (`MODEL_ID=""` must not select the empty model).
export function setting(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

export function numberSetting(value: string | undefined): number | undefined {
  const text = setting(value);
  if (text === undefined) return undefined;
  const number = Number(text);
  return Number.isFinite(number) ? number : undefined;
}
