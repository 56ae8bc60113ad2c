"""The numba multi-tensor kernel equals the reference kernel (plus Paddle's gradient
pre-processing) to ulp level, for random shapes, dtypes, flags and hyper-parameters."""

from __future__ import annotations

import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings

from .fused_cases import cases, check_against_reference, kernel_tables, make_tensors
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
        fused_cpu.rmsprop_table_(
            *tables, case["centered"], case["has_moment"], h["lr_in_momentum"], h["nesterov"], threads=threads
        )

    return fused


def test_many_chunks_and_threads_equal_reference():
    # > 2 chunks per tensor and enough elements for every thread (the thread split).
    shapes = [(70_001,), (3, 40_000), (0,), (1,), (300, 257)]
    for dtype in (torch.float32, torch.float64):
        case = {
            "shapes": shapes,
            "dtype": dtype,
            "centered": True,
            "has_moment": True,
            "seed": 3,
            "missing_grad": [False, False, False, True, False],
            "hyper": {
                "rho": 0.9,
                "epsilon": 1e-8,
                "momentum": 0.9,
                "eps_in_sqrt": False,
                "lr_in_momentum": True,
                "nesterov": True,
            },
            "lr": [0.01] * 5,
            "grad_scale": [0.5] * 5,
            "clip": [None, (-1.0, 1.0)] + [None] * 3,
            "l2": [0.0, 0.01, 0.0, 0.0, 0.1],
            "l1": [0.001, 0.0, 0.0, 0.0, 0.0],
        }

        for threads in (None, 1, 2, 3):
            check_against_reference(case, _table_step(case, threads))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sq_norms(dtype):
    gen = torch.Generator().manual_seed(0)
    ts = [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in [(100_003,), (0,), (7, 3), ()]] + [None]
    got = fused_cpu.sq_norms(ts)
    want = [float(t.double().square().sum()) if t is not None else 0.0 for t in ts]
    assert got.dtype.name == "float64"
    assert got.tolist() == pytest.approx(want, rel=1e-12)


SQ_NORMS_BAD = [
    ("fp16", [torch.zeros(3).half()], "tensors: dtype torch.float16 not supported; allowed: float32, float64"),
    (
        "mixed dtypes",
        [torch.zeros(3), torch.zeros(2).double()],
        "tensors[1]: torch.float64 on cpu; allowed: torch.float32 on cpu",
    ),
    ("strided", [torch.zeros(8)[::2]], "tensors[0]: strides (2,) for shape (4,) are not contiguous"),
]


@pytest.mark.parametrize("name,tensors,message", SQ_NORMS_BAD, ids=[c[0] for c in SQ_NORMS_BAD])
def test_sq_norms_bad_inputs_name_argument_value_and_range(name, tensors, message):
    with pytest.raises(ValueError) as err:
        fused_cpu.sq_norms(tensors)
    assert message in str(err.value)


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and torch.backends.openmp.is_available()),
    reason="torch without OpenMP, or not Linux",
)
def test_kernels_run_on_torchs_openmp_team():
    gomp = fused_cpu.torch_openmp()
    assert gomp is not None  # torch's own runtime, found among the loaded libraries
    assert fused_cpu._RUNNER == "openmp"


@pytest.mark.parametrize("threads", [2, 3])
def test_openmp_team_pool_and_one_thread_give_identical_results(monkeypatch, threads):
    case = {
        "shapes": [(200_001,), (3, 40_000), (1,)],
        "dtype": torch.float32,
        "centered": True,
        "has_moment": True,
        "seed": 5,
        "missing_grad": [False, False, False],
        "hyper": {
            "rho": 0.9,
            "epsilon": 1e-8,
            "momentum": 0.9,
            "eps_in_sqrt": True,
            "lr_in_momentum": True,
            "nesterov": False,
        },
        "lr": [0.01] * 3,
        "grad_scale": [0.7] * 3,
        "clip": [None, (-1.0, 1.0), None],
        "l2": [0.0] * 3,
        "l1": [0.0] * 3,
    }
    results = []
    for runner, n in (("openmp", threads), ("pool", threads), ("openmp", 1)):
        monkeypatch.setattr(fused_cpu, "_RUNNER", runner)
        params, grads, states = make_tensors(case)
        _table_step(case, n)(params, grads, states)
        norms = fused_cpu.sq_norms(grads)
        results.append([*params, *(v for s in states for v in s.values()), torch.from_numpy(norms)])
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other, strict=True))
