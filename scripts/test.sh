#!/usr/bin/env bash
# The project's test command: the same one the README gives and CI runs (the venv's plain `pytest`).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/pytest "$@"
