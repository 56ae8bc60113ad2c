#!/usr/bin/env bash
# Runs the whole test suite (installs what it needs first, then lints: ruff check + ruff format --check).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Lint and format first (configuration: [tool.ruff] in pyproject.toml).
"${PYTHON:-python3}" -m ruff check .
"${PYTHON:-python3}" -m ruff format --check .
exec "${PYTHON:-python3}" -m pytest -q -p no:cacheprovider "$@"
