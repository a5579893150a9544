#!/usr/bin/env bash
# Set up a virtual environment (./.venv) with jetdask and its test extras, then run the tests.
# Without arguments: every test but those marked slow (the default run, ~15-20 min on 2 cores).
# Extra arguments go to pytest instead (e.g. `bash scripts/test.sh -m slow` for the slow ones:
# the demo, the notebooks, the OOM culprit repeats, the XRootD outages).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
venv_install "test,cluster,torch,corrections,notebook,onnx,xrootd,gateway,docs"
if [ "$#" -eq 0 ]; then
    set -- -m "not slow"
fi
exec .venv/bin/python -m pytest -ra "$@"
