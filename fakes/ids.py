"""Identifiers in Cloudflare's formats: ULID log ids, Workers AI request ids, chat completion ids.

Randomness comes from the caller's ``random.Random`` so that a seeded fake hands out the same ids for the
same sequence of requests; the time part of a ULID comes from the fake's clock.
"""

from __future__ import annotations

import random
import uuid

__all__ = ["completion_id", "request_uuid", "ulid"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(epoch_seconds: float, rng: random.Random) -> str:
    """A 26-character ULID: 48 bits of milliseconds since the epoch, then 80 random bits."""
    value = (int(epoch_seconds * 1000) & ((1 << 48) - 1)) << 80 | rng.getrandbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def request_uuid(rng: random.Random) -> str:
    """A version-4 UUID, as Workers AI sends in ``cf-ai-req-id``."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def completion_id(rng: random.Random) -> str:
    """32 lowercase hex digits, the id shape of Workers AI chat completions."""
    return f"{rng.getrandbits(128):032x}"
