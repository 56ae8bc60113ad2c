"""Paddle's float hyper-parameters are float32 op attributes; a step written back to a parameter.

Paddle's optimizer ops take ``beta1``, ``beta2``, ``epsilon``, ``decay``, ``momentum``,
``mu`` and the ``scale`` of its scale op as ``float`` attributes and cast them to the
parameter's type: a float64 update uses ``float64(float32(x))``. A float32 (or narrower)
update computes in float32, where torch rounds a Python float the same way, so only
float64 needs the explicit rounding. Learning rates are tensors in Paddle and are not
attributes.
"""

from __future__ import annotations

import numpy as np
import torch

from .._grad_mode import recording

__all__ = ["paddle_attrs", "subtract_", "as_saved"]


def paddle_attrs(dtype: torch.dtype, *values: float) -> tuple[float, ...]:
    """``values`` as a Paddle op of ``dtype`` uses them: rounded to float32 for float64,
    as given otherwise."""
    if dtype != torch.float64:
        return tuple(float(v) for v in values)
    return tuple(float(np.float32(v)) for v in values)


def subtract_(param: torch.Tensor, step: torch.Tensor) -> None:
    """``param -= step`` computed in ``step``'s dtype (the state's: float32 for a float16 /
    bfloat16 parameter), rounded once into ``param``'s dtype, as Paddle's kernels write
    ``ParamOut`` from their compute type."""
    if param.dtype == step.dtype:
        param.sub_(step)
    else:
        param.copy_(param.to(step.dtype).sub_(step))


def as_saved(t: torch.Tensor) -> torch.Tensor:
    """``t`` as an operation that autograd may save reads it: ``t`` itself, or, in a recorded
    (``differentiable``) update, a copy, since the state changes in place at the next
    update and autograd refuses a saved tensor changed since."""
    return t.clone() if recording() else t
