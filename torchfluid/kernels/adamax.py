"""Paddle's Adamax kernel (``adamax`` op, ``adamax_op.h``), pure and in place.

Per element, with ``moment`` and ``inf_norm`` starting at 0 and ``beta1_pow`` at ``beta1``::

    moment    = beta1 * moment + (1 - beta1) * g
    inf_norm  = max(|g|, beta2 * inf_norm + epsilon)
    p         = p - lr / (1 - beta1_pow) * (moment / inf_norm)
    beta1_pow = beta1_pow * beta1                     (Paddle's scale op after the update)

epsilon sits INSIDE the max (it keeps ``inf_norm`` above 0). Computed in the state's dtype
(float32 for float16/bfloat16 parameters), as Paddle's ``adamax_kernel_impl.h``: ``1 - beta1``
in that dtype (:func:`~torchfluid.kernels.attrs.one_minus`), ``lr / (1 - beta1_pow)`` rounded
before it multiplies ``moment / inf_norm``; ``beta1``, ``beta2`` and ``epsilon`` are Paddle's
float32 attributes (a float64 update uses their float32 values). ``torch.optim.Adamax``
differs: it adds ``eps`` to ``|g|`` inside the max instead (``max(beta2 * u, |g| + eps)``)
and keeps a step count for the bias correction.
"""

from __future__ import annotations

import torch

from .._grad_mode import update_kernel
from .attrs import as_factor, as_saved, one_minus, paddle_attrs, subtract_

__all__ = ["adamax_"]


@update_kernel
def adamax_(
    param: torch.Tensor,
    grad: torch.Tensor,
    moment: torch.Tensor,
    inf_norm: torch.Tensor,
    beta1_pow: torch.Tensor,
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
) -> None:
    """One Adamax update in place (module maths); ``beta1_pow`` is a ``[1]`` tensor."""
    beta1, beta2, epsilon = paddle_attrs(moment.dtype, beta1, beta2, epsilon)
    (one_minus_beta1,) = one_minus(moment.dtype, beta1)  # 1 - beta1 in the compute type, as Paddle's
    g = grad.to(moment.dtype)
    moment.mul_(beta1).add_(g, alpha=one_minus_beta1)
    inf_norm.copy_(torch.maximum(g.abs(), inf_norm.mul(beta2).add_(epsilon)))  # no out=: autograd can record it
    b1p = beta1_pow.reshape(-1)[0].to(moment.device)  # 0-d: a 0-d parameter's update keeps its shape
    lr_t = as_factor(lr, moment) / (1.0 - b1p)
    update = as_saved(moment).div(as_saved(inf_norm)).mul_(lr_t)
    subtract_(param, update)
    beta1_pow.mul_(beta1)
