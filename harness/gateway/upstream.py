"""The upstream side: one call to AI Gateway's Workers AI endpoint per attempt, as the binding makes it.

``POST {base}/v1/{account_id}/{gateway_id}/workers-ai/{model}`` with ``{"messages": [...]}`` and, for a
stream, ``"stream": true`` in the body (Workers AI streams on the input, not on an option). Headers:
``authorization`` (the Cloudflare API token), ``cf-aig-authorization`` (only for an authenticated gateway),
``cf-aig-metadata`` (at most five entries, ``tenantId`` always among them) and ``cf-aig-event-id``.

Responses are understood in both shapes (native ``response`` frames and chat-completion chunks), as a
stream or as the REST envelope ``{"result": ..., "success": true}``; a JSON answer to a stream request is
turned into a one-frame stream. Failures become ``UpstreamError`` carrying an ``ErrorClass``, the HTTP
status, Cloudflare's code and message, and the gateway log id; the fallback policy decides on the class.

Timeouts: to the response head (first byte), between stream events, and a deadline for the whole request.
Leaving the ``stream`` context closes the connection at once, which is how a client disconnect cancels
the upstream. Credentials never appear in errors or reprs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from harness.gateway.tokens import Frame, Usage, extract_text, interpret_event, usage_from_mapping
from harness.sse import ServerSentEvent, SSEDecoder

__all__ = [
    "DEFAULT_FALLBACK_CLASSES",
    "METADATA_LIMIT",
    "ChatMessage",
    "CompletionResult",
    "ErrorClass",
    "UpstreamClient",
    "UpstreamError",
    "UpstreamStream",
    "classify_status",
    "gateway_metadata",
]

METADATA_LIMIT = 5  # AI Gateway keeps the first five cf-aig-metadata entries
_DRAIN_SECONDS = 0.1


class ErrorClass(StrEnum):
    INPUT = "input"  # the request itself is bad (400/413/422): another model fails the same way
    MODEL = "model"  # this model is missing, invalid or not available to the account (404, 403, 5007)
    AUTH = "auth"  # credentials or billing (401, 402): the fallback uses the same ones
    RATE_LIMITED = "rate_limited"  # 429: capacity, gateway rate limit, spend limit, neuron allocation
    SERVER = "server"  # 5xx
    TIMEOUT = "timeout"  # 408, or no response head / no event in time
    CONNECTION = "connection"  # could not connect, or the connection broke
    STREAM = "stream"  # an error frame, a malformed frame, or a stream that ended without its terminator


DEFAULT_FALLBACK_CLASSES = frozenset(
    {
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


def classify_status(status: int, code: int | None) -> ErrorClass:
    if code in _MODEL_CODES or status in (403, 404):
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
    ) -> None:
        self.error_class = error_class
        self.truncated = truncated
        self.message = message
        self.status = status
        self.code = code
        self.log_id = log_id
        self.request_id = request_id
        prefix = f"{code}: " if code is not None else ""
        status_text = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"{error_class.value}: {prefix}{message}{status_text}")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str


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


def _error_from_body(status: int, body: bytes, log_id: str | None, request_id: str | None) -> UpstreamError:
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
            code = raw_code if isinstance(raw_code, int) else None
            message = str(errors[0].get("message", ""))
        if code is None and isinstance(payload.get("internalCode"), int):
            code = payload["internalCode"]
        if not message:
            message = str(payload.get("description") or payload.get("message") or "")
    if not message:
        message = body[:200].decode("utf-8", errors="replace").strip() or f"HTTP {status}"
    return UpstreamError(
        classify_status(status, code), message, status=status, code=code, log_id=log_id, request_id=request_id
    )


@dataclass(frozen=True, slots=True)
class CompletionResult:
    text: str
    usage: Usage | None
    log_id: str | None
    status: int


class UpstreamStream:
    """An open streamed response: iterate ``frames()``; each ends the stream or raises ``UpstreamError``."""

    def __init__(
        self,
        response: httpx.Response,
        *,
        between_events: float | None,
        deadline: float | None,
    ) -> None:
        self.response = response
        self.status = response.status_code
        self.log_id = response.headers.get("cf-aig-log-id")
        self.request_id = response.headers.get("cf-ai-req-id")
        self._between = between_events
        self._deadline = deadline

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

    def _wait(self) -> float | None:
        loop_now = asyncio.get_running_loop().time()
        limits = [t for t in (self._between,) if t is not None]
        if self._deadline is not None:
            limits.append(max(0.0, self._deadline - loop_now))
        return min(limits) if limits else None

    async def frames(self) -> AsyncIterator[Frame]:
        async for batch in self.batches():
            for frame in batch:
                yield frame

    async def batches(self) -> AsyncIterator[list[Frame]]:
        """The frames completed by each read from the connection, so that a caller can write them at once.

        An error frame, a malformed frame, a broken connection, a timeout or a missing terminator raises
        ``UpstreamError`` after the frames before it have been yielded.
        """
        content_type = self.response.headers.get("content-type", "")
        if content_type.split(";")[0].strip() == "application/json":
            yield [await self._json_as_frame(), Frame(done=True)]
            return
        decoder = SSEDecoder()
        chunks = self.response.aiter_bytes()
        while True:
            try:
                async with asyncio.timeout(self._wait()):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise self._error(ErrorClass.TIMEOUT, "no stream event within the timeout") from None
            except httpx.HTTPError as exc:
                raise self._error(ErrorClass.CONNECTION, f"the stream broke: {type(exc).__name__}") from None
            batch, error = self._interpret(decoder.feed(chunk))
            if batch:
                yield batch
            if error is not None:
                raise error
            if batch and batch[-1].done:
                await self._drain(chunks)
                return
        batch, error = self._interpret(decoder.flush())
        if batch:
            yield batch
        if error is not None:
            raise error
        if not (batch and batch[-1].done):
            raise self._error(ErrorClass.STREAM, "the stream ended without its terminator", truncated=True)

    @staticmethod
    async def _drain(chunks: AsyncIterator[bytes]) -> None:
        """Read what follows the terminator (the end of the chunked body), briefly, so that the connection
        goes back to the pool instead of being closed: a new TLS connection per request costs more."""
        with contextlib.suppress(TimeoutError, httpx.HTTPError):
            async with asyncio.timeout(_DRAIN_SECONDS):
                async for _ in chunks:
                    pass

    def _interpret(self, events: list[ServerSentEvent]) -> tuple[list[Frame], UpstreamError | None]:
        frames: list[Frame] = []
        for event in events:
            frame = interpret_event(event)
            if frame.error is not None:
                return frames, self._error(ErrorClass.STREAM, frame.error, frame.error_code)
            frames.append(frame)
            if frame.done:
                break
        return frames, None

    async def _json_as_frame(self) -> Frame:
        try:
            body = await self.response.aread()
        except httpx.HTTPError as exc:
            raise self._error(ErrorClass.CONNECTION, f"the response broke: {type(exc).__name__}") from None
        try:
            payload = json.loads(body)
        except ValueError:
            raise self._error(ErrorClass.STREAM, "a JSON response that is not JSON") from None
        result = payload.get("result", payload) if isinstance(payload, Mapping) else payload
        usage = usage_from_mapping(result.get("usage")) if isinstance(result, Mapping) else None
        return Frame(token=extract_text(result), usage=usage, cumulative=True, finished=True)


class UpstreamClient:
    """Calls AI Gateway's Workers AI endpoint; one instance per gateway, shared by all requests."""

    def __init__(
        self,
        base_url: str,
        *,
        account_id: str | None,
        api_token: str | None,
        gateway_token: str | None = None,
        first_byte_timeout: float | None = 30.0,
        between_events_timeout: float | None = 30.0,
        total_timeout: float | None = 300.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        self._api_token = api_token
        self._gateway_token = gateway_token
        self.first_byte_timeout = first_byte_timeout
        self.between_events_timeout = between_events_timeout
        self.total_timeout = total_timeout
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(connect=first_byte_timeout, read=None, write=None, pool=None),
            # Idle connections are dropped before common 5 s server keep-alive timeouts close them under a
            # request that is just being sent on one.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=200, keepalive_expiry=2.0),
        )

    def __repr__(self) -> str:
        return f"UpstreamClient(base_url={self.base_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    def url(self, account_id: str, gateway_id: str, model: str) -> str:
        return f"{self.base_url}/v1/{account_id}/{gateway_id}/workers-ai/{model}"

    def _headers(self, metadata: Mapping[str, str], event_id: str) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "cf-aig-metadata": json.dumps(metadata, separators=(",", ":"), ensure_ascii=False),
            "cf-aig-event-id": event_id,
        }
        if self._api_token:
            headers["authorization"] = f"Bearer {self._api_token}"
        if self._gateway_token:
            headers["cf-aig-authorization"] = f"Bearer {self._gateway_token}"
        return headers

    def deadline(self) -> float | None:
        """The loop time by which a request that starts now must be finished."""
        if self.total_timeout is None:
            return None
        return asyncio.get_running_loop().time() + self.total_timeout

    def _request(
        self,
        account_id: str,
        gateway_id: str,
        model: str,
        messages: Sequence[ChatMessage],
        metadata: Mapping[str, str],
        event_id: str,
        stream: bool,
    ) -> httpx.Request:
        body: dict[str, Any] = {"messages": [{"role": m.role, "content": m.content} for m in messages]}
        if stream:
            body["stream"] = True
        return self._client.build_request(
            "POST",
            self.url(self.account_id or account_id, gateway_id, model),
            content=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
            headers=self._headers(metadata, event_id),
        )

    async def _send(self, request: httpx.Request, deadline: float | None) -> httpx.Response:
        wait = self.first_byte_timeout
        if deadline is not None:
            remaining = max(0.0, deadline - asyncio.get_running_loop().time())
            wait = remaining if wait is None else min(wait, remaining)
        try:
            async with asyncio.timeout(wait):
                return await self._client.send(request, stream=True)
        except TimeoutError:
            raise UpstreamError(ErrorClass.TIMEOUT, "no response within the first-byte timeout") from None
        except httpx.TimeoutException:
            raise UpstreamError(ErrorClass.TIMEOUT, "connecting timed out") from None
        except httpx.HTTPError as exc:
            raise UpstreamError(
                ErrorClass.CONNECTION, f"cannot reach the gateway: {type(exc).__name__}"
            ) from None

    async def _raise_for_status(self, response: httpx.Response) -> None:
        if response.is_success:
            return
        try:
            body = await response.aread()
        except httpx.HTTPError:
            body = b""
        raise _error_from_body(
            response.status_code,
            body,
            response.headers.get("cf-aig-log-id"),
            response.headers.get("cf-ai-req-id"),
        )

    @asynccontextmanager
    async def stream(
        self,
        *,
        account_id: str,
        gateway_id: str,
        model: str,
        messages: Sequence[ChatMessage],
        metadata: Mapping[str, str],
        event_id: str,
        deadline: float | None = None,
    ) -> AsyncIterator[UpstreamStream]:
        request = self._request(account_id, gateway_id, model, messages, metadata, event_id, stream=True)
        response = await self._send(request, deadline)
        try:
            await self._raise_for_status(response)
            yield UpstreamStream(response, between_events=self.between_events_timeout, deadline=deadline)
        finally:
            await response.aclose()

    async def complete(
        self,
        *,
        account_id: str,
        gateway_id: str,
        model: str,
        messages: Sequence[ChatMessage],
        metadata: Mapping[str, str],
        event_id: str,
        deadline: float | None = None,
    ) -> CompletionResult:
        """A non-streamed call; a streamed answer is read to its end and joined."""
        request = self._request(account_id, gateway_id, model, messages, metadata, event_id, stream=False)
        response = await self._send(request, deadline)
        try:
            await self._raise_for_status(response)
            stream = UpstreamStream(response, between_events=self.between_events_timeout, deadline=deadline)
            parts: list[str] = []
            usage: Usage | None = None
            incremental: Usage | None = None
            async for frame in stream.frames():
                parts.append(frame.token)
                if frame.usage is not None:
                    if frame.cumulative:
                        usage = frame.usage
                    else:
                        incremental = frame.usage if incremental is None else incremental.plus(frame.usage)
            return CompletionResult(
                "".join(parts),
                usage if usage is not None else incremental,
                stream.log_id,
                response.status_code,
            )
        finally:
            await response.aclose()
