#!/usr/bin/env bash
# Set up ./.venv and run the demo: synthetic DY+jets data/MC study on a LocalCluster, writing plots.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
venv_install "cluster,torch,corrections,notebook"
exec .venv/bin/jetdask demo "$@"
