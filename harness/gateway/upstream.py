"""The upstream side: one call to AI Gateway's Workers AI endpoint per attempt, as the binding makes it.

``POST {base}/v1/{account_id}/{gateway_id}/workers-ai/{model}`` with ``{"messages": [...]}`` and, for a
stream, ``"stream": true`` in the body (Workers AI streams on the input, not on an option). Headers:
``authorization`` (the Cloudflare API token), ``cf-aig-authorization`` (only for an authenticated gateway),
``cf-aig-metadata`` (at most five entries, ``tenantId`` always among them) and ``cf-aig-event-id``.

An attempt is described by one value, ``UpstreamRequest``, and bounded by ``AttemptLimits`` (response
head, first token, between events, the attempt as a whole, the request's deadline). ``UpstreamClient.open``
sends it and yields an ``UpstreamAnswer`` whose ``batches()`` are the frames each read completed; a JSON
answer (to a non-streamed request, or to a streamed one) is one frame. Streamed and JSON answers are read
by the same code, so that the attempt loop above does not care which it asked for.

An answer is complete when it ends with ``[DONE]``, a finish reason, or the cumulative usage frame that
Workers AI sends after the last token: a stream whose connection closes after its usage frame has said
everything. Malformed frames are skipped and counted, or fail the attempt (``malformed="fail"``).

Failures become ``UpstreamError`` carrying an ``ErrorClass``, the HTTP status, Cloudflare's code and
message, the gateway log id and any ``Retry-After``; the fallback policy decides on the class. Leaving the
``open`` context closes the connection at once, which is how a client disconnect cancels the upstream.
Credentials never appear in errors or reprs.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import json
import math
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import quote

import httpx

from aigw_harness.gateway.tokens import (
    Frame,
    extract_text,
    interpret_event,
    usage_from_mapping,
    valid_unicode,
)
from aigw_harness.gateway.wire import WireError, WirePool, WireResponse
from aigw_harness.sse import ServerSentEvent, SSEDecoder

__all__ = [
    "DEFAULT_FALLBACK_CLASSES",
    "METADATA_LIMIT",
    "AttemptLimits",
    "ChatMessage",
    "ErrorClass",
    "MalformedFrames",
    "UpstreamAnswer",
    "UpstreamClient",
    "UpstreamError",
    "UpstreamRequest",
    "classify_error",
    "gateway_metadata",
    "retry_after_seconds",
]

METADATA_LIMIT = 5  # AI Gateway keeps the first five cf-aig-metadata entries
_DRAIN_SECONDS = 0.1

MalformedFrames = Literal["skip", "fail"]


class ErrorClass(StrEnum):
    INPUT = "input"  # the request itself is bad (400/413/422): another model fails the same way
    CONTEXT_LENGTH = "context_length"  # the conversation does not fit the model's context window
    CONTENT_FILTER = "content_filter"  # the model or a guardrail refused the content
    MODEL = "model"  # this model is missing, invalid or not available to the account (404, 403, 5007)
    AUTH = "auth"  # credentials or billing (401, 402): the fallback uses the same ones
    GATEWAY = "gateway"  # the gateway refused its own configuration (2001 no such gateway, 2040 no BYOK key)
    RATE_LIMITED = "rate_limited"  # 429: capacity, gateway rate limit, spend limit, neuron allocation
    SERVER = "server"  # 5xx
    TIMEOUT = "timeout"  # 408, or no response head / first token / event in time
    CONNECTION = "connection"  # could not connect, or the connection broke
    STREAM = "stream"  # an error frame, a malformed frame, or a stream that ended before it was complete


DEFAULT_FALLBACK_CLASSES = frozenset(
    {
        ErrorClass.CONTEXT_LENGTH,
        ErrorClass.MODEL,
        ErrorClass.RATE_LIMITED,
        ErrorClass.SERVER,
        ErrorClass.TIMEOUT,
        ErrorClass.CONNECTION,
        ErrorClass.STREAM,
    }
)

# Workers AI codes that name a model problem although they come with 400.
_MODEL_CODES = frozenset({5007, 3042, 5016, 5018, 3041, 5035})
_CONTENT_FILTER_CODES = frozenset({8007})
# Providers word these differently and Workers AI has no documented code for them, so the words decide.
_CONTEXT_WORDS = re.compile(
    r"context (length|window)|maximum context|too many (input )?tokens|(prompt|input) is too long"
    r"|exceeds? the (model'?s? )?(context|maximum)",
    re.IGNORECASE,
)
# Cloudflare's router answers a model path it cannot route (an impossible model id) with 400 7000/7003.
_NO_ROUTE = re.compile(r"Could not route to |No route for that URI")
_FILTER_WORDS = re.compile(r"nsfw|content (filter|policy)|flagged|guardrail|unsafe content", re.IGNORECASE)


def classify_error(status: int, code: int | None, message: str = "") -> ErrorClass:
    if status == 400 and code is not None and 2000 <= code < 3000:
        return ErrorClass.GATEWAY  # AI Gateway's own codes: every model through this gateway fails alike
    if code in _CONTENT_FILTER_CODES or (status < 500 and _FILTER_WORDS.search(message)):
        return ErrorClass.CONTENT_FILTER
    if status in (400, 413, 422) and _CONTEXT_WORDS.search(message):
        return ErrorClass.CONTEXT_LENGTH
    if code in _MODEL_CODES or status in (403, 404) or _NO_ROUTE.match(message):
        return ErrorClass.MODEL
    if status in (401, 402):
        return ErrorClass.AUTH
    if status == 408:
        return ErrorClass.TIMEOUT
    if status == 429:
        return ErrorClass.RATE_LIMITED
    if status >= 500:
        return ErrorClass.SERVER
    return ErrorClass.INPUT


def retry_after_seconds(value: str | None, now_epoch: float) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; ``None`` when absent or invalid."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now_epoch
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class UpstreamError(Exception):
    def __init__(
        self,
        error_class: ErrorClass,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        log_id: str | None = None,
        request_id: str | None = None,
        truncated: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.error_class = error_class
        self.truncated = truncated
        self.message = message
        self.status = status
        self.code = code
        self.log_id = log_id
        self.request_id = request_id
        self.retry_after = retry_after
        prefix = f"{code}: " if code is not None else ""
        status_text = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"{error_class.value}: {prefix}{message}{status_text}")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """One attempt's call: where it goes and what it says. ``for_model`` gives the next candidate's."""

    account_id: str
    gateway_id: str
    model: str
    messages: Sequence[ChatMessage]
    metadata: Mapping[str, str]
    event_id: str
    stream: bool

    def for_model(self, model: str) -> UpstreamRequest:
        return self if model == self.model else replace(self, model=model)


@dataclass(frozen=True, slots=True)
class AttemptLimits:
    """Time limits of one attempt, in seconds; ``deadline`` is the request's, in loop time."""

    first_byte: float | None = 30.0
    first_token: float | None = None
    between_events: float | None = 30.0
    attempt: float | None = None
    deadline: float | None = None

    def started(self, now: float) -> _Clock:
        ends = [t for t in (self.deadline, now + self.attempt if self.attempt else None) if t is not None]
        first_token = now + self.first_token if self.first_token is not None else None
        return _Clock(min(ends) if ends else None, first_token, self.between_events)


@dataclass(frozen=True, slots=True)
class _Clock:
    """Absolute limits of an attempt that has started (loop time)."""

    ends: float | None
    first_token: float | None
    between: float | None

    def wait(self, now: float, *, token_seen: bool) -> tuple[float | None, str]:
        """How long the next read may take, and what is exceeded when it takes longer."""
        best: tuple[float | None, str] = (self.between, "no stream event within the between-events timeout")
        candidates: list[tuple[float, str]] = []
        if self.ends is not None:
            candidates.append((self.ends - now, "the attempt or request deadline passed"))
        if self.first_token is not None and not token_seen:
            candidates.append((self.first_token - now, "no token within the first-token timeout"))
        for limit, reason in candidates:
            if best[0] is None or limit < best[0]:
                best = (max(0.0, limit), reason)
        return best


class _ReadLimit:
    """The time limit of the read in progress, kept on one timer for a whole answer.

    ``asyncio.timeout`` around each read arms a timer and cancels it again for every read of a stream. Here
    the timer stays armed while reads come in time; when it fires and the limit has moved on meanwhile, it
    is armed again for the new limit. Only a read in progress can expire: between reads (while the frames
    read are being written to the client) the limit is disarmed. Expiry cancels the reading task, and
    ``expired`` tells that cancellation from any other, as ``asyncio.timeout`` does."""

    __slots__ = ("_cancelling", "_fired", "_handle", "_loop", "_scheduled", "_task", "_when")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - an async generator is always driven by a task here
            raise RuntimeError("a read limit needs a task to cancel")
        self._loop = loop
        self._task = task
        self._cancelling = task.cancelling()
        self._when: float | None = None  # the limit of the read in progress; None: no limit, or no read
        self._handle: asyncio.TimerHandle | None = None
        self._scheduled = 0.0  # when the handle fires (uvloop's handles do not tell)
        self._fired = False

    def arm(self, when: float | None) -> None:
        self._when = when
        if when is None or (self._handle is not None and self._scheduled <= when):
            return  # a timer that fires no later than the limit checks it then
        if self._handle is not None:
            self._handle.cancel()
        self._schedule(when)

    def disarm(self) -> None:
        self._when = None

    def expired(self) -> bool:
        """Whether the cancellation being handled is this limit's (it is then taken back)."""
        if not self._fired:
            return False
        self._fired = False
        return self._task.uncancel() <= self._cancelling

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self, when: float) -> None:
        self._scheduled = when
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        when = self._when
        if when is None:
            return  # no read in progress: the next one arms the timer again
        if when > self._scheduled:
            self._schedule(when)  # reads came in time and moved the limit on
            return
        self._fired = True
        self._task.cancel()


def gateway_metadata(entries: Mapping[str, object], tenant_id: str) -> tuple[dict[str, str], list[str]]:
    """``cf-aig-metadata`` as the platform builds it, but never losing ``tenantId`` to the five-entry limit.

    Non-empty string values are kept in order and ``tenantId`` is set (overriding a caller's value, keeping
    its position if the caller named it, else last). When that makes more than five entries, the caller's
    entries after the fourth are dropped here, so that ``tenantId`` is among the five the gateway keeps.
    Returns the metadata and the names of dropped entries.
    """
    cleaned: dict[str, str] = {k: v for k, v in entries.items() if isinstance(v, str) and v}
    cleaned["tenantId"] = tenant_id
    if len(cleaned) <= METADATA_LIMIT:
        return cleaned, []
    others = [k for k in cleaned if k != "tenantId"]
    keep = set(others[: METADATA_LIMIT - 1]) | {"tenantId"}
    return {k: v for k, v in cleaned.items() if k in keep}, [k for k in cleaned if k not in keep]


# One encoder each, made once: json.dumps with options builds a new encoder on every call.
_ASCII_JSON = json.JSONEncoder(separators=(",", ":"))
_UTF8_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

Response = httpx.Response | WireResponse
_BROKEN = (httpx.HTTPError, WireError)


def _error_from_response(response: Response, body: bytes, now_epoch: float) -> UpstreamError:
    status = response.status_code
    code: int | None = None
    message = ""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, Mapping):
        errors = payload.get("error", payload.get("errors"))
        if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
            raw_code = errors[0].get("code")
            code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
            message = str(errors[0].get("message", ""))
        elif isinstance(errors, Mapping):  # OpenAI-style {"error": {"message", "code"}}
            message = str(errors.get("message", ""))
            if isinstance(errors.get("code"), str):
                message = f"{errors['code']}: {message}"
        if code is None and isinstance(payload.get("internalCode"), int):
            code = payload["internalCode"]
        if not message:
            message = str(payload.get("description") or payload.get("message") or "")
    if not message:
        message = body[:200].decode("utf-8", errors="replace").strip() or f"HTTP {status}"
    return UpstreamError(
        classify_error(status, code, message),
        message,
        status=status,
        code=code,
        log_id=response.headers.get("cf-aig-log-id"),
        request_id=response.headers.get("cf-ai-req-id"),
        retry_after=retry_after_seconds(response.headers.get("retry-after"), now_epoch),
    )


class UpstreamAnswer:
    """An open answer: iterate ``batches()``; it ends complete or raises ``UpstreamError``."""

    def __init__(self, response: Response, clock: _Clock, malformed: MalformedFrames) -> None:
        self.response = response
        self.status = response.status_code
        self.log_id = response.headers.get("cf-aig-log-id")
        self.request_id = response.headers.get("cf-ai-req-id")
        self._clock = clock
        self._malformed = malformed
        self.skipped_frames = 0
        """Malformed frames skipped under ``malformed="skip"``."""
        self._token_seen = False
        self._complete = False  # a usage frame or a finish reason has been read

    def _error(
        self, error_class: ErrorClass, message: str, code: int | None = None, *, truncated: bool = False
    ) -> UpstreamError:
        return UpstreamError(
            error_class,
            message,
            status=self.status,
            code=code,
            log_id=self.log_id,
            request_id=self.request_id,
            truncated=truncated,
        )

    async def batches(self) -> AsyncIterator[list[Frame]]:
        """The frames completed by each read from the connection, so that a caller can write them at once.

        An error frame, a malformed frame (under ``fail``), a broken connection, a timeout or an end
        before the answer is complete raises ``UpstreamError`` after the frames before it have been yielded.
        """
        content_type = self.response.headers.get("content-type", "")
        if content_type.split(";")[0].strip() == "application/json":
            yield [await self._json_as_frame(), Frame(done=True)]
            return
        decoder = SSEDecoder()
        chunks = self.response.aiter_bytes()
        loop = asyncio.get_running_loop()
        limit = _ReadLimit(loop)
        try:
            while True:
                now = loop.time()
                wait, reason = self._clock.wait(now, token_seen=self._token_seen)
                limit.arm(now + wait if wait is not None else None)
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except asyncio.CancelledError:
                    if limit.expired():
                        raise self._error(ErrorClass.TIMEOUT, reason) from None
                    raise
                except _BROKEN as exc:
                    if self._complete:
                        return  # everything was said; only the terminator was lost
                    raise self._error(
                        ErrorClass.CONNECTION, f"the stream broke: {type(exc).__name__}"
                    ) from None
                finally:
                    limit.disarm()
                batch, error = self._interpret(decoder.feed(chunk))
                if batch:
                    yield batch
                if error is not None:
                    raise error
                if batch and batch[-1].done:
                    await self._drain(chunks)
                    return
        finally:
            limit.close()
        batch, error = self._interpret(decoder.flush())
        if batch:
            yield batch
        if error is not None:
            raise error
        if not (batch and batch[-1].done) and not self._complete:
            raise self._error(
                ErrorClass.STREAM, "the stream ended before the answer was complete", truncated=True
            )

    @staticmethod
    async def _drain(chunks: AsyncIterator[bytes]) -> None:
        """Read what follows the terminator (the end of the chunked body), briefly, so that the connection
        goes back to the pool instead of being closed: a new TLS connection per request costs more."""
        with contextlib.suppress(TimeoutError, *_BROKEN):
            async with asyncio.timeout(_DRAIN_SECONDS):
                async for _ in chunks:
                    pass

    def _interpret(self, events: list[ServerSentEvent]) -> tuple[list[Frame], UpstreamError | None]:
        frames: list[Frame] = []
        for event in events:
            frame = interpret_event(event)
            if frame.malformed:
                if self._malformed == "skip":
                    self.skipped_frames += 1
                    continue
                return frames, self._error(ErrorClass.STREAM, frame.error or "malformed frame")
            if frame.error is not None:
                return frames, self._error(ErrorClass.STREAM, frame.error, frame.error_code)
            if frame.token:
                self._token_seen = True
            if frame.finished or (frame.cumulative and frame.usage is not None):
                self._complete = True
            frames.append(frame)
            if frame.done:
                break
        return frames, None

    async def _json_as_frame(self) -> Frame:
        wait, reason = self._clock.wait(asyncio.get_running_loop().time(), token_seen=False)
        try:
            async with asyncio.timeout(wait):
                body = await self.response.aread()
        except TimeoutError:
            raise self._error(ErrorClass.TIMEOUT, reason) from None
        except _BROKEN as exc:
            raise self._error(ErrorClass.CONNECTION, f"the response broke: {type(exc).__name__}") from None
        try:
            payload = json.loads(body)
        except ValueError:
            raise self._error(ErrorClass.STREAM, "a JSON response that is not JSON") from None
        result = payload.get("result", payload) if isinstance(payload, Mapping) else payload
        usage = usage_from_mapping(result.get("usage")) if isinstance(result, Mapping) else None
        return Frame(token=valid_unicode(extract_text(result)), usage=usage, cumulative=True, finished=True)


@functools.lru_cache(maxsize=1024)  # model ids come from clients: bounded
def _model_url(base_url: str, account_id: str, gateway_id: str, model: str) -> str:
    if any(segment in ("", ".", "..") for segment in model.split("/")):
        raise UpstreamError(ErrorClass.MODEL, "not a valid model id: empty or dot path segments")
    return f"{base_url}/v1/{account_id}/{gateway_id}/workers-ai/{quote(model, safe='@/')}"


class UpstreamClient:
    """Calls AI Gateway's Workers AI endpoint; one instance per gateway, shared by all requests."""

    def __init__(
        self,
        base_url: str,
        *,
        account_id: str | None,
        api_token: str | None,
        gateway_token: str | None = None,
        connect_timeout: float | None = 30.0,
        malformed: MalformedFrames = "skip",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        self._api_token = api_token
        self._gateway_token = gateway_token
        self.malformed: MalformedFrames = malformed
        # Real sockets go through the wire client; an injected transport (tests) through httpx.
        self._wire = WirePool(max_idle=200, keepalive_expiry=2.0) if transport is None else None
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(connect=connect_timeout, read=None, write=None, pool=None),
            # Idle connections are dropped before common 5 s server keep-alive timeouts close them under a
            # request that is just being sent on one.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=200, keepalive_expiry=2.0),
        )

    def __repr__(self) -> str:
        return f"UpstreamClient(base_url={self.base_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._wire is not None:
            await self._wire.aclose()

    def url(self, account_id: str, gateway_id: str, model: str) -> str:
        """The model id is data, not URL syntax: every character but ``@`` and ``/`` is percent-encoded, so
        that ``?``, ``#``, spaces or line breaks cannot change where the request goes, and dot segments,
        which a client would resolve into another path, are refused."""
        return _model_url(self.base_url, account_id, gateway_id, model)

    def _headers(self, metadata: Mapping[str, str], event_id: str) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            # ASCII JSON: a header value must be Latin-1 on the wire, and JSON escapes keep every character.
            "cf-aig-metadata": _ASCII_JSON.encode(metadata),
            "cf-aig-event-id": event_id,
        }
        if self._api_token:
            headers["authorization"] = f"Bearer {self._api_token}"
        if self._gateway_token:
            headers["cf-aig-authorization"] = f"Bearer {self._gateway_token}"
        return headers

    def _parts(self, request: UpstreamRequest) -> tuple[str, dict[str, str], bytes]:
        body: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in request.messages]
        }
        if request.stream:
            body["stream"] = True
        url = self.url(self.account_id or request.account_id, request.gateway_id, request.model)
        content = _UTF8_JSON.encode(body).encode()
        return url, self._headers(request.metadata, request.event_id), content

    async def _send(self, request: UpstreamRequest, limits: AttemptLimits, clock: _Clock) -> Response:
        url, headers, content = self._parts(request)
        now = asyncio.get_running_loop().time()
        waits = [
            w
            for w in (limits.first_byte, clock.ends - now if clock.ends is not None else None)
            if w is not None
        ]
        try:
            async with asyncio.timeout(max(0.0, min(waits)) if waits else None):
                if self._wire is not None:
                    return await self._wire.request(url, headers, content)
                built = self._client.build_request("POST", url, content=content, headers=headers)
                return await self._client.send(built, stream=True)
        except TimeoutError:
            raise UpstreamError(ErrorClass.TIMEOUT, "no response within the first-byte timeout") from None
        except httpx.TimeoutException:
            raise UpstreamError(ErrorClass.TIMEOUT, "connecting timed out") from None
        except _BROKEN as exc:
            raise UpstreamError(
                ErrorClass.CONNECTION, f"cannot reach the gateway: {type(exc).__name__}"
            ) from None

    async def _raise_for_status(self, response: Response) -> None:
        if response.is_success:
            return
        try:
            body = await response.aread()
        except _BROKEN:
            body = b""
        # An HTTP-date in Retry-After is wall-clock time, whatever clock the gateway runs on.
        raise _error_from_response(response, body, time.time())

    @asynccontextmanager
    async def open(self, request: UpstreamRequest, limits: AttemptLimits) -> AsyncIterator[UpstreamAnswer]:
        """Send one attempt; the answer's connection closes when the context is left."""
        clock = limits.started(asyncio.get_running_loop().time())
        response = await self._send(request, limits, clock)
        try:
            await self._raise_for_status(response)
            yield UpstreamAnswer(response, clock, self.malformed)
        finally:
            await response.aclose()
