"""Every case of real Paddle 2.6/3.3 RMSProp runs (../shared/reference), reproduced on
plain torch parameters: params and accumulators after each of 5 steps."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid.clip import ClipGradByGlobalNorm, ClipGradByNorm, ClipGradByValue
from torchfluid.regularizer import L1Decay, L2Decay

from .conftest import load_reference

DATA = load_reference("paddle_rmsprop_trajectories.json")
CASES = DATA["cases"]
RTOL, ATOL = 1e-5, 1e-6


def make_optimizer(config, named_params, fused=None):
    kwargs = {
        "learning_rate": config["lr"],
        "rho": config["rho"],
        "epsilon": config["epsilon"],
        "momentum": config["momentum"],
        "centered": config["centered"],
        "fused": fused,
    }
    wd = config.get("weight_decay")
    if wd is not None:
        kind, coeff = wd
        kwargs["weight_decay"] = {"float": coeff, "L2Decay": L2Decay(coeff), "L1Decay": L1Decay(coeff)}[kind]
    clip = config.get("grad_clip")
    if clip is not None:
        kind, *args = clip
        kwargs["grad_clip"] = {
            "ClipGradByValue": lambda: ClipGradByValue(args[0], args[1]),
            "ClipGradByNorm": lambda: ClipGradByNorm(args[0]),
            "ClipGradByGlobalNorm": lambda: ClipGradByGlobalNorm(args[0]),
        }[kind]()
    return fluid.optimizer.RMSProp(parameters=named_params, **kwargs)


def run_case(case, runner, fused=None):
    names = case["param_names"]
    params = {k: torch.nn.Parameter(torch.tensor(v, dtype=torch.float32)) for k, v in case["initial_params"].items()}
    opt = make_optimizer(case["config"], [(names[k], p) for k, p in params.items()], fused)
    for t, (grads, record) in enumerate(zip(case["grads_fed"], case["steps"], strict=False)):
        assert opt.get_lr() == pytest.approx(record["lr_reported_by_get_lr_before_step"])
        before = {k: p.detach().clone() for k, p in params.items()}
        for k, p in params.items():
            p.grad = None if grads[k] is None else torch.tensor(grads[k], dtype=torch.float32)
        runner(opt)
        opt.clear_grad()
        sd = opt.state_dict()
        for k, p in params.items():
            np.testing.assert_allclose(
                p.detach().numpy(),
                record["params"][k],
                rtol=RTOL,
                atol=ATOL,
                err_msg=f"{case['name']} step {t} param {k}",
            )
            ms = sd[f"{names[k]}_mean_square_0"]
            np.testing.assert_allclose(ms.numpy(), record["mean_square"][k], rtol=RTOL, atol=ATOL)
            cfg = case["config"]
            if cfg["centered"]:
                np.testing.assert_allclose(
                    sd[f"{names[k]}_mean_grad_0"].numpy(), record["mean_grad"][k], rtol=RTOL, atol=ATOL
                )
            else:  # Paddle keeps an all-zero mean_grad; we keep none
                assert not np.any(record["mean_grad"][k])
                assert f"{names[k]}_mean_grad_0" not in sd
            if cfg["momentum"] != 0:
                np.testing.assert_allclose(
                    sd[f"{names[k]}_momentum_0"].numpy(), record["momentum"][k], rtol=RTOL, atol=ATOL
                )
            else:  # Paddle's velocity at momentum 0 is exactly the last update; we keep none
                np.testing.assert_allclose(
                    (before[k] - p.detach()).numpy(), record["momentum"][k], rtol=1e-4, atol=1e-6
                )
                assert f"{names[k]}_momentum_0" not in sd


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_paddle_trajectory_step(case):
    run_case(case, lambda opt: opt.step())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_paddle_trajectory_minimize(case):
    run_case(case, lambda opt: opt.minimize(None))


@pytest.mark.parametrize("fused", [False, True], ids=["reference_kernel", "fused_kernel"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_paddle_trajectory_each_kernel(case, fused):
    """The same runs forced through each update path (fused=True: no fallback)."""
    run_case(case, lambda opt: opt.step(), fused=fused)


def test_reference_covers_the_grid():
    names = {c["name"] for c in CASES}
    assert len(CASES) == 14 and "clip_by_global_norm_0.5" in names and "l1decay_0.01" in names


@pytest.mark.parametrize("fused", [False, True], ids=["reference_kernel", "fused_kernel"])
def test_the_averages_are_paddles_bit_for_bit(fused):
    """Paddle's CPU kernel rounds ``rho * ms + ((1 - rho) * g) * g`` (``1 - rho`` in float32,
    products then sums) and ``rho * mg + (1 - rho) * g``; so do both kernels here: the
    averages equal real Paddle's in every element of every case and step (clips and decays
    included). The parameters differ from Paddle's in the last bit or two for a few
    elements, by Paddle's approximate vectorised square root (see the kernel's docstring)."""
    same = total = 0
    for case in CASES:
        names = case["param_names"]
        params = {
            k: torch.nn.Parameter(torch.tensor(v, dtype=torch.float32)) for k, v in case["initial_params"].items()
        }
        opt = make_optimizer(case["config"], [(names[k], p) for k, p in params.items()], fused)
        for grads, record in zip(case["grads_fed"], case["steps"], strict=False):
            for k, p in params.items():
                p.grad = None if grads[k] is None else torch.tensor(grads[k], dtype=torch.float32)
            opt.step()
            opt.clear_grad()
            sd = opt.state_dict()
            for k, p in params.items():
                ms = sd[f"{names[k]}_mean_square_0"].numpy()
                np.testing.assert_array_equal(
                    ms, np.asarray(record["mean_square"][k], np.float32), err_msg=case["name"]
                )
                if case["config"]["centered"]:
                    mg = sd[f"{names[k]}_mean_grad_0"].numpy()
                    np.testing.assert_array_equal(mg, np.asarray(record["mean_grad"][k], np.float32))
                eq = p.detach().numpy() == np.asarray(record["params"][k], np.float32)
                same, total = same + int(eq.sum()), total + eq.size
    assert same / total > 0.95, (same, total)  # the parameters: all but the square roots' last bits
