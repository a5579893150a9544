#!/usr/bin/env bash
# Build the documentation (docs/, Sphinx + MyST) into docs/_build/html, warnings as errors.
# Sets up ./.venv with jetdask and the docs extra when needed (as scripts/test.sh does).
# Then open docs/_build/html/index.html in a browser (no server needed).
# Extra arguments go to sphinx-build (e.g. `bash scripts/docs.sh -E` for a full rebuild).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
# the API reference imports every public module, so the extras they need come too
if ! { [ -x .venv/bin/python ] && .venv/bin/python -c "import jetdask, sphinx, myst_nb, furo, torch, dask_jobqueue" 2>/dev/null; }; then
    venv_install "docs,cluster,torch,corrections,onnx"
fi
.venv/bin/python -m sphinx -W --keep-going -q -b html "$@" docs docs/_build/html
echo "docs built: docs/_build/html/index.html"
