// Model precedence: the request's modelId, else MODEL_ID, else the tenant's chat model; the fallback is
// FALLBACK_MODEL_ID, else the tenant's chat model, dropped when equal to the primary. With the tenant's
// allow-list on, a primary outside it is refused and a fallback outside it is dropped.
import type { Tenant } from "@chat/core";
import { setting, type Env } from "./env";

export type Selection = { allowed: true; primary: string; candidates: string[] } | { allowed: false };

export function selectModels(requested: string | undefined, env: Env, tenant: Tenant): Selection {
  const primary = requested ?? setting(env.MODEL_ID) ?? tenant.aiModels.chat;
  let fallback: string | undefined = setting(env.FALLBACK_MODEL_ID) ?? tenant.aiModels.chat;
  if (tenant.featureFlags.modelAllowList === true) {
    if (!tenant.allowedModels.includes(primary)) return { allowed: false };
    if (!tenant.allowedModels.includes(fallback)) fallback = undefined;
  }
  const candidates = fallback && fallback !== primary ? [primary, fallback] : [primary];
  return { allowed: true, primary, candidates };
}
