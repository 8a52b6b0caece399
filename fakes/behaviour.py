"""Scripted behaviour: what the fake's "model" does for each upstream call, declared as data.

A behaviour document (YAML or JSON; ``BehaviourDocument``)::

    default:                      # applies to every call, and is what rules' steps inherit from
      ttfb_ms: 120                # time to first byte
      token_delay_ms: 15          # between streamed tokens
      jitter_ms: 5                # +/- uniform, seeded
    rules:                        # first matching rule wins
      - match: {model: "@cf/meta/llama-3.1-8b-instruct-fp8-fast"}  # globs: model, gateway, path, ...
        script:                   # consumed in order, one step per call (per attempt, retries included)
          - {times: 2, error: out_of_capacity}                 # calls 1-2: 429 / 3040
          - {tokens: 40, stream: {cut_after_events: 5}}        # every later call (no "times": forever)
    models:                       # shorthand for rules matching one model exactly
      "@cf/openai/gpt-oss-20b":
        - {error: {code: 3007}}

A rule may also match the request itself (``match.body`` dotted paths, ``match.headers``,
``match.last_role``, ``match.roles``) and be scheduled (``from_s``/``until_s``: seconds since the document
was loaded, by the fake's clock, so a moved ``ManualClock`` moves the schedule).

A step, the default and the ``x-aigw-behaviour`` request header are all an ``Outcome``: unset fields
inherit (header over step over default over built-in). When a rule's steps are used up (every step has
``times``), the default applies. Counters restart on ``load`` and ``reset``.

Errors name a row of Cloudflare's tables by code or name (``error: 3040``, ``error: out_of_capacity``), may
override status and message, or give a raw ``body`` and ``status`` (a provider's own error passed through).
Stream faults (``stream:``) are listed on ``StreamFaults``.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aigw_fakes.datafiles import DataFileError, Problem, load_model, parse_model, validate_data
from aigw_fakes.hardened_http import JsonRefused, check_tree, loads_strict
from aigw_fakes.wire.errors import CloudflareError, ErrorRow, ErrorShape, error_row

__all__ = [
    "NO_FAULTS",
    "BehaviourController",
    "BehaviourDocument",
    "CallInfo",
    "Chosen",
    "ErrorFrame",
    "ErrorSpec",
    "Keepalive",
    "MalformedFrame",
    "Match",
    "Outcome",
    "RawResponse",
    "Rule",
    "Stall",
    "Step",
    "StreamFaults",
    "Writes",
]


MAX_DELAY_MS = 86_400_000.0
"""Delays are at most a day (of the fake's scaled time): a scripted delay is a fault to observe, not a way to
hang the fake for good."""
MAX_TOKENS = 262_144
"""Token counts are at most what any Workers AI model can emit in one answer."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _finite_and_valid(cls, value: object) -> object:
        # Whatever parsed the document (JSON, YAML, a mapping from Python): numbers finite and within
        # +/-2**64, strings valid Unicode, before anything is stored or sent.
        check_tree(value, max_depth=64)
        return value


class ErrorSpec(_Strict):
    """An error answered instead of the model's output, before any byte of a stream."""

    code: int | None = None
    name: str | None = None
    status: int | None = Field(default=None, ge=400, le=599)
    message: str | None = None
    body: str | dict[str, Any] | list[Any] | None = None
    """A raw body sent as is (a JSON value is serialised); requires ``status``."""
    content_type: str = "application/json"
    retry_after: int | str | None = None
    """A ``Retry-After`` header on the error: seconds, or an HTTP date as text."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return {"code": value}
        if isinstance(value, str):
            return {"code": int(value)} if value.isdigit() else {"name": value}
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.body is not None:
            if self.status is None:
                raise ValueError("a raw error body needs a status")
            return self
        if self.code is None and self.name is None:
            raise ValueError("give a code or name from Cloudflare's error tables, or a status and body")
        if self.name is not None and error_row(self.name) is None:
            raise ValueError(f"unknown error name {self.name!r}; use a code, or one of the documented names")
        if (
            self.code is not None
            and error_row(self.code) is None
            and (self.status is None or not self.message)
        ):
            raise ValueError(
                f"error code {self.code} is not in Cloudflare's tables: give status and message too"
            )
        return self

    def to_error(self, **detail: str) -> CloudflareError:
        row = error_row(self.name) if self.name is not None else error_row(self.code or 0)
        if row is None or (self.body is not None and self.code is None):
            # A code outside the tables (status and message given), or a raw provider body.
            shape = ErrorShape.WORKERS_AI
            row = ErrorRow(self.code or 0, self.status or 500, self.message or "", shape, "custom")
        if self.body is None:
            return CloudflareError(row, status=self.status, message=self.message, detail=detail)
        raw = self.body if isinstance(self.body, str) else json.dumps(self.body, separators=(",", ":"))
        return CloudflareError(
            row, status=self.status, body=raw.encode(), content_type=self.content_type, detail=detail
        )


class RawResponse(_Strict):
    """An answer sent exactly as given, well framed: for example a 200 whose body is not valid JSON."""

    status: int = Field(default=200, ge=100, le=599)
    body: str | dict[str, Any] | list[Any] = ""
    """Text sent as is; a JSON value is serialised."""
    content_type: str = "application/json"
    headers: dict[str, str] = Field(default_factory=dict)

    def body_bytes(self) -> bytes:
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, separators=(",", ":")).encode()


class Stall(_Strict):
    after_events: int = Field(default=0, ge=0)
    seconds: float = Field(gt=0, le=MAX_DELAY_MS / 1000)


class ErrorFrame(_Strict):
    """A ``data:`` event carrying an error, after which the stream ends (no usage frame, no ``[DONE]``)."""

    after_events: int = Field(default=0, ge=0)
    code: int = 3040
    message: str = "Capacity temporarily exceeded, please try again."
    data: str | None = None
    """The event's data as is, instead of ``{"errors":[{"message","code"}]}``."""


class MalformedFrame(_Strict):
    after_events: int = Field(default=0, ge=0)
    data: str = '{"response":"'


class Keepalive(_Strict):
    before_first: int = Field(default=0, ge=0)
    """Comment lines written before the first event (after the time to first byte)."""
    every_events: int | None = Field(default=None, ge=1)
    text: str = "keep-alive"


class Writes(_Strict):
    """How the stream's bytes are grouped into socket writes (default: one write per event)."""

    coalesce: int | None = Field(default=None, ge=0)
    """Events per write; 0 writes the whole stream at once (after the last delay)."""
    split_every: int | None = Field(default=None, ge=1)
    """Write at most this many bytes at a time."""
    split_at: list[int] = Field(default_factory=list)
    """Byte offsets in the stream where a write must end."""


class StreamFaults(_Strict):
    """Faults and framing choices for streamed responses (``cut_after_bytes`` applies to any body)."""

    cut_after_events: int | None = Field(default=None, ge=0)
    """Close the connection abruptly after this many events (no usage frame, no ``[DONE]``)."""
    cut_after_bytes: int | None = Field(default=None, ge=0)
    stall: list[Stall] = Field(default_factory=list)
    malformed_frame: MalformedFrame | None = None
    error_frame: ErrorFrame | None = None
    usage_frame: bool = True
    done: bool = True
    empty_frame: bool = True
    padding: bool = True
    keepalive: Keepalive | None = None
    line_ending: Literal["lf", "crlf", "cr"] = "lf"
    writes: Writes | None = None

    @property
    def plain(self) -> bool:
        """No fault and no framing choice set: the stream exactly as Cloudflare sends it."""
        return not self.model_fields_set or self == NO_FAULTS

    @model_validator(mode="before")
    @classmethod
    def _one_stall(cls, value: object) -> object:
        if isinstance(value, dict) and isinstance(value.get("stall"), dict):
            return {**value, "stall": [value["stall"]]}
        return value


NO_FAULTS = StreamFaults()
"""The stream exactly as Cloudflare sends it."""


class Outcome(_Strict):
    """What one call does. Unset fields inherit; see the module docstring."""

    ttfb_ms: float = Field(default=0.0, ge=0, le=MAX_DELAY_MS)
    token_delay_ms: float = Field(default=0.0, ge=0, le=MAX_DELAY_MS)
    jitter_ms: float = Field(default=0.0, ge=0, le=MAX_DELAY_MS)
    tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    """Completion tokens; default: a length chosen from the input, capped by the request's max_tokens."""
    prompt_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    text: str | None = None
    """The completion text (split into tokens at word boundaries) instead of generated text."""

    @field_validator("text")
    @classmethod
    def _encodable(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(f"text must be valid Unicode (a lone surrogate at {exc.start})") from None
        return value

    error: ErrorSpec | None = None
    stream: StreamFaults = Field(default_factory=StreamFaults)
    reset_before_head: bool = False
    """Reset the connection (TCP RST) after the time to first byte, before any byte of the response."""
    stall_after_head_ms: float = Field(default=0.0, ge=0)
    """Send the status and headers, then wait this long before the first byte of the body (any body)."""
    raw_response: RawResponse | None = None
    """Answer with exactly this instead of the model's output (after the time to first byte)."""


class Step(Outcome):
    times: int | None = Field(default=None, ge=1)
    """How many calls this step answers; unset on the last step means every later call."""


_MISSING = object()


def _at(document: object, path: str) -> object:
    """The value at a dotted path (``messages.-1.role``); ``_MISSING`` when there is none."""
    value = document
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _value_matches(expected: object, actual: object) -> bool:
    if actual is _MISSING:
        return False
    if isinstance(expected, str) and isinstance(actual, str):
        return fnmatch.fnmatchcase(actual, expected)
    if isinstance(expected, bool) != isinstance(actual, bool):  # true is not 1
        return False
    return expected == actual


class Match(_Strict):
    model: str | None = None
    gateway: str | None = None
    account: str | None = None
    provider: str | None = None
    path: str | None = None
    stream: bool | None = None
    body: dict[str, Any] = Field(default_factory=dict)
    """Dotted paths into the request body (the binding's ``inputs``) and the value each must have; strings
    are globs, other values compare exactly (``{"max_tokens": 64, "messages.0.role": "system"}``)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Request header names (any case) and globs their values must match."""
    last_role: str | None = None
    """Glob for the role of the last message (``assistant``: a request carrying an assistant prefill)."""
    roles: list[str] = Field(default_factory=list)
    """Roles that must each appear among the messages."""

    def matches(self, call: CallInfo) -> bool:
        for pattern, value in (
            (self.model, call.model),
            (self.gateway, call.gateway_id),
            (self.account, call.account_id),
            (self.provider, call.provider),
            (self.path, call.path),
        ):
            if pattern is not None and (value is None or not fnmatch.fnmatchcase(value, pattern)):
                return False
        if self.stream is not None and self.stream != call.stream:
            return False
        return self._request_matches(call)

    def _request_matches(self, call: CallInfo) -> bool:
        if not (self.body or self.headers or self.last_role is not None or self.roles):
            return True
        body = call.body or {}
        for path, expected in self.body.items():
            if not _value_matches(expected, _at(body, path)):
                return False
        headers = call.headers or {}
        for name, pattern in self.headers.items():
            value = headers.get(name.lower())
            if value is None or not fnmatch.fnmatchcase(value, pattern):
                return False
        messages = body.get("messages")
        roles = (
            [m.get("role") for m in messages if isinstance(m, Mapping)] if isinstance(messages, list) else []
        )
        if self.last_role is not None:
            last = roles[-1] if roles else None
            if not isinstance(last, str) or not fnmatch.fnmatchcase(last, self.last_role):
                return False
        return all(role in roles for role in self.roles)


class Rule(_Strict):
    match: Match = Field(default_factory=Match)
    script: list[Step] = Field(min_length=1)
    from_s: float | None = Field(default=None, ge=0)
    """The rule applies from this many seconds after the document was loaded (the fake's clock)."""
    until_s: float | None = Field(default=None, ge=0)
    """... and until this many seconds after (exclusive); calls outside the window skip the rule."""

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.from_s is not None and self.until_s is not None and self.until_s <= self.from_s:
            raise ValueError(f"until_s ({self.until_s}) must be later than from_s ({self.from_s})")
        return self

    def active(self, elapsed: float) -> bool:
        return (self.from_s is None or elapsed >= self.from_s) and (
            self.until_s is None or elapsed < self.until_s
        )


class BehaviourDocument(_Strict):
    seed: int | None = None
    """Overrides the fake's seed for generated text, padding and jitter while this document is loaded."""
    default: Outcome = Field(default_factory=Outcome)
    rules: list[Rule] = Field(default_factory=list)
    models: dict[str, list[Step]] = Field(default_factory=dict)

    def all_rules(self) -> list[Rule]:
        return self.rules + [Rule(match=Match(model=m), script=steps) for m, steps in self.models.items()]


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What a rule can match on: one upstream call."""

    model: str
    provider: str = "workers-ai"
    gateway_id: str | None = None
    account_id: str | None = None
    path: str | None = None
    stream: bool = False
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None  # lowercase names (or a case-insensitive mapping)


@dataclass(frozen=True, slots=True)
class Chosen:
    outcome: Outcome
    label: str  # "default", "rule 0 step 1 (call 2)", "header", "rule 0 step 0 (call 1) + header"


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def merge(base: Outcome, top: Outcome) -> Outcome:
    """``top``'s explicitly set fields over ``base``."""
    data = _deep_merge(
        base.model_dump(exclude_unset=True), top.model_dump(exclude_unset=True, exclude={"times"})
    )
    return Outcome.model_validate(data)


class BehaviourController:
    """Holds the loaded document and the per-rule call counters."""

    def __init__(
        self, initial: BehaviourDocument | None = None, clock: Callable[[], float] | None = None
    ) -> None:
        self._clock = clock or (lambda: 0.0)
        self._loaded_at = 0.0
        self._initial = initial or BehaviourDocument()
        self._document = self._initial
        self._rules: list[Rule] = []
        self._counts: list[int] = []
        self._merged: dict[tuple[int, int], Outcome] = {}
        self._install(self._initial)

    @property
    def document(self) -> BehaviourDocument:
        return self._document

    @property
    def calls(self) -> list[int]:
        """Calls each rule (in ``all_rules()`` order) has answered since the last load or reset."""
        return list(self._counts)

    def load(self, document: BehaviourDocument | Mapping[str, Any] | str | Path) -> None:
        """Replace the document: a model, a mapping, a YAML/JSON file path, or YAML/JSON text (str)."""
        self._install(parse_document(document))

    def reset(self) -> None:
        """Back to the document the fake started with, counters at zero."""
        self._install(self._initial)

    def _install(self, document: BehaviourDocument) -> None:
        self._document = document
        self._loaded_at = self._clock()
        self._rules = document.all_rules()
        self._counts = [0] * len(self._rules)
        self._merged = {}

    def choose(self, call: CallInfo, override: Outcome | None = None) -> Chosen:
        default = self._document.default
        elapsed = self._clock() - self._loaded_at
        for index, rule in enumerate(self._rules):
            if not rule.active(elapsed) or not rule.match.matches(call):
                continue
            self._counts[index] += 1
            number = self._counts[index]
            step_index = _step_for(rule.script, number)
            if step_index is None:
                break
            key = (index, step_index)
            outcome = self._merged.get(key)
            if outcome is None:
                outcome = self._merged[key] = merge(default, rule.script[step_index])
            label = f"rule {index} step {step_index} (call {number})"
            if override is not None:
                return Chosen(merge(outcome, override), f"{label} + header")
            return Chosen(outcome, label)
        if override is not None:
            return Chosen(merge(default, override), "header")
        return Chosen(default, "default")


def _step_for(script: list[Step], number: int) -> int | None:
    seen = 0
    for index, step in enumerate(script):
        if step.times is None:
            return index
        seen += step.times
        if number <= seen:
            return index
    return None


def parse_document(document: BehaviourDocument | Mapping[str, Any] | str | Path) -> BehaviourDocument:
    if isinstance(document, BehaviourDocument):
        return document
    if isinstance(document, Path):
        return load_model(document, BehaviourDocument)
    if isinstance(document, str):
        return _parse_text(document, BehaviourDocument, "<behaviour document>")
    return validate_data(dict(document), BehaviourDocument, "<behaviour document>")


def parse_outcome(text: str, source: str = "x-aigw-behaviour header") -> Outcome:
    return _parse_text(text, Outcome, source)


def _parse_text[M: BaseModel](text: str, model: type[M], source: str) -> M:
    # JSON first: YAML would read a JSON surrogate pair ("\ud83d\ude80") as two lone surrogates.
    try:
        data = loads_strict(text, max_depth=64, surrogates="refuse")
    except JsonRefused as exc:
        raise DataFileError(source, [Problem("", f"not acceptable JSON: {exc}")]) from None
    except ValueError:
        try:
            return parse_model(text, model, source)
        except DataFileError:
            raise
        except (yaml.YAMLError, ValueError, TypeError, RecursionError, OverflowError) as exc:
            # Whatever the YAML parser meets that it does not report itself is still the document's fault.
            raise DataFileError(source, [Problem("", f"cannot be parsed: {_short(exc)}")]) from None
    return validate_data(data, model, source)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
