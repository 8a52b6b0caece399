"""The project's source as a build sees it: a copy without build/, .venv/ or node_modules/.

Building from the working tree itself lets setuptools reuse ``build/lib``, where a module that no longer
exists (a renamed package, say) can linger and slip into the wheel; a copy of the files git knows (tracked,
or new and not ignored) cannot carry it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "node_modules", "reports", "*.egg-info", "__pycache__"
)


def source_copy(destination: Path) -> Path:
    """Copy the project's source files into ``destination`` (created) and return it."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=False,
    )  # fmt: skip
    if listed.returncode != 0:  # not a git checkout: everything but the usual outputs
        shutil.copytree(ROOT, destination, ignore=_NOT_SOURCE, symlinks=True)
        return destination
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree, not yet in git
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(source.readlink())
        else:
            shutil.copy2(source, target)
    return destination
