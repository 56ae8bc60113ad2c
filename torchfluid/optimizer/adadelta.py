"""``AdadeltaOptimizer`` (alias ``Adadelta``): Paddle's Adadelta (see :mod:`torchfluid.kernels.adadelta`).

Accumulators (Paddle's names, so the state keys are Paddle's ``<param>__avg_squared_grad_0``
and ``<param>__avg_squared_update_0``): ``_avg_squared_grad`` and ``_avg_squared_update``
(param-shaped, from 0), in the parameter's dtype (float32 for float16/bfloat16 parameters).
The fused CPU kernel (``fused``, as Adam's) runs the dense float32/float64 parameters, bit
for bit as the reference kernel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from ..kernels import adadelta_
from ..kernels.table import GradFold
from .base import Optimizer, UpdateParts
from .fused import TorchEpsilonRule, fused_path

__all__ = ["AdadeltaOptimizer", "Adadelta", "AdadeltaRule"]


@dataclasses.dataclass(frozen=True)
class AdadeltaRule(TorchEpsilonRule):
    """Adadelta's update rule for :func:`~torchfluid.optimizer.pipeline.run_update` (a
    row-sparse gradient is made dense: every row moves)."""

    torch_class = "torch.optim.Adadelta"
    # torch.optim.Adadelta's names of this rule's records, in torch's layout
    torch_accumulators = MappingProxyType({"_avg_squared_grad": "square_avg", "_avg_squared_update": "acc_delta"})
    op_type = "adadelta"
    kernel = staticmethod(adadelta_)
    kernel_hparams = MappingProxyType({"rho": "rho", "epsilon": "epsilon"})
    accumulator_names = ("_avg_squared_grad", "_avg_squared_update")
    flat_class = "FlatAdadelta"  # the fused path's kernel (torchfluid.optimizer.fused.FlatRule)

    @staticmethod
    def fused_step(fg, hparams: Mapping, grads, lrs, fold: GradFold) -> None:
        fg.step(lr=lrs, rho=hparams["rho"], epsilon=hparams["epsilon"], grads=grads, fold=fold)


class AdadeltaOptimizer(Optimizer, fluid_attributes=("rho", "epsilon")):
    """Adadelta with fluid's API: ``AdadeltaOptimizer(learning_rate=0.001, epsilon=1e-6,
    rho=0.95, parameter_list=None, regularization=None, grad_clip=None, name=None)``
    (Paddle 2.x: ``parameters=``, ``weight_decay=``)::

        E[g^2] = rho * E[g^2] + (1 - rho) * g^2
        u      = -(sqrt(E[u^2] + epsilon) / sqrt(E[g^2] + epsilon)) * g;  p = p + lr * u
        E[u^2] = rho * E[u^2] + (1 - rho) * u^2

    The learning rate scales the update, as in Paddle 2.5 and later (earlier Paddle ignored
    it). Allowed: ``0 <= rho <= 1``, ``epsilon > 0`` (finite real numbers), per group too."""

    option_bounds = MappingProxyType({"epsilon": {"lo": 0.0, "lo_open": True}, "rho": {"lo": 0.0, "hi": 1.0}})

    def __init__(
        self,
        learning_rate=0.001,
        epsilon: float = 1e-6,
        rho: float = 0.95,
        parameter_list=None,
        regularization=None,
        grad_clip=None,
        name=None,
        *,
        fused: bool | None = None,
        **options,
    ):
        defaults = self.checked_options({"epsilon": epsilon, "rho": rho})
        self.fused = fused
        parts = UpdateParts(AdadeltaRule(), defaults=defaults, fused=fused_path(fused))
        super().__init__(learning_rate, parameter_list, regularization, grad_clip, name, parts=parts, **options)


Adadelta = AdadeltaOptimizer
