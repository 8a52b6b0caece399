#!/usr/bin/env bash
# Creates .venv with a Python 3.12+ interpreter and installs the project with its dev tools.
# Also installs the Worker bridge's Node tooling when Node.js and npm are present.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
    local candidate
    for candidate in "${AIGW_PYTHON:-}" python3.14 python3.13 python3.12 python3 python; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    # pyenv keeps interpreters that are not on PATH unless selected; look at them directly.
    local root="${PYENV_ROOT:-$HOME/.pyenv}"
    for candidate in $(ls -d "$root"/versions/3.* 2>/dev/null | sort -V -r); do
        if [ -x "$candidate/bin/python3" ] \
            && "$candidate/bin/python3" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
            echo "$candidate/bin/python3"
            return 0
        fi
    done
    return 1
}

if [ ! -x .venv/bin/python ]; then
    if ! python=$(find_python); then
        echo "setup: no Python 3.12 or newer found (looked on PATH and in pyenv's versions)." >&2
        echo "setup: install one (for example 'pyenv install 3.12') or set AIGW_PYTHON to its path." >&2
        exit 2
    fi
    echo "setup: creating .venv with $python ($("$python" --version))"
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

if [ -f package.json ]; then
    if command -v npm >/dev/null 2>&1; then
        npm ci --silent --no-audit --no-fund || npm install --silent --no-audit --no-fund
    else
        echo "setup: npm not found; the Worker bridge will be unavailable, everything else works." >&2
    fi
fi
# System packages from Debian, both optional: wrk (C), the load generator of the throughput benchmarks
# (without it they fall back to a Python client), and Chromium, which renders the HTML report in its
# screenshot test (without it that test is skipped and says why).
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; } \
            || echo "setup: could not install ${missing[*]} from the system packages." >&2
    else
        echo "setup: ${missing[*]} not found (Debian: apt-get install ${missing[*]}); optional." >&2
    fi
fi
echo "setup: done"

# Benchmarks only: wrk is the load generator of benchmarks/gateway_overhead.py. Optional: without root or
# apt the benchmarks say what is missing.
if ! command -v wrk >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null 2>&1 \
        || echo "setup: could not install wrk (optional, for benchmarks)" >&2
fi
