"""Identifiers in Cloudflare's formats: gateway log ids, Workers AI request ids, chat completion ids.

Gateway log and request ids are lowercase UUIDv7 since 2026-10-08 (AI Gateway changelog, "log IDs and
request IDs now use UUIDv7"); before that, log ids were 26-character ULIDs and request ids random UUIDs
(``FidelityOptions.log_ids = "ulid"`` keeps that). Randomness comes from the caller's ``random.Random`` so
that a seeded fake hands out the same ids for the same sequence of requests; the time part of a ULID or a
UUIDv7 comes from the fake's clock.
"""

from __future__ import annotations

import base64
import random
import uuid

__all__ = ["completion_id", "request_uuid", "ulid", "uuid7"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD)


def ulid(epoch_seconds: float, rng: random.Random) -> str:
    """A 26-character ULID: 48 bits of milliseconds since the epoch, then 80 random bits."""
    value = (int(epoch_seconds * 1000) & ((1 << 48) - 1)) << 80 | rng.getrandbits(80)
    # 160 bits encode to 32 base-32 characters; the 26 last ones hold the 128-bit value.
    return base64.b32encode(value.to_bytes(20, "big")).decode("ascii")[6:].translate(_TO_CROCKFORD)


def uuid7(epoch_seconds: float, rng: random.Random) -> str:
    """A lowercase version-7 UUID: 48 bits of milliseconds since the epoch, version, 74 random bits."""
    millis = int(epoch_seconds * 1000) & ((1 << 48) - 1)
    value = millis << 80 | 0x7 << 76 | rng.getrandbits(12) << 64 | 0b10 << 62 | rng.getrandbits(62)
    return str(uuid.UUID(int=value))


def request_uuid(rng: random.Random) -> str:
    """A version-4 UUID, as Workers AI sends in ``cf-ai-req-id``."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def completion_id(rng: random.Random) -> str:
    """32 lowercase hex digits, the id shape of Workers AI chat completions."""
    return f"{rng.getrandbits(128):032x}"
