"""``no_grad``: ``torch.no_grad()`` as a decorator for the per-step path;
``update_kernel`` / ``recorded_update``: the update kernels' grad mode (off, unless an
update is recorded for autograd: torch's ``differentiable=True``);
``closure_loss``: the loss of a ``step(closure)`` call.

``@torch.no_grad()`` builds and enters a context object on every call (a few
microseconds); the update path nests several such calls per step, already under
``step()``'s own no-grad mode. This decorator reads the grad-mode flag and enters
``torch.no_grad()`` only when gradients are on, so the nested calls cost one flag read.
"""

from __future__ import annotations

import contextlib
import functools
import threading

import torch

__all__ = ["closure_loss", "hyper_parameter_now", "no_grad", "recorded_update", "recording", "update_kernel"]

_RECORD = threading.local()


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


def recording() -> bool:
    """Whether the update running on this thread is recorded by autograd (:func:`recorded_update`)."""
    return getattr(_RECORD, "on", False)


def hyper_parameter_now(value):
    """A hyper-parameter as this update uses it: a number as it is; a tensor's value now,
    as a float; in a recorded update (:func:`recorded_update`), a tensor that requires grad
    itself (0-d: a ``[1]`` one too), so that autograd differentiates the update by it."""
    if not isinstance(value, torch.Tensor):
        return value
    if value.requires_grad and recording():
        return value.reshape(())
    return float(value.detach())


@contextlib.contextmanager
def recorded_update(on: bool):
    """With ``on``: autograd on and the update kernels recording (torch's
    ``differentiable=True``: the new parameters and state are functions of the old ones and
    of the gradients); otherwise nothing changes."""
    if not on:
        yield
        return
    before = recording()
    _RECORD.on = True
    try:
        with torch.enable_grad():
            yield
    finally:
        _RECORD.on = before


def update_kernel(fn):
    """An update kernel's grad mode: autograd off, as ``@torch.no_grad()`` (in-place updates
    of parameters that require grad are not recorded), except inside
    :func:`recorded_update`, where the caller's (on) is kept."""

    @functools.wraps(fn)
    def run_kernel(*args, **kwargs):
        if not torch.is_grad_enabled() or recording():
            return fn(*args, **kwargs)
        with torch.no_grad():
            return fn(*args, **kwargs)

    return run_kernel


def closure_loss(closure):
    """``closure()`` evaluated with autograd on (torch's ``step(closure)``: it re-evaluates
    the loss and its gradients), or None without a closure."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()
