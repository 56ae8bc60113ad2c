#!/usr/bin/env bash
# Installs what torchfluid needs into the current Python, from the repo's own files.
# torch is pinned to the 2.13.0 CPU wheel and installed FIRST, so that no later
# requirement can pull a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  "$PY" -m pip install -q --disable-pip-version-check torch==2.13.0
fi
"$PY" -m pip install -q --disable-pip-version-check -e ".[dev,fast]" --config-settings editable_mode=compat
# Triton: the CUDA fused RMSProp kernel; without a GPU its tests run in the interpreter.
# Optional: if it cannot be installed those tests skip.
if ! "$PY" -c "import triton" 2>/dev/null; then
  "$PY" -m pip install -q "triton==3.9.*" || echo "setup.sh: triton not installed; its tests will skip" >&2
fi
