"""An install without numba: RMSProp runs the reference kernel with the same results,
says once how to get the fused kernel, ``fused=True`` names the missing package, and
the benchmark reports the fused row as unavailable with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest
import torch

import torchfluid as fluid
from torchfluid.kernels import flat, norms

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


@pytest.fixture
def no_numba(monkeypatch):
    """numba "missing" for this test: the lookups the package caches say so."""
    monkeypatch.setattr(flat, "_MISSING", {"cpu": "numba"})
    monkeypatch.setattr(flat, "_WARNED", set())
    monkeypatch.setattr(norms, "_fused_cpu", False)


def _train(fused, steps=4, clip=None):
    def make(named, fused):
        return fluid.optimizer.RMSProp(0.01, momentum=0.9, centered=True, fused=fused, grad_clip=clip, parameters=named)

    return _train_rule(make, fused, steps)


CLIPS = [None, fluid.clip.GradientClipByGlobalNorm(0.5), fluid.clip.GradientClipByValue(0.01)]


@pytest.mark.parametrize("clip", CLIPS, ids=["no clip", "global norm", "value"])
def test_reference_path_gives_the_same_parameters_and_warns_once(no_numba, clip):
    want = _train(False, clip=clip)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = _train(None, clip=clip)
        _train(None, clip=clip)  # a second optimizer: no second warning
    fast = [w for w in caught if issubclass(w.category, flat.FastPathWarning)]
    assert len(fast) == 1, [str(w.message) for w in caught]
    assert "numba is not installed" in str(fast[0].message)
    assert "pip install numba" in str(fast[0].message)
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_fused_true_names_the_missing_package(no_numba):
    with pytest.raises(ValueError) as err:
        _train(True, steps=1)
    assert "whose fused kernel needs numba, which is not installed; allowed: pip install numba" in str(err.value)


def test_fused_false_does_not_warn(no_numba):
    with warnings.catch_warnings():
        warnings.simplefilter("error", flat.FastPathWarning)
        _train(False)


def test_bench_reports_the_fused_row_as_unavailable(no_numba):
    from torchfluid.bench import bench_case, fused_unavailable

    assert fused_unavailable() == "numba is not installed (pip install numba)"
    r = bench_case("tiny", [(1000,)], False, reps=1)
    assert "torchfluid fused" not in r.ms
    assert [row[2:4] for row in r.rows() if row[2] == "torchfluid fused"] == [
        ["torchfluid fused", "unavailable: numba is not installed (pip install numba)"]
    ]


CODE = """
import json, sys, warnings
sys.modules["numba"] = None  # an install without numba (and so without llvmlite)
sys.modules["llvmlite"] = None
import torch, torchfluid as fluid
from torchfluid.kernels import flat
w = torch.nn.Parameter(torch.ones(3, 2))
opt = fluid.optimizer.RMSProp(0.1, momentum=0.9, parameters=[("w", w)])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for _ in range(2):
        w.grad = torch.full_like(w, 0.5)
        opt.step()
try:
    fluid.optimizer.RMSProp(0.1, fused=True, parameters=[("v", w)]).step()
    error = None
except ValueError as e:
    error = str(e)
print(json.dumps({"warnings": [str(c.message) for c in caught], "w": w.tolist(), "error": error,
                  "numba imported": sys.modules.get("numba") is not None}))
"""


def test_really_without_numba_in_a_fresh_process():
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(got["warnings"]) == 1 and "pip install numba" in got["warnings"][0]
    assert "needs numba, which is not installed" in got["error"]
    assert not got["numba imported"]
    # two steps of g = 0.5, rho 0.95, eps 1e-6, momentum 0.9, lr 0.1 from w = 1 (Paddle's maths)
    ms1 = 0.05 * 0.25
    m1 = 0.1 * 0.5 / (ms1 + 1e-6) ** 0.5
    ms2 = 0.95 * ms1 + 0.05 * 0.25
    m2 = 0.9 * m1 + 0.1 * 0.5 / (ms2 + 1e-6) ** 0.5
    assert [x for row in got["w"] for x in row] == pytest.approx([1 - m1 - m2] * 6, rel=1e-6)


def test_devices_without_a_fused_kernel_name_no_package():
    assert flat.missing("meta") is None
    assert not flat.fused_supported(torch.empty(3, device="meta"), warn=True)
    assert flat.missing("cpu") in (None, "numba") and flat.missing("cuda") in (None, "triton")


def _train_rule(make, fused, steps=3):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(13, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = make(list(model.named_parameters()), fused)
    x, y = torch.randn(16, 13), torch.randn(16, 1)
    for _ in range(steps):
        opt.clear_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


RULES = {
    "Momentum": lambda ps, fused: fluid.optimizer.Momentum(0.05, momentum=0.9, parameters=ps, fused=fused),
    "Adagrad": lambda ps, fused: fluid.optimizer.Adagrad(0.05, parameters=ps, fused=fused),
    "SGD": lambda ps, fused: fluid.optimizer.SGD(0.05, parameters=ps, fused=fused),
    "Adam": lambda ps, fused: fluid.optimizer.Adam(0.05, parameters=ps, fused=fused),
}


@pytest.mark.parametrize("name", list(RULES))
def test_momentum_adagrad_sgd_and_adam_fall_back_with_the_same_parameters(no_numba, name):
    want = _train_rule(RULES[name], False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = _train_rule(RULES[name], None)
    fast = [w for w in caught if issubclass(w.category, flat.FastPathWarning)]
    assert len(fast) == 1 and "pip install numba" in str(fast[0].message)
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    with pytest.raises(ValueError, match="whose fused kernel needs numba, which is not installed"):
        _train_rule(RULES[name], True, steps=1)
