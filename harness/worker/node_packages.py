"""The Worker bridge's npm packages (``miniflare``, which ships workerd, and ``esbuild``): where they are
found, which versions the runner works with, and installing the pinned ones.

They are looked for, first found first used:

1. the place configured: ``--target-option node_modules=DIR``, ``aigw worker serve --node-modules DIR``,
   or ``AIGW_NODE_MODULES`` (a ``node_modules`` folder). When it is set, nothing else is searched;
2. the Worker project's own ``node_modules``, walking up from its Wrangler file (Wrangler brings both
   along; under pnpm's layout they sit beside ``wrangler`` in its store);
3. the ``node_modules`` of an aigw-harness checkout (its developers' ``npm ci``);
4. the per-user cache that ``aigw worker setup`` fills with the versions the harness pins (``runtime/``:
   ``package.json`` and its lock file, shipped in the wheel).

A folder whose versions the runner does not support is skipped and named in the error (or, when another
is used instead, in a warning). Nothing here reaches the network; only ``install`` runs npm.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from aigw_harness.errors import ConfigError, TargetUnavailable

__all__ = [
    "RUNTIME_DIR",
    "SUPPORTED",
    "NodePackages",
    "cache_dir",
    "find_node_packages",
    "install",
    "install_command",
    "pinned_versions",
]

log = logging.getLogger("aigw.worker")

RUNTIME_DIR = Path(__file__).parent / "runtime"
"""``package.json`` and ``package-lock.json`` pinning the versions ``aigw worker setup`` installs."""
_CHECKOUT = Path(__file__).resolve().parents[2]

Version = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Supported:
    """Versions from ``minimum`` up to, not including, ``below``."""

    minimum: Version
    below: Version
    why: str

    def problem(self, name: str, version: str) -> str | None:
        parsed = _parse_version(version)
        if parsed is None:
            return f"{name} {version!r} is not a version this harness can read"
        if parsed < self.minimum:
            return f"{name} {version} is older than supported ({self.describe()}; {self.why})"
        if parsed[: len(self.below)] >= self.below:
            return f"{name} {version} is newer than supported ({self.describe()})"
        return None

    def describe(self) -> str:
        return f"{_dotted(self.minimum)} or newer, below {_dotted(self.below)}"


SUPPORTED: dict[str, Supported] = {
    # Request.signal for incoming requests (the compatibility flag enable_request_signal, May 2025) and
    # Miniflare's handleStructuredLogs; Miniflare 5 takes its options in another shape.
    "miniflare": Supported(
        (4, 20250705, 0), (5,), "the runner needs workerd's enable_request_signal and structured logs"
    ),
    # esbuild's 0.x minor releases may change its API; these are the ones the runner was run with.
    "esbuild": Supported((0, 25, 0), (0, 29), "the runner's build options"),
}


@dataclass(frozen=True, slots=True)
class NodePackages:
    """A ``node_modules`` folder holding supported ``miniflare`` and ``esbuild``, and where it came from."""

    node_modules: Path
    versions: dict[str, str]
    source: str

    def describe(self) -> str:
        listed = ", ".join(f"{name} {version}" for name, version in sorted(self.versions.items()))
        return f"{listed} from {self.source} ({self.node_modules})"


def _parse_version(text: str) -> Version | None:
    match = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", text.strip())
    return tuple(int(part) for part in match.groups()) if match else None


def _dotted(version: Version) -> str:
    return ".".join(str(part) for part in version)


def pinned_versions() -> dict[str, str]:
    """The exact versions ``aigw worker setup`` installs, from the shipped ``runtime/package.json``."""
    manifest = json.loads((RUNTIME_DIR / "package.json").read_text(encoding="utf-8"))
    return {name: str(version) for name, version in manifest["dependencies"].items()}


def cache_dir() -> Path:
    """Where ``aigw worker setup`` installs the pinned versions: one folder per set of pins, under
    ``AIGW_CACHE_DIR``, else ``$XDG_CACHE_HOME/aigw-harness``, else ``~/.cache/aigw-harness``."""
    if configured := os.environ.get("AIGW_CACHE_DIR"):
        root = Path(configured)
    elif xdg := os.environ.get("XDG_CACHE_HOME"):
        root = Path(xdg) / "aigw-harness"
    else:
        root = Path.home() / ".cache" / "aigw-harness"
    pins = "-".join(f"{name}-{version}" for name, version in sorted(pinned_versions().items()))
    return root / "node" / pins


def _installed_version(node_modules: Path, name: str) -> str | None:
    try:
        manifest = json.loads((node_modules / name / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    version = manifest.get("version") if isinstance(manifest, dict) else None
    return str(version) if version is not None else ""


def _project_candidates(project_dirs: Iterable[Path]) -> Iterator[Path]:
    """The ``node_modules`` folders a Worker project's packages can be in, nearest first."""
    for start in project_dirs:
        for folder in (start, *start.parents):
            node_modules = folder / "node_modules"
            if not node_modules.is_dir():
                continue
            yield node_modules
            wrangler = node_modules / "wrangler"
            if wrangler.is_dir():
                real = wrangler.resolve()
                yield real.parent  # pnpm: .pnpm/wrangler@x/node_modules holds wrangler's dependencies
                yield real / "node_modules"  # npm, when its versions could not be hoisted


def _examine(node_modules: Path, source: str) -> NodePackages | str | None:
    """The packages there, a reason they cannot be used, or ``None`` when neither is installed there."""
    versions = {name: _installed_version(node_modules, name) for name in SUPPORTED}
    if all(version is None for version in versions.values()):
        return None
    problems: list[str] = []
    for name, version in versions.items():
        if version is None:
            problems.append(f"{name} is not installed there")
        elif problem := SUPPORTED[name].problem(name, version):
            problems.append(problem)
    if problems:
        return f"{source} ({node_modules}): {'; '.join(problems)}"
    return NodePackages(node_modules, {k: str(v) for k, v in versions.items()}, source)


def _setup_hint() -> str:
    pins = ", ".join(f"{name} {version}" for name, version in sorted(pinned_versions().items()))
    return (
        f"run 'aigw worker setup' to install the versions this harness pins ({pins}) into "
        f"{cache_dir()} (it needs npm), or point --target-option node_modules=DIR (or AIGW_NODE_MODULES) "
        "at a node_modules folder that has supported versions"
    )


def find_node_packages(
    project_dirs: Sequence[Path] = (), configured: str | Path | None = None
) -> NodePackages:
    """The ``node_modules`` the bridge runs with (see the module's documentation for the order).

    ``project_dirs`` are where the Worker project's own packages are looked for (and above);
    ``configured`` (or ``AIGW_NODE_MODULES``) replaces the search. Raises ``TargetUnavailable`` naming
    every folder that was found unusable and how to install supported versions.
    """
    chosen = configured or os.environ.get("AIGW_NODE_MODULES") or None
    if chosen is not None:
        where = Path(chosen).expanduser()
        label = "node_modules=" if configured else "AIGW_NODE_MODULES="
        found = _examine(where, f"the configured folder {label}{chosen}")
        if isinstance(found, NodePackages):
            return found
        reason = found or f"{label}{chosen}: neither miniflare nor esbuild is installed in {where}"
        raise TargetUnavailable(f"the Worker bridge cannot use {reason}; {_setup_hint()}")

    searched: list[tuple[Path, str]] = [
        (candidate, "the Worker project") for candidate in _project_candidates(project_dirs)
    ]
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "harness").is_dir():
        searched.append((_CHECKOUT / "node_modules", "the aigw-harness checkout"))
    searched.append((cache_dir() / "node_modules", "the aigw cache ('aigw worker setup')"))

    unusable: list[str] = []
    seen: set[Path] = set()
    for node_modules, source in searched:
        if node_modules in seen:
            continue
        seen.add(node_modules)
        found = _examine(node_modules, source)
        if isinstance(found, NodePackages):
            for reason in unusable:
                log.warning("the Worker bridge skipped %s; using %s", reason, found.describe())
            return found
        if found is not None:
            unusable.append(found)
    needed = "; ".join(f"{name} {supported.describe()}" for name, supported in SUPPORTED.items())
    found_note = "".join(f"\n  unusable: {reason}" for reason in unusable)
    raise TargetUnavailable(
        f"the Worker bridge needs the npm packages miniflare and esbuild ({needed}), and none usable was "
        f"found in the Worker project, in the aigw cache or configured{found_note}\n  {_setup_hint()}"
    )


def install_command(prefix: Path, npm: str = "npm") -> list[str]:
    """The command that installs the pinned packages into ``prefix/node_modules`` from the lock file."""
    return [npm, "ci", "--prefix", str(prefix), "--no-audit", "--no-fund", "--omit=dev"]


def install(prefix: Path | None = None) -> NodePackages:
    """Install the pinned ``miniflare`` and ``esbuild`` into ``prefix`` (default ``cache_dir()``) with
    npm, from the shipped lock file; returns what the bridge will then find there."""
    target = (prefix or cache_dir()).expanduser().resolve()
    npm = os.environ.get("AIGW_NPM") or shutil.which("npm")
    if not npm:
        raise TargetUnavailable(
            "aigw worker setup needs npm, which comes with Node.js 20.18 or newer, and 'npm' is not on "
            f"PATH (or set AIGW_NPM to it); or install miniflare and esbuild yourself with npm into {target}"
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(RUNTIME_DIR / name, target / name)
    except OSError as exc:
        raise ConfigError(f"cannot prepare {target} for the npm packages: {exc.strerror}") from None
    command = install_command(target, npm)
    log.info("running %s", " ".join(command))
    done = subprocess.run(command, cwd=target, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n  ".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise TargetUnavailable(f"'{' '.join(command)}' failed (exit status {done.returncode}):\n  {tail}")
    found = _examine(target / "node_modules", f"the folder {target}")
    if not isinstance(found, NodePackages):
        raise TargetUnavailable(f"npm finished but {found or 'nothing was installed in ' + str(target)}")
    return found
