"""Squared norms for clipping: one pass over all gradients, float64 accumulation,
checked against numpy's float64 sums; both routes (numba, torch foreach) agree; the
result does not depend on the thread count; the clips make one reduction call per step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torchfluid.clip import ClipGradByGlobalNorm, ClipGradByNorm, global_norm
from torchfluid.kernels import norms
from torchfluid.optimizer import RMSProp

pytest.importorskip("numba")
from torchfluid.kernels import fused_cpu  # noqa: E402


def _numpy_sq(t: torch.Tensor) -> float:
    x = t.detach().to(torch.float64).numpy()
    return float(np.sum(x * x))


def _tensor(shape, dtype, seed, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=gen, dtype=torch.float64) * scale).to(dtype)


CASES = {
    "float32 big": [((100_003,), torch.float32)],
    "float64": [((33, 17), torch.float64)],
    "empty and 0-d": [((0,), torch.float32), ((), torch.float32), ((5, 0), torch.float32)],
    "bfloat16 and float16 (torch route)": [((1000,), torch.bfloat16), ((77,), torch.float16)],
    "mixed routes keep their order": [
        ((10,), torch.float16),
        ((40_000,), torch.float32),
        ((3,), torch.float64),
        ((9,), torch.bfloat16),
        ((70_000,), torch.float32),
    ],
}


@pytest.mark.parametrize("name", list(CASES))
def test_squared_norms_equal_numpy_float64_sums(name):
    ts = [_tensor(s, dt, i) for i, (s, dt) in enumerate(CASES[name])]
    got = norms.squared_norms(ts)
    assert got.dtype == torch.float64 and got.shape == (len(ts),)
    assert got.tolist() == pytest.approx([_numpy_sq(t) for t in ts], rel=1e-12, abs=0)


@pytest.mark.parametrize(
    "tensors",
    [
        [torch.zeros(0)],
        [torch.zeros(0), torch.zeros(0, dtype=torch.float64)],  # two routes, no element in either
        [torch.zeros(0, 3), torch.ones(2, dtype=torch.float64)],
    ],
)
def test_empty_tensors_give_float64_zeros(tensors):
    got = norms.squared_norms(tensors)
    assert got.dtype == torch.float64
    assert got.tolist() == [_numpy_sq(t) for t in tensors]


def test_non_contiguous_tensors_take_the_torch_route():
    base = _tensor((64, 48), torch.float32, 0)
    ts = [base.t(), base[:, ::3], base]
    assert norms.squared_norms(ts).tolist() == pytest.approx([_numpy_sq(t) for t in ts], rel=1e-12)


def test_empty_list_and_bad_input():
    assert norms.squared_norms([]).shape == (0,)
    with pytest.raises(TypeError, match=r"tensors\[1\]: a torch.sparse_coo tensor; allowed: dense"):
        norms.squared_norms([torch.ones(2), torch.ones(3).to_sparse()])
    with pytest.raises(TypeError, match=r"tensors\[0\]: list; allowed: dense"):
        norms.squared_norms([[1.0, 2.0]])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(0, 70_000), min_size=1, max_size=6),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    log_scale=st.integers(-20, 20),
    seed=st.integers(0, 2**16),
)
def test_numba_route_equals_torch_route_and_numpy(sizes, dtype, log_scale, seed):
    ts = [_tensor((n,), dtype, seed + i, 2.0**log_scale) for i, n in enumerate(sizes)]
    numba_sq = norms.squared_norms(ts)
    saved = norms._fused_cpu
    norms._fused_cpu = False  # numba "missing": the torch foreach route
    try:
        torch_sq = norms.squared_norms(ts)
    finally:
        norms._fused_cpu = saved
    want = [_numpy_sq(t) for t in ts]
    assert numba_sq.tolist() == pytest.approx(want, rel=1e-12, abs=0)
    assert torch_sq.tolist() == pytest.approx(want, rel=1e-12, abs=0)


def test_result_does_not_depend_on_the_thread_count():
    ts = [_tensor((n,), torch.float32, n, 3.0) for n in (300_001, 5, 123_457)]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = norms.squared_norms(ts)
        torch.set_num_threads(2)
        two = norms.squared_norms(ts)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


def test_global_norm_rounds_the_float64_sum_once():
    ts = [_tensor((1000,), torch.float32, i) for i in range(3)] + [_tensor((10,), torch.float16, 9)]
    want = np.sqrt(sum(_numpy_sq(t) for t in ts))
    got = global_norm(ts)
    assert got.dtype == torch.float32 and got.item() == np.float32(want)
    assert global_norm(ts + [torch.ones(2, dtype=torch.float64)]).dtype == torch.float64
    assert global_norm([]).item() == 0.0


@pytest.mark.parametrize("clip", [ClipGradByGlobalNorm(0.5), ClipGradByNorm(0.5)])
def test_each_step_reduces_all_gradients_in_one_kernel_call(clip, monkeypatch):
    ps = [torch.nn.Parameter(_tensor((n,), torch.float32, n)) for n in (50, 70_000, 3, 129)]
    ps[2].need_clip = False
    opt = RMSProp(0.01, parameters=ps, momentum=0.9, grad_clip=clip)
    calls = []
    real = fused_cpu.sq_norms_table
    monkeypatch.setattr(fused_cpu, "sq_norms_table", lambda addr, *a: calls.append(addr.shape[0]) or real(addr, *a))
    for step in range(3):
        for p in ps:
            p.grad = _tensor(p.shape, torch.float32, 100 + step)
        opt.step()
    assert calls == [3, 3, 3]  # one call a step, over the three clipped gradients


def test_per_tensor_norm_clip_scales_each_gradient_by_its_own_norm():
    gs = [_tensor((n,), dt, n) for n, dt in ((100, torch.float32), (7, torch.float64), (30, torch.float32))]
    steps = ClipGradByNorm(1.0).plan(gs, [True, True, False])
    for g, step in zip(gs[:2], steps, strict=False):
        n = np.sqrt(_numpy_sq(g))
        assert step.scale.dtype == g.dtype
        assert step.scale.item() == pytest.approx(1.0 / max(n, 1.0), rel=1e-6)
    assert steps[2].is_noop()
