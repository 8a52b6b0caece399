"""Contract snapshots: the shape recorded from a run, drift found with before and after, and drift as
findings that the baseline gate fails on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from aigw_harness.ci.baseline import baseline_of, compare
from aigw_harness.ci.snapshot import (
    diff,
    header_format,
    load_snapshot,
    snapshot_of,
    with_drift,
    write_snapshot,
)
from aigw_harness.report.results import EventRecord, Exchange, Results, ScenarioStatus

from .results_factory import results, scenario

ROOT = Path(__file__).parents[2]
HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache", "x-model-id": "@cf/meta/llama",
           "x-ratelimit-reset": "1700000000000", "x-trace-id": "r0001"}  # fmt: skip


def stream(rid: str, events: list[tuple[str, object]], headers: dict[str, str] | None = None) -> Exchange:
    records = [
        EventRecord(t_ms=1, event=name, data=json.dumps(body, separators=(",", ":"))) for name, body in events
    ]
    raw = "".join(
        (f"event: {r.event}\n" if r.event != "message" else "") + f"data: {r.data}\n\n" for r in records
    )
    return Exchange(id=rid, step="stream", started_ms=0, status=200, stream=True, events=records,
                    raw_stream=raw, headers=headers if headers is not None else HEADERS)  # fmt: skip


def token(text: str) -> tuple[str, object]:
    return ("message", {"sessionId": "s", "role": "assistant", "content": text, "tenantId": "example"})


DONE = ("done", {"done": True, "usage": {"modelId": "@cf/m", "tokensIn": 2, "tokensOut": 3}})


def run_of(*exchanges: Exchange) -> Results:
    result = scenario("streaming.contract", ScenarioStatus.PASSED, [], [])
    result.exchanges = list(exchanges)
    return results(result)


def test_the_shape_leaves_values_out_and_records_formats(tmp_path: Path) -> None:
    first = run_of(stream("r1", [token("Hel"), token("lo"), DONE]), stream("r2", [token("x"), DONE]))
    second = run_of(stream("r9", [token("other"), token("text"), token("!"), DONE]))
    path = tmp_path / "snap.yaml"
    write_snapshot(first, path)
    shape = load_snapshot(path).exchanges["streaming.contract/stream"]
    assert shape.events == ["message+ done"]
    assert shape.terminal == ["done"]
    assert shape.headers["x-model-id"] == "workers-ai model id"
    assert shape.headers["x-ratelimit-reset"] == "epoch milliseconds"
    assert shape.payloads["done"] == {"done": "boolean", "usage": "object", "usage.modelId": "string",
                                      "usage.tokensIn": "integer", "usage.tokensOut": "integer"}  # fmt: skip
    assert "Hel" not in path.read_text()
    assert diff(load_snapshot(path), snapshot_of(second)) == []  # other text, other counts: the same shape


def test_each_drift_is_found_with_before_and_after() -> None:
    recorded = snapshot_of(run_of(stream("r1", [token("a"), DONE])))
    drifted_headers = {**HEADERS, "x-ratelimit-reset": "1700000000"}
    del drifted_headers["cache-control"]
    later = run_of(
        stream("r1", [token("a"), ("error", {"code": "ai_error", "message": "m"}),
                      ("done", {"done": True, "usage": {"modelId": "@cf/m", "tokensIn": "2"}})],
               drifted_headers),
    )  # fmt: skip
    found = {
        (d.aspect, json.dumps(d.before), json.dumps(d.after)) for d in diff(recorded, snapshot_of(later))
    }
    assert found == {
        ("events", '["message+ done"]', '["message+ error done"]'),
        ("headers.cache-control", '"no-cache"', "null"),
        ("headers.x-ratelimit-reset", '"epoch milliseconds"', '"epoch seconds"'),
        ("payloads.done.usage.tokensIn", '"integer"', '"string"'),
        ("payloads.done.usage.tokensOut", '"integer"', "null"),
        ("payloads.error.code", "null", '"string"'),
        ("payloads.error.message", "null", '"string"'),
    }


def test_a_key_that_becomes_optional_is_one_drift() -> None:
    recorded = snapshot_of(run_of(stream("r1", [token("a"), DONE]), stream("r2", [token("b"), DONE])))
    later = snapshot_of(
        run_of(stream("r1", [token("a"), DONE]), stream("r2", [token("b"), ("done", {"done": True})]))
    )
    drifts = [d for d in diff(recorded, later) if d.aspect == "payloads.done.usage"]
    assert [(d.before, d.after) for d in drifts] == [("object", "object (optional)")]


def test_drift_is_a_finding_that_the_baseline_gate_fails_on() -> None:
    good = run_of(stream("r1", [token("a"), DONE]))
    snapshot = snapshot_of(good)
    same, none = with_drift(good, snapshot, "snap.yaml")
    assert none == []
    baseline = baseline_of(same)
    assert baseline.scenarios["contract.snapshot"].checks == {"snapshot:streaming.contract/stream": "passed"}
    bad = run_of(stream("r1", [token("a"), ("done", {"done": True})]))
    drifted, drifts = with_drift(bad, snapshot, "snap.yaml")
    assert [str(d) for d in drifts] == [
        "streaming.contract/stream payloads.done.usage: object -> absent",
        "streaming.contract/stream payloads.done.usage.modelId: string -> absent",
        "streaming.contract/stream payloads.done.usage.tokensIn: integer -> absent",
        "streaming.contract/stream payloads.done.usage.tokensOut: integer -> absent",
    ]
    result = drifted.scenarios[-1]
    assert result.status == "failed"
    assert result.findings[0].evidence[0].observed == {"before": "object", "after": None}
    comparison = compare(baseline, drifted)
    assert comparison.regressed
    assert ("contract.snapshot", "SNAPSHOT-DRIFT streaming.contract/stream payloads.done.usage") in {
        (c.scenario, c.ref) for c in comparison.new
    }


def test_header_formats() -> None:
    assert header_format("x-request-id", "0f8fad5b-d9cb-469f-a165-70867728950e") == "uuid"
    assert header_format("cf-aig-log-id", "01JC40ZK6Q2ZP1Y9QWXH9RG3C8") == "ulid"
    assert header_format("x-tokens-in", "12") == "integer"
    assert header_format("content-type", "text/event-stream") == "text/event-stream"
    assert header_format("x-tenant-id", "example") == "text"


def test_the_commands_record_and_report_drift(tmp_path: Path) -> None:
    recorded, later = tmp_path / "a.json", tmp_path / "b.json"
    recorded.write_text(run_of(stream("r1", [token("a"), DONE])).to_json())
    later.write_text(run_of(stream("r1", [token("a"), token("b")])).to_json())
    snap = tmp_path / "snap.yaml"

    def aigw(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "aigw_harness", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip

    done = aigw("snapshot", "record", "--from", str(recorded), "--out", str(snap))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"snapshot {snap}: the shape of 1 step(s) recorded\n"
    same = aigw("snapshot", "check", str(snap), "--from", str(recorded))
    assert same.returncode == 0, same.stderr
    drift = aigw("snapshot", "check", str(snap), "--from", str(later), "--out", str(tmp_path / "report"))
    assert drift.returncode == 1
    assert '  DRIFT  streaming.contract/stream events: ["message+ done"] -> ["message+"]' in drift.stderr
    assert '  DRIFT  streaming.contract/stream terminal: ["done"] -> ["message"]' in drift.stderr
    report = (tmp_path / "report" / "report.md").read_text()
    assert "SNAPSHOT-DRIFT streaming.contract/stream terminal" in report
