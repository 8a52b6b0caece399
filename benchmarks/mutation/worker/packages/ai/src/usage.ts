// Usage as the upstream reports it, and the final figures of an answer. Native Workers AI frames carry a
// cumulative `usage` (the last replaces what came before); chat-completion chunks carry increments (summed,
// and only used when no cumulative figure came), so nothing is counted twice. Estimates fill only what the
// upstream did not report.
import { estimateTokensFromLength } from "@chat/core";

export interface Reported {
  tokensIn?: number;
  tokensOut?: number;
  totalTokens?: number;
}

function count(value: unknown): number | undefined {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 ? value : undefined;
}

function first(usage: Record<string, unknown>, ...keys: string[]): number | undefined {
  for (const key of keys) {
    const value = count(usage[key]);
    if (value !== undefined) return value;
  }
  return undefined;
}

// prompt_tokens / input_tokens, completion_tokens / output_tokens, total_tokens; non-numbers are ignored.
export function usageFrom(value: unknown): Reported | undefined {
  if (!value || typeof value !== "object" || Array.isArray(value)) return undefined;
  const usage = value as Record<string, unknown>;
  return {
    tokensIn: first(usage, "prompt_tokens", "input_tokens"),
    tokensOut: first(usage, "completion_tokens", "output_tokens"),
    totalTokens: first(usage, "total_tokens"),
  };
}

function plus(a: Reported, b: Reported): Reported {
  const add = (x?: number, y?: number) => (x === undefined ? y : y === undefined ? x : x + y);
  return { tokensIn: add(a.tokensIn, b.tokensIn), tokensOut: add(a.tokensOut, b.tokensOut), totalTokens: add(a.totalTokens, b.totalTokens) };
}

export interface Counts {
  tokensIn: number;
  tokensOut: number;
  totalTokens: number;
}

export class UsageTracker {
  private cumulative?: Reported;
  private incremental?: Reported;
  private outputUnits = 0;

  addText(text: string): void {
    this.outputUnits += text.length;
  }

  addUsage(usage: Reported | undefined, cumulative: boolean): void {
    if (!usage) return;
    if (cumulative) this.cumulative = usage;
    else this.incremental = this.incremental ? plus(this.incremental, usage) : usage;
  }

  counts(estimatedIn: number): Counts {
    const reported = this.cumulative ?? this.incremental ?? {};
    const tokensIn = reported.tokensIn ?? estimatedIn;
    const tokensOut = reported.tokensOut ?? estimateTokensFromLength(this.outputUnits);
    // The reported total only when both of its parts were reported; else it would mix in estimates.
    const bothReported = reported.tokensIn !== undefined && reported.tokensOut !== undefined;
    const totalTokens = bothReported && reported.totalTokens !== undefined ? reported.totalTokens : tokensIn + tokensOut;
    return { tokensIn, tokensOut, totalTokens };
  }
}
