#!/usr/bin/env bash
# Static checks, as CI runs them: ruff (rules and justified ignores in pyproject.toml [tool.ruff]) on
# the whole repository, and mypy on the layers typed so far (pyproject.toml [tool.mypy]: jetdask/engine,
# jetdask/nanoaod). Uses ./.venv (scripts/test.sh sets it up). Exit code: 0 when both are clean.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m ruff check .
ruff=$?
.venv/bin/python -m mypy
mypy=$?
exit $(( ruff != 0 ? ruff : mypy ))
