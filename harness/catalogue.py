"""Where the scenario catalogue is, in a source checkout and in an installed package alike.

The catalogue (``scenarios/``: scenario files, ``schema.json``, ``tenants/``) is a top-level folder of the
source tree. A wheel installs it as data under ``<prefix>/share/aigw-harness/scenarios``, so that
``aigw run`` works anywhere. The folder used, first match wins:

1. ``AIGW_CATALOGUE`` (``aigw run --catalogue DIR`` sets it for the run);
2. ``./scenarios`` when the working directory has one (a project's own catalogue, or this repository);
3. the source tree's ``scenarios/`` beside the ``harness`` package (an editable install used elsewhere);
4. the installed copy (a wheel), in this environment's data directory or the user's.

A leaf: imports nothing of the project, so the runner's defaults, the loader and the faces can all use it.
"""

from __future__ import annotations

import os
import site
import sysconfig
from pathlib import Path

__all__ = ["CATALOGUE_ENV", "INSTALLED_SUBDIR", "catalogue_dir", "tenants_dir"]

CATALOGUE_ENV = "AIGW_CATALOGUE"
INSTALLED_SUBDIR = Path("share") / "aigw-harness" / "scenarios"


def _candidates() -> list[Path]:
    found: list[Path] = []
    explicit = os.environ.get(CATALOGUE_ENV)
    if explicit:
        return [Path(explicit)]
    found.append(Path("scenarios"))
    found.append(Path(__file__).resolve().parent.parent / "scenarios")
    found.append(Path(sysconfig.get_path("data")) / INSTALLED_SUBDIR)
    user_base = site.getuserbase()
    if user_base:
        found.append(Path(user_base) / INSTALLED_SUBDIR)
    return found


def catalogue_dir() -> Path:
    """The catalogue folder to use; ``./scenarios`` when none is found (errors then name that path)."""
    candidates = _candidates()
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def tenants_dir() -> Path:
    """The tenant files scenarios name by default: the catalogue's ``tenants/``."""
    return catalogue_dir() / "tenants"
