#!/usr/bin/env bash
# The main job: set up, then open napari with the plugin docked and a sample loaded; with no
# display, run the same task headless and write the results to ./results/demo.
#
#   bash scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || [ "$(uname)" = "Darwin" ]; then
  exec .venv/bin/python -m napari_doubledip demo --gui "$@"
else
  exec .venv/bin/python -m napari_doubledip demo --out results/demo "$@"
fi
