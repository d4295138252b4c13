#!/usr/bin/env bash
# Create .venv and install brightkitchen with the extras named in $BK_EXTRAS
# (default: everything a developer needs). torch is pinned to the CPU build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${BK_EXTRAS:-backend,edge,demo,dev,train}
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $($PY --version)"
  $PY -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
echo "installing brightkitchen[$EXTRAS] (torch pinned by constraints.txt)"
.venv/bin/python -m pip install -q -c constraints.txt -e ".[$EXTRAS]"
if [[ ",$EXTRAS," == *",train,"* ]]; then
  .venv/bin/python -m models.torchvision_shim install .venv/bin/python || true
fi
echo "installed: $(.venv/bin/brightkitchen --help >/dev/null && echo brightkitchen CLI OK)"
