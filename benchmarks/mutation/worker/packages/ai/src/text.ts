// The answer text of a non-streamed result. The binding returns the parsed object for `application/json`
// and the raw body otherwise (e.g. `application/json; charset=utf-8`); a REST envelope `{result: ...}` is
// unwrapped. The text is never the JSON text of an object: an answer without text is "".
export async function resultObject(result: unknown): Promise<unknown> {
  let value = result;
  if (value instanceof ReadableStream) {
    const text = await new Response(value).text();
    try {
      value = JSON.parse(text);
    } catch {
      return text;
    }
  }
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    if ("result" in record && record.result && typeof record.result === "object" && ("success" in record || "errors" in record)) {
      return record.result;
    }
  }
  return value;
}

export function extractText(result: unknown): string {
  if (typeof result === "string") return result;
  if (result && typeof result === "object") {
    const record = result as Record<string, any>;
    for (const key of ["response", "text", "content", "result"]) {
      if (typeof record[key] === "string") return record[key];
    }
    const choice = Array.isArray(record.choices) ? record.choices[0] : undefined;
    const content = choice?.message?.content ?? choice?.delta?.content;
    if (typeof content === "string") return content;
  }
  return "";
}
