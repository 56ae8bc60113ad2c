"""Ops that create or update persistable state: initializers, lr schedules, optimizers.

The optimizer ops (``rmsprop``, ``sgd``, ``adam``) hold the optimizer object as an
attribute and call its hooks, so static mode runs exactly the kernel eager mode runs::

    state = {accumulator name: tensor}           # from the op's accumulator slots
    optimizer._kernel_update(Param, Grad, state, lr=float(LearningRate), group=group)

They update ``Param`` and the accumulators in place (``inplace=True``).
"""

from __future__ import annotations

import numpy as np
import torch

from .. import lr_math
from ..dtypes import torch_dtype
from .registry import register

# ---------------------------------------------------------------- initializers


@register("initializer", [], ["Out"])
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


@register("assign_value", [], ["Out"])
def assign_value(*, shape, dtype, values):
    """A tensor of ``shape`` holding ``values`` (a flat list)."""
    return torch.tensor(np.asarray(values), dtype=torch_dtype(dtype)).reshape(tuple(shape))


# ---------------------------------------------------------------- lr schedules

LR_SCHEDULES = (
    "piecewise_decay",
    "noam_decay",
    "exponential_decay",
    "natural_exp_decay",
    "inverse_time_decay",
    "polynomial_decay",
    "cosine_decay",
    "linear_warmup",
)


def _lr_infer(step_meta, lr_meta=None, **attrs):
    return torch.empty((1,), dtype=torch_dtype(attrs.get("dtype", "float32")), device="meta")


@register("lr_schedule", ["Step", "LearningRate"], ["Out"], infer=_lr_infer)
def lr_schedule(Step, LearningRate=None, *, schedule, params, dtype="float32"):
    """``Out = lr_math.<schedule>(step, **params)`` as a 1-element ``dtype`` tensor.

    ``Step`` is the global step counter; ``LearningRate`` (optional) feeds the
    ``learning_rate`` parameter from another variable (``linear_lr_warmup`` over a decay).
    """
    kwargs = dict(params)
    if LearningRate is not None:
        kwargs["learning_rate"] = float(LearningRate.reshape(-1)[0])
    value = getattr(lr_math, schedule)(float(Step.reshape(-1)[0]), **kwargs)
    return torch.tensor([value], dtype=torch_dtype(dtype))


# ---------------------------------------------------------------- gradient pipeline


def _clip_infer(*grads, **attrs):
    return [torch.empty(g.shape, dtype=g.dtype, device="meta") for g in grads[0]]


@register("grad_clip", ["X"], ["Out"], list_slots=["X", "Out"], infer=_clip_infer)
def grad_clip(X, *, clip, need_clip):
    """``clip.clip_tensors(grads, need_clip)``: the optimizer's gradient clipping."""
    return list(clip.clip_tensors(list(X), list(need_clip)))


@register("regularization", ["Param", "Grad"], ["Out"])
def regularization(Param, Grad, *, regularizer):
    """``regularizer(param, grad)``: the gradient plus the regularization term."""
    with torch.no_grad():
        return regularizer(Param, Grad)


# ---------------------------------------------------------------- optimizer updates

# Paddle's slot name for each accumulator name.
ACCUMULATOR_SLOTS = {
    "momentum": "Moment",
    "mean_square": "MeanSquare",
    "mean_grad": "MeanGrad",
    "moment1": "Moment1",
    "moment2": "Moment2",
    "beta1_pow_acc": "Beta1Pow",
    "beta2_pow_acc": "Beta2Pow",
    "velocity": "Velocity",
}


def slot_of(accumulator: str) -> str:
    """The op slot holding accumulator ``accumulator`` (CamelCase when not Paddle's)."""
    return ACCUMULATOR_SLOTS.get(accumulator) or "".join(p.title() for p in accumulator.split("_"))


def _make_update(type_, acc_slots):
    def forward(Param, Grad, LearningRate, *accs, optimizer, group, accumulators, **paddle_attrs):
        state = {name: t for name, t in zip(accumulators, accs) if t is not None}
        optimizer._kernel_update(Param, Grad, state, lr=LearningRate.item(), group=group)

    forward.__doc__ = f"Paddle ``{type_}`` op: ``optimizer._kernel_update`` in place."
    outs = ["ParamOut"] + [s + "Out" for s in acc_slots]
    register(type_, ["Param", "Grad", "LearningRate", *acc_slots], outs, inplace=True)(forward)
    return forward


rmsprop = _make_update("rmsprop", ["Moment", "MeanSquare", "MeanGrad"])
sgd = _make_update("sgd", [])
adam = _make_update("adam", ["Moment1", "Moment2", "Beta1Pow", "Beta2Pow"])
momentum = _make_update("momentum", ["Velocity"])
