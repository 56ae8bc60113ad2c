"""Fluid's learning-rate decays as layers (``fluid.layers.exponential_decay`` ...).

Each function builds the matching fluid decay (:mod:`torchfluid.lr.fluid`), which checks
the arguments. Dygraph mode returns that decay, as Paddle does. Static mode appends one
``lr_schedule`` op (role LRSched) that evaluates the decay's formula
(:mod:`torchfluid.lr.formulas`) with the decay's parameters at the global step counter
``@LR_DECAY_COUNTER@`` -- a persistable int64 ``[1]`` variable that the startup program
sets to ``begin - 1`` and an ``increment`` op at the head of the main program advances
once per run, as Paddle does.
"""

from __future__ import annotations

import numbers

from ..lr import fluid as decays
from ..static.framework import Variable, default_main_program
from .helper import LayerHelper, in_dygraph_mode

__all__ = [
    "piecewise_decay",
    "exponential_decay",
    "natural_exp_decay",
    "inverse_time_decay",
    "polynomial_decay",
    "cosine_decay",
    "noam_decay",
    "linear_lr_warmup",
    "autoincreased_step_counter",
]

COUNTER_NAME = "@LR_DECAY_COUNTER@"


def autoincreased_step_counter(counter_name=None, begin=1, step=1):
    """The persistable int64 step counter; incremented by ``step`` at each run, first
    value ``begin``."""
    name = counter_name or COUNTER_NAME
    block = default_main_program().global_block()
    if block.has_var(name):
        return block.var(name)
    helper = LayerHelper("global_step_counter")
    counter = block.create_var(name, [1], "int64", persistable=True, stop_gradient=True, belong_to_optimizer=True)
    helper.fill_startup(counter, begin - 1)
    with default_main_program()._lr_schedule_guard():
        block._prepend_op("increment", {"X": [counter]}, {"Out": [counter]}, {"step": float(step)})
    return counter


def _attr(value):
    """A formula parameter as an op attribute: numbers as Python floats, lists element-wise."""
    if isinstance(value, (list, tuple)):
        return [_attr(v) for v in value]
    return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else value


def _schedule(decay, begin=0, learning_rate=None):
    """``decay`` in dygraph mode; in static mode a variable holding ``decay.formula`` at the step counter
    (from ``begin``), fed ``learning_rate`` from another variable when one is given."""
    if in_dygraph_mode():
        return decay
    counter = autoincreased_step_counter(COUNTER_NAME, begin=begin, step=1)
    schedule = decay.formula.__name__
    params = {k: _attr(v) for k, v in decay.formula_params().items()}
    inputs = {"Step": [counter]}
    if learning_rate is not None:
        inputs["LearningRate"] = [learning_rate]
        del params["learning_rate"]
    helper = LayerHelper(schedule)
    with default_main_program()._lr_schedule_guard():
        out = helper.tmp_var("float32", stop_gradient=True)
        helper.append_op(
            "lr_schedule", inputs, {"Out": [out]}, {"schedule": schedule, "params": params, "dtype": "float32"}
        )
    return out


def piecewise_decay(boundaries, values):
    """``values[i]`` while ``step < boundaries[i]``, then ``values[-1]`` (step from 0)."""
    return _schedule(decays.PiecewiseDecay(boundaries, values, 0))


def exponential_decay(learning_rate, decay_steps, decay_rate, staircase=False):
    """``learning_rate * decay_rate ** r`` of the global step, ``r = step / decay_steps`` (floored if staircase)."""
    return _schedule(decays.ExponentialDecay(learning_rate, decay_steps, decay_rate, staircase))


def natural_exp_decay(learning_rate, decay_steps, decay_rate, staircase=False):
    """``learning_rate * exp(-decay_rate * r)`` of the global step, ``r = step / decay_steps`` (floored if
    staircase)."""
    return _schedule(decays.NaturalExpDecay(learning_rate, decay_steps, decay_rate, staircase))


def inverse_time_decay(learning_rate, decay_steps, decay_rate, staircase=False):
    """``learning_rate / (1 + decay_rate * r)`` of the global step, ``r = step / decay_steps`` (floored if
    staircase)."""
    return _schedule(decays.InverseTimeDecay(learning_rate, decay_steps, decay_rate, staircase))


def polynomial_decay(learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False):
    """``(lr - end) * (1 - s / D) ** power + end`` (see ``formulas.polynomial_decay``)."""
    return _schedule(decays.PolynomialDecay(learning_rate, decay_steps, end_learning_rate, power, cycle))


def cosine_decay(learning_rate, step_each_epoch, epochs):
    """``lr * 0.5 * (cos(floor(step / step_each_epoch) * pi / epochs) + 1)``."""
    return _schedule(decays.CosineDecay(learning_rate, step_each_epoch, epochs))


def noam_decay(d_model, warmup_steps, learning_rate=1.0):
    """``lr * d_model**-0.5 * min(step**-0.5, step * warmup_steps**-1.5)``, step from 1."""
    return _schedule(decays.NoamDecay(d_model, warmup_steps, learning_rate=learning_rate), begin=1)


def linear_lr_warmup(learning_rate, warmup_steps, start_lr, end_lr):
    """Linear from ``start_lr`` to ``end_lr`` over ``warmup_steps``, then ``learning_rate``
    (a float, or another decay: its variable in static mode, its object in dygraph mode)."""
    if isinstance(learning_rate, Variable):  # the rate after the warm-up is fed at run time
        return _schedule(decays.LinearLrWarmup(0.0, warmup_steps, start_lr, end_lr), learning_rate=learning_rate)
    return _schedule(decays.LinearLrWarmup(learning_rate, warmup_steps, start_lr, end_lr))
