#!/usr/bin/env bash
# Create .venv and install brightkitchen with the extras named in $BK_EXTRAS
# (default: backend, edge box, demo and dev tools; scripts/test.sh adds `train`, which
# brings ultralytics and torch, pinned by constraints.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${BK_EXTRAS:-backend,edge,demo,dev}
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $($PY --version)"
  if ! $PY -m venv .venv; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing python3-venv"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      $PY -m venv .venv
    else
      echo "python3 -m venv failed: install the python3-venv package" >&2
      exit 1
    fi
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip
echo "installing brightkitchen[$EXTRAS] (torch pinned by constraints.txt)"
.venv/bin/python -m pip install -q -c constraints.txt -e ".[$EXTRAS]"
if [[ ",$EXTRAS," == *",train,"* ]]; then
  .venv/bin/python -m models.torchvision_shim install .venv/bin/python || true
fi
echo "installed: $(.venv/bin/brightkitchen --help >/dev/null && echo brightkitchen CLI OK)"
