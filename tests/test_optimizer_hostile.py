"""Optimizer inputs are checked before anything changes: sparse gradient indices,
gradients replaced behind torch's back, edited param_groups, non-strict state loads,
empty and complex parameter lists."""

import copy
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torchfluid.optimizer import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, Lamb, RMSProp


def _model(fused=None, **kw):
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(3, 4))
    emb = torch.nn.Parameter(torch.randn(10, 4))
    opt = RMSProp(0.1, momentum=0.9, centered=True, parameters=[("w", w), ("emb", emb)], fused=fused, **kw)
    w.grad, emb.grad = torch.ones(3, 4), torch.ones(10, 4)
    opt.step()  # state exists
    return opt, w, emb


def _snapshot(opt):
    return (
        copy.deepcopy(opt.state_dict()),
        [p.detach().clone() for g in opt.param_groups for p in g["params"]],
        copy.deepcopy([{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]),
    )


def _assert_unchanged(opt, before):
    sd, params, groups = _snapshot(opt)
    assert sd.keys() == before[0].keys()
    for k in sd:
        if isinstance(sd[k], torch.Tensor):
            assert torch.equal(sd[k], before[0][k]), k
    assert all(torch.equal(a, b) for a, b in zip(params, before[1], strict=True))
    assert groups == before[2]


def _sparse(rows, n=10):
    rows = torch.tensor(rows)
    return torch.sparse_coo_tensor(rows[None], torch.ones(len(rows), 4), (n, 4), check_invariants=False)


@pytest.mark.parametrize("rows,bad,dim", [([1, 10], 10, 0), ([-1, 2], -1, 0), ([3, 99999], 99999, 0)])
@pytest.mark.parametrize("options", [{}, {"lazy_mode": True}, {"fused": False}, {"fused": False, "nonfinite": "raise"}])
def test_sparse_indices_out_of_range_raise_before_any_update(rows, bad, dim, options):
    opt, w, emb = _model(**options)
    w.grad, emb.grad = torch.ones(3, 4), _sparse(rows)
    before = _snapshot(opt)
    with pytest.raises(
        ValueError,
        match=rf"sparse gradient of 'emb' has index {bad} in dimension {dim}, outside "
        r"\[0, 10\) of the parameter's shape \[10, 4\]; nothing was updated",
    ):
        opt.step()
    _assert_unchanged(opt, before)
    with pytest.raises(ValueError, match=f"has index {bad}"):
        opt.apply_gradients([(w, torch.ones(3, 4)), (emb, _sparse(rows))])
    _assert_unchanged(opt, before)


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize(
    "bad,match",
    [
        (
            torch.ones(12),
            r"gradient of 'w' has shape \[12\], expected the parameter's shape \[3, 4\]; nothing was updated",
        ),
        (torch.ones(1, 4), r"gradient of 'w' has shape \[1, 4\], expected the parameter's shape \[3, 4\]"),
        (
            torch.ones(3, 4, dtype=torch.int32),
            r"gradient of 'w' has dtype torch.int32, expected the parameter's dtype "
            r"torch.float32; nothing was updated",
        ),
        (torch.ones(3, 4, dtype=torch.float64), r"gradient of 'w' has dtype torch.float64"),
    ],
)
def test_grad_replaced_behind_torchs_back_is_refused(fused, bad, match):
    opt, w, emb = _model(fused=fused)
    w.grad, emb.grad = torch.ones(3, 4), torch.ones(10, 4)
    w.grad.data = bad
    before = _snapshot(opt)
    with pytest.raises(ValueError, match=match):
        opt.step()
    _assert_unchanged(opt, before)


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize(
    "key,value,match",
    [
        ("rho", 1.5, r"param_groups\[0\]: rho must be in \[0, 1\), got 1.5"),
        ("epsilon", -1.0, r"param_groups\[0\]: epsilon must be >= 0, got -1.0"),
        ("momentum", -1.0, r"param_groups\[0\]: momentum must be >= 0, got -1.0"),
        ("lr", float("nan"), r"param_groups\[0\]: lr must be >= 0, got nan"),
    ],
)
def test_edited_param_groups_are_checked_at_step(fused, key, value, match):
    opt, w, emb = _model(fused=fused)
    good = opt.param_groups[0][key]
    opt.param_groups[0][key] = value
    w.grad, emb.grad = torch.ones(3, 4), torch.ones(10, 4)
    before = _snapshot(opt)
    with pytest.raises(ValueError, match=match):
        opt.step()
    _assert_unchanged(opt, before)
    opt.param_groups[0][key] = good
    opt.step()


def test_adam_groups_are_checked_too():
    w = torch.nn.Parameter(torch.ones(2))
    opt = Adam(0.1, parameters=[w])
    opt.param_groups[0]["beta1"] = 1.0
    w.grad = torch.ones(2)
    with pytest.raises(ValueError, match=r"param_groups\[0\]: beta1 must be in \[0, 1\), got 1.0"):
        opt.step()
    assert torch.equal(w, torch.ones(2))


def test_non_strict_load_reports_every_dropped_entry():
    opt, w, emb = _model()
    sd = opt.state_dict()
    fresh, _, emb2 = _model()
    sd = dict(sd, w_mean_grad_0=torch.zeros(2, 2))
    report = fresh.set_state_dict(sd, strict=False)
    assert report.mismatched == ["w_mean_grad_0: expected shape [3, 4] float32, got shape [2, 2] float32"]
    assert sorted(report.dropped) == [
        "w_mean_square_0 (the state of 'w' is incomplete)",
        "w_momentum_0 (the state of 'w' is incomplete)",
    ]
    assert "dropped (2)" in report.message()
    assert list(fresh.state) == [emb2]  # emb loaded, w starts fresh
    assert torch.equal(fresh.state[emb2]["mean_square"], opt.state[emb]["mean_square"])
    before = _snapshot(fresh)
    with pytest.raises(ValueError, match="nothing was loaded"):
        fresh.set_state_dict(sd)  # strict: all or nothing
    _assert_unchanged(fresh, before)


@pytest.mark.parametrize(
    "value,match",
    [
        (lambda t: t.to_sparse(), "emb_mean_square_0: expected a dense tensor, got layout sparse_coo"),
        (
            lambda t: t.to(torch.int64),
            r"emb_mean_square_0: expected shape \[10, 4\] float32, got shape \[10, 4\] int64",
        ),
        (lambda t: "x", "emb_mean_square_0: expected a tensor or numpy array, got str"),
    ],
)
def test_non_strict_load_rejects_sparse_and_non_float_accumulators(value, match):
    opt, w, emb = _model()
    sd = opt.state_dict()
    sd["emb_mean_square_0"] = value(sd["emb_mean_square_0"])
    fresh, w2, emb2 = _model()
    report = fresh.set_state_dict(sd, strict=False)
    assert re.fullmatch(match, report.mismatched[0]), report.mismatched
    assert emb2 not in fresh.state and w2 in fresh.state
    w2.grad, emb2.grad = torch.ones(3, 4), torch.ones(10, 4)
    fresh.step()  # the next step works
    assert torch.isfinite(emb2).all()


def test_a_failing_copy_leaves_param_groups_and_state_unchanged():
    opt, w, emb = _model()
    opt.set_lr(0.05)
    sd = opt.state_dict()
    assert "param_groups" in sd
    sd["w_mean_square_0"] = torch.empty(3, 4, device="meta")  # passes the checks, cannot be copied
    fresh, _, _ = _model()
    before = _snapshot(fresh)
    with pytest.raises(NotImplementedError):
        fresh.set_state_dict(sd, strict=False)
    _assert_unchanged(fresh, before)


# param-group dicts with no parameters are accepted, as torch accepts them (see
# test_torch_ecosystem.py::test_empty_param_groups_are_kept_in_place_as_torch_keeps_them)
@pytest.mark.parametrize("params", [[], (), iter([])])
def test_an_empty_parameter_list_raises(params):
    with pytest.raises(ValueError, match="RMSPropOptimizer got an empty parameter list: there is nothing to optimize"):
        RMSProp(0.1, parameters=params)
    RMSProp(0.1)  # static mode: the program's parameters are found by minimize()


def test_complex_parameters_are_refused_clearly_where_the_rule_has_no_complex_update():
    with pytest.raises(
        ValueError,
        match=r"parameter 0 has complex dtype torch.complex64: LambOptimizer updates "
        r"real floating-point parameters only",
    ):
        Lamb(0.1, parameters=[torch.nn.Parameter(torch.ones(2, dtype=torch.complex64))])


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (lambda ps: SGD(0.1, parameters=ps), lambda ps: torch.optim.SGD(ps, lr=0.1)),
        (
            lambda ps: RMSProp(
                0.01, rho=0.99, epsilon=1e-8, momentum=0.9, centered=True, eps_in_sqrt=False, parameters=ps
            ),
            lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.99, eps=1e-8, momentum=0.9, centered=True),
        ),
        (lambda ps: Adam(0.01, parameters=ps), lambda ps: torch.optim.Adam(ps, lr=0.01)),
        (
            lambda ps: AdamW(0.01, parameters=ps, weight_decay=0.125, amsgrad=True),
            lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.125, amsgrad=True),
        ),
        (
            lambda ps: SGD(0.1, parameters=ps, momentum=0.75, dampening=0.25),
            lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.75, dampening=0.25),
        ),
        (
            lambda ps: SGD(0.1, parameters=ps, momentum=0.75, nesterov=True, weight_decay=0.125),
            lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.75, nesterov=True, weight_decay=0.125),
        ),
        (
            lambda ps: Adagrad(0.1, parameters=ps, epsilon=1e-10, initial_accumulator_value=0.5, lr_decay=0.25),
            lambda ps: torch.optim.Adagrad(ps, lr=0.1, eps=1e-10, initial_accumulator_value=0.5, lr_decay=0.25),
        ),
        (lambda ps: Adamax(0.01, parameters=ps), lambda ps: torch.optim.Adamax(ps, lr=0.01)),
    ],
    ids=[
        "SGD",
        "RMSProp-torch-conventions",
        "Adam",
        "AdamW-amsgrad",
        "SGD-dampening",
        "SGD-nesterov",
        "Adagrad",
        "Adamax",
    ],
)
def test_complex_parameters_are_updated_correctly_and_never_nan(ours, theirs):
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(4, 3, dtype=torch.complex64))
    b = torch.nn.Parameter(a.detach().clone())
    opt_a, opt_b = ours([a]), theirs([b])
    for _ in range(5):
        g = torch.randn(4, 3, dtype=torch.complex64)
        a.grad, b.grad = g.clone(), g.clone()
        opt_a.step()
        opt_b.step()
    assert torch.isfinite(torch.view_as_real(a)).all()
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


ACCS = ["mean_square", "mean_grad", "momentum", "moment1", "bogus"]
VALUES = st.one_of(
    st.builds(
        lambda shape, dt: torch.zeros(shape, dtype=dt),
        st.sampled_from([(3, 4), (10, 4), (4, 3), (2,), ()]),
        st.sampled_from([torch.float32, torch.float64, torch.int64, torch.float16, torch.bool]),
    ),
    st.builds(lambda shape: torch.zeros(shape).to_sparse(), st.sampled_from([(3, 4), (10, 4)])),
    st.builds(lambda shape: torch.full(shape, float("nan")), st.sampled_from([(3, 4), (10, 4)])),
    st.sampled_from([None, 1, "s", [1, 2]]),
)
STATE_DICTS = st.dictionaries(
    st.tuples(st.sampled_from(["w", "emb", "x"]), st.sampled_from(ACCS)).map(lambda t: f"{t[0]}_{t[1]}_0"),
    VALUES,
    max_size=8,
)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(STATE_DICTS, st.booleans(), st.booleans())
def test_fuzzed_state_dicts_load_cleanly_or_change_nothing(sd, strict, with_groups):
    opt, w, emb = _model()
    if with_groups:
        sd = dict(sd, param_groups=[{"rho": 1.5, "param_names": ["w", "emb"]}])
    before = _snapshot(opt)
    try:
        opt.set_state_dict(sd, strict=strict)
    except (ValueError, TypeError):
        _assert_unchanged(opt, before)
        return
    for p in (w, emb):
        for t in opt.state.get(p, {}).values():
            assert t.layout is torch.strided and t.dtype == torch.float32 and t.shape == p.shape
    w.grad, emb.grad = torch.ones(3, 4), torch.ones(10, 4)
    opt.step()


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: Adam(0.01, parameters=ps),
        lambda ps: AdamW(0.01, parameters=ps),
        lambda ps: Adamax(0.01, parameters=ps),
        lambda ps: Adadelta(0.5, parameters=ps),
        lambda ps: Adagrad(0.1, parameters=ps, initial_accumulator_value=0.5, lr_decay=0.25),
        lambda ps: SGD(0.1, parameters=ps, momentum=0.5, dampening=0.5),
    ],
    ids=["Adam", "AdamW", "Adamax", "Adadelta", "Adagrad", "SGD-momentum"],
)
def test_a_complex_parameter_moves_as_its_real_view(make):
    """torch's convention, bit for bit: the complex run equals the run on the real view's
    two coordinates (the state keys hold complex moments and real beta powers)."""
    torch.manual_seed(1)
    c = torch.nn.Parameter(torch.randn(5, 2, dtype=torch.complex64))
    r = torch.nn.Parameter(torch.view_as_real(c.detach()).clone())
    opt_c, opt_r = make([c]), make([r])
    for _ in range(4):
        g = torch.randn(5, 2, dtype=torch.complex64)
        c.grad, r.grad = g.clone(), torch.view_as_real(g).clone()
        opt_c.step()
        opt_r.step()
    assert torch.equal(torch.view_as_real(c.detach()), r.detach())
    for (key, t_c), (key_r, t_r) in zip(opt_c.state_dict().items(), opt_r.state_dict().items(), strict=True):
        assert key == key_r
        if t_c.is_complex():  # param-shaped records are complex, scalar ones (beta powers, step) real
            assert t_c.dtype == torch.complex64 and torch.equal(torch.view_as_real(t_c), t_r)
        else:
            assert t_c.dtype == t_r.dtype == torch.float32 and torch.equal(t_c, t_r)
