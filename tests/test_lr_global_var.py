"""The learning-rate variable of an optimizer's update (Paddle's ``optimizer._global_learning_rate()``),
a 2.x scheduler driving it across ``Program.clone()``, and Paddle 2.0-rc's scheduler names on
``fluid.optimizer``; every value checked against the numpy references of ``lr_refs``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torchfluid as fluid
import torchfluid.optimizer as opt_mod
from torchfluid.optimizer import lr as lr2
from torchfluid.optimizer import lr_scheduler as lr_rc

from . import lr_refs as R

# (2.0-rc name on fluid.optimizer, arguments, numpy reference of the rate at epochs 0..n-1)
RC_NAMES = [
    ("NoamLR", {"d_model": 0.01, "warmup_steps": 100}, lambda t: R.noam(t, 0.01, 100)),
    (
        "PiecewiseLR",
        {"boundaries": [3, 6], "values": [0.1, 0.2, 0.3]},
        lambda t: R.piecewise(t, [3, 6], [0.1, 0.2, 0.3]),
    ),
    ("NaturalExpLR", {"learning_rate": 0.5, "gamma": 0.1}, lambda t: R.natural_exp(t, 0.5, 1, 0.1)),
    ("InverseTimeLR", {"learning_rate": 0.5, "gamma": 0.1}, lambda t: R.inverse_time(t, 0.5, 1, 0.1)),
    ("PolynomialLR", {"learning_rate": 0.5, "decay_steps": 5, "end_lr": 0.0}, lambda t: R.polynomial(t, 0.5, 5, 0.0)),
    (
        "LinearLrWarmup",
        {"learning_rate": 0.5, "warmup_steps": 4, "start_lr": 0.0, "end_lr": 0.5},
        lambda t: R.warmup(t, 4, 0.0, 0.5, 0.5),
    ),
    ("ExponentialLR", {"learning_rate": 0.5, "gamma": 0.9}, lambda t: R.exponential(t, 0.5, 1, 0.9)),
    (
        "MultiStepLR",
        {"learning_rate": 0.5, "milestones": [2, 5], "gamma": 0.8},
        lambda t: R.multistep(t, 0.5, [2, 5], 0.8),
    ),
    ("StepLR", {"learning_rate": 0.5, "step_size": 2, "gamma": 0.8}, lambda t: R.step_decay(t, 0.5, 2, 0.8)),
    ("LambdaLR", {"learning_rate": 0.5, "lr_lambda": lambda e: 0.95**e}, lambda t: 0.5 * 0.95**t),
    ("CosineAnnealingLR", {"learning_rate": 0.5, "T_max": 10}, lambda t: R.cosine_annealing(t, 0.5, 10)),
]


@pytest.mark.parametrize("name, kwargs, ref", RC_NAMES, ids=[c[0] for c in RC_NAMES])
def test_rc_scheduler_names_on_fluid_optimizer(name, kwargs, ref):
    cls = getattr(fluid.optimizer, name)
    assert cls is getattr(lr_rc, name) and name in opt_mod.__all__
    s = cls(**kwargs)
    got = []
    for _ in range(8):
        got.append(s())
        s.step()
    np.testing.assert_allclose(got, ref(R.steps(8)), rtol=1e-12, atol=1e-15)


def test_rc_reduce_lr_on_plateau_on_fluid_optimizer():
    s = fluid.optimizer.ReduceLROnPlateau(learning_rate=1.0, factor=0.5, patience=1, cooldown=0)
    assert isinstance(s, lr2.ReduceOnPlateau)
    got = []
    for loss in [3.0, 2.0, 2.0, 2.0, 2.0, 2.0, 1.0]:  # better, better, bad, bad -> halve, bad, bad -> halve, better
        s.step(loss)
        got.append(s())
    assert got == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def _static_net(opt, with_param=True):
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.data(name="x", shape=[3, 4], dtype="float32")
        loss = fluid.layers.mean(fluid.layers.fc(x, 2) if with_param else x)
        ops, _ = opt.minimize(loss)
        lr_var = opt._global_learning_rate()
    return main, startup, ops, lr_var


def _fetch(exe, program, var):
    (out,) = exe.run(program, feed={"x": np.ones((3, 4), "float32")}, fetch_list=[var])
    return float(np.asarray(out).reshape(-1)[0])


# how the optimizer is given its rate, and the rate at update k (0..5) as a numpy reference
STATIC_CASES = [
    ("float", lambda: 0.125, None, lambda t: np.full_like(t, 0.125)),
    ("scheduler", lambda: lr2.StepDecay(0.5, step_size=2, gamma=0.5), "step", lambda t: R.step_decay(t, 0.5, 2, 0.5)),
    (
        "decay variable",
        lambda: fluid.layers.exponential_decay(0.5, 2, 0.5, staircase=True),
        None,
        lambda t: R.exponential(t, 0.5, 2, 0.5, staircase=True),
    ),
]


# every case with parameters, and the float and scheduler ones without (nothing to update)
GLOBAL_LR_CASES = [(*c, True) for c in STATIC_CASES] + [(*c, False) for c in STATIC_CASES[:2]]


@pytest.mark.parametrize(
    "kind, make_lr, stepping, ref, with_param",
    GLOBAL_LR_CASES,
    ids=[f"{c[0]}-{'params' if c[-1] else 'no-params'}" for c in GLOBAL_LR_CASES],
)
def test_global_learning_rate_is_the_variable_the_update_reads(kind, make_lr, stepping, ref, with_param):
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        lr = make_lr()
        opt = fluid.optimizer.Adam(learning_rate=lr)
        x = fluid.data(name="x", shape=[3, 4], dtype="float32")
        loss = fluid.layers.mean(fluid.layers.fc(x, 2) if with_param else x)
        ops, _ = opt.minimize(loss)
        lr_var = opt._global_learning_rate()
    assert isinstance(lr_var, fluid.Variable) and lr_var.block.program is main
    if with_param:
        assert [op.input("LearningRate") for op in ops] == [[lr_var.name]]
    else:
        assert ops == []  # nothing to update, but the rate variable exists (as in Paddle)
    assert opt._global_learning_rate(fluid.Program()) is None  # made in no other program
    exe = fluid.Executor(fluid.CPUPlace())
    exe.run(startup)
    got = []
    for _ in range(6):
        got.append(_fetch(exe, main, lr_var))
        if stepping:
            lr.step()
    np.testing.assert_allclose(got, ref(R.steps(6)), rtol=1e-6)


def test_global_learning_rate_follows_the_optimizer_configuration():
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.data(name="x", shape=[3, 4], dtype="float32")
        loss = fluid.layers.mean(fluid.layers.fc(x, 2))
        a, b = fluid.optimizer.SGD(learning_rate=0.1), fluid.optimizer.SGD(learning_rate=0.2)
        (op_a,), _ = a.minimize(loss)
        (op_b,), _ = b.minimize(loss)
        va, vb = a._global_learning_rate(), b._global_learning_rate()
    assert va.name == op_a.input("LearningRate")[0] and vb.name == op_b.input("LearningRate")[0]
    assert va.name != vb.name


def test_global_learning_rate_eager_is_the_current_rate():
    lin = torch.nn.Linear(3, 2)
    sched = lr2.StepDecay(0.5, step_size=1, gamma=0.5)
    opt = fluid.optimizer.SGD(learning_rate=sched, parameter_list=lin.parameters())
    got = []
    for _ in range(4):
        v = opt._global_learning_rate()
        assert isinstance(v, torch.Tensor) and v.shape == (1,) and v.dtype == torch.float32
        got.append(float(v[0]))
        sched.step()
    np.testing.assert_allclose(got, R.step_decay(R.steps(4), 0.5, 1, 0.5))
    assert opt._global_learning_rate(fluid.Program()) is None
    for junk in ("main", 3):
        with pytest.raises(TypeError, match=r"_global_learning_rate\(program=...\): expected a Program or None"):
            opt._global_learning_rate(junk)


@pytest.mark.parametrize("for_test", [False, True])
def test_clone_keeps_the_scheduler_driving_its_variable(for_test):
    sched = lr2.PiecewiseDecay([2, 4], [0.3, 0.2, 0.1])
    opt = fluid.optimizer.Adam(learning_rate=sched)
    main, startup, _, lr_var = _static_net(opt)
    clone = main.clone(for_test=for_test)
    exe = fluid.Executor(fluid.CPUPlace())
    exe.run(startup)
    if for_test and lr_var.name not in clone.global_block().vars:
        assert getattr(clone, "lr_sheduler", None) is None  # its variable was dropped: nothing to drive
        return
    got = []
    for _ in range(6):
        got.append(_fetch(exe, clone, lr_var))
        sched.step()
    np.testing.assert_allclose(got, R.piecewise(R.steps(6), [2, 4], [0.3, 0.2, 0.1]), rtol=1e-6)
