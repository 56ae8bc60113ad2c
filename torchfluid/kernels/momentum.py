"""Paddle's Momentum kernel (``momentum`` op, ``momentum_op.h``), pure and in place.

Per element, with the velocity starting at 0 and ``mu`` the momentum::

    g        = g * rescale_grad                 (1 by default: no change)
    g        = p * l2_coeff + g                 (only with l2_coeff != 0: the op's in-place L2 decay)
    velocity = velocity * mu + g
    p        = p - (g + velocity * mu) * lr     if use_nesterov
    p        = p - lr * velocity                otherwise

Each product and sum is rounded in the velocity's dtype in that order (Paddle's Eigen
expressions, never fused into one multiply-add). ``mu``, ``rescale_grad`` and ``l2_coeff`` are
Paddle's float32 op attributes: they are rounded to float32 first (so a float64 update uses
``float64(float32(mu))``, as Paddle's); with a float16/bfloat16 velocity they and ``lr`` are then
rounded to that dtype, as Paddle's ``static_cast<T>``. A float16/bfloat16 velocity makes the
whole step float16/bfloat16 (Paddle without multi-precision); with multi-precision the velocity
is float32 and ``param`` is the float32 master weight, so the step is computed in float32.

A row-sparse gradient (Paddle's SelectedRows) follows Paddle's ``SparseMomentumFunctor``:
its duplicate rows are summed and EVERY row is updated, absent rows with gradient 0 (their
velocity decays by ``mu`` and keeps moving the parameter). That is exactly this dense
kernel on the merged gradient made dense, so callers pass ``grad.to_dense()``.

Where ``torch.optim.SGD(momentum=mu, nesterov=...)`` differs:

* torch keeps ``buf = mu * buf + (1 - dampening) * g`` with ``buf = g`` on its first step;
  Paddle's velocity starts at 0, so its first step gives ``0 * mu + g = g`` as well: with
  ``dampening=0`` (torch's default) the two velocities are the same numbers at every step
  (torch's ``dampening`` has no Paddle counterpart);
* the parameter updates are the same maths, ``p -= lr * buf`` and, with Nesterov,
  ``p -= lr * (g + mu * buf)``; torch's CPU kernels compute ``a + alpha * b`` as one fused
  multiply-add where the CPU has one, Paddle rounds the product first, so the last bit can
  differ;
* torch's ``weight_decay`` is the coupled L2 decay ``g + wd * p`` before the momentum, as
  Paddle's ``L2Decay`` (and this kernel's ``l2_coeff``, which rounds ``p * l2_coeff`` first);
* the learning rate multiplies the velocity at each step (not inside it, as Paddle's
  RMSProp does), so a changed learning rate applies to the whole velocity at once in both.
"""

from __future__ import annotations

import torch

from .._grad_mode import update_kernel
from .attrs import as_saved, paddle_attrs, subtract_

__all__ = ["momentum_"]


@update_kernel
def momentum_(
    param: torch.Tensor,
    grad: torch.Tensor,
    velocity: torch.Tensor,
    *,
    lr: float,
    mu: float,
    use_nesterov: bool = False,
    rescale_grad: float = 1.0,
    l2_coeff: float = 0.0,
    dampening: float = 0.0,
) -> None:
    """One Momentum update in place (module docstring): ``velocity = velocity * mu + g``;
    ``param -= lr * velocity`` (``param -= (g + velocity * mu) * lr`` with ``use_nesterov``).

    ``grad`` is dense, of ``param``'s shape; ``g`` is ``grad * rescale_grad``, plus
    ``param * l2_coeff`` when ``l2_coeff`` is not 0. The step is computed in ``velocity``'s
    dtype and the result rounded once into ``param``. ``dampening`` (torch.optim.SGD's; 0 in
    Paddle): ``velocity = velocity * mu + (1 - dampening) * g``, as torch's ``add_(g,
    alpha=1 - dampening)``; torch's first step, where its buffer starts as ``g`` undamped, is
    the caller's (a zero velocity with ``dampening=0``)."""
    dtype = velocity.dtype
    if dtype in (torch.float16, torch.bfloat16):  # torch would use the float32 values; Paddle rounds them first
        lr, mu, rescale_grad, l2_coeff = (_rounded(x, dtype) for x in (lr, mu, rescale_grad, l2_coeff))
    else:  # Paddle's attributes are float32 (its float64 learning rate is not)
        mu, rescale_grad, l2_coeff = paddle_attrs(dtype, mu, rescale_grad, l2_coeff)
    g = grad.to(dtype)
    if rescale_grad != 1.0:
        g = g * rescale_grad
    if l2_coeff != 0.0:
        g = param.to(dtype).mul(l2_coeff).add_(g)  # p * coeff rounded, then + g (Paddle's CPU expression)
    if dampening != 0.0:
        velocity.mul_(mu).add_(g, alpha=1.0 - dampening)
    else:
        velocity.mul_(mu).add_(g)
    if use_nesterov:
        step = velocity.mul(mu).add_(g).mul_(lr)  # (g + velocity * mu) * lr
    else:
        step = as_saved(velocity).mul(lr)  # the velocity changes in place at the next update
    subtract_(param, step)


def _rounded(x: float, dtype: torch.dtype) -> float:
    """``x`` rounded to float32 (Paddle's attribute and learning-rate dtype), then to ``dtype``."""
    return float(torch.tensor(x, dtype=torch.float32).to(dtype))
