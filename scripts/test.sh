#!/usr/bin/env bash
# Sets everything up, then runs every check CI runs: lint, format, types,
# the import contracts and the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/bin/activate
echo "== ruff (lint)";   ruff check .
echo "== ruff (format)"; ruff format --check .
echo "== mypy";          mypy rsplib fractal_pe fractal_pu control_center
echo "== import contracts"; lint-imports
echo "== pytest";        python -m pytest "$@"
