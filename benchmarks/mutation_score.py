"""How many realistic faults the scenario catalogue finds: mutation analysis of a platform-style Worker.

    .venv/bin/python benchmarks/mutation_score.py [--sample] [--jobs 2] [--only ID ...] [--json FILE]

The original is the chat Worker under ``benchmarks/mutation/worker/`` (correct by the ``/chat``
contract). Each mutant is one realistic fault from one class of docs/fault-taxonomy.md:

- a patch under ``benchmarks/mutation/mutants/`` applied to a copy of the Worker, run on ``--target worker``;
- a switch of the reference gateway (``PlatformQuirks``, and falling back on every error class), run on the
  fake target through ``benchmarks/mutation/quirk_target.py``.

Every mutant states its expected cause: the scenario and the finding that must point at its fault
(``# expect: SCENARIO FINDING[; SCENARIO FINDING]``). A mutant is killed only when one of those findings is
raised on it and not on the original in the same run: a finding for an unrelated symptom does not count,
and neither does a finding the original raises too. Each mutant runs only the scenarios of its expected
causes, in the order given, and stops at its first kill (no other scenario could kill it by that rule); the
other findings those runs raise are listed as symptoms. The original runs every scenario that any mutant
names, once, and must raise no finding beyond those its contract documents (``DOCUMENTED``).

Prints the kill matrix (mutant, class, killed by scenario/finding and its failed evidence, seconds), the
original's findings, and last ``killed K of N mutants (P%)``. Every scenario run is one ``aigw run``
process with a fresh fake and a fresh Worker; ``--jobs`` runs that many at once. ``--sample`` runs a fixed
set of five mutants for CI and exits 1 unless all are killed and the original raised nothing undocumented.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MUTATION = ROOT / "benchmarks" / "mutation"
WORKER = MUTATION / "worker"
WRANGLER = Path("apps/worker-api/wrangler.jsonc")
SCENARIOS = ROOT / "scenarios"
QUIRK_TARGET = "benchmarks.mutation.quirk_target:quirk_target"
SCENARIO_TIMEOUT_S = 240.0
# Scenarios whose fault is timed against the SUT's own (uncompressed) timers run in real time.
TIME_SCALE = {"taxonomy.stream-stall": 1.0}

# Findings the original may raise: the contract documents these behaviours (docs/reference-gateway.md).
DOCUMENTED = frozenset(
    {
        "TENANT-HEADER-TRUSTED",  # x-tenant-id is trusted, as the platform's contract says
        "USAGE-ESTIMATED-WITHOUT-FRAME",  # without a usage frame the output is estimated
        "SPIKE-STREAM-USAGE-ESTIMATED",
        "BUDGET-OUTPUT-NOT-ESTIMATED",  # admission counts input only (output_reservation 0)
        "HISTORY-INFLATES-ESTIMATE",  # the whole history is sent and estimated every turn
    }
)

# Root-cause findings the runner's conformance checks raise in any scenario that calls upstream
# (harness/scenarios/conformance.py); a mutant may name them as its expected cause.
RUNNER_ROOT_CAUSES = frozenset(
    {
        "UPSTREAM-NOT-STREAMED",
        "UPSTREAM-WITHOUT-GATEWAY",
        "UPSTREAM-METADATA-ATTRIBUTION",
        "UPSTREAM-CALL-REPEATED",
        "UPSTREAM-NOT-CANCELLED",
    }
)

# The CI sample: five classes, one reference-gateway switch; each is killed in a few seconds.
SAMPLE = (
    "stream-in-options",
    "framing-crlf",
    "budget-inclusive-limit",
    "errors-input-falls-back",
    "quirk-truncation_is_success",
)

# The reference gateway's switches as mutants: (switch, class, description, expected causes).
QUIRK_MUTANTS: tuple[tuple[str, str, str, str], ...] = (
    (
        "stream_model_header_primary",
        "fallback",
        "a stream served by the fallback names the primary in x-model-id",
        "taxonomy.upstream-errors STREAM-MODEL-HEADER",
    ),
    (
        "stream_usage_estimates_only",
        "usage",
        "usage frames in streams are ignored; done.usage and the ledger use estimates",
        "taxonomy.usage USAGE-FRAME-IGNORED",
    ),
    (
        "done_names_last_candidate",
        "usage",
        "after a total failure done.usage names the last failed candidate",
        "taxonomy.usage USAGE-AFTER-TOTAL-FAILURE",
    ),
    (
        "truncation_is_success",
        "framing",
        "a stream that ends without its terminator ends like a complete answer",
        "taxonomy.stream-faults STREAM-TRUNCATION-UNSEEN",
    ),
    (
        "no_charge_on_stream_failure",
        "budget",
        "a stream that fails after its first token is not charged",
        "taxonomy.stream-faults STREAM-PARTIAL-NOT-CHARGED",
    ),
    (
        "append_before_budget_check",
        "budget",
        "the user's message is stored before the budget check",
        "taxonomy.budget BUDGET-REFUSED-TURN-STORED",
    ),
    (
        "fallback_on_every_class",
        "errors",
        "every upstream error falls back, input and credential errors included",
        "taxonomy.upstream-errors FALLBACK-ON-INPUT-ERROR",
    ),
)

_HEADER = re.compile(r"^# (mutant|class|description|expect): (.*)$")


@dataclass(frozen=True)
class Cause:
    scenario: str
    finding: str


@dataclass(frozen=True)
class Mutant:
    id: str
    cls: str
    description: str
    causes: tuple[Cause, ...]
    gap: str | None = None  # why no scenario can be named, when none is
    patch: Path | None = None
    quirk: str | None = None


def parse_expect(text: str) -> tuple[tuple[Cause, ...], str | None]:
    """``SCENARIO FINDING[; ...]``, or ``(why no scenario can expose it)``."""
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        return (), text[1:-1]
    causes = []
    for part in text.split(";"):
        words = part.split()
        if len(words) != 2:
            raise ValueError(f"expect: {part.strip()!r} is not 'SCENARIO FINDING'")
        causes.append(Cause(words[0], words[1]))
    return tuple(causes), None


def parse_patch(path: Path) -> Mutant:
    fields: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _HEADER.match(line)
        if match is None:
            break
        fields[match.group(1)] = match.group(2)
    missing = {"mutant", "class", "description", "expect"} - fields.keys()
    if missing:
        raise ValueError(f"{path}: header lacks {', '.join(sorted(missing))}")
    try:
        causes, gap = parse_expect(fields["expect"])
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return Mutant(fields["mutant"], fields["class"], fields["description"], causes, gap, patch=path)


def catalogue_mutants() -> list[Mutant]:
    mutants = [parse_patch(p) for p in sorted((MUTATION / "mutants").glob("*.patch"))]
    for quirk, cls, description, expect in QUIRK_MUTANTS:
        causes, gap = parse_expect(expect)
        name = f"quirk-{quirk}"
        mutants.append(Mutant(name, cls, f"reference gateway: {description}", causes, gap, quirk=quirk))
    return mutants


def scenario_paths() -> dict[str, Path]:
    paths = {}
    for path in sorted(SCENARIOS.glob("*.yaml")):
        match = re.search(r"^id: *(\S+)", path.read_text(encoding="utf-8"), re.MULTILINE)
        if match:
            paths[match.group(1)] = path
    return paths


# ---------------------------------------------------------------- one scenario run


@dataclass
class ScenarioOutcome:
    status: str
    reason: str
    raised: dict[str, list[str]]  # finding id -> the refs of its failed evidence
    seconds: float


def outcome_of(result: dict[str, Any], seconds: float) -> ScenarioOutcome:
    raised = {
        f["id"]: [e["ref"] for e in f.get("evidence", []) if e.get("status") == "failed"]
        for f in result.get("findings", [])
        if f.get("raised")
    }
    return ScenarioOutcome(str(result.get("status")), str(result.get("reason", "")), raised, seconds)


async def run_scenario(target: list[str], scenario: str, path: Path, work: Path) -> ScenarioOutcome:
    out = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    scale = ["--time-scale", str(TIME_SCALE[scenario])] if scenario in TIME_SCALE else []
    command = [
        sys.executable,
        "-m",
        "aigw_harness",
        "run",
        "-q",
        *target,
        *scale,
        "--out",
        str(out),
        str(path),
    ]
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), SCENARIO_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        why = f"no result within {SCENARIO_TIMEOUT_S:.0f} s"
        return ScenarioOutcome("error", why, {}, SCENARIO_TIMEOUT_S)
    seconds = time.perf_counter() - started
    results = out / "results.json"
    if not results.exists():
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return ScenarioOutcome("error", f"aigw run exited {process.returncode}: {tail[0]}", {}, seconds)
    scenarios = json.loads(results.read_text(encoding="utf-8"))["scenarios"]
    return outcome_of(scenarios[0], seconds)


def worker_target(config_root: Path) -> list[str]:
    options = [f"config={config_root / WRANGLER}", "env=dev", "tenants=worker", "ledger_kv=RATE_LIMITER"]
    return ["--target", "worker", *(a for o in options for a in ("--target-option", o))]


def quirk_target(quirk: str | None) -> list[str]:
    if quirk is None:
        return ["--target", "fake"]
    return ["--target", QUIRK_TARGET, "--target-option", f"quirk={quirk}"]


def mutated_worker(mutant: Mutant, work: Path) -> Path:
    """A copy of the Worker with the mutant's patch applied."""
    assert mutant.patch is not None
    copy = work / f"worker-{mutant.id}"
    shutil.copytree(WORKER, copy, ignore=shutil.ignore_patterns("node_modules"))
    subprocess.run(["git", "apply", "-p1", str(mutant.patch)], cwd=copy, check=True, capture_output=True)
    return copy


# ---------------------------------------------------------------- the matrix


@dataclass
class Row:
    mutant: Mutant
    killed_by: str | None = None
    evidence: list[str] = field(default_factory=list)
    symptoms: list[str] = field(default_factory=list)
    why_not: list[str] = field(default_factory=list)
    seconds: float = 0.0


Baseline = dict[tuple[str, str], ScenarioOutcome]  # (target kind, scenario id) -> outcome on the original


def judge(row: Row, cause: Cause, outcome: ScenarioOutcome, original: ScenarioOutcome) -> bool:
    """Record what ``outcome`` says about the mutant; True when it kills it."""
    if outcome.status not in ("passed", "failed"):
        row.why_not.append(f"{cause.scenario}: {outcome.status} ({outcome.reason[:80]})")
        return False
    new = {f: refs for f, refs in outcome.raised.items() if f not in original.raised}
    if cause.finding in new:
        row.killed_by = f"{cause.scenario} {cause.finding}"
        row.evidence = new[cause.finding]
        row.symptoms = [f for f in [*row.symptoms, *new] if f != cause.finding]
        return True
    row.symptoms += list(new)
    if cause.finding in original.raised:
        row.why_not.append(f"{cause.scenario}: {cause.finding} is raised on the original too")
    else:
        row.why_not.append(f"{cause.scenario}: {cause.finding} not raised")
    return False


async def score(
    mutant: Mutant, paths: dict[str, Path], baseline: Baseline, work: Path, slots: asyncio.Semaphore
) -> Row:
    row = Row(mutant)
    if not mutant.causes:
        row.why_not.append(mutant.gap or "no expected cause")
        return row
    kind = "worker" if mutant.patch else "reference"
    target = worker_target(mutated_worker(mutant, work)) if mutant.patch else quirk_target(mutant.quirk)
    for scenario in dict.fromkeys(c.scenario for c in mutant.causes):  # each scenario once, in order
        async with slots:
            outcome = await run_scenario(target, scenario, paths[scenario], work)
        row.seconds += outcome.seconds  # time spent running, not waiting for a slot
        original = baseline[(kind, scenario)]
        if any(judge(row, c, outcome, original) for c in mutant.causes if c.scenario == scenario):
            break
    return row


async def run_baseline(
    mutants: Sequence[Mutant], paths: dict[str, Path], work: Path, slots: asyncio.Semaphore
) -> Baseline:
    needed = sorted({("worker" if m.patch else "reference", c.scenario) for m in mutants for c in m.causes})
    targets = {"worker": worker_target(WORKER), "reference": quirk_target(None)}

    async def one(kind: str, scenario: str) -> tuple[tuple[str, str], ScenarioOutcome]:
        async with slots:
            return (kind, scenario), await run_scenario(targets[kind], scenario, paths[scenario], work)

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(kind, scenario)) for kind, scenario in needed]
    return dict(t.result() for t in tasks)


def check_causes(mutants: Sequence[Mutant], paths: dict[str, Path]) -> None:
    unknown = sorted({c.scenario for m in mutants for c in m.causes} - paths.keys())
    if unknown:
        sys.exit(f"mutation_score: expected causes name unknown scenarios: {', '.join(unknown)}")


def print_matrix(rows: Sequence[Row], baseline: Baseline, seconds: float) -> int:
    undocumented = 0
    print("original (the correct Worker, and the reference gateway with no switch on):")
    for (kind, scenario), outcome in sorted(baseline.items()):
        extra = sorted(f for f in outcome.raised if f not in DOCUMENTED)
        undocumented += len(extra)
        note = f"  UNDOCUMENTED: {', '.join(extra)}" if extra else ""
        findings = ", ".join(sorted(outcome.raised)) or "no findings"
        print(f"  {kind:9} {scenario:34} {outcome.status:7} {findings}{note}")
    print()
    width = max(len(r.mutant.id) for r in rows)
    print(f"{'mutant':{width}}  {'class':10}  {'killed by (scenario finding: failed evidence)':70}  time")
    for row in rows:
        if row.killed_by:
            verdict = f"{row.killed_by}: {', '.join(row.evidence) or '-'}"
        else:
            verdict = "SURVIVED: " + "; ".join(row.why_not)
        print(f"{row.mutant.id:{width}}  {row.mutant.cls:10}  {verdict:70}  {row.seconds:5.1f} s")
        if row.symptoms:
            print(f"{'':{width}}  {'':10}    also raised: {', '.join(sorted(set(row.symptoms)))}")
    killed = sum(1 for r in rows if r.killed_by)
    classes = sorted({r.mutant.cls for r in rows})
    print()
    print(f"classes: {', '.join(classes)}; wall-clock {seconds:.0f} s")
    print(f"original: {undocumented} findings beyond those the contract documents")
    print(f"killed {killed} of {len(rows)} mutants ({100 * killed / max(1, len(rows)):.0f}%)")
    return undocumented


def write_json(path: Path, rows: Sequence[Row], baseline: Baseline, seconds: float) -> None:
    data = {
        "seconds": round(seconds, 1),
        "original": {
            f"{kind} {scenario}": {"status": o.status, "findings": sorted(o.raised)}
            for (kind, scenario), o in sorted(baseline.items())
        },
        "mutants": [
            {
                "id": r.mutant.id,
                "class": r.mutant.cls,
                "description": r.mutant.description,
                "killed_by": r.killed_by,
                "evidence": r.evidence,
                "symptoms": sorted(set(r.symptoms)),
                "why_not": r.why_not,
                "seconds": round(r.seconds, 1),
            }
            for r in rows
        ],
    }
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


async def main_async(args: argparse.Namespace) -> int:
    mutants = catalogue_mutants()
    if args.sample:
        mutants = [m for m in mutants if m.id in SAMPLE]
    if args.only:
        mutants = [m for m in mutants if m.id in args.only]
    paths = scenario_paths()
    check_causes(mutants, paths)
    slots = asyncio.Semaphore(args.jobs)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="aigw-mutation-") as tmp:
        work = Path(tmp)
        baseline = await run_baseline(mutants, paths, work, slots)
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(score(m, paths, baseline, work, slots)) for m in mutants]
        rows = [t.result() for t in tasks]
    seconds = time.perf_counter() - started
    undocumented = print_matrix(rows, baseline, seconds)
    if args.json:
        write_json(args.json, rows, baseline, seconds)
    if args.sample and (undocumented or not all(r.killed_by for r in rows)):
        return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sample", action="store_true", help=f"only the CI sample: {', '.join(SAMPLE)}")
    parser.add_argument("--only", nargs="*", default=[], metavar="ID", help="only these mutants")
    parser.add_argument("--jobs", type=int, default=2, help="scenario runs at once (default 2)")
    parser.add_argument("--json", type=Path, help="also write the matrix as JSON to this file")
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
