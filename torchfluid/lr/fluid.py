"""Fluid learning-rate decays (``paddle.fluid.dygraph.learning_rate_scheduler``, Paddle 1.8): auto-step.

Two families, as in Paddle:

* Step-driven ``LearningRateDecay`` subclasses (``PiecewiseDecay``, ``NoamDecay``,
  ``ExponentialDecay``, ``NaturalExpDecay``, ``InverseTimeDecay``,
  ``PolynomialDecay``, ``CosineDecay``, ``LinearLrWarmup``): ``step()`` computes the
  rate at ``self.step_num`` *without* advancing; ``decay()`` (i.e. ``__call__``)
  returns ``step()`` and then advances ``step_num += step_size``. The optimizer calls
  it once per update, so the k-th update (k = 0, 1, ...) uses the rate at
  ``begin + k * step``.
* ``ReduceLROnPlateau`` and the epoch-driven ``StepDecay``, ``MultiStepDecay``,
  ``LambdaDecay``: ``__call__`` returns the current rate and never advances; the user
  advances with ``step(loss)`` / ``epoch()``.

``__call__`` returns Paddle's learning-rate variable: a new 1-element tensor of ``dtype``
(float32 by default; ``lr().numpy()[0]``, ``float(lr())``); ``ReduceLROnPlateau.best_loss``
is the best loss as it was given to ``step`` (a copy of the 1-element tensor or array;
a number stays a number; a plain number after ``set_state_dict``).

Differences from Paddle: ``current_lr()`` (a torchfluid addition) gives the rate the next
``__call__`` will return, as a Python float, with no side effects, for every class; the
returned tensor is a plain ``torch.Tensor`` (Paddle's is a dygraph variable); the epoch-driven
decays' ``step()`` returns their current rate (Paddle raises ``NotImplementedError``);
``LinearLrWarmup`` saves the wrapped decay's state under ``'LinearLrWarmup_LR'``
(Paddle drops it);
``set_state_dict`` rejects unexpected keys (Paddle warns); bad hyper-parameters
raise ``ValueError``/``TypeError`` naming the argument (Paddle mostly accepts them).

Each step-driven decay names its formula (``formula``: a function of :mod:`.formulas`)
and keeps the formula's keyword arguments as attributes of the same names
(``formula_params()`` reads them); ``step()`` is ``formula(step_num, **formula_params())``.
The static ``fluid.layers.*_decay`` functions build the same decay, which checks the
arguments, and give its formula and parameters to an ``lr_schedule`` op, so all three
families share one formula and one set of checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import torch

from .._checks import check_callable, check_increasing, check_int, check_number
from ..dtypes import dtype_name
from . import formulas as F
from .state import StateMixin, observed_copy, observed_value, to_plain

__all__ = [
    "LearningRateDecay",
    "PiecewiseDecay",
    "NoamDecay",
    "ExponentialDecay",
    "NaturalExpDecay",
    "InverseTimeDecay",
    "PolynomialDecay",
    "CosineDecay",
    "LinearLrWarmup",
    "ReduceLROnPlateau",
    "StepDecay",
    "MultiStepDecay",
    "LambdaDecay",
]

_DTYPES = ("float32", "float64")


def _check_dtype(dtype):
    try:
        name = dtype_name(dtype)
    except TypeError:
        name = None
    if name not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    return name


def _round(value, dtype) -> float:
    """``value`` as the ``dtype`` learning-rate variable would hold it, as a Python float."""
    return float(np.float32(value)) if dtype == "float32" else float(value)


def _rate_var(value, dtype) -> torch.Tensor:
    """Paddle's learning-rate variable: a new ``[1]`` tensor of ``dtype`` holding ``value``."""
    return torch.tensor([float(value)], dtype=torch.float32 if dtype == "float32" else torch.float64)


def _rate(name, value) -> float:
    """A learning rate given as a number or a 1-element array/tensor, >= 0."""
    return check_number(name, to_plain(value, name), lo=0.0)


class LearningRateDecay(StateMixin):
    """Base of the step-driven decays. A subclass names its ``formula`` (a function of
    :mod:`.formulas`) and keeps its keyword arguments as attributes of the same names, or
    implements ``step()`` from ``self.step_num``.

    Args:
        begin (int): the initial ``step_num``. Default 0.
        step (int): ``step_num`` increment per ``__call__``. Default 1.
        dtype (str): ``'float32'`` or ``'float64'``, the precision of the returned rate.
    """

    formula = None  # a function of torchfluid.lr.formulas, for the decays that are one formula
    formula_names: Mapping[str, str] = MappingProxyType({})  # keyword -> attribute, where the names differ

    def __init__(self, begin=0, step=1, dtype="float32"):
        check_number("begin", begin, lo=0.0)
        check_number("step", step, lo=0.0, lo_open=True)
        self.step_num = begin
        self.step_size = step
        self.dtype = _check_dtype(dtype)

    def __call__(self) -> torch.Tensor:
        """The rate at the current ``step_num`` (a ``[1]`` tensor of ``dtype``), then advance
        ``step_num`` by ``step_size``."""
        lr = _rate_var(self.step(), self.dtype)
        self.step_num += self.step_size
        return lr

    def current_lr(self) -> float:
        """The rate the next ``__call__()`` returns; changes nothing."""
        return _round(float(self.step()), self.dtype)

    def create_lr_var(self, lr) -> torch.Tensor:
        """Paddle's 1-element learning-rate variable of ``dtype`` holding ``lr`` (a ``[1]`` tensor)."""
        return _rate_var(lr, self.dtype)

    def _state_keys(self):
        """Set ``self.keys``, the attributes saved by ``state_dict()``."""
        self.keys = ["step_num"]

    def _saved_keys(self):
        self._state_keys()
        return self.keys

    def step(self):
        """The rate at ``self.step_num`` (no side effects): ``formula(step_num, **formula_params())``."""
        if self.formula is None:
            raise NotImplementedError(f"{type(self).__name__} must implement step()")
        return self.formula(self.step_num, **self.formula_params())

    def formula_params(self) -> dict:
        """The keyword arguments of ``formula`` (the decay's hyper-parameters): its
        attributes of the same names (or their ``formula_names`` entries)."""
        if self.formula is None:
            raise NotImplementedError(f"{type(self).__name__} has no formula parameters")
        return F.params_from(self, self.formula, self.formula_names)


class PiecewiseDecay(LearningRateDecay):
    """``values[i]`` while ``step_num < boundaries[i]``, then ``values[-1]``."""

    def __init__(self, boundaries, values, begin, step=1, dtype="float32"):
        super().__init__(begin, step, dtype)
        if isinstance(values, (list, tuple)):
            values = [to_plain(v, f"values[{i}]") for i, v in enumerate(values)]
        self.boundaries, self.values = F.check_piecewise(boundaries, values)

    formula = staticmethod(F.piecewise_decay)


class _RatioDecay(LearningRateDecay):
    def __init__(self, learning_rate, decay_steps, decay_rate, staircase=False, begin=0, step=1, dtype="float32"):
        super().__init__(begin, step, dtype)
        self.learning_rate = _rate("learning_rate", learning_rate)
        self.decay_steps = check_number("decay_steps", decay_steps, lo=0.0, lo_open=True)
        self.decay_rate = check_number("decay_rate", decay_rate)
        self.staircase = bool(staircase)


class ExponentialDecay(_RatioDecay):
    """``learning_rate * decay_rate ** r``, ``r = step_num / decay_steps`` (floored if ``staircase``)."""

    formula = staticmethod(F.exponential_decay)


class NaturalExpDecay(_RatioDecay):
    """``learning_rate * exp(-decay_rate * r)``, ``r = step_num / decay_steps`` (floored if ``staircase``)."""

    formula = staticmethod(F.natural_exp_decay)


class InverseTimeDecay(_RatioDecay):
    """``learning_rate / (1 + decay_rate * r)``, ``r = step_num / decay_steps`` (floored if ``staircase``)."""

    formula = staticmethod(F.inverse_time_decay)


class PolynomialDecay(LearningRateDecay):
    """``(learning_rate - end_learning_rate) * (1 - s / D) ** power + end_learning_rate``.

    Without ``cycle``: ``s = min(step_num, decay_steps)``, ``D = decay_steps``; with it
    ``s = step_num``, ``D = decay_steps * ceil(step_num / decay_steps)`` (1 period at 0).
    """

    def __init__(
        self,
        learning_rate,
        decay_steps,
        end_learning_rate=0.0001,
        power=1.0,
        cycle=False,
        begin=0,
        step=1,
        dtype="float32",
    ):
        super().__init__(begin, step, dtype)
        self.learning_rate = _rate("learning_rate", learning_rate)
        self.decay_steps = check_number("decay_steps", decay_steps, lo=0.0, lo_open=True)
        self.end_learning_rate = check_number("end_learning_rate", end_learning_rate)
        self.power = check_number("power", power)
        self.cycle = bool(cycle)

    formula = staticmethod(F.polynomial_decay)


class CosineDecay(LearningRateDecay):
    """``learning_rate * 0.5 * (cos(e * pi / epochs) + 1)``, ``e = floor(step_num / step_each_epoch)``."""

    def __init__(self, learning_rate, step_each_epoch, epochs, begin=0, step=1, dtype="float32"):
        super().__init__(begin, step, dtype)
        self.learning_rate = _rate("learning_rate", learning_rate)
        self.step_each_epoch = check_number("step_each_epoch", step_each_epoch, lo=0.0, lo_open=True)
        self.epochs = check_number("epochs", epochs, lo=0.0, lo_open=True)

    formula = staticmethod(F.cosine_decay)


class NoamDecay(LearningRateDecay):
    """``learning_rate * d_model**-0.5 * min(step_num**-0.5, step_num * warmup_steps**-1.5)``.

    ``begin`` defaults to 1 (at step 0 the rate is 0).
    """

    def __init__(self, d_model, warmup_steps, begin=1, step=1, dtype="float32", learning_rate=1.0):
        super().__init__(begin, step, dtype)
        self.learning_rate = _rate("learning_rate", learning_rate)
        self.d_model = check_number("d_model", to_plain(d_model, "d_model"), lo=0.0, lo_open=True)
        self.warmup_steps = check_number("warmup_steps", to_plain(warmup_steps, "warmup_steps"), lo=0.0, lo_open=True)

    formula = staticmethod(F.noam_decay)


class LinearLrWarmup(LearningRateDecay):
    """``start_lr + (end_lr - start_lr) * step_num / warmup_steps`` while ``step_num < warmup_steps``,
    then ``learning_rate`` (a float, or a ``LearningRateDecay``'s value).

    As in Paddle, a wrapped decay is called (and so advanced) by every ``step()`` of the
    warm-up, during the warm-up too; ``begin`` defaults to 1.
    """

    def __init__(self, learning_rate, warmup_steps, start_lr, end_lr, begin=1, step=1, dtype="float32"):
        super().__init__(begin, step, dtype)
        if not isinstance(learning_rate, LearningRateDecay):
            learning_rate = _rate("learning_rate", learning_rate)
        self.learning_rate = learning_rate
        self.warmup_steps = check_number("warmup_steps", warmup_steps, lo=0.0, lo_open=True)
        self.start_lr, self.end_lr = F.check_warmup(start_lr, end_lr)

    def _nested_schedulers(self):
        return {"LinearLrWarmup_LR": self.learning_rate} if isinstance(self.learning_rate, LearningRateDecay) else {}

    formula = staticmethod(F.linear_warmup)

    def formula_params(self, learning_rate=None):
        """The warm-up's parameters; ``learning_rate`` (default: the float given) is the rate after it."""
        params = super().formula_params()
        if learning_rate is not None:
            params["learning_rate"] = learning_rate
        return params

    def step(self):
        base = self.learning_rate
        if isinstance(base, LearningRateDecay):
            base = float(base())  # Paddle advances the wrapped decay on every step()
        return self.formula(self.step_num, **self.formula_params(base))

    def current_lr(self):
        inner = self.learning_rate
        base = inner.current_lr() if isinstance(inner, LearningRateDecay) else inner
        return _round(self.formula(self.step_num, **self.formula_params(base)), self.dtype)


class _HeldRateDecay(LearningRateDecay):
    """Base of the decays that hold their rate in ``learning_rate`` and change it by an
    explicit call (``step(loss)``, ``epoch()``): ``__call__`` (a ``[1]`` tensor of ``dtype``)
    and ``current_lr`` (a float rounded to ``dtype``) return it and do not advance."""

    def __call__(self) -> torch.Tensor:
        """The current rate (does not advance)."""
        return _rate_var(self.learning_rate, self.dtype)

    def current_lr(self) -> float:
        return _round(self.learning_rate, self.dtype)


class ReduceLROnPlateau(_HeldRateDecay):
    """Multiply the rate by ``decay_rate`` when ``loss`` stops improving for more than ``patience`` epochs.

    ``step(loss)`` once per epoch; ``__call__`` returns the current rate and does not
    advance. In ``'min'`` mode ``loss`` improves when ``loss < best * (1 - threshold)``
    (``'rel'``) or ``loss < best - threshold`` (``'abs'``); ``'max'`` mirrors it. On a
    reduction the rate becomes ``max(lr * decay_rate, min_lr)`` if that lowers it by
    more than ``eps``, and ``cooldown`` epochs are skipped. ``best_loss`` is the best loss
    as given (a copy of a tensor or array; None before the first ``step``).
    """

    def __init__(
        self,
        learning_rate,
        mode="min",
        decay_rate=0.1,
        patience=10,
        verbose=False,
        threshold=1e-4,
        threshold_mode="rel",
        cooldown=0,
        min_lr=0,
        eps=1e-8,
        dtype="float32",
    ):
        super().__init__(dtype=dtype)
        mode, threshold_mode = F.check_plateau(mode, threshold_mode, "decay_rate", decay_rate, patience, cooldown)
        self.mode, self.threshold_mode, self.decay_rate = mode, threshold_mode, decay_rate
        self.learning_rate = _rate("learning_rate", learning_rate)
        self.verbose = verbose
        self.patience, self.cooldown = int(patience), int(cooldown)
        self.threshold, self.min_lr, self.eps = F.check_plateau_bounds(threshold, min_lr, "eps", eps)
        self._plateau = F.Plateau(
            mode, threshold_mode, self.threshold, self.patience, self.cooldown, decay_rate, self.min_lr, self.eps
        )
        self.best_loss, self.num_bad_epochs, self.cooldown_counter = F.PLATEAU_START
        self.epoch_num = 0

    def _state_keys(self):
        self.keys = ["cooldown_counter", "best_loss", "num_bad_epochs", "epoch_num", "learning_rate"]

    def step(self, loss):
        """Record this epoch's ``loss`` (number or 1-element array/tensor) and maybe reduce the rate."""
        value = observed_value("loss", loss)
        self.epoch_num += 1
        old = self.learning_rate
        best = None if self.best_loss is None else observed_value("best_loss", self.best_loss)
        best, self.num_bad_epochs, self.cooldown_counter, self.learning_rate = F.plateau_update(
            value, best, self.num_bad_epochs, self.cooldown_counter, old, self._plateau
        )
        if best is value:  # a new best: keep it as given, as Paddle keeps the loss variable
            self.best_loss = observed_copy("loss", loss)
        if self.verbose and self.learning_rate != old:
            print(f"Epoch {self.epoch_num}: reducing learning rate from {old} to {self.learning_rate}.")


class _LearningRateEpochDecay(_HeldRateDecay):
    """Epoch-driven base: ``epoch()`` advances ``epoch_num`` and recomputes ``learning_rate``
    with ``formula`` (the base rate is ``base_lr``, the decay factor ``decay_rate``)."""

    formula_names = MappingProxyType({"learning_rate": "base_lr", "gamma": "decay_rate"})

    def __init__(self, learning_rate, dtype=None):
        self.base_lr = _rate("learning_rate", learning_rate)
        self.epoch_num = -1
        self.dtype = "float32" if dtype is None else _check_dtype(dtype)
        self.learning_rate = self.base_lr
        self.epoch()

    def _state_keys(self):
        self.keys = ["epoch_num", "learning_rate"]

    def epoch(self, epoch=None):
        """Advance one epoch (``None``) or set ``epoch_num = epoch``, and recompute the rate."""
        self.epoch_num = self.epoch_num + 1 if epoch is None else epoch
        self.learning_rate = float(self.get_lr())

    def step(self):
        """The current rate, without advancing (as ``LearningRateDecay.step``; use ``epoch()`` to advance).

        Paddle leaves ``step()`` unimplemented here (``NotImplementedError``).
        """
        return self.learning_rate

    def get_lr(self):
        """The rate at ``epoch_num``: ``formula(epoch_num, **formula_params())``."""
        return self.formula(self.epoch_num, **self.formula_params())


class StepDecay(_LearningRateEpochDecay):
    """``learning_rate * decay_rate ** (epoch // step_size)``."""

    def __init__(self, learning_rate, step_size, decay_rate=0.1):
        self.step_size = check_int("step_size", step_size, lo=0, lo_open=True)
        self.decay_rate = F.check_decay_factor("decay_rate", decay_rate)
        super().__init__(learning_rate)

    formula = staticmethod(F.step_decay)


class MultiStepDecay(_LearningRateEpochDecay):
    """``learning_rate * decay_rate ** k``, ``k`` = number of ``milestones`` ``<= epoch``."""

    def __init__(self, learning_rate, milestones, decay_rate=0.1):
        self.milestones = check_increasing("milestones", milestones)
        self.decay_rate = F.check_decay_factor("decay_rate", decay_rate)
        super().__init__(learning_rate)

    formula = staticmethod(F.multistep_decay)


class LambdaDecay(_LearningRateEpochDecay):
    """``learning_rate * lr_lambda(epoch)``."""

    def __init__(self, learning_rate, lr_lambda):
        self.lr_lambda = check_callable("lr_lambda", lr_lambda, "LambdaDecay")
        super().__init__(learning_rate)

    formula = staticmethod(F.lambda_decay)
