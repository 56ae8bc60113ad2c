#!/usr/bin/env bash
# Runs the main job: the torchfluid demo (installs what it needs first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PYTHON:-python3}" -m torchfluid demo "$@"
