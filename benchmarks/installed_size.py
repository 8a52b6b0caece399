"""Installed size of aigw-harness with and without each extra, as a user's ``pip install`` has it.

    .venv/bin/python benchmarks/installed_size.py [--extras proxy,load,speed]

Builds the wheel of this tree once, then for the plain install and for each extra creates a fresh virtual
environment in a temporary folder and installs the wheel with its dependencies from the package index
(the only network this script uses). Prints, per install: the number of distributions installed and the
size of the environment's site-packages, against the baseline of an empty environment measured in the same
run (pip and its own files), so that the figure is what aigw-harness adds. The environments are removed at
the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.packaging.source import source_copy  # noqa: E402


def _run(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"installed_size: {' '.join(map(str, args))} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def _size(folder: Path) -> int:
    total = 0
    for base, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(base) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def _environment(work: Path, name: str, requirement: str | None) -> tuple[int, int]:
    """(distributions, bytes of site-packages) of a fresh venv with ``requirement`` installed."""
    venv = work / name
    _run(sys.executable, "-m", "venv", venv, cwd=work)
    python = venv / "bin" / "python"
    if requirement is not None:
        _run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", requirement, cwd=work)
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = Path(_run(python, "-c", where, cwd=work).strip())
    listed = _run(python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check", cwd=work)
    return len(listed.splitlines()), _size(purelib)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--extras", default="proxy,load,speed", help="comma-separated extras to measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aigw-size-") as temp:
        work = Path(temp)
        source = source_copy(work / "source")  # never a stale build/ of the working tree
        build = ["wheel", "-q", "--no-deps", "--no-build-isolation", "-w", "dist", source]
        _run(sys.executable, "-m", "pip", *build, cwd=work)
        [wheel] = (work / "dist").glob("aigw_harness-*.whl")
        base_count, base_size = _environment(work, "empty", None)
        rows = [("empty venv (baseline)", base_count, base_size)]
        rows.append(("aigw-harness", *_environment(work, "plain", str(wheel))))
        for extra in filter(None, (e.strip() for e in args.extras.split(","))):
            rows.append((f"aigw-harness[{extra}]", *_environment(work, extra, f"{wheel}[{extra}]")))
    print(f"{'install':<28} {'distributions':>13} {'site-packages':>14} {'added':>10}")
    for name, count, size in rows:
        added = f"{(size - base_size) / 2**20:.1f} MiB" if name != rows[0][0] else "-"
        print(f"{name:<28} {count:>13} {size / 2**20:>10.1f} MiB {added:>10}")


if __name__ == "__main__":
    main()
