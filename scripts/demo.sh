#!/usr/bin/env bash
# Set up ./.venv and run the demo: synthetic DY+jets data/MC study on a LocalCluster, writing plots.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[cluster,torch,corrections,notebook]"
exec .venv/bin/jetdask demo "$@"
