"""``AdamOptimizer`` (alias ``Adam``): Paddle's Adam (see :mod:`torchfluid.kernels.adam`).

Accumulators: ``moment1``, ``moment2`` (param-shaped) and ``beta1_pow_acc``,
``beta2_pow_acc`` (shape [1], starting at beta1 / beta2). Differs from ``torch.optim.Adam``
only in where eps sits (Paddle scales it by ``sqrt(1 - beta2^t)``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch

from .._checks import check_number
from ..kernels import adam_
from .base import Optimizer, UpdateParts

__all__ = ["AdamOptimizer", "Adam", "AdamRule"]


@dataclasses.dataclass(frozen=True)
class AdamRule:
    """Adam's update rule for :func:`~torchfluid.optimizer.pipeline.run_update`: the
    moments and the ``beta_pow`` accumulators, state in the parameter's dtype (float32
    for float16/bfloat16 parameters), Paddle's kernel."""

    op_type = "adam"
    compatible_accumulators = ()

    @staticmethod
    def accumulators(hparams: Mapping) -> list[str]:
        return ["moment1", "moment2", "beta1_pow_acc", "beta2_pow_acc"]

    @staticmethod
    def new_state(p: torch.Tensor, hparams: Mapping, dtype: torch.dtype) -> dict:
        state_dtype = p.dtype if p.dtype in (torch.float32, torch.float64) else torch.float32
        return {
            "moment1": torch.zeros_like(p, dtype=state_dtype),
            "moment2": torch.zeros_like(p, dtype=state_dtype),
            "beta1_pow_acc": torch.full([1], hparams["beta1"], dtype=state_dtype, device=p.device),
            "beta2_pow_acc": torch.full([1], hparams["beta2"], dtype=state_dtype, device=p.device),
        }

    @staticmethod
    def update(param, grad, state, *, lr: float, hparams: Mapping, precision, name: str) -> None:
        adam_(
            param.data,
            grad.to_dense() if grad.is_sparse else grad,
            state["moment1"],
            state["moment2"],
            state["beta1_pow_acc"],
            state["beta2_pow_acc"],
            lr=lr,
            beta1=hparams["beta1"],
            beta2=hparams["beta2"],
            epsilon=hparams["epsilon"],
        )


class AdamOptimizer(Optimizer):
    """Adam with fluid's API: ``AdamOptimizer(learning_rate=0.001, beta1=0.9, beta2=0.999,
    epsilon=1e-8, parameter_list=None, regularization=None, grad_clip=None, name=None)``."""

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
        **options,
    ):
        parts = UpdateParts(AdamRule(), defaults=self._check_options(dict(beta1=beta1, beta2=beta2, epsilon=epsilon)))
        super().__init__(learning_rate, parameter_list, regularization, grad_clip, name, parts=parts, **options)

    @staticmethod
    def _check_options(group: Mapping) -> dict:
        """Range-check a group's Adam options; return them as floats."""
        return dict(
            beta1=check_number("beta1", group["beta1"], lo=0.0, hi=1.0, hi_open=True),
            beta2=check_number("beta2", group["beta2"], lo=0.0, hi=1.0, hi_open=True),
            epsilon=check_number("epsilon", group["epsilon"], lo=0.0, lo_open=True),
        )

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        self._check_options(group)


Adam = AdamOptimizer
