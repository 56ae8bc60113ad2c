"""Paddle's Adamax and Adadelta (fluid ``AdamaxOptimizer`` / ``AdadeltaOptimizer``, 2.x
``Adamax`` / ``Adadelta``): against numpy re-implementations of Paddle's ops and, for
Adadelta, ``torch.optim.Adadelta`` (the same maths); Paddle's state keys; argument errors.
Real Paddle's losses are checked in ``test_paddletest_losses.py``."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid.optimizer import Adadelta, Adamax


def _f32(v):
    return float(np.float32(v))


def _grads(shape, n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(n)]


def _numpy_adamax(p, grads, *, lr, b1, b2, eps):
    """Paddle's adamax op then its scale op, float64, the attributes' float32 values."""
    m, u, b1p = np.zeros_like(p), np.zeros_like(p), b1
    b1, b2, eps = _f32(b1), _f32(b2), _f32(eps)
    for g in grads:
        m = b1 * m + (1 - b1) * g
        u = np.maximum(np.abs(g), b2 * u + eps)
        p = p - lr / (1 - b1p) * (m / u)
        b1p = b1p * b1
    return p


@pytest.mark.parametrize("b1, b2, eps", [(0.9, 0.999, 1e-8), (0.5, 0.8, 1e-3), (0.0, 0.0, 0.5)])
def test_adamax_matches_paddles_op(b1, b2, eps):
    p0 = np.linspace(-1, 1, 15).reshape(3, 5)
    grads = _grads((3, 5), 7)
    p = torch.nn.Parameter(torch.tensor(p0))
    opt = Adamax(learning_rate=0.02, beta1=b1, beta2=b2, epsilon=eps, parameters=[("w", p)])
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    want = _numpy_adamax(p0, grads, lr=0.02, b1=b1, b2=b2, eps=eps)
    np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-13, atol=1e-15)
    assert sorted(opt.state_dict()) == ["w_beta1_pow_acc_0", "w_inf_norm_0", "w_moment_0"]


@pytest.mark.parametrize("rho, eps, lr", [(0.95, 1e-6, 1.0), (0.5, 1e-3, 0.1), (0.0, 1e-6, 2.0)])
def test_adadelta_equals_torch_adadelta(rho, eps, lr):
    """float64, torch given the float32 values Paddle's attributes take."""
    p0 = torch.linspace(-2, 2, 24, dtype=torch.float64).reshape(4, 6)
    a, b = torch.nn.Parameter(p0.clone()), torch.nn.Parameter(p0.clone())
    ours = Adadelta(learning_rate=lr, rho=rho, epsilon=eps, parameters=[("w", a)])
    theirs = torch.optim.Adadelta([b], lr=lr, rho=_f32(rho), eps=_f32(eps))
    for g in _grads((4, 6), 6, seed=3):
        a.grad, b.grad = torch.tensor(g), torch.tensor(g)
        ours.step()
        theirs.step()
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    assert sorted(ours.state_dict()) == ["w__avg_squared_grad_0", "w__avg_squared_update_0"]  # Paddle's keys


@pytest.mark.parametrize("fused", [False, None], ids=["reference", "fused"])
def test_adadelta_update_takes_two_square_roots_as_paddles_kernel(fused):
    """Paddle's kernel (``adadelta_kernel_impl.h``) and torch divide two square roots,
    ``sqrt(E[u^2] + eps) / sqrt(E[g^2] + eps) * g``, not the root of their ratio; with
    ``rho = 1`` and ``lr = 1`` nothing else rounds, so float32 bits show which was taken."""
    rng = np.random.default_rng(11)
    p0 = rng.uniform(-1, 1, 4096).astype(np.float32)
    g = rng.uniform(-1, 1, 4096).astype(np.float32)
    asg = rng.random(4096, dtype=np.float32)
    asu = rng.random(4096, dtype=np.float32)
    eps = np.float32(1e-6)
    p = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    opt = Adadelta(learning_rate=1.0, rho=1.0, epsilon=1e-6, parameters=[("w", p)], fused=fused)
    sd = opt.state_dict()
    sd["w__avg_squared_grad_0"] = torch.from_numpy(asg.copy())
    sd["w__avg_squared_update_0"] = torch.from_numpy(asu.copy())
    opt.set_state_dict(sd)
    p.grad = torch.from_numpy(g.copy())
    opt.step()
    two_roots = p0 - (np.sqrt(asu + eps) / np.sqrt(asg + eps)) * g
    one_root = p0 - np.sqrt((asu + eps) / (asg + eps)) * g
    assert not np.array_equal(two_roots, one_root)  # the case tells them apart
    np.testing.assert_array_equal(p.detach().numpy(), two_roots)


def test_fluid_spellings_and_state_round_trip():
    p = torch.nn.Parameter(torch.ones(3))
    for cls, kwargs in ((fluid.optimizer.AdamaxOptimizer, {}), (fluid.optimizer.AdadeltaOptimizer, {"rho": 0.9})):
        opt = cls(0.1, parameter_list=[p], **kwargs)
        p.grad = torch.full((3,), 0.5)
        opt.step()
        twin = cls(0.1, parameter_list=[p], **kwargs)
        twin.set_state_dict(opt.state_dict())
        assert all(torch.equal(v, twin.state_dict()[k]) for k, v in opt.state_dict().items())
    assert fluid.optimizer.Adamax is fluid.optimizer.AdamaxOptimizer and Adamax(0.1, parameters=[p])._beta2 == 0.999
    assert Adadelta(parameters=[p])._rho == 0.95


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda ps: Adamax(beta1=1.0, parameters=ps), r"beta1 must be in \[0, 1\), got 1"),
        (lambda ps: Adamax(beta2=-0.1, parameters=ps), r"beta2 must be in \[0, 1\), got -0.1"),
        (lambda ps: Adamax(epsilon=0.0, parameters=ps), r"epsilon must be > 0, got 0"),
        (lambda ps: Adadelta(rho=1.5, parameters=ps), r"rho must be in \[0, 1\], got 1.5"),
        (lambda ps: Adadelta(epsilon=-1.0, parameters=ps), r"epsilon must be > 0, got -1"),
        (lambda ps: Adadelta(parameters=[{"params": ps, "rho": 2.0}]), r"rho must be in \[0, 1\], got 2"),
    ],
)
def test_bad_arguments_name_the_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make([torch.nn.Parameter(torch.zeros(2))])
