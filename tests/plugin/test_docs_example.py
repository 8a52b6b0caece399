"""The worked example in docs/pytest-plugin.md runs, as written, against both kinds of system under test."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from aigw_harness.gateway.server import ReferenceGateway
from tests.docs.blocks import named

DOC = "docs/pytest-plugin.md"
ROOT = Path(__file__).resolve().parents[2]


def example() -> str:
    return named(DOC, "example").text


def test_the_example_passes_against_the_reference_gateway(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_chat_stream=example())
    pytester.runpytest().assert_outcomes(passed=4)


def test_the_example_passes_with_the_documented_conftest(pytester: pytest.Pytester) -> None:
    shutil.copytree(ROOT / "scenarios" / "tenants", pytester.path / "tenants")
    pytester.makeconftest(named(DOC, "conftest").text)
    pytester.makepyfile(test_chat_stream=example())
    pytester.runpytest().assert_outcomes(passed=4)


async def test_the_example_runs_against_a_deployment_given_by_url(
    pytester: pytest.Pytester, aigw_gateway: ReferenceGateway
) -> None:
    pytester.makepyfile(test_chat_stream=example())
    # In a thread, so that this test's event loop keeps serving the deployment under test.
    result = await asyncio.to_thread(
        pytester.runpytest_subprocess, "--aigw-sut-url", aigw_gateway.base_url, "-rs"
    )
    result.assert_outcomes(passed=2, skipped=2)
    skipped = (
        "SKIPPED [[]1[]] test_chat_stream.py:*: target 'url' cannot give upstream_control "
        "(scripting the upstream's behaviour (its upstream is not our fake))"
    )
    result.stdout.fnmatch_lines([skipped, skipped])
    assert len(aigw_gateway.metrics.records) == 3  # the contract test one request, the disconnect test two


def _node_missing() -> str | None:
    from aigw_harness.errors import TargetUnavailable
    from aigw_harness.worker.bridge import find_node, node_modules_dir

    try:
        find_node()
        node_modules_dir()
    except TargetUnavailable as exc:
        return str(exc)
    return None


CHAT_WORKER = Path(__file__).resolve().parents[1] / "worker" / "fixtures" / "chat-worker" / "wrangler.jsonc"


@pytest.mark.skipif(_node_missing() is not None, reason=_node_missing() or "")
def test_the_example_runs_against_a_worker_in_workerd(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_chat_stream=example())
    result = pytester.runpytest(
        "--aigw-target",
        "worker",
        "--aigw-target-option",
        f"config={CHAT_WORKER}",
        "--aigw-target-option",
        "env=dev",
        "-k",
        "keeps_the_contract or upstream_cut",
    )
    result.assert_outcomes(passed=2, deselected=2)
