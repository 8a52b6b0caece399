from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aigw_fakes.datafiles import DataFileError
from aigw_harness.proxy.cassette import build_cassette, load_cassette, load_cassettes, write_cassette
from aigw_harness.proxy.redaction import Redactor


def _build(redactor: Redactor, secrets: dict[str, str], chunks: list[tuple[float, bytes]]) -> object:
    return build_cassette(
        recorded_at="2026-11-27T00:00:00Z",
        method="post",
        path=f"/v1/{secrets['CLOUDFLARE_ACCOUNT_ID']}/gw/workers-ai/@cf/m",
        request_headers=[
            ("Authorization", f"Bearer {secrets['CLOUDFLARE_API_TOKEN']}"),
            ("cf-aig-authorization", f"Bearer {secrets['AIGW_GATEWAY_TOKEN']}"),
            ("x-debug", f"token={secrets['CLOUDFLARE_API_TOKEN']}"),
        ],
        request_body=json.dumps({"prompt": "hi", "note": secrets["CLOUDFLARE_API_TOKEN"]}).encode(),
        redactor=redactor,
        status=200,
        response_headers=[("content-type", "text/event-stream"), ("content-length", "10")],
        head_offset_ms=12.5,
        chunks=chunks,
    )


def test_round_trip_keeps_chunks_offsets_and_head(
    tmp_path: Path, redactor: Redactor, generated: dict[str, str]
) -> None:
    chunks = [(20.0, b"data: {}\n\n"), (35.5, b"data: [DONE]\n\n"), (36.0, b"\xff\xfe")]
    cassette = _build(redactor, generated, chunks)
    path = write_cassette(tmp_path, 1, cassette, redactor)  # type: ignore[arg-type]
    loaded = load_cassette(path)
    assert loaded == cassette
    assert [c.offset_ms for c in loaded.chunks] == [20.0, 35.5, 36.0]
    assert loaded.body() == b"".join(d for _, d in chunks)
    assert loaded.chunks[2].encoding == "base64"
    assert loaded.response is not None
    assert loaded.response.head_offset_ms == 12.5
    assert loaded.response.header("content-length") is None  # the stored body is not the original's length
    assert loaded.is_event_stream()
    assert path.name == "0001-post-v1-REDACTED-CLOUDFLARE_ACCOUNT_ID-gw-workers-ai-cf-m.json"


def test_no_generated_secret_reaches_the_file(
    tmp_path: Path, redactor: Redactor, generated: dict[str, str]
) -> None:
    token = generated["CLOUDFLARE_API_TOKEN"]
    chunks = [(1.0, f'data: {{"echo":"{token[:10]}'.encode()), (2.0, f'{token[10:]}"}}\n\n'.encode())]
    path = write_cassette(tmp_path, 1, _build(redactor, generated, chunks), redactor)  # type: ignore[arg-type]
    text = path.read_text()
    for value in generated.values():
        assert value not in text
    # A secret split across two chunks is not left in halves: the chunks were merged, then redacted.
    assert token[:10] not in text
    assert token[10:] not in text
    loaded = load_cassette(path)
    assert len(loaded.chunks) == 1
    assert loaded.chunks[0].offset_ms == 2.0


@given(cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=8))
def test_secret_never_survives_any_chunking(cuts: list[int]) -> None:
    secret = "s3cr3t-" + "x" * 20
    redactor = Redactor({"S": secret})
    body = f'data: {{"a":"{secret}"}}\n\n'.encode()
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    chunks = [(float(i), body[a:b]) for i, (a, b) in enumerate(itertools.pairwise(points)) if b > a]
    cassette = build_cassette(
        recorded_at="t",
        method="GET",
        path="/",
        request_headers=[],
        request_body=b"",
        redactor=redactor,
        status=200,
        chunks=chunks,
    )
    assert secret.encode() not in cassette.body()
    assert all(secret[:7] not in c.data or "REDACTED" in c.data for c in cassette.chunks)


def test_writing_refuses_a_cassette_that_still_holds_a_secret(
    tmp_path: Path, generated: dict[str, str]
) -> None:
    blind = Redactor()
    cassette = _build(blind, generated, [])
    with pytest.raises(RuntimeError, match="still held a secret"):
        write_cassette(tmp_path, 1, cassette, Redactor(dict(generated)))  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_bad_cassette_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "0001-get-x.json"
    path.write_text(
        '{"recorded_at": "t", "request": {"method": "GET", "path": "/"},\n "response": {"status": 999}}\n'
    )
    with pytest.raises(DataFileError) as info:
        load_cassette(path)
    assert "response.status" in str(info.value)
    assert str(path) in str(info.value)


def test_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    from aigw_harness.errors import ConfigError

    with pytest.raises(ConfigError, match=f"cassette directory {tmp_path / 'nope'} does not exist"):
        load_cassettes(tmp_path / "nope")
