"""Deterministic model output: the same seed, model and input always give the same tokens.

Prompt tokens are estimated from the input text (about four characters a token, plus a chat-template
overhead per message), unless the behaviour fixes them. Completion text is drawn from a small vocabulary
with a generator seeded by a hash of (the fake's seed, model, input text, the request's ``seed``); its
length is the behaviour's ``tokens``, or a length chosen from the input, capped by the request's
``max_tokens`` (then ``finish_reason`` is ``length``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
from dataclasses import dataclass
from typing import Any

from aigw_fakes.behaviour import Outcome

__all__ = ["Generation", "count_prompt_tokens", "generate", "input_text"]

_WORDS = (
    "the",
    "gateway",
    "routes",
    "each",
    "request",
    "to",
    "a",
    "model",
    "and",
    "streams",
    "tokens",
    "back",
    "while",
    "client",
    "reads",
    "them",
    "cloudflare",
    "workers",
    "run",
    "close",
    "users",
    "so",
    "latency",
    "stays",
    "low",
    "budgets",
    "are",
    "checked",
    "before",
    "work",
    "starts",
    "fallback",
    "answers",
    "when",
    "primary",
    "is",
    "busy",
    "usage",
    "counted",
    "in",
    "neurons",
    "logs",
    "keep",
    "metadata",
    "for",
    "every",
    "tenant",
    "session",
    "route",
)

TEMPLATE_TOKENS = 24  # system prompt and chat template a Workers AI model wraps around the input
PER_MESSAGE_TOKENS = 4


@dataclass(frozen=True, slots=True)
class Generation:
    tokens: tuple[str, ...]
    prompt_tokens: int
    finish_reason: str  # "stop" or "length"

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def completion_tokens(self) -> int:
        return len(self.tokens)


def input_text(body: dict[str, Any]) -> tuple[str, int]:
    """The input's text and its number of messages (a prompt counts as one)."""
    if isinstance(body.get("prompt"), str):
        return body["prompt"], 1
    messages = body.get("messages")
    if not isinstance(messages, list):
        return "", 0
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "\n".join(parts), len(messages)


def count_prompt_tokens(body: dict[str, Any]) -> int:
    text, messages = input_text(body)
    return TEMPLATE_TOKENS + PER_MESSAGE_TOKENS * messages + (len(text) + 3) // 4


def _max_tokens(body: dict[str, Any], default: int) -> int:
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return default


def _split_text(text: str) -> list[str]:
    return re.findall(r"\s*\S+|\s+$", text) if text else []


_CACHED_TEXT_CHARS = 4096
"""Inputs up to this long are remembered (with their output): a load test repeats the same request, and
the hash, JSON and word draws were a fifth of the fake's own time per request."""


def generate(
    seed: int, model: str, body: dict[str, Any], outcome: Outcome, max_tokens_default: int
) -> Generation:
    text, messages = input_text(body)
    body_seed = body.get("seed")  # Workers AI's own seed input
    args = (
        seed,
        model,
        text,
        messages,
        body_seed if isinstance(body_seed, int) else None,
        _max_tokens(body, max_tokens_default),
        outcome.text,
        outcome.tokens,
        outcome.prompt_tokens,
    )
    if len(text) <= _CACHED_TEXT_CHARS and (outcome.text is None or len(outcome.text) <= _CACHED_TEXT_CHARS):
        return _generate_cached(*args)
    return _generate(*args)


@functools.lru_cache(maxsize=1024, typed=True)  # typed: a body seed of true is not a seed of 1
def _generate_cached(*args: Any) -> Generation:
    return _generate(*args)


def _generate(
    seed: int,
    model: str,
    text: str,
    messages: int,
    body_seed: int | None,
    limit: int,
    fixed_text: str | None,
    fixed_tokens: int | None,
    fixed_prompt_tokens: int | None,
) -> Generation:
    key: list[object] = [seed, model, text]
    if body_seed is not None:
        key.append(body_seed)
    digest = hashlib.sha256(json.dumps(key).encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    if fixed_text is not None:
        tokens = _split_text(fixed_text)
    else:
        count = fixed_tokens if fixed_tokens is not None else 12 + rng.randrange(20)
        tokens = [" " + word for word in rng.choices(_WORDS, k=count)]
        if tokens:
            tokens[0] = tokens[0][1:]
        if tokens and fixed_tokens is None:
            tokens[-1] += "."
    finish = "stop"
    if len(tokens) > limit:
        tokens, finish = tokens[:limit], "length"
    if fixed_prompt_tokens is not None:
        prompt = fixed_prompt_tokens
    else:
        prompt = TEMPLATE_TOKENS + PER_MESSAGE_TOKENS * messages + (len(text) + 3) // 4
    return Generation(tuple(tokens), prompt, finish)
