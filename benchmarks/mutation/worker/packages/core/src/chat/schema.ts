// The /chat request schema, checked by hand (the platform uses zod; this bundle takes no packages):
// sessionId a UUID, message 1..10000 UTF-16 units, modelId/userId non-empty strings, stream a boolean
// defaulting to true; other keys are dropped.

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface ChatRequest {
  sessionId: string;
  message: string;
  modelId?: string;
  userId?: string;
  stream: boolean;
}

function optionalText(value: unknown): value is string | undefined {
  return value === undefined || (typeof value === "string" && value.length > 0);
}

export function parseChatRequest(body: unknown): ChatRequest | null {
  if (!body || typeof body !== "object" || Array.isArray(body)) return null;
  const { sessionId, message, modelId, userId } = body as Record<string, unknown>;
  const stream = (body as Record<string, unknown>).stream ?? true;
  if (typeof sessionId !== "string" || !UUID.test(sessionId)) return null;
  if (typeof message !== "string" || message.length < 1 || message.length > 10000) return null;
  if (!optionalText(modelId) || !optionalText(userId)) return null;
  if (typeof stream !== "boolean") return null;
  return { sessionId, message, modelId, userId, stream };
}
