"""Subcommands of ``aigw``: one module each, discovered by ``aigw_harness.cli``."""
