"""How long the whole scenario catalogue takes on the embedded fake, and how much time compression buys.

    .venv/bin/python benchmarks/catalogue_run.py [--time-scale 0.05] [--paths scenarios]

Runs every scenario once on the ``fake`` target (each with its own fake and reference gateway) and prints:
the wall-clock time of the run (goal: under 60 s at the default time scale); the nominal time the
scenarios' requests represent (the sum of each scenario's span from its first request to the end of its
last response, divided back by the time scale), measured in the same run; and the ratio between the two.
The nominal figure magnifies the harness's own per-request overhead by the same factor, so it overstates
what an uncompressed run would take; the scripted delays alone are the lower bound. Also the slowest
scenarios, since they set the run's length.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from aigw_harness.report.results import ScenarioResult
from aigw_harness.scenarios.loader import load_scenarios
from aigw_harness.scenarios.runner import RunOptions, run_scenarios


def nominal_span_ms(result: ScenarioResult) -> float:
    ends = [e.started_ms + (e.duration_ms or 0.0) for e in result.exchanges]
    return max(ends, default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--time-scale", type=float, default=0.05)
    parser.add_argument("--paths", type=Path, nargs="*", default=[Path("scenarios")])
    args = parser.parse_args()
    loaded = load_scenarios(args.paths)
    started = time.perf_counter()
    results = asyncio.run(run_scenarios(loaded, RunOptions(time_scale=args.time_scale), run_id="bench"))
    wall = time.perf_counter() - started
    nominal = sum(nominal_span_ms(s) for s in results.scenarios) / 1000.0
    s = results.summary
    print(
        f"scenarios: {s.total} ({s.passed} passed, {s.failed} failed, {s.error} errors, {s.skipped} skipped)"
    )
    print(f"requests: {sum(len(r.exchanges) for r in results.scenarios)}")
    print(f"wall-clock: {wall:.1f} s at time scale {args.time_scale} (goal: under 60 s)")
    print(f"nominal time of the requests (overhead included, scaled back): {nominal:.1f} s")
    print(f"ratio nominal / wall-clock: {nominal / wall:.2f}")
    print("slowest scenarios (wall-clock):")
    for result in sorted(results.scenarios, key=lambda r: r.duration_s, reverse=True)[:5]:
        print(f"  {result.duration_s:6.2f} s  {result.id}")


if __name__ == "__main__":
    main()
