"""``differentiable=True`` with hyper-parameters given as tensors that require grad: autograd
differentiates the updates with respect to them, as torch.optim's (torch's
TestDifferentiableOptimizer unrolls two steps and gradchecks the loss against them): the
learning rate for every optimizer (the numbers equal those of the same float lr), the
weight decay (coupled L2, a group's, AdamW's decoupled one) and the Adam family's betas and
epsilon (unrounded: Paddle's float32 attributes would leave them no gradient)."""

import pytest
import torch
from torch.autograd import gradcheck

import torchfluid.optim as O

CASES = [
    (O.SGD, {}),
    (O.SGD, {"momentum": 0.9, "nesterov": True}),
    (O.Momentum, {"momentum": 0.9}),
    (O.Adam, {}),
    (O.AdamW, {"weight_decay": 0.1}),
    (O.Adamax, {}),
    (O.Adadelta, {}),
    (O.Adagrad, {}),
    (O.RMSProp, {"momentum": 0.9, "centered": True}),
    (O.RMSProp, {"momentum": 0.9, "lr_in_momentum": False, "eps_in_sqrt": False}),  # torch's placements
    (O.Lamb, {}),
]
IDS = [f"{c.__name__}{sorted(k)}" for c, k in CASES]


def _loss_after_two_steps(p0, cls, **kwargs):
    """Two recorded steps of ``cls(..., differentiable=True, **kwargs)`` from ``p0`` on a
    quadratic loss, then the loss: a function autograd differentiates end to end."""
    p = p0.clone()
    opt = cls([p], differentiable=True, **kwargs)
    x = torch.linspace(0.5, 1.5, p.numel(), dtype=p.dtype)  # no zero gradient: sqrt(0) has none
    for _ in range(2):
        loss = ((p * x).sum() - 2.0) ** 2
        (g,) = torch.autograd.grad(loss, p, create_graph=True)
        p.grad = g
        opt.step()
    return ((p * x).sum() - 2.0) ** 2


def _unrolled(cls, kwargs):
    return lambda p0, lr: _loss_after_two_steps(p0, cls, lr=lr, **kwargs)


@pytest.mark.parametrize("cls,kwargs", CASES, ids=IDS)
def test_the_loss_after_two_steps_is_differentiated_with_respect_to_the_lr(cls, kwargs):
    p0 = torch.rand(5, dtype=torch.float64, requires_grad=True)
    lr = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    fn = _unrolled(cls, kwargs)
    assert gradcheck(fn, (p0, lr))
    (grad,) = torch.autograd.grad(fn(p0, lr), lr)
    assert grad != 0


@pytest.mark.parametrize("cls,kwargs", CASES, ids=IDS)
def test_a_tensor_lr_gives_the_float_lrs_numbers(cls, kwargs):
    p0 = torch.rand(5, dtype=torch.float64)
    fn = _unrolled(cls, kwargs)
    with_tensor = fn(p0.clone().requires_grad_(), torch.tensor(0.05, dtype=torch.float64, requires_grad=True))
    with_float = fn(p0.clone().requires_grad_(), 0.05)
    torch.testing.assert_close(with_tensor, with_float, rtol=1e-12, atol=0)


def test_a_one_element_lr_moves_a_0d_parameter_and_keeps_its_shape():
    p = torch.tensor(1.0, dtype=torch.float64, requires_grad=True).clone()
    lr = torch.tensor([0.1], dtype=torch.float64, requires_grad=True)
    opt = O.Adam([p], lr=lr, differentiable=True)
    p.grad = torch.tensor(1.0, dtype=torch.float64)
    opt.step()
    assert p.shape == () and p.grad_fn is not None
    (d,) = torch.autograd.grad(p, lr)
    assert d.shape == (1,) and float(d) < 0


# (class, hyper-parameters given as tensors that require grad, other options, whether the
# float call has the same maths): a tensor beta's power starts at Paddle's default, not at it
HPARAM_CASES = [
    (O.Adam, {"weight_decay": 0.3}, {}, True),
    (O.Adam, {"betas": (0.8, 0.95), "eps": 1e-3}, {}, False),
    (O.AdamW, {"weight_decay": 0.3}, {"amsgrad": True}, True),
    (O.AdamW, {"weight_decay": 0.3, "betas": (0.9, 0.999)}, {}, True),
    (O.SGD, {"weight_decay": 0.3}, {"momentum": 0.9}, True),
    (O.RMSProp, {"weight_decay": 0.3}, {"momentum": 0.9}, True),
    (O.Adagrad, {"weight_decay": 0.3}, {}, True),
]


def _as_tensors(kwargs):
    out, leaves = {}, []
    for k, v in kwargs.items():
        if isinstance(v, tuple):
            out[k] = tuple(torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in v)
            leaves += list(out[k])
        else:
            out[k] = torch.tensor(v, dtype=torch.float64, requires_grad=True)
            leaves.append(out[k])
    return out, leaves


def _unrolled_by(cls, names, options):
    """The loss after two steps as a function of the parameter and of hyper-parameters ``names``."""

    def fn(p0, *values):
        kwargs, it = dict(options), iter(values)
        for k, n in names:
            kwargs[k] = tuple(next(it) for _ in range(n)) if n > 1 else next(it)
        return _loss_after_two_steps(p0, cls, lr=0.05, **kwargs)

    return fn


@pytest.mark.parametrize(
    "cls,tensors,options,same_maths", HPARAM_CASES, ids=[f"{c[0].__name__}{sorted(c[1])}" for c in HPARAM_CASES]
)
def test_the_loss_after_two_steps_is_differentiated_with_respect_to_tensor_hyper_parameters(
    cls, tensors, options, same_maths
):
    tensors, leaves = _as_tensors(tensors)
    names = [(k, len(v) if isinstance(v, tuple) else 1) for k, v in tensors.items()]
    fn = _unrolled_by(cls, names, options)
    p0 = torch.rand(4, dtype=torch.float64, requires_grad=True)
    assert gradcheck(fn, (p0, *leaves))
    grads = torch.autograd.grad(fn(p0, *leaves), leaves)
    assert all(g != 0 for g in grads)
    if same_maths:  # the float call: Paddle's float32 attributes (1 - float32(0.999) is 1.3e-5 off); tensors unrounded
        floats = [float(v.detach()) for v in leaves]
        torch.testing.assert_close(fn(p0, *leaves), fn(p0, *floats), rtol=1e-4, atol=0)


@pytest.mark.parametrize("fused", [None, False], ids=["fused", "reference"])
def test_a_tensor_weight_decay_is_read_at_each_update(fused):
    """Outside a differentiable update a tensor weight decay is its value at each update."""

    def run(wd, change):
        p = torch.nn.Parameter(torch.linspace(-1, 1, 6))
        opt = O.Adam([p], lr=0.1, weight_decay=wd, fused=fused)
        for step in range(4):
            if step == 2:
                change()
            p.grad = torch.ones(6)
            opt.step()
        return p.detach()

    wd = torch.tensor(0.25, dtype=torch.float64)
    got = run(wd, lambda: wd.fill_(0.5))  # changed in place, as torch's schedulers change tensors
    p = torch.nn.Parameter(torch.linspace(-1, 1, 6))
    opt = O.Adam([{"params": [p], "weight_decay": 0.25}], lr=0.1, fused=fused)
    for step in range(4):
        if step == 2:
            opt.param_groups[0]["weight_decay"] = 0.5
        p.grad = torch.ones(6)
        opt.step()
    assert torch.equal(got, p.detach())


def test_a_tensor_weight_decay_out_of_range_is_refused_by_name():
    p = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match=r"weight_decay"):
        O.Adam([p], weight_decay=torch.tensor(-0.1))
    with pytest.raises(ValueError, match=r"weight_decay"):
        O.AdamW([p], weight_decay=torch.tensor(-0.1))
