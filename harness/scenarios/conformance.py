"""Root causes first: conformance of the SUT's upstream calls, and whether scripted faults were delivered.

Every scenario whose SUT made upstream calls gets these checks, whatever the scenario itself checks,
because a wrong call is usually the single cause of many symptoms:

- a client asked for a stream and the SUT called Workers AI without ``stream`` in the inputs (the binding
  streams on ``inputs.stream``; ``stream`` in the options argument is ignored and JSON comes back);
- a call went to Workers AI without AI Gateway (no gateway id);
- more than AI Gateway's five metadata entries were sent, or tenant attribution (``tenantId``) is not in
  what AI Gateway stored;
- a call was repeated for one request after it had succeeded;
- the upstream call was read to the end after the client went away.

Each failed check becomes a root-cause finding; the scenario's own raised findings on the same requests
are grouped under it (``masks``). A fault scripted for streamed calls (cuts, stalls, error or malformed
frames) is only delivered when the SUT streams: when none of a step's upstream calls was streamed, the
step's checks are ``not exercised`` with the reason, instead of judging what the fault would have caused.

Pure functions over observations; no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aigw_harness.report.results import CheckResult, CheckStatus, Evidence, Exchange, FindingResult
from aigw_harness.scenarios.checks import Observations, check_result
from aigw_harness.scenarios.kinds import Symptom, expectation_symptoms, measurement_kind
from aigw_harness.scenarios.targets import UpstreamCall

__all__ = ["RootCause", "conformance", "fault_not_exercised", "group_under_root_causes"]

_METADATA_LIMIT = 5  # AI Gateway keeps the first five custom metadata entries
# Stream faults of the fake's behaviour documents: applied to streamed calls only.
_STREAM_FAULTS = ("cut_after_events", "cut_after_bytes", "stall", "malformed_frame", "error_frame")


@dataclass(frozen=True, slots=True)
class RootCause:
    check: CheckResult
    finding: FindingResult
    failing: frozenset[str] = frozenset()
    """The requests the cause was seen on."""
    explains: frozenset[Symptom] = frozenset()
    """The symptoms it can produce (declared with the cause)."""


def _calls_by_exchange(observations: Observations) -> dict[str, list[UpstreamCall]]:
    return {
        e.id: observations.by_trace.get(e.trace_id or "", []) for e in observations.exchanges if e.trace_id
    }


def _asked_stream(exchange: Exchange) -> bool:
    body = exchange.request_body
    if exchange.method != "POST" or not isinstance(body, Mapping) or exchange.status != 200:
        return False
    return body.get("stream", True) is True  # the platform's /chat streams by default


def _sent_metadata(call: UpstreamCall) -> dict[str, Any] | None:
    header = call.request_headers.get("cf-aig-metadata")
    if header:
        try:
            value = json.loads(header)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    options = (call.request or {}).get("options")
    gateway = options.get("gateway") if isinstance(options, Mapping) else None
    metadata = gateway.get("metadata") if isinstance(gateway, Mapping) else None
    return dict(metadata) if isinstance(metadata, Mapping) else None


def _unstreamed(call: UpstreamCall) -> bool:
    """The call did not ask to stream: read from its inputs where the request body is known (whatever the
    call's outcome: a call the SUT gave up on was still made unstreamed), else from an answer that was not
    streamed although it succeeded."""
    inputs = (call.request or {}).get("inputs")
    if isinstance(inputs, Mapping):
        return inputs.get("stream") is not True
    return call.stream is False and call.status < 400


def _why_not_streamed(call: UpstreamCall) -> str:
    request = call.request or {}
    inputs, options = request.get("inputs"), request.get("options")
    if isinstance(inputs, Mapping) and "stream" not in inputs:
        if isinstance(options, Mapping) and options.get("stream") is True:
            return (
                "`stream: true` was passed in the options argument of env.AI.run, not in the inputs; the "
                "binding streams on inputs.stream, so it answered JSON"
            )
        return "env.AI.run was called without `stream: true` in the inputs, so the binding answered JSON"
    return "the upstream call was not a streamed one"


def _check(name: str, description: str, problems: list[str], exchanges: Iterable[str], log_ids: list[str],
           observed: Any) -> CheckResult:  # fmt: skip
    ids = list(dict.fromkeys(exchanges))
    return check_result(f"conformance.{name}", "conformance", description, problems, description, observed,
                        exchanges=ids, log_ids=log_ids)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _RootCauseKind:
    finding_id: str
    severity: str
    title: str
    recommendation: str
    explains: frozenset[Symptom]
    """The symptoms this cause can produce: a finding is its symptom only when every failing check the
    finding rests on shows one of them."""


_ROOT_CAUSES: dict[str, _RootCauseKind] = {}


def _root_cause(name: str, finding_id: str, severity: str, title: str, recommendation: str,
                explains: Iterable[Symptom]) -> None:  # fmt: skip
    _ROOT_CAUSES[name] = _RootCauseKind(finding_id, severity, title, recommendation, frozenset(explains))


# An unstreamed call changes how the answer streams, when failures surface (and so which model serves)
# and what the client is sent; it does not explain usage figures: the binding's JSON answer carries the
# model's usage, so a wrong count there has its own cause.
_root_cause(
    "stream",
    "UPSTREAM-NOT-STREAMED",
    "high",
    "The client asked for a stream, but the SUT's upstream call was not streamed",
    "Put `stream: true` in the inputs of env.AI.run (the second argument), not in its options.",
    [Symptom.STREAM, Symptom.ROUTING, Symptom.ENVELOPE],
)
# Without AI Gateway nothing is logged or attributed, and its fallbacks and cost figures are missing.
_root_cause(
    "gateway",
    "UPSTREAM-WITHOUT-GATEWAY",
    "high",
    "Upstream calls bypass AI Gateway (no gateway id)",
    "Pass `{gateway: {id}}` in the options of every env.AI.run call.",
    [Symptom.ATTRIBUTION, Symptom.USAGE],
)
_root_cause(
    "metadata",
    "UPSTREAM-METADATA-ATTRIBUTION",
    "medium",
    "Tenant attribution does not reach AI Gateway's logs (over five metadata entries, or no tenantId)",
    "Send at most five metadata entries, tenantId among the first five.",
    [Symptom.ATTRIBUTION],
)
# A repeated call changes the calls made and what they bill.
_root_cause(
    "repeated",
    "UPSTREAM-CALL-REPEATED",
    "medium",
    "An upstream call that had succeeded was made again for the same request",
    "Call the model once per candidate; retry only after a failure.",
    [Symptom.ROUTING, Symptom.USAGE],
)
# A stream read to the end after the client left bills the whole answer and shows as an uncut call.
_root_cause(
    "cancelled",
    "UPSTREAM-NOT-CANCELLED",
    "medium",
    "The upstream call is read to the end after the client went away",
    "Cancel the upstream stream (reader.cancel or an AbortSignal) when a write to the client fails.",
    [Symptom.ROUTING, Symptom.USAGE],
)


def conformance(observations: Observations) -> list[RootCause]:
    """The conformance checks that apply to what the SUT asked upstream, each with its root-cause finding
    (raised when the check failed)."""
    calls = observations.upstream
    if not calls:
        return []
    by_exchange = _calls_by_exchange(observations)
    mapped = any(by_exchange.values())
    out: list[CheckResult] = []

    # Streams asked for, streamed upstream.
    streamed_asks = [e for e in observations.exchanges if _asked_stream(e)]
    if streamed_asks:
        problems: list[str] = []
        failing: list[str] = []
        if mapped:
            pairs = [(e, c) for e in streamed_asks for c in by_exchange.get(e.id, [])]
        elif len(streamed_asks) == len([e for e in observations.exchanges if e.method == "POST"]):
            pairs = [(streamed_asks[0], c) for c in calls]  # every request asked for a stream
        else:
            pairs = []
        for exchange, call in pairs:
            if _unstreamed(call):
                failing.append(exchange.id)
                if len(problems) < 1:
                    problems.append(
                        f"{exchange.id}: call {call.id} to {call.model}: {_why_not_streamed(call)}"
                    )
        if pairs:
            if len(failing) > 1:
                problems.append(f"{len(set(failing))} requests in all")
            out.append(
                _check(
                    "stream",
                    "a request asking for a stream is streamed upstream (stream in the inputs)",
                    problems,
                    failing + [e.id for e, _ in pairs],
                    [c.log_id for _, c in pairs if c.log_id and not c.stream],
                    {"calls": len(pairs), "not_streamed": sum(1 for _, c in pairs if _unstreamed(c))},
                )
            )

    # Through AI Gateway.
    without = [c for c in calls if not c.gateway_id]
    out.append(
        _check(
            "gateway",
            "every upstream call goes through AI Gateway (a gateway id)",
            [f"call {c.id} to {c.model} had no gateway" for c in without],
            [],
            [],
            {"calls": len(calls), "without_gateway": len(without)},
        )
    )

    # Metadata within AI Gateway's limit, tenant attribution kept.
    problems = []
    failing = []
    for exchange in observations.exchanges:
        for call in by_exchange.get(exchange.id, []) if mapped else []:
            sent = _sent_metadata(call)
            if sent is not None and len(sent) > _METADATA_LIMIT:
                failing.append(exchange.id)
                problems.append(
                    f"{exchange.id}: {len(sent)} metadata entries sent, AI Gateway keeps {_METADATA_LIMIT} "
                    f"(kept: {', '.join(call.metadata)})"
                )
            if exchange.tenant and call.gateway_id and call.metadata.get("tenantId") != exchange.tenant:
                failing.append(exchange.id)
                problems.append(
                    f"{exchange.id}: tenantId {exchange.tenant!r} is not in the stored metadata "
                    f"{json.dumps(dict(call.metadata), default=str)}"
                )
    if mapped:
        out.append(
            _check(
                "metadata",
                f"at most {_METADATA_LIMIT} metadata entries, tenantId among those AI Gateway keeps",
                problems,
                failing,
                [],
                {"problems": len(problems)},
            )
        )

    # One successful call per candidate.
    if mapped:
        problems = []
        failing = []
        for exchange_id, mine in by_exchange.items():
            succeeded: set[str] = set()
            for call in mine:
                model = call.model or ""
                if model in succeeded:
                    failing.append(exchange_id)
                    problems.append(f"{exchange_id}: {model} called again after it had answered")
                if call.status < 400 and call.complete and not call.cut:
                    succeeded.add(model)
        out.append(
            _check(
                "repeated",
                "no upstream call is repeated after it succeeded",
                problems,
                failing,
                [],
                {"problems": len(problems)},
            )
        )

    # The upstream is cancelled when the client leaves.
    left = [e for e in observations.exchanges if e.disconnected]
    if left and mapped:
        problems = []
        failing = []
        for exchange in left:
            for call in by_exchange.get(exchange.id, []):
                if call.stream and call.complete and not call.cut:
                    failing.append(exchange.id)
                    problems.append(
                        f"{exchange.id}: call {call.id} was read to the end after the client left"
                    )
        out.append(
            _check(
                "cancelled",
                "after the client goes away, the upstream stream is cancelled",
                problems,
                failing + [e.id for e in left],
                [],
                {"disconnected": len(left)},
            )
        )

    causes: list[RootCause] = []
    for check in out:
        failing_ids = frozenset(check.exchanges if check.status is CheckStatus.FAILED else ())
        kind = _ROOT_CAUSES[check.id.removeprefix("conformance.")]
        causes.append(
            RootCause(
                check,
                FindingResult(
                    id=kind.finding_id,
                    title=kind.title,
                    severity=kind.severity,
                    raised=check.status is CheckStatus.FAILED,
                    when="failed",
                    detail=check.reason,
                    recommendation=kind.recommendation,
                    evidence=[
                        Evidence(
                            ref=check.id,
                            kind="check",
                            status=check.status.value,
                            summary=f"{check.id}: expected {check.expected}; {check.reason or 'held'}",
                            exchanges=check.exchanges,
                            log_ids=check.log_ids,
                            observed=check.observed,
                        )
                    ],
                    root_cause=True,
                ),
                failing_ids,
                kind.explains,
            )
        )
    return causes


def _stream_faults(document: Any) -> list[str]:
    """The stream faults a behaviour document scripts anywhere (default, rules, models)."""
    found: list[str] = []
    if isinstance(document, Mapping):
        for key, value in document.items():
            if key == "stream" and isinstance(value, Mapping):
                found.extend(f"stream.{k}" for k in _STREAM_FAULTS if value.get(k))
            else:
                found.extend(_stream_faults(value))
    elif isinstance(document, list):
        for item in document:
            found.extend(_stream_faults(item))
    return list(dict.fromkeys(found))


def fault_not_exercised(
    step_behaviour: Mapping[str, Any], observations: Observations, compressed_against: float | None = None
) -> dict[str, str]:
    """Step name → why its scripted stream fault was not delivered: none of its calls was streamed, or
    (``compressed_against``: the run's time scale, when the SUT's own timers do not follow it) a stall was
    shortened by time compression while the SUT's timeouts kept real time."""
    by_exchange = _calls_by_exchange(observations)
    mapped = any(by_exchange.values())
    out: dict[str, str] = {}
    undelivered: dict[int, str] = {}  # behaviour document (by identity) → the step whose fault it missed
    for step, document in step_behaviour.items():
        faults = _stream_faults(document)
        if not faults:
            continue
        exchanges = [e for e in observations.exchanges if e.step == step]
        if mapped:
            calls = [c for e in exchanges for c in by_exchange.get(e.id, [])]
        else:
            calls = list(observations.upstream or [])
        if calls and not any(c.stream for c in calls):
            undelivered.setdefault(id(document), step)
            out[step] = (
                f"fault not exercised: {', '.join(faults)} applies to streamed upstream calls, and the SUT's "
                f"{len(calls)} call(s) for step {step} were not streamed ({_why_not_streamed(calls[0])})"
            )
        elif not calls and mapped and id(document) in undelivered:
            # A step that calls nothing upstream (reading a session's history) sees what the fault of an
            # earlier step under the same behaviour caused: nothing, when that fault was not delivered.
            out[step] = (
                f"fault not exercised: step {step} reads the outcome of step {undelivered[id(document)]}, "
                f"whose {', '.join(faults)} was not delivered (its upstream calls were not streamed)"
            )
        elif compressed_against is not None and "stream.stall" in faults:
            out[step] = (
                f"fault not exercised: stream.stall is shortened {1 / compressed_against:g} times by "
                "--time-scale while the SUT's own timeouts run in real time; run with --time-scale 1"
            )
    return out


@dataclass(frozen=True, slots=True)
class _Ground:
    """One failing check (or measurement) a raised finding rests on."""

    shows: frozenset[Symptom]
    requests: frozenset[str]
    """The requests it concerns; empty when it covers the whole run (an upstream or ledger check)."""


def _grounds(
    finding: FindingResult,
    checks: Mapping[str, CheckResult],
    by_step: Mapping[str, Sequence[CheckResult]],
    symptoms: Mapping[str, frozenset[Symptom]],
) -> list[_Ground] | None:
    """What a raised finding rests on, or ``None`` when no root cause can explain it: it states confirmed
    behaviour (``when: passed``), or it rests on nothing that failed."""
    if finding.when == "passed":
        return None
    grounds: list[_Ground] = []
    for evidence in finding.evidence:
        if evidence.kind == "measurement":
            if finding.when == "always" and evidence.status == "measured":
                try:
                    shows = measurement_kind(evidence.ref).symptoms
                except KeyError:
                    shows = frozenset()
                grounds.append(_Ground(shows, frozenset()))
            continue
        found = [checks[evidence.ref]] if evidence.ref in checks else list(by_step.get(evidence.ref, ()))
        for check in found:
            if check.status is not CheckStatus.FAILED:
                continue
            shows = (
                expectation_symptoms(check.id.removeprefix(f"{check.step}."))
                if check.step is not None
                else symptoms.get(check.id, frozenset())
            )
            grounds.append(_Ground(shows, frozenset(check.exchanges)))
    return grounds or None


def group_under_root_causes(
    findings: Sequence[FindingResult],
    causes: Sequence[RootCause],
    exchanges: Sequence[Exchange],
    checks: Sequence[CheckResult] = (),
    symptoms: Mapping[str, frozenset[Symptom]] | None = None,
) -> list[FindingResult]:
    """Root-cause findings first, each masking the raised findings it can explain.

    A cause explains a finding when every failing check the finding rests on (its evidence) shows a symptom
    the cause declares (``explains``) and concerns requests the cause was seen on (a check over the whole
    run, or a measurement, when the cause was seen on every request). A finding that states confirmed
    behaviour (``when: passed``) is never a symptom. ``symptoms`` gives what each of the scenario's checks
    across the run shows (``kinds.check_symptoms``); expectations declare theirs by key
    (``kinds.expectation_symptoms``) and measurements by kind."""
    raised_causes = [c for c in causes if c.finding.raised]
    everything = frozenset(e.id for e in exchanges if e.status is not None)
    by_id = {c.id: c for c in checks}
    by_step: dict[str, list[CheckResult]] = {}
    for check in checks:
        if check.step is not None:
            by_step.setdefault(check.step, []).append(check)
    grounds = {f.id: _grounds(f, by_id, by_step, symptoms or {}) for f in findings if f.raised}
    grouped: list[FindingResult] = []
    masked: dict[str, str] = {}
    for cause in raised_causes:

        def explained(ground: _Ground, cause: RootCause = cause) -> bool:
            if not ground.shows & cause.explains:
                return False
            if ground.requests & everything:
                return bool(ground.requests & cause.failing)
            return bool(everything) and everything <= cause.failing

        masks = [
            f.id
            for f in findings
            if f.raised
            and f.id not in masked
            and (found := grounds.get(f.id)) is not None
            and all(explained(g) for g in found)
        ]
        for finding_id in masks:
            masked[finding_id] = cause.finding.id
        grouped.append(cause.finding.model_copy(update={"masks": masks}))
    grouped.extend(f.model_copy(update={"masked_by": masked.get(f.id)}) for f in findings)
    return grouped
