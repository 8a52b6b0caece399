"""The cassette format: one recorded HTTP exchange per JSON file, redacted before it is written.

A cassette keeps what a faithful replay needs and nothing secret:

- the request: method, path (with query), headers and body, all passed through a ``Redactor``;
- the response head: status, reason, headers, and when the head arrived (ms after the request started);
- the response body as *chunks with arrival offsets* (ms after the request started), so that time to first
  token and inter-token gaps survive a replay; a non-streamed body is one chunk;
- whether the exchange completed, and the (redacted) error when it did not.

Chunk data is stored as UTF-8 text when it decodes, else base64. Bodies are stored decoded (without
``content-encoding``), so that a replay and a comparison read them directly.

Files are loaded through ``aigw_fakes.datafiles`` so that a hand-edited cassette with a mistake is reported
with its file, line and field. Writing goes through ``write_cassette`` only, which refuses a cassette that
still contains a known secret.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import pydantic

from aigw_fakes.datafiles import load_model
from aigw_harness.errors import ConfigError
from aigw_harness.proxy.redaction import Redactor

__all__ = [
    "FORMAT",
    "Cassette",
    "Chunk",
    "RecordedRequest",
    "RecordedResponse",
    "build_cassette",
    "cassette_filename",
    "load_cassette",
    "load_cassettes",
    "write_cassette",
]

FORMAT: Literal["aigw-cassette/1"] = "aigw-cassette/1"

# Headers that describe the transport of the original body, not the body we store.
_TRANSPORT_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class Chunk(_Model):
    offset_ms: float = pydantic.Field(ge=0)
    data: str
    encoding: Literal["utf-8", "base64"] = "utf-8"

    @classmethod
    def of(cls, offset_ms: float, raw: bytes) -> Chunk:
        try:
            return cls(offset_ms=offset_ms, data=raw.decode("utf-8"))
        except UnicodeDecodeError:
            return cls(offset_ms=offset_ms, data=base64.b64encode(raw).decode("ascii"), encoding="base64")

    def raw(self) -> bytes:
        return base64.b64decode(self.data) if self.encoding == "base64" else self.data.encode("utf-8")


class RecordedRequest(_Model):
    method: str
    path: str
    headers: list[tuple[str, str]] = []
    body: Chunk | None = None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    def body_bytes(self) -> bytes:
        return self.body.raw() if self.body is not None else b""


class RecordedResponse(_Model):
    status: int = pydantic.Field(ge=100, le=599)
    reason: str = ""
    headers: list[tuple[str, str]] = []
    head_offset_ms: float = pydantic.Field(default=0, ge=0)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


class Cassette(_Model):
    format: Literal["aigw-cassette/1"] = FORMAT
    recorded_at: str
    request: RecordedRequest
    response: RecordedResponse | None
    chunks: list[Chunk] = []
    complete: bool = True
    error: str | None = None

    @pydantic.model_validator(mode="after")
    def _offsets_ascend(self) -> Cassette:
        for before, after in zip(self.chunks, self.chunks[1:], strict=False):
            if after.offset_ms < before.offset_ms:
                raise ValueError("chunk offsets must not decrease")
        return self

    def body(self) -> bytes:
        return b"".join(chunk.raw() for chunk in self.chunks)

    def is_event_stream(self) -> bool:
        content_type = self.response.header("content-type") if self.response else None
        return bool(content_type and content_type.split(";")[0].strip().lower() == "text/event-stream")


def _redact_chunks(timed: Sequence[tuple[float, bytes]], redactor: Redactor) -> list[Chunk]:
    """Redact a chunked body; chunks that a secret straddles are merged first, so no fragment survives."""
    if not timed:
        return []
    joined = b"".join(data for _, data in timed)
    spans = [(m.start(), m.end()) for m in _secret_spans(joined, redactor)]
    merged: list[tuple[float, bytearray]] = []
    position = 0
    for offset, data in timed:
        start = position
        position += len(data)
        straddles = any(s < start < e for s, e in spans)
        if merged and straddles:
            merged[-1] = (offset, merged[-1][1] + data)
        else:
            merged.append((offset, bytearray(data)))
    return [Chunk.of(offset, redactor.data(bytes(data))) for offset, data in merged]


def _secret_spans(data: bytes, redactor: Redactor) -> Iterable[re.Match[bytes]]:
    values = sorted((v.encode() for v in redactor.secrets.values()), key=len, reverse=True)
    if not values:
        return []
    return re.finditer(b"|".join(re.escape(v) for v in values), data)


def build_cassette(
    *,
    recorded_at: str,
    method: str,
    path: str,
    request_headers: Iterable[tuple[str, str]],
    request_body: bytes,
    redactor: Redactor,
    status: int | None = None,
    reason: str = "",
    response_headers: Iterable[tuple[str, str]] = (),
    head_offset_ms: float = 0.0,
    chunks: Sequence[tuple[float, bytes]] = (),
    complete: bool = True,
    error: str | None = None,
) -> Cassette:
    """The only way from raw exchange data to a cassette: every field passes the redactor here."""
    body = redactor.data(request_body)
    request = RecordedRequest(
        method=method.upper(),
        path=redactor.text(path),
        headers=redactor.header_items(request_headers),
        body=Chunk.of(0.0, body) if body else None,
    )
    response = None
    if status is not None:
        response = RecordedResponse(
            status=status,
            reason=reason,
            headers=[
                (k, v)
                for k, v in redactor.header_items(response_headers)
                if k.lower() not in _TRANSPORT_HEADERS
            ],
            head_offset_ms=max(0.0, head_offset_ms),
        )
    return Cassette(
        recorded_at=recorded_at,
        request=request,
        response=response,
        chunks=_redact_chunks([(max(0.0, o), d) for o, d in chunks], redactor),
        complete=complete,
        error=redactor.text(error) if error else None,
    )


_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def cassette_filename(index: int, cassette: Cassette) -> str:
    path = cassette.request.path.split("?")[0].strip("/")
    slug = _SLUG.sub("-", path)[-60:].strip("-") or "root"
    return f"{index:04d}-{cassette.request.method.lower()}-{slug}.json"


def write_cassette(directory: Path, index: int, cassette: Cassette, redactor: Redactor) -> Path:
    """Write one cassette; refuses (``RuntimeError``) if a known secret is still in the serialised text."""
    text = json.dumps(cassette.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
    if redactor.contains_secret(text):
        raise RuntimeError("a cassette still held a secret after redaction; nothing was written")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / cassette_filename(index, cassette)
    temporary = target.with_suffix(".json.part")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(target)
    return target


def load_cassette(path: str | Path) -> Cassette:
    return load_model(path, Cassette)


def load_cassettes(directory: str | Path) -> list[tuple[Path, Cassette]]:
    """Every ``*.json`` cassette in a directory, in file-name (= recording) order."""
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(f"cassette directory {root} does not exist or is not a directory")
    return [(p, load_cassette(p)) for p in sorted(root.glob("*.json"))]
