# Sourced by scripts/test.sh, demo.sh and docs.sh (run from the repository root): ./.venv set up.
# venv_install EXTRAS: ./.venv created with $PYTHON (default python3) when missing, pip upgraded, torch
# 2.13.0 (the CPU wheel on disk, never a CUDA build), then jetdask editable with the extras EXTRAS
# (comma-separated, e.g. "cluster,torch").
venv_install() {
    [ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q "torch==2.13.0"
    .venv/bin/python -m pip install -q -e ".[$1]"
}
