// Reads a Workers AI SSE stream as the binding hands it over (raw bytes) and yields its frames. It follows
// the SSE rules rather than one writer's habits: LF, CR or CRLF line ends (a CR at the end of a chunk waits
// for the next one), comments, `id:`/`retry:`/`event:` fields, multi-line `data`, UTF-8 characters split
// across chunks. A frame is one of: answer text and/or usage, the end (`[DONE]`, or a finish reason
// followed by the end of the body), or an error (an `event: error`, an error payload, a malformed frame,
// a body that ends without its terminator, no event within the idle timeout).
import { usageFrom, type Reported } from "./usage";

export interface Frame {
  token: string;
  usage?: Reported;
  cumulative: boolean;
  finished: boolean;
}

export class StreamFault extends Error {
  constructor(message: string, readonly truncated = false) {
    super(message);
    this.name = "StreamFault";
  }
}

function interpret(event: string, data: string): Frame | "done" {
  if (event === "error") throw new StreamFault(`upstream error event: ${data.slice(0, 200)}`);
  let payload: any;
  try {
    payload = JSON.parse(data);
  } catch {
    throw new StreamFault(`malformed frame: ${data.slice(0, 80)}`);
  }
  if (!payload || typeof payload !== "object" || Array.isArray(payload)) {
    throw new StreamFault(`unexpected frame: ${data.slice(0, 80)}`);
  }
  if (!("response" in payload) && !("choices" in payload) && (payload.error || payload.errors)) {
    throw new StreamFault(`upstream error frame: ${data.slice(0, 200)}`);
  }
  const usage = usageFrom(payload.usage);
  if (Array.isArray(payload.choices)) {
    const choice = payload.choices[0] ?? {};
    const token = typeof choice.delta?.content === "string" ? choice.delta.content : typeof choice.text === "string" ? choice.text : "";
    return { token, usage, cumulative: false, finished: choice.finish_reason != null };
  }
  const token = typeof payload.response === "string" ? payload.response : "";
  return { token, usage, cumulative: true, finished: false };
}

async function readWithin<T>(read: Promise<T>, idleMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const idle = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StreamFault(`no stream event for ${idleMs} ms`)), idleMs);
  });
  try {
    return await Promise.race([read, idle]);
  } finally {
    clearTimeout(timer);
  }
}

export async function* frames(body: ReadableStream<Uint8Array>, idleMs: number): AsyncGenerator<Frame> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let data: string[] = [];
  let event = "";
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await readWithin(reader.read(), idleMs);
      if (done) {
        if (finished) return;
        throw new StreamFault("the upstream stream ended without [DONE]", true);
      }
      buffer += value;
      for (;;) {
        const match = /\r\n|\r|\n/.exec(buffer);
        // A CR as the last character may be the first half of a CRLF: wait for the next chunk.
        if (!match || (match[0] === "\r" && match.index === buffer.length - 1)) break;
        const line = buffer.slice(0, match.index);
        buffer = buffer.slice(match.index + match[0].length);
        if (line === "") {
          if (data.length) {
            const text = data.join("\n");
            const kind = event;
            data = [];
            event = "";
            if (text === "[DONE]") return;
            const frame = interpret(kind, text);
            if (frame === "done") return;
            if (frame.finished) finished = true;
            yield frame;
          } else if (event === "error") {
            throw new StreamFault("upstream error event without data");
          }
          event = "";
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let fieldValue = colon < 0 ? "" : line.slice(colon + 1);
        if (fieldValue.startsWith(" ")) fieldValue = fieldValue.slice(1);
        if (field === "data") data.push(fieldValue);
        else if (field === "event") event = fieldValue;
        // id and retry carry nothing this Worker needs; other fields are ignored, as SSE requires.
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
