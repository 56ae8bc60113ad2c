"""The numba multi-tensor kernel equals the reference kernel (plus Paddle's gradient
pre-processing) to ulp level, for random shapes, dtypes, flags and hyper-parameters."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings

from .fused_cases import cases, check_against_reference, kernel_tables
from torchfluid.kernels import fused_cpu

pytest.importorskip("numba")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_fused_cpu_equals_reference(case):
    check_against_reference(case, _table_step(case))


def _table_step(case, threads=None):
    """One fused_cpu.rmsprop_table_ call over the case's tensors."""
    h = case["hyper"]

    def fused(params, grads, states):
        tables = kernel_tables(params, grads, states, case, fused_cpu.CHUNK)
        fused_cpu.rmsprop_table_(*tables, case["centered"], case["has_moment"], h["lr_in_momentum"],
                                 h["nesterov"], threads=threads)

    return fused


def test_many_chunks_and_threads_equal_reference():
    # > 2 chunks per tensor and enough elements for every thread (the thread split).
    shapes = [(70_001,), (3, 40_000), (0,), (1,), (300, 257)]
    for dtype in (torch.float32, torch.float64):
        case = dict(shapes=shapes, dtype=dtype, centered=True, has_moment=True, seed=3,
                    missing_grad=[False, False, False, True, False],
                    hyper=dict(rho=0.9, epsilon=1e-8, momentum=0.9, eps_in_sqrt=False,
                               lr_in_momentum=True, nesterov=True),
                    lr=[0.01] * 5, grad_scale=[0.5] * 5, clip=[None, (-1.0, 1.0)] + [None] * 3,
                    l2=[0.0, 0.01, 0.0, 0.0, 0.1], l1=[0.001, 0.0, 0.0, 0.0, 0.0])

        for threads in (None, 1, 2, 3):
            check_against_reference(case, _table_step(case, threads))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sq_norms(dtype):
    gen = torch.Generator().manual_seed(0)
    ts = [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype)
          for s in [(100_003,), (0,), (7, 3), ()]] + [None]
    got = fused_cpu.sq_norms(ts)
    want = [float(t.double().square().sum()) if t is not None else 0.0 for t in ts]
    assert got.dtype.name == "float64"
    assert got.tolist() == pytest.approx(want, rel=1e-12)


SQ_NORMS_BAD = [
    ("fp16", [torch.zeros(3).half()], "tensors: dtype torch.float16 not supported; allowed: float32, float64"),
    ("mixed dtypes", [torch.zeros(3), torch.zeros(2).double()],
     "tensors[1]: torch.float64 on cpu; allowed: torch.float32 on cpu"),
    ("strided", [torch.zeros(8)[::2]], "tensors[0]: strides (2,) for shape (4,) are not contiguous"),
]


@pytest.mark.parametrize("name,tensors,message", SQ_NORMS_BAD, ids=[c[0] for c in SQ_NORMS_BAD])
def test_sq_norms_bad_inputs_name_argument_value_and_range(name, tensors, message):
    with pytest.raises(ValueError) as err:
        fused_cpu.sq_norms(tensors)
    assert message in str(err.value)
