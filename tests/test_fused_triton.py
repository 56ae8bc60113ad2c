"""The Triton multi-tensor kernel equals the reference kernel (ulp level).

Without a GPU it runs on CPU tensors through Triton's interpreter (TRITON_INTERPRET=1,
set here before triton is imported, and left set: triton reads it again later, lazily);
skipped when triton is not installed.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton")

from hypothesis import HealthCheck, given, settings  # noqa: E402

from .fused_cases import cases, extras, make_tensors  # noqa: E402
from .test_fused_cpu import _lists, check_against_reference  # noqa: E402
from torchfluid.kernels import fused_cpu, fused_triton  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _tables(params, grads, lists, case):
    dt = fused_cpu._DTYPES[case["dtype"]]
    addr = fused_cpu.address_table(params, grads, lists["mean_square"], lists["mean_grad"],
                                   lists["momentum"])
    numel = np.array([p.numel() for p in params], np.int64)
    hyper = fused_cpu.hyper_table(len(params), dt, **extras(case))
    sc = fused_cpu.scalar_table(dt, rho=case["hyper"]["rho"],
                                epsilon=case["hyper"]["epsilon"],
                                momentum=case["hyper"]["momentum"],
                                eps_in_sqrt=case["hyper"]["eps_in_sqrt"])
    dev = [torch.from_numpy(a).to(DEVICE) for a in
           (addr, fused_cpu.chunk_table(numel, fused_triton.CHUNK), hyper, sc)]
    return dev, numel


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(max_tensors=3))
def test_triton_equals_reference(case):
    h = case["hyper"]

    def fused(params, grads, states):
        lists = _lists(states)
        (addr, chunks, hyper, sc), _ = _tables(params, grads, lists, case)
        fused_triton.rmsprop_table_(addr, chunks, hyper, sc, case["centered"],
                                    case["has_moment"], h["lr_in_momentum"], h["nesterov"])

    check_against_reference(case, fused, make_tensors(case, DEVICE), steps=2)


def test_triton_sq_norms_and_zero():
    gen = torch.Generator().manual_seed(0)
    ts = [torch.randn(s, generator=gen).to(DEVICE) for s in [(5000,), (0,), (3, 7)]]
    addr = fused_cpu.address_table(ts, ts, ts)
    numel = np.array([t.numel() for t in ts], np.int64)
    chunks = fused_cpu.chunk_table(numel, fused_triton.CHUNK)
    first = np.concatenate([[0], np.cumsum(-(-numel // fused_triton.CHUNK))])
    dev = [torch.from_numpy(a).to(DEVICE) for a in (addr, chunks, first)]
    like = torch.empty(0, device=DEVICE)
    got = fused_triton.sq_norms_table(dev[0], fused_cpu.G, dev[1], dev[2], like)
    want = torch.stack([t.double().square().sum() for t in ts])
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    fused_triton.zero_table_(dev[0], fused_cpu.G, dev[1], like)
    assert all(not t.any() for t in ts)
