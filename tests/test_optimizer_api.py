"""The optimizer API: bad inputs (table with expected error text), parameter forms,
state_dict round trips, minimize/backward/apply_gradients, regularization override,
need_clip, lr multipliers, set_lr / current_step_lr, sparse gradients."""

import math

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid.clip import ClipGradByGlobalNorm, ClipGradByNorm, ClipGradByValue
from torchfluid.optimizer import RMSProp
from torchfluid.regularizer import L1Decay, L2Decay


def params(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(3, 4, generator=g)) for _ in range(n)]


BAD_CONSTRUCTOR = [
    ({"learning_rate": None}, ValueError, "learning_rate must be >= 0, got None"),
    ({"learning_rate": -0.1}, ValueError, "learning_rate must be >= 0, got -0.1"),
    ({"learning_rate": float("nan")}, ValueError, "learning_rate must be >= 0, got nan"),
    ({"learning_rate": "0.1"}, ValueError, "learning_rate must be a real number >= 0, got '0.1'"),
    ({"learning_rate": 0.1, "rho": None}, ValueError, "rho must be in [0, 1), got None"),
    ({"learning_rate": 0.1, "rho": 1.5}, ValueError, "rho must be in [0, 1), got 1.5"),
    ({"learning_rate": 0.1, "rho": 1.0}, ValueError, "rho must be in [0, 1), got 1.0"),
    ({"learning_rate": 0.1, "rho": -0.1}, ValueError, "rho must be in [0, 1), got -0.1"),
    ({"learning_rate": 0.1, "epsilon": None}, ValueError, "epsilon must be >= 0, got None"),
    ({"learning_rate": 0.1, "epsilon": -1e-6}, ValueError, "epsilon must be >= 0, got -1e-06"),
    ({"learning_rate": 0.1, "momentum": None}, ValueError, "momentum must be >= 0, got None"),
    ({"learning_rate": 0.1, "momentum": -0.9}, ValueError, "momentum must be >= 0, got -0.9"),
    ({"learning_rate": 0.1, "centered": 1}, ValueError, "centered must be True or False, got 1"),
    ({"learning_rate": 0.1, "regularization": "l2"}, ValueError, "unknown regularizer type"),
    ({"learning_rate": 0.1, "weight_decay": -0.1}, ValueError, "weight_decay must be >= 0, got -0.1"),
    (
        {"learning_rate": 0.1, "regularization": L2Decay(0.1), "weight_decay": 0.1},
        ValueError,
        "pass only one of regularization and weight_decay",
    ),
    ({"learning_rate": 0.1, "grad_clip": 1.0}, TypeError, "grad_clip must be None or a ClipGradByValue"),
    ({"learning_rate": 0.1, "name": 3}, ValueError, "name must be None or a str, got 3"),
]


@pytest.mark.parametrize("kwargs,exc,text", BAD_CONSTRUCTOR, ids=[str(c[0]) for c in BAD_CONSTRUCTOR])
def test_bad_constructor_arguments(kwargs, exc, text):
    with pytest.raises(exc) as info:
        RMSProp(parameters=params(), **kwargs)
    assert text in str(info.value)


BAD_OTHER = [
    (lambda: ClipGradByNorm(0.0), "clip_norm must be > 0, got 0.0"),
    (lambda: ClipGradByNorm(-1), "clip_norm must be > 0, got -1"),
    (lambda: ClipGradByGlobalNorm(None), "clip_norm must be > 0, got None"),
    (lambda: ClipGradByValue(max=-1.0), "max must be > 0, got -1.0"),
    (lambda: ClipGradByValue(max=1.0, min=2.0), "min must be <= max, got min=2 and max=1"),
    (lambda: L2Decay(-1.0), "coeff must be >= 0, got -1.0"),
    (lambda: L1Decay("a"), "coeff must be a real number >= 0, got 'a'"),
]


@pytest.mark.parametrize("make,text", BAD_OTHER, ids=[c[1] for c in BAD_OTHER])
def test_bad_clip_and_regularizer_arguments(make, text):
    with pytest.raises(ValueError) as info:
        make()
    assert text in str(info.value)


def test_parameter_list_forms_and_rejections():
    a, b = params()
    assert RMSProp(0.1, parameter_list=[a, b]).param_groups[0]["param_names"] == ["param_0", "param_1"]
    assert RMSProp(0.1, parameters=iter([a, b])).param_groups[0]["params"] == [a, b]
    assert RMSProp(0.1, parameters={"x": a, "y": b}).param_groups[0]["param_names"] == ["x", "y"]
    model = torch.nn.Linear(3, 2)
    assert RMSProp(0.1, parameters=model.named_parameters()).param_groups[0]["param_names"] == ["weight", "bias"]
    a._fluid_name = "linear_0.w_0"
    assert RMSProp(0.1, parameters=[a, b]).param_groups[0]["param_names"] == ["linear_0.w_0", "param_1"]
    with pytest.raises(TypeError, match="got a set"):
        RMSProp(0.1, parameter_list={a, b})
    with pytest.raises(ValueError, match="appears twice"):
        RMSProp(0.1, parameter_list=[a, a])
    with pytest.raises(ValueError, match="pass only one of parameter_list and parameters"):
        RMSProp(0.1, parameter_list=[a], parameters=[b])
    with pytest.raises(ValueError, match="share the name 'x'"):
        RMSProp(0.1, parameters=[("x", a), ("x", b)])
    with pytest.raises(ValueError, match="floating-point"):
        RMSProp(0.1, parameters=[torch.zeros(3, dtype=torch.long)])
    opt = RMSProp(0.1, parameters=[a])
    with pytest.raises(ValueError, match="already in another parameter group"):
        opt.add_param_group({"params": [a]})


def test_is_a_torch_optimizer_and_param_groups_drive_lr():
    a, b = params()
    opt = RMSProp(0.1, parameters=[{"params": [a]}, {"params": [b], "lr": 0.0}])
    assert isinstance(opt, torch.optim.Optimizer)
    b0 = b.detach().clone()
    a0 = a.detach().clone()
    a.grad = torch.ones_like(a)
    b.grad = torch.ones_like(b)
    opt.step()
    assert torch.equal(b, b0) and not torch.equal(a, a0)
    opt.zero_grad()
    assert a.grad is None


def test_paddle_group_learning_rate_is_a_multiplier_and_param_attr_multiplies():
    a, b, c = params(3)
    c.optimize_attr = {"learning_rate": 0.5}
    opt = fluid.optimizer.SGD(1.0, parameters=[{"params": [a], "learning_rate": 0.1}, {"params": [b, c]}])
    for p in (a, b, c):
        p.grad = torch.ones_like(p)
    before = [p.detach().clone() for p in (a, b, c)]
    opt.step()
    for p, p0, lr in zip((a, b, c), before, (0.1, 1.0, 0.5), strict=False):
        torch.testing.assert_close(p.detach(), p0 - lr)


def test_bad_gradients_raise_and_change_nothing():
    a, b = params()
    opt = RMSProp(0.1, momentum=0.9, parameters=[a, b])
    a.grad, b.grad = torch.ones_like(a), torch.ones_like(b)
    opt.step()
    snapshot = (
        {k: v.clone() for k, v in opt.state_dict().items() if torch.is_tensor(v)},
        a.detach().clone(),
        b.detach().clone(),
    )
    ga = torch.ones_like(a)
    with pytest.raises(
        ValueError, match=r"gradient of 'param_1' has shape \[5\], expected the parameter's shape \[3, 4\]"
    ):
        opt.apply_gradients([(a, ga), (b, torch.ones(5))])
    with pytest.raises(ValueError, match="must be floating point"):
        opt.apply_gradients([(a, ga), (b, torch.ones(3, 4, dtype=torch.long))])
    with pytest.raises(TypeError, match="must be a tensor, got list"):
        opt.apply_gradients([(a, ga), (b, [1.0])])
    with pytest.raises(ValueError, match="not managed by this optimizer"):
        opt.apply_gradients([(torch.nn.Parameter(torch.ones(2)), torch.ones(2))])
    sd = opt.state_dict()
    for k, v in snapshot[0].items():
        assert torch.equal(sd[k], v)
    assert torch.equal(a, snapshot[1]) and torch.equal(b, snapshot[2])


def test_minimize_backward_apply_gradients_and_return_values():
    a, b = params()
    opt = RMSProp(0.01, parameters=[("w", a), ("b", b)])
    loss = a.sum() * 2 + b.pow(2).sum()
    loss.backward()
    grads = (a.grad.clone(), b.grad.clone())
    pg = opt.backward(loss)
    assert [(p is a, g is a.grad) for p, g in pg][0] == (True, True)
    ops, params_grads = opt.minimize(loss)
    assert ops == [] and [p for p, _ in params_grads] == [a, b]
    assert torch.equal(a.grad, grads[0])  # minimize never re-runs backward / never clips .grad in place
    ops, pg = opt.minimize(loss, no_grad_set={"w"})
    assert [p for p, _ in pg] == [b]
    ops, pg = opt.minimize(loss, parameter_list=[a])
    assert [p for p, _ in pg] == [a]


def test_param_without_grad_is_skipped_entirely():
    a, b = params()
    opt = RMSProp(0.01, momentum=0.9, parameters=[a, b])
    a.grad = torch.ones_like(a)
    b0 = b.detach().clone()
    opt.step()
    assert torch.equal(b, b0)
    assert set(opt.state_dict()) == {"param_0_mean_square_0", "param_0_momentum_0"}


def test_param_regularizer_overrides_the_optimizers_for_that_param_only():
    a, b = params()
    a.regularizer = L1Decay(0.5)
    opt = fluid.optimizer.SGD(1.0, parameters=[a, b], regularization=L2Decay(0.25))
    a0, b0 = a.detach().clone(), b.detach().clone()
    a.grad, b.grad = torch.zeros_like(a), torch.zeros_like(b)
    opt.step()
    torch.testing.assert_close(a.detach(), a0 - 0.5 * torch.sign(a0))
    torch.testing.assert_close(b.detach(), b0 - 0.25 * b0)


def test_clip_happens_before_regularization_and_need_clip_false_is_excluded():
    a, b = params()
    b.need_clip = False
    opt = fluid.optimizer.SGD(1.0, parameters=[a, b], weight_decay=0.1, grad_clip=ClipGradByGlobalNorm(1.0))
    a0, b0 = a.detach().clone(), b.detach().clone()
    ga, gb = torch.full_like(a, 3.0), torch.full_like(b, 100.0)
    a.grad, b.grad = ga.clone(), gb.clone()
    opt.step()
    norm = math.sqrt(12 * 9.0)  # only a counts
    torch.testing.assert_close(a.detach(), a0 - (ga / norm + 0.1 * a0))
    torch.testing.assert_close(b.detach(), b0 - (gb + 0.1 * b0))
    assert opt.grad_clip.last_global_norm.item() == pytest.approx(norm)


def test_clear_gradients_zeroes_and_clear_grad_false_drops():
    a, b = params()
    opt = RMSProp(0.1, parameters=[a, b])
    (a.sum() + b.sum()).backward()
    opt.clear_gradients()
    assert torch.count_nonzero(a.grad) == 0 and torch.count_nonzero(b.grad) == 0
    opt.clear_grad(set_to_zero=False)
    assert a.grad is None


def test_set_lr_and_current_step_lr():
    (a,) = params(1)
    opt = RMSProp(0.001, parameter_list=[a])  # fluid spelling: set_lr also takes a 1-element tensor
    assert opt.current_step_lr() == 0.001
    seen = []
    for lr in [0.2, 0.3, 0.4, 0.5, 0.6]:
        opt.set_lr(lr)
        seen.append(opt.current_step_lr())
    assert seen == [0.2, 0.3, 0.4, 0.5, 0.6]
    opt.set_lr(torch.tensor([0.7]))
    assert opt.current_step_lr() == pytest.approx(0.7)
    with pytest.raises(ValueError, match="1-element"):
        opt.set_lr(torch.ones(2))
    with pytest.raises(TypeError, match="float or a 1-element tensor, got str"):
        opt.set_lr("0.1")
    with pytest.raises(ValueError, match="learning_rate must be >= 0, got -1"):
        opt.set_lr(-1)
    v2 = RMSProp(0.001, parameters=[a])  # Paddle 2.x spelling: numbers only
    v2.set_lr(0.5)
    assert v2.current_step_lr() == 0.5
    with pytest.raises(TypeError, match="Paddle 2.x optimizers take no tensor"):
        v2.set_lr(torch.tensor([0.7]))


def test_state_dict_round_trip_paddle_keys_and_name_prefix():
    a, b = params()
    opt = RMSProp(0.01, momentum=0.9, centered=True, parameters=[("fc_0.w_0", a), ("fc_0.b_0", b)], name="opt")
    for _ in range(3):
        a.grad, b.grad = torch.randn_like(a), torch.randn_like(b)
        opt.step()
    sd = opt.state_dict()
    assert {k for k in sd if k != "param_groups"} == {
        f"opt_fc_0.{p}_0_{acc}_0" for p in "wb" for acc in ("mean_square", "mean_grad", "momentum")
    }
    c, d = (torch.nn.Parameter(a.detach().clone()), torch.nn.Parameter(b.detach().clone()))
    opt2 = RMSProp(0.01, momentum=0.9, centered=True, parameters=[("fc_0.w_0", c), ("fc_0.b_0", d)], name="opt")
    opt2.set_state_dict(sd)
    for _ in range(3):
        g1, g2 = torch.randn_like(a), torch.randn_like(b)
        a.grad, b.grad, c.grad, d.grad = g1, g2, g1.clone(), g2.clone()
        opt.step()
        opt2.step()
    assert torch.equal(a, c) and torch.equal(b, d)


def test_state_is_matched_by_name_not_position():
    a, b = params()
    opt = RMSProp(0.01, parameters=[("w", a), ("b", b)])
    a.grad, b.grad = torch.ones_like(a), torch.full_like(b, 2.0)
    opt.step()
    sd = opt.state_dict()
    assert "param_groups" not in sd  # hyper-parameters unchanged: accumulators only
    c, d = params()
    opt2 = RMSProp(0.01, parameters=[("b", d), ("w", c)])  # other order
    opt2.set_state_dict(sd)
    assert torch.equal(opt2.state[c]["mean_square"], opt.state[a]["mean_square"])
    assert torch.equal(opt2.state[d]["mean_square"], opt.state[b]["mean_square"])


def test_set_state_dict_validates_everything_before_changing_anything():
    a, b = params()
    opt = RMSProp(0.01, momentum=0.9, parameters=[("w", a), ("b", b)])
    a.grad, b.grad = torch.ones_like(a), torch.ones_like(b)
    opt.step()
    good = {k: v.clone() for k, v in opt.state_dict().items() if torch.is_tensor(v)}
    bad = dict(good)
    bad["w_mean_square_0"] = torch.zeros(2, 2)
    bad["w_momentum_0"] = good["w_momentum_0"].double()
    bad["zzz_mean_square_0"] = torch.zeros(3)
    del bad["b_momentum_0"]
    with pytest.raises(ValueError) as info:
        opt.set_state_dict(bad)
    msg = str(info.value)
    assert "missing (1): b_momentum_0" in msg
    assert "unexpected (1): zzz_mean_square_0" in msg
    assert "w_mean_square_0: expected shape [3, 4] float32, got shape [2, 2] float32" in msg
    assert "w_momentum_0: expected shape [3, 4] float32, got shape [3, 4] float64" in msg
    for k, v in good.items():
        assert torch.equal(opt.state_dict()[k], v)
    report = opt.set_state_dict(bad, strict=False)
    assert not report.ok and report.missing == ["b_momentum_0"]
    assert "w_mean_square_0" not in opt.state_dict()  # partial/mismatched params start fresh
    with pytest.raises(TypeError, match="state_dict must be a dict"):
        opt.set_state_dict([1, 2])


def test_paddle_state_dict_with_all_three_accumulators_is_accepted():
    (a,) = params(1)
    opt = RMSProp(0.01, parameters=[("w", a)])
    sd = {
        "w_mean_square_0": np.ones((3, 4), np.float32),
        "w_mean_grad_0": np.zeros((3, 4), np.float32),
        "w_momentum_0": np.full((3, 4), 0.3, np.float32),
    }
    assert opt.set_state_dict(sd).ok
    assert set(opt.state[a]) == {"mean_square"}


def test_state_loaded_before_params_known_is_applied_at_creation():
    opt = RMSProp(0.01)
    opt.set_state_dict({"w_mean_square_0": torch.full((3, 4), 2.0)})
    (a,) = params(1)
    opt.add_param_group({"params": [("w", a)]})
    a.grad = torch.zeros_like(a)
    opt.step()
    torch.testing.assert_close(opt.state[a]["mean_square"], torch.full((3, 4), 2.0 * 0.95))


def test_key_map_renames_parameters():
    (a,) = params(1)
    opt = RMSProp(0.01, parameters=[("new.w", a)])
    rep = opt.set_state_dict({"old.w_mean_square_0": torch.ones(3, 4)}, key_map={"old.w": "new.w"})
    assert rep.ok and torch.equal(opt.state[a]["mean_square"], torch.ones(3, 4))


def test_group_hyperparameters_round_trip_through_state_dict():
    (a,) = params(1)
    opt = RMSProp(0.01, parameters=[a])
    assert opt.state_dict() == {}  # as Paddle: nothing to save before any step or change
    opt.set_lr(0.5)
    sd = opt.state_dict()
    opt2 = RMSProp(0.01, parameters=[torch.nn.Parameter(a.detach().clone())])
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.5


@pytest.mark.parametrize("centered,momentum", [(False, 0.0), (True, 0.9)])
def test_sparse_gradient_paddle_exact_equals_dense_and_lazy_touches_only_present_rows(centered, momentum):
    torch.manual_seed(0)
    w = torch.randn(10, 4)
    rows = torch.tensor([1, 3, 3, 7])
    vals = torch.randn(4, 4)
    sparse = torch.sparse_coo_tensor(rows[None], vals, (10, 4))
    results = {}
    for mode in ("sparse", "dense", "lazy"):
        p = torch.nn.Parameter(w.clone())
        opt = RMSProp(0.1, momentum=momentum, centered=centered, parameters=[p], lazy_mode=(mode == "lazy"))
        for _ in range(3):
            p.grad = sparse.clone() if mode != "dense" else sparse.to_dense()
            opt.step()
        results[mode] = p.detach()
    assert torch.equal(results["sparse"], results["dense"])
    absent = [0, 2, 4, 5, 6, 8, 9]
    assert torch.equal(results["lazy"][absent], w[absent])
    # rows evolve independently, so the present rows agree exactly in both modes
    assert torch.equal(results["lazy"][[1, 3, 7]], results["dense"][[1, 3, 7]])


def test_state_of_another_optimizer_type_is_refused_with_one_error():
    a, b = params()
    adam = fluid.optimizer.Adam(0.01, parameters=[("w", a), ("b", b)])
    a.grad, b.grad = torch.ones_like(a), torch.ones_like(b)
    adam.step()
    c, d = params()
    rms = RMSProp(0.01, parameters=[("w", c), ("b", d)])
    c.grad, d.grad = torch.ones_like(c), torch.ones_like(d)
    rms.step()
    before = {k: v.clone() for k, v in rms.state_dict().items()}
    with pytest.raises(ValueError) as info:
        rms.set_state_dict(adam.state_dict())
    msg = str(info.value)
    assert "unexpected (8)" in msg and "w_moment1_0" in msg and "b_beta2_pow_acc_0" in msg
    assert all(torch.equal(rms.state_dict()[k], v) for k, v in before.items())


def test_group_weight_decay_is_the_groups_l2_decay_under_the_params_own_regularizer():
    """Paddle 2.x: a param group's ``weight_decay`` float is an ``L2Decay`` of that group
    (replacing the optimizer's regularization there); a parameter's own regularizer wins."""
    import torchfluid as fluid

    def run(groups_of, regularization):
        torch.manual_seed(0)
        ps = [torch.nn.Parameter(torch.randn(3, 2)) for _ in range(3)]
        ps[2].regularizer = fluid.regularizer.L1Decay(0.05)
        opt = RMSProp(0.01, parameters=groups_of(ps), weight_decay=regularization)
        gen = torch.Generator().manual_seed(1)
        for _ in range(4):
            for p in ps:
                p.grad = torch.randn(3, 2, generator=gen)
            opt.step()
        return [p.detach().clone() for p in ps]

    grouped = run(lambda ps: [{"params": [ps[0], ps[2]], "weight_decay": 0.2}, {"params": [ps[1]]}], 0.01)

    def by_param(ps):
        ps[0].regularizer = fluid.regularizer.L2Decay(0.2)
        return ps

    per_param = run(by_param, 0.01)
    for a, b in zip(grouped, per_param, strict=True):
        assert torch.equal(a, b)
    plain = run(lambda ps: ps, 0.01)
    assert not torch.equal(grouped[0], plain[0])  # the group's decay replaced the optimizer's
    assert torch.equal(grouped[1], plain[1]) and torch.equal(grouped[2], plain[2])


# a clip called directly on malformed pairs: a TypeError that says what was given, for all three clips
_P = torch.nn.Parameter(torch.ones(2))
_BAD_PAIRS = [
    (None, "params_grads must be a list of \\(param, grad\\) pairs, got NoneType"),
    ("pg", "params_grads must be a list of \\(param, grad\\) pairs, got str"),
    ([1, 2], "item 0 must be a \\(param, grad\\) pair, got int"),
    ([(_P, torch.ones(2)), (_P,)], "item 1 must be a \\(param, grad\\) pair, got a tuple of 1"),
    ([(_P, torch.ones(2), 3)], "item 0 must be a \\(param, grad\\) pair, got a tuple of 3"),
    ([(_P, "g")], "the gradient of pair 0 must be a tensor, got str"),
    ([("a", "b")], "the gradient of pair 0 must be a tensor, got str"),
]


@pytest.mark.parametrize("clip", [ClipGradByValue(1.0), ClipGradByNorm(1.0), ClipGradByGlobalNorm(1.0)])
@pytest.mark.parametrize("pairs,match", _BAD_PAIRS)
def test_clip_called_on_malformed_pairs_names_what_it_got(clip, pairs, match):
    with pytest.raises(TypeError, match=match):
        clip(pairs)


def test_clip_called_on_pairs_drops_none_grads_and_takes_lists():
    g = torch.tensor([3.0, 4.0])
    out = ClipGradByGlobalNorm(1.0)([[_P, g], (_P, None)])
    assert len(out) == 1 and out[0][0] is _P
    torch.testing.assert_close(out[0][1], torch.tensor([0.6, 0.8]))
