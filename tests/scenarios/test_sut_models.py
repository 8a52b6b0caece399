"""Expected models computed from the SUT's configuration (``primary:TENANT``, ``fallback:TENANT``), and root
causes that mask only the findings their failure can explain."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aigw_fakes.datafiles import DataFileError, parse_model
from aigw_harness.report.results import (
    CheckResult,
    CheckStatus,
    Evidence,
    Exchange,
    FindingResult,
    ScenarioStatus,
)
from aigw_harness.scenarios.assumptions import choose_models, resolve_models
from aigw_harness.scenarios.conformance import RootCause, group_under_root_causes
from aigw_harness.scenarios.kinds import Symptom
from aigw_harness.scenarios.loader import load_scenario
from aigw_harness.scenarios.model import Scenario
from aigw_harness.scenarios.runner import RunOptions, run_scenario
from aigw_harness.scenarios.targets import ScenarioSetup, SutConfig, SystemUnderTest

TENANTS = Path(__file__).parents[2] / "scenarios" / "tenants"
OPTIONS = RunOptions(time_scale=0.02, tenants_dir=TENANTS)
CHAT = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"  # the example tenant's aiModels.chat
FAST = "@cf/meta/llama-3.1-8b-instruct-fast"
SMALL = "@cf/meta/llama-3.2-3b-instruct"

FALLBACK = """\
id: t.fallback
title: the primary fails, the fallback serves
area: fallback
description: d
tenants: [example]
{environment}
upstream:
  default: {{tokens: 3}}
  models:
    "primary:example": [{{error: out_of_capacity}}]
steps:
  - name: ask
    request: {{tenant: example, new_session: true, stream: false}}
    expect: {{status: 200, headers: {{x-model-id: {{model: "fallback:example"}}}}}}
checks:
  - id: attempts
    upstream_calls: {{models: [{{model: "primary:example"}}, {{model: "fallback:example"}}]}}
findings:
  - id: FALLBACK-NOT-TAKEN
    title: t
    severity: high
    evidence: [ask, attempts]
    recommendation: r
"""


def fallback_scenario(environment: str) -> Scenario:
    return parse_model(FALLBACK.format(environment=environment), Scenario, "<test>")


@pytest.mark.parametrize(
    ("environment", "primary", "fallback"),
    [
        # Only the default: the reference gateway sets nothing of its own, so the default applies.
        (f'environment_defaults: {{FALLBACK_MODEL_ID: "{FAST}"}}', CHAT, FAST),
        # MODEL_ID set: the primary follows it, and the fault scripted on primary:example with it.
        (f'environment: {{MODEL_ID: "{FAST}", FALLBACK_MODEL_ID: "{SMALL}"}}', FAST, SMALL),
        # FALLBACK_MODEL_ID unset: the tenant's chat model stands by for MODEL_ID.
        (f'environment: {{MODEL_ID: "{SMALL}"}}', SMALL, CHAT),
    ],
)
async def test_expected_models_follow_the_configuration(
    environment: str, primary: str, fallback: str
) -> None:
    result = await run_scenario(fallback_scenario(environment), OPTIONS)
    assert result.status is ScenarioStatus.PASSED, [c.reason for c in result.checks if c.status == "failed"]
    attempts = next(c for c in result.checks if c.id == "attempts")
    assert attempts.observed["models"] == [primary, fallback]
    assert attempts.expected == f"models ['{primary}' (primary:example), '{fallback}' (fallback:example)]"
    header = next(c for c in result.checks if c.id == "ask.headers.x-model-id")
    assert header.observed == fallback
    assert not [f for f in result.findings if f.raised]


async def test_a_behaviour_rule_can_match_the_model_by_reference() -> None:
    """``rules[].match.model: primary:example`` lands the fault on whichever model the SUT calls first."""
    by_rule = FALLBACK.replace(
        """  models:
    "primary:example": [{{error: out_of_capacity}}]""",
        """  rules:
    - match: {{model: "primary:example"}}
      script: [{{error: out_of_capacity}}]""",
    )
    environment = f'environment: {{MODEL_ID: "{FAST}", FALLBACK_MODEL_ID: "{SMALL}"}}'
    result = await run_scenario(parse_model(by_rule.format(environment=environment), Scenario, "t"), OPTIONS)
    assert result.status is ScenarioStatus.PASSED, [c.reason for c in result.checks if c.status == "failed"]
    attempts = next(c for c in result.checks if c.id == "attempts")
    assert attempts.observed["models"] == [FAST, SMALL]
    # Without the reference resolved, the rule would match no model and the primary would serve.
    literal = by_rule.replace('match: {{model: "primary:example"}}', f'match: {{{{model: "{CHAT}"}}}}')
    missed = await run_scenario(parse_model(literal.format(environment=environment), Scenario, "t"), OPTIONS)
    assert missed.status is ScenarioStatus.FAILED


async def test_a_fallback_the_sut_does_not_have_makes_the_scenario_not_applicable() -> None:
    result = await run_scenario(fallback_scenario(f'environment: {{FALLBACK_MODEL_ID: "{CHAT}"}}'), OPTIONS)
    assert result.status is ScenarioStatus.NOT_APPLICABLE
    assert result.reason == (
        "not applicable: fallback:example (the SUT has no fallback for example: MODEL_ID unset: "
        f"aiModels.chat {CHAT}, FALLBACK_MODEL_ID={CHAT}, the fallback is the primary, so there is no "
        "fallback call)"
    )
    assert not result.findings


async def test_references_resolve_where_they_are_looked_for_and_nowhere_else() -> None:
    """A step's behaviour document resolves like the scenario's; a request body that merely looks like a
    behaviour document is sent as written."""
    scenario = parse_model(
        """\
id: t.where
title: t
area: fallback
description: d
tenants: [example]
steps:
  - name: script
    upstream:
      models: {"fallback:example": [{error: out_of_capacity}]}
      rules: [{match: {model: "primary:example"}, script: [{tokens: 2}]}]
  - name: ask
    request:
      tenant: example
      body: {models: {"primary:example": 1}, rules: [{match: {model: "primary:example"}}]}
""",
        Scenario,
        "<test>",
    )
    tenant = {"tenantId": "example", "aiModels": {"chat": CHAT}}
    setup = ScenarioSetup("t.where", [tenant], {}, "atomic", None, None)
    sut = SystemUnderTest("http://127.0.0.1:9", frozenset(), config=SutConfig({"MODEL_ID": FAST}))
    async with httpx.AsyncClient() as client:
        resolved, problems = await resolve_models(scenario, setup, sut, client)
    assert problems == []
    script, ask = resolved.steps
    assert script.upstream == {
        "models": {CHAT: [{"error": "out_of_capacity"}]},
        "rules": [{"match": {"model": FAST}, "script": [{"tokens": 2}]}],
    }
    assert ask.request is not None
    body = {"models": {"primary:example": 1}, "rules": [{"match": {"model": "primary:example"}}]}
    assert ask.request.body == body


def test_the_platform_precedence() -> None:
    tenant = {"aiModels": {"chat": CHAT}}
    assert (choose_models({}, tenant).primary, choose_models({}, tenant).fallback) == (CHAT, None)
    both = choose_models({"MODEL_ID": FAST, "FALLBACK_MODEL_ID": SMALL}, tenant)
    assert (both.primary, both.fallback) == (FAST, SMALL)
    # An empty variable names no model.
    empty = choose_models({"MODEL_ID": "", "FALLBACK_MODEL_ID": FAST}, tenant)
    assert (empty.primary, empty.fallback) == (CHAT, FAST)
    # With the allow-list on, a fallback outside it is dropped.
    listed = {"aiModels": {"chat": CHAT}, "featureFlags": {"modelAllowList": True}, "allowedModels": [CHAT]}
    dropped = choose_models({"FALLBACK_MODEL_ID": SMALL}, listed)
    assert (dropped.primary, dropped.fallback) == (CHAT, None)
    assert "outside the tenant's allowedModels" in dropped.why


_MODELS = st.sampled_from([CHAT, FAST, SMALL, ""])


@given(
    model_id=st.none() | _MODELS,
    fallback_id=st.none() | _MODELS,
    chat=st.sampled_from([CHAT, FAST]),
    allow=st.none() | st.lists(st.sampled_from([CHAT, FAST, SMALL]), unique=True),
)
def test_the_precedence_invariants(
    model_id: str | None, fallback_id: str | None, chat: str, allow: list[str] | None
) -> None:
    variables = {
        k: v for k, v in (("MODEL_ID", model_id), ("FALLBACK_MODEL_ID", fallback_id)) if v is not None
    }
    tenant: dict[str, object] = {"aiModels": {"chat": chat}}
    if allow is not None:
        tenant.update(featureFlags={"modelAllowList": True}, allowedModels=allow)
    choice = choose_models(variables, tenant)
    assert choice.primary == (model_id or chat)
    assert choice.fallback != choice.primary
    assert choice.fallback in (None, fallback_id or chat)
    if allow is not None and choice.fallback is not None:
        assert choice.fallback in allow


def test_a_reference_to_a_tenant_the_scenario_lacks_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    text = FALLBACK.format(environment="").replace(
        'x-model-id: {model: "fallback:example"}', 'x-model-id: {model: "fallback:beta"}'
    )
    path.write_text(text.replace('"primary:example": [', '"primary:gamma": ['), encoding="utf-8")
    with pytest.raises(DataFileError) as info:
        load_scenario(path, TENANTS)
    found = [(p.field, p.line) for p in info.value.problems]
    assert found == [("steps[0].expect.headers.x-model-id.model", 14), ("upstream.models.primary:gamma", 10)]
    assert "fallback:beta names tenant 'beta', which is not among the scenario's tenants (example)" in str(
        info.value
    )


def test_a_malformed_reference_or_one_beside_equals_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    text = FALLBACK.format(environment="")
    path.write_text(
        text.replace('{model: "fallback:example"}}}', '{model: "backup:example"}}}'), encoding="utf-8"
    )
    with pytest.raises(DataFileError) as info:
        load_scenario(path, TENANTS)
    assert [(p.field, p.line) for p in info.value.problems] == [
        ("steps[0].expect.headers.x-model-id.model", 14)
    ]
    path.write_text(
        text.replace('{model: "fallback:example"}}}', '{model: "fallback:example", equals: x}}}'),
        encoding="utf-8",
    )
    with pytest.raises(
        DataFileError, match="give equals \\(a literal\\) or model \\(a reference\\), not both"
    ):
        load_scenario(path, TENANTS)


def test_environment_defaults_may_not_repeat_what_environment_decides() -> None:
    with pytest.raises(ValueError, match="environment_defaults names variables that environment"):
        fallback_scenario(
            f'environment: {{FALLBACK_MODEL_ID: "{FAST}"}}\n'
            f'environment_defaults: {{FALLBACK_MODEL_ID: "{SMALL}"}}'
        )


# --- masking ---------------------------------------------------------------------------------------------


def exchange(rid: str) -> Exchange:
    return Exchange(id=rid, step="s", method="POST", path="/chat", status=200, started_ms=0.0)


def failed(check_id: str, *requests: str, step: str | None = "s") -> CheckResult:
    return CheckResult(
        id=check_id, step=step, kind="expect" if step else "upstream_calls", status=CheckStatus.FAILED,
        expected="e", exchanges=list(requests),
    )  # fmt: skip


def finding(fid: str, when: str, refs: list[str]) -> FindingResult:
    return FindingResult(
        id=fid, title=fid, severity="high", raised=True, when=when, recommendation="r",
        evidence=[
            Evidence(ref=r, kind="step" if r == "s" else "check", status="failed", summary="") for r in refs
        ],
    )  # fmt: skip


def cause(*requests: str, explains: set[Symptom]) -> RootCause:
    check = CheckResult(id="conformance.stream", kind="conformance", status=CheckStatus.FAILED, expected="e")
    root = FindingResult(id="UPSTREAM-NOT-STREAMED", title="t", severity="high", raised=True, when="failed",
                         recommendation="r", root_cause=True, evidence=[])  # fmt: skip
    return RootCause(check, root, frozenset(requests), frozenset(explains))


def test_a_root_cause_masks_only_what_its_failure_can_explain() -> None:
    exchanges = [exchange("r1"), exchange("r2")]
    checks = [
        failed("s.sse.data_events", "r1"),  # how the answer streamed
        failed("usage-agrees", step=None),  # token counts: a JSON answer carries the model's own
        failed("attempts", step=None),  # which models were called
    ]
    findings = [
        finding("BUFFERED", "failed", ["s"]),
        finding("ESTIMATED", "failed", ["usage-agrees"]),
        finding("MIXED", "failed", ["s", "usage-agrees"]),  # one of its grounds has another cause
        finding("NOT-TAKEN", "failed", ["attempts"]),
        finding("TRUSTED", "passed", ["s"]),  # confirmed behaviour is never a symptom
    ]
    symptoms = {"usage-agrees": frozenset({Symptom.USAGE}), "attempts": frozenset({Symptom.ROUTING})}
    stream = cause("r1", "r2", explains={Symptom.STREAM, Symptom.ROUTING})
    grouped = group_under_root_causes(findings, [stream], exchanges, checks, symptoms)
    assert grouped[0].masks == ["BUFFERED", "NOT-TAKEN"]
    assert {f.id: f.masked_by for f in grouped[1:]} == {
        "BUFFERED": "UPSTREAM-NOT-STREAMED", "ESTIMATED": None, "MIXED": None,
        "NOT-TAKEN": "UPSTREAM-NOT-STREAMED", "TRUSTED": None,
    }  # fmt: skip
    # A check over the whole run is explained only when the cause was seen on every request.
    partial = cause("r1", explains={Symptom.STREAM, Symptom.ROUTING})
    assert group_under_root_causes(findings, [partial], exchanges, checks, symptoms)[0].masks == ["BUFFERED"]
    # Seen on other requests than the failing check's: not its cause.
    elsewhere = cause("r2", explains={Symptom.STREAM})
    assert group_under_root_causes(findings, [elsewhere], exchanges, checks, symptoms)[0].masks == []
