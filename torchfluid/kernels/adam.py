"""Paddle's Adam kernel (``adam`` op, phi ``AdamFunctor``), pure and in place.

Paddle keeps the bias-correction powers as per-parameter state tensors that start at
``beta1`` and ``beta2`` (not 1) and are multiplied by beta after each update::

    m1  = beta1 * m1 + (1 - beta1) * g
    m2  = beta2 * m2 + (1 - beta2) * g * g
    lr_t = lr * sqrt(1 - beta2_pow) / (1 - beta1_pow)
    p   = p - lr_t * m1 / (sqrt(m2) + eps * sqrt(1 - beta2_pow))
    beta1_pow *= beta1; beta2_pow *= beta2

With ``amsgrad`` (Paddle 3), ``m2_max = max(m2_max, m2)`` (starting at 0) replaces ``m2`` in
the denominator. Checked against Paddle's ``phi/kernels/funcs/adam_functors.h``. This equals PyTorch's
Adam up to where eps sits: torch uses
``m1_hat / (sqrt(m2_hat) + eps)``, i.e. eps is scaled by ``sqrt(1 - beta2^t)`` here.

Roundings, in the moments' dtype and in this order (the fused CPU kernel repeats them), as
Paddle's dense CPU kernel (``phi/kernels/cpu/adam_kernel.cc``: ``lr_t`` and ``eps_t`` once, then
the jit ``adam`` kernel per element): ``1 - beta1`` and ``1 - beta2`` computed in the dtype
(float32 for float32: ``1 - float32(0.999) = 0.00099998713``, not ``float32(0.001)``;
:func:`~torchfluid.kernels.attrs.one_minus`); ``m1 * beta1`` rounded, then ``fma(g, 1 - beta1,
.)`` (torch's ``add_(g, alpha=...)``); ``m2 * beta2`` rounded, then ``fma((1 - beta2) * g, g,
.)`` (``addcmul_``); ``correction = sqrt(1 - beta2_pow)``, ``lr_t = lr * (correction / (1 -
beta1_pow))`` (the ratio rounded first), ``eps_t = correction * epsilon``; ``p - (m1 /
(sqrt(m2) + eps_t)) * lr_t``. Square roots are correctly rounded, as Eigen's (torch's
vectorised CPU ``sqrt`` is not; see :func:`torchfluid.kernels.rmsprop.rmsprop_denominator`).
Paddle's own paths differ among themselves beyond that: on a CPU with AVX-512 its float32
kernel is generated code that rounds ``(1 - beta2) * (g * g)`` and places its fused
multiply-adds elsewhere (``beta1 * m1`` and ``-lr_t * (...) + p`` fused), and its GPU kernel
computes ``m1 / (sqrt(m2) / sqrt(1 - beta2_pow) + epsilon) * (lr / (1 - beta1_pow))``; this
kernel follows the portable CPU reference (``jit/refer/refer.h``) and the functor.
"""

from __future__ import annotations

import torch

from .._grad_mode import update_kernel
from .attrs import add_scaled_, addcmul_scaled_, as_saved, one_minus, paddle_attrs, subtract_
from .rmsprop import sqrt_rounded

__all__ = ["adam_"]


@update_kernel
def adam_(
    param: torch.Tensor,
    grad: torch.Tensor,
    moment1: torch.Tensor,
    moment2: torch.Tensor,
    beta1_pow: torch.Tensor,
    beta2_pow: torch.Tensor,
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
    moment2_max: torch.Tensor | None = None,
) -> None:
    """One Adam update in place; ``beta*_pow`` are 1-element tensors (Paddle's accumulators).
    ``beta1``, ``beta2`` and ``epsilon`` are Paddle's float32 attributes: a float64 update
    uses them rounded to float32 (:func:`~torchfluid.kernels.attrs.paddle_attrs`), in the
    moments and in the powers' update alike; the powers' start values are the caller's.
    ``moment2_max`` (AMSGrad, Paddle 3's ``amsgrad=True``): ``moment2_max = max(moment2_max,
    moment2)`` after the moments' update, and the denominator takes it instead of ``moment2``."""
    beta1, beta2, epsilon = paddle_attrs(moment1.dtype, beta1, beta2, epsilon)
    one_minus_beta1, one_minus_beta2 = one_minus(moment1.dtype, beta1, beta2)  # 1 - beta in the compute type
    g = grad.to(moment1.dtype)
    add_scaled_(moment1.mul_(beta1), g, one_minus_beta1)
    addcmul_scaled_(moment2.mul_(beta2), g, g, one_minus_beta2)
    if moment2_max is not None:
        moment2_max.copy_(torch.maximum(as_saved(moment2_max), as_saved(moment2)))  # no out=: autograd can record it
        moment2 = moment2_max
    # in the state's dtype, as Paddle's AdamFunctor computes in T (float32 for float32
    # params), and without a device sync
    # (0-d, so that a 0-d parameter's update keeps its shape)
    b1p = beta1_pow.reshape(-1)[0].to(moment1.dtype)
    b2p = beta2_pow.reshape(-1)[0].to(moment1.dtype)
    correction = sqrt_rounded(1.0 - b2p)
    lr_t = correction.div(1.0 - b1p).mul_(lr)  # lr * (sqrt(1 - b2p) / (1 - b1p)): the ratio rounded first
    den = sqrt_rounded(moment2).add_(correction * epsilon)
    update = as_saved(moment1).div(den).mul_(lr_t)
    subtract_(param, update)
    beta1_pow.mul_(beta1)
    beta2_pow.mul_(beta2)
