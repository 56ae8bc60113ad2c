"""Paddle's float hyper-parameters are float32 op attributes; a step written back to a parameter.

Paddle's optimizer ops take ``beta1``, ``beta2``, ``epsilon``, ``decay``, ``momentum``,
``mu`` and the ``scale`` of its scale op as ``float`` attributes and cast them to the
parameter's type: a float64 update uses ``float64(float32(x))``. A float32 (or narrower)
update computes in float32, where torch rounds a Python float the same way, so only
float64 needs the explicit rounding. Learning rates are tensors in Paddle and are not
attributes. ``1 - beta`` is computed by Paddle's kernels in their compute type from the
float32 attribute (:func:`one_minus`), which for float32 is not ``1 - beta`` rounded once.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .._grad_mode import recording

__all__ = ["paddle_attrs", "one_minus", "subtract_", "as_saved", "as_factor", "add_scaled_", "addcmul_scaled_"]


def paddle_attrs(dtype: torch.dtype, *values: float) -> tuple[float, ...]:
    """``values`` as a Paddle op of ``dtype`` uses them: rounded to float32 for float64,
    as given otherwise. A tensor (a hyper-parameter that a ``differentiable`` update
    differentiates) stays the tensor, unrounded: rounding would leave it no gradient."""
    if any(isinstance(v, torch.Tensor) for v in values):
        return tuple(v if isinstance(v, torch.Tensor) else paddle_attrs(dtype, v)[0] for v in values)
    if dtype != torch.float64:
        return tuple(float(v) for v in values)
    return tuple(float(np.float32(v)) for v in values)


def one_minus(dtype: torch.dtype, *values: float) -> tuple[float, ...]:
    """``1 - x`` for each of ``values`` (attributes as :func:`paddle_attrs` gives them) as
    Paddle's kernels compute it: ``static_cast<T>(1) - beta`` in the compute type ``T``,
    float64 for a float64 update and float32 otherwise (a float16/bfloat16 update computes
    in float32). So for float32 ``1 - 0.9`` is ``1 - float32(0.9) = 0.100000024`` (exact:
    the difference of two floats this close is representable), not ``float32(0.1) =
    0.1000000015``, which ``1.0 - 0.9`` in Python rounded to float32 would give. The values
    are numbers (hashable): the results are cached, every step asks for the same few. A
    tensor (a ``differentiable`` update's hyper-parameter) gives the tensor ``1 - x``."""
    if any(isinstance(v, torch.Tensor) for v in values):
        return tuple(1.0 - v if isinstance(v, torch.Tensor) else _one_minus(dtype, (v,))[0] for v in values)
    return _one_minus(dtype, values)


@functools.lru_cache(maxsize=256)
def _one_minus(dtype: torch.dtype, values: tuple) -> tuple[float, ...]:
    if dtype == torch.float64:
        return tuple(1.0 - float(v) for v in values)
    one = np.float32(1.0)
    return tuple(float(one - np.float32(v)) for v in values)


def subtract_(param: torch.Tensor, step: torch.Tensor) -> None:
    """``param -= step`` computed in ``step``'s dtype (the state's: float32 for a float16 /
    bfloat16 parameter), rounded once into ``param``'s dtype, as Paddle's kernels write
    ``ParamOut`` from their compute type."""
    if param.dtype == step.dtype:
        param.sub_(step)
    else:
        param.copy_(param.to(step.dtype).sub_(step))


def add_scaled_(t: torch.Tensor, x: torch.Tensor, alpha) -> torch.Tensor:
    """``t += alpha * x`` in place: torch's ``add_(x, alpha=alpha)`` for a number, ``x * alpha``
    added for a tensor (a ``differentiable`` update's hyper-parameter)."""
    if isinstance(alpha, torch.Tensor):
        return t.add_(x * alpha)
    return t.add_(x, alpha=alpha)


def addcmul_scaled_(t: torch.Tensor, a: torch.Tensor, b: torch.Tensor, value) -> torch.Tensor:
    """``t += (value * a) * b`` in place: torch's ``addcmul_(a, b, value=value)`` for a number,
    ``(a * value) * b`` added for a tensor (a ``differentiable`` update's hyper-parameter)."""
    if isinstance(value, torch.Tensor):
        return t.addcmul_(a * value, b)
    return t.addcmul_(a, b, value=value)


def as_factor(x, like: torch.Tensor) -> torch.Tensor:
    """``x`` as a tensor of ``like``'s dtype and device: a number, or a tensor that autograd
    may differentiate (a ``differentiable`` step's learning rate)."""
    if isinstance(x, torch.Tensor):
        return x.to(dtype=like.dtype, device=like.device)
    return torch.tensor(x, dtype=like.dtype, device=like.device)


def as_saved(t: torch.Tensor) -> torch.Tensor:
    """``t`` as an operation that autograd may save reads it: ``t`` itself, or, in a recorded
    (``differentiable``) update, a copy, since the state changes in place at the next
    update and autograd refuses a saved tensor changed since."""
    return t.clone() if recording() else t
