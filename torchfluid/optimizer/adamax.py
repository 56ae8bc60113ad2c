"""``AdamaxOptimizer`` (alias ``Adamax``): Paddle's Adamax (see :mod:`torchfluid.kernels.adamax`).

Accumulators (Paddle's names): ``moment``, ``inf_norm`` (param-shaped, from 0) and
``beta1_pow_acc`` (shape [1], from ``beta1``), in the parameter's dtype (float32 for
float16/bfloat16 parameters). The fused CPU kernel (``fused``, as Adam's) runs the dense
float32/float64 parameters, bit for bit as the reference kernel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from ..kernels import adamax_
from ..kernels.table import GradFold
from .adam import beta_pow_initial, powers_from_torch, step_from_powers
from .state import torch_step_tensor
from .base import Optimizer, UpdateParts
from .fused import TorchEpsilonRule, fused_path
from .state import TORCH_BETAS

__all__ = ["AdamaxOptimizer", "Adamax", "AdamaxRule"]

_UNIT = {"lo": 0.0, "hi": 1.0, "hi_open": True}


@dataclasses.dataclass(frozen=True)
class AdamaxRule(TorchEpsilonRule):
    """Adamax's update rule for :func:`~torchfluid.optimizer.pipeline.run_update` (a
    row-sparse gradient is made dense: every row moves, as Paddle's dense kernel)."""

    torch_class = "torch.optim.Adamax"
    torch_group_pairs = TORCH_BETAS  # torch's betas: beta1 and beta2
    # torch.optim.Adamax's names of this rule's records, in torch's layout
    torch_accumulators = MappingProxyType({"moment": "exp_avg", "inf_norm": "exp_inf"})
    op_type = "adamax"
    kernel = staticmethod(adamax_)
    kernel_hparams = MappingProxyType({"beta1": "beta1", "beta2": "beta2", "epsilon": "epsilon"})
    accumulator_names = ("moment", "inf_norm", "beta1_pow_acc")
    scalar_records = ("beta1_pow_acc",)
    fused_initial = staticmethod(beta_pow_initial)  # the powers start at their beta
    flat_class = "FlatAdamax"  # the fused path's kernel (torchfluid.optimizer.fused.FlatRule)

    @staticmethod
    def records_from_torch(entry: Mapping, hparams: Mapping) -> dict:
        """``beta1_pow_acc`` of a torch.optim.Adamax entry, from its ``step`` (:func:`powers_from_torch`)."""
        return powers_from_torch(entry, hparams, ("beta1",))

    @staticmethod
    def torch_records(entry: Mapping, hparams: Mapping) -> dict:
        """torch.optim.Adamax's ``step`` for an entry of this rule's records (:func:`step_from_powers`)."""
        return {"step": torch_step_tensor(step_from_powers(entry, hparams, ("beta1",)))}

    @staticmethod
    def fused_step(fg, hparams: Mapping, grads, lrs, fold: GradFold) -> None:
        fg.step(
            lr=lrs, beta1=hparams["beta1"], beta2=hparams["beta2"], epsilon=hparams["epsilon"], grads=grads, fold=fold
        )


class AdamaxOptimizer(Optimizer, fluid_attributes=("beta1", "beta2", "epsilon")):
    """Adamax with fluid's API: ``AdamaxOptimizer(learning_rate=0.001, beta1=0.9,
    beta2=0.999, epsilon=1e-8, parameter_list=None, regularization=None, grad_clip=None,
    name=None)`` (Paddle 2.x: ``parameters=``, ``weight_decay=``)::

        moment = beta1 * moment + (1 - beta1) * g;  inf_norm = max(|g|, beta2 * inf_norm + epsilon)
        p = p - lr / (1 - beta1_pow) * moment / inf_norm;  beta1_pow *= beta1

    Allowed: ``0 <= beta1, beta2 < 1``, ``epsilon > 0`` (finite real numbers), per group too.
    ``fused``: None (default) the fused CPU kernel wherever it applies, False the reference
    kernel always, True required."""

    option_bounds = MappingProxyType({"beta1": _UNIT, "beta2": _UNIT, "epsilon": {"lo": 0.0, "lo_open": True}})

    def __init__(
        self,
        learning_rate=0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        parameter_list=None,
        regularization=None,
        grad_clip=None,
        name=None,
        *,
        fused: bool | None = None,
        **options,
    ):
        defaults = self.checked_options({"beta1": beta1, "beta2": beta2, "epsilon": epsilon})
        self.fused = fused
        parts = UpdateParts(AdamaxRule(), defaults=defaults, fused=fused_path(fused))
        super().__init__(learning_rate, parameter_list, regularization, grad_clip, name, parts=parts, **options)


Adamax = AdamaxOptimizer
