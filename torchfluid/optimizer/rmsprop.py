"""``RMSPropOptimizer`` (alias ``RMSProp``): Paddle fluid's RMSProp on torch parameters.

Maths (Paddle's, verified against real Paddle runs; see :mod:`torchfluid.kernels.rmsprop`)::

    ms  = rho * ms + (1 - rho) * g^2
    mg  = rho * mg + (1 - rho) * g                        centered only
    mom = momentum * mom + lr * g / sqrt(ms [- mg^2] + eps)
    p  -= mom

Differences from ``torch.optim.RMSprop``: eps is INSIDE the sqrt (torch: outside), the
learning rate is inside the velocity (torch: ``p -= lr * buf``; identical while lr is
constant), defaults are ``rho=0.95, epsilon=1e-6`` (torch: ``alpha=0.99, eps=1e-8``).
Paddle's page calls the momentum "Nesterov"; it is plain heavy-ball momentum.

Accumulators (``state_dict`` keys ``<param>_<acc>_0``): ``mean_square`` always,
``mean_grad`` only when centered, ``momentum`` only when ``momentum != 0``. Paddle
always keeps all three; loading a Paddle state dict accepts (shape-checked) and ignores
the ones this configuration does not use: an uncentered ``mean_grad`` is all zeros in
Paddle, and at momentum 0 Paddle's ``momentum`` only holds the last update, which never
enters a later one. So trajectories are identical and state stays minimal.

Row-sparse gradients (``Embedding(is_sparse=True)``): by default Paddle's exact rule —
duplicate rows are summed, then EVERY row is updated as if absent rows had gradient 0
(their ``ms`` decays, their velocity keeps moving them). ``lazy_mode=True`` updates
only the rows present (faster; differs from Paddle for momentum/decay of absent rows).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .._checks import check_bool, check_number
from ..kernels import rmsprop_
from .base import Optimizer

__all__ = ["RMSPropOptimizer", "RMSProp"]


class RMSPropOptimizer(Optimizer):
    """RMSProp with Paddle's maths and fluid's API; also a ``torch.optim.Optimizer``.

    Args:
        learning_rate: float >= 0, a fluid ``LearningRateDecay`` or a 2.x ``LRScheduler``.
        rho: decay of the moving averages, in [0, 1).
        epsilon: > 0, added inside the sqrt.
        momentum: >= 0; heavy-ball momentum with lr inside the velocity.
        centered: normalise by the estimated variance instead of the second moment.
        parameter_list / parameters: what to optimize (tensors, named pairs, a dict or
            param-group dicts). Required in eager mode.
        regularization / weight_decay: None, a float (L2 coefficient), L1Decay or L2Decay.
        grad_clip: ClipGradByValue / ClipGradByNorm / ClipGradByGlobalNorm.
        name: prefix for accumulator names.
        lazy_mode: for sparse gradients, update only the rows present.
        shard_state / grad_reduction / process_group: ZeRO-1 data parallelism, the state
            divided among the ranks (see :mod:`torchfluid.distributed`).
    """

    _static_op_type = "rmsprop"

    def __init__(
        self,
        learning_rate,
        rho: float = 0.95,
        epsilon: float = 1e-6,
        momentum: float = 0.0,
        centered: bool = False,
        parameter_list=None,
        regularization=None,
        grad_clip=None,
        name=None,
        *,
        parameters=None,
        weight_decay=None,
        lazy_mode: bool = False,
        shard_state: bool = False,
        grad_reduction: str = "none",
        process_group=None,
    ):
        defaults = dict(
            rho=check_number("rho", rho, lo=0.0, hi=1.0, hi_open=True),
            epsilon=check_number("epsilon", epsilon, lo=0.0, lo_open=True),
            momentum=check_number("momentum", momentum, lo=0.0),
            centered=check_bool("centered", centered),
        )
        self.lazy_mode = check_bool("lazy_mode", lazy_mode)
        super().__init__(
            learning_rate, parameter_list, regularization, grad_clip, name,
            parameters=parameters, weight_decay=weight_decay, defaults=defaults,
            shard_state=shard_state, grad_reduction=grad_reduction, process_group=process_group,
        )

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        check_number("rho", group["rho"], lo=0.0, hi=1.0, hi_open=True)
        check_number("epsilon", group["epsilon"], lo=0.0, lo_open=True)
        check_number("momentum", group["momentum"], lo=0.0)
        check_bool("centered", group["centered"])

    def _accumulator_names(self, group: Mapping | None = None) -> list[str]:
        group = self.defaults if group is None else group
        names = ["mean_square"]
        if group["centered"]:
            names.append("mean_grad")
        if group["momentum"] != 0:
            names.append("momentum")
        return names

    def _compatible_accumulator_names(self) -> list[str]:
        return ["mean_square", "mean_grad", "momentum"]

    def _new_state(self, p: torch.Tensor, group: Mapping | None = None) -> dict:
        return {acc: torch.zeros_like(p, memory_format=torch.preserve_format)
                for acc in self._accumulator_names(group)}

    def _kernel_update(self, param, grad, state, *, lr: float, group: Mapping) -> None:
        for acc in self._accumulator_names(group):  # a group switched centered/momentum on
            if acc not in state:
                state[acc] = torch.zeros_like(param)
        hyper = dict(lr=lr, rho=group["rho"], epsilon=group["epsilon"], momentum=group["momentum"])
        mean_grad = state.get("mean_grad") if group["centered"] else None
        moment = state.get("momentum") if group["momentum"] != 0 else None
        if grad.is_sparse and self.lazy_mode:
            _lazy_sparse_update(param, grad, state["mean_square"], mean_grad, moment, hyper)
            return
        if grad.is_sparse:
            grad = grad.to_dense()  # Paddle exact: duplicates summed, absent rows get g = 0
        rmsprop_(param.data, grad, state["mean_square"], mean_grad, moment, **hyper)


def _lazy_sparse_update(param, grad, mean_square, mean_grad, moment, hyper) -> None:
    """Update only the rows present in a row-sparse gradient (duplicates summed first)."""
    g = grad.coalesce()
    rows = g.indices()[0]
    tensors = [param.data, mean_square, mean_grad, moment]
    gathered = [None if t is None else t[rows] for t in tensors]
    rmsprop_(gathered[0], g.values(), gathered[1], gathered[2], gathered[3], **hyper)
    for t, part in zip(tensors, gathered):
        if t is not None:
            t[rows] = part


RMSProp = RMSPropOptimizer
