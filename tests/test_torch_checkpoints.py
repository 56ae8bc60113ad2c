"""torch.optim checkpoints of the Adam family load into torchfluid's namesakes (either layout)
and the run goes on as torch's would: torch's entries (``exp_avg``, ``exp_avg_sq``,
``max_exp_avg_sq``, ``exp_inf``, ``square_avg``, ``acc_delta``) are read as Paddle's records,
its ``betas`` pair as ``beta1``/``beta2``, and its per-parameter ``step`` count becomes
Paddle's beta powers (``beta ** (step + 1)``)."""

import copy

import numpy as np
import pytest
import torch

import torchfluid.optim as O
import torchfluid.optimizer as F

# (torch class, its call, our class, the records ours must hold, {our record: torch's entry})
CASES = [
    (
        torch.optim.Adam,
        {"lr": 0.01, "betas": (0.8, 0.99)},
        O.Adam,
        {"moment1": "exp_avg", "moment2": "exp_avg_sq"},
    ),
    (
        torch.optim.Adam,
        {"lr": 0.01, "amsgrad": True, "eps": 1e-6},
        O.Adam,
        {"moment1": "exp_avg", "moment2": "exp_avg_sq", "moment2_max": "max_exp_avg_sq"},
    ),
    (
        torch.optim.AdamW,
        {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True},
        O.AdamW,
        {"moment1": "exp_avg", "moment2": "exp_avg_sq", "moment2_max": "max_exp_avg_sq"},
    ),
    (torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.99)}, F.Adam, {"moment1": "exp_avg", "moment2": "exp_avg_sq"}),
    # torch's coupled weight_decay: the group's own L2 here too
    (torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.1}, O.Adam, {"moment1": "exp_avg", "moment2": "exp_avg_sq"}),
    (
        torch.optim.Adamax,
        {"lr": 0.02, "weight_decay": 0.05},
        F.Adamax,
        {"moment": "exp_avg", "inf_norm": "exp_inf"},
    ),
    (torch.optim.Adamax, {"lr": 0.02, "betas": (0.85, 0.99)}, O.Adamax, {"moment": "exp_avg", "inf_norm": "exp_inf"}),
    (torch.optim.Adamax, {"lr": 0.02}, F.Adamax, {"moment": "exp_avg", "inf_norm": "exp_inf"}),
    (
        torch.optim.Adadelta,
        {"lr": 1.0, "rho": 0.8, "eps": 1e-5},
        O.Adadelta,
        {"_avg_squared_grad": "square_avg", "_avg_squared_update": "acc_delta"},
    ),
]


def _mlp(dtype=torch.float32):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).to(dtype)


def _steps(model, opt, seeds):
    for seed in seeds:
        x = torch.randn(5, 3, generator=torch.Generator().manual_seed(seed), dtype=next(model.parameters()).dtype)
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _ours(cls, model, torch_kwargs):
    """Our optimizer in its own call, built with defaults that differ from the checkpoint's."""
    params = list(model.parameters())
    wants_amsgrad = {"amsgrad": True} if torch_kwargs.get("amsgrad") else {}
    if cls.__module__.startswith("torchfluid.optim."):
        return cls(params, lr=0.5, **wants_amsgrad)
    return cls(0.5, parameters=params, **wants_amsgrad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(
    "torch_cls,kwargs,cls,records",
    CASES,
    ids=[f"{c[0].__name__}{sorted(c[1])}->{c[2].__module__.split('.')[1]}.{c[2].__name__}" for c in CASES],
)
def test_a_torch_checkpoint_loads_and_the_run_goes_on_as_torchs(torch_cls, kwargs, cls, records, dtype):
    theirs = _mlp(dtype)
    ref = torch_cls(theirs.parameters(), **kwargs)
    _steps(theirs, ref, range(3))
    sd = copy.deepcopy(ref.state_dict())
    model = copy.deepcopy(theirs)
    opt = _ours(cls, model, kwargs)
    opt.load_state_dict(sd)

    group = opt.param_groups[0]
    assert group["lr"] == kwargs["lr"]  # the checkpoint's hyper-parameters, as torch restores them
    betas = kwargs.get("betas", (0.9, 0.999))
    if "beta1" in group:
        assert (group["beta1"], group["beta2"]) == betas
    if "eps" in kwargs:
        assert group["epsilon"] == kwargs["eps"]
    for i, p in enumerate(model.parameters()):
        entry = sd["state"][i]
        for ours_name, torch_name in records.items():
            assert torch.equal(opt.state[p][ours_name], entry[torch_name])  # the same numbers, bit for bit
        for k, beta in enumerate(betas[: sum(name.endswith("_pow_acc") for name in opt.state[p])]):
            # Paddle's power before update step + 1: the start value (the beta) times beta ** step
            want = float(beta) * float(np.float32(beta)) ** (float(entry["step"]))
            got = opt.state[p][f"beta{k + 1}_pow_acc"]
            assert got.shape == (1,) and got.dtype == dtype
            torch.testing.assert_close(got.double(), torch.tensor([want], dtype=torch.float64), rtol=1e-6, atol=0)

    _steps(theirs, ref, range(3, 9))
    _steps(model, opt, range(3, 9))
    # the same maths but for where eps sits (Paddle scales it by sqrt(1 - beta2 ** t)): close, not equal
    torch.testing.assert_close(_flat(model), _flat(theirs), rtol=1e-5, atol=1e-6)


def test_a_checkpoint_without_a_step_count_keeps_the_fresh_powers():
    """An entry with moments but no ``step`` (written by hand) leaves the powers at their start."""
    theirs = _mlp()
    ref = torch.optim.Adam(theirs.parameters(), lr=0.01)
    _steps(theirs, ref, range(2))
    sd = copy.deepcopy(ref.state_dict())
    for entry in sd["state"].values():
        del entry["step"]
    opt = O.Adam(list(copy.deepcopy(theirs).parameters()), lr=0.01)
    with pytest.raises(ValueError, match=r"missing \(8\): param_0_beta1_pow_acc_0"):
        opt.load_state_dict(sd)  # strict: Paddle's powers are part of the state
    report = opt.set_state_dict(sd, strict=False)
    assert "param_0_beta1_pow_acc_0" in report.missing


@pytest.mark.parametrize(
    "step",
    [
        torch.tensor(-1.0),
        torch.tensor(2.5),
        torch.tensor(float("nan")),
        float("inf"),
        "3",
        True,
        torch.tensor([1.0, 2.0]),
        torch.tensor(2.0, device="meta"),
    ],
    ids=["negative", "fraction", "nan", "inf", "string", "bool", "two-elements", "meta"],
)
def test_a_step_that_is_no_count_is_refused_and_nothing_loads(step):
    theirs = _mlp()
    ref = torch.optim.Adam(theirs.parameters(), lr=0.01)
    _steps(theirs, ref, range(2))
    sd = copy.deepcopy(ref.state_dict())
    sd["state"][1]["step"] = step
    model = copy.deepcopy(theirs)
    opt = O.Adam(list(model.parameters()), lr=0.01)
    _steps(model, opt, range(1))
    before = {k: v.clone() for k, v in opt.paddle_state_dict().items() if isinstance(v, torch.Tensor)}
    with pytest.raises(
        ValueError, match=r"torch's step \(of a checkpoint or written into optimizer.state\) must be a count >= 0, got"
    ):
        opt.load_state_dict(sd)
    after = opt.paddle_state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert opt.param_groups[0]["lr"] == 0.01


@pytest.mark.parametrize(
    "betas,match",
    [((1.5, 0.9), r"beta1 must be in \[0, 1\), got 1.5"), (("a", 0.9), r"beta1 must be a real number")],
    ids=["out-of-range", "not-a-number"],
)
def test_a_checkpoints_bad_beta_is_refused_by_name_and_nothing_loads(betas, match):
    theirs = _mlp()
    ref = torch.optim.Adam(theirs.parameters(), lr=0.01)
    _steps(theirs, ref, range(1))
    sd = copy.deepcopy(ref.state_dict())
    sd["param_groups"][0]["betas"] = betas
    opt = O.Adam(list(copy.deepcopy(theirs).parameters()), lr=0.01)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(sd)
    assert opt.param_groups[0]["beta1"] == 0.9 and not opt.state


def test_a_malformed_betas_pair_is_refused():
    theirs = _mlp()
    ref = torch.optim.Adam(theirs.parameters(), lr=0.01)
    _steps(theirs, ref, range(1))
    sd = copy.deepcopy(ref.state_dict())
    sd["param_groups"][0]["betas"] = (0.9,)
    opt = O.Adam(list(copy.deepcopy(theirs).parameters()), lr=0.01)
    with pytest.raises(ValueError, match=r"has betas \(0.9,\); allowed: a pair \(beta1, beta2\)"):
        opt.load_state_dict(sd)


def test_an_older_checkpoints_step_as_a_number_gives_the_same_powers():
    """torch checkpoints before 1.12 kept ``step`` as a Python int (torch's own tests load such)."""
    theirs = _mlp()
    ref = torch.optim.Adam(theirs.parameters(), lr=0.01)
    _steps(theirs, ref, range(3))
    sd = copy.deepcopy(ref.state_dict())
    old = copy.deepcopy(sd)
    for entry in old["state"].values():
        entry["step"] = int(entry["step"].item())
    got = []
    for checkpoint in (sd, old):
        opt = O.Adam(list(copy.deepcopy(theirs).parameters()), lr=0.01)
        opt.load_state_dict(checkpoint)
        got.append(opt.paddle_state_dict())
    assert got[0].keys() == got[1].keys()
    assert all(torch.equal(v, got[1][k]) for k, v in got[0].items() if isinstance(v, torch.Tensor))
