"""Fluid dygraph decays (torchfluid.dygraph.learning_rate_scheduler): Paddle 1.8 semantics."""

import json
import re

import numpy as np
import pytest
import torch

from . import lr_refs as R
from torchfluid.dygraph import learning_rate_scheduler as D


class ContractOptimizer:
    """The optimizer side of the contract (what RMSPropOptimizer does with a LearningRateDecay).

    Paddle 1.8: each minimize stores ``lr()`` (the rate that update uses; it advances
    the decay) and ``current_step_lr()`` returns that stored value, or ``lr.step()``
    before the first update.
    """

    def __init__(self, decay):
        self.decay = decay
        self.used = None

    def minimize(self):
        self.used = float(self.decay())

    def current_step_lr(self):
        return self.used if self.used is not None else self.decay.current_lr()


def calls(decay, n=12):
    """``n`` calls of ``decay()``, each checked to be Paddle's learning-rate variable (a new
    ``[1]`` tensor of the decay's dtype), as floats."""
    out = []
    for _ in range(n):
        v = decay()
        assert isinstance(v, torch.Tensor) and v.shape == (1,), v
        assert v.dtype == {"float32": torch.float32, "float64": torch.float64}[decay.dtype]
        out.append(v.item())
    return np.array(out)


def test_page_piecewise_sequence():
    d = D.PiecewiseDecay([2, 4, 6, 8], [0.2, 0.4, 0.6, 0.8, 1.0], 0)
    assert d.step() == 0.2 and d.step_num == 0  # step() computes, does not advance
    np.testing.assert_allclose(calls(d), [0.2, 0.2, 0.4, 0.4, 0.6, 0.6, 0.8, 0.8, 1.0, 1.0, 1.0, 1.0], rtol=1e-6)
    assert d.step_num == 12


def test_page_current_step_lr_contract():
    opt = ContractOptimizer(D.PiecewiseDecay([2, 4, 6, 8], [0.2, 0.4, 0.6, 0.8, 1.0], 0))
    assert np.allclose(opt.current_step_lr(), 0.2, rtol=1e-6, atol=0.0)
    assert np.allclose(float(opt.decay.step()), 0.2, rtol=1e-6, atol=0.0)
    got = []
    for _ in range(12):
        opt.minimize()
        got.append(opt.current_step_lr())
    np.testing.assert_allclose(got, [0.2, 0.2, 0.4, 0.4, 0.6, 0.6, 0.8, 0.8, 1.0, 1.0, 1.0, 1.0], rtol=1e-6, atol=0)


def k(n=12, begin=0, stride=1):
    return R.steps(n, begin, stride)


CASES = [
    (
        "piecewise_begin1_step2",
        lambda: D.PiecewiseDecay([3, 6, 9], [0.1, 0.2, 0.3, 0.4], begin=1, step=2),
        lambda: R.piecewise(k(12, 1, 2), [3, 6, 9], [0.1, 0.2, 0.3, 0.4]),
    ),
    (
        "exponential_stair",
        lambda: D.ExponentialDecay(0.1, 5, 0.5, staircase=True, begin=2, step=3),
        lambda: R.exponential(k(12, 2, 3), 0.1, 5, 0.5, True),
    ),
    ("exponential", lambda: D.ExponentialDecay(0.1, 5, 0.5), lambda: R.exponential(k(), 0.1, 5, 0.5)),
    ("natural_exp", lambda: D.NaturalExpDecay(0.3, 3, 0.7), lambda: R.natural_exp(k(), 0.3, 3, 0.7)),
    (
        "natural_exp_stair",
        lambda: D.NaturalExpDecay(0.3, 3, 0.7, staircase=True),
        lambda: R.natural_exp(k(), 0.3, 3, 0.7, True),
    ),
    (
        "inverse_time_stair",
        lambda: D.InverseTimeDecay(0.5, 4, 0.25, True),
        lambda: R.inverse_time(k(), 0.5, 4, 0.25, True),
    ),
    ("polynomial", lambda: D.PolynomialDecay(0.1, 7, 0.01, 2.0), lambda: R.polynomial(k(), 0.1, 7, 0.01, 2.0)),
    (
        "polynomial_cycle",
        lambda: D.PolynomialDecay(0.1, 4, 0.01, cycle=True),
        lambda: R.polynomial(k(), 0.1, 4, 0.01, 1.0, True),
    ),
    ("cosine", lambda: D.CosineDecay(0.2, 3, 5), lambda: R.cosine_epochs(k(), 0.2, 3, 5)),
    ("noam_default_begin1", lambda: D.NoamDecay(64, 4), lambda: R.noam(k(12, 1), 64, 4)),
    (
        "noam_lr_begin0",
        lambda: D.NoamDecay(1 / (100 * 0.01**2), 100, begin=0, learning_rate=0.01),
        lambda: R.noam(k(), 1 / (100 * 0.01**2), 100, 0.01),
    ),
    (
        "warmup_default_begin1",
        lambda: D.LinearLrWarmup(0.05, 6, 0.01, 0.1),
        lambda: R.warmup(k(12, 1), 6, 0.01, 0.1, 0.05),
    ),
]


@pytest.mark.parametrize("name,make,ref", CASES, ids=[c[0] for c in CASES])
def test_call_sequence_matches_reference(name, make, ref):
    got = calls(make())
    np.testing.assert_allclose(got, ref(), rtol=1e-6, atol=1e-12)
    np.testing.assert_array_equal(got, ref().astype(np.float32).astype(np.float64))  # float32 variable values


def test_float64_dtype_keeps_full_precision():
    got = calls(D.ExponentialDecay(0.1, 5, 0.5, dtype="float64"))
    np.testing.assert_allclose(got, R.exponential(k(), 0.1, 5, 0.5), rtol=1e-15)
    assert got[1] != float(np.float32(got[1]))


def test_current_lr_has_no_side_effects():
    d = D.ExponentialDecay(0.1, 5, 0.5, begin=4)
    first = d.current_lr()
    assert d.current_lr() == first and d.step_num == 4
    assert d() == first and d.step_num == 5
    assert d.current_lr() == pytest.approx(0.1 * 0.5, rel=1e-6) and d.step_num == 5


def test_linear_warmup_advances_wrapped_decay_on_every_step_like_paddle():
    inner = D.PiecewiseDecay([3], [0.5, 0.1], begin=0)
    w = D.LinearLrWarmup(inner, warmup_steps=2, start_lr=0.0, end_lr=0.5, begin=0)
    # step_num 0,1: warm-up (inner called anyway: 0->1->2); 2: inner value at 2; 3: inner value at 3
    assert w.current_lr() == 0.0 and inner.step_num == 0
    np.testing.assert_allclose(calls(w, 5), [0.0, 0.25, 0.5, 0.1, 0.1], rtol=1e-6)
    assert inner.step_num == 5
    assert w.current_lr() == pytest.approx(0.1) and inner.step_num == 5


def test_reduce_lr_on_plateau_by_hand(capsys):
    d = D.ReduceLROnPlateau(1.0, decay_rate=0.5, patience=1, verbose=True, cooldown=1, min_lr=0.2)
    seen = []
    for loss in [1.0, 1.0, 1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0]:
        assert d() == d()  # __call__ does not advance
        d.step(torch.tensor([loss]))
        seen.append(d())
    # e1 best=1.0; e2, e3 bad(1, 2 > patience) -> 0.5, cooldown 1; e4 (0.5) skipped by the cooldown;
    # e5 0.6 < 1.0 best; e6, e7 bad -> 0.25, cooldown; e8 skipped; e9, e10 bad -> max(0.125, 0.2) = 0.2
    assert seen == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2], rel=1e-6)
    assert d.best_loss == pytest.approx(0.6, rel=1e-6)
    assert capsys.readouterr().out.splitlines()[0] == "Epoch 3: reducing learning rate from 1.0 to 0.5."
    assert d.epoch_num == 10
    with pytest.raises(TypeError, match="loss must be"):
        d.step(np.zeros(3))


# the loss as given to step() -> what best_loss holds (Paddle keeps the loss variable itself)
BEST_LOSS_CASES = [
    ("tensor", lambda v: torch.tensor([v]), torch.Tensor),
    ("float64 tensor", lambda v: torch.tensor([v], dtype=torch.float64), torch.Tensor),
    ("array", lambda v: np.array([v], dtype=np.float32), np.ndarray),
    ("float", float, float),
]


@pytest.mark.parametrize("kind, wrap, held", BEST_LOSS_CASES, ids=[c[0] for c in BEST_LOSS_CASES])
def test_reduce_lr_on_plateau_best_loss_is_the_loss_as_given(kind, wrap, held):
    d = D.ReduceLROnPlateau(1.0, decay_rate=0.5, patience=1)
    losses = [3.0, 2.0, 2.5, 1.5, 1.75]
    given = [wrap(v) for v in losses]
    bests = []
    for loss in given:
        d.step(loss)
        assert isinstance(d.best_loss, held)
        bests.append(float(np.asarray(d.best_loss).reshape(-1)[0]))
    assert bests == pytest.approx([3.0, 2.0, 2.0, 1.5, 1.5])  # best-so-far, independent of the type
    if held is not float:
        assert d.best_loss is not given[3]  # a copy: changing the caller's value changes nothing
        given[3][0] = 100.0
        assert float(np.asarray(d.best_loss).reshape(-1)[0]) == 1.5
        assert d.best_loss.dtype == given[3].dtype
        if held is torch.Tensor:
            assert d.best_loss.numpy()[0] == pytest.approx(1.5)  # Paddle: best_loss.numpy()[0]
    state = d.state_dict()
    assert state["best_loss"] == 1.5 and type(state["best_loss"]) is float
    e = D.ReduceLROnPlateau(1.0, decay_rate=0.5, patience=1)
    e.set_state_dict(state)
    assert e.best_loss == 1.5 and type(e.best_loss) is float


# the held-rate decays: __call__ is Paddle's learning-rate variable, current_lr() the float
HELD_CASES = [
    ("StepDecay", lambda: D.StepDecay(0.5, step_size=2, decay_rate=0.2), lambda t: R.step_decay(t, 0.5, 2, 0.2)),
    ("MultiStepDecay", lambda: D.MultiStepDecay(0.5, [1, 3], 0.2), lambda t: R.multistep(t, 0.5, [1, 3], 0.2)),
    ("LambdaDecay", lambda: D.LambdaDecay(0.5, lambda e: 0.9**e), lambda t: 0.5 * 0.9**t),
]


@pytest.mark.parametrize("name, make, ref", HELD_CASES, ids=[c[0] for c in HELD_CASES])
def test_held_rate_decays_call_returns_a_rate_tensor(name, make, ref):
    d = make()
    got = []
    for _ in range(6):
        v = d()
        assert isinstance(v, torch.Tensor) and v.shape == (1,) and v.dtype == torch.float32
        assert d().data_ptr() != v.data_ptr()  # a new tensor each call
        assert d.current_lr() == v.item() and isinstance(d.current_lr(), float)
        got.append(v.numpy()[0])
        d.epoch()
    np.testing.assert_allclose(got, ref(R.steps(6)), rtol=1e-6)


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda: D.StepDecay(0.5, step_size=3), [0.5, 0.5, 0.5, 0.05, 0.05, 0.05, 0.005, 0.005, 0.005]),
        (lambda: D.MultiStepDecay(0.5, milestones=[3, 5]), [0.5, 0.5, 0.5, 0.05, 0.05, 0.005]),
        (lambda: D.LambdaDecay(0.5, lr_lambda=lambda x: 0.95**x), [0.5, 0.475, 0.45125]),
    ],
)
def test_epoch_decays_reproduce_paddle_docstring_prints(make, expected):
    """Docstring loop: 5 minimize per epoch, scheduler.epoch(), print current_step_lr()."""
    opt = ContractOptimizer(make())
    printed = []
    for _ in expected:
        for _ in range(5):
            opt.minimize()
        opt.decay.epoch()
        printed.append(opt.current_step_lr())
    np.testing.assert_allclose(printed, expected, rtol=1e-6)
    assert opt.decay.step() == opt.decay.learning_rate and opt.decay.current_lr() == opt.decay()


def test_epoch_with_explicit_epoch():
    d = D.StepDecay(0.5, step_size=3)
    d.epoch(7)
    assert d.epoch_num == 7 and d() == pytest.approx(0.005, rel=1e-6)


STATE_CASES = [
    (lambda: D.PiecewiseDecay([2, 5], [0.3, 0.2, 0.1], 0), ["step_num"]),
    (lambda: D.ExponentialDecay(0.1, 3, 0.5), ["step_num"]),
    (lambda: D.NaturalExpDecay(0.1, 3, 0.5), ["step_num"]),
    (lambda: D.InverseTimeDecay(0.1, 3, 0.5), ["step_num"]),
    (lambda: D.PolynomialDecay(0.1, 3, cycle=True), ["step_num"]),
    (lambda: D.CosineDecay(0.1, 2, 4), ["step_num"]),
    (lambda: D.NoamDecay(16, 3), ["step_num"]),
    (lambda: D.LinearLrWarmup(0.1, 4, 0.0, 0.1), ["step_num"]),
    (lambda: D.LinearLrWarmup(D.PiecewiseDecay([6], [0.1, 0.01], 0), 4, 0.0, 0.1), ["step_num", "LinearLrWarmup_LR"]),
    (lambda: D.StepDecay(0.5, 2), ["epoch_num", "learning_rate"]),
    (lambda: D.MultiStepDecay(0.5, [1, 3]), ["epoch_num", "learning_rate"]),
    (lambda: D.LambdaDecay(0.5, lambda e: 0.9**e), ["epoch_num", "learning_rate"]),
]


def _advance(d, n):
    for _ in range(n):
        d.epoch() if hasattr(d, "epoch") else d()


@pytest.mark.parametrize("make,keys", STATE_CASES)
def test_state_dict_round_trip_through_json(make, keys):
    a = make()
    _advance(a, 5)
    state = json.loads(json.dumps(a.state_dict()))
    assert sorted(state) == sorted(keys)
    b = make()
    b.set_state_dict(state)
    _advance(a, 1)
    _advance(b, 1)
    assert b.state_dict() == a.state_dict()
    assert [a() for _ in range(6)] == [b() for _ in range(6)]


def test_reduce_lr_on_plateau_state_round_trip():
    a = D.ReduceLROnPlateau(1.0, patience=0, decay_rate=0.5)
    for loss in [1.0, 2.0, 0.5]:
        a.step(loss)
    state = json.loads(json.dumps(a.state_dict()))
    assert state == {"cooldown_counter": 0, "best_loss": 0.5, "num_bad_epochs": 0, "epoch_num": 3, "learning_rate": 0.5}
    b = D.ReduceLROnPlateau(1.0, patience=0, decay_rate=0.5)
    b.set_dict(state)
    for loss in [0.7, 0.8]:
        a.step(loss)
        b.step(loss)
    assert a() == b() == 0.125


@pytest.mark.parametrize(
    "state,exc,msg",
    [
        ({}, RuntimeError, "missing keys ['step_num']"),
        ({"step_num": 3, "global_step": 3}, RuntimeError, "unexpected keys ['global_step']"),
        ({"step_num": [3]}, TypeError, "state_dict['step_num'] must be a number"),
    ],
)
def test_bad_state_dict_changes_nothing(state, exc, msg):
    d = D.NoamDecay(16, 3)
    with pytest.raises(exc, match=re.escape(msg)):
        d.set_state_dict(state)
    assert d.step_num == 1


BAD_ARGS = [
    (lambda: D.PiecewiseDecay([2, 4], [0.1, 0.2], 0), ValueError, "values must have len(boundaries) + 1 = 3"),
    (lambda: D.PiecewiseDecay([4, 2], [0.1, 0.2, 0.3], 0), ValueError, "boundaries must be strictly increasing"),
    (lambda: D.PiecewiseDecay([2], [0.1, -0.2], 0), ValueError, "values[1] must be >= 0, got -0.2"),
    (lambda: D.PiecewiseDecay([2], [0.1, 0.2], -1), ValueError, "begin must be >= 0, got -1"),
    (lambda: D.PiecewiseDecay([2], [0.1, 0.2], 0, step=0), ValueError, "step must be > 0, got 0"),
    (lambda: D.PiecewiseDecay([2], [0.1, 0.2], 0, dtype="int8"), ValueError, "dtype must be one of"),
    (lambda: D.ExponentialDecay(0.1, 0, 0.5), ValueError, "decay_steps must be > 0, got 0"),
    (lambda: D.ExponentialDecay(-0.1, 5, 0.5), ValueError, "learning_rate must be >= 0, got -0.1"),
    (lambda: D.NaturalExpDecay(0.1, 5, "x"), TypeError, "decay_rate must be a real number"),
    (lambda: D.PolynomialDecay(0.1, -3), ValueError, "decay_steps must be > 0, got -3"),
    (lambda: D.CosineDecay(0.1, 0, 10), ValueError, "step_each_epoch must be > 0, got 0"),
    (lambda: D.CosineDecay(0.1, 10, 0), ValueError, "epochs must be > 0, got 0"),
    (lambda: D.NoamDecay(0, 10), ValueError, "d_model must be > 0, got 0"),
    (lambda: D.NoamDecay(16, -1), ValueError, "warmup_steps must be > 0, got -1"),
    (lambda: D.LinearLrWarmup(0.1, 0, 0.0, 0.1), ValueError, "warmup_steps must be > 0, got 0"),
    (lambda: D.LinearLrWarmup(0.1, 5, 0.2, 0.1), ValueError, "end_lr must be > start_lr, got end_lr=0.1, start_lr=0.2"),
    (lambda: D.ReduceLROnPlateau(0.1, mode="avg"), ValueError, "mode must be 'min' or 'max', got 'avg'"),
    (lambda: D.ReduceLROnPlateau(0.1, decay_rate=1.0), ValueError, "decay_rate must be in [0, 1), got 1.0"),
    (lambda: D.ReduceLROnPlateau(0.1, threshold_mode="pct"), ValueError, "threshold_mode must be 'rel' or 'abs'"),
    (lambda: D.ReduceLROnPlateau(0.1, cooldown=-2), ValueError, "cooldown must be an int >= 0, got -2"),
    (lambda: D.StepDecay(0.5, 2.5), TypeError, "step_size must be an int > 0, got 2.5"),
    (lambda: D.StepDecay(0.5, 2, decay_rate=1.0), ValueError, "decay_rate must be in [0, 1), got 1.0"),
    (lambda: D.MultiStepDecay(0.5, [3, 1]), ValueError, "milestones must be strictly increasing"),
    (lambda: D.LambdaDecay(0.5, 3), TypeError, "lr_lambda in LambdaDecay must be callable, got 3"),
    (lambda: D.StepDecay(-0.5, 2), ValueError, "learning_rate must be >= 0, got -0.5"),
]


@pytest.mark.parametrize("make,exc,msg", BAD_ARGS, ids=[b[2][:40] for b in BAD_ARGS])
def test_bad_arguments_name_argument_and_value(make, exc, msg):
    with pytest.raises(exc, match=re.escape(msg)):
        make()


def test_learning_rate_may_be_a_one_element_tensor():
    d = D.ExponentialDecay(torch.tensor([0.1]), 5, 0.5)
    assert d() == pytest.approx(0.1) and isinstance(d.learning_rate, float)
