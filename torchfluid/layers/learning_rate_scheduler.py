"""Fluid's learning-rate decays as layers (``fluid.layers.exponential_decay`` ...).

Static mode: one ``lr_schedule`` op (role LRSched) computes the rate from the global
step counter ``@LR_DECAY_COUNTER@`` -- a persistable int64 ``[1]`` variable that the
startup program sets to ``begin - 1`` and an ``increment`` op at the head of the main
program advances once per run, as Paddle does. The maths is :mod:`torchfluid.lr_math`.
Dygraph mode: the matching ``fluid.dygraph`` ``LearningRateDecay`` object, as Paddle.
"""

from __future__ import annotations

from .. import lr_math as M
from ..static.framework import Variable, default_main_program
from .helper import LayerHelper, in_dygraph_mode

__all__ = [
    "piecewise_decay", "exponential_decay", "natural_exp_decay", "inverse_time_decay",
    "polynomial_decay", "cosine_decay", "noam_decay", "linear_lr_warmup", "autoincreased_step_counter",
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
    counter = block.create_var(name, [1], "int64", persistable=True, stop_gradient=True,
                               belong_to_optimizer=True)
    helper.fill_startup(counter, begin - 1)
    with default_main_program()._lr_schedule_guard():
        block._prepend_op("increment", {"X": [counter]}, {"Out": [counter]}, {"step": float(step)})
    return counter


def _schedule(schedule, params, begin=0, learning_rate=None, dygraph=None):
    if in_dygraph_mode():
        return dygraph()
    counter = autoincreased_step_counter(COUNTER_NAME, begin=begin, step=1)
    helper = LayerHelper(schedule)
    inputs = {"Step": [counter]}
    if isinstance(learning_rate, Variable):
        inputs["LearningRate"] = [learning_rate]
    with default_main_program()._lr_schedule_guard():
        out = helper.tmp_var("float32", stop_gradient=True)
        helper.append_op("lr_schedule", inputs, {"Out": [out]},
                         {"schedule": schedule, "params": params, "dtype": "float32"})
    return out


def _dy():
    from ..dygraph import learning_rate_scheduler as D

    return D


def piecewise_decay(boundaries, values):
    """``values[i]`` while ``step < boundaries[i]``, then ``values[-1]`` (step from 0)."""
    boundaries = M.check_increasing("boundaries", boundaries)
    if len(values) != len(boundaries) + 1:
        raise ValueError(f"piecewise_decay: len(values)={len(values)} must be len(boundaries)+1={len(boundaries) + 1}")
    return _schedule("piecewise_decay", {"boundaries": list(boundaries), "values": [float(v) for v in values]},
                     dygraph=lambda: _dy().PiecewiseDecay(boundaries, values, 0))


def _ratio_decay(kind, cls):
    def layer(learning_rate, decay_steps, decay_rate, staircase=False):
        M.check_positive("decay_steps", decay_steps)
        params = {"learning_rate": float(learning_rate), "decay_steps": float(decay_steps),
                  "decay_rate": float(decay_rate), "staircase": bool(staircase)}
        return _schedule(kind, params,
                         dygraph=lambda: getattr(_dy(), cls)(learning_rate, decay_steps, decay_rate, staircase))

    layer.__name__ = kind
    layer.__doc__ = f"``lr_math.{kind}`` of the global step (``r = step / decay_steps``, floored if staircase)."
    return layer


exponential_decay = _ratio_decay("exponential_decay", "ExponentialDecay")
natural_exp_decay = _ratio_decay("natural_exp_decay", "NaturalExpDecay")
inverse_time_decay = _ratio_decay("inverse_time_decay", "InverseTimeDecay")


def polynomial_decay(learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False):
    """``(lr - end) * (1 - s / D) ** power + end`` (see ``lr_math.polynomial_decay``)."""
    M.check_positive("decay_steps", decay_steps)
    params = {"learning_rate": float(learning_rate), "decay_steps": float(decay_steps),
              "end_learning_rate": float(end_learning_rate), "power": float(power), "cycle": bool(cycle)}
    return _schedule("polynomial_decay", params, dygraph=lambda: _dy().PolynomialDecay(
        learning_rate, decay_steps, end_learning_rate, power, cycle))


def cosine_decay(learning_rate, step_each_epoch, epochs):
    """``lr * 0.5 * (cos(floor(step / step_each_epoch) * pi / epochs) + 1)``."""
    M.check_positive("step_each_epoch", step_each_epoch)
    M.check_positive("epochs", epochs)
    params = {"learning_rate": float(learning_rate), "step_each_epoch": float(step_each_epoch),
              "epochs": float(epochs)}
    return _schedule("cosine_decay", params,
                     dygraph=lambda: _dy().CosineDecay(learning_rate, step_each_epoch, epochs))


def noam_decay(d_model, warmup_steps, learning_rate=1.0):
    """``lr * d_model**-0.5 * min(step**-0.5, step * warmup_steps**-1.5)``, step from 1."""
    M.check_positive("d_model", d_model)
    M.check_positive("warmup_steps", warmup_steps)
    params = {"d_model": float(d_model), "warmup_steps": float(warmup_steps), "learning_rate": float(learning_rate)}
    return _schedule("noam_decay", params, begin=1,
                     dygraph=lambda: _dy().NoamDecay(d_model, warmup_steps, learning_rate=learning_rate))


def linear_lr_warmup(learning_rate, warmup_steps, start_lr, end_lr):
    """Linear from ``start_lr`` to ``end_lr`` over ``warmup_steps``, then ``learning_rate``
    (a float or another decay's variable)."""
    M.check_positive("warmup_steps", warmup_steps)
    params = {"warmup_steps": float(warmup_steps), "start_lr": float(start_lr), "end_lr": float(end_lr)}
    if not isinstance(learning_rate, Variable):
        params["learning_rate"] = float(learning_rate)
    return _schedule("linear_warmup", params, learning_rate=learning_rate, dygraph=lambda: _dy().LinearLrWarmup(
        learning_rate, warmup_steps, start_lr, end_lr))
