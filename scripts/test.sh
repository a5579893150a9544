#!/usr/bin/env bash
# Set up a virtual environment (./.venv) with jetdask and its test extras, then run the tests.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m "not slow"`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch 2.13.0: the CPU wheel on disk (never a CUDA build)
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test,cluster,torch,corrections,notebook]"
exec .venv/bin/python -m pytest -ra "$@"
