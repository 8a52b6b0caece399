"""mitmproxy addon that records every exchange as a redacted cassette (see ``aigw_harness.proxy.cassette``).

Options (all prefixed ``aigw_``):

- ``aigw_cassette_dir``: where cassettes go (required; created if missing);
- ``aigw_redact_env``: names of environment variables whose values are secrets, redacted wherever they
  occur (default: the Cloudflare credentials this project reads);
- ``aigw_redact_headers``: extra header names whose values are always redacted.

Event streams are recorded chunk by chunk as they pass (the addon turns on streaming for
``text/event-stream`` responses only), with each chunk's arrival offset; other bodies are buffered by
mitmproxy as usual. Nothing unredacted is ever written: the cassette is built from redacted pieces in
memory and ``write_cassette`` refuses one that still holds a secret.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions, http

from aigw_harness.proxy.cassette import build_cassette, write_cassette
from aigw_harness.proxy.redaction import CREDENTIAL_HEADERS, DEFAULT_SECRET_ENV, Redactor

__all__ = ["DEFAULT_SECRET_ENV", "ChunkRecorder", "Recorder", "header_pairs", "is_event_stream"]


OptionsError: type[Exception] = exceptions.OptionsError


def is_event_stream(response: http.Response) -> bool:
    content_type = str(response.headers.get("content-type", ""))
    return content_type.split(";")[0].strip().lower() == "text/event-stream"


def header_pairs(headers: http.Headers) -> list[tuple[str, str]]:
    """Headers as text pairs, in order and with repeats (undecodable bytes become U+FFFD)."""
    fields: tuple[tuple[bytes, bytes], ...] = headers.fields
    return [(k.decode("utf-8", "replace"), v.decode("utf-8", "replace")) for k, v in fields]


class ChunkRecorder:
    """The stream callable: passes each chunk on unchanged and notes it with its arrival offset."""

    def __init__(self, started: float, clock: Callable[[], float], inner: Any = None) -> None:
        self.started = started
        self.clock = clock
        self.inner = inner  # another stream callable (for example a fault filter) applied after recording
        self.chunks: list[tuple[float, bytes]] = []
        self.ended = False

    def __call__(self, data: bytes) -> bytes | list[bytes]:
        if data:
            self.chunks.append(((self.clock() - self.started) * 1000.0, data))
        else:
            self.ended = True
        if self.inner is None:
            return data
        result: bytes | list[bytes] = self.inner(data)
        return result


class Recorder:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._directory: Path | None = None
        self._redactor: Redactor | None = None
        self._index = 0
        self._streams: dict[str, ChunkRecorder] = {}
        self._options: Any = None
        self.written: list[Path] = []

    def load(self, loader: Any) -> None:
        # This master's options, not the process-global ``ctx.options``: two proxies may run in one process.
        self._options = loader.master.options
        loader.add_option("aigw_cassette_dir", str, "", "Directory to write aigw cassettes to.")
        loader.add_option(
            "aigw_redact_env",
            Sequence[str],
            list(DEFAULT_SECRET_ENV),
            "Environment variables whose values are secrets to redact from cassettes.",
        )
        loader.add_option(
            "aigw_redact_headers", Sequence[str], [], "Extra header names whose values are always redacted."
        )

    def configure(self, updated: set[str]) -> None:
        options = self._options if self._options is not None else ctx.options
        if "aigw_cassette_dir" in updated:
            value = options.aigw_cassette_dir
            if value:
                directory = Path(value)
                if directory.exists() and not directory.is_dir():
                    raise OptionsError(f"aigw_cassette_dir: {value} exists and is not a directory")
                self._directory = directory
                self._index = len(list(directory.glob("*.json"))) if directory.is_dir() else 0
            else:
                self._directory = None
        if updated & {"aigw_redact_env", "aigw_redact_headers"} or self._redactor is None:
            try:
                redactor = Redactor.from_environment(options.aigw_redact_env, os.environ)
            except ValueError as exc:
                raise OptionsError(f"aigw_redact_env: {exc}") from None
            redactor.headers = CREDENTIAL_HEADERS | {h.lower() for h in options.aigw_redact_headers}
            self._redactor = redactor

    def set_redactor(self, redactor: Redactor) -> None:
        """For embedding: secrets known in-process (for example generated ones) rather than from env."""
        self._redactor = redactor

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.error or not flow.live or flow.response is None or self._directory is None:
            return
        if is_event_stream(flow.response):
            existing = flow.response.stream
            recorder = ChunkRecorder(
                flow.request.timestamp_start, self._clock, inner=existing if callable(existing) else None
            )
            flow.response.stream = recorder
            self._streams[flow.id] = recorder

    def response(self, flow: http.HTTPFlow) -> None:
        if self._directory is None or flow.response is None:
            return
        self._save(self._directory, flow, complete=True, error=None)

    def error(self, flow: http.HTTPFlow) -> None:
        if self._directory is None:
            return
        self._save(
            self._directory, flow, complete=False, error=flow.error.msg if flow.error else "unknown error"
        )

    def _save(self, directory: Path, flow: http.HTTPFlow, *, complete: bool, error: str | None) -> None:
        redactor = self._redactor
        if redactor is None:
            raise RuntimeError("the recorder saved a flow before mitmproxy configured it")
        started = flow.request.timestamp_start
        recorder = self._streams.pop(flow.id, None)
        response = flow.response
        if recorder is not None:
            chunks = recorder.chunks
        elif response is not None and response.raw_content is not None:
            body = response.get_content(strict=False) or b""
            ended = response.timestamp_end or self._clock()
            chunks = [((ended - started) * 1000.0, body)] if body else []
        else:
            chunks = []
        head_offset = ((response.timestamp_start or started) - started) * 1000.0 if response else 0.0
        cassette = build_cassette(
            recorded_at=datetime.fromtimestamp(started, UTC).isoformat().replace("+00:00", "Z"),
            method=flow.request.method,
            path=flow.request.path,
            request_headers=header_pairs(flow.request.headers),
            request_body=flow.request.get_content(strict=False) or b"",
            redactor=redactor,
            status=response.status_code if response else None,
            reason=response.reason if response else "",
            response_headers=header_pairs(response.headers) if response else (),
            head_offset_ms=head_offset,
            chunks=chunks,
            complete=complete and (recorder is None or recorder.ended),
            error=error,
        )
        self._index += 1
        self.written.append(write_cassette(directory, self._index, cassette, redactor))
