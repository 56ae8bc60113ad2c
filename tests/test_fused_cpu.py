"""The numba multi-tensor kernel equals the reference kernel (plus Paddle's gradient
pre-processing) to ulp level, for random shapes, dtypes, flags and hyper-parameters."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings

from .fused_cases import (STATE, assert_ulp_close, cases, extras, magnitude, make_tensors,
                         reference_kwargs, reference_step)
from torchfluid.kernels import fused_cpu

STEPS = 3


def _lists(states):
    out = {}
    for name in STATE:
        have = [s.get(name) for s in states]
        out[name] = None if all(h is None for h in have) else have
    return out


def check_against_reference(case, fused_step, tensors=None, steps=STEPS, ulps=8):
    """Run ``steps`` steps of the fused path and of the reference from the same values
    (``tensors``: the case's params, grads, states), comparing after each and re-syncing
    the fused side to the reference (so rounding differences cannot compound)."""
    params, grads, states = make_tensors(case) if tensors is None else tensors
    for step in range(steps):
        ref_p = [p.clone() for p in params]
        ref_s = [{k: v.clone() for k, v in s.items()} for s in states]
        fused_step(params, grads, states)
        reference_step(ref_p, grads, ref_s, **reference_kwargs(case))
        for i in range(len(params)):
            scale = magnitude(ref_p[i], *ref_s[i].values(), params[i])
            assert_ulp_close(params[i], ref_p[i], ulps=ulps, scale=scale,
                             what=f"step {step} param {i}")
            for k in ref_s[i]:
                assert_ulp_close(states[i][k], ref_s[i][k], ulps=ulps, scale=scale,
                                 what=f"step {step} {k} {i}")
        for i in range(len(params)):  # re-sync: continue from the reference values
            params[i].copy_(ref_p[i])
            for k in ref_s[i]:
                states[i][k].copy_(ref_s[i][k])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_fused_cpu_equals_reference(case):
    def fused(params, grads, states):
        lists = _lists(states)
        fused_cpu.rmsprop_multi_(params, grads, lists["mean_square"], lists["mean_grad"],
                                 lists["momentum"], **case["hyper"], **extras(case))

    check_against_reference(case, fused)


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

        def fused(params, grads, states):
            lists = _lists(states)
            fused_cpu.rmsprop_multi_(params, grads, lists["mean_square"],
                                     lists["mean_grad"], lists["momentum"],
                                     **case["hyper"], **extras(case))

        check_against_reference(case, fused)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sq_norms_and_zero(dtype):
    gen = torch.Generator().manual_seed(0)
    ts = [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype)
          for s in [(100_003,), (0,), (7, 3), ()]] + [None]
    got = fused_cpu.sq_norms(ts)
    want = [float(t.double().square().sum()) if t is not None else 0.0 for t in ts]
    assert got.dtype.name == "float64"
    assert got.tolist() == pytest.approx(want, rel=1e-12)
    fused_cpu.zero_(ts)
    assert all(not t.any() for t in ts if t is not None)


def _bad_inputs():
    p = [torch.zeros(4), torch.zeros(3)]
    g = [torch.zeros(4), torch.zeros(3)]
    s = [torch.zeros(4), torch.zeros(3)]
    return [
        ("fp16", dict(params=[x.half() for x in p], grads=g, mean_squares=s),
         "params[0]: dtype torch.float16 not supported; allowed: float32, float64"),
        ("grads length", dict(params=p, grads=g[:1], mean_squares=s),
         "grads: 1 tensors for 2 params; allowed: 2"),
        ("grad dtype", dict(params=p, grads=[g[0].double(), g[1]], mean_squares=s),
         "grads[0]: dtype torch.float64 differs from params' torch.float32"),
        ("grad size", dict(params=p, grads=[torch.zeros(5), g[1]], mean_squares=s),
         "grads[0]: 5 elements, param has 4; allowed: 4"),
        ("strided", dict(params=p, grads=[torch.zeros(8)[::2], g[1]], mean_squares=s),
         "grads[0]: strides (2,) for shape (4,) are not contiguous"),
        ("state None", dict(params=p, grads=g, mean_squares=s, mean_grads=[s[0], None]),
         "mean_grads[1]: None; allowed: a tensor"),
        ("lr length", dict(params=p, grads=g, mean_squares=s, lr=[0.1] * 3),
         "lr: shape (3,); allowed: a float or 2 floats"),
    ]


@pytest.mark.parametrize("name,kwargs,message", _bad_inputs(), ids=[c[0] for c in _bad_inputs()])
def test_bad_inputs_name_argument_value_and_range(name, kwargs, message):
    kwargs = dict(kwargs)
    args = [kwargs.pop(k) for k in ("params", "grads", "mean_squares")]
    hyper = dict(lr=kwargs.pop("lr", 0.1), rho=0.9, epsilon=1e-6)
    with pytest.raises(ValueError) as err:
        fused_cpu.rmsprop_multi_(*args, **kwargs, **hyper)
    assert message in str(err.value)
