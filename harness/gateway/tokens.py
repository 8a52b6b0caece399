"""Tokens and usage from Workers AI responses, and the platform's token estimates.

Both stream shapes are understood: the native one (``{"response": "tok", "p": ...}``, a trailing
``{"response": "", "usage": {...}}`` and ``[DONE]``) and the chat-completion one (``choices[0].delta``,
per-chunk usage, a ``finish_reason``). Usage in a native frame is cumulative and replaces what came before;
usage in a chat-completion chunk is incremental and is summed, and only when no cumulative usage arrives;
so the two are never counted twice. Estimates are the platform's (``ceil(utf16_length / 4)``) and are used
only where the upstream reports nothing, and every figure says whether it is an estimate.

Nothing here does I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aigw_harness.sse import ServerSentEvent

__all__ = [
    "Frame",
    "TokenCounts",
    "Usage",
    "UsageTracker",
    "estimate_tokens_from_length",
    "estimate_tokens_from_messages",
    "estimate_tokens_from_text",
    "extract_text",
    "interpret_event",
    "usage_from_mapping",
    "utf16_len",
    "valid_unicode",
]


def utf16_len(text: str) -> int:
    """``String.prototype.length``: UTF-16 code units (an astral character counts 2)."""
    if text.isascii():  # most tokens: one unit per character, without encoding
        return len(text)
    return len(text.encode("utf-16-le", errors="surrogatepass")) // 2


def valid_unicode(text: str) -> str:
    """``text`` with each lone UTF-16 surrogate replaced by U+FFFD, so that it can be encoded, stored and
    forwarded. JSON may spell a lone surrogate (``"\\ud800"``) and JavaScript keeps it; UTF-8 cannot carry
    it. The replacement is one UTF-16 unit, like the surrogate, so lengths and estimates do not change."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", errors="surrogatepass").decode("utf-16-le", errors="replace")
    return text


def estimate_tokens_from_length(length: int) -> int:
    return max(1, math.ceil(length / 4)) if length > 0 else 0


def estimate_tokens_from_text(text: str) -> int:
    return estimate_tokens_from_length(utf16_len(text))


def estimate_tokens_from_messages(contents: Iterable[str]) -> int:
    """Per-message rounding, no role or template overhead, as the platform estimates input."""
    return sum(estimate_tokens_from_text(content) for content in contents)


@dataclass(frozen=True, slots=True)
class Usage:
    """Usage as the upstream reported it; any field may be missing."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    neurons: float | None = None

    def plus(self, other: Usage) -> Usage:
        def add[T: (int, float)](a: T | None, b: T | None) -> T | None:
            if a is None:
                return b
            if b is None:
                return a
            return a + b

        return Usage(
            add(self.input_tokens, other.input_tokens),
            add(self.output_tokens, other.output_tokens),
            add(self.total_tokens, other.total_tokens),
            add(self.neurons, other.neurons),
        )


def _int(value: Any) -> int | None:
    # bool is an int in Python but never a token count.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _first_int(usage: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = _int(usage.get(key))
        if value is not None:
            return value
    return None


def usage_from_mapping(value: Any) -> Usage | None:
    """Read ``prompt_tokens``/``input_tokens``, ``completion_tokens``/``output_tokens``, ``total_tokens``,
    ``neurons``; non-numeric fields are ignored rather than trusted."""
    if not isinstance(value, Mapping) or not value:
        return None
    neurons = value.get("neurons")
    return Usage(
        input_tokens=_first_int(value, "prompt_tokens", "input_tokens"),
        output_tokens=_first_int(value, "completion_tokens", "output_tokens"),
        total_tokens=_first_int(value, "total_tokens"),
        neurons=float(neurons)
        if isinstance(neurons, int | float) and not isinstance(neurons, bool)
        else None,
    )


@dataclass(frozen=True, slots=True)
class Frame:
    """One upstream SSE event, interpreted."""

    token: str = ""  # answer text carried by this frame ("" for none)
    usage: Usage | None = None
    cumulative: bool = False  # usage is a running total (native frames), not an increment
    finished: bool = False  # a finish_reason was given
    done: bool = False  # the [DONE] terminator
    error: str | None = None  # an error reported inside the stream
    error_code: int | None = None
    malformed: bool = False  # the frame is not a JSON object: ``error`` says what it was


def _stream_error(payload: Mapping[str, Any]) -> tuple[str, int | None] | None:
    errors = payload.get("errors", payload.get("error"))
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        first = errors[0]
        code = _int(first.get("code"))
        return str(first.get("message", "error")), code
    if isinstance(errors, str):
        return errors, None
    return None


def interpret_event(event: ServerSentEvent) -> Frame:
    if event.is_done_marker():
        return Frame(done=True)
    data = event.data
    try:
        payload = json.loads(data)
    except ValueError:
        return Frame(error=f"malformed frame: {data[:80]!r}", malformed=True)
    if not isinstance(payload, Mapping):
        return Frame(error=f"unexpected frame: {data[:80]!r}", malformed=True)
    if "response" not in payload and "choices" not in payload:
        error = _stream_error(payload)
        if error is not None:
            return Frame(error=error[0], error_code=error[1])
    usage = usage_from_mapping(payload.get("usage"))
    choices = payload.get("choices")
    if isinstance(choices, list):
        token = ""
        finished = False
        if choices and isinstance(choices[0], Mapping):
            choice = choices[0]
            delta = choice.get("delta")
            if isinstance(delta, Mapping) and isinstance(delta.get("content"), str):
                token = delta["content"]
            elif isinstance(choice.get("text"), str):
                token = choice["text"]
            finished = choice.get("finish_reason") is not None
        return Frame(token=_valid(token, data), usage=usage, cumulative=False, finished=finished)
    response = payload.get("response")
    token = response if isinstance(response, str) else ""
    return Frame(token=_valid(token, data), usage=usage, cumulative=True)


def _valid(token: str, data: str) -> str:
    # Only a \u escape can spell a lone surrogate, so most frames skip the check.
    return valid_unicode(token) if token and "\\u" in data else token


@dataclass
class TokenCounts:
    """Final figures for one answer, each marked as reported or estimated."""

    tokens_in: int
    tokens_out: int
    tokens_total: int
    in_estimated: bool
    out_estimated: bool
    neurons: float | None = None


@dataclass
class UsageTracker:
    """Accumulates usage over a stream without double-counting cumulative and incremental figures."""

    cumulative: Usage | None = None
    incremental: Usage | None = None
    output_units: int = 0  # UTF-16 units of answer text seen
    tokens_seen: int = 0
    ignore_reported: bool = False  # estimate everything, as the platform does for streams

    def add_frame(self, frame: Frame) -> None:
        if frame.token:
            self.output_units += utf16_len(frame.token)
            self.tokens_seen += 1
        if frame.usage is not None and not self.ignore_reported:
            if frame.cumulative:
                self.cumulative = frame.usage
            else:
                self.incremental = (
                    frame.usage if self.incremental is None else self.incremental.plus(frame.usage)
                )

    @property
    def reported(self) -> Usage | None:
        return self.cumulative if self.cumulative is not None else self.incremental

    def counts(self, estimated_input: int) -> TokenCounts:
        reported = self.reported or Usage()
        in_estimated = reported.input_tokens is None
        out_estimated = reported.output_tokens is None
        tokens_in = estimated_input if reported.input_tokens is None else reported.input_tokens
        tokens_out = (
            estimate_tokens_from_length(self.output_units)
            if reported.output_tokens is None
            else reported.output_tokens
        )
        if reported.total_tokens is not None and not (in_estimated or out_estimated):
            total = reported.total_tokens
        else:
            total = tokens_in + tokens_out
        return TokenCounts(tokens_in, tokens_out, total, in_estimated, out_estimated, reported.neurons)


def extract_text(result: Any) -> str:
    """The answer text of a non-streamed result (the REST envelope already removed)."""
    if isinstance(result, str):
        return result
    if isinstance(result, Mapping):
        for key in ("response", "text", "content", "result"):
            if isinstance(result.get(key), str):
                return str(result[key])
        choices = result.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
            for part in ("message", "delta"):
                inner = choices[0].get(part)
                if isinstance(inner, Mapping) and isinstance(inner.get("content"), str):
                    return str(inner["content"])
    return ""
