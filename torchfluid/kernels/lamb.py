"""Paddle's LAMB kernel (``lamb`` op, ``lamb_op.h``), pure and in place.

Per parameter, with the moments starting at 0 and the powers at ``beta1`` / ``beta2``::

    m1 = beta1 * m1 + (1 - beta1) * g;   m2 = beta2 * m2 + (1 - beta2) * g * g
    r  = (m1 / (1 - beta1_pow)) / (sqrt(m2 / (1 - beta2_pow)) + epsilon) + weight_decay * p
    p  = p - (lr * ratio) * r,  ratio = ||p|| / ||r|| if both norms are > 0, else 1
    beta1_pow *= beta1;  beta2_pow *= beta2

(the norms over the whole parameter, before the update). As Paddle's current kernel
(``lamb_kernel_impl.h``, ``lamb_functors.h``), the norms are taken only where
``weight_decay > 0`` or with ``always_adapt``: with a weight decay of 0 (a parameter excluded
from it, say) the ratio is 1 and the parameter moves by ``lr * r`` (Paddle before its
``always_adapt`` attribute always took the ratio; timm's ``Lamb`` has the same rule as Paddle's
now). Computed in the state's dtype with a correctly rounded square root, ``1 - beta`` in that
dtype (:func:`~torchfluid.kernels.attrs.one_minus`) and ``m2`` as ``((1 - beta2) * g) * g``;
``beta1``, ``beta2``, ``epsilon`` and ``weight_decay`` are Paddle's float32 attributes. torch
has no LAMB.
"""

from __future__ import annotations

import torch

from .._grad_mode import update_kernel
from .attrs import as_factor, as_saved, one_minus, paddle_attrs, subtract_
from .rmsprop import rmsprop_denominator

__all__ = ["lamb_"]


@update_kernel
def lamb_(
    param: torch.Tensor,
    grad: torch.Tensor,
    moment1: torch.Tensor,
    moment2: torch.Tensor,
    beta1_pow: torch.Tensor,
    beta2_pow: torch.Tensor,
    *,
    lr: float,
    weight_decay: float = 0.01,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-6,
    always_adapt: bool = False,
) -> None:
    """One LAMB update in place (module maths); the powers are ``[1]`` tensors.
    ``always_adapt`` (Paddle's attribute, False by default): take the trust ratio even
    where ``weight_decay`` is 0 (without it such a parameter moves by ``lr * r``)."""
    dt = moment1.dtype
    beta1, beta2, epsilon, weight_decay = paddle_attrs(dt, beta1, beta2, epsilon, weight_decay)
    one_minus_beta1, one_minus_beta2 = one_minus(dt, beta1, beta2)  # 1 - beta in the compute type, as Paddle's
    g = grad.to(dt)
    p = as_saved(param.to(dt))  # read before the update writes param
    moment1.mul_(beta1).add_(g, alpha=one_minus_beta1)
    moment2.mul_(beta2).addcmul_(g, g, value=one_minus_beta2)  # ((1 - beta2) * g) * g, Paddle's order
    # the powers as 0-d tensors, so that a 0-d parameter's update keeps its shape
    m1_hat = moment1 / (1.0 - beta1_pow.reshape(-1)[0].to(moment1.device))
    m2_hat = moment2 / (1.0 - beta2_pow.reshape(-1)[0].to(moment1.device))
    r = m1_hat / rmsprop_denominator(m2_hat, None, epsilon=epsilon, eps_in_sqrt=False)
    if weight_decay != 0.0:
        r = torch.add(r, p, alpha=weight_decay)
    lr_t = as_factor(lr, r)
    if weight_decay > 0.0 or always_adapt:  # else Paddle's kernel leaves both norms 0: the ratio is 1
        p_norm, r_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(r)
        ratio = torch.where((p_norm > 0) & (r_norm > 0), p_norm / r_norm, torch.ones_like(p_norm))
        lr_t = ratio * lr_t  # Paddle's lr *= r
    step = r * lr_t  # new tensors: autograd may save r
    subtract_(param, step)
    beta1_pow.mul_(beta1)
    beta2_pow.mul_(beta2)
