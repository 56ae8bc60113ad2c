"""Where Paddle's CPU optimizer kernels round, pinned in float32 bits on cases where the
other natural orders give other bits (each case asserts that it tells them apart).

* ``1 - beta`` (Adam, AdamW, Adamax, LAMB, Adadelta's ``1 - rho``): Paddle computes
  ``static_cast<T>(1) - beta`` with ``beta`` its float32 attribute, so for float32
  ``1 - 0.999`` is ``1 - float32(0.999) = 0.00099998713``, not ``float32(0.001)``
  (``adam_kernel.cc`` / jit ``adam``, ``adamax_kernel_impl.h``, ``lamb_functors.h``,
  ``adadelta_kernel_impl.h``);
* LAMB's second moment takes ``((1 - beta2) * g) * g``, as Adam's, not ``(1 - beta2) * (g * g)``
  (``lamb_functors.h``);
* Adam's ``lr_t = lr * (sqrt(1 - beta2_pow) / (1 - beta1_pow))``: the ratio is rounded
  before the learning rate multiplies it (``adam_kernel.cc``);
* LAMB takes the trust ratio only where ``weight_decay > 0`` (or ``always_adapt``): with a
  weight decay of 0 Paddle's kernel computes no norm and the ratio is 1 (``lamb_kernel_impl.h``).
"""

import numpy as np
import pytest
import torch

from torchfluid.kernels.lamb import lamb_
from torchfluid.optimizer import Adadelta, Adam, Adamax, AdamW, Lamb

f32 = np.float32
N = 4096


def _grad(seed=3):
    return np.random.default_rng(seed).uniform(-1, 1, N).astype(f32)


def _paddle_m1(g, beta1):
    """``beta1 * 0 + (1 - beta1) * g`` with ``1 - beta1`` in float32 (a zero moment)."""
    return (f32(1) - f32(beta1)) * g


def _paddle_m2(g, beta2):
    """``beta2 * 0 + ((1 - beta2) * g) * g``, each product rounded in float32."""
    return ((f32(1) - f32(beta2)) * g) * g


def _old_m1(g, beta1):
    return f32(1.0 - beta1) * g  # 1 - beta in float64, then rounded


def _old_m2(g, beta2):
    return (f32(1.0 - beta2) * g) * g


def _make(name, fused):
    p = torch.nn.Parameter(torch.from_numpy(np.random.default_rng(5).uniform(-1, 1, N).astype(f32)))
    kw = {"parameters": [("w", p)]} | ({} if name == "Lamb" else {"fused": fused})
    opt = {
        "Adam": lambda: Adam(learning_rate=0.01, beta1=0.9, beta2=0.999, **kw),
        "AdamW": lambda: AdamW(learning_rate=0.01, beta1=0.9, beta2=0.999, weight_decay=0.1, **kw),
        "Adamax": lambda: Adamax(learning_rate=0.01, beta1=0.9, beta2=0.999, **kw),
        "Lamb": lambda: Lamb(learning_rate=0.01, beta1=0.9, beta2=0.999, lamb_weight_decay=0.01, **kw),
        "Adadelta": lambda: Adadelta(learning_rate=0.01, rho=0.95, **kw),
    }[name]()
    return p, opt


# (optimizer, state key, Paddle's value from g, the earlier value from g)
MOMENT_CASES = [
    ("Adam", "w_moment1_0", lambda g: _paddle_m1(g, 0.9), lambda g: _old_m1(g, 0.9)),
    ("Adam", "w_moment2_0", lambda g: _paddle_m2(g, 0.999), lambda g: _old_m2(g, 0.999)),
    ("AdamW", "w_moment1_0", lambda g: _paddle_m1(g, 0.9), lambda g: _old_m1(g, 0.9)),
    ("AdamW", "w_moment2_0", lambda g: _paddle_m2(g, 0.999), lambda g: _old_m2(g, 0.999)),
    ("Adamax", "w_moment_0", lambda g: _paddle_m1(g, 0.9), lambda g: _old_m1(g, 0.9)),
    ("Lamb", "w_moment1_0", lambda g: _paddle_m1(g, 0.9), lambda g: _old_m1(g, 0.9)),
    # the association alone: LAMB took (1 - beta2) * (g * g)
    ("Lamb", "w_moment2_0", lambda g: _paddle_m2(g, 0.999), lambda g: (g * g) * (f32(1) - f32(0.999))),
    # Paddle's (1 - rho) * g.square(): g * g rounded first
    ("Adadelta", "w__avg_squared_grad_0", lambda g: (g * g) * (f32(1) - f32(0.95)), lambda g: (g * g) * f32(0.05)),
]


@pytest.mark.parametrize("fused", [False, True], ids=["reference", "fused"])
@pytest.mark.parametrize("name, key, paddle, old", MOMENT_CASES, ids=[f"{c[0]}-{c[1]}" for c in MOMENT_CASES])
def test_one_minus_beta_is_rounded_in_float32_as_paddles_kernels(name, key, paddle, old, fused):
    """First step from zero moments: the moment is one product (two for ``m2``), so its
    bits show how ``1 - beta`` was rounded (and, for LAMB's ``m2``, the association)."""
    if fused and name == "Lamb":
        pytest.skip("LAMB has no fused kernel")
    p, opt = _make(name, fused)
    g = _grad()
    p.grad = torch.from_numpy(g.copy())
    opt.step()
    want, before = paddle(g), old(g)
    assert not np.array_equal(want, before)  # the case tells the two roundings apart
    np.testing.assert_array_equal(opt.state_dict()[key].numpy(), want)


@pytest.mark.parametrize("fused", [False, True], ids=["reference", "fused"])
def test_adam_lr_t_rounds_the_bias_ratio_before_the_learning_rate(fused):
    """``lr_t = lr * (sqrt(1 - b2p) / (1 - b1p))`` (Paddle's ``adam_kernel.cc``), not
    ``(sqrt(1 - b2p) * lr) / (1 - b1p)``. With ``g = 0`` the moments are only scaled, and
    with ``p = 0`` the update is ``-(lr_t * (m1 / (sqrt(m2) + eps_t)))``: nothing else rounds
    differently, so the parameter's bits show ``lr_t``."""
    rng = np.random.default_rng(7)
    m1 = rng.uniform(-1, 1, N).astype(f32)
    m2 = rng.random(N, dtype=f32)
    b1, b2, lr, eps = f32(0.9), f32(0.999), f32(0.01), f32(1e-8)
    b1p, b2p = f32(b1 * b1), f32(b2 * b2)  # the powers before the second update
    p = torch.nn.Parameter(torch.zeros(N))
    opt = Adam(learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8, parameters=[("w", p)], fused=fused)
    sd = opt.state_dict()
    sd.update(
        w_moment1_0=torch.from_numpy(m1.copy()),
        w_moment2_0=torch.from_numpy(m2.copy()),
        w_beta1_pow_acc_0=torch.tensor([b1p]),
        w_beta2_pow_acc_0=torch.tensor([b2p]),
    )
    opt.set_state_dict(sd)
    p.grad = torch.zeros(N)
    opt.step()
    correction = np.sqrt(f32(1) - b2p)
    lr_t = lr * (correction / (f32(1) - b1p))
    lr_t_before = (correction * lr) / (f32(1) - b1p)
    assert lr_t != lr_t_before  # the case tells them apart
    q = (m1 * b1) / (np.sqrt(m2 * b2) + correction * eps)
    np.testing.assert_array_equal(p.detach().numpy(), -(q * lr_t))
    assert not np.array_equal(-(q * lr_t), -(q * lr_t_before))


F32_POWERS = (float(f32(0.9)), float(f32(0.999)))  # the powers of float32 betas before the first step


def _lamb_numpy(p, g, lr, wd, adapt, powers=F32_POWERS):
    """One LAMB step in float64 from zero moments and the given powers (the betas are
    float32 attributes)."""
    b1, b2, eps = float(f32(0.9)), float(f32(0.999)), float(f32(1e-6))
    m1, m2 = (1 - b1) * g, (1 - b2) * g * g
    r = (m1 / (1 - powers[0])) / (np.sqrt(m2 / (1 - powers[1])) + eps) + wd * p
    ratio = np.linalg.norm(p) / np.linalg.norm(r) if adapt else 1.0
    return p - lr * ratio * r


@pytest.mark.parametrize("always_adapt", [False, True])
def test_lamb_with_no_weight_decay_takes_no_trust_ratio_unless_always_adapt(always_adapt):
    """Paddle's kernel computes the norms only ``if (weight_decay > 0 || always_adapt)``;
    otherwise both stay 0 and the ratio is 1: the parameter moves by ``lr * r``."""
    rng = np.random.default_rng(9)
    p0, g = rng.uniform(-1, 1, 64), rng.uniform(-1, 1, 64)
    p = torch.tensor(p0)
    state = [torch.zeros(64, dtype=torch.float64) for _ in range(2)]
    powers = [torch.tensor([0.9], dtype=torch.float64), torch.tensor([0.999], dtype=torch.float64)]
    powers = [t.float().double() for t in powers]  # Paddle's powers start at the float32 betas
    lamb_(p, torch.tensor(g), *state, *powers, lr=0.1, weight_decay=0.0, always_adapt=always_adapt)
    want = _lamb_numpy(p0, g, 0.1, 0.0, adapt=always_adapt)
    other = _lamb_numpy(p0, g, 0.1, 0.0, adapt=not always_adapt)
    assert not np.allclose(want, other, rtol=1e-6)
    np.testing.assert_allclose(p.numpy(), want, rtol=1e-12, atol=1e-14)


def test_lamb_optimizer_with_no_weight_decay_moves_by_lr_times_r():
    """``LambOptimizer(lamb_weight_decay=0)`` (and a parameter excluded from the decay)
    passes no ``always_adapt``: its step is ``lr * r``, as Paddle's op with the attribute's
    default."""
    rng = np.random.default_rng(4)
    p0, g = rng.uniform(-1, 1, 32), rng.uniform(-1, 1, 32)
    p = torch.nn.Parameter(torch.tensor(p0))
    opt = Lamb(learning_rate=0.1, lamb_weight_decay=0.0, parameters=[("w", p)])
    p.grad = torch.tensor(g)
    opt.step()
    want = _lamb_numpy(p0, g, 0.1, 0.0, adapt=False, powers=(0.9, 0.999))  # a float64 parameter's powers start there
    np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("fused", [False, None], ids=["reference", "fused"])
def test_adamw_decays_as_paddles_cpu_kernel(fused):
    """Paddle's CPU ``adamw`` (jit ``AdamW``) decays ``p - ((lr * lr_ratio) * coeff) * p``, each
    product rounded; its GPU kernel's ``p * (1 - lr * coeff)`` gives other bits. With beta1 = 0
    and a zero gradient the Adam step moves nothing (its moments stay 0), so the parameter
    after one step is the decay alone."""
    p0 = np.random.default_rng(7).uniform(-4, 4, N).astype(f32)
    lr, coeff = f32(0.3), f32(0.7)
    paddle_cpu = p0 - (lr * coeff) * p0
    gpu_form = p0 * (f32(1) - lr * coeff)
    assert not np.array_equal(paddle_cpu, gpu_form)  # the case tells them apart
    p = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    opt = AdamW(learning_rate=0.3, beta1=0.0, weight_decay=0.7, parameters=[("w", p)], fused=fused)
    p.grad = torch.zeros(N)
    opt.step()
    np.testing.assert_array_equal(p.detach().numpy(), paddle_cpu)


def test_lamb_optimizers_always_adapt_takes_the_trust_ratio_with_no_weight_decay():
    """Paddle 2.6's ``Lamb(always_adapt=True)``: the trust ratio also where the weight decay
    is 0, in dygraph and in a static program alike; a non-bool is refused by name."""
    rng = np.random.default_rng(4)
    p0, g = rng.uniform(-1, 1, 32), rng.uniform(-1, 1, 32)
    p = torch.nn.Parameter(torch.tensor(p0))
    opt = Lamb(learning_rate=0.1, lamb_weight_decay=0.0, parameters=[("w", p)], always_adapt=True)
    p.grad = torch.tensor(g)
    opt.step()
    want = _lamb_numpy(p0, g, 0.1, 0.0, adapt=True, powers=(0.9, 0.999))
    assert not np.allclose(want, _lamb_numpy(p0, g, 0.1, 0.0, adapt=False, powers=(0.9, 0.999)))
    np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-12)
    with pytest.raises(TypeError, match="always_adapt must be True or False, got 1"):
        Lamb(learning_rate=0.1, parameters=[("w", p)], always_adapt=1)
