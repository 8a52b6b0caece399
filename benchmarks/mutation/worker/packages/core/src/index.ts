export * from "./http/response";
export * from "./chat/schema";
export * from "./tenant/schema";
export * from "./tenant/registry";
export * from "./tokens";

export type Message = { role: "system" | "user" | "assistant"; content: string };
