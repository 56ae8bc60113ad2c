"""The Triton multi-tensor kernel equals the reference kernel (ulp level).

Without a GPU it runs on CPU tensors through Triton's interpreter (TRITON_INTERPRET=1,
set here before triton is imported, and left set: triton reads it again later, lazily);
skipped when triton is not installed.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton")

from hypothesis import HealthCheck, given, settings  # noqa: E402

from .fused_cases import cases, check_against_reference, kernel_tables, make_tensors  # noqa: E402
from torchfluid.kernels import fused_triton  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(max_tensors=3))
def test_triton_equals_reference(case):
    h = case["hyper"]

    def fused(params, grads, states):
        tables = kernel_tables(params, grads, states, case, fused_triton.CHUNK)
        addr, chunks, hyper, sc = (torch.from_numpy(a).to(DEVICE) for a in tables)
        fused_triton.rmsprop_table_(
            addr, chunks, hyper, sc, case["centered"], case["has_moment"], h["lr_in_momentum"], h["nesterov"]
        )

    check_against_reference(case, fused, make_tensors(case, DEVICE), steps=2)


def test_triton_path_does_not_need_numba():
    """The table layout lives apart from the numba kernels: with numba missing, the
    Triton module and the flat group's CUDA tables still import and build."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['numba'] = None; sys.modules['llvmlite'] = None\n"
        "from torchfluid.kernels import flat, fused_triton, table\n"
        "print(flat.missing('cpu'), flat.missing('cuda'), table.chunk_table([5], fused_triton.CHUNK).shape)"
    )
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    env = dict(os.environ, PYTHONPATH=root, TRITON_INTERPRET="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["numba", "None", "(1,", "3)"]
