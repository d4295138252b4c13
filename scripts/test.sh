#!/usr/bin/env bash
# The whole test suite from a fresh clone: system packages, venv, then pytest against
# real PostgreSQL and Mosquitto (throwaway ones are started where none is reachable).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
BK_EXTRAS=${BK_EXTRAS:-backend,edge,demo,dev,train} bash scripts/install.sh
exec .venv/bin/python -m pytest "$@"
