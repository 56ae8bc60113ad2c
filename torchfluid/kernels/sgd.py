"""Paddle's SGD kernel: ``p = p - lr * g``. Pure, in place, keyword-only lr."""

from __future__ import annotations

import torch

from .._grad_mode import update_kernel

__all__ = ["sgd_"]


@update_kernel
def sgd_(param: torch.Tensor, grad: torch.Tensor, *, lr: float) -> None:
    """``param -= lr * grad`` (Paddle's ``sgd`` op; identical to torch SGD without momentum);
    ``lr`` may be a tensor autograd differentiates (a ``differentiable`` step's)."""
    if isinstance(lr, torch.Tensor):
        param.sub_(grad.to(param.dtype) * lr.to(param.dtype))
    else:
        param.sub_(grad.to(param.dtype), alpha=lr)
