"""torchfluid.optim.RMSprop against torch.optim.RMSprop, its independent reference.

Each table row is one behaviour of torch's optimizer (torch's own TestOptimRenewed
covers the same ground); the expected values always come from running
torch.optim.RMSprop itself on the same inputs.
"""

import copy
import pickle
import warnings

import pytest
import torch
from torch.testing._internal.two_tensor import TwoTensor

import torchfluid.optim as O
from torchfluid.kernels import rmsprop as kref

CONFIGS = [
    {},
    {"lr": 1e-3},
    {"weight_decay": 0.1},
    {"maximize": True},
    {"weight_decay": 0.1, "centered": True},
    {"maximize": True, "weight_decay": 0.1},
    {"weight_decay": 0.1, "centered": True, "momentum": 0.1},
    {"weight_decay": 0.1, "centered": True, "momentum": 0.1, "maximize": True},
    {"momentum": 0.9, "alpha": 0.9, "eps": 1e-3},
    {"foreach": True, "momentum": 0.5},
    {"foreach": False, "centered": True},
]
TOL = {"rtol": 2e-6, "atol": 2e-6}  # torch's CPU sqrt is sometimes one ulp off; ours is correctly rounded


def _pair(shape=(10, 5), dtype=torch.float32, seed=0, contiguous=True):
    g = torch.Generator().manual_seed(seed)
    if contiguous:
        a = torch.randn(shape, generator=g, dtype=dtype)
    else:
        a = torch.randn((*shape, 2), generator=g, dtype=dtype)[..., 0]
    b = a.clone() if contiguous else torch.randn((*shape, 2), dtype=dtype)[..., 0].copy_(a)
    return a.requires_grad_(), b.requires_grad_()


def _grads(shape, n, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=dtype) for _ in range(n)]


def _run(opt, params, grads):
    for g in grads:
        for p in params:
            p.grad = g.clone()
        opt.step()


@pytest.mark.parametrize("kwargs", CONFIGS, ids=[str(c) for c in CONFIGS])
@pytest.mark.parametrize("dtype,contiguous", [(torch.float32, True), (torch.float64, True), (torch.float32, False)])
def test_trajectory_and_state_equal_torch(kwargs, dtype, contiguous):
    ours, theirs = _pair(dtype=dtype, contiguous=contiguous)
    a, b = O.RMSprop([ours], **kwargs), torch.optim.RMSprop([theirs], **kwargs)
    grads = _grads((10, 5), 20, dtype)
    _run(a, [ours], grads)
    _run(b, [theirs], grads)
    torch.testing.assert_close(ours, theirs, **TOL)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert set(sa["state"][0]) == set(sb["state"][0])
    for k in sb["state"][0]:
        torch.testing.assert_close(sa["state"][0][k], sb["state"][0][k], **TOL)


@pytest.mark.parametrize("kwargs", [{}, {"momentum": 0.9, "centered": True}, {"weight_decay": 0.1, "maximize": True}])
def test_tensor_lr_complex_and_schedulers_equal_torch(kwargs):
    # a Tensor lr with StepLR, complex parameters (updated as real views), closure returns the loss
    c1 = torch.randn(4, 3, dtype=torch.complex64, requires_grad=True)
    c2 = c1.detach().clone().requires_grad_()
    a = O.RMSprop([c1], lr=torch.tensor(0.01), **kwargs)
    b = torch.optim.RMSprop([c2], lr=torch.tensor(0.01), **kwargs)
    sa, sb = torch.optim.lr_scheduler.StepLR(a, 3, 0.5), torch.optim.lr_scheduler.StepLR(b, 3, 0.5)
    for g in _grads((4, 3), 10, torch.complex64):
        c1.grad, c2.grad = g.clone(), g.clone()
        assert a.step(lambda: 7.0) == b.step(lambda: 7.0) == 7.0
        sa.step()
        sb.step()
        torch.testing.assert_close(c1, c2, **TOL)
    assert not torch.isnan(torch.view_as_real(c1)).any()


def test_add_param_group_honours_torch_keys_and_per_group_weight_decay():
    p1, q1 = _pair((6,), seed=3)
    p2, q2 = _pair((4,), seed=4)
    a = O.RMSprop([p1], lr=0.01)
    b = torch.optim.RMSprop([q1], lr=0.01)
    extra = {
        "alpha": 0.9,
        "eps": 1e-4,
        "weight_decay": 0.2,
        "momentum": 0.3,
        "centered": True,
        "foreach": True,
        "capturable": False,
        "differentiable": False,
        "maximize": True,
    }
    a.add_param_group({"params": [p2], **extra})
    b.add_param_group({"params": [q2], **extra})
    assert a.param_groups[1].keys() == b.param_groups[1].keys()
    for g in _grads((6,), 8, seed=5):
        p1.grad, q1.grad = g.clone(), g.clone()
        p2.grad, q2.grad = g[:4].clone(), g[:4].clone()
        a.step()
        b.step()
    torch.testing.assert_close(p1, q1, **TOL)
    torch.testing.assert_close(p2, q2, **TOL)


def _params():
    return [torch.nn.Parameter(torch.randn(1, 1)) for _ in range(2)]


ERRORS = [  # (params, kwargs, error type, message) as torch.optim.RMSprop raises/warns them
    (lambda p: p[0], {}, TypeError, "params argument given to the optimizer should be an iterable"),
    (lambda p: [p[0], p[0]], {}, UserWarning, "a parameter group with duplicate parameters"),
    (lambda p: [{"params": p[0]}, {"params": p[0]}], {}, ValueError, "some parameters appear in more than one"),
    (lambda p: p, {"lr": torch.tensor([0.1, 0.1])}, ValueError, "Tensor lr must be 1-element"),
    (lambda p: [("w", p[0]), p[1]], {}, ValueError, "all optimizer params should be with/without names"),
    (
        lambda p: [{"params": [p[0]]}, {"params": [("w", p[1])]}],
        {},
        ValueError,
        "all optimizer param groups should be with/without names",
    ),
    (lambda p: p, {"momentum": -1.0}, ValueError, "Invalid momentum value: -1.0"),
    (lambda p: p, {"lr": -1.0}, ValueError, "Invalid learning rate: -1.0"),
    (lambda p: p, {"eps": -1.0}, ValueError, "Invalid epsilon value: -1.0"),
    (lambda p: p, {"alpha": -1.0}, ValueError, "Invalid alpha value: -1.0"),
    (lambda p: p, {"weight_decay": -1.0}, ValueError, "Invalid weight_decay value: -1.0"),
    (lambda p: [{"params": p[0]}], {}, None, None),  # a bare Tensor in a group dict is accepted
]


@pytest.mark.parametrize("make,kwargs,error,message", ERRORS, ids=[str(e[3]) for e in ERRORS])
def test_errors_match_torch(make, kwargs, error, message):
    for cls in (torch.optim.RMSprop, O.RMSprop):
        params = _params()
        if error is None:
            cls(make(params), **kwargs)
        elif issubclass(error, Warning):
            with pytest.warns(error, match=message):
                cls(make(params), **kwargs)
        else:
            with pytest.raises(error, match=message):
                cls(make(params), **kwargs)


def test_sparse_gradient_and_capturable_on_cpu_raise_as_torch():
    for cls in (torch.optim.RMSprop, O.RMSprop):
        p = torch.zeros(3, requires_grad=True)
        p.grad = torch.zeros(3).to_sparse()
        with pytest.raises(RuntimeError, match="RMSprop does not support sparse gradients"):
            cls([p]).step()
        p.grad = torch.ones(3)
        with pytest.raises(AssertionError, match="If capturable=True, params and state_steps must be on supported"):
            cls([p], capturable=True).step()
        assert torch.equal(p.detach(), torch.zeros(3))


def test_differentiable_step_gives_torch_gradients():
    # meta-learning: d(loss after one step)/d(lr-scaled initial params and state), as torch computes it
    def run(cls):
        torch.manual_seed(0)
        w0 = torch.randn(5, dtype=torch.float64, requires_grad=True)
        sq0 = torch.rand(5, dtype=torch.float64, requires_grad=True)
        w = w0.clone()
        opt = cls([w], lr=0.1, momentum=0.5, centered=True, differentiable=True)
        w.grad = torch.randn(5, dtype=torch.float64)
        opt.step()  # creates the state; replace square_avg with a graph input, then step again
        opt.state[w]["square_avg"] = sq0.clone()
        w.grad = torch.randn(5, dtype=torch.float64)
        opt.step()
        loss = (w * w).sum()
        return torch.autograd.grad(loss, (w0, sq0))

    for mine, ref in zip(run(O.RMSprop), run(torch.optim.RMSprop), strict=True):
        torch.testing.assert_close(mine, ref, rtol=1e-10, atol=1e-12)


def _trained(cls, named=False, steps=5, **kwargs):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    params = model.named_parameters() if named else model.parameters()
    opt = cls(params, **kwargs)
    x = torch.randn(8, 3)
    for _ in range(steps):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
    return model, opt, x


def _continue(model, opt, x, steps=5):
    for _ in range(steps):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("kwargs", [{}, {"momentum": 0.9, "centered": True, "weight_decay": 0.01}])
@pytest.mark.parametrize("src,dst", [(torch.optim.RMSprop, O.RMSprop), (O.RMSprop, torch.optim.RMSprop)])
def test_state_dict_moves_between_torch_and_torchfluid(src, dst, kwargs):
    model, opt, x = _trained(src, named=True, **kwargs)
    sd = copy.deepcopy(opt.state_dict())
    reference = _continue(*copy.deepcopy((model, opt)), x)  # never switched
    other = dst(model.named_parameters(), **kwargs)
    other.load_state_dict(sd)
    assert other.state_dict()["param_groups"] == sd["param_groups"]
    for got, want in zip(_continue(model, other, x), reference, strict=True):
        torch.testing.assert_close(got, want, **TOL)


def test_layouts_param_names_and_reordered_names():
    model, opt, x = _trained(O.RMSprop, named=True, momentum=0.5)
    sd = opt.state_dict()
    assert sd["param_groups"][0]["param_names"] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert set(sd["state"][0]) == {"step", "square_avg", "momentum_buffer"}
    assert sd == opt.torch_state_dict()
    paddle = opt.paddle_state_dict()
    assert {k for k in paddle if k != "param_groups"} == {
        f"{n}_{acc}_0" for n in ["0.weight", "0.bias", "1.weight", "1.bias"] for acc in ("mean_square", "momentum")
    }
    # the same names in another order: state follows the names, not the positions
    reordered = dict(reversed(list(model.named_parameters())))
    other = O.RMSprop(list(reordered.items()), momentum=0.5)
    other.load_state_dict(copy.deepcopy(sd))
    for i, name in enumerate(reordered):
        j = sd["param_groups"][0]["param_names"].index(name)
        assert torch.equal(other.state_dict()["state"][i]["square_avg"], sd["state"][j]["square_avg"])
    # Paddle's layout loads back (step restarts: Paddle keeps no count)
    again = O.RMSprop(model.named_parameters(), momentum=0.5)
    again.load_state_dict(paddle)
    for i in range(4):
        assert torch.equal(again.state_dict()["state"][i]["momentum_buffer"], sd["state"][i]["momentum_buffer"])
    with pytest.raises(ValueError, match="name no parameter"):
        again.load_state_dict({"nope_mean_square_0": torch.zeros(1)})


def test_paddle_state_dict_of_torch_preset_loads_and_continues():
    # torchfluid.optimizer (Paddle layout, torch preset) -> torchfluid.optim.RMSprop, same trajectory after
    from torchfluid.optimizer import RMSProp

    model, opt, x = _trained(
        lambda ps, **kw: RMSProp.preset("torch", parameters=list(ps), **kw),
        named=True,
        lr=0.01,
        momentum=0.9,
        centered=True,
    )
    sd = opt.state_dict()
    assert any(k.endswith("_mean_square_0") for k in sd)
    reference = _continue(*copy.deepcopy((model, opt)), x)
    other = O.RMSprop(model.named_parameters(), lr=0.01, momentum=0.9, centered=True)
    other.load_state_dict(sd)
    for got, want in zip(_continue(model, other, x), reference, strict=True):
        torch.testing.assert_close(got, want, **TOL)


def test_hooks_fire_as_in_torch():
    calls = []
    model, opt, _ = _trained(O.RMSprop)
    opt.register_state_dict_pre_hook(lambda o: calls.append("sd_pre"))
    opt.register_state_dict_post_hook(lambda o, sd: {**sd, "tag": 1})
    opt.register_load_state_dict_pre_hook(lambda o, sd: calls.append("load_pre"))
    opt.register_load_state_dict_post_hook(lambda o: calls.append("load_post"))
    opt.register_step_pre_hook(lambda o, a, k: calls.append("step_pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("step_post"))
    sd = opt.state_dict()
    assert sd["tag"] == 1
    opt.load_state_dict({k: v for k, v in sd.items() if k != "tag"})
    opt.step()
    assert calls == ["sd_pre", "load_pre", "load_post", "step_pre", "step_post"]


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copies_keep_everything_and_step_identically(how):
    model, opt, x = _trained(O.RMSprop, momentum=0.5, centered=True)
    twin = copy.deepcopy(opt) if how == "deepcopy" else pickle.loads(pickle.dumps(opt))
    assert {k for k in vars(twin) if not k.startswith("_")} == {k for k in vars(opt) if not k.startswith("_")}
    for p, q in zip(opt.param_groups[0]["params"], twin.param_groups[0]["params"], strict=True):
        p.grad = torch.ones_like(p)
        q.grad = torch.ones_like(q)
    opt.step()
    twin.step()
    for p, q in zip(opt.param_groups[0]["params"], twin.param_groups[0]["params"], strict=True):
        assert torch.equal(p, q)


def test_tensor_subclass_takes_torch_ops_path_with_correctly_rounded_sqrt():
    # a __torch_dispatch__ wrapper must never reach the fused kernel's raw addresses or numpy
    assert not kref.plain_memory(TwoTensor(torch.ones(2), torch.ones(2)))
    assert kref.plain_memory(torch.nn.Parameter(torch.ones(2)))
    x = torch.rand(100_000, dtype=torch.float32) * 100
    for dtype in (torch.float32, torch.float64):
        xs = x.to(dtype)
        wrapped = TwoTensor(xs.clone(), xs.clone())
        got = kref._sqrt(wrapped)
        assert torch.equal(got.a, kref._sqrt(xs)) and torch.equal(got.b, kref._sqrt(xs))
    base = torch.randn(6, 3)
    p = TwoTensor(base.clone(), base.clone()).requires_grad_()
    q = base.clone().requires_grad_()
    a, b = O.RMSprop([p], momentum=0.5), O.RMSprop([q], momentum=0.5)
    for g in _grads((6, 3), 4):
        p.grad = TwoTensor(g.clone(), g.clone())
        q.grad = g.clone()
        a.step()
        b.step()
    assert torch.equal(p.detach().a, q.detach()) and torch.equal(p.detach().b, q.detach())


def test_torch_compile_step_gives_the_same_numbers():
    torch._dynamo.reset()
    ours, theirs = _pair((8,), seed=7)
    a, b = O.RMSprop([ours], momentum=0.9), O.RMSprop([theirs], momentum=0.9)
    compiled = torch.compile(a.step, backend="eager")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for g in _grads((8,), 3):
            ours.grad, theirs.grad = g.clone(), g.clone()
            compiled()
            b.step()
    assert torch.equal(ours, theirs)


def test_paddle_momentum_with_lr_inside_is_refused_not_misread():
    from torchfluid.optimizer import RMSProp

    model, opt, _ = _trained(lambda ps, **kw: RMSProp(0.01, momentum=0.9, parameters=list(ps)), named=True)
    opt.set_lr(0.02)  # the state dict now carries param_groups (lr_in_momentum=True)
    sd = opt.state_dict()
    other = O.RMSprop(model.named_parameters(), momentum=0.9)
    with pytest.raises(ValueError, match="lr inside the momentum"):
        other.load_state_dict(sd)
    with pytest.raises(ValueError, match="lr inside the momentum"):  # the same state in torch's layout
        other.load_state_dict(opt.torch_state_dict())
    assert len(other.state) == 0  # nothing loaded


FUSABLE_DTYPES = [torch.float32, torch.float64, torch.complex64]


def _fused_then_reference(train, monkeypatch):
    """``train()`` with the fused kernel, then again with it unavailable (the torch-ops
    reference kernel): the two results."""
    from torchfluid.kernels import fused_cpu

    if not fused_cpu.available():
        pytest.skip("numba is not installed")
    fused = train()
    monkeypatch.setattr(fused_cpu, "available", lambda: False)
    return fused, train()


@pytest.mark.parametrize("kwargs", CONFIGS)
@pytest.mark.parametrize("dtype", FUSABLE_DTYPES)
def test_fused_kernel_path_equals_the_reference_kernel_path(kwargs, dtype, monkeypatch):
    """Dense contiguous CPU parameters take the single-pass kernel; the same run with the
    kernel unavailable takes the torch-ops reference kernel: the two agree bit for bit
    (parameters and every state tensor), so the fused path keeps torch's maths."""

    def train():
        g = torch.Generator().manual_seed(3)
        params = [torch.nn.Parameter(torch.randn(shape, generator=g, dtype=dtype)) for shape in ((40, 33), (7,), ())]
        opt = O.RMSprop(params, **{"lr": 0.01, **kwargs})
        for _ in range(3):
            for p in params:
                p.grad = torch.randn(p.shape, generator=g, dtype=dtype)
            opt.step()
        return params, opt

    (pa, oa), (pb, ob) = _fused_then_reference(train, monkeypatch)
    for p, q in zip(pa, pb, strict=True):
        assert torch.equal(p, q)
        assert oa.state[p].keys() == ob.state[q].keys()
        assert all(torch.equal(oa.state[p][k], ob.state[q][k]) for k in oa.state[p])


def test_plain_tensors_without_grad_tracking_step_as_torch():
    a = [torch.ones(5), torch.arange(6.0).reshape(2, 3)]
    b = [t.clone() for t in a]
    ours, theirs = O.RMSprop(a, lr=0.1, momentum=0.5), torch.optim.RMSprop(b, lr=0.1, momentum=0.5)
    for _ in range(2):
        for x, y in zip(a, b, strict=True):
            x.grad = torch.full_like(x, 0.5)
            y.grad = torch.full_like(y, 0.5)
        ours.step()
        theirs.step()
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, **TOL)


def test_a_graph_that_saved_a_parameter_refuses_backward_after_a_step():
    w = torch.nn.Parameter(torch.ones(3))
    opt = O.RMSprop([w], lr=0.1)
    w.grad = torch.ones(3)
    y = (w * w).sum()  # saves w for backward
    opt.step()  # writes w in place, as torch's step does
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_fused_tables_follow_lr_changes_new_gradients_and_groups(monkeypatch):
    """The fused kernel's tables are kept between steps: a scheduler's new lr, edited
    hyper-parameters, gradients in new memory and a parameter without a gradient on some
    steps give the reference path's numbers bit for bit."""

    def train():
        g = torch.Generator().manual_seed(5)
        a = [torch.nn.Parameter(torch.randn(9, 4, generator=g)), torch.nn.Parameter(torch.randn(3, generator=g))]
        b = [torch.nn.Parameter(torch.randn(5, dtype=torch.float64, generator=g))]
        opt = O.RMSprop([{"params": a}, {"params": b, "momentum": 0.5, "centered": True}], lr=0.05)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        for step in range(5):
            for k, p in enumerate(a + b):
                p.grad = None if (step % 2 and k == 1) else torch.randn(p.shape, generator=g, dtype=p.dtype)
            if step == 3:
                opt.param_groups[0]["alpha"] = 0.9
                opt.param_groups[1]["momentum"] = 0.0  # the velocity stays, unused
            opt.step()
            sched.step()
        return a + b

    for p, q in zip(*_fused_then_reference(train, monkeypatch), strict=True):
        assert torch.equal(p, q)


def test_rmsprop_tensors_refuses_a_call_of_another_variant():
    from torchfluid.kernels import fused_cpu

    if not fused_cpu.available():
        pytest.skip("numba is not installed")
    call = fused_cpu.RMSPropTensors([3], torch.float32, centered=False, has_moment=False, lr_in_momentum=False)
    p, g, ms = torch.ones(3), torch.ones(3), torch.zeros(3)
    with pytest.raises(ValueError, match="mean_grads/moments: given True/False; allowed: False/False"):
        call([p], [g], [ms], [torch.zeros(3)], None, lr=0.1, rho=0.9, epsilon=1e-8, momentum=0.0, eps_in_sqrt=False)
    assert torch.equal(p, torch.ones(3)) and torch.equal(ms, torch.zeros(3))
