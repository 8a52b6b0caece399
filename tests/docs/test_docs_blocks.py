"""Every code block of README.md and docs/*.md is run, or says why not, so that the docs cannot rot.

One test per document runs its blocks in order in a scratch project (``tests/docs/runners.py``); another
holds every block to one of: a runner for its language, ``skip`` with a reason, or ``tested-by`` a test file
that names it. A new block without any of these fails.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
import sys
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

from aigw_harness.cli import build_parser

from .blocks import ROOT, Block, all_blocks, blocks, documents, parse_info
from .runners import RUNNERS, logical_lines, run_document, runnable

# The scratch project's scenarios: the catalogue's tenants and two short scenarios, so that a documented
# catalogue run takes a second.
SCENARIOS = ("spike-streaming.yaml", "streaming-contract.yaml")


def workspace(root: Path) -> Path:
    (root / "scenarios").mkdir()
    shutil.copytree(ROOT / "scenarios" / "tenants", root / "scenarios" / "tenants")
    for name in SCENARIOS:
        shutil.copy(ROOT / "scenarios" / name, root / "scenarios" / name)
    (root / ".venv").symlink_to(Path(sys.prefix))
    return root


def quoted(source: str) -> Iterator[str]:
    """Every string literal of a Python source, with its quotes."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.STRING:
            yield token.string


def problems(block: Block) -> list[str]:
    """Why the docs test cannot account for this block (empty: it is run, skipped with a reason, or run by a
    named test)."""
    where = block.where
    if not block.fenced:
        return [f"{where}: an indented code block; fence it and give it a language"]
    attrs = block.attrs
    found: list[str] = []
    if "skip" in attrs and not attrs["skip"].strip():
        found.append(f'{where}: skip needs a reason: {{skip="why this block cannot run in a test"}}')
    if "tested-by" in attrs:
        test = ROOT / attrs["tested-by"]
        name = attrs.get("name", "")
        if not test.is_file():
            found.append(f"{where}: tested-by names {attrs['tested-by']}, which does not exist")
        elif not name or not {f'"{name}"', f"'{name}'"} & set(quoted(test.read_text(encoding="utf-8"))):
            found.append(f"{where}: {attrs['tested-by']} does not find this block by its name {name!r}")
    if runnable(block) and block.lang not in RUNNERS:
        found.append(
            f"{where}: nothing runs a {block.lang or 'plain'!r} block; give it a language this test runs "
            f'({", ".join(sorted(RUNNERS))}) or {{skip="reason"}}'
        )
    return found


def test_every_block_is_run_or_says_why_not() -> None:
    found = [problem for block in all_blocks() for problem in problems(block)]
    assert not found, "\n".join(found)


def test_the_check_catches_unmarked_blocks_and_empty_reasons() -> None:
    lang, attrs = parse_info('bash {skip="" name=x}')
    assert problems(Block(Path("x.md"), 3, lang, attrs)) == [
        'x.md:3: skip needs a reason: {skip="why this block cannot run in a test"}'
    ]
    assert "nothing runs a 'plain' block" in problems(Block(Path("x.md"), 3, "", {}))[0]
    assert "an indented code block" in problems(Block(Path("x.md"), 3, "", {}, fenced=False))[0]
    orphan = Block(Path("x.md"), 3, "python", {"tested-by": "tests/docs/blocks.py", "name": "nowhere"})
    assert "does not find this block" in problems(orphan)[0]


OPERATORS = {"&&", "||", ";", "|", "&"}


def aigw_commands(block: Block) -> list[list[str]]:
    """The argument lists of the ``aigw`` commands in a shell block."""
    found: list[list[str]] = []
    for line in logical_lines(block.text):
        segment: list[str] = []
        for word in [*shlex.split(line, comments=True), ";"]:
            if word not in OPERATORS:
                segment.append(word)
                continue
            command = [w for w in segment if not re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", w)]
            if command and Path(command[0]).name == "aigw":
                found.append(command[1:])
            segment = []
    return found


def parse_error(argv: list[str]) -> str | None:
    """argparse's complaint about an ``aigw`` command line, or None when it parses."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            build_parser().parse_args(argv)
    except SystemExit:
        return stderr.getvalue().strip().splitlines()[-1]
    return None


def test_aigw_commands_in_blocks_that_are_not_run_still_parse() -> None:
    """Blocks that need an account or a Worker are not run, but their options and commands must exist."""
    shells = [b for b in all_blocks() if b.lang in ("bash", "sh", "shell") and not runnable(b)]
    checked = [(block, argv) for block in shells for argv in aigw_commands(block)]
    assert len(checked) >= 10
    errors = [
        f"{block.where}: aigw {shlex.join(argv)}: {e}" for block, argv in checked if (e := parse_error(argv))
    ]
    assert not errors, "\n".join(errors)


def test_a_renamed_option_is_caught() -> None:
    block = Block(
        Path("x.md"), 1, "bash", {"skip": "demo"}, "FOO=1 aigw run --colour red scenarios && echo\n"
    )
    assert aigw_commands(block) == [["run", "--colour", "red", "scenarios"]]
    assert "unrecognized arguments: --colour" in (parse_error(aigw_commands(block)[0]) or "")


@pytest.mark.parametrize("doc", documents(), ids=str)
def test_the_document_s_blocks_run(doc: Path, tmp_path: Path) -> None:
    found = blocks(doc)
    ran = run_document(found, workspace(tmp_path))
    assert len(ran) == sum(1 for block in found if runnable(block))
