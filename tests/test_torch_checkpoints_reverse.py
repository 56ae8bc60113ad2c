"""torchfluid's torch-layout state dicts load into the torch.optim namesakes, and torch's run
goes on from them: torch's entry names (``exp_avg``, ``sum``, ``square_avg``, ...), a
per-parameter ``step`` (from Adam's beta powers), and every group key torch's ``step`` reads.
The reference is torch itself: the same gradients fed to a torch.optim run from the start."""

import copy

import pytest
import torch

import torchfluid.optim as O
import torchfluid.optimizer as F
from torchfluid.regularizer import L1Decay, L2Decay

# (torch class, torch's call, our class, our call): the same maths where both take these
# options (Adam's eps sits elsewhere in Paddle's formula: its moments agree, not its params)
CASES = [
    (torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.99)}, O.Adam, {"lr": 0.01, "betas": (0.8, 0.99)}),
    (torch.optim.Adam, {"lr": 0.01, "amsgrad": True}, O.Adam, {"lr": 0.01, "amsgrad": True}),
    (torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}, O.AdamW, {"lr": 0.01, "weight_decay": 0.1}),
    (torch.optim.Adamax, {"lr": 0.02, "betas": (0.85, 0.99)}, O.Adamax, {"lr": 0.02, "betas": (0.85, 0.99)}),
    (torch.optim.Adadelta, {"lr": 1.0, "rho": 0.8, "eps": 1e-5}, O.Adadelta, {"lr": 1.0, "rho": 0.8, "eps": 1e-5}),
    (torch.optim.Adagrad, {"lr": 0.1, "eps": 1e-6}, O.Adagrad, {"lr": 0.1, "eps": 1e-6}),
    (
        torch.optim.Adagrad,
        {"lr": 0.1, "lr_decay": 0.01, "eps": 1e-6},
        O.Adagrad,
        {"lr": 0.1, "lr_decay": 0.01, "eps": 1e-6},
    ),
    (
        torch.optim.SGD,
        {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        O.SGD,
        {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    ),
    (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}, O.Momentum, {"lr": 0.1, "momentum": 0.9}),
    (torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.9, "centered": True}, O.RMSProp, {"lr": 0.01, "alpha": 0.9}),
]
# options each side takes under another name or not at all
CASES[8][3]["use_nesterov"] = True
CASES[9][3].update(centered=True, preset="torch")


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(4, 3, generator=g)), torch.nn.Parameter(torch.randn(3, generator=g))]


def _feed(params, opt, steps, seed=1):
    """``steps`` updates with gradients that depend only on ``seed`` and the step."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()


def _ours(cls, kwargs, params):
    kwargs = dict(kwargs)
    preset = kwargs.pop("preset", None)
    if preset is not None:
        return cls.preset(preset, params, **kwargs)
    return cls(params, **kwargs)


@pytest.mark.parametrize(
    "torch_cls,torch_kwargs,cls,kwargs",
    CASES,
    ids=[f"{c[2].__name__}{sorted(c[3])}->{c[0].__name__}" for c in CASES],
)
def test_torch_loads_our_state_dict_and_goes_on_as_from_its_own(torch_cls, torch_kwargs, cls, kwargs):
    ours = _params()
    opt = _ours(cls, kwargs, ours)
    _feed(ours, opt, 4)
    sd = copy.deepcopy(opt.state_dict())

    # torch's own run on the same gradients: the reference for the loaded state
    ref_params = _params()
    ref = torch_cls(ref_params, **torch_kwargs)
    _feed(ref_params, ref, 4)
    want = ref.state_dict()

    loaded_params = [torch.nn.Parameter(p.detach().clone()) for p in ref_params]
    theirs = torch_cls(loaded_params, **{**torch_kwargs, "lr": 123.0})  # the checkpoint's lr wins
    theirs.load_state_dict(sd)
    got = theirs.state_dict()
    for i, entry in want["state"].items():
        assert set(got["state"][i]) >= set(entry)  # every entry torch keeps (ours add their own records)
        for name, value in entry.items():
            if name == "step":  # torch's count; 0 where the maths here keeps none (torch's needs none either)
                counted = cls in (O.Adam, O.AdamW, O.Adamax) or kwargs.get("lr_decay")
                assert float(got["state"][i]["step"]) == (4.0 if counted else 0.0) and float(value) == 4.0
            else:
                torch.testing.assert_close(got["state"][i][name], value, rtol=1e-5, atol=1e-6)
    for key, value in want["param_groups"][0].items():
        if key != "params":
            assert got["param_groups"][0][key] == value, key

    # torch steps on from our state as from its own
    _feed(loaded_params, theirs, 3, seed=2)
    _feed(ref_params, ref, 3, seed=2)
    for a, b in zip(loaded_params, ref_params, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [O.Adam, O.Adamax, F.Adam])
@pytest.mark.parametrize("steps", [1, 7, 1200])  # past 1200 beta1 = 0.9's float32 power has underflowed
def test_the_step_count_comes_from_the_beta_powers(cls, steps):
    params = _params()
    opt = cls(params, lr=1e-3) if cls.__module__.startswith("torchfluid.optim.") else cls(1e-3, parameters=params)
    _feed(params, opt, steps)
    sd = opt.torch_state_dict()
    counts = [float(e["step"]) for e in sd["state"].values()]
    if cls is O.Adamax and steps == 1200:  # its one power has underflowed: the count is lost, but
        assert counts == [980.0] * 2  # not torch's bias correction, 1 - 0.9 ** step, 1.0 either way
        assert 1 - 0.9**980 == 1 - 0.9**1200 == 1.0
    else:  # Adam reads beta2 = 0.999's power when beta1's has underflowed
        assert counts == [float(steps)] * 2
    assert all(e["step"].dtype == torch.float32 and e["step"].dim() == 0 for e in sd["state"].values())


def test_our_own_dict_reloads_bit_for_bit_and_a_torch_run_from_it_reloads_from_its_step():
    params = _params()
    opt = O.Adam(params, lr=0.01)
    _feed(params, opt, 5)
    sd = copy.deepcopy(opt.state_dict())
    powers = [opt.state[p]["beta1_pow_acc"].clone() for p in params]

    again = O.Adam([torch.nn.Parameter(p.detach().clone()) for p in params], lr=0.01)
    again.load_state_dict(copy.deepcopy(sd))
    for q, w in zip(again.param_groups[0]["params"], powers, strict=True):
        assert torch.equal(again.state[q]["beta1_pow_acc"], w)

    # torch.optim.Adam goes on three updates; its dict still carries our (now stale) powers
    tp = [torch.nn.Parameter(p.detach().clone()) for p in params]
    theirs = torch.optim.Adam(tp, lr=0.01)
    theirs.load_state_dict(sd)
    _feed(tp, theirs, 3, seed=2)
    back = O.Adam([torch.nn.Parameter(p.detach().clone()) for p in tp], lr=0.01)
    back.load_state_dict(theirs.state_dict())
    for q in back.param_groups[0]["params"]:
        assert float(back.state[q]["beta1_pow_acc"]) == pytest.approx(0.9**9, rel=1e-6)  # from step 8
        assert float(back.state[q]["beta2_pow_acc"]) == pytest.approx(0.999**9, rel=1e-6)


def test_a_group_key_torch_rewrote_wins_over_ours_on_reload():
    params = _params()
    opt = O.Adam(params, lr=0.01)
    _feed(params, opt, 2)
    sd = copy.deepcopy(opt.state_dict())
    sd["param_groups"][0]["betas"] = (0.5, 0.9)  # as torch's schedulers write it
    sd["param_groups"][0]["eps"] = 1e-3
    opt.load_state_dict(sd)
    group = opt.param_groups[0]
    assert (group["beta1"], group["beta2"], group["epsilon"]) == (0.5, 0.9, 1e-3)


@pytest.mark.parametrize(
    "regularization,weight_decay",
    [(None, 0.0), (L2Decay(0.05), 0.05), (L1Decay(0.05), 0.0)],
    ids=["none", "l2", "l1 (no torch key)"],
)
def test_the_optimizers_coupled_l2_is_torchs_weight_decay_and_reloads_unchanged(regularization, weight_decay):
    params = _params()
    opt = F.Adam(0.01, parameters=params, regularization=regularization)
    _feed(params, opt, 2)
    sd = opt.torch_state_dict()
    assert sd["param_groups"][0]["weight_decay"] == pytest.approx(weight_decay)
    groups = copy.deepcopy(opt.param_groups)
    opt.load_state_dict(copy.deepcopy(sd))
    assert opt.param_groups[0].keys() == groups[0].keys()  # the optimizer's L2 stays the optimizer's
    _feed(params, opt, 1)


def test_a_groups_own_weight_decay_is_written_as_it_is():
    params = _params()
    opt = O.Adam([{"params": params[:1], "weight_decay": 0.2}, {"params": params[1:]}], lr=0.01)
    _feed(params, opt, 1)
    groups = opt.state_dict()["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.2, 0.0]


# Paddle's RMSProp keeps lr inside its velocity (mom = momentum * mom + lr * g / den; p -= mom),
# torch's outside (buf = momentum * buf + g / den; p -= lr * buf): the velocity is lr * buf.
PADDLE_RMSPROP = {"lr": 0.01, "momentum": 0.9, "epsilon": 1e-10}  # eps: small, its placement aside
TORCH_RMSPROP = {"lr": 0.01, "momentum": 0.9, "eps": 1e-10, "alpha": 0.95}


def test_paddles_rmsprop_velocity_is_lr_times_torchs_buffer_in_both_directions():
    ours = _params()
    opt = O.RMSProp(ours, **PADDLE_RMSPROP)
    _feed(ours, opt, 4)
    sd = copy.deepcopy(opt.state_dict())
    for p, entry in zip(ours, sd["state"].values(), strict=True):
        torch.testing.assert_close(entry["momentum_buffer"] * 0.01, opt.state[p]["momentum"], rtol=1e-6, atol=0)

    # torch goes on from our dict as we go on ourselves (to where eps sits)
    theirs_params = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    theirs = torch.optim.RMSprop(theirs_params, lr=0.5, momentum=0.9)
    theirs.load_state_dict(sd)
    assert theirs.param_groups[0]["alpha"] == 0.95 and theirs.param_groups[0]["eps"] == 1e-10
    _feed(theirs_params, theirs, 3, seed=2)
    _feed(ours, opt, 3, seed=2)
    for a, b in zip(theirs_params, ours, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

    # and ours goes on from torch's dict (its buffer moved: the velocity comes from it)
    back_params = [torch.nn.Parameter(p.detach().clone()) for p in theirs_params]
    back = O.RMSProp(back_params, **PADDLE_RMSPROP)
    back.load_state_dict(copy.deepcopy(theirs.state_dict()))
    for p, q in zip(back_params, theirs_params, strict=True):
        torch.testing.assert_close(back.state[p]["momentum"], 0.01 * theirs.state[q]["momentum_buffer"])
    _feed(back_params, back, 3, seed=3)
    _feed(theirs_params, theirs, 3, seed=3)
    for a, b in zip(back_params, theirs_params, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_torch_rmsprop_checkpoint_gives_paddles_velocity():
    theirs_params = _params()
    theirs = torch.optim.RMSprop(theirs_params, **TORCH_RMSPROP)
    _feed(theirs_params, theirs, 4)
    for cls in (O.RMSProp, F.RMSProp):
        ours = [torch.nn.Parameter(p.detach().clone()) for p in theirs_params]
        opt = cls(0.01, parameters=ours, momentum=0.9, epsilon=1e-10, rho=0.95)
        opt.load_state_dict(copy.deepcopy(theirs.state_dict()))
        for p, q in zip(ours, theirs_params, strict=True):
            assert torch.equal(opt.state[p]["momentum"], theirs.state[q]["momentum_buffer"] * 0.01)


def test_a_buffer_written_under_torchs_name_is_lr_times_it_in_paddles_velocity():
    p = torch.nn.Parameter(torch.ones(3))
    opt = O.RMSProp([p], **PADDLE_RMSPROP)
    opt.state[p].update(square_avg=torch.full((3,), 4.0), momentum_buffer=torch.full((3,), 2.0))
    p.grad = torch.zeros(3)
    opt.step()  # a zero gradient: the velocity decays by the momentum only
    torch.testing.assert_close(opt.state[p]["momentum"], torch.full((3,), 0.9 * 0.01 * 2.0))
    torch.testing.assert_close(p.detach(), torch.full((3,), 1 - 0.9 * 0.01 * 2.0))
