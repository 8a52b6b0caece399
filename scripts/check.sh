#!/usr/bin/env bash
# Lint, format check and strict type check, as CI runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
