"""The ``aigw`` pytest options and markers: their names, help, validation and typed values.

Kept free of heavy imports: the plugin reads options in every pytest run where the package is installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

__all__ = [
    "CONFIG_KEYS",
    "DEFAULT_TARGET",
    "LIVE_TARGETS",
    "MARKERS",
    "OPTIONS_KEY",
    "AigwOptions",
    "add_options",
    "live_skip_reason",
    "read_options",
    "validate_marker",
]

DEFAULT_TARGET = "fake"
LIVE_TARGETS = frozenset({"live"})
"""Targets that reach a real Cloudflare account: they run only with ``--aigw-live``."""

CONFIG_KEYS = (
    "behaviour",
    "budget_store",
    "clock_start",
    "environment",
    "requires",
    "seed",
    "tenants",
    "time_scale",
)
"""What ``@pytest.mark.aigw(...)`` and the ``aigw_config`` fixture may set for the fixtures."""

MARKERS = {
    "aigw": "aigw(behaviour=None, tenants=None, environment=None, budget_store=None, clock_start=None, "
    "requires=None, seed=None, time_scale=None): configure the aigw fixtures for this test; overrides the "
    "aigw_config fixture and is overridden by --aigw-seed/--aigw-time-scale",
    "aigw_live": "aigw_live: the test reaches a real Cloudflare account and may spend money; skipped "
    "unless --aigw-live is given",
    "aigw_scenario": "aigw_scenario(id, area): set on the items collected from scenario files; select "
    "them with -m aigw_scenario",
}


@dataclass(frozen=True, slots=True)
class AigwOptions:
    """The ``--aigw-*`` options after validation."""

    scenarios: tuple[Path, ...] = ()
    target: str = DEFAULT_TARGET
    sut_url: str | None = None
    live: bool = False
    report_dir: Path | None = None
    tenants_dir: Path | None = None
    seed: int | None = None
    time_scale: float | None = None
    target_options: tuple[tuple[str, str], ...] = ()
    """``--aigw-target-option KEY=VALUE`` pairs, in the order given."""
    baseline: Path | None = None
    """``--aigw-baseline FILE``: checks failing in it are expected failures (strict) of the scenario items."""

    @property
    def in_use(self) -> bool:
        """Whether the run asked for anything of the plugin (it stays silent otherwise)."""
        return self != AigwOptions()


OPTIONS_KEY = pytest.StashKey[AigwOptions]()


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("aigw", "aigw-harness (scenario files as tests, fake gateways, /chat streams)")
    group.addoption(
        "--aigw-scenarios",
        action="append",
        default=[],
        metavar="PATH",
        help="run the scenario files in PATH (a .yaml file or a directory; repeatable) as test items. "
        "They join the test paths given on the command line; without any, only the scenarios run.",
    )
    group.addoption(
        "--aigw-target",
        metavar="NAME",
        help="where scenarios run: fake (default: the fake and the reference gateway in-process), url, "
        "live, replay, worker, or module:factory",
    )
    group.addoption(
        "--aigw-sut-url",
        metavar="URL",
        help="the system under test: any deployment serving the /chat contract (implies --aigw-target url)",
    )
    group.addoption(
        "--aigw-target-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option for the target, repeatable (url: upstream_url, account_id, api_token)",
    )
    group.addoption(
        "--aigw-live",
        action="store_true",
        default=False,
        help="allow what reaches a real Cloudflare account (--aigw-target live, tests marked aigw_live); "
        "without it they are skipped with the reason",
    )
    group.addoption(
        "--aigw-report-dir",
        metavar="DIR",
        help="write results.json, report.md and report.html for the scenarios that ran into DIR",
    )
    group.addoption(
        "--aigw-tenants",
        metavar="DIR",
        help="where scenarios find tenant files by name (default: the tenants folder next to them)",
    )
    group.addoption(
        "--aigw-baseline",
        metavar="FILE",
        help="a baseline (aigw baseline update): scenario checks that fail in it are expected failures, "
        "strictly (one that passes now fails the run until the baseline is updated); timing checks loosely",
    )
    group.addoption("--aigw-seed", type=int, metavar="N", help="seed for generated text and jitter")
    group.addoption(
        "--aigw-time-scale",
        type=float,
        metavar="X",
        help="multiply every scripted delay by X (0.05 runs 20 times faster, keeping the order of events)",
    )


def read_options(config: pytest.Config) -> AigwOptions:
    """The validated options; a bad value is a ``pytest.UsageError`` naming the flag."""
    get = config.getoption
    sut_url: str | None = get("aigw_sut_url")
    target: str | None = get("aigw_target")
    if sut_url is not None:
        parts = urlsplit(sut_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise pytest.UsageError(
                f"--aigw-sut-url {sut_url!r} is not an http(s) URL; give the base URL that serves /chat, "
                "for example http://127.0.0.1:8787"
            )
        sut_url = sut_url.rstrip("/")
    if target is None:
        target = "url" if sut_url is not None else DEFAULT_TARGET
    if not target:
        raise pytest.UsageError("--aigw-target is empty; give a target name such as fake or url")
    if get("aigw_target") is not None:
        _known_target(target)
    if target == "url" and sut_url is None:
        raise pytest.UsageError("--aigw-target url needs --aigw-sut-url URL (the deployment to test)")
    time_scale: float | None = get("aigw_time_scale")
    if time_scale is not None and not time_scale > 0:
        raise pytest.UsageError(f"--aigw-time-scale must be greater than 0, not {time_scale}")
    scenarios = tuple(_existing(Path(p), "--aigw-scenarios", config) for p in get("aigw_scenarios"))
    pairs: list[tuple[str, str]] = []
    for text in get("aigw_target_option"):
        key, equals, value = text.partition("=")
        if not equals or not key:
            raise pytest.UsageError(f"--aigw-target-option expects KEY=VALUE, not {text!r}")
        pairs.append((key, value))
    tenants: str | None = get("aigw_tenants")
    report_dir: str | None = get("aigw_report_dir")
    baseline: str | None = get("aigw_baseline")
    return AigwOptions(
        scenarios=scenarios,
        target=target,
        sut_url=sut_url,
        live=bool(get("aigw_live")),
        report_dir=_absolute(Path(report_dir), config) if report_dir else None,
        tenants_dir=_existing(Path(tenants), "--aigw-tenants", config) if tenants else None,
        seed=get("aigw_seed"),
        time_scale=time_scale,
        target_options=tuple(pairs),
        baseline=_existing(Path(baseline), "--aigw-baseline", config) if baseline else None,
    )


def _known_target(target: str) -> None:
    """An unknown target is a usage error at start, not an error on every test that uses the fixtures."""
    # The registry module is light (no servers, no HTTP clients): the plugin may read it in every run.
    from aigw_harness.scenarios.targets import REGISTRY

    if target in REGISTRY:
        return
    module, colon, factory = target.partition(":")
    if not colon or not module or not factory:
        raise pytest.UsageError(
            f"--aigw-target {target!r} is not a target: choose one of {', '.join(REGISTRY)} "
            "or give module:factory"
        )
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise pytest.UsageError(f"--aigw-target {target!r}: no module named {module!r} can be imported")


def live_skip_reason(options: AigwOptions) -> str | None:
    """Why scenarios cannot run on the chosen target without the live opt-in, or ``None``."""
    if options.target in LIVE_TARGETS and not options.live:
        return (
            f"target {options.target!r} calls a real Cloudflare account and may spend money; "
            "pass --aigw-live to run it"
        )
    return None


def validate_marker(kwargs: Mapping[str, Any], args: tuple[Any, ...], where: str) -> None:
    """Reject what ``@pytest.mark.aigw`` does not know, listing what it does."""
    if args:
        raise pytest.UsageError(
            f"AIGW: @pytest.mark.aigw on {where} takes keyword arguments only "
            f"({', '.join(CONFIG_KEYS)}), not {args!r}"
        )
    unknown = sorted(set(kwargs) - set(CONFIG_KEYS))
    if unknown:
        raise pytest.UsageError(
            f"AIGW: @pytest.mark.aigw on {where} has unknown argument(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(CONFIG_KEYS)}"
        )


def _absolute(path: Path, config: pytest.Config) -> Path:
    return path if path.is_absolute() else config.invocation_params.dir / path


def _existing(path: Path, flag: str, config: pytest.Config) -> Path:
    resolved = _absolute(path, config)
    if not resolved.exists():
        raise pytest.UsageError(f"{flag} {path}: no such file or directory")
    return resolved
