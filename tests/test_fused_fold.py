"""Clipping and regularization fold into the fused kernel's pass: the fused
optimizer equals the reference optimizer (fused=False, which materialises clipped and
regularized gradients) bit for bit on CPU, and materialises nothing itself."""

from __future__ import annotations

import pytest
import torch

from torchfluid.clip import ClipGradByGlobalNorm, ClipGradByNorm, ClipGradByValue, ClipStep
from torchfluid.optimizer import RMSProp
from torchfluid.regularizer import L1Decay, L2Decay

pytest.importorskip("numba")

CLIPS = {
    "none": lambda: None,
    "value": lambda: ClipGradByValue(0.6, min=-0.4),
    "norm": lambda: ClipGradByNorm(1.5),
    "global_norm": lambda: ClipGradByGlobalNorm(2.0),
}
REGS = {
    "none": lambda ps: None,
    "l2": lambda ps: L2Decay(0.01),
    "l1_override": lambda ps: _own(ps[1], L1Decay(0.003)) or L2Decay(0.02),
}


def _own(p, reg):
    p.regularizer = reg


def _model(seed=0):
    gen = torch.Generator().manual_seed(seed)
    ps = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in [(7, 5), (5,), (3, 3), (4,)]]
    ps[2].need_clip = False  # neither clipped nor in the global norm
    return ps


def _groups(ps):
    return [
        {"params": [("a", ps[0]), ("b", ps[1])], "centered": True, "momentum": 0.9},
        {"params": [("c", ps[2]), ("d", ps[3])], "learning_rate": 0.5, "rho": 0.8},
    ]


def _feed(ps, step):
    gen = torch.Generator().manual_seed(100 + step)
    for p in ps:
        p.grad = torch.randn(p.shape, generator=gen) * 2.0


def _opt(ps, clip, reg, **kw):
    return RMSProp(0.01, parameters=_groups(ps), grad_clip=CLIPS[clip](), weight_decay=REGS[reg](ps), **kw)


@pytest.mark.parametrize("reg", list(REGS))
@pytest.mark.parametrize("clip", list(CLIPS))
def test_fused_equals_reference_bit_for_bit(clip, reg):
    ps, qs = _model(), _model()
    fused, ref = _opt(ps, clip, reg, fused=True), _opt(qs, clip, reg, fused=False)
    for step in range(5):
        _feed(ps, step), _feed(qs, step)
        fused.step(), ref.step()
        for p, q in zip(ps, qs, strict=False):
            assert torch.equal(p, q), (clip, reg, step)
    sa, sb = fused.state_dict(), ref.state_dict()
    for k, v in sa.items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, sb[k]), k
    if clip == "global_norm":
        assert torch.equal(fused.grad_clip.last_global_norm, ref.grad_clip.last_global_norm)


@pytest.mark.parametrize("clip", ["value", "norm", "global_norm"])
def test_fused_path_materialises_no_clipped_or_regularized_gradient(clip, monkeypatch):
    ps = _model()
    ps[1].regularizer = L1Decay(0.003)
    opt = RMSProp(0.01, parameters=_groups(ps), grad_clip=CLIPS[clip](), weight_decay=L2Decay(0.01), fused=True)

    def refuse(*a, **k):
        raise AssertionError("materialised on the fused path")

    monkeypatch.setattr(ClipStep, "apply", refuse)
    monkeypatch.setattr(L2Decay, "__call__", refuse)
    monkeypatch.setattr(L1Decay, "__call__", refuse)
    before = [p.detach().clone() for p in ps]
    _feed(ps, 0)
    opt.step()
    assert all(not torch.equal(p, b) for p, b in zip(ps, before, strict=False))
    if clip == "global_norm":
        assert opt.grad_clip.last_global_norm is not None
    # the same patches do stop the reference path (it materialises)
    ref = RMSProp(0.01, parameters=_groups(_model()), grad_clip=CLIPS[clip](), weight_decay=L2Decay(0.01), fused=False)
    for q in ref.param_groups[0]["params"] + ref.param_groups[1]["params"]:
        q.grad = torch.ones_like(q)
    with pytest.raises(AssertionError, match="materialised"):
        ref.step()


def test_items_the_fused_kernel_cannot_take_get_the_materialised_gradient():
    """A sparse gradient (reference kernel) and a custom regularizer next to fused items."""

    class Custom(L2Decay):  # a subclass: its term is not the kernel's L2
        def term(self, param):
            return param * param * self.coeff

    def build():
        emb = torch.nn.Parameter(torch.randn(6, 3, generator=torch.Generator().manual_seed(3)))
        ps = _model() + [emb]
        ps[0].regularizer = Custom(0.05)
        return ps

    ps, qs = build(), build()
    kw = {"grad_clip": ClipGradByGlobalNorm(1.0), "weight_decay": L1Decay(0.002)}
    fused = RMSProp(0.01, parameters=ps, **kw)
    ref = RMSProp(0.01, parameters=qs, fused=False, **kw)
    for step in range(3):
        for xs in (ps, qs):
            _feed(xs[:-1], step)
            xs[-1].grad = torch.sparse_coo_tensor([[1, 4, 1]], torch.full((3, 3), 0.5 + step), (6, 3))
        fused.step(), ref.step()
        for p, q in zip(ps, qs, strict=False):
            assert torch.equal(p, q), step
    assert fused._fused.flat  # the dense parameters did take the fused kernel
