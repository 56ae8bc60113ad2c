"""Paddle 2.x learning-rate schedulers (``paddle.optimizer.lr``): explicit ``step()``.

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

Several names (``PiecewiseDecay``, ``NoamDecay``, ``ExponentialDecay``, ...) are also
fluid dygraph decays in :mod:`.fluid`, with Paddle 1.8's different arguments and
auto-stepping; both are views over the same :mod:`.formulas`. Paddle 2.0-rc's ``*LR``
names (``paddle.optimizer.lr_scheduler``: ``NoamLR``, ``StepLR``, ...) are thin
subclasses at the end of this module, so ``verbose`` messages print the old name.

Differences from Paddle: ``set_state_dict`` rejects unexpected keys (Paddle only
warns) and checks everything before assigning; invalid hyper-parameters raise
``ValueError``/``TypeError`` naming the argument where Paddle asserts;
``CosineAnnealingWarmRestarts`` also saves ``T_cur``/``T_i`` so a restore is exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

from .._checks import asserted_by_paddle, check_callable, check_increasing, check_int, check_number
from . import formulas as F
from .state import StateMixin, observed_copy, observed_value

__all__ = [
    "LRScheduler",
    "NoamDecay",
    "PiecewiseDecay",
    "NaturalExpDecay",
    "InverseTimeDecay",
    "PolynomialDecay",
    "LinearWarmup",
    "ExponentialDecay",
    "MultiStepDecay",
    "StepDecay",
    "LambdaDecay",
    "ReduceOnPlateau",
    "CosineAnnealingDecay",
    "MultiplicativeDecay",
    "OneCycleLR",
    "CyclicLR",
    "LinearLR",
    "CosineAnnealingWarmRestarts",
]


class LRScheduler(StateMixin):
    """Base class: subclasses implement ``get_lr()`` from ``self.last_epoch`` (and ``self.last_lr``).

    Args:
        learning_rate (float): the initial rate ``base_lr`` (>= 0). Default 0.1.
        last_epoch (int): the epoch before the first ``step()``. Default -1.
        verbose (bool): print ``'Epoch {e}: {Class} set learning rate to {lr}.'`` on each step.
    """

    def __init__(self, learning_rate=0.1, last_epoch=-1, verbose=False):
        self.base_lr = self.last_lr = check_number("learning_rate", learning_rate, lo=0.0)
        self.last_epoch = check_int("last_epoch", last_epoch, lo=-1)
        self.verbose = verbose
        self.step()

    def __call__(self) -> float:
        """The latest computed learning rate (does not advance)."""
        return self.last_lr

    def step(self, epoch=None):
        """Advance one epoch (``epoch=None``) or jump to ``epoch``, and recompute ``last_lr``."""
        if epoch is None:
            self.last_epoch += 1
            self.last_lr = self.get_lr()
        else:
            self.last_epoch = epoch
            closed = getattr(self, "_get_closed_form_lr", None)
            self.last_lr = closed() if closed is not None else self.get_lr()
        self._report()

    def _report(self):
        if self.verbose:
            print(f"Epoch {self.last_epoch}: {type(self).__name__} set learning rate to {self.last_lr}.")

    formula = None  # a function of torchfluid.lr.formulas, for the schedulers that are one formula
    formula_names: Mapping[str, str] = MappingProxyType({"learning_rate": "base_lr"})  # keyword -> attribute

    def get_lr(self) -> float:
        """The rate at ``self.last_epoch``: ``formula(last_epoch, **kwargs)``, each keyword
        argument read from the attribute of the same name (or its ``formula_names`` entry);
        subclasses without a ``formula`` implement it."""
        if self.formula is None:
            raise NotImplementedError(f"{type(self).__name__} must implement get_lr()")
        return self.formula(self.last_epoch, **F.params_from(self, self.formula, self.formula_names))

    # ---- state (Paddle's protocol: state_keys() sets self.keys)
    def state_keys(self):
        """Set ``self.keys``, the attribute names saved by ``state_dict()``."""
        self.keys = ["last_epoch", "last_lr"]

    def _saved_keys(self):
        self.state_keys()
        return self.keys


class NoamDecay(LRScheduler):
    """``learning_rate * d_model**-0.5 * min(epoch**-0.5, epoch * warmup_steps**-1.5)`` (0 at epoch 0)."""

    def __init__(self, d_model, warmup_steps, learning_rate=1.0, last_epoch=-1, verbose=False):
        self.d_model = check_number("d_model", d_model, lo=0.0, lo_open=True)
        self.warmup_steps = check_number("warmup_steps", warmup_steps, lo=0.0, lo_open=True)
        super().__init__(learning_rate, last_epoch, verbose)

    formula = staticmethod(F.noam_decay)


class PiecewiseDecay(LRScheduler):
    """``values[i]`` while ``epoch < boundaries[i]``; ``values[-1]`` after the last boundary."""

    def __init__(self, boundaries, values, last_epoch=-1, verbose=False):
        if isinstance(boundaries, (list, tuple)) and not boundaries:
            raise ValueError("boundaries must not be empty, got []")
        self.boundaries, self.values = F.check_piecewise(boundaries, values)
        super().__init__(last_epoch=last_epoch, verbose=verbose)

    formula = staticmethod(F.piecewise_decay)


class NaturalExpDecay(LRScheduler):
    """``learning_rate * exp(-gamma * epoch)``; ``gamma > 0`` (else ArgumentAssertionError, a
    ValueError and an AssertionError, as Paddle asserts it)."""

    def __init__(self, learning_rate, gamma, last_epoch=-1, verbose=False):
        with asserted_by_paddle("'gamma' must be a positive number so that the learning rate will decay"):
            self.gamma = check_number("gamma", gamma, lo=0.0, lo_open=True)
        super().__init__(learning_rate, last_epoch, verbose)

    def get_lr(self):
        return F.natural_exp_decay(self.last_epoch, learning_rate=self.base_lr, decay_steps=1, decay_rate=self.gamma)


class InverseTimeDecay(LRScheduler):
    """``learning_rate / (1 + gamma * epoch)``; ``gamma >= 0``."""

    def __init__(self, learning_rate, gamma, last_epoch=-1, verbose=False):
        self.gamma = check_number("gamma", gamma, lo=0.0)
        super().__init__(learning_rate, last_epoch, verbose)

    def get_lr(self):
        return F.inverse_time_decay(self.last_epoch, learning_rate=self.base_lr, decay_steps=1, decay_rate=self.gamma)


class PolynomialDecay(LRScheduler):
    """``(learning_rate - end_lr) * (1 - e / D) ** power + end_lr`` (see ``formulas.polynomial_decay``)."""

    def __init__(self, learning_rate, decay_steps, end_lr=0.0001, power=1.0, cycle=False, last_epoch=-1, verbose=False):
        self.decay_steps = check_int("decay_steps", decay_steps, lo=0, lo_open=True)
        self.end_lr = check_number("end_lr", end_lr)
        self.power = check_number("power", power, lo=0.0, lo_open=True)
        self.cycle = bool(cycle)
        super().__init__(learning_rate, last_epoch, verbose)

    formula = staticmethod(F.polynomial_decay)
    formula_names = MappingProxyType({"learning_rate": "base_lr", "end_learning_rate": "end_lr"})


class LinearWarmup(LRScheduler):
    """``start_lr + (end_lr - start_lr) * epoch / warmup_steps`` before ``warmup_steps``, then ``learning_rate``.

    ``learning_rate`` is a float or an ``LRScheduler``; a scheduler is stepped to
    ``epoch - warmup_steps`` after the warm-up and its state is saved under
    ``'LinearWarmup_LR'``. A ``warmup_steps`` that is not an integer > 0, or ``end_lr <=
    start_lr``, raises ArgumentAssertionError (a ValueError and an AssertionError: Paddle
    asserts both).
    """

    def __init__(self, learning_rate, warmup_steps, start_lr, end_lr, last_epoch=-1, verbose=False):
        if not isinstance(learning_rate, LRScheduler):
            check_number("learning_rate", learning_rate, lo=0.0)
        self.learning_rate = learning_rate
        with asserted_by_paddle("'warmup_steps' must be a positive integer"):
            self.warmup_steps = check_int("warmup_steps", warmup_steps, lo=0, lo_open=True)
        with asserted_by_paddle("end_lr must be greater than start_lr"):
            self.start_lr, self.end_lr = F.check_warmup(start_lr, end_lr)
        super().__init__(start_lr, last_epoch, verbose)

    def _nested_schedulers(self):
        return {"LinearWarmup_LR": self.learning_rate} if isinstance(self.learning_rate, LRScheduler) else {}

    def get_lr(self):
        inner = self.learning_rate
        if self.last_epoch >= self.warmup_steps and isinstance(inner, LRScheduler):
            inner.step(self.last_epoch - self.warmup_steps)
            return inner()
        return F.linear_warmup(
            self.last_epoch,
            warmup_steps=self.warmup_steps,
            start_lr=self.start_lr,
            end_lr=self.end_lr,
            learning_rate=inner,
        )


class ExponentialDecay(LRScheduler):
    """``learning_rate * gamma ** epoch``; ``0 < gamma < 1``."""

    def __init__(self, learning_rate, gamma, last_epoch=-1, verbose=False):
        self.gamma = check_number("gamma", gamma, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        super().__init__(learning_rate, last_epoch, verbose)

    def get_lr(self):
        return F.exponential_decay(self.last_epoch, learning_rate=self.base_lr, decay_steps=1, decay_rate=self.gamma)


class MultiStepDecay(LRScheduler):
    """``learning_rate * gamma ** k``, ``k`` = number of ``milestones`` reached; ``0 <= gamma < 1``."""

    def __init__(self, learning_rate, milestones, gamma=0.1, last_epoch=-1, verbose=False):
        self.milestones = check_increasing("milestones", milestones)
        self.gamma = F.check_decay_factor("gamma", gamma)
        super().__init__(learning_rate, last_epoch, verbose)

    formula = staticmethod(F.multistep_decay)


class StepDecay(LRScheduler):
    """``learning_rate * gamma ** (epoch // step_size)``; ``0 <= gamma < 1``."""

    def __init__(self, learning_rate, step_size, gamma=0.1, last_epoch=-1, verbose=False):
        self.step_size = check_int("step_size", step_size, lo=0, lo_open=True)
        self.gamma = F.check_decay_factor("gamma", gamma)
        super().__init__(learning_rate, last_epoch, verbose)

    formula = staticmethod(F.step_decay)


class LambdaDecay(LRScheduler):
    """``learning_rate * lr_lambda(epoch)``."""

    def __init__(self, learning_rate, lr_lambda, last_epoch=-1, verbose=False):
        self.lr_lambda = check_callable("lr_lambda", lr_lambda, "LambdaDecay")
        super().__init__(learning_rate, last_epoch, verbose)

    formula = staticmethod(F.lambda_decay)


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
        self.T_max = check_int("T_max", T_max, lo=0, lo_open=True)
        self.eta_min = check_number("eta_min", eta_min)
        super().__init__(learning_rate, last_epoch, verbose)

    formula = staticmethod(F.cosine_annealing_step)

    def _get_closed_form_lr(self):
        return F.cosine_annealing(self.last_epoch, learning_rate=self.base_lr, T_max=self.T_max, eta_min=self.eta_min)


class ReduceOnPlateau(LRScheduler):
    """Multiply the rate by ``factor`` when ``metrics`` stops improving for more than ``patience`` steps.

    ``step(metrics)``: in ``'min'`` mode a value is better when
    ``m < best * (1 - threshold)`` (``'rel'``) or ``m < best - threshold`` (``'abs'``);
    ``'max'`` mirrors it. After ``patience`` + 1 bad steps the rate becomes
    ``max(last_lr * factor, min_lr)`` (only if that lowers it by more than ``epsilon``)
    and ``cooldown`` steps are skipped. The constructor does not step (``last_epoch`` 0).
    ``best`` is the best observation as given (a copy of a tensor or array; a plain number
    in ``state_dict()``).
    """

    def __init__(
        self,
        learning_rate,
        mode="min",
        factor=0.1,
        patience=10,
        threshold=1e-4,
        threshold_mode="rel",
        cooldown=0,
        min_lr=0,
        epsilon=1e-8,
        verbose=False,
    ):
        mode, threshold_mode = F.check_plateau(mode, threshold_mode, "factor", factor, patience, cooldown)
        check_number("learning_rate", learning_rate, lo=0.0)
        self.mode, self.threshold_mode, self.factor = mode, threshold_mode, factor
        self.patience, self.cooldown = int(patience), int(cooldown)
        self.threshold, self.min_lr, self.epsilon = F.check_plateau_bounds(threshold, min_lr, "epsilon", epsilon)
        self._plateau = F.Plateau(
            mode, threshold_mode, self.threshold, self.patience, self.cooldown, factor, self.min_lr, self.epsilon
        )
        self.best, self.num_bad_epochs, self.cooldown_counter = F.PLATEAU_START
        self.base_lr = float(learning_rate)
        self.last_lr = float(learning_rate)
        self.last_epoch = 0
        self.verbose = verbose

    def state_keys(self):
        self.keys = ["cooldown_counter", "best", "num_bad_epochs", "last_epoch", "last_lr"]

    def step(self, metrics, epoch=None):
        """Record ``metrics`` (a number or a 1-element array/tensor) and maybe reduce the rate."""
        value = observed_value("metrics", metrics)
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        old = self.last_lr
        best = None if self.best is None else observed_value("best", self.best)
        best, self.num_bad_epochs, self.cooldown_counter, self.last_lr = F.plateau_update(
            value, best, self.num_bad_epochs, self.cooldown_counter, old, self._plateau
        )
        if best is value:  # a new best: kept as given (a copy of a tensor or array), as Paddle keeps it
            self.best = observed_copy("metrics", metrics)
        if self.last_lr != old:
            self._report()


class OneCycleLR(LRScheduler):
    """One-cycle policy (``formulas.one_cycle``); starts at ``max_learning_rate / divide_factor``."""

    def __init__(
        self,
        max_learning_rate,
        total_steps,
        divide_factor=25.0,
        end_learning_rate=0.0001,
        phase_pct=0.3,
        anneal_strategy="cos",
        three_phase=False,
        last_epoch=-1,
        verbose=False,
    ):
        check_number("max_learning_rate", max_learning_rate, lo=0.0)
        check_number("end_learning_rate", end_learning_rate, lo=0.0)
        self.total_steps = check_int("total_steps", total_steps, lo=0, lo_open=True)
        check_number("phase_pct", phase_pct, lo=0.0, hi=1.0)
        if three_phase and phase_pct >= 0.5:
            raise ValueError(f"phase_pct must be < 0.5 when three_phase is True, got {phase_pct!r}")
        check_number("divide_factor", divide_factor, lo=0.0, lo_open=True)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.max_learning_rate, self.divide_factor = float(max_learning_rate), divide_factor
        self.end_learning_rate, self.phase_pct = float(end_learning_rate), phase_pct
        self.anneal_strategy, self.three_phase = anneal_strategy, bool(three_phase)
        super().__init__(max_learning_rate / float(divide_factor), last_epoch, verbose)

    formula = staticmethod(F.one_cycle)


class CyclicLR(LRScheduler):
    """Cyclic LR (``formulas.cyclic``) with modes ``'triangular'`` (scale 1), ``'triangular2'``
    (``1 / 2**(cycle - 1)``), ``'exp_range'`` (``exp_gamma ** iterations``) or a custom ``scale_fn``."""

    def __init__(
        self,
        base_learning_rate,
        max_learning_rate,
        step_size_up,
        step_size_down=None,
        mode="triangular",
        exp_gamma=1.0,
        scale_fn=None,
        scale_mode="cycle",
        last_epoch=-1,
        verbose=False,
    ):
        check_number("max_learning_rate", max_learning_rate, lo=0.0)
        self.step_size_up = check_int("step_size_up", step_size_up, lo=0, lo_open=True)
        self.step_size_down = (
            None if step_size_down is None else check_int("step_size_down", step_size_down, lo=0, lo_open=True)
        )
        self.gamma = check_number("exp_gamma", exp_gamma)
        if scale_fn is None and mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(
                f"mode must be 'triangular', 'triangular2' or 'exp_range' when scale_fn is None, got {mode!r}"
            )
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
        self.mode, self.max_lr = mode, float(max_learning_rate)
        if scale_fn is not None:
            self.scale_fn, self.scale_mode = check_callable("scale_fn", scale_fn, "CyclicLR"), scale_mode
        elif mode == "triangular":
            self.scale_fn, self.scale_mode = (lambda x: 1.0), "cycle"
        elif mode == "triangular2":
            self.scale_fn, self.scale_mode = (lambda x: 1 / (2.0 ** (x - 1))), "cycle"
        else:
            self.scale_fn, self.scale_mode = (lambda x: self.gamma**x), "iterations"
        super().__init__(base_learning_rate, last_epoch, verbose)

    formula = staticmethod(F.cyclic)
    formula_names = MappingProxyType({"base_learning_rate": "base_lr", "max_learning_rate": "max_lr"})


class LinearLR(LRScheduler):
    """Linear ramp from ``start_factor * learning_rate`` to ``end_factor * learning_rate`` over ``total_steps``."""

    def __init__(self, learning_rate, total_steps, start_factor=1.0 / 3, end_factor=1.0, last_epoch=-1, verbose=False):
        check_number("start_factor", start_factor, lo=0.0, hi=1.0, lo_open=True)
        check_number("end_factor", end_factor, lo=0.0, hi=1.0)
        self.total_steps = check_int("total_steps", total_steps, lo=0, lo_open=True)
        self.start_factor, self.end_factor = start_factor, end_factor
        super().__init__(learning_rate, last_epoch, verbose)

    formula = staticmethod(F.linear_lr_step)


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR with restarts: cosine from ``learning_rate`` to ``eta_min`` over ``T_i`` steps,
    ``T_0`` first, each period ``T_mult`` times longer."""

    def __init__(self, learning_rate, T_0, T_mult=1, eta_min=0, last_epoch=-1, verbose=False):
        self.T_0 = check_int("T_0", T_0, lo=0, lo_open=True)
        self.T_mult = check_int("T_mult", T_mult, lo=0, lo_open=True)
        self.eta_min = check_number("eta_min", eta_min)
        self.T_i = self.T_0
        self.T_cur = last_epoch
        super().__init__(learning_rate, last_epoch, verbose)

    def state_keys(self):
        self.keys = ["last_epoch", "last_lr", "T_cur", "T_i"]

    def get_lr(self):
        return F.cosine_annealing_warm_restarts(
            self.T_cur, T_i=self.T_i, learning_rate=self.base_lr, eta_min=self.eta_min
        )

    def step(self, epoch=None):
        """Advance one step, or jump to ``epoch`` (restart position computed in closed form)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur - self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"epoch must be >= 0, got {epoch!r}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult**n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        self.last_lr = self.get_lr()
        self._report()


# ---------------------------------------------------------------- Paddle 2.0-rc names
def _rc_name(name: str, cls: type) -> type:
    """A thin subclass of ``cls`` under Paddle 2.0-rc's name (``verbose`` messages print that name)."""
    doc = f"Paddle 2.0-rc name of :class:`{cls.__name__}` (same arguments)."
    return type(name, (cls,), {"__doc__": doc, "__module__": __name__})


# Paddle 2.0-rc named each "<Name>Decay" "<Name>LR", but for LinearWarmup and ReduceOnPlateau
_RC_NAMES = {
    cls.__name__.replace("Decay", "LR"): cls
    for cls in (NoamDecay, PiecewiseDecay, NaturalExpDecay, InverseTimeDecay, PolynomialDecay, ExponentialDecay)
    + (MultiStepDecay, StepDecay, LambdaDecay, CosineAnnealingDecay)
}
_RC_NAMES.update(LinearLrWarmup=LinearWarmup, ReduceLROnPlateau=ReduceOnPlateau)
# Paddle 2.0-rc name -> its thin subclass (``paddle.optimizer.lr_scheduler`` exports these)
RC_CLASSES = {name: _rc_name(name, cls) for name, cls in _RC_NAMES.items()}
globals().update(RC_CLASSES)
