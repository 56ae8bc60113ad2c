"""Ops that create or update persistable state: initializers, lr schedules, optimizers.

The optimize ops (``rmsprop``, ``sgd``, ``adam``; one per ``minimize``, see
:mod:`torchfluid.static.optimize`) carry an :class:`OptimizeSection` (a frozen record,
never the optimizer object) and call the one update function with the scope's tensors::

    run_update(section.config, [Item(name, Param[i], Grad[i], hparams, ...)], runtime)

so a program's update is eager ``step()``'s, option for option and bit for bit.
"""

from __future__ import annotations

import dataclasses
import weakref

import numpy as np
import torch

from .. import lr_math
from ..optimizer.fused import FusedRMSPropUpdate
from ..optimizer.pipeline import Item, UpdateConfig, UpdateRuntime, run_update
from ..optimizer.precision import Precision
from .dtypes import to_torch_dtype
from .registry import register

# ---------------------------------------------------------------- initializers


@register("initializer", [], ["Out"])
def initializer(*, shape, dtype, initializer, seed=0):
    """A new ``shape``/``dtype`` tensor filled in place by ``initializer(tensor)``.

    ``seed != 0`` makes the fill deterministic without touching the global torch RNG.
    """
    t = torch.empty(tuple(shape), dtype=to_torch_dtype(dtype))
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
    return torch.tensor(np.asarray(values), dtype=to_torch_dtype(dtype)).reshape(tuple(shape))


# ---------------------------------------------------------------- lr schedules


def _lr_infer(step_meta, lr_meta=None, **attrs):
    return torch.empty((1,), dtype=to_torch_dtype(attrs.get("dtype", "float32")), device="meta")


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
    return torch.tensor([value], dtype=to_torch_dtype(dtype))


# ---------------------------------------------------------------- gradient pipeline


@register("regularization", ["Param", "Grad"], ["Out"])
def regularization(Param, Grad, *, regularizer):
    """``regularizer(param, grad)``: the gradient plus the regularization term."""
    with torch.no_grad():
        return regularizer(Param, Grad)


# ---------------------------------------------------------------- optimizer updates

OPTIMIZE_OP_TYPES = ("rmsprop", "sgd", "adam")


@dataclasses.dataclass(frozen=True, eq=False)
class OptimizeSection:
    """What one optimize op updates and how: the optimizer's frozen configuration and,
    per parameter in op order, its name, lr multiplier, regularizer and ``need_clip``;
    ``accumulators``: the state names each parameter has in the op's ``State`` slot."""

    config: UpdateConfig
    names: tuple[str, ...]
    lr_mults: tuple[float, ...]
    regularizers: tuple
    need_clip: tuple[bool, ...]
    accumulators: tuple[str, ...]

    def __repr__(self) -> str:
        return f"OptimizeSection({type(self.config.rule).__name__}, {len(self.names)} params)"


_RUNTIMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _runtime(section: OptimizeSection) -> tuple[UpdateRuntime, dict]:
    """The run-time side of ``section`` (fused flat buffers, master weights, rounding
    generators) and its hyper-parameter record, kept for as long as the section lives."""
    entry = _RUNTIMES.get(section)
    if entry is None:
        config = section.config
        fused = None if config.fused is False else FusedRMSPropUpdate(required=config.fused is True)
        precision = Precision(multi_precision=config.multi_precision, state_dtype=config.state_dtype,
                              nonfinite=config.nonfinite)
        entry = _RUNTIMES[section] = (UpdateRuntime(precision, fused), dict(config.hparams))
    return entry


def _optimize_infer(params, grads, lr, state, *, section):
    return list(params), list(state)


def optimize(Param, Grad, LearningRate, State, *, section):
    """One update of every parameter of ``section`` by ``run_update``, the scope's tensors
    as (param, grad, state), lr = ``LearningRate`` x multipliers; returns the parameters
    and the state tensors as the update left them (after a fused step, views of the
    fused path's flat buffers, which then stay in the scope)."""
    runtime, hparams = _runtime(section)
    hparams["lr"] = float(LearningRate.reshape(-1)[0])
    n = len(section.accumulators)
    state, items = {}, []
    for i, (p, g) in enumerate(zip(Param, Grad, strict=True)):
        state[p] = dict(zip(section.accumulators, State[i * n:(i + 1) * n], strict=True))
        items.append(Item(section.names[i], p, g, hparams, section.lr_mults[i], section.regularizers[i],
                          section.need_clip[i]))
    runtime.state = state
    run_update(section.config, items, runtime)
    return list(Param), [state[p][acc] for p in Param for acc in section.accumulators]


for _type in OPTIMIZE_OP_TYPES:
    register(_type, ["Param", "Grad", "LearningRate", "State"], ["ParamOut", "StateOut"],
             list_slots=["Param", "Grad", "State", "ParamOut", "StateOut"], infer=_optimize_infer)(optimize)
