#!/usr/bin/env bash
# Set up (venv, packages, Xvfb) and run the whole test suite. Extra arguments go to pytest.
#
#   bash scripts/test.sh [PYTEST-ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh testing
bash scripts/ensure_xvfb.sh
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy  # core/ (see [tool.mypy] in pyproject.toml)
.venv/bin/python -m pytest -p xvfb "$@"
