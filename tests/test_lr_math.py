"""torchfluid.lr.formulas against independent numpy references, Paddle docstring numbers and properties."""

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from . import lr_refs as R
from torchfluid.lr import formulas as M

T = R.steps(30)

# (name, torchfluid function, kwargs, numpy reference over the step array)
CASES = [
    (
        "piecewise",
        M.piecewise_decay,
        {"boundaries": [2, 4, 6, 8], "values": [0.2, 0.4, 0.6, 0.8, 1.0]},
        lambda t: R.piecewise(t, [2, 4, 6, 8], [0.2, 0.4, 0.6, 0.8, 1.0]),
    ),
    ("noam", M.noam_decay, {"d_model": 512, "warmup_steps": 4, "learning_rate": 2.0}, lambda t: R.noam(t, 512, 4, 2.0)),
    (
        "exponential",
        M.exponential_decay,
        {"learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5},
        lambda t: R.exponential(t, 0.1, 5, 0.5),
    ),
    (
        "exponential_stair",
        M.exponential_decay,
        {"learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5, "staircase": True},
        lambda t: R.exponential(t, 0.1, 5, 0.5, True),
    ),
    (
        "natural_exp",
        M.natural_exp_decay,
        {"learning_rate": 0.3, "decay_steps": 3, "decay_rate": 0.7},
        lambda t: R.natural_exp(t, 0.3, 3, 0.7),
    ),
    (
        "natural_exp_stair",
        M.natural_exp_decay,
        {"learning_rate": 0.3, "decay_steps": 3, "decay_rate": 0.7, "staircase": True},
        lambda t: R.natural_exp(t, 0.3, 3, 0.7, True),
    ),
    (
        "inverse_time",
        M.inverse_time_decay,
        {"learning_rate": 0.5, "decay_steps": 4, "decay_rate": 0.25},
        lambda t: R.inverse_time(t, 0.5, 4, 0.25),
    ),
    (
        "inverse_time_stair",
        M.inverse_time_decay,
        {"learning_rate": 0.5, "decay_steps": 4, "decay_rate": 0.25, "staircase": True},
        lambda t: R.inverse_time(t, 0.5, 4, 0.25, True),
    ),
    (
        "polynomial",
        M.polynomial_decay,
        {"learning_rate": 0.1, "decay_steps": 7, "end_learning_rate": 0.01, "power": 2.0},
        lambda t: R.polynomial(t, 0.1, 7, 0.01, 2.0),
    ),
    (
        "polynomial_cycle",
        M.polynomial_decay,
        {"learning_rate": 0.1, "decay_steps": 7, "end_learning_rate": 0.01, "power": 1.5, "cycle": True},
        lambda t: R.polynomial(t, 0.1, 7, 0.01, 1.5, True),
    ),
    (
        "cosine_epochs",
        M.cosine_decay,
        {"learning_rate": 0.2, "step_each_epoch": 3, "epochs": 5},
        lambda t: R.cosine_epochs(t, 0.2, 3, 5),
    ),
    (
        "linear_warmup",
        M.linear_warmup,
        {"warmup_steps": 6, "start_lr": 0.01, "end_lr": 0.1, "learning_rate": 0.05},
        lambda t: R.warmup(t, 6, 0.01, 0.1, 0.05),
    ),
    (
        "step",
        M.step_decay,
        {"learning_rate": 0.5, "step_size": 4, "gamma": 0.3},
        lambda t: R.step_decay(t, 0.5, 4, 0.3),
    ),
    (
        "multistep",
        M.multistep_decay,
        {"learning_rate": 0.5, "milestones": [3, 5, 11], "gamma": 0.2},
        lambda t: R.multistep(t, 0.5, [3, 5, 11], 0.2),
    ),
    (
        "cosine_annealing",
        M.cosine_annealing,
        {"learning_rate": 0.5, "T_max": 10, "eta_min": 0.05},
        lambda t: R.cosine_annealing(t, 0.5, 10, 0.05),
    ),
    (
        "warm_restart_phase",
        lambda s, **k: M.cosine_annealing_warm_restarts(s, **k),
        {"T_i": 30, "learning_rate": 0.5, "eta_min": 0.05},
        lambda t: R.cosine_annealing(t, 0.5, 30, 0.05),
    ),
]


@pytest.mark.parametrize("name,fn,kwargs,ref", CASES, ids=[c[0] for c in CASES])
def test_formula_matches_numpy_reference(name, fn, kwargs, ref):
    got = np.array([fn(int(s), **kwargs) for s in T])
    assert all(isinstance(fn(int(s), **kwargs), float) for s in T[:3])
    np.testing.assert_allclose(got, ref(T), rtol=1e-12, atol=0)


def test_paddle_docstring_numbers():
    # paddle.optimizer.lr.noam_decay docstring: base_lr 0.01, d_model 2, step 20, warmup 200
    expected = 0.01 * np.power(2, -0.5) * np.min([np.power(20, -0.5), np.power(200, -1.5) * 20])
    assert M.noam_decay(20, d_model=2, warmup_steps=200, learning_rate=0.01) == pytest.approx(expected, rel=1e-15)
    # LambdaDecay docstring: 0.5, 0.475, 0.45125 ; StepDecay docstring: 0.5 (<30), 0.05, 0.005
    assert [0.5 * 0.95**e for e in range(3)] == pytest.approx([0.5, 0.475, 0.45125])
    assert [M.step_decay(e, learning_rate=0.5, step_size=30, gamma=0.1) for e in (29, 30, 60)] == pytest.approx(
        [0.5, 0.05, 0.005]
    )
    # MultiStepDecay docstring: milestones [30, 50]
    assert [
        M.multistep_decay(e, learning_rate=0.5, milestones=[30, 50], gamma=0.1) for e in (29, 30, 49, 50)
    ] == pytest.approx([0.5, 0.05, 0.05, 0.005])
    # piecewise docstring: [10000, 20000] -> [1.0, 0.5, 0.1]
    vals = [
        M.piecewise_decay(s, boundaries=[10000, 20000], values=[1.0, 0.5, 0.1])
        for s in (0, 9999, 10000, 19999, 20000, 10**6)
    ]
    assert vals == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]


def test_noam_is_zero_at_step_zero_and_peaks_at_warmup():
    assert M.noam_decay(0, d_model=4, warmup_steps=10) == 0.0
    vals = [M.noam_decay(s, d_model=4, warmup_steps=10) for s in range(1, 40)]
    assert int(np.argmax(vals)) + 1 == 10


def test_cosine_annealing_recursive_equals_closed_form_within_first_period():
    lr = 0.5
    for e in range(0, 21):
        lr = M.cosine_annealing_step(e, last_lr=lr, learning_rate=0.5, T_max=10, eta_min=0.01)
        assert lr == pytest.approx(M.cosine_annealing(e, learning_rate=0.5, T_max=10, eta_min=0.01), abs=1e-12)


def test_linear_lr_step_reaches_end_factor():
    lr = None
    for e in range(8):
        lr = M.linear_lr_step(e, last_lr=lr, learning_rate=0.6, total_steps=5, start_factor=0.5, end_factor=1.0)
        assert lr == pytest.approx(0.6 * (0.5 + 0.5 * min(e, 5) / 5), rel=1e-12)


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_one_cycle_key_points(three_phase, strategy):
    kw = {
        "max_learning_rate": 1.0,
        "total_steps": 100,
        "divide_factor": 25.0,
        "end_learning_rate": 1e-4,
        "phase_pct": 0.3,
        "anneal_strategy": strategy,
        "three_phase": three_phase,
    }
    assert M.one_cycle(0, **kw) == pytest.approx(0.04)
    assert M.one_cycle(29, **kw) == pytest.approx(1.0)  # end of phase 1 = pct*T - 1
    if three_phase:
        assert M.one_cycle(58, **kw) == pytest.approx(0.04)  # back to initial at 2*pct*T - 2
    assert M.one_cycle(99, **kw) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="Tried to step 101 times"):
        M.one_cycle(101, **kw)


@pytest.mark.parametrize(
    "scale_mode,scale,ref_scale",
    [
        ("cycle", None, lambda k, t: 1.0),
        ("cycle", lambda k: 1 / (2.0 ** (k - 1)), lambda k, t: 1 / 2.0 ** (k - 1)),
        ("iterations", lambda s: 0.9**s, lambda k, t: 0.9**t),
    ],
)
def test_cyclic_matches_triangle_reference(scale_mode, scale, ref_scale):
    got = [
        M.cyclic(
            s,
            base_learning_rate=0.1,
            max_learning_rate=0.5,
            step_size_up=3,
            step_size_down=5,
            scale_fn=scale,
            scale_mode=scale_mode,
        )
        for s in range(30)
    ]
    np.testing.assert_allclose(got, R.triangle(np.arange(30.0), 0.1, 0.5, 3, 5, ref_scale), rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    step=st.integers(0, 10_000),
    lr=st.floats(1e-6, 10),
    end=st.floats(0, 1e-6),
    decay_steps=st.integers(1, 500),
    power=st.floats(0.1, 4),
)
def test_polynomial_stays_between_end_and_start(step, lr, end, decay_steps, power):
    for cycle in (False, True):
        v = M.polynomial_decay(
            step, learning_rate=lr, decay_steps=decay_steps, end_learning_rate=end, power=power, cycle=cycle
        )
        assert end - 1e-12 <= v <= lr + 1e-12


@settings(max_examples=60, deadline=None)
@given(a=st.integers(0, 5000), b=st.integers(0, 5000), rate=st.floats(0.01, 0.99))
def test_decays_are_monotone_non_increasing(a, b, rate):
    lo, hi = min(a, b), max(a, b)
    for fn in (M.exponential_decay, M.natural_exp_decay, M.inverse_time_decay):
        for stair in (False, True):
            kw = {"learning_rate": 1.0, "decay_steps": 7, "decay_rate": rate, "staircase": stair}
            assert fn(hi, **kw) <= fn(lo, **kw) + 1e-15


BAD_CHECKS = [  # the argument checks both schedule families share
    (M.check_piecewise, ([2, 2], [0.1, 0.2, 0.3]), ValueError, "boundaries must be strictly increasing"),
    (M.check_piecewise, ([2], [0.1]), ValueError, "values must have len(boundaries) + 1 = 2 elements, got [0.1]"),
    (M.check_piecewise, ([2], [0.1, -0.2]), ValueError, "values[1] must be >= 0, got -0.2"),
    (M.check_piecewise, ([2], [0.1, "x"]), TypeError, "values[1] must be a real number >= 0, got 'x'"),
    (M.check_warmup, (0.2, 0.1), ValueError, "end_lr must be > start_lr, got end_lr=0.1, start_lr=0.2"),
    (M.check_warmup, (0.0, math.nan), ValueError, "end_lr must be a finite number, got nan"),
    (M.check_decay_factor, ("gamma", 1.0), ValueError, "gamma must be in [0, 1), got 1.0"),
    (M.check_decay_factor, ("gamma", True), TypeError, "gamma must be a real number in [0, 1), got True"),
    (
        lambda *a: M.check_plateau(*a),
        ("avg", "rel", "factor", 0.1, 1, 0),
        ValueError,
        "mode must be 'min' or 'max', got 'avg'",
    ),
    (
        lambda *a: M.check_plateau(*a),
        ("min", "pct", "factor", 0.1, 1, 0),
        ValueError,
        "threshold_mode must be 'rel' or 'abs', got 'pct'",
    ),
    (
        lambda *a: M.check_plateau(*a),
        ("min", "rel", "factor", 0.1, 1.5, 0),
        TypeError,
        "patience must be an int >= 0, got 1.5",
    ),
    (
        lambda *a: M.check_plateau(*a),
        ("min", "rel", "factor", 0.1, 1, -1),
        ValueError,
        "cooldown must be an int >= 0, got -1",
    ),
]


def test_shared_checks_return_checked_values():
    assert M.check_piecewise((1, 3), (0.3, 0.2, 0.1)) == ([1, 3], [0.3, 0.2, 0.1])
    assert M.check_warmup(0, 1) == (0.0, 1.0)
    assert M.check_plateau("MIN", "ABS", "factor", 0.5, 0, 0) == ("min", "abs")


@pytest.mark.parametrize("fn,args,exc,msg", BAD_CHECKS)
def test_checks_name_argument_and_value(fn, args, exc, msg):
    with pytest.raises(exc, match=re.escape(msg)):
        fn(*args)
