"""Secret redaction for everything that leaves a process: cassettes, reports, logs and error messages.

A ``Redactor`` knows two kinds of secret:

- header names whose values are always credentials (``authorization``, ``cf-aig-authorization``, ...);
- secret *values* (an API token, a gateway token, an account id where asked), wherever they occur: in a
  URL path, a query string, a JSON body, an exception message.

Values are replaced by a fixed marker naming the secret (``[REDACTED:CLOUDFLARE_API_TOKEN]``), so that a
recording stays readable and a replay can still tell two secrets apart. Redaction works on text and on
bytes; it never raises on undecodable bytes. It must not decide *which* values are secret: callers say so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["CREDENTIAL_HEADERS", "DEFAULT_SECRET_ENV", "MIN_SECRET_LENGTH", "Redactor", "marker"]

DEFAULT_SECRET_ENV = ("CLOUDFLARE_API_TOKEN", "AIGW_GATEWAY_TOKEN", "CLOUDFLARE_ACCOUNT_ID")
"""Environment variables whose values are secrets, redacted from cassettes unless told otherwise."""

CREDENTIAL_HEADERS: frozenset[str] = frozenset(
    {
        "authorization",
        "cf-aig-authorization",
        "proxy-authorization",
        "x-api-key",
        "x-auth-key",
        "x-auth-email",
        "cookie",
        "set-cookie",
    }
)
"""Headers whose values are credentials whatever they hold (compared lower-case)."""

MIN_SECRET_LENGTH = 6
"""Shorter values are refused as secrets: masking ``"1"`` everywhere would destroy a recording."""


def marker(name: str) -> str:
    return f"[REDACTED:{name}]"


@dataclass
class Redactor:
    """Replaces known secret values and credential headers. Immutable in use: build it, then share it."""

    secrets: dict[str, str] = field(default_factory=dict)  # name -> value
    headers: frozenset[str] = CREDENTIAL_HEADERS
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False)
    _bytes_pattern: re.Pattern[bytes] | None = field(default=None, init=False, repr=False)
    _by_value: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.headers = frozenset(h.lower() for h in self.headers)
        for name, value in list(self.secrets.items()):
            self._check(name, value)
        self._compile()

    def __repr__(self) -> str:  # never show the values, even in a debugger or a traceback
        return f"Redactor(secrets={sorted(self.secrets)}, headers={sorted(self.headers)})"

    @classmethod
    def from_environment(cls, names: Iterable[str], environ: Mapping[str, str]) -> Redactor:
        """Secrets from environment variables; unset or empty ones are skipped."""
        return cls({name: environ[name] for name in names if environ.get(name)})

    def add(self, name: str, value: str) -> None:
        self._check(name, value)
        self.secrets[name] = value
        self._compile()

    def text(self, value: str) -> str:
        if self._pattern is None or not value:
            return value
        return self._pattern.sub(lambda m: marker(self._by_value[m.group(0)]), value)

    def data(self, value: bytes) -> bytes:
        """Bytes in, bytes out; secrets are matched on their UTF-8 encoding."""
        if self._bytes_pattern is None or not value:
            return value
        return self._bytes_pattern.sub(lambda m: marker(self._by_value[m.group(0).decode()]).encode(), value)

    def header_value(self, name: str, value: str) -> str:
        if name.lower() in self.headers:
            scheme, _, rest = value.partition(" ")
            # Keep the scheme ("Bearer") so that a reader can tell a missing token from a redacted one.
            if rest and scheme.isalpha() and len(scheme) <= 16:
                return f"{scheme} {marker(name.lower())}"
            return marker(name.lower())
        return self.text(value)

    def header_items(self, items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(name, self.header_value(name, value)) for name, value in items]

    def contains_secret(self, value: str | bytes) -> bool:
        """True when any secret value occurs in ``value``: the check tests and writers rely on."""
        raw = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        return any(secret in raw for secret in self._by_value)

    def _check(self, name: str, value: str) -> None:
        if len(value) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"secret {name} is too short to redact safely ({len(value)} characters; "
                f"at least {MIN_SECRET_LENGTH} needed)"
            )

    def _compile(self) -> None:
        self._by_value = {value: name for name, value in self.secrets.items()}
        if not self._by_value:
            self._pattern = None
            self._bytes_pattern = None
            return
        # Longest first, so that a secret containing another is replaced whole.
        ordered = sorted(self._by_value, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
        self._bytes_pattern = re.compile(b"|".join(re.escape(v.encode()) for v in ordered))
