"""Identifiers in Cloudflare's formats: ULID log ids, Workers AI request ids, chat completion ids.

Randomness comes from the caller's ``random.Random`` so that a seeded fake hands out the same ids for the
same sequence of requests; the time part of a ULID comes from the fake's clock.
"""

from __future__ import annotations

import base64
import random
import uuid

__all__ = ["completion_id", "request_uuid", "ulid"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD)


def ulid(epoch_seconds: float, rng: random.Random) -> str:
    """A 26-character ULID: 48 bits of milliseconds since the epoch, then 80 random bits."""
    value = (int(epoch_seconds * 1000) & ((1 << 48) - 1)) << 80 | rng.getrandbits(80)
    # 160 bits encode to 32 base-32 characters; the 26 last ones hold the 128-bit value.
    return base64.b32encode(value.to_bytes(20, "big")).decode("ascii")[6:].translate(_TO_CROCKFORD)


def request_uuid(rng: random.Random) -> str:
    """A version-4 UUID, as Workers AI sends in ``cf-ai-req-id``."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def completion_id(rng: random.Random) -> str:
    """32 lowercase hex digits, the id shape of Workers AI chat completions."""
    return f"{rng.getrandbits(128):032x}"
