"""One-step checks against float64 numpy re-implementations, like Paddle's test_rmsprop_op,
test_sgd_op and test_adam_op (state set through set_state_dict)."""

import numpy as np
import pytest
import torch

import torchfluid as fluid

SHAPE = (128, 320)


def rmsprop_numpy(p, g, ms, mg, mom, *, lr, rho, eps, momentum, centered):
    ms = rho * ms + (1 - rho) * g * g
    if centered:
        mg = rho * mg + (1 - rho) * g
        den = np.sqrt(ms - mg * mg + eps)
    else:
        den = np.sqrt(ms + eps)
    mom = momentum * mom + lr * g / den
    return p - mom, ms, mg, mom


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rmsprop_one_step(centered, momentum, dtype):
    rng = np.random.default_rng(0)
    p0 = rng.uniform(-1, 1, SHAPE)
    g = rng.uniform(-1, 1, SHAPE)
    ms0 = rng.uniform(1, 2, SHAPE)
    mg0 = rng.uniform(-0.5, 0.5, SHAPE) if centered else np.zeros(SHAPE)
    mom0 = rng.uniform(0, 1, SHAPE) if momentum else np.zeros(SHAPE)
    npdt = np.float32 if dtype == torch.float32 else np.float64
    p0, g, ms0, mg0, mom0 = (a.astype(npdt) for a in (p0, g, ms0, mg0, mom0))
    param = torch.nn.Parameter(torch.tensor(p0))
    opt = fluid.optimizer.RMSProp(
        learning_rate=0.01, rho=0.9, epsilon=1e-6, momentum=momentum, centered=centered, parameters=[("w", param)]
    )
    state = {"w_mean_square_0": ms0}
    if centered:
        state["w_mean_grad_0"] = mg0
    if momentum:
        state["w_momentum_0"] = mom0
    opt.set_state_dict(state)
    param.grad = torch.tensor(g)
    opt.step()
    want = rmsprop_numpy(
        p0.astype(np.float64),
        g.astype(np.float64),
        ms0.astype(np.float64),
        mg0.astype(np.float64),
        mom0.astype(np.float64),
        lr=0.01,
        rho=float(np.float32(0.9)),  # Paddle's float32 attributes (the same for float32 parameters)
        eps=float(np.float32(1e-6)),
        momentum=float(np.float32(momentum)),
        centered=centered,
    )
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-14}
    np.testing.assert_allclose(param.detach().numpy(), want[0], **tol)
    sd = opt.state_dict()
    np.testing.assert_allclose(sd["w_mean_square_0"].numpy(), want[1], **tol)
    if centered:
        np.testing.assert_allclose(sd["w_mean_grad_0"].numpy(), want[2], **tol)
    if momentum:
        np.testing.assert_allclose(sd["w_momentum_0"].numpy(), want[3], **tol)


def test_sgd_one_step():
    rng = np.random.default_rng(1)
    p0 = rng.uniform(-1, 1, SHAPE).astype(np.float32)
    g = rng.uniform(-1, 1, SHAPE).astype(np.float32)
    param = torch.nn.Parameter(torch.tensor(p0))
    opt = fluid.optimizer.SGD(learning_rate=0.1, parameter_list=[param])
    param.grad = torch.tensor(g)
    opt.step()
    np.testing.assert_allclose(param.detach().numpy(), p0 - 0.1 * g, rtol=1e-6, atol=1e-7)
    assert opt.state_dict() == {}  # SGD keeps no state; unchanged hyper-parameters are not saved


def test_adam_one_step_paddle_formula():
    rng = np.random.default_rng(2)
    p0 = rng.uniform(-1, 1, SHAPE)
    g = rng.uniform(-1, 1, SHAPE)
    m1 = rng.uniform(-1, 1, SHAPE)
    m2 = rng.random(SHAPE)
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.004
    b1p, b2p = b1**10, b2**10
    b1, b2, eps = (float(np.float32(v)) for v in (b1, b2, eps))  # Paddle's float32 attributes (float64 params)
    param = torch.nn.Parameter(torch.tensor(p0))
    opt = fluid.optimizer.Adam(learning_rate=lr, parameters=[("x", param)])
    opt.set_state_dict(
        {
            "x_moment1_0": m1,
            "x_moment2_0": m2,
            "x_beta1_pow_acc_0": np.array([b1p]),
            "x_beta2_pow_acc_0": np.array([b2p]),
        }
    )
    param.grad = torch.tensor(g)
    opt.step()
    m1n = b1 * m1 + (1 - b1) * g
    m2n = b2 * m2 + (1 - b2) * g * g
    lr_t = lr * np.sqrt(1 - b2p) / (1 - b1p)
    want = p0 - lr_t * (m1n / (np.sqrt(m2n) + eps * np.sqrt(1 - b2p)))
    np.testing.assert_allclose(param.detach().numpy(), want, rtol=1e-12, atol=1e-14)
    sd = opt.state_dict()
    np.testing.assert_allclose(sd["x_beta1_pow_acc_0"].numpy(), [b1p * b1])
    np.testing.assert_allclose(sd["x_beta2_pow_acc_0"].numpy(), [b2p * b2])


def test_adam_matches_torch_adam_up_to_eps_placement():
    """With eps -> 0 in both, Paddle's Adam and torch's Adam coincide (betas that are
    float32 numbers, which Paddle's float32 attributes keep as they are)."""
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(7, 5, dtype=torch.float64))
    b = torch.nn.Parameter(a.detach().clone())
    b1, b2 = float(np.float32(0.9)), float(np.float32(0.999))
    ours = fluid.optimizer.Adam(learning_rate=0.01, beta1=b1, beta2=b2, epsilon=1e-300, parameters=[a])
    ref = torch.optim.Adam([b], lr=0.01, betas=(b1, b2), eps=1e-300)
    for _ in range(5):
        g = torch.randn(7, 5, dtype=torch.float64)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
