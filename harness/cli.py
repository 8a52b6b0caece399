"""The ``aigw`` command line.

Each subcommand lives in its own module under ``aigw_harness.commands`` and exposes
``register(subparsers) -> None``, which adds its parser and sets ``handler`` (a function taking the parsed
arguments and returning the exit status). Adding a command means adding a module; this file does not change.

Exit status: 0 when everything asked for holds, 1 when a check or expectation fails, 2 for usage or
configuration errors (a bad flag, a bad data file, missing credentials), 141 when the reader of standard
output went away (``aigw list | head``: what a shell reports for a tool stopped by SIGPIPE), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import pkgutil
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, cast

from aigw_fakes.datafiles import DataFileError
from aigw_harness import __version__, commands
from aigw_harness.errors import HarnessError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class _CommandModule(Protocol):
    def register(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aigw",
        description="Test software that runs on Cloudflare AI Gateway and Workers AI: "
        "a faithful fake gateway, "
        "a reference /chat gateway, scenario runs and findings reports.",
    )
    parser.add_argument("--version", action="version", version=f"aigw {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = cast(_CommandModule, importlib.import_module(f"{commands.__name__}.{info.name}"))
        module.register(subparsers)
    return parser


EXIT_CLOSED_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        handler = cast(Callable[[argparse.Namespace], int], args.handler)
        try:
            status = handler(args)
        except (DataFileError, HarnessError) as exc:
            _say(f"aigw: error: {exc}")
            status = EXIT_USAGE
        sys.stdout.flush()  # inside the try: a reader that left is noticed here, not at exit
        return status
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_CLOSED_PIPE
    except KeyboardInterrupt:
        _say("aigw: interrupted")
        return 130


def _say(line: str) -> None:
    with contextlib.suppress(BrokenPipeError, ValueError):  # nobody is reading standard error either
        print(line, file=sys.stderr)


def _discard_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's last flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):  # not a real file (captured in tests)
        pass


if __name__ == "__main__":
    sys.exit(main())
