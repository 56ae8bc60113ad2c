"""``SGDOptimizer`` (alias ``SGD``): Paddle's plain SGD, ``p -= lr * g``, with torch.optim.SGD's
momentum options.

Paddle's SGD keeps no state. torch's ``momentum``, ``dampening`` and ``nesterov`` (keyword
arguments, group options as in torch) add a velocity, ``velocity`` (Paddle key
``<param>_velocity_0``, torch's ``momentum_buffer``), kept only while ``momentum`` is not 0::

    velocity = g                                         first step (torch's buffer starts as g)
    velocity = velocity * mu + (1 - dampening) * g       later steps
    p        = p - lr * velocity                         p = p - lr * (g + mu * velocity) with nesterov

With ``dampening=0`` this is Paddle's Momentum (:mod:`torchfluid.kernels.momentum`: a
velocity that starts at 0 gives ``g`` on the first step too). With ``dampening`` a 0-d
float32 ``step`` count (``<param>_step_0``) tells the first update, which is undamped as
torch's; a checkpoint without one (torch's) has started. ``weight_decay`` is the coupled L2
decay ``g + wd * p`` before the momentum, as torch's. Where torch rounds differently: the
kernel rounds ``mu`` to float32 first (Paddle's attribute), so float64 runs differ from
torch's in the last bits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

import torch

from .._checks import check_bool, check_number
from ..kernels import sgd_
from ..kernels.momentum import momentum_
from ..kernels.table import GradFold
from .base import Optimizer, UpdateParts, checked_tensor_hparams
from .fused import FlatRule, count_update, fused_path, plain_float_param
from .state import TORCH_STEP_OPTIONS

__all__ = ["SGDOptimizer", "SGD", "SGDRule"]


@dataclasses.dataclass(frozen=True)
class SGDRule(FlatRule):
    """SGD's update rule for :func:`~torchfluid.optimizer.pipeline.run_update`:
    ``p -= lr * g`` (a sparse gradient made dense first), no accumulators; with torch's
    ``momentum`` (module docstring) a ``velocity``, and with its ``dampening`` a ``step`` count."""

    op_type = "sgd"
    supports_complex = True  # linear updates: a complex parameter moves as its two real coordinates
    torch_accumulators = MappingProxyType({"velocity": "momentum_buffer"})  # torch.optim.SGD's names
    torch_class = "torch.optim.SGD"
    torch_neutral_options = TORCH_STEP_OPTIONS

    accumulator_names = ("velocity",)
    # torch's CyclicLR / OneCycleLR write the momentum into the groups, as a tensor if they were given one
    tensor_hparams = ("momentum",)
    step_count_option = "dampening"  # tells the first update (undamped) from the later ones (FlatMomentum keeps it)
    # a checkpoint without that count (torch.optim.SGD keeps none): its velocity has started
    optional_records = MappingProxyType({"step": 1.0})

    @staticmethod
    def check_hparams(values: Mapping) -> dict:
        """``{'momentum': float}``, checked: a finite number >= 0."""
        return {name: check_number(name, v, lo=0.0) for name, v in values.items()}

    def accumulators(self, hparams) -> list[str]:
        """``velocity`` while ``momentum`` is not 0, and with ``dampening`` a 0-d float32 ``step``
        count (0 until the first update, which starts the velocity at ``g`` undamped)."""
        return super().accumulators(hparams) if hparams["momentum"] != 0 else []

    def new_state(self, p: torch.Tensor, hparams, dtype: torch.dtype) -> dict:
        """The velocity at 0 in the state dtype (the parameter's, as torch's buffer and Paddle's
        Momentum; float32 with ``multi_precision``), the count at 0."""
        state = super().new_state(p, hparams, dtype)
        if "velocity" in state:
            state["velocity"] = torch.zeros_like(p, dtype=dtype)
        return state

    def fused_eligible(self, param: torch.Tensor, hparams, precision) -> bool:
        return plain_float_param(param, precision)  # the flat group keeps dampening's counts too

    @staticmethod
    def fused_layout(hparams) -> tuple:
        return (hparams["momentum"] != 0, hparams["dampening"] != 0)

    def fused_group(self, params, layout: tuple):
        from ..kernels import flat

        return flat.FlatMomentum(params, step_count=layout[1]) if layout[0] else flat.FlatSGD(params)

    @staticmethod
    def fused_step(fg, hparams: Mapping, grads, lrs, fold: GradFold) -> None:
        if hparams["momentum"] != 0:
            mu, nesterov, dampening = hparams["momentum"], hparams["nesterov"], hparams["dampening"]
            fg.step(lr=lrs, mu=mu, use_nesterov=nesterov, dampening=dampening, grads=grads, fold=fold)
        else:
            fg.step(lr=lrs, grads=grads, fold=fold)

    def update(self, param, grad, state, *, lr: float, hparams: Mapping, precision, name: str) -> None:
        g = grad.to_dense() if grad.is_sparse else grad  # every row moves
        target = param
        if target.is_complex():
            target, g = torch.view_as_real(target), torch.view_as_real(g)
        mu = hparams["momentum"]
        if mu == 0:
            sgd_(target, g, lr=lr)
            return
        dampening = hparams["dampening"]
        velocity = state.get("velocity")
        first = velocity is None  # momentum switched on in this group: the velocity starts here
        if first:
            velocity = state["velocity"] = torch.zeros_like(param, dtype=precision.state_dtype_for(param.dtype))
        if dampening != 0:  # dampening switched on in this group: an existing velocity has started
            first = count_update(state, param.device, started=not first) == 0 or first
        if velocity.is_complex():
            velocity = torch.view_as_real(velocity)
        # torch's first step: the velocity becomes g, undamped (from 0: 0 * mu + g)
        momentum_(
            target, g, velocity, lr=lr, mu=mu, use_nesterov=hparams["nesterov"], dampening=0.0 if first else dampening
        )


class SGDOptimizer(Optimizer):
    """SGD with fluid's API: ``SGDOptimizer(learning_rate=0.001, parameter_list=None,
    regularization=None, grad_clip=None, name=None)`` (Paddle 2.x: ``parameters=``,
    ``weight_decay=``); ``p -= lr * g``, no state.

    torch.optim.SGD's ``momentum`` (>= 0), ``dampening`` and ``nesterov`` (keywords, and
    group options) add its velocity (module docstring); ``nesterov`` needs ``momentum > 0``
    and ``dampening=0``, as torch's."""

    def __init__(
        self,
        learning_rate=0.001,
        parameter_list=None,
        regularization=None,
        grad_clip=None,
        name=None,
        *,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        fused: bool | None = None,
        **options,
    ):
        """``fused``: None (default) updates the dense float32/float64 CPU parameters of
        each group and dtype with one numba kernel call (bit for bit the reference kernel's
        numbers; clip and L2/L1 decay folded in; dampening too), the rest with the
        reference kernel; False always uses the reference kernel; True requires the fused
        one. ``options``: :class:`~torchfluid.optimizer.base.Optimizer`'s keyword arguments
        (``parameters``, ``weight_decay``, ``shard_state``, ``grad_reduction``, ``process_group``)."""
        defaults = self.checked_options({"momentum": momentum, "dampening": dampening, "nesterov": nesterov})
        fused_update = fused_path(fused)
        self.fused = fused
        parts = UpdateParts(SGDRule(), defaults=defaults, fused=fused_update)
        super().__init__(learning_rate, parameter_list, regularization, grad_clip, name, parts=parts, **options)

    @classmethod
    def checked_options(cls, group: Mapping) -> dict:
        """torch.optim.SGD's momentum options of a group, checked and normalised (a tensor
        momentum, 1 element, as it is: read and checked at each update)."""
        out = {
            **checked_tensor_hparams(SGDRule, group, {"momentum": ">= 0"}, variables=False),
            "dampening": check_number("dampening", group["dampening"]),
            "nesterov": check_bool("nesterov", group["nesterov"]),
        }
        if out["nesterov"] and (float(out["momentum"]) <= 0 or out["dampening"] != 0):
            raise ValueError(
                f"nesterov=True needs momentum > 0 and dampening=0 (as torch.optim.SGD), got "
                f"momentum={out['momentum']!r}, dampening={out['dampening']!r}"
            )
        return out


SGD = SGDOptimizer
