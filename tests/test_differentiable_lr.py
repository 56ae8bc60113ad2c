"""``differentiable=True`` with a tensor learning rate that requires grad: autograd
differentiates the updates with respect to it, as torch.optim's (torch's
TestDifferentiableOptimizer unrolls two steps and gradchecks the loss against the lr), for
every optimizer; the numbers equal those of the same float lr."""

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


def _build(cls, params, lr, kwargs):
    return cls(params, lr=lr, differentiable=True, **kwargs)


def _unrolled(cls, kwargs):
    def loss_after_two_steps(p0, lr):
        p = p0.clone()
        opt = _build(cls, [p], lr, kwargs)
        x = torch.linspace(0.5, 1.5, p.numel(), dtype=p.dtype)  # no zero gradient: sqrt(0) has none
        for _ in range(2):
            loss = ((p * x).sum() - 2.0) ** 2
            (g,) = torch.autograd.grad(loss, p, create_graph=True)
            p.grad = g
            opt.step()
        return ((p * x).sum() - 2.0) ** 2

    return loss_after_two_steps


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
