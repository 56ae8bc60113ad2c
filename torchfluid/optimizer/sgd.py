"""``SGDOptimizer`` (alias ``SGD``): Paddle's plain SGD, ``p -= lr * g`` (no momentum, no state)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping


from ..kernels import sgd_
from ..kernels.table import GradFold
from .base import Optimizer, UpdateParts
from .fused import FlatRule, fused_path

__all__ = ["SGDOptimizer", "SGD", "SGDRule"]


@dataclasses.dataclass(frozen=True)
class SGDRule(FlatRule):
    """SGD's update rule for :func:`~torchfluid.optimizer.pipeline.run_update`:
    ``p -= lr * g`` (a sparse gradient made dense first), no accumulators."""

    op_type = "sgd"
    flat_class = "FlatSGD"  # the fused path's kernel (torchfluid.optimizer.fused.FlatRule)
    supports_complex = True  # p -= lr * g is the same update for complex parameters

    @staticmethod
    def fused_step(fg, hparams: Mapping, grads, lrs, fold: GradFold) -> None:
        fg.step(lr=lrs, grads=grads, fold=fold)

    @staticmethod
    def update(param, grad, state, *, lr: float, hparams: Mapping, precision, name: str) -> None:
        sgd_(param.data, grad.to_dense() if grad.is_sparse else grad, lr=lr)


class SGDOptimizer(Optimizer):
    """SGD with fluid's API: ``SGDOptimizer(learning_rate, parameter_list=None,
    regularization=None, grad_clip=None, name=None)``. Keeps no accumulators."""

    def __init__(
        self,
        learning_rate,
        parameter_list=None,
        regularization=None,
        grad_clip=None,
        name=None,
        *,
        fused: bool | None = None,
        **options,
    ):
        """``fused``: None (default) updates the dense float32/float64 CPU parameters of
        each group and dtype with one numba kernel call (bit for bit the reference kernel's
        ``p - lr * g``, one rounding; clip and L2/L1 decay folded in), the rest with the
        reference kernel; False always uses the reference kernel; True requires the fused
        one. ``options``: :class:`~torchfluid.optimizer.base.Optimizer`'s keyword arguments
        (``parameters``, ``weight_decay``, ``shard_state``, ``grad_reduction``, ``process_group``)."""
        fused_update = fused_path(fused)
        self.fused = fused
        parts = UpdateParts(SGDRule(), fused=fused_update)
        super().__init__(learning_rate, parameter_list, regularization, grad_clip, name, parts=parts, **options)


SGD = SGDOptimizer
