"""Paddle 2.x learning-rate schedulers (``paddle.optimizer.lr``), as plain Python.

Semantics (as Paddle's ``LRScheduler``):

* The constructor calls ``step()`` once, so ``last_epoch`` goes from ``-1`` to ``0``
  and ``last_lr`` is the value at epoch 0.
* ``scheduler()`` returns ``last_lr`` and never advances. The optimizer reads it at
  every update; the user advances with ``scheduler.step()`` (per batch or per epoch).
* ``step(epoch=None)``: ``None`` increments ``last_epoch`` and recomputes with
  ``get_lr()`` (recursive forms use ``last_lr``); an explicit ``epoch`` sets it and
  uses the closed form where the class has one.
* ``state_dict()`` is ``{key: value for key in self.keys}`` (after ``state_keys()``)
  with plain Python numbers; ``set_state_dict()`` / ``set_dict()`` restore it.

Differences from Paddle: ``set_state_dict`` rejects unexpected keys (Paddle only
warns) and checks everything before assigning; invalid hyper-parameters raise
``ValueError``/``TypeError`` naming the argument where Paddle asserts;
``CosineAnnealingWarmRestarts`` also saves ``T_cur``/``T_i`` so a restore is exact.
The maths is in :mod:`torchfluid.lr_math`.
"""

from __future__ import annotations


from .. import lr_math as M
from .._lr_state import to_plain
from ._lr_base import LRScheduler, check_callable
from .lr_cycles import CosineAnnealingWarmRestarts, CyclicLR, LinearLR, OneCycleLR

__all__ = [
    "LRScheduler", "NoamDecay", "PiecewiseDecay", "NaturalExpDecay", "InverseTimeDecay",
    "PolynomialDecay", "LinearWarmup", "ExponentialDecay", "MultiStepDecay", "StepDecay",
    "LambdaDecay", "ReduceOnPlateau", "CosineAnnealingDecay", "MultiplicativeDecay",
    "OneCycleLR", "CyclicLR", "LinearLR", "CosineAnnealingWarmRestarts",
]


class NoamDecay(LRScheduler):
    """``learning_rate * d_model**-0.5 * min(epoch**-0.5, epoch * warmup_steps**-1.5)`` (0 at epoch 0)."""

    def __init__(self, d_model, warmup_steps, learning_rate=1.0, last_epoch=-1, verbose=False):
        self.d_model = M.check_positive("d_model", d_model)
        self.warmup_steps = M.check_positive("warmup_steps", warmup_steps)
        super().__init__(learning_rate, last_epoch, verbose)

    def get_lr(self):
        return M.noam_decay(self.last_epoch, d_model=self.d_model,
                            warmup_steps=self.warmup_steps, learning_rate=self.base_lr)


class PiecewiseDecay(LRScheduler):
    """``values[i]`` while ``epoch < boundaries[i]``; ``values[-1]`` after the last boundary."""

    def __init__(self, boundaries, values, last_epoch=-1, verbose=False):
        boundaries = M.check_increasing("boundaries", boundaries)
        if not boundaries:
            raise ValueError("boundaries must not be empty, got []")
        if not isinstance(values, (list, tuple)) or len(values) != len(boundaries) + 1:
            raise ValueError(
                f"values must have len(boundaries) + 1 = {len(boundaries) + 1} elements, got {values!r}"
            )
        for i, v in enumerate(values):
            M.check_non_negative(f"values[{i}]", v)
        self.boundaries = boundaries
        self.values = list(values)
        super().__init__(last_epoch=last_epoch, verbose=verbose)

    def get_lr(self):
        return M.piecewise_decay(self.last_epoch, boundaries=self.boundaries, values=self.values)


class NaturalExpDecay(LRScheduler):
    """``learning_rate * exp(-gamma * epoch)``; ``gamma > 0``."""

    def __init__(self, learning_rate, gamma, last_epoch=-1, verbose=False):
        self.gamma = M.check_positive("gamma", gamma)
        super().__init__(learning_rate, last_epoch, verbose)

    def get_lr(self):
        return M.natural_exp_decay(self.last_epoch, learning_rate=self.base_lr,
                                   decay_steps=1, decay_rate=self.gamma)


class InverseTimeDecay(LRScheduler):
    """``learning_rate / (1 + gamma * epoch)``; ``gamma >= 0``."""

    def __init__(self, learning_rate, gamma, last_epoch=-1, verbose=False):
        self.gamma = M.check_non_negative("gamma", gamma)
        super().__init__(learning_rate, last_epoch, verbose)

    def get_lr(self):
        return M.inverse_time_decay(self.last_epoch, learning_rate=self.base_lr,
                                    decay_steps=1, decay_rate=self.gamma)


class PolynomialDecay(LRScheduler):
    """``(learning_rate - end_lr) * (1 - e / D) ** power + end_lr`` (see ``lr_math.polynomial_decay``)."""

    def __init__(self, learning_rate, decay_steps, end_lr=0.0001, power=1.0, cycle=False,
                 last_epoch=-1, verbose=False):
        self.decay_steps = M.check_positive_int("decay_steps", decay_steps)
        self.end_lr = M.check_number("end_lr", end_lr)
        self.power = M.check_positive("power", power)
        self.cycle = bool(cycle)
        super().__init__(learning_rate, last_epoch, verbose)

    def get_lr(self):
        return M.polynomial_decay(self.last_epoch, learning_rate=self.base_lr,
                                  decay_steps=self.decay_steps, end_learning_rate=self.end_lr,
                                  power=self.power, cycle=self.cycle)


class LinearWarmup(LRScheduler):
    """``start_lr + (end_lr - start_lr) * epoch / warmup_steps`` before ``warmup_steps``, then ``learning_rate``.

    ``learning_rate`` is a float or an ``LRScheduler``; a scheduler is stepped to
    ``epoch - warmup_steps`` after the warm-up and its state is saved under
    ``'LinearWarmup_LR'``.
    """

    def __init__(self, learning_rate, warmup_steps, start_lr, end_lr, last_epoch=-1, verbose=False):
        if not isinstance(learning_rate, LRScheduler):
            M.check_non_negative("learning_rate", learning_rate)
        self.learning_rate = learning_rate
        self.warmup_steps = M.check_positive_int("warmup_steps", warmup_steps)
        M.check_number("start_lr", start_lr)
        M.check_number("end_lr", end_lr)
        if not end_lr > start_lr:
            raise ValueError(f"end_lr must be > start_lr, got end_lr={end_lr!r}, start_lr={start_lr!r}")
        self.start_lr = start_lr
        self.end_lr = end_lr
        super().__init__(start_lr, last_epoch, verbose)

    def _nested_schedulers(self):
        return {"LinearWarmup_LR": self.learning_rate} if isinstance(self.learning_rate, LRScheduler) else {}

    def get_lr(self):
        inner = self.learning_rate
        if self.last_epoch >= self.warmup_steps and isinstance(inner, LRScheduler):
            inner.step(self.last_epoch - self.warmup_steps)
            return inner()
        return M.linear_warmup(self.last_epoch, warmup_steps=self.warmup_steps, start_lr=self.start_lr,
                               end_lr=self.end_lr, learning_rate=inner)


class ExponentialDecay(LRScheduler):
    """``learning_rate * gamma ** epoch``; ``0 < gamma < 1``."""

    def __init__(self, learning_rate, gamma, last_epoch=-1, verbose=False):
        M.check_number("gamma", gamma)
        if not 0.0 < gamma < 1.0:
            raise ValueError(f"gamma must be in (0, 1), got {gamma!r}")
        self.gamma = gamma
        super().__init__(learning_rate, last_epoch, verbose)

    def get_lr(self):
        return self.base_lr * (self.gamma ** self.last_epoch)


def _check_decay_gamma(gamma):
    M.check_number("gamma", gamma)
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1), got {gamma!r}")
    return gamma


class MultiStepDecay(LRScheduler):
    """``learning_rate * gamma ** k``, ``k`` = number of ``milestones`` reached; ``0 <= gamma < 1``."""

    def __init__(self, learning_rate, milestones, gamma=0.1, last_epoch=-1, verbose=False):
        self.milestones = M.check_increasing("milestones", milestones)
        self.gamma = _check_decay_gamma(gamma)
        super().__init__(learning_rate, last_epoch, verbose)

    def get_lr(self):
        return M.multistep_decay(self.last_epoch, learning_rate=self.base_lr,
                                 milestones=self.milestones, gamma=self.gamma)


class StepDecay(LRScheduler):
    """``learning_rate * gamma ** (epoch // step_size)``; ``0 <= gamma < 1``."""

    def __init__(self, learning_rate, step_size, gamma=0.1, last_epoch=-1, verbose=False):
        self.step_size = M.check_positive_int("step_size", step_size)
        self.gamma = _check_decay_gamma(gamma)
        super().__init__(learning_rate, last_epoch, verbose)

    def get_lr(self):
        return M.step_decay(self.last_epoch, learning_rate=self.base_lr,
                            step_size=self.step_size, gamma=self.gamma)


class LambdaDecay(LRScheduler):
    """``learning_rate * lr_lambda(epoch)``."""

    def __init__(self, learning_rate, lr_lambda, last_epoch=-1, verbose=False):
        self.lr_lambda = check_callable("lr_lambda", lr_lambda, "LambdaDecay")
        super().__init__(learning_rate, last_epoch, verbose)

    def get_lr(self):
        return self.base_lr * self.lr_lambda(self.last_epoch)


class MultiplicativeDecay(LRScheduler):
    """``learning_rate * prod(lr_lambda(e) for e in 1..epoch)``."""

    def __init__(self, learning_rate, lr_lambda, last_epoch=-1, verbose=False):
        self.lr_lambda = check_callable("lr_lambda", lr_lambda, "MultiplicativeDecay")
        super().__init__(learning_rate, last_epoch, verbose)

    def get_lr(self):
        lr = self.base_lr
        for epoch in range(1, self.last_epoch + 1):
            lr = lr * self.lr_lambda(epoch)
        return lr


class CosineAnnealingDecay(LRScheduler):
    """SGDR cosine annealing without restarts (recursive form; closed form for ``step(epoch)``).

    ``eta_min + (learning_rate - eta_min) * (1 + cos(pi * epoch / T_max)) / 2`` in closed form.
    """

    def __init__(self, learning_rate, T_max, eta_min=0, last_epoch=-1, verbose=False):
        self.T_max = M.check_positive_int("T_max", T_max)
        self.eta_min = float(M.check_number("eta_min", eta_min))
        super().__init__(learning_rate, last_epoch, verbose)

    def get_lr(self):
        return M.cosine_annealing_step(self.last_epoch, last_lr=self.last_lr, learning_rate=self.base_lr,
                                       T_max=self.T_max, eta_min=self.eta_min)

    def _get_closed_form_lr(self):
        return M.cosine_annealing(self.last_epoch, learning_rate=self.base_lr,
                                  T_max=self.T_max, eta_min=self.eta_min)


class ReduceOnPlateau(LRScheduler):
    """Multiply the rate by ``factor`` when ``metrics`` stops improving for more than ``patience`` steps.

    ``step(metrics)``: in ``'min'`` mode a value is better when
    ``m < best * (1 - threshold)`` (``'rel'``) or ``m < best - threshold`` (``'abs'``);
    ``'max'`` mirrors it. After ``patience`` + 1 bad steps the rate becomes
    ``max(last_lr * factor, min_lr)`` (only if that lowers it by more than ``epsilon``)
    and ``cooldown`` steps are skipped. The constructor does not step (``last_epoch`` 0).
    """

    def __init__(self, learning_rate, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, epsilon=1e-8, verbose=False):
        mode, threshold_mode = M.check_plateau(mode, threshold_mode, "factor", factor, patience, cooldown)
        M.check_non_negative("learning_rate", learning_rate)
        self.mode, self.threshold_mode, self.factor = mode, threshold_mode, factor
        self.patience, self.cooldown = int(patience), int(cooldown)
        self.threshold = M.check_non_negative("threshold", threshold)
        self.min_lr = M.check_non_negative("min_lr", min_lr)
        self.epsilon = M.check_non_negative("epsilon", epsilon)
        self.cooldown_counter = 0
        self.best = None
        self.num_bad_epochs = 0
        self.base_lr = float(learning_rate)
        self.last_lr = float(learning_rate)
        self.last_epoch = 0
        self.verbose = verbose

    def state_keys(self):
        self.keys = ["cooldown_counter", "best", "num_bad_epochs", "last_epoch", "last_lr"]

    def step(self, metrics, epoch=None):
        """Record ``metrics`` (a number or a 1-element array/tensor) and maybe reduce the rate."""
        metrics = to_plain(metrics, "metrics")
        if metrics is None or isinstance(metrics, bool):
            raise TypeError(f"metrics must be a number or a 1-element array/tensor, got {metrics!r}")
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        old = self.last_lr
        self.best, self.num_bad_epochs, self.cooldown_counter, self.last_lr = M.plateau_update(
            metrics, self.best, self.num_bad_epochs, self.cooldown_counter, old, mode=self.mode,
            threshold_mode=self.threshold_mode, threshold=self.threshold, patience=self.patience,
            cooldown=self.cooldown, factor=self.factor, min_lr=self.min_lr, eps=self.epsilon)
        if self.last_lr != old:
            self._report()
