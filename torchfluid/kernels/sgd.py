"""Paddle's SGD kernel: ``p = p - lr * g``. Pure, in place, keyword-only lr."""

from __future__ import annotations

import torch

__all__ = ["sgd_"]


@torch.no_grad()
def sgd_(param: torch.Tensor, grad: torch.Tensor, *, lr: float) -> None:
    """``param -= lr * grad`` (Paddle's ``sgd`` op; identical to torch SGD without momentum)."""
    param.sub_(grad.to(param.dtype), alpha=lr)
