export * from "./binding";
export * from "./errors";
export * from "./frames";
export * from "./gateway";
export * from "./metadata";
export * from "./text";
export * from "./usage";
