"""JUnit XML from a run's results: one test case per check, findings as properties.

Each scenario is a ``<testsuite>`` named by its id; each check a ``<testcase>`` (``classname`` the scenario
id, ``name`` the check id) that fails with the check's reason, is skipped with its reason for any status
that is not a verdict (skipped, not_applicable, not_exercised...), and carries as ``<properties>``
the findings that cite it (``finding`` = ``ID [severity] title``, raised ones only) and, when the run was
compared with a baseline, whether its failure is ``known`` or ``new``. A scenario that could not run, or
has no checks, is one test case named ``run``. Times are left out: JUnit viewers would compare them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from aigw_harness.report.results import CheckResult, Results, ScenarioResult

__all__ = ["junit_xml", "write_junit"]

RUN_CASE = "run"


def _findings_citing(scenario: ScenarioResult, check: CheckResult | None) -> list[str]:
    cited: list[str] = []
    for finding in scenario.findings:
        if not finding.raised:
            continue
        refs = {evidence.ref for evidence in finding.evidence}
        if check is None or check.id in refs or (check.step is not None and check.step in refs):
            cited.append(f"{finding.id} [{finding.severity}] {finding.title}")
    return cited


def _case(suite: ET.Element, scenario: ScenarioResult, name: str, status: str, reason: str,
          properties: list[tuple[str, str]]) -> None:  # fmt: skip
    case = ET.SubElement(suite, "testcase", classname=scenario.id, name=name, file=scenario.path)
    if properties:
        holder = ET.SubElement(case, "properties")
        for key, value in properties:
            ET.SubElement(holder, "property", name=key, value=value)
    if status == "failed":
        ET.SubElement(case, "failure", message=reason or "the check did not hold").text = reason
    elif status == "error":
        ET.SubElement(case, "error", message=reason or "the scenario could not run").text = reason
    elif status != "passed":
        ET.SubElement(case, "skipped", message=f"{status}: {reason}" if reason else status)


def junit_xml(results: Results) -> str:
    known: set[tuple[str, str]] = set()
    if results.baseline is not None:
        known = {(c.scenario, c.ref) for c in results.baseline.unchanged if c.kind == "check"}
    root = ET.Element("testsuites", name=f"aigw run {results.run.id}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for scenario in results.scenarios:
        suite = ET.SubElement(root, "testsuite", name=scenario.id)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        status = str(scenario.status)
        if status not in ("passed", "failed") or not scenario.checks:
            reason = scenario.reason or ("" if status == "passed" else status)
            props = [("finding", text) for text in _findings_citing(scenario, None)]
            _case(suite, scenario, RUN_CASE, status, reason, props)
            cases = [status]
        else:
            cases = []
            for check in scenario.checks:
                check_status = str(check.status)
                props = [("finding", text) for text in _findings_citing(scenario, check)]
                if results.baseline is not None and check_status == "failed":
                    props.append(("baseline", "known" if (scenario.id, check.id) in known else "new"))
                _case(suite, scenario, check.id, check_status, check.reason, props)
                cases.append(check_status)
        for case_status in cases:
            counts["tests"] += 1
            if case_status == "failed":
                counts["failures"] += 1
            elif case_status == "error":
                counts["errors"] += 1
            elif case_status != "passed":
                counts["skipped"] += 1
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(results: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(results), encoding="utf-8")
