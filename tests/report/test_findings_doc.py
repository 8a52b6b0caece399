"""``aigw docs --from``: the milestone's checklist answered from runs of any target, side by side.

The fixtures are real runs, slimmed by ``fixtures/slim.py``: the catalogue on the reference gateway and the
fake (``reference-run``), on the bridge's chat Worker in workerd (``worker-run``), and a replay of
cassettes recorded from a live run against the stand-in (``replay-run``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aigw_harness.cli import main
from aigw_harness.report.findings_doc import LabelledRun, load_checklist, render_findings
from aigw_harness.report.results import load_results

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = FIXTURES / "reference-run.json"
WORKER = FIXTURES / "worker-run.json"
REPLAY = FIXTURES / "replay-run.json"


def _rows(document: str, item_text: str) -> dict[str, str]:
    """System -> answer for one checklist item."""
    section = document.split(f"#### {item_text}\n", 1)[1].split("\n#", 1)[0]
    return dict(re.findall(r"^\| ([^|]+?) \| \*\*([a-z ]+)\*\* \|", section, re.MULTILINE))


def _run(path: Path, label: str, link: str | None = None) -> LabelledRun:
    return LabelledRun(label, load_results(path), link)


def test_a_worker_run_answers_the_checklist_with_evidence() -> None:
    document = render_findings([_run(WORKER, "Worker in workerd", "runs/worker/report.md")])
    assert _rows(document, "Verify `env.AI.run()` with `gateway` param routes through AI Gateway") == {
        "Worker in workerd": "yes"
    }
    # The Worker's streamed usage does not match the model's counts: answered no, with the run named.
    usage = "Token counts may not be available in streaming responses (is usage present in streams?)"
    assert _rows(document, usage) == {"Worker in workerd": "no"}
    assert "[`spike.usage-in-stream`](runs/worker/report.md#spike-usage-in-stream) (failed)" in document
    assert "Worker in workerd (run `20261207T144134Z`), where it fails:" in document
    # Scenarios that need what a Worker cannot give (the gateway's usage records) are "not shown".
    assert _rows(document, "Gateway unavailable fallback")["Worker in workerd"] in ("not shown", "yes", "no")
    assert "One run only" in document
    assert (
        "| Worker in workerd | `worker` | the Worker aigw-chat-fixture-dev (env dev) in workerd" in document
    )


def test_a_replayed_live_run_shows_what_it_covered_and_lists_the_rest_as_open() -> None:
    document = render_findings([_run(REPLAY, "live (replayed)")])
    assert _rows(document, "Validate streaming works through gateway (TTFB, token delivery)") == {
        "live (replayed)": "yes"
    }
    assert _rows(document, "Budgets hold under concurrency") == {"live (replayed)": "not shown"}
    open_section = document.split("## Open items", 1)[1].split("## ", 1)[0]
    assert "- Observability and budget hooks (#28, #29): Budgets hold under concurrency" in open_section
    assert "Validate streaming works through gateway" not in open_section
    checklist = load_checklist()
    answered = 1  # only the streaming item's scenarios ran in this replay
    assert open_section.count("\n- ") == sum(len(s.items) for s in checklist.sections) - answered


def test_three_runs_side_by_side_with_disagreements_as_findings() -> None:
    runs = [
        _run(REFERENCE, "reference on the fake"),
        _run(WORKER, "Worker in workerd"),
        _run(REPLAY, "live (replayed)"),
    ]
    document = render_findings(runs)
    for section in load_checklist().sections:
        for item in section.items:
            assert set(_rows(document, item.text)) == {
                "reference on the fake",
                "Worker in workerd",
                "live (replayed)",
            }
    assert _rows(document, "Validate streaming works through gateway (TTFB, token delivery)") == {
        "reference on the fake": "yes",
        "Worker in workerd": "yes",
        "live (replayed)": "yes",
    }
    disagreements = document.split("## Where the systems disagree", 1)[1].split("## Findings raised", 1)[0]
    # The Worker keeps a turn the budget refused in the session history; the reference does not.
    assert (
        "- **Worker vs reference**, scenario `accounting.sessions` "
        "(reference on the fake against Worker in workerd):\n"
        "  - history: body data.messages.4 absent: reference on the fake passed (observed null); "
        'Worker in workerd failed (observed {"role": "user", "content": "this one was refused"})'
    ) in disagreements
    # After the first token, the reference ends a stalled stream with one error event; the Worker does not.
    assert "scenario `fallback.after-first-token`" in disagreements
    assert (
        "stall: an error event: reference on the fake passed (observed true); Worker in workerd failed"
        in (disagreements)
    )
    # Where both ran the same scenario and agreed, nothing is raised.
    assert "scenario `streaming.contract`" not in disagreements
    assert "Every checklist item was answered by at least one run." in document
    # Each raised finding names its system.
    assert "| Worker in workerd | `accounting.sessions` | **REFUSED-TURN-IN-HISTORY**" in document


def test_the_document_is_deterministic_and_has_no_raw_timings() -> None:
    runs = [_run(REFERENCE, "reference on the fake"), _run(WORKER, "Worker in workerd")]
    first = render_findings(runs)
    assert first == render_findings(runs)
    assert "ttft_ms" not in first
    assert re.search(r"time to first token: median \d+ ms over \d+ streams", first)


def test_cli_writes_and_checks_the_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ai-gateway.md"
    sources = ["--from", str(REFERENCE), "--from", f"Team Worker={WORKER}"]
    assert main(["docs", *sources, "--out", str(out)]) == 0
    text = out.read_text()
    assert "| Team Worker | `worker` |" in text
    assert "| reference on the fake | `fake` |" in text
    assert main(["docs", *sources, "--out", str(out), "--check"]) == 0
    out.write_text(text.replace("**yes**", "**no**", 1))
    assert main(["docs", *sources, "--out", str(out), "--check"]) == 1
    assert "is out of date" in capsys.readouterr().err


def test_cli_names_a_missing_results_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["docs", "--from", str(tmp_path / "nope.json"), "--out", str(tmp_path / "x.md")]) == 2
    assert "--from" in capsys.readouterr().err
