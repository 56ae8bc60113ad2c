"""FlatGroup: flat state with per-parameter views, a fused step equal to the reference,
gradient clearing as one memset, and checked re-binding."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings

from .fused_cases import cases, check_against_reference, extras, make_tensors
from torchfluid.kernels.flat import FlatGroup, GradFold, RMSPropHyper

pytest.importorskip("numba")  # CPU groups step with the numba kernel

HYPER = {"lr": 0.01, "rho": 0.9, "epsilon": 1e-6, "momentum": 0.9}


def step(group, **kw):
    """``group.step`` with the RMSPropHyper fields among ``kw`` passed as the record (the
    hyper-parameters as given, as the cases' references take them, unless ``kw`` says)."""
    kw.setdefault("float32_attrs", False)
    hyper = RMSPropHyper(**{k: kw.pop(k) for k in RMSPropHyper._fields if k in kw})
    group.step(hyper, **kw)


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _group_for(case, params, states):
    group = FlatGroup(params, centered=case["centered"], momentum=case["has_moment"])
    for i, s in enumerate(states):  # load the case's state through the views
        for k, v in s.items():
            group.state(i)[k].copy_(v)
    return group


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(max_tensors=4))
def test_flat_group_step_equals_reference(case):
    params, grads, states = make_tensors(case)
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    group = _group_for(case, params, states)
    views = [group.state(i) for i in range(len(params))]

    def fused(params_, grads_, states_):
        for i, s in enumerate(states_):  # the checker re-syncs through these tensors
            for k, v in s.items():
                views[i][k].copy_(v)
        step(group, **case["hyper"], **extras(case))
        for i, s in enumerate(states_):
            for k in s:
                s[k].copy_(views[i][k])

    check_against_reference(case, fused, (params, grads, states))


@CUDA
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(max_tensors=4))
def test_flat_group_on_cuda_equals_reference(case):
    pytest.importorskip("triton")
    params, grads, states = make_tensors(case, "cuda")
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    group = _group_for(case, params, states)
    views = [group.state(i) for i in range(len(params))]

    def fused(params_, grads_, states_):
        for i, s in enumerate(states_):
            for k, v in s.items():
                views[i][k].copy_(v)
        step(group, **case["hyper"], **extras(case))
        for i, s in enumerate(states_):
            for k in s:
                s[k].copy_(views[i][k])

    check_against_reference(case, fused, (params, grads, states))


@CUDA
def test_flat_group_on_cuda_tensor_grad_scale_and_memset():
    pytest.importorskip("triton")
    ps = [torch.nn.Parameter(torch.randn(s, device="cuda")) for s in [(3000,), (7, 5)]]
    for p in ps:
        p.grad = torch.ones_like(p)
    group = FlatGroup(ps, centered=False, momentum=False)
    scale = torch.tensor(0.5, device="cuda")
    before = [p.detach().clone() for p in ps]
    step(group, lr=0.1, rho=0.0, epsilon=0.0, fold=GradFold(grad_scale=scale))  # u = g/|g| = 1
    for p, b in zip(ps, before, strict=True):
        torch.testing.assert_close(p.detach(), b - 0.1)
    torch.testing.assert_close(group.state(0)["mean_square"], torch.full((3000,), 0.25, device="cuda"))
    group.zero_grads()
    assert not group.grad_buffer.any() and ps[1].grad.data_ptr() != 0


def _params(*shapes, dtype=torch.float32):
    gen = torch.Generator().manual_seed(1)
    return [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=dtype)) for s in shapes]


def test_views_share_the_flat_buffers_and_are_aligned():
    ps = _params((3, 5), (7,), (0,), ())
    group = FlatGroup(ps, centered=True, momentum=True)
    for i, p in enumerate(ps):
        st = group.state(i)
        assert set(st) == {"mean_square", "mean_grad", "momentum"}
        for name, v in st.items():
            assert v.shape == p.shape
            buf = getattr(group, name)
            assert v.untyped_storage().data_ptr() == buf.untyped_storage().data_ptr()
            assert (v.data_ptr() - buf.data_ptr()) % 64 == 0
    group.state(1)["momentum"].fill_(2.0)
    assert group.momentum[int(group.offsets[1]) : int(group.offsets[1]) + 7].eq(2.0).all()
    assert FlatGroup(ps, centered=False, momentum=False).state(0).keys() == {"mean_square"}


def test_zero_grads_is_one_memset_and_autograd_accumulates_in_place():
    lin = torch.nn.Linear(5, 3)
    ps = list(lin.parameters())
    group = FlatGroup(ps, centered=False, momentum=False)
    lin(torch.randn(2, 5)).sum().backward()  # fresh grads, not in the buffer
    group.zero_grads()  # now zeroed views of one buffer
    assert group.grad_buffer is not None and not group.grad_buffer.any()
    for p in ps:
        assert p.grad.untyped_storage().data_ptr() == group.grad_buffer.data_ptr()
    x = torch.randn(4, 5)
    lin(x).sum().backward()
    lin(x).sum().backward()
    for p in ps:  # autograd accumulated into the views
        assert p.grad.untyped_storage().data_ptr() == group.grad_buffer.data_ptr()
    assert group.grad_buffer.abs().sum() > 0
    lin.zero_grad(set_to_none=True)
    lin(x).sum().backward()  # torch made new grads: the step reads them in place
    assert ps[0].grad.untyped_storage().data_ptr() != group.grad_buffer.data_ptr()
    step(group, **dict(HYPER, momentum=0.0))
    ps[1].grad = None
    group.zero_grads()  # re-attaches the replaced ones, then one memset
    assert ps[0].grad.untyped_storage().data_ptr() == group.grad_buffer.data_ptr()
    assert ps[1].grad is None  # no gradient stays no gradient
    assert not group.grad_buffer.any()
    group.zero_grads(set_to_none=True)
    assert all(p.grad is None for p in ps) and group.grad_buffer is None


def test_step_rebinds_swapped_storage_and_rejects_what_would_be_unsafe():
    ps = _params((4,), (3,))
    for p in ps:
        p.grad = torch.ones_like(p)
    group = FlatGroup(ps, centered=False, momentum=True)
    step(group, **HYPER)
    ps[0].data = ps[0].data.clone()  # new storage, same size: re-bound and used
    ps[0].grad = torch.ones(4)
    before = ps[0].detach().clone()
    step(group, **HYPER)
    assert not ps[0].detach().equal(before)
    ps[1].data = torch.zeros(5)
    with pytest.raises(
        ValueError,
        match=r"params\[1\]: 5 elements, the group was built "
        r"for 3; allowed: 3 \(rebuild the group\)",
    ):
        step(group, **HYPER)
    ps[1].data = torch.zeros(3, dtype=torch.float64)
    ps[1].grad = None
    with pytest.raises(
        ValueError,
        match=r"params\[1\]: torch.float64 on cpu, the group "
        r"holds torch.float32 on cpu",
    ):
        step(group, **HYPER)


BAD_HYPER = [
    ({"rho": 1.5}, "rho: 1.5; allowed: 0 <= rho <= 1"),
    ({"epsilon": -1.0}, "epsilon: -1.0; allowed: epsilon >= 0"),
    ({"momentum": -0.1}, "momentum: -0.1; allowed: momentum >= 0"),
    ({"rho": "x"}, "rho: 'x' is not a real number"),
    ({"decoupled_weight_decay": 0.1}, "decoupled_weight_decay: 0.1; allowed: 0"),
    ({"bias_correction_step": 3}, "bias_correction_step: 3; allowed: 0"),
    ({"fold": GradFold(clip_min=[0.0, 0.0])}, "clip_min: shape (2,); allowed: a float or 1 floats"),
]


@pytest.mark.parametrize("bad,message", BAD_HYPER)
def test_bad_hyper_parameters_name_argument_value_and_range(bad, message):
    group = FlatGroup(_params((2,)), centered=False, momentum=True)
    with pytest.raises(ValueError) as err:
        step(group, **dict(HYPER, **bad))
    assert message in str(err.value)


def test_folded_terms_come_as_one_record_and_bad_ones_change_nothing():
    (p,) = ps = _params((2,))
    p.grad = torch.ones_like(p)
    group, before = FlatGroup(ps, centered=False, momentum=True), p.detach().clone()
    with pytest.raises(TypeError, match="fold: dict; allowed: a GradFold"):
        step(group, **HYPER, fold={"l2": 0.1})
    with pytest.raises(ValueError, match=r"l1: shape \(3,\); allowed: a float or 1 floats"):
        step(group, **HYPER, fold=GradFold(l1=[0.1, 0.2, 0.3]))
    assert torch.equal(p.detach(), before) and not group.state(0)["mean_square"].any()


def test_momentum_without_velocity_buffer_is_refused():
    group = FlatGroup(_params((2,)), centered=False, momentum=False)
    with pytest.raises(ValueError, match="momentum: 0.9 needs a velocity buffer"):
        step(group, **HYPER)


def test_one_group_holds_one_device_and_dtype():
    ps = _params((2,), (3,)) + _params((4,), dtype=torch.float64) + _params((1,))
    with pytest.raises(
        ValueError,
        match=r"params\[1\]: torch.float64 on cpu, the group "
        r"holds torch.float32",
    ):
        FlatGroup([ps[0], ps[2]], centered=False, momentum=False)


def test_empty_group_is_a_no_op():
    group = FlatGroup([], centered=True, momentum=True)
    step(group, **HYPER)
    group.zero_grads()
    assert group.grad_buffer.numel() == 0


def test_changed_per_tensor_hyper_parameters_and_flags_take_effect_next_step():
    """The group reuses last step's tables and prepared call only while nothing changed."""
    from torchfluid.kernels.rmsprop import rmsprop_

    ps = _params((5,), (3,))
    ref = [p.detach().clone() for p in ps]
    ref_state = [{"ms": torch.zeros_like(p), "mom": torch.zeros_like(p)} for p in ps]
    group = FlatGroup(ps, centered=False, momentum=True)
    steps = [
        {"lr": [0.1, 0.2], "l2": 0.0, "nesterov": False},
        {"lr": [0.1, 0.2], "l2": 0.0, "nesterov": False},
        {"lr": [0.3, 0.2], "l2": 0.0, "nesterov": False},
        {"lr": [0.3, 0.2], "l2": [0.0, 0.5], "nesterov": False},
        {"lr": [0.3, 0.2], "l2": [0.0, 0.5], "nesterov": True},
        {"lr": 0.05, "l2": 0.0, "nesterov": True},
    ]
    for k, hyper in enumerate(steps):
        grads = [torch.full_like(p, 0.5 + k) for p in ps]
        for p, g in zip(ps, grads, strict=True):
            p.grad = g
        step(
            group,
            rho=0.9,
            epsilon=1e-6,
            momentum=0.9,
            lr=hyper["lr"],
            nesterov=hyper["nesterov"],
            fold=GradFold(l2=hyper["l2"]),
        )
        lrs = hyper["lr"] if isinstance(hyper["lr"], list) else [hyper["lr"]] * 2
        l2s = hyper["l2"] if isinstance(hyper["l2"], list) else [hyper["l2"]] * 2
        for i, (r, g) in enumerate(zip(ref, grads, strict=True)):
            rmsprop_(
                r,
                g + l2s[i] * r if l2s[i] else g,
                ref_state[i]["ms"],
                None,
                ref_state[i]["mom"],
                lr=lrs[i],
                rho=0.9,
                epsilon=1e-6,
                momentum=0.9,
                nesterov=hyper["nesterov"],
            )
        for p, r in zip(ps, ref, strict=True):
            torch.testing.assert_close(p.detach(), r, rtol=1e-6, atol=1e-7, msg=f"step {k}")
