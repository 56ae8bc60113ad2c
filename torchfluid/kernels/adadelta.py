"""Paddle's Adadelta kernel (``adadelta`` op, Paddle 2.5 and later), pure and in place.

Per element, with both averages starting at 0::

    avg_sq_grad   = rho * avg_sq_grad + (1 - rho) * g * g
    update        = -(sqrt(avg_sq_update + epsilon) / sqrt(avg_sq_grad + epsilon)) * g
    p             = p + lr * update
    avg_sq_update = rho * avg_sq_update + (1 - rho) * update * update

Computed in the state's dtype (float32 for float16/bfloat16 parameters), with a correctly
rounded square root and ``1 - rho`` in that dtype (:func:`~torchfluid.kernels.attrs.one_minus`),
as Paddle's ``adadelta_kernel_impl.h``; ``rho`` and ``epsilon`` are Paddle's float32 attributes. Paddle before
2.5 ignored the learning rate (``p = p + update``; its op took it from 2023 on); ``torch.optim.Adadelta`` is the same
maths as 2.5's (its ``lr`` multiplies the update the same way; defaults ``rho=0.9``,
``eps=1e-6``, ``lr=1.0``).
"""

from __future__ import annotations

import torch

from .._grad_mode import update_kernel
from .attrs import one_minus, paddle_attrs, subtract_
from .rmsprop import sqrt_rounded

__all__ = ["adadelta_"]


@update_kernel
def adadelta_(
    param: torch.Tensor,
    grad: torch.Tensor,
    avg_squared_grad: torch.Tensor,
    avg_squared_update: torch.Tensor,
    *,
    lr: float,
    rho: float = 0.95,
    epsilon: float = 1e-6,
) -> None:
    """One Adadelta update in place (module maths)."""
    rho, epsilon = paddle_attrs(avg_squared_grad.dtype, rho, epsilon)
    (one_minus_rho,) = one_minus(avg_squared_grad.dtype, rho)  # 1 - rho in the compute type, as Paddle's
    g = grad.to(avg_squared_grad.dtype)
    avg_squared_grad.mul_(rho).add_(g * g, alpha=one_minus_rho)
    # sqrt(E[u^2] + eps) / sqrt(E[g^2] + eps) * g (Paddle's -update): two square roots, as Paddle's
    # kernel and torch's compute it
    update = torch.div(sqrt_rounded(avg_squared_update + epsilon), sqrt_rounded(avg_squared_grad + epsilon)).mul_(g)
    subtract_(param, update.mul(lr))
    avg_squared_update.mul_(rho).add_(update * update, alpha=one_minus_rho)
