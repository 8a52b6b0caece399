// The tenants, bundled at build time: each tenant's JSON file is imported by the bundle (as the
// platform's tenants/*/tenant.config.json are), so a tenant changes only with a new deployment.
import alpha from "./alpha/tenant.config.json";
import example from "./example/tenant.config.json";

export const tenantDocuments: unknown[] = [alpha, example];
