"""The block runners themselves: they fail where a block fails, naming it, and stop the servers they start."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .blocks import ATTRIBUTES, Block, InfoStringError, parse_info
from .runners import RUNNERS, output_pattern
from .test_docs_blocks import workspace


def block(lang: str, text: str, **attrs: str) -> Block:
    return Block(Path("docs/demo.md"), 7, lang, attrs, text)


def test_a_failing_shell_block_is_named_with_its_output(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match=r"(?s)docs/demo.md:7 \(bash block\): exit 3\n.*\nboom"):
        RUNNERS["bash"](block("bash", "echo boom\nexit 3\n"), tmp_path)


def test_a_variable_the_block_never_sets_fails_it(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="ACCOUNT: unbound variable"):
        RUNNERS["bash"](block("bash", "curl -sS localhost:1/v1/$ACCOUNT/gw\n"), tmp_path)
    RUNNERS["bash"](block("bash", "ACCOUNT=acc\necho /v1/$ACCOUNT/gw\n"), tmp_path)


def test_a_server_a_block_starts_is_reached_on_its_own_port_and_stopped(tmp_path: Path) -> None:
    text = (
        "aigw fake serve --port 8787 &   # the fake\n"
        "curl -sS --fail-with-body localhost:8787/__aigw/requests > requests.json\n"
        "echo 127.0.0.1:8787 > where.txt\n"
    )
    RUNNERS["bash"](block("bash", text), workspace(tmp_path))
    host, port = (tmp_path / "where.txt").read_text().split(":")
    assert int(port) != 8787  # a free port was given, and the block's mentions of 8787 point at it
    assert '"success":true' in (tmp_path / "requests.json").read_text()
    with pytest.raises(ConnectionRefusedError), socket.create_connection((host, int(port)), timeout=5):
        pass


def test_a_server_that_does_not_start_fails_the_block_with_its_message(tmp_path: Path) -> None:
    text = "aigw fake serve --port 8787 --config missing.yaml &\necho never\n"
    with pytest.raises(AssertionError, match=r"did not announce its URL:\n.*missing\.yaml"):
        RUNNERS["bash"](block("bash", text), workspace(tmp_path))


def test_a_server_line_must_name_its_port(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="names its port"):
        RUNNERS["bash"](block("bash", "aigw fake serve &\n"), tmp_path)


def test_python_blocks_may_await_and_fail_at_the_document_s_line(tmp_path: Path) -> None:
    RUNNERS["python"](block("python", "import asyncio\nawait asyncio.sleep(0)\n"), tmp_path)
    with pytest.raises(AssertionError, match=r'File "docs/demo.md", line 9.*\n.*NameError'):
        RUNNERS["python"](block("python", "x = 1\nundefined_name\n"), tmp_path)


def test_an_excerpt_must_match_the_module_it_quotes(tmp_path: Path) -> None:
    excerpt = 'class Capability(StrEnum):\n    CLOCK = "clock"\n'
    RUNNERS["python"](block("python", excerpt, excerpt="aigw_harness.scenarios.targets"), tmp_path)
    wrong_value = excerpt.replace('"clock"', '"time"')
    with pytest.raises(AssertionError, match=r"Capability\.CLOCK is 'clock', the docs say 'time'"):
        RUNNERS["python"](block("python", wrong_value, excerpt="aigw_harness.scenarios.targets"), tmp_path)
    missing = "class Target(Protocol):\n    colour: str\n"
    with pytest.raises(AssertionError, match="has no member colour"):
        RUNNERS["python"](block("python", missing, excerpt="aigw_harness.scenarios.targets"), tmp_path)


def test_documents_go_through_the_project_s_loaders(tmp_path: Path) -> None:
    RUNNERS["yaml"](block("yaml", "default: {tokens: 3}\n", document="behaviour"), tmp_path)
    with pytest.raises(AssertionError, match=r"(?s)not a valid behaviour document: .*default\.tokenz"):
        RUNNERS["yaml"](block("yaml", "default: {tokenz: 3}\n", document="behaviour"), tmp_path)
    with pytest.raises(AssertionError, match="unknown document kind 'recipe'"):
        RUNNERS["yaml"](block("yaml", "a: 1\n", document="recipe"), tmp_path)


def test_console_output_is_compared_with_ellipses(tmp_path: Path) -> None:
    shown = "$ printf 'one\\ntwo 2\\nthree\\nfour\\n'\none\n...\nthree\nf...r\n"
    RUNNERS["console"](block("console", shown), tmp_path)
    with pytest.raises(AssertionError, match="the docs show"):
        RUNNERS["console"](block("console", shown + "five\n"), tmp_path)


def test_output_patterns() -> None:
    assert output_pattern(["a", "...", "z"]).fullmatch("a\nz\n")
    assert output_pattern(["a", "...", "z"]).fullmatch("a\nb\nc\nz\n")
    assert not output_pattern(["a", "z"]).fullmatch("a\nb\nz\n")
    assert output_pattern(["a ... z"]).fullmatch("a b c z\n")
    assert not output_pattern(["a.c"]).fullmatch("abc\n")


# Any text a reason is written in, but the quote and backslash that would need escaping.
words = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters='"\\'), max_size=20
)


@given(
    st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=30), max_size=5)
)
def test_output_without_ellipses_matches_itself_exactly(lines: list[str]) -> None:
    lines = [line for line in lines if "..." not in line]
    printed = "".join(line.rstrip() + "\n" for line in lines)
    assert output_pattern(lines).fullmatch(printed)
    assert not output_pattern([*lines, "x"]).fullmatch(printed)


@given(st.dictionaries(st.sampled_from(sorted(ATTRIBUTES)), words, max_size=4))
def test_attributes_read_back_as_written(attrs: dict[str, str]) -> None:
    info = "bash " + "{" + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + "}" if attrs else "bash"
    assert parse_info(info) == ("bash", attrs)


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ('bash skip="x"', "attributes must be in braces"),
        ('bash {colour="x"}', "unknown attribute 'colour'"),
        ('bash {skip="x" skip="y"}', "given twice"),
        ('bash {skip="x}', "cannot read attributes"),
    ],
)
def test_bad_info_strings_are_refused_with_the_reason(info: str, message: str) -> None:
    with pytest.raises(InfoStringError, match=message):
        parse_info(info)
