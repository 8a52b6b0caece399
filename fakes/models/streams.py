"""Workers AI output, byte for byte: non-streamed bodies, native SSE frames, chat-completion chunks, and
the scripted stream faults applied to them.

Native stream (legacy-shape models)::

    data: {"response":"Hello","p":"abcdefgh"}            one frame per token, random-length padding
    data: {"response":""}                                 the empty frame
    data: {"response":"","usage":{...}}                   cumulative usage
    data: [DONE]

Chat-shaped models send ``chat.completion.chunk`` objects (keys in the order observed: choices, created,
id, model, object, p, usage): a role chunk, one chunk per token, a finish chunk, a ``choices: []`` usage
chunk when ``stream_options.include_usage`` is set, then (on the run and binding paths) the cumulative
native usage frame and ``[DONE]``. Per-chunk usage is incremental; the native frame is cumulative.

``plan_writes`` turns frames into timed writes with the faults of ``StreamFaults``; ``play`` sleeps and
yields them, raising ``StreamCut`` where the script cuts the connection.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from aigw_fakes.behaviour import NO_FAULTS, StreamFaults
from aigw_fakes.models.catalogue import ModelInfo
from aigw_fakes.models.generation import Generation
from aigw_fakes.wire.http import StreamCut

__all__ = [
    "ChatIdentity",
    "Frame",
    "Write",
    "chat_chunks",
    "chat_completion",
    "dumps",
    "native_frames",
    "native_result",
    "padding",
    "plain_native_chunks",
    "plain_native_writes",
    "plan_writes",
    "play",
    "usage_json",
]

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_ALPHABET_TWICE = _ALPHABET * 2


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_string: Callable[[str], str] = encode_basestring  # a JSON string literal, non-ASCII kept as is


def dumps(value: Any) -> str:
    """Compact JSON with non-ASCII characters as is, as Workers AI writes it."""
    return _ENCODE(value)


_POOL_SIZE = 4096
# Padding characters are slices of one fixed random string: two draws per frame instead of one per char.
_POOL = "".join(random.Random(0x5EED).choices(_ALPHABET, k=_POOL_SIZE))


def padding(rng: random.Random) -> str:
    """Random-length padding against the token-length side channel: an alphabet prefix or random chars."""
    bits = rng.getrandbits(32)
    length = 1 + (bits & 0xFFFF) % 48
    if bits >> 31:
        return _ALPHABET_TWICE[:length]
    start = (bits >> 16 & 0x7FFF) % (_POOL_SIZE - length)
    return _POOL[start : start + length]


_ALPHABET_TWICE_BYTES = _ALPHABET_TWICE.encode()
_POOL_BYTES = _POOL.encode()


def _paddings(rng: random.Random, count: int) -> list[bytes]:
    """``[padding(rng).encode() for _ in range(count)]`` from one draw: ``getrandbits(32 * n)`` yields the
    words that ``n`` calls of ``getrandbits(32)`` would, least significant first."""
    if count <= 0:
        return []
    words = struct.unpack(f"<{count}I", rng.getrandbits(32 * count).to_bytes(4 * count, "little"))
    out = []
    for bits in words:
        length = 1 + (bits & 0xFFFF) % 48
        if bits >> 31:
            out.append(_ALPHABET_TWICE_BYTES[:length])
        else:
            start = (bits >> 16 & 0x7FFF) % (_POOL_SIZE - length)
            out.append(_POOL_BYTES[start : start + length])
    return out


def usage_json(
    model: ModelInfo | None, prompt: int, completion: int, *, details: bool | None = None
) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if details if details is not None else (model is not None and model.prompt_tokens_details):
        usage["prompt_tokens_details"] = {"cached_tokens": 0}
    used = model.neurons(prompt, completion) if model is not None else None
    if used is not None:
        usage["neurons"] = used
    return usage


@dataclass(slots=True)
class Frame:
    data: str  # the event's data ("[DONE]" included)
    token: bool = False  # paced by the inter-token delay


def native_result(gen: Generation, model: ModelInfo) -> dict[str, Any]:
    result: dict[str, Any] = {"response": gen.text}
    if model.usage_in_output:
        result["usage"] = usage_json(model, gen.prompt_tokens, gen.completion_tokens)
    return result


def _native_token(token: str, rng: random.Random | None) -> str:
    if rng is None:
        return f'{{"response":{_string(token)}}}'
    return f'{{"response":{_string(token)},"p":"{padding(rng)}"}}'


def _native_tail(gen: Generation, model: ModelInfo, faults: StreamFaults) -> list[str]:
    tail = []
    if faults.empty_frame:
        tail.append('{"response":""}')
    if faults.usage_frame:
        usage = usage_json(model, gen.prompt_tokens, gen.completion_tokens)
        tail.append(dumps({"response": "", "usage": usage}))
    if faults.done:
        tail.append("[DONE]")
    return tail


def native_frames(gen: Generation, model: ModelInfo, faults: StreamFaults, rng: random.Random) -> list[Frame]:
    pad = rng if faults.padding else None
    frames = [Frame(_native_token(token, pad), token=True) for token in gen.tokens]
    frames.extend(Frame(data) for data in _native_tail(gen, model, faults))
    return frames


@functools.lru_cache(maxsize=1024)
def _token_events(tokens: tuple[str, ...]) -> tuple[bytes, ...]:
    """Each token's event up to its padding: ``data: {"response":"<token>","p":"``."""
    return tuple(f'data: {{"response":{_string(token)},"p":"'.encode() for token in tokens)


_EVENT_END = b'"}\n\n'


def plain_native_chunks(gen: Generation, model: ModelInfo, rng: random.Random) -> list[bytes]:
    """The events of a native stream without faults, one chunk each, in one pass (the common case).

    Only the padding differs between two answers with the same tokens, so the rest of each token's event
    is encoded once per token sequence (the per-event string formatting was the fake's largest cost)."""
    heads = _token_events(gen.tokens)
    chunks = [head + pad + _EVENT_END for head, pad in zip(heads, _paddings(rng, len(heads)), strict=True)]
    chunks.extend(f"data: {data}\n\n".encode() for data in _native_tail(gen, model, NO_FAULTS))
    return chunks


def plain_native_writes(
    gen: Generation, model: ModelInfo, rng: random.Random, *, token_delay: float, jitter: float
) -> list[Write]:
    """``plan_writes(native_frames(...))`` for a paced stream without faults."""
    writes = []
    for index, chunk in enumerate(plain_native_chunks(gen, model, rng)):
        delay = 0.0
        if 0 < index < gen.completion_tokens:
            delay = max(0.0, token_delay + rng.uniform(-jitter, jitter)) if jitter else token_delay
        writes.append(Write(chunk, delay))
    return writes


@dataclass(frozen=True, slots=True)
class ChatIdentity:
    id: str
    created: int
    model: str


def chat_completion(gen: Generation, model: ModelInfo, ident: ChatIdentity) -> dict[str, Any]:
    return {
        "choices": [
            {
                "finish_reason": gen.finish_reason,
                "index": 0,
                "logprobs": None,
                "message": {"content": gen.text, "role": "assistant"},
            }
        ],
        "created": ident.created,
        "id": ident.id,
        "model": ident.model,
        "object": "chat.completion",
        "usage": usage_json(model, gen.prompt_tokens, gen.completion_tokens),
    }


def chat_chunks(
    gen: Generation,
    model: ModelInfo,
    ident: ChatIdentity,
    faults: StreamFaults,
    rng: random.Random,
    *,
    include_usage: bool,
    chunk_usage: bool,
    pad: bool,
    cumulative_usage_chunk: bool,
    trailing_native_usage: bool,
) -> list[Frame]:
    def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None) -> str:
        doc: dict[str, Any] = {
            "choices": choices,
            "created": ident.created,
            "id": ident.id,
            "model": ident.model,
            "object": "chat.completion.chunk",
        }
        if pad and faults.padding:
            doc["p"] = padding(rng)
        if usage is not None:
            doc["usage"] = usage
        return dumps(doc)

    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"delta": delta, "finish_reason": finish, "index": 0, "logprobs": None, "matched_stop": None}

    def increment(prompt: int, completion: int) -> dict[str, Any] | None:
        return usage_json(model, prompt, completion) if chunk_usage else None

    frames = [
        Frame(
            chunk(
                [choice({"content": "", "reasoning_content": None, "role": "assistant"})],
                increment(gen.prompt_tokens, 0),
            )
        )
    ]
    for token in gen.tokens:
        frames.append(
            Frame(chunk([choice({"content": token, "reasoning_content": None})], increment(0, 1)), token=True)
        )
    frames.append(Frame(chunk([choice({"reasoning_content": None}, gen.finish_reason)], increment(0, 0))))
    if faults.usage_frame:
        if include_usage:
            if cumulative_usage_chunk:
                usage = usage_json(model, gen.prompt_tokens, gen.completion_tokens)
            else:
                usage = usage_json(model, 0, 1)
            frames.append(Frame(chunk([], usage)))
        if trailing_native_usage:
            usage = usage_json(model, gen.prompt_tokens, gen.completion_tokens)
            frames.append(Frame(dumps({"response": "", "usage": usage})))
    if faults.done:
        frames.append(Frame("[DONE]"))
    return frames


@dataclass(slots=True)
class Write:
    data: bytes
    delay: float = 0.0  # seconds before writing, already scaled
    cut_after: bool = False  # close the connection abruptly after this write


@dataclass(slots=True)
class _Piece:
    data: bytes
    delay: float
    event: bool


def _encode(data: str, eol: str) -> bytes:
    if eol == "\n" and "\n" not in data:
        return f"data: {data}\n\n".encode()
    return ("".join(f"data: {line}{eol}" for line in data.split("\n")) + eol).encode()


def plan_writes(
    frames: list[Frame],
    faults: StreamFaults,
    *,
    token_delay: float,
    jitter: float,
    rng: random.Random,
    scale: float = 1.0,
) -> list[Write]:
    """Frames to timed writes, with every scripted fault. ``token_delay`` and ``jitter`` are already
    scaled seconds; stall durations are scaled here by ``scale``."""
    if faults.plain:
        return _plain_writes(frames, token_delay, jitter, rng)
    eol = {"lf": "\n", "crlf": "\r\n", "cr": "\r"}[faults.line_ending]
    pieces: list[_Piece] = []
    keepalive = faults.keepalive
    comment = f": {keepalive.text}{eol}{eol}".encode() if keepalive else b""
    if keepalive:
        pieces.extend(_Piece(comment, 0.0, False) for _ in range(keepalive.before_first))
    stalls: dict[int, float] = {}
    for stall in faults.stall:
        stalls[stall.after_events] = stalls.get(stall.after_events, 0.0) + stall.seconds * scale
    # A stall at the event where the stream is cut happens before the cut (stall, then the connection
    # closes), rather than being lost with the events that were never sent.
    cut_events = faults.cut_after_events
    stall_at_cut = stalls.get(cut_events, 0.0) if cut_events is not None else 0.0
    events = 0

    def add_event(data: str, delay: float) -> None:
        nonlocal events
        delay += stalls.pop(events, 0.0)
        pieces.append(_Piece(_encode(data, eol), delay, True))
        events += 1
        if keepalive and keepalive.every_events and events % keepalive.every_events == 0:
            pieces.append(_Piece(comment, 0.0, False))

    error_frame, malformed = faults.error_frame, faults.malformed_frame
    first = True
    for frame in frames:
        if malformed is not None and events == malformed.after_events:
            add_event(malformed.data, 0.0)
            malformed = None
        if error_frame is not None and events == error_frame.after_events:
            data = error_frame.data or dumps(
                {"errors": [{"message": error_frame.message, "code": error_frame.code}]}
            )
            add_event(data, 0.0)
            break
        delay = 0.0
        if frame.token and not first:
            delay = max(0.0, token_delay + (rng.uniform(-jitter, jitter) if jitter else 0.0))
        first = False
        add_event(frame.data, delay)
    else:
        if malformed is not None and events == malformed.after_events:
            add_event(malformed.data, 0.0)
        if error_frame is not None and events == error_frame.after_events:
            data = error_frame.data or dumps(
                {"errors": [{"message": error_frame.message, "code": error_frame.code}]}
            )
            add_event(data, 0.0)
    trailing_stall = sum(stalls.values())

    cut_at: int | None = None
    offset = 0
    counted = 0
    for piece in pieces:
        offset += len(piece.data)
        if piece.event:
            counted += 1
            if faults.cut_after_events is not None and counted == faults.cut_after_events and cut_at is None:
                cut_at = offset
    if faults.cut_after_events == 0:
        cut_at = 0
    event_cut_at = cut_at
    if faults.cut_after_bytes is not None:
        cut_at = faults.cut_after_bytes if cut_at is None else min(cut_at, faults.cut_after_bytes)
    if cut_at != event_cut_at:
        stall_at_cut = 0.0

    writes = _group(pieces, faults)
    if trailing_stall:
        writes.append(Write(b"", trailing_stall))
    if cut_at is None:
        return writes
    out: list[Write] = []
    position = 0
    for write in writes:
        if position + len(write.data) >= cut_at:
            if cut_at > position:  # a write cut to nothing is not sent, nor waited for
                out.append(Write(write.data[: cut_at - position], write.delay))
            break
        out.append(write)
        position += len(write.data)
    if stall_at_cut:
        out.append(Write(b"", stall_at_cut))
    if out:
        last = out[-1]
        out[-1] = Write(last.data, last.delay, cut_after=True)
    else:
        out.append(Write(b"", 0.0, cut_after=True))
    return out


def _plain_writes(frames: list[Frame], token_delay: float, jitter: float, rng: random.Random) -> list[Write]:
    writes = []
    first = True
    for frame in frames:
        delay = 0.0
        if frame.token and not first and (token_delay or jitter):
            delay = max(0.0, token_delay + (rng.uniform(-jitter, jitter) if jitter else 0.0))
        first = False
        writes.append(Write(f"data: {frame.data}\n\n".encode(), delay))
    return writes


def _group(pieces: list[_Piece], faults: StreamFaults) -> list[Write]:
    plan = faults.writes
    writes: list[Write] = []
    if plan is not None and plan.coalesce is not None:
        size = plan.coalesce or len(pieces) or 1
        data, delay, events = bytearray(), 0.0, 0
        for piece in pieces:
            data.extend(piece.data)
            delay += piece.delay
            events += piece.event
            if events >= size:
                writes.append(Write(bytes(data), delay))
                data, delay, events = bytearray(), 0.0, 0
        if data:
            writes.append(Write(bytes(data), delay))
    else:
        writes = [Write(p.data, p.delay) for p in pieces]
    if plan is None or (plan.split_every is None and not plan.split_at):
        return writes
    cuts = set(plan.split_at)
    out: list[Write] = []
    position = 0
    for write in writes:
        start = 0
        delay = write.delay
        chunk = write.data
        boundaries = sorted(
            {c - position for c in cuts if position < c < position + len(chunk)}
            | (
                set(range(plan.split_every, len(chunk), plan.split_every))
                if plan.split_every is not None
                else set()
            )
        )
        for boundary in [*boundaries, len(chunk)]:
            out.append(Write(chunk[start:boundary], delay))
            delay = 0.0
            start = boundary
        position += len(chunk)
    return out


async def play(writes: list[Write]) -> AsyncIterator[bytes]:
    for write in writes:
        if write.delay > 0:
            await asyncio.sleep(write.delay)
        if write.data:
            yield write.data
        if write.cut_after:
            raise StreamCut
