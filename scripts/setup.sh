#!/usr/bin/env bash
# Create ./.venv (if missing) and install napari-doubledip into it, editable, with the given extras.
#
#   bash scripts/setup.sh [EXTRAS]        EXTRAS: all (default), testing, napari, dask, ...
#
# torch is installed first and pinned (TORCH_SPEC, default torch==2.13.0): on Linux, PyPI's build
# of it runs on CUDA GPUs and on CPUs; where a CPU-only wheel of that version is already on disk
# (as on our build machines) pip takes it in seconds. To use another build (another CUDA version,
# a CPU-only build), install it into .venv first or set TORCH_SPEC; a torch already in the venv is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-all}"
venv="${VENV:-.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv with $($python --version)"
  "$python" -m venv "$venv"
fi
stamp="$venv/.installed-${extras//,/-}-$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [ -f "$stamp" ]; then
  exit 0
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "setup: installing ${TORCH_SPEC:-torch==2.13.0}"
  "$venv/bin/python" -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
fi
echo "setup: installing napari-doubledip[$extras]"
"$venv/bin/python" -m pip install -q -e ".[$extras]"
touch "$stamp"
