"""The reference RMSProp kernel: the ground truth every other path is tested against.

Pure function over tensors, in place, keyword-only hyper-parameters, no state and no
mode checks. With the defaults it is exactly PaddlePaddle's ``rmsprop`` op::

    ms  = rho * ms + (1 - rho) * g * g
    mg  = rho * mg + (1 - rho) * g                      (centered only)
    den = sqrt(ms - mg * mg + eps)   if centered        (variance clamped at 0)
        = sqrt(ms + eps)             otherwise          (eps INSIDE the sqrt)
    mom = momentum * mom + lr * g / den                 (lr INSIDE the velocity)
    p   = p - mom

Where conventions differ (see the README's convention table):

* PyTorch puts eps outside the sqrt (``eps_in_sqrt=False``: ``den = sqrt(ms) + eps``)
  and lr outside the velocity (``lr_in_momentum=False``: ``buf = momentum*buf + g/den;
  p -= lr*buf``). With a constant lr the two momentum forms give the same trajectory;
  they differ as soon as lr changes.
* optax's ``nesterov=True`` applies the look-ahead ``p -= u + momentum * mom`` where
  ``u`` is this step's update term.
* When ``moment is None`` (momentum 0 and no velocity kept) the update is applied
  directly: ``p -= lr * g / den``. Paddle keeps the velocity even at momentum 0
  (it then equals the last update); the result for ``p`` is identical.

The centered variance ``ms - mg*mg`` is clamped at 0 before eps is added; Paddle does
not clamp, which differs only where rounding makes the difference negative (there
Paddle can produce NaN for tiny eps; we do not).
"""

from __future__ import annotations

import torch

__all__ = ["rmsprop_", "rmsprop_denominator"]


def rmsprop_denominator(
    mean_square: torch.Tensor,
    mean_grad: torch.Tensor | None,
    *,
    epsilon: float,
    eps_in_sqrt: bool = True,
) -> torch.Tensor:
    """``sqrt(ms [- mg*mg] + eps)`` or ``sqrt(ms [- mg*mg]) + eps`` as a new tensor."""
    if mean_grad is not None:
        var = torch.clamp_min(mean_square - mean_grad * mean_grad, 0.0)
    else:
        var = mean_square
    if eps_in_sqrt:
        return torch.sqrt(var + epsilon)
    return torch.sqrt(var) + epsilon


@torch.no_grad()
def rmsprop_(
    param: torch.Tensor,
    grad: torch.Tensor,
    mean_square: torch.Tensor,
    mean_grad: torch.Tensor | None = None,
    moment: torch.Tensor | None = None,
    *,
    lr: float,
    rho: float,
    epsilon: float,
    momentum: float = 0.0,
    eps_in_sqrt: bool = True,
    lr_in_momentum: bool = True,
    nesterov: bool = False,
) -> None:
    """One RMSProp update of ``param`` and its state, in place.

    ``mean_grad`` is given iff the update is centered; ``moment`` is given iff a
    velocity is kept (momentum != 0, or Paddle's always-kept velocity). All state
    tensors have ``param``'s shape; the arithmetic runs in ``mean_square``'s dtype
    (so fp32 state over an fp16 parameter computes in fp32) and the result is cast
    back into ``param``.
    """
    g = grad.to(mean_square.dtype)
    mean_square.mul_(rho).addcmul_(g, g, value=1.0 - rho)
    if mean_grad is not None:
        mean_grad.mul_(rho).add_(g, alpha=1.0 - rho)
    den = rmsprop_denominator(mean_square, mean_grad, epsilon=epsilon, eps_in_sqrt=eps_in_sqrt)
    if moment is None:
        update = g.div(den).mul_(lr)
    elif lr_in_momentum:
        moment.mul_(momentum).add_(g.div(den).mul_(lr))
        update = moment if not nesterov else g.div(den).mul_(lr).add_(moment, alpha=momentum)
    else:
        moment.mul_(momentum).add_(g.div(den))
        step = moment if not nesterov else g.div(den).add_(moment, alpha=momentum)
        update = step * lr
    if param.dtype == update.dtype:
        param.sub_(update)
    else:
        param.copy_(param.to(update.dtype).sub_(update))
