"""A bad value written into ``param_groups`` (as skorch's ``set_params(optimizer__<key>=...)``
writes a key into every group, or a scheduler writes torch's ``betas``) is refused at the next
step naming the option and the key written, and leaves everything as it was: parameters, state
and the group's options. Writing a good value over it is then enough: the run goes on as if
the good value had been written in the first place."""

import pytest
import torch

import torchfluid.optim as O

# (class, constructor kwargs, key written, bad value, error pattern, good value)
CASES = [
    (O.Adam, {}, "betas", (1.5, 0.9), r"beta1 must be in \[0, 1\), got 1.5 \(set by betas=\(1.5, 0.9\)\)", (0.8, 0.99)),
    (O.Adam, {}, "betas", (0.5,), r"has betas=\(0.5,\); allowed: a pair \(beta1, beta2\)", (0.8, 0.99)),
    (O.Adam, {}, "eps", -1.0, r"epsilon must be > 0, got -1.0 \(set by eps=-1.0\)", 1e-3),
    (O.AdamW, {}, "betas", (0.9, 2.0), r"beta2 must be in \[0, 1\), got 2.0 \(set by betas=\(0.9, 2.0\)\)", (0.8, 0.9)),
    (O.AdamW, {}, "weight_decay", -0.5, r"weight_decay must be >= 0, got -0.5", 0.3),
    (O.Adamax, {}, "betas", (-0.1, 0.9), r"beta1 must be in \[0, 1\), got -0.1 \(set by betas", (0.5, 0.9)),
    (O.Lamb, {}, "betas", (1.0, 0.9), r"beta1 must be in \[0, 1\), got 1.0 \(set by betas", (0.5, 0.9)),
    (O.RMSProp, {}, "alpha", 1.5, r"rho must be in \[0, 1\), got 1.5 \(set by alpha=1.5\)", 0.5),
    (O.RMSProp, {}, "eps", -1.0, r"epsilon must be >= 0, got -1.0 \(set by eps=-1.0\)", 1e-3),
    (O.RMSProp, {}, "rho", 1.5, r"rho must be in \[0, 1\), got 1.5$", 0.5),
    (O.RMSProp, {"momentum": 0.9}, "momentum", -0.5, r"momentum must be >= 0, got -0.5$", 0.5),
    (O.Adagrad, {}, "eps", -1.0, r"epsilon must be > 0, got -1.0 \(set by eps=-1.0\)", 1e-2),
    (O.SGD, {"momentum": 0.9}, "momentum", -0.5, r"momentum must be >= 0, got -0.5$", 0.5),
    (
        O.Momentum,
        {"momentum": 0.9},
        "nesterov",
        "yes",
        r"must be True or False, got 'yes' \(set by nesterov='yes'\)",
        True,
    ),
    (O.Adadelta, {}, "eps", -1.0, r"epsilon must be > 0, got -1.0 \(set by eps=-1.0\)", 1e-3),
]


def _setup(cls, kwargs, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.nn.Parameter(torch.randn(4, 3, generator=gen))
    b = torch.nn.Parameter(torch.randn(3, generator=gen))
    opt = cls([{"params": [a]}, {"params": [b], "lr": 0.005}], lr=0.01, **kwargs)
    return (a, b), opt, gen


def _step(params, opt, gen):
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    opt.step()


def _options(opt):
    return [{k: v for k, v in g.items() if k not in ("params", "param_names")} for g in opt.param_groups]


def _write(opt, key, value):
    for group in opt.param_groups:  # skorch's _set_optimizer_param: every group
        group[key] = value


@pytest.mark.parametrize(
    "cls, kwargs, key, bad, pattern, good", CASES, ids=[f"{c[0].__name__}-{c[2]}-{c[3]!r}" for c in CASES]
)
def test_a_refused_group_value_changes_nothing_and_a_good_one_written_over_it_runs(
    cls, kwargs, key, bad, pattern, good
):
    params, opt, gen = _setup(cls, kwargs)
    _step(params, opt, gen)
    options = _options(opt)
    values = [p.detach().clone() for p in params]
    state = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in opt.state_dict()["state"][0].items()}
    _write(opt, key, bad)
    with pytest.raises((TypeError, ValueError), match=r"^param_groups\[0\]: .*" + pattern):
        _step(params, opt, gen)
    for p, v in zip(params, values, strict=True):
        assert torch.equal(p, v)
    for k, v in opt.state_dict()["state"][0].items():
        assert torch.equal(v, state[k]) if isinstance(v, torch.Tensor) else v == state[k], k
    # every option as it was; only the key written holds what was written
    for group, before in zip(_options(opt), options, strict=True):
        assert group.pop(key) == bad
        assert group == {k: v for k, v in before.items() if k != key}

    _write(opt, key, good)
    _step(params, opt, gen)

    # the twin: the same steps with the good value written at once
    twin_params, twin, twin_gen = _setup(cls, kwargs)
    _step(twin_params, twin, twin_gen)
    torch.randn(4, 3, generator=twin_gen), torch.randn(3, generator=twin_gen)  # the refused step's draws
    _write(twin, key, good)
    _step(twin_params, twin, twin_gen)
    for p, q in zip(params, twin_params, strict=True):
        assert torch.equal(p, q)
    assert _options(opt) == _options(twin)


def test_the_drop_in_rmsprop_reads_what_is_written_as_torch_does():
    """``torchfluid.optim.RMSprop`` is torch's RMSprop: like torch.optim.RMSprop, it checks its
    arguments at construction only, and a value written into a group later is used as it is."""
    w, v = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    ours, theirs = O.RMSprop([w], lr=0.01), torch.optim.RMSprop([v], lr=0.01)
    for opt, p in ((ours, w), (theirs, v)):
        opt.param_groups[0]["lr"] = -1.0
        p.grad = torch.full((3,), 0.5)
        opt.step()
    torch.testing.assert_close(w, v)
    assert bool((w > 1).all())
