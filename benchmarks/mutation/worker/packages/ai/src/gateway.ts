// Calls Workers AI through AI Gateway with a primary and a fallback model. Streaming is asked for the way
// the binding requires (`stream: true` in the inputs; the binding ignores it in the options). A failure
// before the first token falls back when its class allows; after the first token nothing is retried.
import type { Message } from "@chat/core";
import type { Ai } from "./binding";
import { classify, UpstreamFailure } from "./errors";
import { frames, type Frame } from "./frames";
import { extractText, resultObject } from "./text";
import { usageFrom, UsageTracker } from "./usage";

export interface CallPlan {
  candidates: string[];
  gatewayId: string;
  messages: Message[];
  metadata: Record<string, string>;
  requestTimeoutMs?: number;
  idleTimeoutMs: number;
}

export interface AttemptLog {
  model: string;
  outcome: "served" | "failed";
  errorClass?: string;
  message?: string;
}

function gatewayOptions(plan: CallPlan): object {
  const gateway: Record<string, unknown> = { id: plan.gatewayId, metadata: plan.metadata };
  // AI Gateway's first-byte timeout (cf-aig-request-timeout): a slow model fails over instead of hanging.
  if (plan.requestTimeoutMs) gateway.requestTimeoutMs = plan.requestTimeoutMs;
  return { gateway };
}

export class ServedStream {
  endedAt?: number;
  constructor(
    readonly model: string,
    readonly startedAt: number,
    readonly firstToken: string | undefined,
    private readonly rest: AsyncGenerator<Frame>,
    readonly tracker: UsageTracker = new UsageTracker(),
  ) {}

  // The tokens after the first; usage frames feed the tracker. Throws on a mid-stream failure.
  async *tokens(): AsyncGenerator<string> {
    try {
      for await (const frame of this.rest) {
        this.tracker.addUsage(frame.usage, frame.cumulative);
        if (frame.token) {
          this.tracker.addText(frame.token);
          yield frame.token;
        }
      }
    } finally {
      this.endedAt = Date.now();
    }
  }

  async cancel(): Promise<void> {
    await this.rest.return(undefined);
  }
}

async function* single(frame: Frame): AsyncGenerator<Frame> {
  yield frame;
}

async function* none(): AsyncGenerator<Frame> {}

// Opens the stream of the first candidate that delivers its first token (or ends cleanly without one).
export async function openChatStream(ai: Ai, plan: CallPlan, attempts: AttemptLog[]): Promise<ServedStream> {
  let last: UpstreamFailure | undefined;
  for (const [index, model] of plan.candidates.entries()) {
    const startedAt = Date.now();
    let served: ServedStream | undefined;
    try {
      const result = await ai.run(model, { messages: plan.messages, stream: true }, gatewayOptions(plan));
      if (!(result instanceof ReadableStream)) {
        // The binding answered JSON although a stream was asked for: one frame with its real usage.
        const value = await resultObject(result);
        const frame: Frame = { token: extractText(value), usage: usageFrom((value as any)?.usage), cumulative: true, finished: true };
        served = new ServedStream(model, startedAt, undefined, single(frame));
      } else {
        const stream = frames(result, plan.idleTimeoutMs);
        const tracker = new UsageTracker();
        let first: string | undefined;
        for (;;) {
          const next = await stream.next();
          if (next.done) break;
          tracker.addUsage(next.value.usage, next.value.cumulative);
          if (next.value.token) {
            first = next.value.token;
            break;
          }
        }
        if (first !== undefined) tracker.addText(first);
        served = new ServedStream(model, startedAt, first, first === undefined ? none() : stream, tracker);
      }
      attempts.push({ model, outcome: "served" });
      return served;
    } catch (error) {
      last = classify(error, ai.lastRequestHttpStatusCode);
      attempts.push({ model, outcome: "failed", errorClass: last.errorClass, message: last.message });
      if (!last.fallsBack || index + 1 >= plan.candidates.length) throw last;
    }
  }
  throw last ?? new UpstreamFailure("server", undefined, undefined, "no model to call");
}

export interface Completion {
  model: string;
  text: string;
  tracker: UsageTracker;
  latencyMs: number;
}

export async function completeChat(ai: Ai, plan: CallPlan, attempts: AttemptLog[]): Promise<Completion> {
  let last: UpstreamFailure | undefined;
  for (const [index, model] of plan.candidates.entries()) {
    const startedAt = Date.now();
    try {
      const value = await resultObject(await ai.run(model, { messages: plan.messages }, gatewayOptions(plan)));
      const text = extractText(value);
      const tracker = new UsageTracker();
      tracker.addUsage(usageFrom((value as any)?.usage), true);
      tracker.addText(text);
      attempts.push({ model, outcome: "served" });
      return { model, text, tracker, latencyMs: Date.now() - startedAt };
    } catch (error) {
      last = classify(error, ai.lastRequestHttpStatusCode);
      attempts.push({ model, outcome: "failed", errorClass: last.errorClass, message: last.message });
      if (!last.fallsBack || index + 1 >= plan.candidates.length) throw last;
    }
  }
  throw last ?? new UpstreamFailure("server", undefined, undefined, "no model to call");
}
