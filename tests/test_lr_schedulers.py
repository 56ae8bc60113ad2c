"""Paddle 2.x schedulers (torchfluid.optimizer.lr) vs numpy references and torch.optim.lr_scheduler."""

import json
import re

import numpy as np
import pytest
import torch

from . import lr_refs as R
from torchfluid.optimizer import lr, lr_scheduler

T12 = R.steps(12)


def values(s, n=12):
    """Values an optimizer would read before each of n user ``step()`` calls."""
    out = []
    for _ in range(n):
        out.append(s())
        s.step()
    return np.array(out)


REFERENCE_CASES = [
    ("noam", lambda: lr.NoamDecay(d_model=0.01, warmup_steps=100), lambda t: R.noam(t, 0.01, 100)),
    ("noam_lr", lambda: lr.NoamDecay(64, 4, learning_rate=2.0), lambda t: R.noam(t, 64, 4, 2.0)),
    (
        "piecewise",
        lambda: lr.PiecewiseDecay([3, 6, 9], [0.1, 0.2, 0.3, 0.4]),
        lambda t: R.piecewise(t, [3, 6, 9], [0.1, 0.2, 0.3, 0.4]),
    ),
    ("natural_exp", lambda: lr.NaturalExpDecay(0.5, gamma=0.1), lambda t: R.natural_exp(t, 0.5, 1, 0.1)),
    ("inverse_time", lambda: lr.InverseTimeDecay(0.5, gamma=0.1), lambda t: R.inverse_time(t, 0.5, 1, 0.1)),
    ("polynomial", lambda: lr.PolynomialDecay(0.5, decay_steps=5), lambda t: R.polynomial(t, 0.5, 5)),
    (
        "polynomial_cycle",
        lambda: lr.PolynomialDecay(0.5, 5, end_lr=0.01, power=2.0, cycle=True),
        lambda t: R.polynomial(t, 0.5, 5, 0.01, 2.0, True),
    ),
    (
        "linear_warmup",
        lambda: lr.LinearWarmup(0.5, warmup_steps=4, start_lr=0, end_lr=0.5),
        lambda t: R.warmup(t, 4, 0.0, 0.5, 0.5),
    ),
    (
        "linear_warmup_cosine",
        lambda: lr.LinearWarmup(lr.CosineAnnealingDecay(0.4, 5), 3, 0.0, 0.4),
        lambda t: R.warmup(t, 3, 0.0, 0.4, R.cosine_annealing(t - 3, 0.4, 5)),
    ),
    ("exponential", lambda: lr.ExponentialDecay(0.5, gamma=0.9), lambda t: 0.5 * 0.9**t),
    (
        "multistep",
        lambda: lr.MultiStepDecay(0.5, milestones=[2, 4, 6], gamma=0.8),
        lambda t: R.multistep(t, 0.5, [2, 4, 6], 0.8),
    ),
    ("step", lambda: lr.StepDecay(0.5, step_size=5, gamma=0.8), lambda t: R.step_decay(t, 0.5, 5, 0.8)),
    ("lambda", lambda: lr.LambdaDecay(0.5, lr_lambda=lambda x: 0.95**x), lambda t: 0.5 * 0.95**t),
    ("multiplicative", lambda: lr.MultiplicativeDecay(0.5, lr_lambda=lambda x: 0.95), lambda t: 0.5 * 0.95**t),
    (
        "cosine_annealing",
        lambda: lr.CosineAnnealingDecay(0.5, T_max=10, eta_min=0.01),
        lambda t: R.cosine_annealing(t, 0.5, 10, 0.01),
    ),
    ("linear_lr", lambda: lr.LinearLR(0.5, total_steps=5), lambda t: 0.5 * (1 / 3 + (2 / 3) * np.minimum(t, 5) / 5)),
    (
        "cyclic",
        lambda: lr.CyclicLR(0.5, 1.0, step_size_up=3, step_size_down=2),
        lambda t: R.triangle(t, 0.5, 1.0, 3, 2),
    ),
    ("warm_restarts", lambda: lr.CosineAnnealingWarmRestarts(0.5, T_0=4), lambda t: R.cosine_annealing(t % 4, 0.5, 4)),
]


@pytest.mark.parametrize("name,make,ref", REFERENCE_CASES, ids=[c[0] for c in REFERENCE_CASES])
def test_first_values_match_reference(name, make, ref):
    np.testing.assert_allclose(values(make()), ref(T12), rtol=1e-10, atol=1e-15)


def _torch_values(make_torch, base_lr, n, metrics=None):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = make_torch(opt)
    out = []
    for i in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step() if metrics is None else sched.step(metrics[i])
    return np.array(out)


S = torch.optim.lr_scheduler
TORCH_CASES = [
    ("step", lambda: lr.StepDecay(0.5, 3, gamma=0.5), lambda o: S.StepLR(o, 3, gamma=0.5), 0.5),
    ("multistep", lambda: lr.MultiStepDecay(0.5, [2, 5, 9], 0.3), lambda o: S.MultiStepLR(o, [2, 5, 9], 0.3), 0.5),
    ("exponential", lambda: lr.ExponentialDecay(0.5, 0.9), lambda o: S.ExponentialLR(o, 0.9), 0.5),
    (
        "cosine",
        lambda: lr.CosineAnnealingDecay(0.5, T_max=5, eta_min=0.05),
        lambda o: S.CosineAnnealingLR(o, T_max=5, eta_min=0.05),
        0.5,
    ),
    ("lambda", lambda: lr.LambdaDecay(0.3, lambda e: 1 / (1 + e)), lambda o: S.LambdaLR(o, lambda e: 1 / (1 + e)), 0.3),
    (
        "multiplicative",
        lambda: lr.MultiplicativeDecay(0.3, lambda e: 0.9 + 0.001 * e),
        lambda o: S.MultiplicativeLR(o, lambda e: 0.9 + 0.001 * e),
        0.3,
    ),
    (
        "linear",
        lambda: lr.LinearLR(0.4, 6, start_factor=0.25, end_factor=0.9),
        lambda o: S.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=6),
        0.4,
    ),
    (
        "one_cycle",
        lambda: lr.OneCycleLR(1.0, total_steps=40),
        lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=40, cycle_momentum=False, final_div_factor=400.0),
        1.0,
    ),
    (
        "one_cycle_3_lin",
        lambda: lr.OneCycleLR(1.0, 40, phase_pct=0.25, anneal_strategy="linear", three_phase=True),
        lambda o: S.OneCycleLR(
            o,
            1.0,
            total_steps=40,
            pct_start=0.25,
            anneal_strategy="linear",
            three_phase=True,
            cycle_momentum=False,
            final_div_factor=400.0,
        ),
        1.0,
    ),
    (
        "cyclic_tri2",
        lambda: lr.CyclicLR(0.1, 0.5, 4, 2, mode="triangular2"),
        lambda o: S.CyclicLR(o, 0.1, 0.5, 4, 2, mode="triangular2", cycle_momentum=False),
        0.1,
    ),
    (
        "cyclic_exp",
        lambda: lr.CyclicLR(0.1, 0.5, 3, mode="exp_range", exp_gamma=0.95),
        lambda o: S.CyclicLR(o, 0.1, 0.5, 3, mode="exp_range", gamma=0.95, cycle_momentum=False),
        0.1,
    ),
    (
        "warm_restarts",
        lambda: lr.CosineAnnealingWarmRestarts(0.5, T_0=3, T_mult=2, eta_min=0.01),
        lambda o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.01),
        0.5,
    ),
]


@pytest.mark.parametrize("name,make,make_torch,base", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_matches_torch_scheduler(name, make, make_torch, base):
    n = 40
    np.testing.assert_allclose(values(make(), n), _torch_values(make_torch, base, n), rtol=1e-9, atol=1e-15)


def test_reduce_on_plateau_matches_torch_without_cooldown():
    metrics = [1.0, 0.9, 0.95, 0.91, 0.92, 0.93, 0.5, 0.6, 0.7, 0.8, 0.9, 0.49, 0.6, 0.6, 0.6, 0.6, 0.6]
    s = lr.ReduceOnPlateau(1.0, factor=0.5, patience=2, threshold=1e-3, min_lr=0.1)
    ours = []
    for m in metrics:
        ours.append(s())
        s.step(m)
    theirs = _torch_values(
        lambda o: S.ReduceLROnPlateau(o, factor=0.5, patience=2, threshold=1e-3, min_lr=0.1), 1.0, len(metrics), metrics
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_reduce_on_plateau_cooldown_and_max_mode_by_hand():
    # max mode, abs threshold 0.1, patience 1, cooldown 2: epochs where nothing improves by > 0.1
    s = lr.ReduceOnPlateau(1.0, mode="max", factor=0.5, patience=1, threshold=0.1, threshold_mode="abs", cooldown=2)
    seq = []
    for m in [1.0, 1.05, 1.08, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0]:
        s.step(np.array([m]))
        seq.append(s())
    # best=1.0; 1.05 bad(1); 1.08 bad(2>1) -> 0.5, cooldown 2; two cooldown epochs; 1.0 bad(1); 1.0 bad(2) -> 0.25
    assert seq == [1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    assert s.last_epoch == 9 and s.best == 1.0
    with pytest.raises(TypeError, match="metrics must be"):
        s.step("bad")


def test_constructor_steps_once_and_call_does_not_advance():
    s = lr.StepDecay(0.5, 2)
    assert (s.last_epoch, s.last_lr) == (0, 0.5)
    assert [s(), s(), s()] == [0.5, 0.5, 0.5] and s.last_epoch == 0
    s.step(7)
    assert s.last_epoch == 7 and s() == pytest.approx(0.5 * 0.1**3)
    resumed = lr.ExponentialDecay(0.5, 0.5, last_epoch=3)
    assert resumed.last_epoch == 4 and resumed() == pytest.approx(0.5**5)


def test_cosine_step_with_epoch_uses_closed_form():
    s = lr.CosineAnnealingDecay(0.5, T_max=10)
    s.step(15)
    assert s() == pytest.approx(R.cosine_annealing(15.0, 0.5, 10), rel=1e-12)


def test_verbose_prints_paddle_message(capsys):
    s = lr.StepDecay(0.5, step_size=1, gamma=0.5, verbose=True)
    s.step()
    assert capsys.readouterr().out == (
        "Epoch 0: StepDecay set learning rate to 0.5.\nEpoch 1: StepDecay set learning rate to 0.25.\n"
    )


def test_user_subclass_with_get_lr_like_paddle_docstring():
    class MyStep(lr.LRScheduler):
        def __init__(self, learning_rate, step_size, gamma=0.1, last_epoch=-1, verbose=False):
            self.step_size, self.gamma = step_size, gamma
            super().__init__(learning_rate, last_epoch, verbose)

        def get_lr(self):
            return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)

    np.testing.assert_allclose(values(MyStep(0.5, 5, 0.8)), R.step_decay(T12, 0.5, 5, 0.8), rtol=1e-12)
    with pytest.raises(NotImplementedError, match="must implement get_lr"):
        lr.LRScheduler(0.1)


# ------------------------------------------------------------------- state dicts
STATE_CASES = [
    lambda: lr.NoamDecay(64, 10),
    lambda: lr.PiecewiseDecay([3, 6], [0.3, 0.2, 0.1]),
    lambda: lr.NaturalExpDecay(0.5, 0.1),
    lambda: lr.InverseTimeDecay(0.5, 0.1),
    lambda: lr.PolynomialDecay(0.5, 4, cycle=True),
    lambda: lr.LinearWarmup(0.5, 4, 0.0, 0.5),
    lambda: lr.LinearWarmup(lr.StepDecay(0.5, 2), 3, 0.0, 0.5),
    lambda: lr.ExponentialDecay(0.5, 0.9),
    lambda: lr.MultiStepDecay(0.5, [2, 6]),
    lambda: lr.StepDecay(0.5, 3),
    lambda: lr.LambdaDecay(0.5, lambda e: 0.9**e),
    lambda: lr.MultiplicativeDecay(0.5, lambda e: 0.9),
    lambda: lr.CosineAnnealingDecay(0.5, 4),
    lambda: lr.OneCycleLR(0.5, 30),
    lambda: lr.CyclicLR(0.1, 0.5, 3),
    lambda: lr.LinearLR(0.5, 5),
    lambda: lr.CosineAnnealingWarmRestarts(0.5, 2, T_mult=2),
]


@pytest.mark.parametrize("make", STATE_CASES)
def test_state_dict_round_trip_through_json(make):
    a = make()
    values(a, 7)
    state = json.loads(json.dumps(a.state_dict()))
    b = make()
    b.set_state_dict(state)
    assert b.state_dict() == a.state_dict()
    np.testing.assert_array_equal(values(b, 9), values(a, 9))


def test_reduce_on_plateau_state_round_trip():
    a = lr.ReduceOnPlateau(1.0, patience=1, factor=0.5, cooldown=1)
    for m in [1.0, 1.1, 1.2, 1.3]:
        a.step(torch.tensor(m))
    state = json.loads(json.dumps(a.state_dict()))
    assert set(state) == {"cooldown_counter", "best", "num_bad_epochs", "last_epoch", "last_lr"}
    b = lr.ReduceOnPlateau(1.0, patience=1, factor=0.5, cooldown=1)
    b.set_dict(state)
    for m in [1.4, 1.5, 1.6, 0.1]:
        a.step(m)
        b.step(m)
        assert a() == b()


def test_linear_warmup_state_nests_inner_scheduler():
    s = lr.LinearWarmup(lr.StepDecay(0.5, 2), 3, 0.0, 0.5)
    values(s, 6)
    assert s.state_dict() == {"last_epoch": 6, "last_lr": 0.05, "LinearWarmup_LR": {"last_epoch": 3, "last_lr": 0.05}}


BAD_STATES = [
    ({"last_epoch": 3}, RuntimeError, "missing keys ['last_lr']"),
    ({"last_epoch": 3, "last_lr": 0.1, "extra": 1}, RuntimeError, "unexpected keys ['extra']"),
    ({"last_epoch": 3, "last_lr": "0.1"}, TypeError, "state_dict['last_lr'] must be a number"),
    ([("last_epoch", 3)], TypeError, "state_dict must be a dict"),
]


@pytest.mark.parametrize("state,exc,msg", BAD_STATES)
def test_bad_state_dict_is_rejected_and_changes_nothing(state, exc, msg):
    s = lr.StepDecay(0.5, 2)
    before = s.state_dict()
    with pytest.raises(exc, match=re.escape(msg)):
        s.set_state_dict(state)
    assert s.state_dict() == before


def test_nested_state_is_checked_before_anything_is_assigned():
    s = lr.LinearWarmup(lr.StepDecay(0.5, 2), 3, 0.0, 0.5)
    before = s.state_dict()
    bad = {"last_epoch": 9, "last_lr": 0.2, "LinearWarmup_LR": {"last_epoch": 1}}
    with pytest.raises(RuntimeError, match=re.escape("['LinearWarmup_LR']: state_dict does not match")):
        s.set_state_dict(bad)
    assert s.state_dict() == before


# ------------------------------------------------------------------- bad arguments
BAD_ARGS = [
    (lambda: lr.LRScheduler(-0.1), ValueError, "learning_rate must be >= 0, got -0.1"),
    (lambda: lr.StepDecay("0.5", 2), TypeError, "learning_rate must be a real number"),
    (lambda: lr.StepDecay(0.5, 2, last_epoch=-2), ValueError, "last_epoch must be an int >= -1, got -2"),
    (lambda: lr.NoamDecay(0, 10), ValueError, "d_model must be > 0, got 0"),
    (lambda: lr.NoamDecay(8, -1), ValueError, "warmup_steps must be > 0, got -1"),
    (lambda: lr.PiecewiseDecay([], [0.1]), ValueError, "boundaries must not be empty"),
    (lambda: lr.PiecewiseDecay([3, 6], [0.1, 0.2]), ValueError, "values must have len(boundaries) + 1 = 3"),
    (lambda: lr.PiecewiseDecay([6, 3], [0.1, 0.2, 0.3]), ValueError, "boundaries must be strictly increasing"),
    (lambda: lr.NaturalExpDecay(0.5, 0), ValueError, "gamma must be > 0, got 0"),
    (lambda: lr.InverseTimeDecay(0.5, -0.1), ValueError, "gamma must be >= 0, got -0.1"),
    (lambda: lr.PolynomialDecay(0.5, 0), ValueError, "decay_steps must be an int > 0, got 0"),
    (lambda: lr.PolynomialDecay(0.5, 5.0), TypeError, "decay_steps must be an int > 0, got 5.0"),
    (lambda: lr.PolynomialDecay(0.5, 5, power=0), ValueError, "power must be > 0, got 0"),
    (lambda: lr.LinearWarmup(0.5, 0, 0.0, 0.5), ValueError, "warmup_steps must be an int > 0, got 0"),
    (lambda: lr.LinearWarmup(0.5, 3, 0.5, 0.1), ValueError, "end_lr must be > start_lr, got end_lr=0.1, start_lr=0.5"),
    (lambda: lr.LinearWarmup("x", 3, 0.0, 0.1), TypeError, "learning_rate must be a real number"),
    (lambda: lr.ExponentialDecay(0.5, 1.0), ValueError, "gamma must be in (0, 1), got 1.0"),
    (lambda: lr.MultiStepDecay(0.5, [5, 2]), ValueError, "milestones must be strictly increasing"),
    (lambda: lr.MultiStepDecay(0.5, 5), TypeError, "milestones must be a list or tuple"),
    (lambda: lr.StepDecay(0.5, 2, gamma=1.5), ValueError, "gamma must be in [0, 1), got 1.5"),
    (lambda: lr.StepDecay(0.5, 0), ValueError, "step_size must be an int > 0, got 0"),
    (lambda: lr.LambdaDecay(0.5, 0.9), TypeError, "lr_lambda in LambdaDecay must be callable, got 0.9"),
    (lambda: lr.MultiplicativeDecay(0.5, None), TypeError, "lr_lambda in MultiplicativeDecay must be callable"),
    (lambda: lr.CosineAnnealingDecay(0.5, 0), ValueError, "T_max must be an int > 0, got 0"),
    (lambda: lr.ReduceOnPlateau(0.5, mode="low"), ValueError, "mode must be 'min' or 'max', got 'low'"),
    (lambda: lr.ReduceOnPlateau(0.5, factor=1.0), ValueError, "factor must be in [0, 1), got 1.0"),
    (lambda: lr.ReduceOnPlateau(0.5, threshold_mode="x"), ValueError, "threshold_mode must be 'rel' or 'abs'"),
    (lambda: lr.ReduceOnPlateau(0.5, patience=-1), ValueError, "patience must be an int >= 0, got -1"),
    (lambda: lr.OneCycleLR(1.0, 0), ValueError, "total_steps must be an int > 0, got 0"),
    (lambda: lr.OneCycleLR(1.0, 10, phase_pct=1.5), ValueError, "phase_pct must be in [0, 1], got 1.5"),
    (
        lambda: lr.OneCycleLR(1.0, 10, three_phase=True, phase_pct=0.5),
        ValueError,
        "phase_pct must be < 0.5 when three_phase is True, got 0.5",
    ),
    (lambda: lr.OneCycleLR(1.0, 10, anneal_strategy="exp"), ValueError, "anneal_strategy must be 'cos' or 'linear'"),
    (lambda: lr.CyclicLR(0.1, 0.5, 0), ValueError, "step_size_up must be an int > 0, got 0"),
    (lambda: lr.CyclicLR(0.1, 0.5, 2, mode="sine"), ValueError, "mode must be 'triangular', 'triangular2' or"),
    (lambda: lr.CyclicLR(0.1, 0.5, 2, scale_mode="x"), ValueError, "scale_mode must be 'cycle' or 'iterations'"),
    (lambda: lr.LinearLR(0.5, 5, start_factor=0), ValueError, "start_factor must be in (0, 1], got 0"),
    (lambda: lr.LinearLR(0.5, 5, end_factor=2), ValueError, "end_factor must be in [0, 1], got 2"),
    (lambda: lr.CosineAnnealingWarmRestarts(0.5, 0), ValueError, "T_0 must be an int > 0, got 0"),
    (lambda: lr.CosineAnnealingWarmRestarts(0.5, 2, T_mult=0), ValueError, "T_mult must be an int > 0, got 0"),
]


@pytest.mark.parametrize("make,exc,msg", BAD_ARGS, ids=[b[2][:40] for b in BAD_ARGS])
def test_bad_arguments_name_argument_and_value(make, exc, msg):
    with pytest.raises(exc, match=re.escape(msg)):
        make()


# ------------------------------------------------------------------- 2.0-rc aliases
def test_page_example_noam_lr(capsys):
    s = lr_scheduler.NoamLR(d_model=0.01, warmup_steps=100, verbose=True)
    assert capsys.readouterr().out == "Epoch 0: NoamLR set learning rate to 0.0.\n"
    assert isinstance(s, lr.LRScheduler) and isinstance(s, lr.NoamDecay)
    np.testing.assert_allclose(values(s), R.noam(T12, 0.01, 100), rtol=1e-12)


@pytest.mark.parametrize(
    "old,new",
    [
        ("NoamLR", "NoamDecay"),
        ("PiecewiseLR", "PiecewiseDecay"),
        ("NaturalExpLR", "NaturalExpDecay"),
        ("InverseTimeLR", "InverseTimeDecay"),
        ("PolynomialLR", "PolynomialDecay"),
        ("LinearLrWarmup", "LinearWarmup"),
        ("ExponentialLR", "ExponentialDecay"),
        ("MultiStepLR", "MultiStepDecay"),
        ("StepLR", "StepDecay"),
        ("LambdaLR", "LambdaDecay"),
        ("ReduceLROnPlateau", "ReduceOnPlateau"),
        ("CosineAnnealingLR", "CosineAnnealingDecay"),
    ],
)
def test_rc_names_are_subclasses(old, new):
    assert issubclass(getattr(lr_scheduler, old), getattr(lr, new))
    assert old in lr_scheduler.__all__
    assert lr_scheduler._LRScheduler is lr.LRScheduler


# the metrics as given to step() -> what best holds (Paddle keeps the metrics object itself)
BEST_CASES = [
    ("tensor", lambda v: torch.tensor([v]), torch.Tensor),
    ("float64 tensor", lambda v: torch.tensor([v], dtype=torch.float64), torch.Tensor),
    ("array", lambda v: np.array([v], dtype=np.float32), np.ndarray),
    ("float", float, float),
]


@pytest.mark.parametrize("kind, wrap, held", BEST_CASES, ids=[c[0] for c in BEST_CASES])
def test_reduce_on_plateau_best_is_the_metrics_as_given(kind, wrap, held):
    s = lr.ReduceOnPlateau(learning_rate=1.0, factor=0.5, patience=1)
    given = [wrap(v) for v in [3.0, 2.0, 2.5, 1.5, 1.75]]
    bests, rates = [], []
    for m in given:
        s.step(m)
        assert isinstance(s.best, held)
        bests.append(float(np.asarray(s.best).reshape(-1)[0]))
        rates.append(s())
    assert bests == pytest.approx([3.0, 2.0, 2.0, 1.5, 1.5])
    assert rates == [1.0, 1.0, 1.0, 1.0, 1.0]  # never more than patience=1 bad steps in a row
    if held is not float:
        given[3][0] = 100.0  # a copy: changing the caller's value changes nothing
        assert float(np.asarray(s.best).reshape(-1)[0]) == 1.5 and s.best.dtype == given[3].dtype
    state = s.state_dict()
    assert state["best"] == 1.5 and type(state["best"]) is float
    t = lr.ReduceOnPlateau(learning_rate=1.0, factor=0.5, patience=1)
    t.set_state_dict(state)
    assert t.best == 1.5 and type(t.best) is float


@pytest.mark.parametrize(
    "make, text",
    [
        (
            lambda: lr.LinearWarmup(0.1, warmup_steps=0, start_lr=0.0, end_lr=0.1),
            "'warmup_steps' must be a positive integer",
        ),
        (
            lambda: lr.LinearWarmup(0.1, warmup_steps=2.5, start_lr=0.0, end_lr=0.1),
            "'warmup_steps' must be a positive integer",
        ),
        (
            lambda: lr.LinearWarmup(0.1, warmup_steps=3, start_lr=0.2, end_lr=0.1),
            "end_lr must be greater than start_lr",
        ),
        (lambda: lr.NaturalExpDecay(0.1, gamma=0.0), "'gamma' must be a positive number"),
    ],
)
def test_arguments_paddle_asserts_raise_an_error_that_is_both_value_and_assertion_error(make, text):
    """Paddle checks these with ``assert`` (its tests catch AssertionError): the error is a
    ValueError naming the argument and the value, and an AssertionError with Paddle's text."""
    with pytest.raises(AssertionError, match=text) as caught:
        make()
    assert isinstance(caught.value, ValueError)
