// The platform's token estimates: ceil(UTF-16 length / 4), at least 1 for non-empty text, summed per
// message with no role or template overhead.

export function estimateTokensFromLength(length: number): number {
  return length > 0 ? Math.max(1, Math.ceil(length / 4)) : 0;
}

export function estimateTokensFromText(text: string): number {
  return estimateTokensFromLength(text.length);
}

export function estimateTokensFromMessages(messages: { content: string }[]): number {
  return messages.reduce((sum, m) => sum + estimateTokensFromText(m.content), 0);
}
