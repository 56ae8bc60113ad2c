"""Two layouts, one implementation: torchfluid.optimizer (Paddle keys) and
torchfluid.optim (torch's layout) hold the same state and move it both ways; torch's
hooks, deepcopy and pickle work on both."""

import copy
import pickle

import pytest
import torch

import torchfluid.optim as O
import torchfluid.optimizer as F

TOL = {"rtol": 2e-6, "atol": 2e-6}

BUILDERS = [  # (paddle-layout class, torch-layout class, kwargs)
    (F.RMSProp, O.RMSProp, {"learning_rate": 0.01, "momentum": 0.9, "centered": True}),
    (F.RMSProp, O.RMSProp, {"learning_rate": 0.01, "rho": 0.9, "epsilon": 1e-4}),
    (F.SGD, O.SGD, {"learning_rate": 0.1}),
    (F.Adam, O.Adam, {"learning_rate": 0.01}),
    (F.Adagrad, O.Adagrad, {"learning_rate": 0.1, "initial_accumulator_value": 0.1}),
    (F.Momentum, O.Momentum, {"learning_rate": 0.05, "momentum": 0.9, "use_nesterov": True}),
    (F.AdamW, O.AdamW, {"learning_rate": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    (F.Adamax, O.Adamax, {"learning_rate": 0.01}),
    (F.Adadelta, O.Adadelta, {"learning_rate": 1.0, "rho": 0.9}),
    (F.Lamb, O.Lamb, {"learning_rate": 0.01}),
]


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))


def _steps(model, opt, n, seed=1):
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(seed))
    for _ in range(n):
        opt.zero_grad()
        model(x).pow(2).sum().backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def _same(a, b) -> bool:
    """Equal nested dicts and lists, tensors bit for bit (torch's computed entries are new tensors)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("paddle_cls,torch_cls,kwargs", BUILDERS, ids=lambda v: getattr(v, "__name__", ""))
def test_each_layout_loads_into_the_other_and_the_run_continues_identically(paddle_cls, torch_cls, kwargs):
    for src_cls, dst_cls in ((paddle_cls, torch_cls), (torch_cls, paddle_cls)):
        model = _model()
        src = src_cls(parameters=list(model.named_parameters()), **kwargs)
        _steps(model, src, 4)
        sd = src.state_dict()
        if src_cls is torch_cls:
            assert set(sd) >= {"state", "param_groups"}
            assert sd["param_groups"][0]["param_names"] == ["0.weight", "0.bias", "1.weight", "1.bias"]
            assert _same(sd, src.torch_state_dict())
        else:
            assert "state" not in sd and sd == src.paddle_state_dict()
        twin_model, twin = copy.deepcopy((model, src))
        want = _steps(twin_model, twin, 3, seed=2)
        dst = dst_cls(parameters=list(model.named_parameters()), **kwargs)
        dst.load_state_dict(sd)
        for got, ref in zip(_steps(model, dst, 3, seed=2), want, strict=True):
            assert torch.equal(got, ref)  # one implementation: bit for bit


def test_torch_rmsprop_state_dict_loads_into_the_torch_preset():
    kwargs = {"lr": 0.01, "momentum": 0.9, "centered": True, "alpha": 0.9}
    model = _model()
    theirs = torch.optim.RMSprop(model.named_parameters(), **kwargs)
    _steps(model, theirs, 4)
    twin_model, twin = copy.deepcopy((model, theirs))
    want = _steps(twin_model, twin, 3, seed=2)
    for cls in (F.RMSProp, O.RMSProp):
        m = copy.deepcopy(model)
        ours = cls.preset("torch", parameters=list(m.named_parameters()), **kwargs)
        ours.load_state_dict(copy.deepcopy(theirs.state_dict()))
        assert ours.param_groups[0]["rho"] == 0.9
        for got, ref in zip(_steps(m, ours, 3, seed=2), want, strict=True):
            torch.testing.assert_close(got, ref, **TOL)


def test_state_dict_and_load_hooks_fire_on_the_paddle_layout():
    model = _model()
    opt = F.RMSProp(0.01, parameters=model.parameters())
    _steps(model, opt, 2)
    calls = []
    opt.register_state_dict_pre_hook(lambda o: calls.append("pre"))
    opt.register_state_dict_post_hook(lambda o, sd: {**sd, "extra": 1})
    sd = opt.state_dict()
    assert calls == ["pre"] and sd["extra"] == 1
    opt.register_load_state_dict_pre_hook(lambda o, sd: {k: v for k, v in sd.items() if k != "extra"})
    opt.register_load_state_dict_post_hook(lambda o: calls.append("post"))
    opt.set_state_dict(sd)  # the pre-hook removes the key a strict load would refuse
    opt.load_state_dict(sd)
    assert calls == ["pre", "post", "post"]
    assert "extra" in sd  # the caller's dict is untouched


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
@pytest.mark.parametrize("fused", [None, False])
def test_copies_keep_every_attribute_and_step_identically(how, fused):
    model = _model()
    opt = F.RMSProp(
        0.01,
        momentum=0.5,
        parameters=model.parameters(),
        lazy_mode=True,
        nonfinite="skip",
        fused=fused,
        weight_decay=0.01,
    )
    _steps(model, opt, 2)
    for p in model.parameters():
        p.grad = torch.full_like(p, float("nan"))
    opt.step()
    assert opt.skipped_steps == 1
    pair = copy.deepcopy((model, opt)) if how == "deepcopy" else pickle.loads(pickle.dumps((model, opt)))
    twin_model, twin = pair
    for attr in ("skipped_steps", "fused", "lazy_mode", "nonfinite", "multi_precision"):
        assert getattr(twin, attr) == getattr(opt, attr)
    assert type(twin.regularization) is type(opt.regularization)
    assert twin.state_dict().keys() == opt.state_dict().keys()
    for got, want in zip(_steps(twin_model, twin, 3), _steps(model, opt, 3), strict=True):
        assert torch.equal(got, want)


def test_add_param_group_reads_torch_keys_and_per_group_weight_decay():
    a, b = torch.nn.Parameter(torch.randn(4)), torch.nn.Parameter(torch.randn(4))
    opt = F.RMSProp.preset("torch", parameters=[a], lr=0.01)
    opt.add_param_group({"params": [b], "alpha": 0.9, "eps": 1e-3})
    assert (opt.param_groups[1]["rho"], opt.param_groups[1]["epsilon"]) == (0.9, 1e-3)
    ref = torch.nn.Parameter(b.detach().clone())
    torch_opt = torch.optim.RMSprop([ref], lr=0.01, alpha=0.9, eps=1e-3)
    for _ in range(5):
        g = torch.randn(4)
        b.grad, ref.grad = g.clone(), g.clone()
        opt.step()
        torch_opt.step()
    torch.testing.assert_close(b, ref, **TOL)
    with pytest.raises(ValueError, match="sets both 'alpha' and 'rho'"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(1))], "alpha": 0.9, "rho": 0.9})
    # a group's weight_decay is torch's coupled decay of that group (g + wd * p)
    c = torch.nn.Parameter(torch.randn(4))
    ref_c, no_decay = torch.nn.Parameter(c.detach().clone()), torch.nn.Parameter(c.detach().clone())
    opt.add_param_group({"params": [c], "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.1})
    opt.add_param_group({"params": [no_decay], "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0})
    torch_opt.add_param_group({"params": [ref_c], "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.1})
    for _ in range(5):
        g = torch.randn(4)
        c.grad, ref_c.grad, no_decay.grad = g.clone(), g.clone(), g.clone()
        opt.step()
        torch_opt.step()
    torch.testing.assert_close(c, ref_c, **TOL)
    assert not torch.allclose(c, no_decay)  # the decay changed the trajectory
    with pytest.raises(ValueError, match=r"weight_decay must be >= 0, got -1"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(1))], "weight_decay": -1})


@pytest.mark.parametrize(
    "build",
    [
        lambda ps: F.RMSProp(0.01, parameters=ps),
        lambda ps: F.RMSProp(0.01, momentum=0.9, centered=True, parameters=ps),
        lambda ps: F.RMSProp.preset("tf1", parameters=ps, learning_rate=0.01, momentum=0.5),
        lambda ps: O.RMSProp.preset("torch", ps, lr=0.01, momentum=0.9, weight_decay=0.1),
        lambda ps: F.Momentum(0.05, 0.9, parameters=ps, use_nesterov=True, weight_decay=0.1),
    ],
    ids=["paddle", "centered-momentum", "tf1", "torch-preset", "momentum-nesterov"],
)
def test_complex_parameters_are_updated_as_their_real_views(build):
    c = torch.randn(4, 3, dtype=torch.complex64, requires_grad=True)
    r = torch.view_as_real(c).detach().clone().requires_grad_()
    a, b = build([c]), build([r])
    for _ in range(5):
        g = torch.randn(4, 3, dtype=torch.complex64)
        c.grad, r.grad = g, torch.view_as_real(g).clone()
        a.step()
        b.step()
    assert torch.equal(torch.view_as_real(c), r)


@pytest.mark.parametrize(
    "cls,kwargs",
    [
        (O.RMSProp, {"lr": 0.01, "momentum": 0.9, "centered": True}),
        (O.SGD, {"lr": 0.1}),
        (O.Adam, {"lr": 0.01}),
        (O.Adagrad, {"lr": 0.1}),
        (O.Momentum, {"lr": 0.05, "momentum": 0.9}),
    ],
    ids=["RMSProp", "SGD", "Adam", "Adagrad", "Momentum"],
)
def test_torch_compile_step_gives_the_same_numbers(cls, kwargs):
    torch._dynamo.reset()
    a0 = torch.randn(8, requires_grad=True)
    b0 = a0.detach().clone().requires_grad_()
    a, b = cls([a0], **kwargs), cls([b0], **kwargs)
    compiled = torch.compile(a.step, backend="eager")
    for _ in range(3):
        g = torch.randn(8)
        a0.grad, b0.grad = g.clone(), g.clone()
        compiled()
        b.step()
    assert torch.equal(a0, b0)


TORCH_LAYOUT_CLASSES = [O.SGD, O.Adam, O.AdamW, O.Adagrad, O.Adamax, O.Adadelta, O.RMSProp, O.Momentum, O.Lamb]


@pytest.mark.parametrize("cls", TORCH_LAYOUT_CLASSES, ids=lambda c: c.__name__)
def test_a_single_tensor_in_a_param_group_is_a_list_of_one_as_in_torch(cls):
    """torch's add_param_group takes ``{'params': tensor}`` as ``[tensor]`` (torch's own tests
    build groups so); a single tensor as the optimizer's parameters is still refused, as torch does."""
    torch.manual_seed(0)
    w0, b0, x = torch.randn(10, 5), torch.randn(10), torch.randn(5)
    runs = []
    for wrap in (lambda t: t, lambda t: [t]):
        w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
        opt = cls([{"params": [w]}, {"params": wrap(b), "lr": 1e-2}], lr=1e-3)
        assert [len(g["params"]) for g in opt.param_groups] == [1, 1] and opt.param_groups[1]["params"][0] is b
        for _ in range(5):
            opt.zero_grad()
            (w.mv(x) + b).pow(2).sum().backward()
            opt.step()
        runs.append(torch.cat([w.detach().reshape(-1), b.detach()]))
    assert torch.equal(runs[0], runs[1])
    with pytest.raises(TypeError, match=r"^parameters must be an iterable of tensors.*got a single Tensor"):
        cls(w0.clone().requires_grad_(), lr=1e-3)


# (class, keyword arguments with 1-element tensors, refused option or None); a tensor beta's power
# starts at Paddle's 0.9 / 0.999, so the betas here are those, for the same numbers as floats
TENSOR_OPTIONS = [
    (O.RMSProp, {"lr": torch.tensor(0.01), "momentum": torch.tensor(0.9), "weight_decay": torch.tensor(0.1)}, None),
    (O.SGD, {"lr": torch.tensor(0.1), "momentum": torch.tensor(0.9)}, None),
    (O.Adam, {"betas": (torch.tensor(0.9), torch.tensor(0.999)), "eps": torch.tensor(1e-8)}, None),
    (O.AdamW, {"betas": (torch.tensor(0.9), torch.tensor(0.999)), "weight_decay": torch.tensor(0.1)}, None),
    (O.RMSProp, {"eps": torch.tensor(1e-6)}, "epsilon"),
    (O.RMSProp, {"alpha": torch.tensor(0.9)}, "rho"),
    (O.Momentum, {"momentum": torch.tensor(0.9)}, "momentum"),
    (O.Adagrad, {"eps": torch.tensor(1e-6)}, "epsilon"),
    (O.Adamax, {"betas": (torch.tensor(0.9), torch.tensor(0.99))}, "beta1"),
    (O.Adadelta, {"rho": torch.tensor(0.9)}, "rho"),
]


@pytest.mark.parametrize("cls,kwargs,refused", TENSOR_OPTIONS, ids=[f"{c.__name__}-{r}" for c, _, r in TENSOR_OPTIONS])
def test_tensor_group_options_the_readme_lists_step_as_their_numbers(cls, kwargs, refused):
    as_numbers = {k: tuple(float(b) for b in v) if isinstance(v, tuple) else float(v) for k, v in kwargs.items()}
    if refused is not None:
        with pytest.raises(ValueError, match=rf"^{refused} must be a real number .* of type Tensor"):
            cls(_model().parameters(), **kwargs)
        return
    runs = []
    for options in (kwargs, as_numbers):
        model = _model()
        runs.append(_steps(model, cls(model.parameters(), **options), 3))
    for got, want in zip(*runs, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_the_learning_rate_default_is_torchs_in_optim_and_required_in_optimizer():
    assert O.RMSProp(_model().parameters()).param_groups[0]["lr"] == 0.01
    assert O.Adagrad(_model().parameters()).param_groups[0]["lr"] == 0.01
    with pytest.raises(TypeError, match="learning_rate"):
        F.RMSProp(parameters=_model().parameters())
