export * from "./ledger";
export * from "./durable";
