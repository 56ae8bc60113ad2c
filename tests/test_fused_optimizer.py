"""RMSProp(fused=None) takes the fused kernel and stays consistent with the reference
optimizer (fused=False): param groups, mixed dtypes, clipping and decay, added groups,
loaded state dicts, cleared gradients."""

from __future__ import annotations

import pytest
import torch

from torchfluid.clip import ClipGradByGlobalNorm
from torchfluid.optimizer import RMSProp
from torchfluid.regularizer import L1Decay, L2Decay

TOL = {torch.float32: {"rtol": 2e-5, "atol": 1e-6}, torch.float64: {"rtol": 1e-12, "atol": 1e-13}}


def _model(seed=0):
    gen = torch.Generator().manual_seed(seed)
    shapes = [
        ((6, 5), torch.float32),
        ((5,), torch.float32),
        ((3, 3), torch.float64),
        ((0,), torch.float32),
        ((4,), torch.float64),
    ]
    return [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64).to(dt)) for s, dt in shapes]


def _groups(ps):
    return [
        {"params": [("a", ps[0]), ("b", ps[1]), ("c", ps[2])], "centered": True, "momentum": 0.9},
        {"params": [("d", ps[3]), ("e", ps[4])], "learning_rate": 0.5, "rho": 0.8},
    ]


def _feed(ps, step, skip=()):
    gen = torch.Generator().manual_seed(100 + step)
    for i, p in enumerate(ps):
        g = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
        p.grad = None if i in skip else g


def _assert_same(ps, qs, opt_a, opt_b):
    for p, q in zip(ps, qs, strict=False):
        torch.testing.assert_close(p.detach(), q.detach(), **TOL[p.dtype])
    sa, sb = opt_a.state_dict(), opt_b.state_dict()
    assert set(sa) == set(sb)
    for k in sa:
        if isinstance(sa[k], torch.Tensor):
            torch.testing.assert_close(sa[k], sb[k], **TOL[sa[k].dtype], msg=k)


def _pair(**kw):
    ps, qs = _model(), _model()
    fused = RMSProp(0.01, parameters=_groups(ps), **kw)
    ref = RMSProp(0.01, parameters=_groups(qs), fused=False, **kw)
    return ps, qs, fused, ref


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"weight_decay": L2Decay(0.01), "grad_clip": ClipGradByGlobalNorm(0.5)},
        {"weight_decay": L1Decay(0.001), "eps_in_sqrt": False, "lr_in_momentum": False},
    ],
    ids=["plain", "l2_global_clip", "l1_torch_conventions"],
)
def test_fused_optimizer_follows_the_reference_optimizer(kw):
    ps, qs, fused, ref = _pair(**kw)
    for step in range(4):
        _feed(ps, step, skip=(1,) if step == 1 else ())
        _feed(qs, step, skip=(1,) if step == 1 else ())
        fused.step()
        ref.step()
        _assert_same(ps, qs, fused, ref)
    # the fused path ran: one flat group per (param group, device, dtype), state = views
    assert len(fused._fused.flat) == 4  # 2 groups x {float32, float64}
    for fg in fused._fused.flat.values():
        for i, p in enumerate(fg.params):
            for acc, view in fg.state(i).items():
                assert fused.state[p][acc] is view


def test_added_group_and_loaded_state_dict_keep_the_flat_buffers_consistent():
    ps, qs, fused, ref = _pair()
    for step in range(2):
        _feed(ps, step), _feed(qs, step)
        fused.step(), ref.step()
    gen = torch.Generator().manual_seed(7)
    extra_p = torch.nn.Parameter(torch.randn(7, generator=gen))
    extra_q = torch.nn.Parameter(extra_p.detach().clone())
    fused.add_param_group({"params": [("f", extra_p)], "centered": True, "momentum": 0.5})
    ref.add_param_group({"params": [("f", extra_q)], "centered": True, "momentum": 0.5})
    ps, qs = ps + [extra_p], qs + [extra_q]
    for step in range(2, 4):
        _feed(ps, step), _feed(qs, step)
        fused.step(), ref.step()
        _assert_same(ps, qs, fused, ref)
    # load the reference's state into the fused optimizer: records replaced by plain
    # tensors are copied into the flat buffers at the next step
    snapshot = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in ref.state_dict().items()}
    with torch.no_grad():
        for p, q in zip(ps, qs, strict=False):
            p.copy_(q)
    fused.set_state_dict(snapshot)
    for step in range(4, 6):
        _feed(ps, step), _feed(qs, step)
        fused.step(), ref.step()
        _assert_same(ps, qs, fused, ref)


def test_switching_momentum_on_rebuilds_the_layout_and_keeps_mean_square():
    p = torch.nn.Parameter(torch.ones(5))
    q = torch.nn.Parameter(torch.ones(5))
    fused = RMSProp(0.1, parameters=[("w", p)])
    ref = RMSProp(0.1, parameters=[("w", q)], fused=False)
    for step in range(3):
        if step == 2:
            fused.param_groups[0]["momentum"] = ref.param_groups[0]["momentum"] = 0.9
        p.grad, q.grad = torch.full((5,), 0.1 * (step + 1)), torch.full((5,), 0.1 * (step + 1))
        fused.step(), ref.step()
        _assert_same([p], [q], fused, ref)
    assert "w_momentum_0" in fused.state_dict()


def test_clear_gradients_is_one_memset_and_keeps_missing_grads_missing():
    ps = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(2))]
    opt = RMSProp(0.01, parameters=ps)
    x = torch.randn(5, 4)
    (x @ ps[0] + ps[1]).sum().backward()  # ps[2] gets no gradient
    opt.step()
    opt.clear_gradients()
    (fg,) = opt._fused.flat.values()
    buf = fg.grad_buffer.untyped_storage().data_ptr()
    assert ps[2].grad is None
    for p in ps[:2]:
        assert p.grad.untyped_storage().data_ptr() == buf and not p.grad.any()
    (x @ ps[0] + ps[1]).sum().backward()  # autograd accumulates into the flat buffer
    assert ps[0].grad.untyped_storage().data_ptr() == buf and ps[0].grad.any()
    before = ps[0].detach().clone()
    opt.step()
    assert not ps[0].detach().equal(before)
    assert 2 not in [i for i, p in enumerate(ps) if p in opt.state]  # never updated


def test_fused_true_refuses_what_it_cannot_take_and_fused_must_be_a_bool():
    p = torch.nn.Parameter(torch.randn(10, 4))
    opt = RMSProp(0.1, parameters=[("emb", p)], fused=True)
    p.grad = torch.sparse_coo_tensor(torch.tensor([[1, 3]]), torch.randn(2, 4), (10, 4))
    with pytest.raises(
        ValueError, match="fused=True: parameter 'emb' .* cannot take the fused kernel; allowed: dense contiguous"
    ):
        opt.step()
    auto = RMSProp(0.1, parameters=[("emb", p)])
    auto.step()  # fused=None falls back to the reference kernel for the sparse gradient
    assert auto.state[p]["mean_square"].any()
    with pytest.raises((TypeError, ValueError), match="fused"):
        RMSProp(0.1, parameters=[p], fused="yes")


def test_a_resized_parameter_rebuilds_the_layout_while_other_items_fall_back():
    """The rebuild-once path with a sparse-gradient item waiting on the reference path."""
    results = []
    for fused in (None, False):
        torch.manual_seed(0)
        a = torch.nn.Parameter(torch.randn(4, 3))
        b = torch.nn.Parameter(torch.randn(4, 3))
        c = torch.nn.Parameter(torch.randn(6, 2))
        opt = RMSProp(0.01, momentum=0.9, parameters=[("a", a), ("b", b), ("c", c)], fused=fused)
        sparse = torch.sparse_coo_tensor(torch.tensor([[1, 4]]), torch.ones(2, 2), (6, 2))
        for step in range(3):
            if step == 2:  # resized in place of the old storage: the flat layout is stale
                with torch.no_grad():
                    b.data = torch.linspace(-1, 1, 30).reshape(5, 6)
                opt.state.pop(b, None)
            a.grad, b.grad, c.grad = torch.ones_like(a), torch.full_like(b, 0.5), sparse.clone()
            opt.step()
        results.append([t.detach().clone() for t in (a, b, c)])
    for x, y in zip(*results, strict=False):
        assert torch.equal(x, y)
