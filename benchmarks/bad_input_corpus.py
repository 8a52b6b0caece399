"""Time and memory of refusing bad input files: the corpus of ``tests/hardening/corpus.py``.

    .venv/bin/python benchmarks/bad_input_corpus.py [--repeat 3]

Loads every case of the corpus the way ``aigw`` does (scenario, behaviour, tenant and Wrangler files) and
prints, per case and in total: the time to the refusal (best of ``--repeat``) and the peak memory Python
allocated (tracemalloc). The baseline, measured in the same run, is loading the valid file of the same
kind; each case's time is shown as a ratio to it, so that "refused quickly" means "about as fast as a
valid file is accepted". The process's own peak resident memory closes the report. Nothing is sent over
a network; the load generator is the loader itself, so no other process limits the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aigw_fakes.datafiles import DataFileError
from aigw_harness.errors import HarnessError
from tests.hardening.corpus import CASES, VALID, Kind, loader, write


def _timed(kind: Kind, content: bytes, directory: Path, repeat: int) -> tuple[float, int, bool]:
    """Best time (s), peak traced bytes, and whether the file was refused."""
    path = write(kind, content, directory)
    best = float("inf")
    refused = False
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            loader(kind)(path)
        except (DataFileError, HarnessError):
            refused = True
        best = min(best, time.perf_counter() - started)
    tracemalloc.start()
    with contextlib.suppress(DataFileError, HarnessError):
        loader(kind)(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return best, peak, refused


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best time is shown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        baseline: dict[Kind, float] = {}
        for kind, text in VALID.items():
            baseline[kind], _, _ = _timed(kind, text.encode(), root / f"valid-{kind}", args.repeat)
        print(f"{'case':<40} {'bytes':>10} {'time ms':>9} {'x valid':>8} {'peak MiB':>9}")
        total = 0.0
        worst_peak = 0
        accepted = []
        for index, case in enumerate(CASES):
            seconds, peak, refused = _timed(case.kind, case.content, root / f"case-{index}", args.repeat)
            total += seconds
            worst_peak = max(worst_peak, peak)
            if not refused:
                accepted.append(case.id)
            ratio = seconds / baseline[case.kind] if baseline[case.kind] else float("nan")
            print(
                f"{case.id:<40} {len(case.content):>10,} {seconds * 1000:>9.2f} {ratio:>8.1f} "
                f"{peak / 2**20:>9.1f}"
            )
    print()
    print(
        "baseline (valid file of the same kind, ms): "
        + ", ".join(f"{k} {v * 1000:.2f}" for k, v in baseline.items())
    )
    print(
        f"cases: {len(CASES)}, refused: {len(CASES) - len(accepted)}"
        + (f", ACCEPTED: {accepted}" if accepted else "")
    )
    peak_mib = worst_peak / 2**20
    print(f"total time to refuse all cases: {total:.2f} s; worst peak traced memory: {peak_mib:.1f} MiB")
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak resident memory: {rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
