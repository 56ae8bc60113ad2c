"""``no_grad``: ``torch.no_grad()`` as a decorator for the per-step path;
``closure_loss``: the loss of a ``step(closure)`` call.

``@torch.no_grad()`` builds and enters a context object on every call (a few
microseconds); the update path nests several such calls per step, already under
``step()``'s own no-grad mode. This decorator reads the grad-mode flag and enters
``torch.no_grad()`` only when gradients are on, so the nested calls cost one flag read.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["closure_loss", "no_grad"]


def no_grad(fn):
    """``fn`` run with autograd off, as ``@torch.no_grad()`` (the context is entered only
    when grad mode is on)."""

    @functools.wraps(fn)
    def run_without_grad(*args, **kwargs):
        if not torch.is_grad_enabled():
            return fn(*args, **kwargs)
        with torch.no_grad():
            return fn(*args, **kwargs)

    return run_without_grad


def closure_loss(closure):
    """``closure()`` evaluated with autograd on (torch's ``step(closure)``: it re-evaluates
    the loss and its gradients), or None without a closure."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()
