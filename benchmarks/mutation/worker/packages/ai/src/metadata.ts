// cf-aig-metadata as the platform builds it (non-empty strings, in order, tenantId set last unless the
// caller named it), but never losing tenantId to AI Gateway's five-entry limit: caller entries after the
// fourth are dropped first.
export const METADATA_LIMIT = 5;

export function gatewayMetadata(entries: Record<string, unknown>, tenantId: string): Record<string, string> {
  const cleaned: Record<string, string> = {};
  for (const [key, value] of Object.entries(entries)) {
    if (typeof value === "string" && value) cleaned[key] = value;
  }
  cleaned.tenantId = tenantId;
  const keys = Object.keys(cleaned);
  if (keys.length <= METADATA_LIMIT) return cleaned;
  const keep = new Set([...keys.filter((k) => k !== "tenantId").slice(0, METADATA_LIMIT - 1), "tenantId"]);
  return Object.fromEntries(Object.entries(cleaned).filter(([k]) => keep.has(k)));
}
