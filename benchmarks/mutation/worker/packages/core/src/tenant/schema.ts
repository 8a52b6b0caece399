// The tenant config schema (the platform's tenant.config.json), validated by hand when the bundle loads:
// a mistake names the tenant file's id and the field.

export interface Tenant {
  tenantId: string;
  aiGatewayId: string;
  aiModels: { chat: string };
  rateLimit: { perMinute: number; windowSec: number };
  featureFlags: Record<string, boolean>;
  allowedModels: string[];
  tokenBudget: { daily?: number; monthly?: number };
  allowedHosts: string[];
  apiKeys: string[];
  sessionRetentionDays: number;
  maxMessagesPerSession: number;
}

function positiveInt(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value > 0;
}

function strings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}

export function parseTenant(doc: unknown, where: string): Tenant {
  const bad = (field: string): never => {
    throw new Error(`tenant ${where}: ${field} is missing or invalid`);
  };
  if (!doc || typeof doc !== "object") bad("the document");
  const d = doc as Record<string, any>;
  if (typeof d.tenantId !== "string" || !d.tenantId) bad("tenantId");
  if (typeof d.aiGatewayId !== "string" || !d.aiGatewayId) bad("aiGatewayId");
  if (typeof d.aiModels?.chat !== "string" || !d.aiModels.chat) bad("aiModels.chat");
  if (!positiveInt(d.rateLimit?.perMinute)) bad("rateLimit.perMinute");
  if (d.rateLimit.windowSec !== undefined && !positiveInt(d.rateLimit.windowSec)) bad("rateLimit.windowSec");
  const flags = d.featureFlags ?? {};
  if (typeof flags !== "object" || Object.values(flags).some((v) => typeof v !== "boolean")) bad("featureFlags");
  for (const key of ["allowedModels", "allowedHosts", "apiKeys"]) {
    if (d[key] !== undefined && !strings(d[key])) bad(key);
  }
  const budget = d.tokenBudget ?? {};
  for (const key of ["daily", "monthly"]) {
    if (budget[key] !== undefined && !positiveInt(budget[key])) bad(`tokenBudget.${key}`);
  }
  for (const key of ["sessionRetentionDays", "maxMessagesPerSession"]) {
    if (d[key] !== undefined && !positiveInt(d[key])) bad(key);
  }
  return {
    tenantId: d.tenantId,
    aiGatewayId: d.aiGatewayId,
    aiModels: { chat: d.aiModels.chat },
    rateLimit: { perMinute: d.rateLimit.perMinute, windowSec: d.rateLimit.windowSec ?? 60 },
    featureFlags: flags,
    allowedModels: d.allowedModels ?? [],
    tokenBudget: { daily: budget.daily, monthly: budget.monthly },
    allowedHosts: d.allowedHosts ?? [],
    apiKeys: d.apiKeys ?? [],
    sessionRetentionDays: d.sessionRetentionDays ?? 30,
    maxMessagesPerSession: d.maxMessagesPerSession ?? 1000,
  };
}
