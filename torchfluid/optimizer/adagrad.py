"""``AdagradOptimizer`` (alias ``Adagrad``): Paddle's Adagrad (see :mod:`torchfluid.kernels.adagrad`).

Maths (Paddle's ``adagrad`` op)::

    moment = moment + g * g                       moment starts at initial_accumulator_value
    p      = p - (lr * g) / (sqrt(moment) + epsilon)

One accumulator, ``moment`` (param-shaped; ``state_dict`` key ``<param>_moment_0``), in
the parameter's dtype (float32 for float16/bfloat16 parameters). ``epsilon`` and
``initial_accumulator_value`` are group options, as in Paddle 2.x.

A row-sparse gradient (``Embedding(is_sparse=True)``, torch's ``sparse=True``) follows
Paddle's ``SparseAdagradFunctor``: duplicate rows are summed and only those rows of the
moment and the parameter change (a regularizer's dense term makes the gradient dense
first, as everywhere in torchfluid). Differences from ``torch.optim.Adagrad`` are listed
in :mod:`torchfluid.kernels.adagrad` (defaults, the rounding order); torch's ``lr_decay`` is
an option here too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

import torch

from ..kernels import adagrad_, adagrad_rows_
from ..kernels.table import GradFold
from .base import Optimizer, UpdateParts
from .fused import TorchEpsilonRule, count_update, fused_path, plain_float_param

__all__ = ["AdagradOptimizer", "Adagrad", "AdagradRule", "sparse_rows"]


def sparse_rows(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows, values)`` of a sparse COO gradient: its distinct first-dimension indices in
    increasing order and each row's summed value (Paddle's ``MergeAdd``), ``values`` dense
    of shape ``[len(rows), *grad.shape[1:]]``."""
    g = grad.coalesce()
    if g.sparse_dim() == 1:  # coalesced: each row once, sorted, duplicates summed
        # values() is a view into the sparse tensor: torch.compile cannot pass such a view on
        # to the kernel's frame (dynamo fails to fake it), a copy of the merged rows it can
        return g.indices()[0], g.values().clone()
    rows = torch.unique(g.indices()[0], sorted=True)
    return rows, g.index_select(0, rows).to_dense()


@dataclasses.dataclass(frozen=True)
class AdagradRule(TorchEpsilonRule):
    """Adagrad's update rule for :func:`~torchfluid.optimizer.pipeline.run_update`: the
    ``moment`` accumulator (starting at the group's ``initial_accumulator_value``, in the
    parameter's dtype; float32 for float16/bfloat16 parameters) and Paddle's kernel,
    dense or row-sparse; with torch's ``lr_decay`` a ``step`` count too."""

    op_type = "adagrad"
    accumulator_names = ("moment",)
    step_count_option = "lr_decay"  # torch's decayed rate needs each parameter's update count (FlatAdagrad keeps it)
    flat_class = "FlatAdagrad"  # the fused path's kernel (torchfluid.optimizer.fused.FlatRule)
    # torch.optim.Adagrad's name of the moment, in torch's layout (its 'step' is read only with lr_decay)
    torch_accumulators = MappingProxyType({"moment": "sum"})
    torch_class = "torch.optim.Adagrad"

    def fused_eligible(self, param: torch.Tensor, hparams, precision) -> bool:
        return plain_float_param(param, precision)  # the flat group keeps lr_decay's counts too

    @staticmethod
    def fused_layout(hparams) -> tuple:
        return (hparams["lr_decay"] != 0,)

    @staticmethod
    def fused_group(params, layout: tuple):
        from ..kernels.flat import FlatAdagrad

        return FlatAdagrad(params, step_count=layout[0])

    @staticmethod
    def fused_initial(acc: str, hparams: Mapping) -> float:
        return 0.0 if acc == "step" else float(hparams["initial_accumulator_value"])

    @staticmethod
    def fused_step(fg, hparams: Mapping, grads, lrs, fold: GradFold) -> None:
        fg.step(lr=lrs, epsilon=hparams["epsilon"], lr_decay=hparams["lr_decay"], grads=grads, fold=fold)

    @staticmethod
    def update(param, grad, state, *, lr: float, hparams: Mapping, precision, name: str) -> None:
        moment = state["moment"]
        if hparams["lr_decay"] != 0:  # torch's decayed rate: lr / (1 + (step - 1) * lr_decay), step from 1
            lr = lr / (1 + count_update(state, param.device) * hparams["lr_decay"])  # counted from lr_decay's start
        if param.is_complex():  # as torch: the real and imaginary parts are two real coordinates
            grad = torch.view_as_real(grad.to_dense() if grad.is_sparse else grad)
            adagrad_(torch.view_as_real(param), grad, torch.view_as_real(moment), lr=lr, epsilon=hparams["epsilon"])
            return
        if grad.is_sparse and param.dim() > 0:
            rows, values = sparse_rows(grad)
            adagrad_rows_(param, rows, values, moment, lr=lr, epsilon=hparams["epsilon"])
            return
        adagrad_(param, grad.to_dense() if grad.is_sparse else grad, moment, lr=lr, epsilon=hparams["epsilon"])


class AdagradOptimizer(Optimizer, fluid_attributes=("epsilon", "initial_accumulator_value")):
    """Adagrad with fluid's API: ``AdagradOptimizer(learning_rate, epsilon=1e-6,
    parameter_list=None, regularization=None, grad_clip=None, name=None,
    initial_accumulator_value=0.0)`` (Paddle 2.x: ``parameters=``, ``weight_decay=``)::

        moment = moment + g * g;  p = p - (lr * g) / (sqrt(moment) + epsilon)

    Allowed: ``epsilon > 0`` and ``initial_accumulator_value >= 0`` (finite real numbers),
    per group as well. ``lr_decay`` (torch.optim.Adagrad's, >= 0, also per group; Paddle has
    none) divides the rate by ``1 + (step - 1) * lr_decay`` at a parameter's ``step``-th update
    (counted from 1 in a 0-d float32 ``step`` record, ``<param>_step_0``, as torch's; kept
    only while ``lr_decay`` is not 0, so a group that switches it on counts from there, where
    torch counts every update). ``fused``: None (default) updates the dense float32/float64 CPU
    parameters of each group and dtype with one single-pass numba kernel call (bit for bit
    the reference kernel's numbers; clip and L2/L1 decay folded in) and everything else
    (sparse gradients, float16/bfloat16, CUDA) with the reference kernel; False always uses
    the reference kernel; True requires the fused one. ``options``:
    :class:`~torchfluid.optimizer.base.Optimizer`'s keyword arguments (``parameters``,
    ``weight_decay``, ``shard_state``, ``grad_reduction``, ``process_group``)."""

    option_bounds = MappingProxyType(
        {"epsilon": {"lo": 0.0, "lo_open": True}, "initial_accumulator_value": {"lo": 0.0}, "lr_decay": {"lo": 0.0}}
    )

    def __init__(
        self,
        learning_rate,
        epsilon: float = 1e-6,
        parameter_list=None,
        regularization=None,
        grad_clip=None,
        name=None,
        initial_accumulator_value: float = 0.0,
        *,
        lr_decay: float = 0.0,
        fused: bool | None = None,
        **options,
    ):
        defaults = self.checked_options(
            {"epsilon": epsilon, "initial_accumulator_value": initial_accumulator_value, "lr_decay": lr_decay}
        )
        fused_update = fused_path(fused)
        self.fused = fused
        parts = UpdateParts(AdagradRule(), defaults=defaults, fused=fused_update)
        super().__init__(learning_rate, parameter_list, regularization, grad_clip, name, parts=parts, **options)


Adagrad = AdagradOptimizer
