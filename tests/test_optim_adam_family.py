"""torchfluid.optim's Adam family (Adam, AdamW, Adamax, Adadelta, Lamb) called as torch
calls them -- ``cls(params, lr=..., betas=..., eps=..., ...)``, as
``ZeroRedundancyOptimizer(params, optimizer_class=cls, **kwargs)`` and trainer frameworks
do -- runs as torch's optimizer where the maths coincide (Adam, AdamW and Adadelta: up to
where eps is rounded in), and as the Paddle-keyword call otherwise; torch options without
maths here are refused unless neutral."""

import pytest
import torch

import torchfluid.optim as O
import torchfluid.optimizer as F


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))


def _train(model, opt, steps=10):
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
    for _ in range(steps):
        opt.zero_grad()
        model(x).pow(2).sum().backward()
        opt.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


# (torchfluid.optim class, torch's keyword arguments, torch's class)
AS_TORCH = [
    (O.Adam, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-8, "weight_decay": 0.01, "foreach": None}, torch.optim.Adam),
    (O.Adam, {"lr": 0.01, "amsgrad": True, "maximize": False, "capturable": False}, torch.optim.Adam),
    (O.AdamW, {"lr": 0.01, "betas": (0.9, 0.95), "weight_decay": 0.1}, torch.optim.AdamW),
    (O.AdamW, {"lr": 0.01, "amsgrad": True, "eps": 1e-6, "differentiable": False}, torch.optim.AdamW),
    (O.Adadelta, {"lr": 1.0, "rho": 0.9, "eps": 1e-6}, torch.optim.Adadelta),
    (O.Adam, {"lr": 0.01, "maximize": True, "weight_decay": 0.01}, torch.optim.Adam),
    (O.AdamW, {"lr": 0.01, "maximize": True, "amsgrad": True}, torch.optim.AdamW),
    (O.Adadelta, {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "maximize": True}, torch.optim.Adadelta),
]


@pytest.mark.parametrize("cls,kwargs,twin", AS_TORCH, ids=[f"{c.__name__}-{sorted(k)}" for c, k, _ in AS_TORCH])
def test_torch_calls_run_as_torch(cls, kwargs, twin):
    model = _model()
    theirs = _train(model, twin(model.parameters(), **kwargs))
    model = _model()
    ours = _train(model, cls(model.parameters(), **kwargs))
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    assert not torch.equal(ours, torch.cat([p.detach().reshape(-1) for p in _model().parameters()]))


# (torchfluid.optim class, torch's call, the same optimizer with Paddle's keywords)
AS_PADDLE = [
    (O.Adamax, {"lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-6}, {"beta1": 0.8, "beta2": 0.9, "epsilon": 1e-6}),
    (O.Lamb, {"lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-5}, {"beta1": 0.8, "beta2": 0.9, "epsilon": 1e-5}),
    (O.Adadelta, {"lr": 0.5, "eps": 1e-4}, {"epsilon": 1e-4}),
]


@pytest.mark.parametrize("cls,torch_kwargs,paddle_kwargs", AS_PADDLE, ids=[c.__name__ for c, _, _ in AS_PADDLE])
def test_torch_names_mean_the_paddle_options(cls, torch_kwargs, paddle_kwargs):
    """Adamax puts eps where Paddle does (not where torch.optim.Adamax does) and torch has
    no LAMB: the torch call is the Paddle call, bit for bit."""
    model = _model()
    got = _train(model, cls(model.parameters(), **torch_kwargs))
    model = _model()
    paddle_cls = getattr(F, cls.__name__)
    want = _train(model, paddle_cls(torch_kwargs["lr"], parameters=model.parameters(), **paddle_kwargs))
    assert torch.equal(got, want)


BAD = [
    (O.Adam, {"betas": 0.9}, ValueError, r"betas must be a pair \(beta1, beta2\), got 0\.9"),
    (O.AdamW, {"betas": (0.9, 0.99), "beta1": 0.9}, TypeError, r"AdamW\(\.\.\.\) sets betas and beta1/beta2"),
    (O.Adam, {"eps": 1e-8, "epsilon": 1e-8}, ValueError, r"Adam\(\.\.\.\) sets both 'eps' and 'epsilon'"),
    (O.AdamW, {"capturable": True}, ValueError, r"AdamW\(\.\.\.\) has capturable=True; allowed: False"),
    (O.Adadelta, {"differentiable": True, "fused": True}, ValueError, r"`fused` does not support `differentiable`"),
    (O.Adamax, {"betas": (0.9, 1.5)}, ValueError, r"beta2 must be in \[0, 1\), got 1\.5"),
]


@pytest.mark.parametrize("cls,kwargs,error,match", BAD, ids=[f"{c.__name__}-{sorted(k)}" for c, k, _, _ in BAD])
def test_torch_calls_that_cannot_be_honoured_are_refused(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(_model().parameters(), lr=0.01, **kwargs)


@pytest.mark.parametrize("cls", [O.Adam, O.AdamW, O.Adamax, O.Adadelta])
def test_torchs_eps_in_a_param_group_is_read_as_epsilon_also_when_written_later(cls):
    """Given in a group, torch's eps is renamed; written into ``param_groups`` later (as
    ZeroRedundancyOptimizer's group sync does), it sets epsilon at the next step, and epsilon
    written then makes it follow; both written with other values is refused."""
    model = _model()
    opt = cls([{"params": model[0].parameters(), "eps": 1e-3}], lr=0.01)
    assert opt.param_groups[0]["epsilon"] == 1e-3 and "eps" not in opt.param_groups[0]
    opt.add_param_group({"params": model[2].parameters(), "eps": 1e-4})
    assert opt.param_groups[1]["epsilon"] == 1e-4
    opt.param_groups[1]["eps"] = 1e-5
    _train(model, opt, steps=1)
    assert opt.param_groups[1]["epsilon"] == 1e-5
    opt.param_groups[1]["epsilon"] = 1e-6
    _train(model, opt, steps=1)
    assert opt.param_groups[1]["eps"] == 1e-6
    opt.param_groups[1]["eps"], opt.param_groups[1]["epsilon"] = 1e-7, 1e-8
    with pytest.raises(ValueError, match=r"param_groups\[1\]: the param group sets eps=1e-07 and epsilon=1e-08"):
        _train(model, opt, steps=1)
