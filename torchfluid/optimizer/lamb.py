"""``LambOptimizer`` (alias ``Lamb``): Paddle's LAMB (see :mod:`torchfluid.kernels.lamb`).

Accumulators (Paddle's names): ``moment1``, ``moment2`` (param-shaped, from 0) and
``beta1_pow_acc``, ``beta2_pow_acc`` (shape [1], from ``beta1`` / ``beta2``), in the
parameter's dtype (float32 for float16/bfloat16 parameters). Runs on the reference kernel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType


from ..kernels.lamb import lamb_
from .._checks import check_bool
from .adam import NamedParameter, beta_pow_initial
from .base import Optimizer, UpdateParts
from .fused import FlatRule
from .state import TORCH_BETAS

__all__ = ["LambOptimizer", "Lamb", "LambRule"]

_UNIT = {"lo": 0.0, "hi": 1.0, "hi_open": True}


@dataclasses.dataclass(frozen=True)
class LambRule(FlatRule):
    """LAMB's update rule for :func:`~torchfluid.optimizer.pipeline.run_update` (a row-sparse
    gradient is made dense). ``exclude_from_weight_decay_fn(param)`` true: that parameter's
    ``lamb_weight_decay`` is 0 (``param``: the parameter, or :class:`NamedParameter` where its
    own ``name`` is not its name here), so, as in Paddle's kernel, it takes no trust ratio
    unless ``always_adapt``: it moves by ``lr * r``."""

    torch_class = "timm.optim.Lamb"  # torch has no LAMB; timm's is the torch ecosystem's
    torch_group_keys = MappingProxyType({"eps": "epsilon"})  # its name, read as this rule's
    torch_group_pairs = TORCH_BETAS  # torch's betas: beta1 and beta2

    exclude_from_weight_decay_fn: object = None
    always_adapt: bool = False  # Paddle's attribute: the trust ratio also where the weight decay is 0
    op_type = "lamb"
    kernel = staticmethod(lamb_)
    kernel_hparams = MappingProxyType(
        {"weight_decay": "lamb_weight_decay", "beta1": "beta1", "beta2": "beta2", "epsilon": "epsilon"}
    )
    accumulator_names = ("moment1", "moment2", "beta1_pow_acc", "beta2_pow_acc")
    scalar_records = ("beta1_pow_acc", "beta2_pow_acc")
    fused_initial = staticmethod(beta_pow_initial)  # the powers start at their beta

    @property
    def kernel_options(self) -> Mapping:
        return {"always_adapt": True} if self.always_adapt else {}

    def adjust_items(self, items: list) -> list:
        """The excluded parameters' items with ``lamb_weight_decay`` 0 (the function is called
        once per parameter and step, before anything changes)."""
        fn = self.exclude_from_weight_decay_fn
        if fn is None:
            return items
        out = []
        for it in items:
            out.append(
                it._replace(hparams={**it.hparams, "lamb_weight_decay": 0.0}) if fn(NamedParameter.of(it)) else it
            )
        return out


class LambOptimizer(Optimizer, fluid_attributes=("lamb_weight_decay", "beta1", "beta2", "epsilon")):
    """LAMB with fluid's API: ``LambOptimizer(learning_rate=0.001, lamb_weight_decay=0.01,
    beta1=0.9, beta2=0.999, epsilon=1e-6, parameter_list=None, regularization=None,
    grad_clip=None, exclude_from_weight_decay_fn=None, name=None)`` (Paddle 2.x:
    ``parameters=``; Paddle 2.6's keyword ``always_adapt=False``). The maths:
    :mod:`torchfluid.kernels.lamb` (a parameter whose weight decay is 0 takes no trust ratio
    unless ``always_adapt``, as Paddle's kernel).

    Allowed: ``0 <= beta1, beta2 < 1``, ``epsilon > 0``, ``lamb_weight_decay >= 0`` (finite
    real numbers), per group too; ``exclude_from_weight_decay_fn`` a callable or None;
    ``always_adapt`` a bool."""

    option_bounds = MappingProxyType(
        {"lamb_weight_decay": {"lo": 0.0}, "beta1": _UNIT, "beta2": _UNIT, "epsilon": {"lo": 0.0, "lo_open": True}}
    )

    def __init__(
        self,
        learning_rate=0.001,
        lamb_weight_decay: float = 0.01,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-6,
        parameter_list=None,
        regularization=None,
        grad_clip=None,
        exclude_from_weight_decay_fn=None,
        name=None,
        *,
        always_adapt: bool = False,
        **options,
    ):
        if exclude_from_weight_decay_fn is not None and not callable(exclude_from_weight_decay_fn):
            raise TypeError(
                "exclude_from_weight_decay_fn must be a callable or None, "
                f"got {type(exclude_from_weight_decay_fn).__name__}"
            )
        defaults = self.checked_options(
            {"lamb_weight_decay": lamb_weight_decay, "beta1": beta1, "beta2": beta2, "epsilon": epsilon}
        )
        rule = LambRule(
            exclude_from_weight_decay_fn=exclude_from_weight_decay_fn,
            always_adapt=check_bool("always_adapt", always_adapt),
        )
        parts = UpdateParts(rule, defaults=defaults)
        super().__init__(learning_rate, parameter_list, regularization, grad_clip, name, parts=parts, **options)


Lamb = LambOptimizer
