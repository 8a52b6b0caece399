"""The bad-input corpus for files: scenario, behaviour, tenant and Wrangler files, one case per class of
mistake, each with the file kind, the bytes, what the error must say and the line it must name.

Shared by ``test_files_corpus.py`` (the loaders), ``test_cli_corpus.py`` (the same files through ``aigw``)
and ``benchmarks/bad_input_corpus.py`` (time and memory per case).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aigw_fakes.behaviour import BehaviourDocument
from aigw_fakes.datafiles import load_model
from aigw_harness.gateway.tenants import load_tenants
from aigw_harness.scenarios.loader import load_scenario
from aigw_harness.worker.wrangler import load_worker_config

ROOT = Path(__file__).parents[2]
TENANTS = ROOT / "scenarios" / "tenants"

type Kind = Literal["scenario", "behaviour", "tenant", "wrangler.jsonc", "wrangler.toml", "dev.vars"]

SCENARIO = """\
id: corpus.case
title: A case of the corpus
area: spike
description: One request.
tenants: [example]
upstream:
  default: {tokens: 4}
steps:
  - name: chat
    request: {tenant: example}
    expect: {status: 200}
"""

BEHAVIOUR = """\
default: {ttfb_ms: 10, token_delay_ms: 1}
rules:
  - match: {model: "@cf/*"}
    script:
      - {times: 1, error: 3040}
      - {tokens: 5}
"""

TENANT = (TENANTS / "alpha.json").read_text(encoding="utf-8")

WRANGLER_JSONC = """\
// the Worker
{
  "name": "chat",
  "main": "src/index.ts",
  "compatibility_date": "2025-01-01",
  "vars": {"MODEL_ID": "@cf/meta/llama-3.1-8b-instruct-fp8-fast"},
  "kv_namespaces": [{"binding": "LEDGER", "id": "x"}],
}
"""

WRANGLER_TOML = """\
name = "chat"
main = "src/index.ts"
compatibility_date = "2025-01-01"

[[kv_namespaces]]
binding = "LEDGER"
"""

VALID: dict[Kind, str] = {
    "scenario": SCENARIO,
    "behaviour": BEHAVIOUR,
    "tenant": TENANT,
    "wrangler.jsonc": WRANGLER_JSONC,
    "wrangler.toml": WRANGLER_TOML,
    "dev.vars": "SECRET=x\n",
}


def alias_bomb(levels: int = 9) -> str:
    """A few hundred bytes that expand to 9**10 values (3.5 billion)."""
    lines = ['bomb-a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(levels):
        name, previous = chr(98 + i), chr(97 + i)
        lines.append(f"bomb-{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Case:
    kind: Kind
    name: str
    content: bytes
    words: str
    """Must appear in the error message."""
    line: int | None
    """The line the error must name (``None``: the message names the file, the case has no line)."""

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"


def _case(kind: Kind, name: str, text: str | bytes, words: str, line: int | None) -> Case:
    return Case(
        kind, name, text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text, words, line
    )


def _deep_yaml(depth: int) -> str:
    return "x: " + "[" * depth + "]" * depth + "\n"


_S = SCENARIO
_TENANT_OBJ = json.loads(TENANT)

CASES: list[Case] = [
    # --- scenario files ---------------------------------------------------------------------------------
    _case("scenario", "alias-bomb", _S + alias_bomb(), "expands to more than 1,000,000 values", 18),
    _case(
        "scenario", "python-tag", _S + 'x: !!python/object/apply:os.system ["true"]\n', "the tag !!python", 12
    ),
    _case("scenario", "custom-tag", _S.replace("title: A", "title: !secret A"), "the tag !secret", 2),
    _case(
        "scenario", "nul-byte", _S.replace("One request.", "One\x00request."), "control character U+0000", 4
    ),
    _case(
        "scenario",
        "huge-integer",
        _S.replace("tokens: 4", "tokens: " + "9" * 5000),
        "integer out of range",
        7,
    ),
    _case(
        "scenario", "int-65-bits", _S.replace("tokens: 4", "tokens: 36893488147419103232"), "out of range", 7
    ),
    _case("scenario", "deep-nesting", _S + _deep_yaml(5000), "nest", 12),
    _case(
        "scenario",
        "duplicate-key",
        _S.replace("area: spike\n", "area: spike\narea: budget\n"),
        "appears twice",
        4,
    ),
    _case("scenario", "self-alias", _S + "x: &loop [1, *loop]\n", "refers to itself", 12),
    _case("scenario", "pause-inf", _S + "  - pause_s: .inf\n", "not a finite number", 12),
    _case("scenario", "pause-nan", _S + "  - pause_s: .nan\n", "not a finite number", 12),
    _case("scenario", "pause-a-day", _S + "  - pause_s: 86400.0\n", "less than or equal to 3600", 12),
    _case(
        "scenario", "advance-1e308", _S + "  - clock: {advance_s: 1.0e+308}\n", "less than or equal to", 12
    ),
    _case(
        "scenario",
        "clock-year-9999",
        _S + "clock: 9999-12-31T23:59:59Z\n",
        "between the years 1970 and 2200",
        12,
    ),
    _case(
        "scenario",
        "timeout-inf",
        _S.replace("{tenant: example}", "{tenant: example, timeout_s: .inf}"),
        "not a finite number",
        10,
    ),
    _case(
        "scenario",
        "gateway-timeout-huge",
        _S + "gateway: {total_timeout_s: 1.0e+12}\n",
        "less than or equal",
        12,
    ),
    _case(
        "scenario",
        "tenant-traversal",
        _S.replace("[example]", "[../../etc/passwd]"),
        "is not a tenant name",
        5,
    ),
    _case("scenario", "tenant-absolute", _S.replace("[example]", "[/etc/passwd]"), "is not a tenant name", 5),
    _case(
        "scenario", "tenant-missing", _S.replace("[example]", "[nobody]"), "no tenant file for 'nobody'", 5
    ),
    _case(
        "scenario",
        "tenant-inline-invalid",
        _S.replace("[example]", "[{tenantId: t, rateLimit: 5}]"),
        "tenants[0].rateLimit",
        5,
    ),
    _case(
        "scenario",
        "tenant-extends-invalid",
        _S.replace("[example]", "[{extends: alpha, tenantId: t2, rateLimit: {perMinute: -1, burst: 1}}]"),
        "tenants[0].rateLimit.perMinute",
        5,
    ),
    _case("scenario", "tenant-twice", _S.replace("[example]", "[example, example]"), "also configured", 5),
    _case(
        "scenario", "upstream-invalid", _S.replace("tokens: 4", "tokens: -4"), "upstream.default.tokens", 7
    ),
    _case("scenario", "upstream-unknown-key", _S.replace("default:", "defualt:"), "upstream.defualt", 7),
    _case(
        "scenario",
        "step-upstream-invalid",
        _S + "  - upstream: {rules: [{script: []}]}\n",
        "steps[1].upstream.rules[0].script",
        12,
    ),
    _case("scenario", "two-documents", _S + "---\nid: other\n", "expected one document", 12),
    _case("scenario", "not-utf8", _S.encode() + b"x: caf\xe9\n", "not UTF-8", 12),
    _case("scenario", "lone-surrogate", _S.replace("One request.", '"\\ud800"'), "lone surrogate", 4),
    _case("scenario", "empty", "", "valid dictionary", 1),
    _case("scenario", "a-list", "- 1\n- 2\n", "valid dictionary", 1),
    _case("scenario", "syntax", _S + "x: [unclosed\n", "not valid YAML", 13),
    _case("scenario", "too-large-50mb", _S + "x: '" + "y" * (50 * 1024 * 1024) + "'\n", "too large", None),
    # --- behaviour documents ----------------------------------------------------------------------------
    _case("behaviour", "alias-bomb", BEHAVIOUR + alias_bomb(), "expands to more than", 13),
    _case("behaviour", "python-tag", "default: !!python/name:os.system\n", "the tag !!python", 1),
    _case("behaviour", "ttfb-inf", "default: {ttfb_ms: .inf}\n", "not a finite number", 1),
    _case("behaviour", "json-infinity", '{"default": {"ttfb_ms": Infinity}}', "not a finite number", 1),
    _case("behaviour", "json-huge-exponent", '{"default":\n {"ttfb_ms": 1e999}}', "not a finite number", 2),
    _case("behaviour", "huge-integer", "default: {tokens: 99999999999999999999999}\n", "out of range", 1),
    _case("behaviour", "deep-json", '{"rules": ' + "[" * 10000 + "]" * 10000 + "}", "nest", 1),
    _case("behaviour", "duplicate-key", "default: {tokens: 1}\ndefault: {tokens: 2}\n", "appears twice", 2),
    _case("behaviour", "unknown-error", "default: {error: not_an_error}\n", "unknown error name", 1),
    _case("behaviour", "nul-byte", 'default: {text: "a\x00"}\n', "control character", 1),
    # --- tenant files (a directory of them) -------------------------------------------------------------
    _case("tenant", "syntax", TENANT.replace('"burst": 20', '"burst": 20,,'), "not valid YAML or JSON", 12),
    _case(
        "tenant",
        "duplicate-key",
        TENANT.replace(
            '"vectorizeNamespace": "alpha",', '"vectorizeNamespace": "alpha", "vectorizeNamespace": "b",'
        ),
        "appears twice",
        9,
    ),
    _case(
        "tenant",
        "negative-rate",
        TENANT.replace('"perMinute": 60', '"perMinute": -60'),
        "rateLimit.perMinute",
        11,
    ),
    _case(
        "tenant", "huge-budget", TENANT.replace('"daily": 50000', '"daily": 1' + "0" * 30), "out of range", 19
    ),
    _case(
        "tenant",
        "missing-field",
        json.dumps({k: v for k, v in _TENANT_OBJ.items() if k != "aiModels"}, indent=1),
        "aiModels",
        1,
    ),
    _case("tenant", "alias-bomb", alias_bomb(), "expands to more than", 7),
    # --- Wrangler files ---------------------------------------------------------------------------------
    _case("wrangler.jsonc", "deep", '{"vars": ' + "[" * 5000 + "]" * 5000 + "}", "nested more than 100", 1),
    _case(
        "wrangler.jsonc", "huge-number", WRANGLER_JSONC.replace('"x"', "1" + "0" * 5000), "invalid number", 7
    ),
    _case(
        "wrangler.jsonc", "infinite-number", WRANGLER_JSONC.replace('"x"', "1e999"), "number out of range", 7
    ),
    _case(
        "wrangler.jsonc",
        "unterminated",
        WRANGLER_JSONC.replace('"chat",', '"chat,'),
        "unterminated string",
        3,
    ),
    _case(
        "wrangler.jsonc", "control-char", WRANGLER_JSONC.replace('"chat"', '"ch\x00at"'), "invalid string", 3
    ),
    _case(
        "wrangler.jsonc",
        "bad-date",
        WRANGLER_JSONC.replace("2025-01-01", "yesterday"),
        "compatibility_date",
        5,
    ),
    _case("wrangler.jsonc", "not-utf8", WRANGLER_JSONC.encode() + b"\xff", "not UTF-8", 9),
    _case("wrangler.toml", "syntax", WRANGLER_TOML + "[env.dev\n", "invalid TOML", 7),
    _case(
        "wrangler.toml",
        "empty-binding",
        WRANGLER_TOML.replace('"LEDGER"', '""'),
        "kv_namespaces[0].binding",
        6,
    ),
    _case("wrangler.toml", "deep", WRANGLER_TOML + "x = " + "[" * 5000 + "]" * 5000 + "\n", "TOML", None),
    _case("dev.vars", "bad-line", "SECRET=x\nthis is not a var\n", "expected NAME=value", 2),
    _case("dev.vars", "not-utf8", b"SECRET=caf\xe9\n", "not UTF-8", 1),
]


def write(case_kind: Kind, content: bytes, directory: Path) -> Path:
    """Write a file of this kind into ``directory`` (with what a load of it needs) and return the path to
    load: the file, or for tenants and Worker files their directory."""
    directory.mkdir(parents=True, exist_ok=True)
    if case_kind == "scenario":
        path = directory / "case.yaml"
    elif case_kind == "behaviour":
        path = directory / "behaviour.yaml"
    elif case_kind == "tenant":
        path = directory / "tenants" / "case.json"
        path.parent.mkdir(exist_ok=True)
    else:
        (directory / "src").mkdir(exist_ok=True)
        (directory / "src" / "index.ts").write_text("export default {}\n")
        if case_kind == "dev.vars":
            (directory / "wrangler.jsonc").write_text(WRANGLER_JSONC)
            path = directory / ".dev.vars"
        else:
            path = directory / case_kind
    path.write_bytes(content)
    return path


def loader(kind: Kind) -> Callable[[Path], object]:
    """How the harness loads a file of this kind (what ``aigw`` commands call)."""
    if kind == "scenario":
        return lambda path: load_scenario(path, TENANTS)
    if kind == "behaviour":
        return lambda path: load_model(path, BehaviourDocument)
    if kind == "tenant":
        return lambda path: load_tenants(path.parent)
    return lambda path: load_worker_config(path.parent)


def error_path(kind: Kind, path: Path) -> Path:
    """The file an error must name (the Wrangler file is resolved to an absolute path)."""
    if kind in ("wrangler.jsonc", "wrangler.toml"):
        return path.resolve()
    return path
