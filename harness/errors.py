"""Errors the harness raises for its users.

    HarnessError            anything the user can act on; the CLI prints it and exits 2
    ├── ConfigError         a bad flag, setting or environment variable (name it in the message)
    └── TargetUnavailable   a target cannot run here (missing credentials, Node.js, a control channel)

Data files report their own mistakes with ``aigw_fakes.datafiles.DataFileError`` (file, line and field).
Programming mistakes raise ``RuntimeError``/``TypeError`` as usual.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base class for errors that are the user's to fix; the message must say what and where."""


class ConfigError(HarnessError):
    """A bad command-line flag, setting or environment variable."""


class TargetUnavailable(HarnessError):
    """The chosen target cannot run here; the message says what is missing."""
