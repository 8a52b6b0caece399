"""How each kind of documented block is run, by language: one runner per language, registered below.

Every runner works in a workspace, a scratch directory that stands for a user's project: a small scenario
folder (``scenarios/``, with the catalogue's tenants), ``.venv`` pointing at this interpreter's environment,
and the venv's ``bin`` first on ``PATH``. The blocks of one document share a workspace, in order, so a
later block can use what an earlier one wrote.

Shell lines that start a server (``aigw fake serve``, ``gateway serve``, ``worker serve``, ``record``) are
started by the runner on a free loopback port, in place of the port the line names, and stopped when the
block ends; every later mention of ``127.0.0.1:PORT`` or ``localhost:PORT`` is the port the server got.
"""

from __future__ import annotations

import ast
import enum
import importlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path

from .blocks import Block

BIN = Path(sys.executable).parent
TIMEOUT_S = 120
SERVER_START_S = 30

type Runner = Callable[[Block, Path], None]
RUNNERS: dict[str, Runner] = {}


def runs(*langs: str) -> Callable[[Runner], Runner]:
    def register(runner: Runner) -> Runner:
        for lang in langs:
            RUNNERS[lang] = runner
        return runner

    return register


def environment() -> dict[str, str]:
    """The user's shell: this venv first on PATH, no Cloudflare credentials, no colour."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_", "AIGW_", "PYTEST_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    return env


def fail(block: Block, what: str) -> None:
    raise AssertionError(f"{block.where} ({block.lang} block): {what}")


def block_file(block: Block, workspace: Path, suffix: str) -> Path:
    """The block's text in a file named after its place in the docs."""
    name = f"{block.doc.stem}-{block.line}{suffix}"
    path = workspace / ".docblocks" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(block.text, encoding="utf-8")
    return path


# --- shell ---------------------------------------------------------------------------------------------

SERVERS = (("fake", "serve"), ("gateway", "serve"), ("worker", "serve"), ("record",))
URL = re.compile(r"http://(?:127\.0\.0\.1|localhost):(\d+)")


def logical_lines(text: str) -> list[str]:
    """Shell lines with their continuations joined."""
    return [line for line in text.replace("\\\n", " ").splitlines() if line.strip()]


def server_words(line: str) -> list[str] | None:
    """The words of a line that starts a server (without a trailing ``&``), else None."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return None
    if words and words[-1] == "&":
        words = words[:-1]
    command = [w for w in words if not re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", w)]
    if not command or Path(command[0]).name != "aigw":
        return None
    if any(tuple(command[1 : 1 + len(server)]) == server for server in SERVERS):
        return words
    return None


@dataclass
class Server:
    words: list[str]
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def substitute_ports(text: str, ports: dict[str, str]) -> str:
    for documented, actual in ports.items():
        text = re.sub(rf"\b(127\.0\.0\.1|localhost):{documented}\b", rf"\g<1>:{actual}", text)
    return text


def start_server(block: Block, words: list[str], workspace: Path, ports: dict[str, str]) -> Server:
    if "--port" not in words:
        fail(block, f"a server line names its port (--port N), so readers know where it listens: {words}")
    at = words.index("--port") + 1
    documented = words[at]
    words = [substitute_ports(w, ports) for w in words]
    words[at] = "0"
    assignments = [w for w in words if re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", w)]
    command = words[len(assignments) :]
    env = environment() | dict(a.split("=", 1) for a in assignments)
    log = workspace / ".docblocks" / f"server-{block.line}-{len(ports)}.log"
    log.parent.mkdir(exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=workspace, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(command, process, log)
    deadline = time.monotonic() + SERVER_START_S
    while (found := URL.search(server.output())) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            fail(block, f"{shlex.join(command)} did not announce its URL:\n{server.output()}")
        time.sleep(0.05)
    ports[documented] = found.group(1)
    return server


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(10)


@contextmanager
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in reversed(started):
            stop_server(server)


def _run_block(block: Block, argv: list[str], workspace: Path, shown: str = "") -> None:
    """Run one block's program in the workspace; a non-zero exit fails the block with what it printed."""
    done = subprocess.run(
        argv, cwd=workspace, env=environment(), capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        fail(block, f"exit {done.returncode}\n{shown}{done.stdout}{done.stderr}")


def run_script(block: Block, script: str, workspace: Path) -> None:
    # -u: a variable the docs never set fails the block
    _run_block(block, ["bash", "-e", "-u", "-o", "pipefail", "-c", script], workspace, f"$ {script}\n")


@runs("bash", "sh", "shell")
def run_shell(block: Block, workspace: Path) -> None:
    ports: dict[str, str] = {}
    pending: list[str] = []
    with servers() as started:
        for line in logical_lines(block.text):
            words = server_words(line)
            if words is None:
                pending.append(line)
                continue
            if pending:
                run_script(block, substitute_ports("\n".join(pending), ports), workspace)
                pending = []
            started.append(start_server(block, words, workspace, ports))
        if pending:
            run_script(block, substitute_ports("\n".join(pending), ports), workspace)
        for server in started:
            if server.process.poll() is not None:
                fail(block, f"{shlex.join(server.words)} stopped early:\n{server.output()}")


def output_pattern(expected: list[str]) -> re.Pattern[str]:
    """The documented output as a pattern: a line ``...`` stands for any lines, ``...`` within a line for any
    text, and trailing spaces are not compared."""
    parts: list[str] = []
    for line in expected:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*?".join(re.escape(piece) for piece in line.rstrip().split("...")) + r"[ \t]*\n")
    return re.compile("".join(parts))


def console_commands(text: str) -> list[tuple[str, list[str]]]:
    """``$ command`` lines, each with the output lines shown after it."""
    commands: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands:
            commands[-1][1].append(line)
    return commands


@runs("console")
def run_console(block: Block, workspace: Path) -> None:
    """Each ``$ command`` is run; the lines after it are its output (stdout and stderr), compared with
    ``...`` as a wildcard."""
    commands = console_commands(block.text)
    if not commands:
        fail(block, "a console block has no '$ ' command line")
    for command, expected in commands:
        done = subprocess.run(
            ["bash", "-u", "-o", "pipefail", "-c", command],
            cwd=workspace,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        output = "\n".join(line.rstrip() for line in done.stdout.splitlines()) + "\n"
        if done.returncode != 0 or not output_pattern(expected).fullmatch(output):
            shown = "\n".join(expected)
            fail(
                block,
                f"$ {command}\nexit {done.returncode}, printed:\n{done.stdout}\nthe docs show:\n{shown}",
            )


# --- python --------------------------------------------------------------------------------------------

# Run as a script whose line numbers are the document's, with top-level ``await`` allowed (as ``python -m
# asyncio`` does), so that examples can show ``async with`` without a wrapper function.
PYTHON = """
import ast, asyncio, inspect, sys
path, doc, line = sys.argv[1], sys.argv[2], int(sys.argv[3])
source = "\\n" * line + open(path, encoding="utf-8").read()
code = compile(source, doc, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
namespace = {"__name__": "__main__"}
result = eval(code, namespace)
if inspect.iscoroutine(result):
    asyncio.run(result)
"""


@runs("python")
def run_python(block: Block, workspace: Path) -> None:
    if "excerpt" in block.attrs:
        check_excerpt(block)
        return
    path = block_file(block, workspace, ".py")
    _run_block(block, [sys.executable, "-c", PYTHON, str(path), str(block.doc), str(block.line)], workspace)


def _members(cls: type) -> set[str]:
    names = set(dir(cls))
    for klass in cls.__mro__:
        names |= set(getattr(klass, "__annotations__", {}))
    if is_dataclass(cls):
        names |= {f.name for f in fields(cls)}
    return names


def check_excerpt(block: Block) -> None:
    """An excerpt of a module's interface: its classes exist there, with the members and enum values shown."""
    module = importlib.import_module(block.attrs["excerpt"])
    tree = ast.parse(block.text)
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    if not classes:
        fail(block, "an excerpt shows at least one class")
    for node in classes:
        cls = getattr(module, node.name, None)
        if not isinstance(cls, type):
            fail(block, f"{module.__name__} has no class {node.name}")
        assert isinstance(cls, type)
        members = _members(cls)
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                name = item.target.id
            elif isinstance(item, ast.Assign) and isinstance(item.targets[0], ast.Name):
                name = item.targets[0].id
            elif isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                name = item.name
            else:
                continue
            if name not in members:
                fail(block, f"{module.__name__}.{node.name} has no member {name}")
            shown = getattr(item, "value", None)
            if issubclass(cls, enum.Enum) and isinstance(shown, ast.Constant):
                actual = cls[name].value
                if actual != shown.value:
                    fail(block, f"{node.name}.{name} is {actual!r}, the docs say {shown.value!r}")


# --- data ----------------------------------------------------------------------------------------------


def _scenario(path: Path, workspace: Path) -> None:
    done = subprocess.run(
        [str(BIN / "aigw"), "validate", str(path), "--tenants", "scenarios/tenants"],
        cwd=workspace,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _model(dotted: str) -> Callable[[Path, Path], None]:
    def validate(path: Path, workspace: Path) -> None:
        from aigw_fakes.datafiles import load_model

        module, _, name = dotted.rpartition(".")
        load_model(path, getattr(importlib.import_module(module), name))

    return validate


def _load_profile(path: Path, workspace: Path) -> None:
    from aigw_harness.load.profile import load_profile

    load_profile(path)


# The project's own loaders, by the kind of document a block says it is.
DOCUMENTS: dict[str, Callable[[Path, Path], None]] = {
    "scenario": _scenario,
    "behaviour": _model("aigw_fakes.behaviour.BehaviourDocument"),
    "fake-config": _model("aigw_fakes.config.FakeConfig"),
    "baseline": _model("aigw_harness.ci.baseline.Baseline"),
    "load-profile": _load_profile,
}


def _document(block: Block, workspace: Path, suffix: str) -> bool:
    """Validate the block as the document its ``document`` attribute names; False if it names none."""
    kind = block.attrs.get("document")
    if kind is None:
        return False
    if kind not in DOCUMENTS:
        fail(block, f"unknown document kind {kind!r} (known: {', '.join(sorted(DOCUMENTS))})")
    path = block_file(block, workspace, suffix)
    try:
        DOCUMENTS[kind](path, workspace)
    except Exception as exc:  # the loader's own message names file, line and field
        fail(block, f"not a valid {kind} document: {exc}")
    return True


@runs("yaml", "yml")
def run_yaml(block: Block, workspace: Path) -> None:
    if not _document(block, workspace, ".yaml"):
        from aigw_fakes.datafiles import parse_data

        parse_data(block.text, block.where)


@runs("json")
def run_json(block: Block, workspace: Path) -> None:
    if not _document(block, workspace, ".json"):
        json.loads(block.text)


@runs("toml")
def run_toml(block: Block, workspace: Path) -> None:
    tomllib.loads(block.text)


@runs("jsonc")
def run_jsonc(block: Block, workspace: Path) -> None:
    from aigw_harness.worker.jsonc import parse_jsonc

    parse_jsonc(block.text, block.where)


# --- one document --------------------------------------------------------------------------------------


def runnable(block: Block) -> bool:
    return "skip" not in block.attrs and "tested-by" not in block.attrs


def run_document(blocks: list[Block], workspace: Path) -> list[Block]:
    """Run every runnable block in order; return those that ran."""
    ran: list[Block] = []
    for block in blocks:
        if runnable(block):
            RUNNERS[block.lang](block, workspace)
            ran.append(block)
    return ran
