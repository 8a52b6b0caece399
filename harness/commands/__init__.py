"""Subcommands of ``aigw``: one module each, discovered by ``harness.cli``."""
