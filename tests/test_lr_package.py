"""One learning-rate package: the public names lead to it, and the three families share its formulas and checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torchfluid as fluid
import torchfluid.layers as L
from torchfluid.dygraph import learning_rate_scheduler as dygraph_lr
from torchfluid.lr import fluid as lr_fluid
from torchfluid.lr import formulas, scheduler
from torchfluid.optimizer import lr as optimizer_lr
from torchfluid.optimizer import lr_scheduler as optimizer_lr_scheduler


@pytest.mark.parametrize(
    "module, home",
    [
        (dygraph_lr, lr_fluid),
        (fluid.dygraph, lr_fluid),
        (optimizer_lr, scheduler),
        (optimizer_lr_scheduler, scheduler),
    ],
)
def test_public_names_are_the_package_classes(module, home):
    names = [n for n in module.__all__ if hasattr(home, n)] if module is fluid.dygraph else module.__all__
    assert names
    for name in names:
        assert getattr(module, name) is getattr(home, name), name


def test_same_class_names_are_different_families():
    assert fluid.dygraph.ExponentialDecay is lr_fluid.ExponentialDecay
    assert optimizer_lr.ExponentialDecay is scheduler.ExponentialDecay
    assert not issubclass(lr_fluid.ExponentialDecay, scheduler.LRScheduler)
    assert fluid.dygraph.ExponentialDecay(0.1, 2, 0.5)() == pytest.approx(0.1)  # fluid: (lr, decay_steps, rate)
    assert optimizer_lr.ExponentialDecay(0.1, 0.5)() == pytest.approx(0.1)  # 2.x: (lr, gamma)


LAYERS = [
    (lambda: L.piecewise_decay([2, 4], [0.3, 0.2, 0.1]), lr_fluid.PiecewiseDecay),
    (lambda: L.exponential_decay(0.1, 3, 0.5), lr_fluid.ExponentialDecay),
    (lambda: L.natural_exp_decay(0.1, 3, 0.5, staircase=True), lr_fluid.NaturalExpDecay),
    (lambda: L.inverse_time_decay(0.1, 3, 0.5), lr_fluid.InverseTimeDecay),
    (lambda: L.polynomial_decay(0.1, 4, 0.01, power=2.0, cycle=True), lr_fluid.PolynomialDecay),
    (lambda: L.cosine_decay(0.1, 2, 3), lr_fluid.CosineDecay),
    (lambda: L.noam_decay(16, 3), lr_fluid.NoamDecay),
    (lambda: L.linear_lr_warmup(0.1, 3, 0.0, 0.1), lr_fluid.LinearLrWarmup),
]


@pytest.mark.parametrize("make, cls", LAYERS)
def test_static_layer_is_the_fluid_decay_formula(make, cls):
    with fluid.dygraph.guard():
        decay = make()
    assert type(decay) is cls
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        make()
    op = [o for o in main.global_block().ops if o.type == "lr_schedule"][0]
    assert getattr(formulas, op.attrs["schedule"]) is cls.formula
    assert op.attrs["params"] == {
        k: (list(map(float, v)) if isinstance(v, list) else v) for k, v in decay.formula_params().items()
    }


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: L.exponential_decay(0.1, 0, 0.5), "decay_steps must be > 0, got 0"),
        (lambda: L.exponential_decay(-0.1, 3, 0.5), "learning_rate must be >= 0, got -0.1"),
        (lambda: L.piecewise_decay([4, 2], [0.1, 0.2, 0.3]), "boundaries must be strictly increasing"),
        (lambda: L.piecewise_decay([2], [0.1]), r"values must have len\(boundaries\) \+ 1 = 2 elements"),
        (lambda: L.noam_decay(0, 3), "d_model must be > 0, got 0"),
        (lambda: L.linear_lr_warmup(0.1, 3, 0.2, 0.1), "end_lr must be > start_lr, got end_lr=0.1, start_lr=0.2"),
        (lambda: L.cosine_decay(0.1, 2, 0), "epochs must be > 0, got 0"),
    ],
)
@pytest.mark.parametrize("mode", ["static", "dygraph"])
def test_static_and_dygraph_layers_reject_the_same_arguments(make, message, mode):
    main = fluid.Program()
    with pytest.raises(ValueError, match=message):
        if mode == "dygraph":
            with fluid.dygraph.guard():
                make()
        else:
            with fluid.program_guard(main, fluid.Program()):
                make()
    assert not main.global_block().ops  # nothing was appended


@pytest.mark.parametrize(
    "dtype, expected",
    [
        ("float32", "float32"),
        ("float64", "float64"),
        ("double", "float64"),
        (np.float32, "float32"),
        (torch.float64, "float64"),
    ],
)
def test_fluid_decay_dtype_spellings(dtype, expected):
    decay = lr_fluid.ExponentialDecay(0.1, 3, 0.5, dtype=dtype)
    assert decay.dtype == expected
    assert decay() == (float(np.float32(0.1)) if expected == "float32" else 0.1)


@pytest.mark.parametrize("dtype", ["int8", "float16", torch.int64, "float128", 3])
def test_fluid_decay_rejects_other_dtypes(dtype):
    with pytest.raises(ValueError, match=r"dtype must be one of \('float32', 'float64'\)"):
        lr_fluid.ExponentialDecay(0.1, 3, 0.5, dtype=dtype)
