"""Ops that create or update persistable state: initializers, lr schedules, regularization
(the optimize ops are registered by :mod:`torchfluid.static.optimize`, see the package docstring)."""

from __future__ import annotations

import numpy as np
import torch

from ..dtypes import torch_dtype
from ..lr import formulas
from .registry import register

# ---------------------------------------------------------------- initializers


@register("initializer", ["Out"])
def initializer(*, shape, dtype, initializer, seed=0):
    """A new ``shape``/``dtype`` tensor filled in place by ``initializer(tensor)``.

    ``seed != 0`` makes the fill deterministic without touching the global torch RNG.
    """
    t = torch.empty(tuple(shape), dtype=torch_dtype(dtype))
    if seed:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            initializer(t)
    else:
        initializer(t)
    return t


@register("assign_value", ["Out"])
def assign_value(*, shape, dtype, values):
    """A tensor of ``shape`` holding ``values`` (a flat list)."""
    return torch.tensor(np.asarray(values), dtype=torch_dtype(dtype)).reshape(tuple(shape))


# ---------------------------------------------------------------- lr schedules


def _lr_infer(step_meta, lr_meta=None, **attrs):
    return torch.empty((1,), dtype=torch_dtype(attrs.get("dtype", "float32")), device="meta")


@register("lr_schedule", ["Out"], infer=_lr_infer)
def lr_schedule(Step, LearningRate=None, *, schedule, params, dtype="float32"):
    """``Out = formulas.<schedule>(step, **params)`` as a 1-element ``dtype`` tensor.

    ``Step`` is the global step counter; ``LearningRate`` (optional) feeds the
    ``learning_rate`` parameter from another variable (``linear_lr_warmup`` over a decay).
    """
    kwargs = dict(params)
    if LearningRate is not None:
        kwargs["learning_rate"] = float(LearningRate.reshape(-1)[0])
    value = getattr(formulas, schedule)(float(Step.reshape(-1)[0]), **kwargs)
    return torch.tensor([value], dtype=torch_dtype(dtype))


# ---------------------------------------------------------------- gradient pipeline


@register("regularization", ["Out"])
def regularization(Param, Grad, *, regularizer):
    """``regularizer(param, grad)``: the gradient plus the regularization term."""
    with torch.no_grad():
        return regularizer(Param, Grad)
