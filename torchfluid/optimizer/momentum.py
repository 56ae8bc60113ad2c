"""``MomentumOptimizer`` (alias ``Momentum``): Paddle's Momentum (see :mod:`torchfluid.kernels.momentum`).

Maths (Paddle's ``momentum`` op), ``mu`` the momentum::

    velocity = velocity * mu + g                  velocity starts at 0
    p        = p - lr * velocity                  p = p - (g + velocity * mu) * lr with use_nesterov

One accumulator, ``velocity`` (param-shaped; ``state_dict`` key ``<param>_velocity_0``),
in the parameter's dtype (float32 for float16/bfloat16 parameters with
``multi_precision=True``, which also keeps float32 master weights, as Paddle 2.x).
``momentum`` and ``use_nesterov`` are group options (Paddle 2.x parameter groups may set
``momentum``). ``torchfluid.optim.Momentum`` names the velocity ``momentum_buffer`` in
torch's layout, so a ``torch.optim.SGD(momentum=mu)`` state dict loads into it: with
torch's default ``dampening=0`` torch's buffer and Paddle's velocity are the same
numbers (details in :mod:`torchfluid.kernels.momentum`).

The gradient is clipped and regularized first, as for every torchfluid optimizer; Paddle
2.x's ``weight_decay`` (a float or ``L2Decay``), which Paddle fuses into the op as
``p * coeff + g``, is that same coupled L2 decay. A row-sparse gradient
(``Embedding(is_sparse=True)``, torch's ``sparse=True``) follows Paddle's sparse kernel:
duplicate rows are summed and every row is updated, absent rows with gradient 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

import torch

from .._checks import check_bool, check_number
from ..kernels.momentum import momentum_
from ..kernels.table import GradFold
from .base import Optimizer, UpdateParts
from .fused import FlatRule, fused_path
from .state import TORCH_STEP_OPTIONS

__all__ = ["MomentumOptimizer", "Momentum", "MomentumRule"]


@dataclasses.dataclass(frozen=True)
class MomentumRule(FlatRule):
    """Momentum's update rule for :func:`~torchfluid.optimizer.pipeline.run_update`: the
    ``velocity`` accumulator (zeros in the state dtype: the parameter's, float32 for
    multi-precision float16/bfloat16 parameters) and Paddle's kernel, on the float32 master
    weight where there is one."""

    op_type = "momentum"
    accumulator_names = ("velocity",)
    flat_class = "FlatMomentum"  # the fused path's kernel (torchfluid.optimizer.fused.FlatRule)
    supports_complex = True  # the update is linear: a complex parameter moves as its two real coordinates
    torch_accumulators = MappingProxyType({"velocity": "momentum_buffer"})  # torch.optim.SGD's names
    torch_class = "torch.optim.SGD"
    torch_group_keys = MappingProxyType({"nesterov": "use_nesterov"})
    # torch.optim.SGD's options without maths here: allowed only at their neutral value
    torch_neutral_options = MappingProxyType(
        {
            "dampening": (0, "Paddle's momentum has no dampening (torchfluid.optim.SGD has torch's)"),
            **TORCH_STEP_OPTIONS,
        }
    )

    @staticmethod
    def new_state(p: torch.Tensor, hparams: Mapping, dtype: torch.dtype) -> dict:
        return {"velocity": torch.zeros_like(p, dtype=dtype)}

    @staticmethod
    def fused_step(fg, hparams: Mapping, grads, lrs, fold: GradFold) -> None:
        fg.step(lr=lrs, mu=hparams["momentum"], use_nesterov=hparams["use_nesterov"], grads=grads, fold=fold)

    @staticmethod
    def update(param, grad, state, *, lr: float, hparams: Mapping, precision, name: str) -> None:
        momentum_(
            param,
            grad.to_dense() if grad.is_sparse else grad,  # Paddle: merged rows, every row updated
            state["velocity"],
            lr=lr,
            mu=hparams["momentum"],
            use_nesterov=hparams["use_nesterov"],
        )


class MomentumOptimizer(Optimizer, fluid_attributes=("momentum", "use_nesterov")):
    """Momentum with fluid's API: ``MomentumOptimizer(learning_rate, momentum,
    parameter_list=None, use_nesterov=False, regularization=None, grad_clip=None,
    name=None)``; Paddle 2.x's ``paddle.optimizer.Momentum(learning_rate=0.001,
    momentum=0.9, parameters=None, use_nesterov=False, weight_decay=None, grad_clip=None,
    multi_precision=False, rescale_grad=1.0, use_multi_tensor=False, name=None)`` by
    keyword (the first six positions mean the same in both)::

        velocity = velocity * mu + g;  p = p - lr * velocity
        (use_nesterov: p = p - (g + velocity * mu) * lr)

    Allowed: ``momentum >= 0`` (a finite real number), ``use_nesterov`` a bool, both per
    group as well; ``learning_rate`` and ``momentum`` must be set (None raises ValueError,
    as Paddle 2.x). ``multi_precision=True``: float32 master weights and velocity for
    float16/bfloat16 parameters. ``use_multi_tensor`` (a bool) is accepted and changes
    nothing (Paddle's multi-tensor kernel computes the same numbers). ``rescale_grad`` must
    be 1.0: Paddle's CPU kernel ignores it for dense gradients while its GPU kernel
    multiplies the gradient before its fused L2 decay, so no single rule reproduces Paddle
    (scale the loss or the learning rate instead). ``fused``: None (default) updates the
    float32/float64 CPU parameters of each group and dtype with one single-pass numba kernel
    call (the same numbers as the reference kernel, bit for bit; clip and L2/L1 decay folded
    in) and everything else with the reference kernel; False always uses the reference
    kernel; True requires the fused one. ``options``:
    :class:`~torchfluid.optimizer.base.Optimizer`'s keyword arguments (``parameters``,
    ``weight_decay``, ``shard_state``, ``grad_reduction``, ``process_group``)."""

    def __init__(
        self,
        learning_rate=0.001,
        momentum: float = 0.9,
        parameter_list=None,
        use_nesterov: bool = False,
        regularization=None,
        grad_clip=None,
        name=None,
        *,
        multi_precision: bool = False,
        rescale_grad: float = 1.0,
        use_multi_tensor: bool = False,
        fused: bool | None = None,
        **options,
    ):
        if learning_rate is None:
            raise ValueError("learning_rate is not set: pass a float >= 0, a learning-rate schedule or a variable")
        defaults = self.checked_options({"momentum": momentum, "use_nesterov": use_nesterov})
        check_bool("use_multi_tensor", use_multi_tensor)
        if check_number("rescale_grad", rescale_grad) != 1.0:
            raise ValueError(
                f"rescale_grad must be 1.0, got {rescale_grad!r}: Paddle's CPU kernel ignores it for dense "
                "gradients and its GPU kernel scales the gradient before the fused L2 decay; scale the loss or "
                "the learning rate instead"
            )
        fused_update = fused_path(fused)
        self.fused = fused
        parts = UpdateParts(
            MomentumRule(),
            defaults=defaults,
            fused=fused_update,
        )
        super().__init__(
            learning_rate,
            parameter_list,
            regularization,
            grad_clip,
            name,
            parts=parts,
            multi_precision=multi_precision,
            **options,
        )

    @classmethod
    def checked_options(cls, group: Mapping) -> dict:
        """Range-check a group's Momentum options; return them normalised (a float, a bool)."""
        return {
            "momentum": check_number("momentum", group["momentum"], lo=0.0),
            "use_nesterov": check_bool("use_nesterov", group["use_nesterov"]),
        }


Momentum = MomentumOptimizer
