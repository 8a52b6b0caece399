// The parts of the Workers AI binding (env.AI) this Worker uses; no @cloudflare/workers-types needed.
export interface Ai {
  run(model: string, inputs: object, options?: object): Promise<unknown>;
  aiGatewayLogId: string | null;
  lastRequestHttpStatusCode?: number | null;
}
