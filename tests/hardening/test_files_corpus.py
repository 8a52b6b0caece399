"""Bad input in files: every case is refused with a clear error naming the file and line (and field), in
bounded memory, without a traceback (no exception but the loaders' own errors).

Fixed cases (``tests/hardening/corpus.py``, one per class of mistake and kind of file) and generated ones
(hypothesis: valid files with hostile fragments spliced in, truncated, or bytes flipped). Hangs are caught
by a generous guard, never by a timing assertion; ``benchmarks/bad_input_corpus.py`` prints the figures.
"""

from __future__ import annotations

import signal
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aigw_fakes.datafiles import DataFileError
from aigw_harness.errors import HarnessError
from tests.hardening.corpus import CASES, VALID, Case, Kind, error_path, loader, write

_PEAK_BYTES = 64 * 1024 * 1024  # the 50 MB case reads at most the limit (8 MiB) plus one byte
_HANG_GUARD_S = 60  # only a hang trips this; the benchmark measures the real figures


@contextmanager
def no_hang(seconds: int = _HANG_GUARD_S) -> Iterator[None]:
    def stop(signum: int, frame: object) -> None:
        raise AssertionError(f"did not finish within {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def load(case: Case, directory: Path) -> tuple[Path, Exception | None]:
    path = write(case.kind, case.content, directory)
    try:
        loader(case.kind)(path)
    except (DataFileError, HarnessError) as exc:
        return path, exc
    return path, None


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_case_is_refused_clearly_in_bounded_memory(case: Case, tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        with no_hang():
            path, error = load(case, tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert error is not None, f"{case.id} was accepted"
    message = str(error)
    assert case.words in message
    where = str(error_path(case.kind, path))
    assert where in message
    if case.line is not None:
        assert f"{where}:{case.line}" in message, message
    assert "Traceback" not in message
    assert peak < _PEAK_BYTES, f"{case.id}: {peak / 1e6:.0f} MB"


def test_the_valid_files_load(tmp_path: Path) -> None:
    for kind, text in VALID.items():
        path = write(kind, text.encode(), tmp_path / kind)
        loader(kind)(path)


_HOSTILE = [
    "&a [1]",
    "*a",
    "*nowhere",
    "!!python/object:os.system",
    "!x",
    ".inf",
    "-.nan",
    "1e999",
    "99999999999999999999999999",
    "\x00",
    "\ud800",
    '"\\ud800"',
    "[[[[[[[[[[[[",
    "{{{{",
    "]]]}",
    "<<: *a",
    "---",
    "? ",
    "\t",
    "'",
    '"',
    "//",
    "/*",
    ",",
    "\r\n",
    "\ufeff",
    "\u2028",
    "key: value",
    "- item",
    "../../etc/passwd",
]


def _mutations(kind: Kind) -> st.SearchStrategy[bytes]:
    text = VALID[kind]

    def splice(position: int, fragment: str, cut: bool) -> bytes:
        at = position % (len(text) + 1)
        end = len(text) if cut else at
        return (text[:at] + fragment + text[end:]).encode("utf-8", "surrogatepass")

    def flip(position: int, value: int) -> bytes:
        data = bytearray(text.encode())
        data[position % len(data)] = value
        return bytes(data)

    return st.one_of(
        st.builds(
            splice, st.integers(0, 10_000), st.sampled_from(_HOSTILE) | st.text(max_size=8), st.booleans()
        ),
        st.builds(flip, st.integers(0, 10_000), st.integers(0, 255)),
    )


@pytest.mark.parametrize("kind", list(VALID))
def test_generated_bad_files_load_or_fail_clearly(
    kind: Kind, tmp_path_factory: pytest.TempPathFactory
) -> None:
    @given(_mutations(kind))
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    def check(content: bytes) -> None:
        directory = tmp_path_factory.mktemp(kind.replace(".", "-"))
        with no_hang():
            path, error = load(Case(kind, "generated", content, "", None), directory)
        if error is not None:
            message = str(error)
            assert message.strip()
            assert "Traceback" not in message
            if isinstance(error, DataFileError):
                assert str(error_path(kind, path)) in message or error.source in message
                assert all(p.message for p in error.problems)

    check()
