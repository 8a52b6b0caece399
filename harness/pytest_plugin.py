"""pytest plugin for aigw-harness (registered through the ``pytest11`` entry point as ``aigw``).

Opt-in and lazy: it changes nothing in a run that does not use its options, markers or fixtures. Importing
it loads pytest and the option definitions only; servers, HTTP clients, the scenario runner and the report
load when a fixture is requested or ``--aigw-scenarios`` is given. Disable it with ``-p no:aigw``.

What it adds (``docs/pytest-plugin.md`` has the guide):

- options in the ``aigw`` group, all prefixed ``--aigw-`` (``pytest --help``);
- markers ``aigw(...)`` (fixture configuration), ``aigw_live`` (skipped without ``--aigw-live``) and
  ``aigw_scenario`` (on items collected from scenario files);
- fixtures ``aigw_config``, ``aigw_sut``, ``aigw_chat_url``, ``aigw_sse_client``, ``aigw_fake``,
  ``aigw_gateway`` and ``aigw_run_scenario`` (``aigw_harness.testing.fixtures``, async with pytest-asyncio);
- scenario files named by ``--aigw-scenarios`` collected as test items, one node per scenario with one
  item per expectation and check (``aigw_harness.testing.collect``), reported to ``--aigw-report-dir``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from aigw_harness.testing.options import (
    MARKERS,
    OPTIONS_KEY,
    add_options,
    read_options,
    validate_marker,
)

_FIXTURES_MODULE = "aigw_harness.testing.fixtures"
_LIVE_MARKER_SKIP = "marked aigw_live: it reaches a real Cloudflare account; pass --aigw-live to run it"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS.values():
        config.addinivalue_line("markers", line)
    options = read_options(config)
    config.stash[OPTIONS_KEY] = options
    if options.scenarios:
        from aigw_harness.testing.collect import ScenarioPlugin

        _add_collection_paths(config, options.scenarios)
        config.pluginmanager.register(ScenarioPlugin(config, options), "aigw-scenarios")
    _register_fixtures(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    options = config.stash[OPTIONS_KEY]
    if not options.in_use:
        return []
    where = f" at {options.sut_url}" if options.sut_url else ""
    live = "allowed" if options.live else "not allowed"
    return [f"aigw: target {options.target}{where}; live runs {live}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    options = config.stash[OPTIONS_KEY]
    for item in items:
        for marker in item.iter_markers("aigw"):
            validate_marker(marker.kwargs, marker.args, item.nodeid)
        if not options.live and item.get_closest_marker("aigw_live") is not None:
            item.add_marker(pytest.mark.skip(reason=_LIVE_MARKER_SKIP))


def _add_collection_paths(config: pytest.Config, paths: tuple[Path, ...]) -> None:
    """Scenario paths join the command line's test paths; without any, they replace the defaults."""
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        config.args[:] = []
    given = [(config.invocation_params.dir / arg.split("::", 1)[0]).resolve() for arg in config.args]
    for path in paths:
        resolved = path.resolve()
        if not any(resolved == arg or arg in resolved.parents for arg in given):
            config.args.append(str(resolved))


def _register_fixtures(config: pytest.Config) -> None:
    try:
        fixtures = importlib.import_module(_FIXTURES_MODULE)
    except ImportError as exc:
        if exc.name != "pytest_asyncio":
            raise
        config.pluginmanager.register(_FixturesNeedPytestAsyncio(), "aigw-fixtures")
    else:
        config.pluginmanager.register(fixtures, "aigw-fixtures")


def _needs_pytest_asyncio() -> None:
    pytest.fail(
        "AIGW: the aigw fixtures are async and need pytest-asyncio; install it (pip install pytest-asyncio)",
        pytrace=False,
    )


class _FixturesNeedPytestAsyncio:
    """Stands in for the fixtures when pytest-asyncio is missing, so that requesting one says why."""

    @pytest.fixture
    def aigw_fake(self) -> None:
        _needs_pytest_asyncio()

    @pytest.fixture
    def aigw_gateway(self) -> None:
        _needs_pytest_asyncio()

    @pytest.fixture
    def aigw_sut(self) -> None:
        _needs_pytest_asyncio()

    @pytest.fixture
    def aigw_chat_url(self) -> None:
        _needs_pytest_asyncio()

    @pytest.fixture
    def aigw_sse_client(self) -> None:
        _needs_pytest_asyncio()

    @pytest.fixture
    def aigw_run_scenario(self) -> None:
        _needs_pytest_asyncio()
