"""``SGDOptimizer`` (alias ``SGD``): Paddle's plain SGD, ``p -= lr * g`` (no momentum, no state)."""

from __future__ import annotations

from collections.abc import Mapping

from ..kernels import sgd_
from .base import Optimizer

__all__ = ["SGDOptimizer", "SGD"]


class SGDOptimizer(Optimizer):
    """SGD with fluid's API: ``SGDOptimizer(learning_rate, parameter_list=None,
    regularization=None, grad_clip=None, name=None)``. Keeps no accumulators."""

    _static_op_type = "sgd"

    def __init__(self, learning_rate, parameter_list=None, regularization=None, grad_clip=None,
                 name=None, *, parameters=None, weight_decay=None, shard_state: bool = False,
                 grad_reduction: str = "none", process_group=None):
        super().__init__(learning_rate, parameter_list, regularization, grad_clip, name,
                         parameters=parameters, weight_decay=weight_decay, shard_state=shard_state,
                         grad_reduction=grad_reduction, process_group=process_group)

    def _kernel_update(self, param, grad, state, *, lr: float, group: Mapping) -> None:
        sgd_(param.data, grad.to_dense() if grad.is_sparse else grad, lr=lr)


SGD = SGDOptimizer
