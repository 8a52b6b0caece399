"""Deterministic model output: the same seed, model and input always give the same tokens.

Prompt tokens are estimated from the input text (about four characters a token, plus a chat-template
overhead per message), unless the behaviour fixes them. Completion text is drawn from a small vocabulary
with a generator seeded by a hash of (the fake's seed, model, input text, the request's ``seed``); its
length is the behaviour's ``tokens``, or a length chosen from the input, capped by the request's
``max_tokens`` (then ``finish_reason`` is ``length``).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from typing import Any

from fakes.behaviour import Outcome

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
    tokens: list[str]
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


def generate(
    seed: int, model: str, body: dict[str, Any], outcome: Outcome, max_tokens_default: int
) -> Generation:
    text, _ = input_text(body)
    key: list[object] = [seed, model, text]
    if isinstance(body.get("seed"), int):  # Workers AI's own seed input
        key.append(body["seed"])
    digest = hashlib.sha256(json.dumps(key).encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    limit = _max_tokens(body, max_tokens_default)
    if outcome.text is not None:
        tokens = _split_text(outcome.text)
    else:
        count = outcome.tokens if outcome.tokens is not None else 12 + rng.randrange(20)
        tokens = [" " + word for word in rng.choices(_WORDS, k=count)]
        if tokens:
            tokens[0] = tokens[0][1:]
        if tokens and outcome.tokens is None:
            tokens[-1] += "."
    finish = "stop"
    if len(tokens) > limit:
        tokens, finish = tokens[:limit], "length"
    prompt = outcome.prompt_tokens if outcome.prompt_tokens is not None else count_prompt_tokens(body)
    return Generation(tokens, prompt, finish)
