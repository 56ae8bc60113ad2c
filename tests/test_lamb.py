"""Paddle's LAMB (fluid ``LambOptimizer``, 2.x ``Lamb``) against a numpy re-implementation of
Paddle's ``lamb`` op: the trust ratio (and its 1 where a norm is 0, or where the weight decay
is 0, as Paddle's kernel without ``always_adapt``), weight decay and its exclusion by name,
Paddle's state keys, argument errors. Real Paddle's losses are checked in
``test_paddletest_losses.py``."""

import numpy as np
import pytest
import torch

from torchfluid.optimizer import Lamb


def _f32(v):
    return float(np.float32(v))


def _numpy_lamb(p, grads, *, lr, wd, b1=0.9, b2=0.999, eps=1e-6):
    m1, m2, b1p, b2p = np.zeros_like(p), np.zeros_like(p), b1, b2
    b1, b2, eps, wd = _f32(b1), _f32(b2), _f32(eps), _f32(wd)
    for g in grads:
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b2 * m2 + (1 - b2) * g * g
        r = (m1 / (1 - b1p)) / (np.sqrt(m2 / (1 - b2p)) + eps) + wd * p
        pn, rn = (np.linalg.norm(p), np.linalg.norm(r)) if wd > 0 else (0.0, 0.0)  # wd 0: Paddle skips the norms
        p = p - lr * (pn / rn if pn > 0 and rn > 0 else 1.0) * r
        b1p, b2p = b1p * b1, b2p * b2
    return p


def _grads(shape, n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(n)]


@pytest.mark.parametrize("wd", [0.01, 0.0, 0.5])
@pytest.mark.parametrize("start", ["spread", "zeros"])  # zeros: ||p|| = 0 on the first step, the ratio is 1
def test_matches_paddles_lamb_op(wd, start):
    p0 = np.linspace(-1, 1, 12).reshape(3, 4) if start == "spread" else np.zeros((3, 4))
    grads = _grads((3, 4), 6)
    p = torch.nn.Parameter(torch.tensor(p0))
    opt = Lamb(learning_rate=0.05, lamb_weight_decay=wd, parameters=[("w", p)])
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(p.detach().numpy(), _numpy_lamb(p0, grads, lr=0.05, wd=wd), rtol=1e-12, atol=1e-14)
    assert sorted(opt.state_dict()) == ["w_beta1_pow_acc_0", "w_beta2_pow_acc_0", "w_moment1_0", "w_moment2_0"]


def test_exclude_from_weight_decay_reads_the_parameter_name():
    w, b = (
        torch.nn.Parameter(torch.full((4,), 1.0, dtype=torch.float64)),
        torch.nn.Parameter(torch.full((2,), 2.0, dtype=torch.float64)),
    )
    seen = []
    opt = Lamb(
        learning_rate=0.1,
        lamb_weight_decay=0.3,
        parameters=[("fc.w_0", w), ("fc.b_0", b)],
        exclude_from_weight_decay_fn=lambda p: seen.append(p.name) or p.name.endswith("b_0"),
    )
    gw, gb = _grads((4,), 3, seed=1), _grads((2,), 3, seed=2)
    for a, c in zip(gw, gb, strict=True):
        w.grad, b.grad = torch.tensor(a), torch.tensor(c)
        opt.step()
    assert set(seen) == {"fc.w_0", "fc.b_0"}
    np.testing.assert_allclose(w.detach().numpy(), _numpy_lamb(np.full(4, 1.0), gw, lr=0.1, wd=0.3), rtol=1e-12)
    np.testing.assert_allclose(b.detach().numpy(), _numpy_lamb(np.full(2, 2.0), gb, lr=0.1, wd=0.0), rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"lamb_weight_decay": -0.1}, ValueError, r"lamb_weight_decay must be >= 0, got -0.1"),
        ({"beta1": 1.0}, ValueError, r"beta1 must be in \[0, 1\), got 1"),
        ({"epsilon": 0.0}, ValueError, r"epsilon must be > 0, got 0"),
        ({"exclude_from_weight_decay_fn": "bias"}, TypeError, r"exclude_from_weight_decay_fn must be a callable"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        Lamb(parameters=[torch.nn.Parameter(torch.zeros(2))], **kwargs)
