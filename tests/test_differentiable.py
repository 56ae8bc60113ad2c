"""torch's ``differentiable=True``: a recorded update, checked with autograd's gradcheck.

Every optimizer runs its reference kernel under autograd (the fused kernels write raw
memory, which autograd cannot record): the parameters after one or more steps must be
differentiable functions of the parameters before and of the gradients (gradcheck, float64,
central differences), and the numbers must be those of the same run without recording,
bit for bit.
"""

import pytest
import torch
from torch.autograd import gradcheck

import torchfluid as fluid
import torchfluid.optim as O
from torchfluid.optimizer import SGD

# (id, class, keyword arguments): every rule, with its state-keeping options on
CASES = [
    ("sgd_momentum_dampening_wd", O.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.2, "weight_decay": 0.1}),
    ("sgd_nesterov_maximize", O.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "maximize": True}),
    ("momentum_paddle", O.Momentum, {"lr": 0.1, "momentum": 0.9, "use_nesterov": True}),
    ("adam", O.Adam, {"lr": 0.1}),
    ("adam_amsgrad", O.Adam, {"lr": 0.1, "amsgrad": True}),
    ("adamw", O.AdamW, {"lr": 0.1, "weight_decay": 0.1}),
    ("adamax", O.Adamax, {"lr": 0.1}),
    ("adagrad_lr_decay", O.Adagrad, {"lr": 0.1, "lr_decay": 0.1, "initial_accumulator_value": 0.1}),
    ("adadelta", O.Adadelta, {"lr": 0.5}),
    ("lamb", O.Lamb, {"lr": 0.01}),
    ("rmsprop", O.RMSProp, {"lr": 0.01}),
    ("rmsprop_centered_momentum", O.RMSProp, {"lr": 0.01, "momentum": 0.9, "centered": True}),
    ("rmsprop_l1_clip", O.RMSProp, {"lr": 0.01, "weight_decay": fluid.L1Decay(0.01)}),
]


def _stepped(cls, kwargs, steps, differentiable):
    def run(p0, g):
        p = p0.clone() if differentiable else p0.detach().clone().requires_grad_()
        opt = cls([p], differentiable=differentiable, **kwargs)
        for _ in range(steps):
            p.grad = g if differentiable else g.detach().clone()
            opt.step()
        return p

    return run


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("cls,kwargs", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_recorded_update_is_differentiable_and_gives_the_same_numbers(cls, kwargs, steps):
    gen = torch.Generator().manual_seed(7)
    p0 = torch.randn(5, dtype=torch.float64, generator=gen).requires_grad_()
    g = torch.randn(5, dtype=torch.float64, generator=gen).requires_grad_()
    recorded = _stepped(cls, kwargs, steps, differentiable=True)
    assert gradcheck(recorded, (p0, g))
    plain = _stepped(cls, kwargs, steps, differentiable=False)(p0, g)
    assert torch.equal(recorded(p0, g).detach(), plain.detach())
    assert plain.grad_fn is None  # without differentiable the update is never recorded


@pytest.mark.parametrize(
    "name,kwargs",
    [("SGD", {"lr": 0.1, "weight_decay": 0.0625}), ("Adagrad", {"lr": 0.1, "eps": 1e-10, "lr_decay": 0.25})],
    ids=["SGD", "Adagrad"],
)
def test_gradients_through_steps_equal_torchs(name, kwargs):
    """The gradient of a loss after two steps with respect to the starting parameters, the
    gradients themselves functions of the parameters, is torch's where the maths coincide
    (float64; a float32-exact decay coefficient). torch's SGD with momentum is left out: it
    detaches its buffer's first value (``clone(grad).detach()``), so its gradient misses that
    path, where torchfluid's is the whole derivative (gradcheck, above)."""
    grads = []
    for cls in (getattr(O, name), getattr(torch.optim, name)):
        p0 = torch.linspace(-1, 1, 6, dtype=torch.float64, requires_grad=True)
        p = p0.clone()
        opt = cls([p], differentiable=True, **kwargs)
        for _ in range(2):
            (p.grad,) = torch.autograd.grad((p.clone() ** 3).sum(), p, create_graph=True)  # saves the clone
            opt.step()
        (grad,) = torch.autograd.grad((p**2).sum(), p0)
        grads.append(grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-12, atol=1e-12)


def test_what_a_recorded_update_cannot_take_is_refused():
    p = torch.ones(3, dtype=torch.float64, requires_grad=True).clone()
    with pytest.raises(ValueError, match=r"`fused` does not support `differentiable`"):
        O.Adam([p], lr=0.1, differentiable=True, fused=True)
    with pytest.raises(ValueError, match=r"differentiable=True with multi_precision=True"):
        O.Adam([p], lr=0.1, differentiable=True, multi_precision=True)
    with pytest.raises(ValueError, match=r"parameter 0 is not a leaf tensor; only leaves can be optimized"):
        O.Adam([p], lr=0.1)
    with pytest.raises(ValueError, match=r"differentiable must be True or False, got 1"):
        O.Adam([torch.nn.Parameter(torch.ones(2))], lr=0.1, differentiable=1)


def test_static_mode_refuses_a_differentiable_optimizer():
    prog, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(prog, start):
        x = fluid.layers.data(name="x", shape=[3], dtype="float32")
        loss = fluid.layers.mean(fluid.layers.fc(input=x, size=1))
        with pytest.raises(ValueError, match=r"a program's optimize op runs outside autograd"):
            SGD(0.1, differentiable=True).minimize(loss)
