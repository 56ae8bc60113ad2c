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
from .fused import fused_path, plain_float_param

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

    # the fused path (torchfluid.optimizer.fused): one numba kernel call per group and dtype on CPU
    fused_devices = ("cpu",)

    @staticmethod
    def fused_eligible(param: torch.Tensor, hparams: Mapping, precision) -> bool:
        """A float32/float64 parameter (float16/bfloat16 ones keep float32 moments and
        take :meth:`update`)."""
        return plain_float_param(param, precision)

    @staticmethod
    def fused_layout(hparams: Mapping) -> tuple:
        return ()

    @staticmethod
    def fused_group(params, layout: tuple):
        from ..kernels.flat import FlatAdam

        return FlatAdam(params)

    @staticmethod
    def fused_initial(acc: str, hparams: Mapping) -> float:
        """Where a fresh record starts (as :meth:`new_state`): the powers at beta, the moments at 0."""
        return {"beta1_pow_acc": float(hparams["beta1"]), "beta2_pow_acc": float(hparams["beta2"])}.get(acc, 0.0)

    @staticmethod
    def fused_step(fg, hparams: Mapping, grads, lrs, extras: dict) -> None:
        fg.step(
            lr=lrs,
            beta1=hparams["beta1"],
            beta2=hparams["beta2"],
            epsilon=hparams["epsilon"],
            grads=grads,
            **extras,
        )

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
    epsilon=1e-8, parameter_list=None, regularization=None, grad_clip=None, name=None)``.

    ``fused``: None (default) updates the dense float32/float64 CPU parameters of each
    group and dtype with one single-pass numba kernel call (bit for bit the reference
    kernel's numbers; clip and L2/L1 decay folded in) and everything else (sparse
    gradients, float16/bfloat16, CUDA) with the reference kernel; False always uses the
    reference kernel; True requires the fused one."""

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
        fused_update = fused_path(fused)
        self.fused = fused
        parts = UpdateParts(
            AdamRule(),
            defaults=self._check_options(dict(beta1=beta1, beta2=beta2, epsilon=epsilon)),
            fused=fused_update,
        )
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
