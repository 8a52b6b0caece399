// Tenants by id, host and API key, built once from the bundled tenant documents. A later tenant wins a
// duplicate host or key, as the platform's loader does.
import { parseTenant, type Tenant } from "./schema";

export class TenantRegistry {
  private readonly byId = new Map<string, Tenant>();
  private readonly byHost = new Map<string, Tenant>();
  private readonly byKey = new Map<string, Tenant>();

  constructor(documents: unknown[]) {
    documents.forEach((doc, index) => {
      const tenant = parseTenant(doc, `#${index}`);
      this.byId.set(tenant.tenantId, tenant);
      for (const host of tenant.allowedHosts) this.byHost.set(host, tenant);
      for (const key of tenant.apiKeys) this.byKey.set(key, tenant);
    });
  }

  // First match wins: the x-tenant-id header (trusted, as the platform does), the host, the API key.
  resolve(request: Request): { id?: string; tenant?: Tenant } {
    const header = request.headers.get("x-tenant-id");
    if (header) return { id: header, tenant: this.byId.get(header) };
    const byHost = this.byHost.get(new URL(request.url).hostname);
    if (byHost) return { id: byHost.tenantId, tenant: byHost };
    const key = request.headers.get("x-api-key");
    const byKey = key ? this.byKey.get(key) : undefined;
    return byKey ? { id: byKey.tenantId, tenant: byKey } : {};
  }
}
