"""Bad input through the command line: every file of the corpus through the command that reads it, bad
flags and options, closed pipes, unreachable URLs and port 0. Each ends with exit status 2 (141 for a closed
pipe) and one clear message naming file and line where there is one, never a traceback.

In-process runs (``aigw_harness.cli.main``) cover the corpus; a few real processes cover what only a process
shows (pipes, printed ports, tracebacks on stderr, peak memory of the child).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from aigw_harness.cli import EXIT_CLOSED_PIPE, EXIT_USAGE, main
from aigw_harness.scenarios import fake_target, url_target
from aigw_harness.scenarios.targets import REGISTRY
from tests.hardening.corpus import CASES, ROOT, SCENARIO, TENANTS, Case, Kind, alias_bomb, error_path, write
from tests.hardening.test_files_corpus import no_hang

_PROCESS_TIMEOUT_S = 120  # only a hang reaches this


def _argv(kind: Kind, path: Path, out: Path) -> list[str]:
    if kind == "scenario":
        return ["validate", str(path), "--tenants", str(TENANTS)]
    if kind == "behaviour":
        return ["fake", "serve", "--behaviour", str(path), "--port", "0"]
    if kind == "tenant":
        return [
            "gateway",
            "serve",
            "--upstream",
            "http://127.0.0.1:9",
            "--tenants",
            str(path.parent),
            "--port",
            "0",
        ]
    return [
        "worker",
        "serve",
        "--config",
        str(path.parent),
        "--upstream",
        "http://127.0.0.1:9",
        "--port",
        "0",
    ]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_bad_file_is_a_usage_error_naming_file_and_line(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(case.kind, case.content, tmp_path)
    with no_hang():
        status = main(_argv(case.kind, path, tmp_path / "out"))
    err = capsys.readouterr().err
    assert status == EXIT_USAGE, err
    where = str(error_path(case.kind, path))
    assert where in err
    if case.line is not None:
        assert f"{where}:{case.line}" in err
    assert case.words in err
    assert "Traceback" not in err


def test_run_refuses_a_bad_scenario_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write("scenario", (SCENARIO + "  - pause_s: .inf\n").encode(), tmp_path)
    status = main(["run", str(path), "--tenants", str(TENANTS), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == EXIT_USAGE
    assert f"{path}:12:14: steps[1].pause_s: not a finite number" in err
    assert not (tmp_path / "out").exists()


def test_validate_names_an_id_used_by_two_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yaml").write_text(SCENARIO)
    (tmp_path / "b.yaml").write_text(SCENARIO)
    status = main(["validate", str(tmp_path), "--tenants", str(TENANTS)])
    captured = capsys.readouterr()
    assert status == EXIT_USAGE
    assert (
        f"{tmp_path / 'b.yaml'}:1: id: 'corpus.case' is already used by {tmp_path / 'a.yaml'}" in captured.err
    )
    assert f"{tmp_path / 'a.yaml'}: ok" in captured.out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["run", "--target-option", "nope=1", "scenarios/spike-connectivity.yaml"], "has no option nope"),
        (
            ["run", "--target", "url", "--sut-url", "http://x", "--target-option", "upstream_ur=http://y"],
            "target 'url' has no option upstream_ur",
        ),
        (["run", "--target", "wroker"], "unknown target 'wroker'"),
        (["run", "--target", "url"], "--target url needs --sut-url"),
        (["run", "--sut-url", "ftp://x"], "--sut-url must be an http(s) URL"),
        (["run", "--time-scale", "inf"], "must be above 0 and at most 10"),
        (["run", "--time-scale", "nan"], "must be above 0 and at most 10"),
        (["run", "--seed", "1e5"], "invalid int value"),
        (["run", "--target-option", "novalue"], "expected KEY=VALUE"),
        (
            [
                "gateway",
                "serve",
                "--upstream",
                "http://127.0.0.1:9",
                "--tenants",
                "scenarios/tenants",
                "--port",
                "70000",
            ],
            "--port must be between 0 and 65535",
        ),
        (["fake", "serve", "--port", "-1"], "--port must be between 0 and 65535"),
        (["fake", "serve", "--time-scale", "nan"], "--time-scale must be a number of at most 1000, got nan"),
        (["fake", "serve", "--time-scale", "inf"], "--time-scale must be a number of at most 1000, got inf"),
        (["validate", "nowhere.yaml"], "nowhere.yaml: 1 problem"),
        (["list", "nowhere"], "no such file or directory"),
    ],
)
def test_bad_flags_are_usage_errors(argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    os.chdir(ROOT)
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        status = int(exc.code or 0)
    err = capsys.readouterr().err
    assert status == EXIT_USAGE, err
    assert words in err
    assert "Traceback" not in err


def test_every_target_declares_the_option_keys_its_code_reads() -> None:
    """Each target's ``option_keys`` names every ``extra`` key its module reads, so none is refused."""
    import importlib

    reads = re.compile(
        r"""extra(?:\.get\(|\[)\s*"([a-z_]+)"|"([a-z_]+)"\s+(?:not\s+)?in\s+(?:options\.)?extra"""
    )
    for name, path in REGISTRY.items():
        module_name, _, attr = path.partition(":")
        module = importlib.import_module(module_name)
        source = Path(module.__file__ or "").read_text(encoding="utf-8")
        used = {a or b for a, b in reads.findall(source)}
        declared = getattr(module, attr).option_keys
        assert used <= declared, f"target {name!r} reads {sorted(used - declared)} without declaring them"
    assert fake_target.FakeTarget.option_keys == frozenset()
    assert "upstream_url" in url_target.UrlTarget.option_keys


# --- real processes ----------------------------------------------------------------------------------------


_PEAK_OF_CHILD = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(done.returncode)\n"
)


def _aigw(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "aigw_harness", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=_PROCESS_TIMEOUT_S,
        **kwargs,
    )


def _closed_stdout(*args: str) -> subprocess.CompletedProcess[str]:
    """Run with standard output a pipe whose reader has already gone (``aigw ... | head -0``)."""
    read, write_end = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "aigw_harness", *args],
            cwd=ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=_PROCESS_TIMEOUT_S,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize("argv", [["list"], ["schema"], ["validate", "scenarios"]])
def test_a_closed_pipe_ends_quietly(argv: list[str]) -> None:
    done = _closed_stdout(*argv)
    assert done.returncode == EXIT_CLOSED_PIPE, done.stderr
    assert "Traceback" not in done.stderr
    assert "BrokenPipeError" not in done.stderr


def test_help_into_a_closed_pipe_is_quiet() -> None:
    done = _closed_stdout("run", "--help")
    assert done.stderr == ""  # argparse drops the help it cannot write and exits 0


def test_unreachable_sut_url_is_a_configuration_error() -> None:
    done = _aigw("run", "--sut-url", "http://127.0.0.1:9", "scenarios/streaming-contract.yaml", "-q")
    assert done.returncode == EXIT_USAGE
    assert done.stderr.startswith("aigw: error: cannot reach --sut-url http://127.0.0.1:9: ")
    assert "Traceback" not in done.stderr
    assert "report:" not in done.stdout


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("bomb.yaml", SCENARIO + alias_bomb()),
        ("large.yaml", SCENARIO + "x: '" + "y" * (50 * 1024 * 1024) + "'\n"),
        ("deep.yaml", SCENARIO + "x: " + "[" * 100_000 + "]" * 100_000 + "\n"),
    ],
)
def test_hostile_scenario_files_in_a_process(name: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    # ru_maxrss over children is a maximum over every child this test process ever had (a browser, a
    # Worker...), so the command runs under a small parent of its own that reports its peak alone.
    measured = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_CHILD, sys.executable, "-m", "aigw_harness", "validate", str(path),
         "--tenants", str(TENANTS)],
        cwd=ROOT, capture_output=True, text=True, timeout=_PROCESS_TIMEOUT_S,
    )  # fmt: skip
    peak_kib = int(measured.stdout.strip().rsplit("\n", 1)[-1])
    assert measured.returncode == EXIT_USAGE
    assert re.search(rf"{re.escape(str(path))}(:\d+)*: ", measured.stderr), measured.stderr
    assert "Traceback" not in measured.stderr
    assert peak_kib < 400 * 1024, f"{peak_kib / 1024:.0f} MiB"


def _served_port(args: list[str], stream: str, pattern: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "aigw_harness", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        pipe = process.stdout if stream == "stdout" else process.stderr
        assert pipe is not None
        line = pipe.readline()
        match = re.search(pattern, line)
        assert match is not None, line
        port = int(match.group(1))
        assert port != 0
        response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10, trust_env=False)
        assert response.status_code < 500
    finally:
        process.terminate()
        process.wait(timeout=30)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def test_gateway_serve_port_0_prints_the_real_port() -> None:
    _served_port(
        [
            "gateway",
            "serve",
            "--upstream",
            "http://127.0.0.1:9",
            "--tenants",
            "scenarios/tenants",
            "--port",
            "0",
        ],
        "stdout",
        r"serving on http://127\.0\.0\.1:(\d+) ",
    )


def test_fake_serve_port_0_prints_the_real_port() -> None:
    _served_port(["fake", "serve", "--port", "0"], "stderr", r"serving on http://127\.0\.0\.1:(\d+) ")
