"""Learning-rate schedule formulas: pure functions of the step number.

Every schedule in torchfluid -- the fluid dygraph decays (:mod:`.fluid`), the 2.x
schedulers (:mod:`.scheduler`) and the static ``fluid.layers.*_decay`` variables (the
``lr_schedule`` op calls the function named in its ``schedule`` attribute) -- computes
its value with one of these functions, so each formula lives here once. They take the
step (or epoch) as the first argument, hyper-parameters as keyword-only arguments,
return a Python ``float`` and keep no state. They do not re-validate their arguments
on every call (they run once per step); the classes check them once, at construction.

Arithmetic is Python float64. Paddle's fluid schedules compute in the dtype of the
learning-rate variable (float32 by default), so Paddle's value can differ from the
float32 rounding of ours by one unit in the last place.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

from .._checks import check_increasing, check_int, check_number

_NO_RENAMES: Mapping[str, str] = MappingProxyType({})

__all__ = [
    "piecewise_decay",
    "noam_decay",
    "exponential_decay",
    "natural_exp_decay",
    "inverse_time_decay",
    "polynomial_decay",
    "cosine_decay",
    "linear_warmup",
    "step_decay",
    "multistep_decay",
    "lambda_decay",
    "cosine_annealing",
    "cosine_annealing_step",
    "cosine_annealing_warm_restarts",
    "linear_lr_step",
    "one_cycle",
    "cyclic",
    "check_piecewise",
    "check_warmup",
    "check_decay_factor",
    "check_plateau",
    "check_plateau_bounds",
    "PLATEAU_START",
    "plateau_update",
]


# --------------------------------------------------------------------------- formulas
@functools.cache
def keyword_names(formula) -> tuple[str, ...]:
    """The keyword-only parameters of ``formula`` (a schedule's hyper-parameters), in order."""
    params = inspect.signature(formula).parameters.values()
    return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def params_from(obj, formula, renamed: Mapping[str, str] = _NO_RENAMES) -> dict:
    """``formula``'s keyword arguments read from ``obj``'s attributes of the same names
    (``renamed``: keyword -> attribute, where the names differ)."""
    return {k: getattr(obj, renamed.get(k, k)) for k in keyword_names(formula)}


def piecewise_decay(step: float, *, boundaries: Sequence[float], values: Sequence[float]) -> float:
    """``values[i]`` for the first ``i`` with ``step < boundaries[i]``, else ``values[-1]``."""
    for boundary, value in zip(boundaries, values, strict=False):  # len(values) == len(boundaries) + 1
        if step < boundary:
            return float(value)
    return float(values[-1])


def noam_decay(step: float, *, d_model: float, warmup_steps: float, learning_rate: float = 1.0) -> float:
    """``learning_rate * d_model**-0.5 * min(step**-0.5, step * warmup_steps**-1.5)``.

    At ``step == 0`` the minimum is ``min(inf, 0) = 0`` (as Paddle's tensor op and its
    2.x ``NoamDecay``, which substitutes 1 for ``0**-0.5``, both give).
    """
    a = math.inf if step == 0 else step**-0.5
    b = (warmup_steps**-1.5) * step
    return learning_rate * (d_model**-0.5) * min(a, b)


def _ratio(step: float, decay_steps: float, staircase: bool) -> float:
    ratio = step / decay_steps
    return math.floor(ratio) if staircase else ratio


def exponential_decay(
    step: float, *, learning_rate: float, decay_steps: float, decay_rate: float, staircase: bool = False
) -> float:
    """``learning_rate * decay_rate ** r``, ``r = step / decay_steps`` (floored if staircase)."""
    return learning_rate * (decay_rate ** _ratio(step, decay_steps, staircase))


def natural_exp_decay(
    step: float, *, learning_rate: float, decay_steps: float, decay_rate: float, staircase: bool = False
) -> float:
    """``learning_rate * exp(-decay_rate * r)``, ``r = step / decay_steps`` (floored if staircase)."""
    return learning_rate * math.exp(-1 * decay_rate * _ratio(step, decay_steps, staircase))


def inverse_time_decay(
    step: float, *, learning_rate: float, decay_steps: float, decay_rate: float, staircase: bool = False
) -> float:
    """``learning_rate / (1 + decay_rate * r)``, ``r = step / decay_steps`` (floored if staircase)."""
    return learning_rate / (1 + decay_rate * _ratio(step, decay_steps, staircase))


def polynomial_decay(
    step: float,
    *,
    learning_rate: float,
    decay_steps: float,
    end_learning_rate: float = 0.0001,
    power: float = 1.0,
    cycle: bool = False,
) -> float:
    """``(learning_rate - end) * (1 - s / D) ** power + end``.

    Without cycle ``s = min(step, decay_steps)``, ``D = decay_steps``. With cycle
    ``s = step``, ``D = decay_steps * ceil(step / decay_steps)`` (``ceil`` taken as 1
    at step 0), so the rate restarts from ``learning_rate`` after each period.
    """
    if cycle:
        periods = math.ceil(step / decay_steps) if step != 0 else 1
        s, d = step, decay_steps * periods
    else:
        s, d = min(step, decay_steps), decay_steps
    return (learning_rate - end_learning_rate) * ((1 - s / d) ** power) + end_learning_rate


def cosine_decay(step: float, *, learning_rate: float, step_each_epoch: float, epochs: float) -> float:
    """Fluid's epoch-wise cosine: ``lr * 0.5 * (cos(e * pi / epochs) + 1)``, ``e = floor(step / step_each_epoch)``."""
    epoch = math.floor(step / step_each_epoch)
    return learning_rate * 0.5 * (math.cos(epoch * math.pi / epochs) + 1)


def linear_warmup(step: float, *, warmup_steps: float, start_lr: float, end_lr: float, learning_rate: float) -> float:
    """``(end_lr - start_lr) * step / warmup_steps + start_lr`` while ``step < warmup_steps``,
    else ``learning_rate``."""
    if step < warmup_steps:
        return (end_lr - start_lr) * float(step) / float(warmup_steps) + start_lr
    return float(learning_rate)


def step_decay(epoch: int, *, learning_rate: float, step_size: int, gamma: float = 0.1) -> float:
    """``learning_rate * gamma ** (epoch // step_size)``."""
    return learning_rate * (gamma ** (epoch // step_size))


def multistep_decay(epoch: int, *, learning_rate: float, milestones: Sequence[int], gamma: float = 0.1) -> float:
    """``learning_rate * gamma ** k``, ``k`` = number of milestones ``<= epoch``."""
    for i, milestone in enumerate(milestones):
        if epoch < milestone:
            return learning_rate * (gamma**i)
    return learning_rate * (gamma ** len(milestones))


def lambda_decay(epoch: int, *, learning_rate: float, lr_lambda) -> float:
    """``learning_rate * lr_lambda(epoch)``."""
    return learning_rate * lr_lambda(epoch)


def cosine_annealing(epoch: float, *, learning_rate: float, T_max: float, eta_min: float = 0.0) -> float:
    """Closed form: ``eta_min + (learning_rate - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``."""
    return eta_min + (learning_rate - eta_min) * (1 + math.cos(math.pi * epoch / T_max)) / 2


def cosine_annealing_step(
    epoch: int, *, last_lr: float, learning_rate: float, T_max: int, eta_min: float = 0.0
) -> float:
    """The recursive SGDR form used by sequential ``step()`` calls (Paddle and PyTorch alike).

    ``epoch == 0``: ``learning_rate``; when ``(epoch - 1 - T_max) % (2 T_max) == 0``:
    ``last_lr + (learning_rate - eta_min) * (1 - cos(pi / T_max)) / 2``; otherwise
    ``(1 + cos(pi e / T)) / (1 + cos(pi (e - 1) / T)) * (last_lr - eta_min) + eta_min``.
    """
    if epoch == 0:
        return float(learning_rate)
    if (epoch - 1 - T_max) % (2 * T_max) == 0:
        return last_lr + (learning_rate - eta_min) * (1 - math.cos(math.pi / T_max)) / 2
    return (1 + math.cos(math.pi * epoch / T_max)) / (1 + math.cos(math.pi * (epoch - 1) / T_max)) * (
        last_lr - eta_min
    ) + eta_min


def cosine_annealing_warm_restarts(T_cur: float, *, T_i: float, learning_rate: float, eta_min: float = 0.0) -> float:
    """``eta_min + (learning_rate - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2``."""
    return eta_min + (learning_rate - eta_min) * (1 + math.cos(math.pi * T_cur / T_i)) / 2


def linear_lr_step(
    epoch: int,
    *,
    last_lr: float,
    learning_rate: float,
    total_steps: int,
    start_factor: float = 1.0 / 3,
    end_factor: float = 1.0,
) -> float:
    """Recursive linear ramp (Paddle's and PyTorch's ``LinearLR``).

    ``epoch == 0``: ``learning_rate * start_factor``; ``epoch > total_steps``: ``last_lr``;
    else ``last_lr * (1 + (end - start) / (total_steps * start + (epoch - 1) * (end - start)))``.
    """
    if epoch == 0:
        return learning_rate * start_factor
    if epoch > total_steps:
        return last_lr
    delta = end_factor - start_factor
    return last_lr * (1.0 + delta / (total_steps * start_factor + (epoch - 1) * delta))


def one_cycle(
    step: int,
    *,
    max_learning_rate: float,
    total_steps: int,
    divide_factor: float = 25.0,
    end_learning_rate: float = 0.0001,
    phase_pct: float = 0.3,
    anneal_strategy: str = "cos",
    three_phase: bool = False,
) -> float:
    """One-cycle policy (fastai two-phase by default, the paper's three phases if asked).

    ``initial = max_learning_rate / divide_factor``. Phase boundaries (in steps) are
    ``[0, pct*T - 1, T - 1]`` (two phases: initial -> max -> end) or
    ``[0, pct*T - 1, 2*pct*T - 2, T - 1]`` (three: initial -> max -> initial -> end);
    inside a phase ``[a, b]`` going from ``u`` to ``v`` the value is
    ``anneal(u, v, (step - a) / (b - a))`` with ``cos``: ``v + (u - v) / 2 * (cos(pi p) + 1)``
    or ``linear``: ``(v - u) * p + u``. Steps past the last boundary extrapolate the
    last phase. ``step > total_steps`` raises ``ValueError``.
    """
    if step > total_steps:
        raise ValueError(f"Tried to step {step} times. However the number of total steps is {total_steps}")
    initial = max_learning_rate / float(divide_factor)
    if three_phase:
        ends = [phase_pct * total_steps - 1, 2 * phase_pct * total_steps - 2, total_steps - 1]
        lrs = [initial, max_learning_rate, initial, float(end_learning_rate)]
    else:
        ends = [phase_pct * total_steps - 1, total_steps - 1]
        lrs = [initial, max_learning_rate, float(end_learning_rate)]
    start = 0.0
    for i, end in enumerate(ends):
        if step <= end or i == len(ends) - 1:
            pct = (step - start) / (end - start)
            u, v = lrs[i], lrs[i + 1]
            if anneal_strategy == "cos":
                return v + (u - v) / 2.0 * (math.cos(math.pi * pct) + 1)
            return (v - u) * pct + u
        start = end
    raise AssertionError("unreachable")  # pragma: no cover


def cyclic(
    step: int,
    *,
    base_learning_rate: float,
    max_learning_rate: float,
    step_size_up: float,
    step_size_down: float | None = None,
    scale_fn=None,
    scale_mode: str = "cycle",
) -> float:
    """Cyclic LR: a triangle between base and max, amplitude scaled by ``scale_fn``.

    ``C = up + down``, ``cycle = 1 + step // C``, ``x = 1 + step / C - cycle``;
    ``h = x / (up/C)`` while ``x <= up/C`` else ``(1 - x) / (1 - up/C)``;
    ``lr = base + (max - base) * h * scale_fn(cycle if scale_mode == 'cycle' else step)``.
    ``scale_fn=None`` means the constant 1 (``'triangular'``).
    """
    up = float(step_size_up)
    down = float(step_size_down) if step_size_down is not None else up
    cycle_size = up + down
    up_pct = up / cycle_size
    cycle_no = 1 + step // cycle_size
    x = 1.0 + step / cycle_size - cycle_no
    height = x / up_pct if x <= up_pct else (1 - x) / (1 - up_pct)
    scale = 1.0 if scale_fn is None else scale_fn(cycle_no if scale_mode == "cycle" else step)
    return base_learning_rate + (max_learning_rate - base_learning_rate) * height * scale


# ---------------------------------------------------------------- argument checks shared by the families
def check_piecewise(boundaries, values) -> tuple[list, list]:
    """``boundaries`` strictly increasing and ``len(boundaries) + 1`` rates ``>= 0``, as lists."""
    boundaries = check_increasing("boundaries", boundaries)
    if not isinstance(values, (list, tuple)) or len(values) != len(boundaries) + 1:
        raise ValueError(f"values must have len(boundaries) + 1 = {len(boundaries) + 1} elements, got {values!r}")
    return boundaries, [check_number(f"values[{i}]", v, lo=0.0) for i, v in enumerate(values)]


def check_warmup(start_lr, end_lr) -> tuple[float, float]:
    """A linear warm-up's end points: real numbers with ``end_lr > start_lr``."""
    start_lr, end_lr = check_number("start_lr", start_lr), check_number("end_lr", end_lr)
    if not end_lr > start_lr:
        raise ValueError(f"end_lr must be > start_lr, got end_lr={end_lr!r}, start_lr={start_lr!r}")
    return start_lr, end_lr


def check_decay_factor(name: str, value) -> float:
    """A per-period decay factor in ``[0, 1)``."""
    return check_number(name, value, lo=0.0, hi=1.0, hi_open=True)


# ---------------------------------------------------------------- reduce on plateau
def check_plateau(mode, threshold_mode, factor_name: str, factor, patience, cooldown) -> tuple[str, str]:
    """Check ReduceOnPlateau's arguments (both families); returns ``(mode, threshold_mode)``
    lower-cased."""
    mode = str(mode).lower()
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    threshold_mode = str(threshold_mode).lower()
    if threshold_mode not in ("rel", "abs"):
        raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
    check_decay_factor(factor_name, factor)
    check_int("patience", patience, lo=0)
    check_int("cooldown", cooldown, lo=0)
    return mode, threshold_mode


def check_plateau_bounds(threshold, min_lr, eps_name: str, eps) -> tuple[float, float, float]:
    """Check ReduceOnPlateau's ``threshold``, ``min_lr`` and ``eps`` (named ``eps_name``), each
    ``>= 0`` (both families); returns them as :func:`check_number` gives them."""
    return (
        check_number("threshold", threshold, lo=0.0),
        check_number("min_lr", min_lr, lo=0.0),
        check_number(eps_name, eps, lo=0.0),
    )


# (best, num_bad_epochs, cooldown_counter) before the first observation, in plateau_update's order
PLATEAU_START = (None, 0, 0)


def plateau_is_better(current, best, mode: str, threshold_mode: str, threshold: float) -> bool:
    """Whether ``current`` improves on ``best``: ``'min'`` mode ``current < best*(1 - t)``
    (``'rel'``) or ``current < best - t`` (``'abs'``); ``'max'`` mirrors it."""
    if mode == "min":
        return current < (best - best * threshold if threshold_mode == "rel" else best - threshold)
    return current > (best + best * threshold if threshold_mode == "rel" else best + threshold)


class Plateau(NamedTuple):
    """ReduceOnPlateau's settings, both families (the 2.x ``factor`` and ``epsilon`` are
    fluid's ``decay_rate`` and ``eps``), as :func:`check_plateau` and
    :func:`check_plateau_bounds` return them."""

    mode: str
    threshold_mode: str
    threshold: float
    patience: int
    cooldown: int
    factor: float
    min_lr: float
    eps: float


def plateau_update(value, best, num_bad_epochs: int, cooldown_counter: int, lr: float, rule: Plateau) -> tuple:
    """One ReduceOnPlateau observation (both families) -> ``(best, num_bad_epochs,
    cooldown_counter, lr)``. During a cooldown nothing but the counter changes; after more
    than ``rule.patience`` bad observations the rate becomes ``max(lr * factor, min_lr)`` if
    that lowers it by more than ``eps``, and a cooldown starts."""
    mode, threshold_mode, threshold, patience, cooldown, factor, min_lr, eps = rule
    if cooldown_counter > 0:
        return best, num_bad_epochs, cooldown_counter - 1, lr
    if best is None or plateau_is_better(value, best, mode, threshold_mode, threshold):
        best, num_bad_epochs = value, 0
    else:
        num_bad_epochs += 1
    if num_bad_epochs > patience:
        cooldown_counter, num_bad_epochs = cooldown, 0
        new_lr = max(lr * factor, min_lr)
        if lr - new_lr > eps:
            lr = new_lr
    return best, num_bad_epochs, cooldown_counter, lr
