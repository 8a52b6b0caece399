"""The plugin's frame, through pytester: registration, options, markers, and staying out of the way."""

from __future__ import annotations

import re

import pytest

PLAIN_TESTS = """
import pytest

def test_passes():
    assert 1 + 1 == 2

def test_fails():
    assert 1 + 1 == 3

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

@pytest.fixture
def thing():
    return 41

def test_uses_a_fixture(thing):
    assert thing + 1 == 42
"""


def test_registered_through_the_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_plugin_is_loaded(pytestconfig):
            plugin = pytestconfig.pluginmanager.get_plugin("aigw")
            assert plugin is not None and plugin.__name__ == "aigw_harness.pytest_plugin"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_an_unrelated_run_is_unaffected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PLAIN_TESTS)
    with_plugin = pytester.runpytest("-rA")
    without_plugin = pytester.runpytest("-rA", "-p", "no:aigw")

    with_plugin.assert_outcomes(passed=2, failed=1, skipped=1)
    without_plugin.assert_outcomes(passed=2, failed=1, skipped=1)

    def normalised(lines: list[str]) -> list[str]:
        # The only differences allowed: the plugin list and the run's duration.
        kept = [line for line in lines if not line.startswith("plugins:")]
        return [re.sub(r" in [0-9.]+s", " in Ts", line) for line in kept]

    assert normalised(with_plugin.outlines) == normalised(without_plugin.outlines)
    assert "aigw" not in "\n".join(normalised(with_plugin.outlines))


def test_an_unrelated_run_loads_nothing_heavy(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        HEAVY = ["httpx", "uvicorn", "starlette", "jinja2", "mitmproxy", "pydantic", "yaml", "aigw_fakes",
                 "aigw_harness.sse", "aigw_harness.scenarios", "aigw_harness.gateway", "aigw_harness.report",
                 "aigw_harness.testing.sse_client", "aigw_harness.testing.collect"]

        def test_nothing_heavy_is_imported():
            assert "aigw_harness.pytest_plugin" in sys.modules
            assert [name for name in HEAVY if name in sys.modules] == []
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_options_share_one_group_and_prefix(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = result.stdout.str()
    group = text.split("aigw-harness (scenario files as tests, fake gateways, /chat streams):")[1]
    group = group.split("\n\n")[0]
    flags = sorted({word.split("=")[0] for word in group.split() if word.startswith("--")})
    assert flags == [
        "--aigw-baseline",
        "--aigw-live",
        "--aigw-report-dir",
        "--aigw-scenarios",
        "--aigw-seed",
        "--aigw-sut-url",
        "--aigw-target",
        "--aigw-target-option",
        "--aigw-tenants",
        "--aigw-time-scale",
    ]
    assert "--aigw-" not in text.replace(group, "")


def test_markers_are_registered_with_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.aigw(behaviour=None, tenants=None, * configure the aigw fixtures for this test;*",
            "@pytest.mark.aigw_live: the test reaches a real Cloudflare account and may spend money; "
            "skipped unless --aigw-live is given",
            "@pytest.mark.aigw_scenario(id, area): set on the items collected from scenario files; "
            "select them with -m aigw_scenario",
        ]
    )


def test_markers_pass_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.aigw(seed=3)
        @pytest.mark.aigw_scenario("x", "spike")
        def test_marked():
            pass
        """
    )
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--aigw-sut-url", "localhost:8787"],
            "ERROR: --aigw-sut-url 'localhost:8787' is not an http(s) URL; give the base URL that serves "
            "/chat, for example http://127.0.0.1:8787",
        ),
        (
            ["--aigw-target", "url"],
            "ERROR: --aigw-target url needs --aigw-sut-url URL (the deployment to test)",
        ),
        (["--aigw-time-scale", "0"], "ERROR: --aigw-time-scale must be greater than 0, not 0.0"),
        (["--aigw-scenarios", "nowhere"], "ERROR: --aigw-scenarios nowhere: no such file or directory"),
        (["--aigw-tenants", "nowhere"], "ERROR: --aigw-tenants nowhere: no such file or directory"),
        (["--aigw-baseline", "nowhere"], "ERROR: --aigw-baseline nowhere: no such file or directory"),
        (
            ["--aigw-target", "wroker"],
            "ERROR: --aigw-target 'wroker' is not a target: choose one of fake, url, live, replay, worker "
            "or give module:factory",
        ),
        (
            ["--aigw-target", "nosuch.module:factory"],
            "ERROR: --aigw-target 'nosuch.module:factory': no module named 'nosuch.module' can be imported",
        ),
    ],
)
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.lines


def test_unknown_marker_arguments_are_rejected_with_the_allowed_ones(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.aigw(behavior={}, seed=1)
        def test_typo():
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    where = "test_unknown_marker_arguments_are_rejected_with_the_allowed_ones.py::test_typo"
    assert (
        f"ERROR: AIGW: @pytest.mark.aigw on {where} has unknown argument(s) behavior; allowed: behaviour, "
        "budget_store, clock_start, environment, requires, seed, tenants, time_scale" in result.stderr.lines
    )


def test_marker_positional_arguments_are_rejected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.aigw("fast")
        def test_positional():
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: AIGW: @pytest.mark.aigw on *::test_positional takes keyword arguments only*"]
    )


def test_live_tests_are_skipped_without_the_opt_in(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.aigw_live
        def test_against_cloudflare():
            pass

        def test_local():
            pass
        """
    )
    skipped = pytester.runpytest("-rs")
    skipped.assert_outcomes(passed=1, skipped=1)
    skipped.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] *: marked aigw_live: it reaches a real Cloudflare account; "
            "pass --aigw-live to run it"
        ]
    )
    pytester.runpytest("--aigw-live").assert_outcomes(passed=2)


def test_report_header_only_when_the_plugin_is_used(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    assert "aigw:" not in pytester.runpytest().stdout.str()
    result = pytester.runpytest("--aigw-sut-url", "http://127.0.0.1:8787/")
    result.stdout.fnmatch_lines(["aigw: target url at http://127.0.0.1:8787; live runs not allowed"])


def test_configuration_precedence(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from aigw_harness.testing.fixtures import resolve_config

        @pytest.fixture
        def aigw_config():
            return {"seed": 1, "time_scale": 1.0, "budget_store": "kv"}

        @pytest.fixture
        def resolved(request, aigw_config):
            return resolve_config(request, aigw_config)
        """
    )
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.aigw(seed=2, tenants=["alpha"])

        @pytest.fixture
        def flags(pytestconfig):
            seed, scale = pytestconfig.getoption("aigw_seed"), pytestconfig.getoption("aigw_time_scale")
            return {} if seed is None else {"seed": seed, "time_scale": scale}

        def test_fixture_then_module_marker(resolved, flags):
            expected = {"seed": 2, "time_scale": 1.0, "budget_store": "kv", "tenants": ["alpha"]}
            assert resolved == {**expected, **flags}

        @pytest.mark.aigw(seed=3)
        def test_closest_marker_wins(resolved, flags):
            assert resolved["seed"] == flags.get("seed", 3) and resolved["tenants"] == ["alpha"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)
    pytester.runpytest("--aigw-seed", "9", "--aigw-time-scale", "0.5").assert_outcomes(passed=2)


def test_unknown_aigw_config_keys_are_rejected(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from aigw_harness.testing.fixtures import resolve_config

        @pytest.fixture
        def aigw_config():
            return {"timescale": 1}

        @pytest.fixture
        def resolved(request, aigw_config):
            return resolve_config(request, aigw_config)
        """
    )
    pytester.makepyfile("def test_x(resolved): pass")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*AIGW: the aigw_config fixture returned unknown key(s) timescale; allowed: behaviour, "
            "budget_store, clock_start, environment, requires, seed, tenants, time_scale"
        ]
    )


def test_fixtures_without_pytest_asyncio_say_what_is_missing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_wants_the_sut(aigw_chat_url): pass")
    script = pytester.makepyfile(
        run_without_asyncio="""
        import sys

        class NotInstalled:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] == "pytest_asyncio":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, NotInstalled())
        import pytest

        tests = "test_fixtures_without_pytest_asyncio_say_what_is_missing.py"
        # Plain asserts: the assertion rewriter is an import hook of its own that would find the module.
        sys.exit(pytest.main(["-p", "no:asyncio", "-p", "no:cacheprovider", "--assert=plain", tests]))
        """
    )
    result = pytester.runpython(script)
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_wants_the_sut _*",
            "AIGW: the aigw fixtures are async and need pytest-asyncio; install it "
            "(pip install pytest-asyncio)",
        ]
    )


def test_the_public_names_are_complete_and_sorted() -> None:
    import aigw_harness.testing

    assert aigw_harness.testing.__all__ == sorted(aigw_harness.testing.__all__)
    for name in aigw_harness.testing.__all__:
        assert getattr(aigw_harness.testing, name).__name__ == name
    with pytest.raises(AttributeError) as missing:
        _ = aigw_harness.testing.Nothing  # type: ignore[attr-defined]
    assert str(missing.value) == "module 'aigw_harness.testing' has no attribute 'Nothing'"
