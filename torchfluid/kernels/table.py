"""The table layout shared by the fused kernels (CPU: numba, CUDA: Triton).

A fused call takes every tensor of a group through small host tables, built in
O(#tensors) and never in proportion to the number of elements:

* the **address table**: ``int64 (n, 5)``, one row per tensor, columns :data:`P`
  (param), :data:`G` (grad), :data:`MS` (mean_square), :data:`MG` (mean_grad),
  :data:`MOM` (velocity); an address of 0 means "absent" (a zero gradient address
  skips that tensor, columns a variant does not use are never read);
* the **chunk table**: ``int64 (k, 3)`` rows ``(tensor, start, stop)`` cutting each
  tensor into fixed-size pieces of work (:func:`chunk_table`);
* the **hyper table**: ``(n, 6)`` per-tensor ``(lr, scale, clip_min, clip_max, l2, l1)``
  in the tensors' dtype (:func:`hyper_table`, columns :data:`LR` ... :data:`L1`; all
  but ``lr`` come from one :class:`GradFold` record);
* the **scalars**: ``(rho, 1 - rho, eps inside sqrt, eps outside sqrt, momentum, 0, 1)``
  in the tensors' dtype (:func:`scalar_table`).

This module imports neither numba nor triton: either kernel can be missing without
the other's path being off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "DTYPES",
    "P",
    "G",
    "MS",
    "MG",
    "MOM",
    "LR",
    "SCALE",
    "LO",
    "HI",
    "L2",
    "L1",
    "GradFold",
    "NO_FOLD",
    "chunk_table",
    "hyper_table",
    "scalar_table",
]

DTYPES = {torch.float32: np.float32, torch.float64: np.float64}  # what the kernels take
P, G, MS, MG, MOM = range(5)  # address-table columns
LR, SCALE, LO, HI, L2, L1 = range(6)  # hyper-table columns


def chunk_table(numel, chunk: int) -> np.ndarray:
    """``(k, 3)`` int64 rows ``(tensor, start, stop)`` cutting each tensor in ``chunk``s
    (tensor ``i`` has ``numel[i]`` elements; empty tensors get no row)."""
    numel = np.asarray(numel, np.int64)
    per = -(-numel // chunk)  # ceil
    t = np.repeat(np.arange(numel.size, dtype=np.int64), per)
    first = np.repeat(np.cumsum(per) - per, per)
    start = (np.arange(t.size, dtype=np.int64) - first) * chunk
    stop = np.minimum(start + chunk, numel[t])
    return np.ascontiguousarray(np.stack([t, start, stop], axis=1))


@dataclass(frozen=True, kw_only=True)
class GradFold:
    """The gradient preparation a fused kernel folds into its single pass, per element of
    tensor ``i``, in Paddle's order (each step rounded as its separate tensor op)::

        g = grad * grad_scale[i]                          (a global-norm clip's scale, a loss scale)
        g = clip_min[i] if g < clip_min[i] else
            clip_max[i] if g > clip_max[i] else g         (clip by value; NaN stays)
        g = g + l2[i] * p                                 (L2Decay; skipped where l2[i] == 0)
        g = g + l1[i] * sign(p)                           (L1Decay; skipped where l1[i] == 0)

    Each field is a float (every tensor) or one float per tensor; ``clip_min`` /
    ``clip_max`` None means no bound (-inf / +inf); ``grad_scale`` may also be a tensor
    (0-d or one per tensor) where the caller says so (:meth:`torchfluid.kernels.flat.FlatGroup.step`).
    The default folds nothing (:data:`NO_FOLD`)."""

    grad_scale: float | Sequence[float] | torch.Tensor = 1.0
    clip_min: float | Sequence[float] | None = None
    clip_max: float | Sequence[float] | None = None
    l2: float | Sequence[float] = 0.0
    l1: float | Sequence[float] = 0.0


NO_FOLD = GradFold()


def hyper_table(n: int, dtype, *, lr, fold: GradFold = NO_FOLD) -> np.ndarray:
    """``(n, 6)`` per-tensor (lr, scale, clip_min, clip_max, l2, l1) in ``dtype``: ``lr``
    and the terms of ``fold``.

    Each may be a float (all tensors) or a sequence of ``n`` floats; values are
    rounded from float64 to ``dtype`` exactly as torch rounds Python scalars.
    """
    if not isinstance(fold, GradFold):
        raise TypeError(f"fold: {type(fold).__name__}; allowed: a GradFold")
    out = np.empty((n, 6), np.float64)
    cols = (
        ("lr", lr, None),
        ("grad_scale", fold.grad_scale, 1.0),
        ("clip_min", fold.clip_min, -np.inf),
        ("clip_max", fold.clip_max, np.inf),
        ("l2", fold.l2, 0.0),
        ("l1", fold.l1, 0.0),
    )
    for j, (name, value, default) in enumerate(cols):
        if value is None:
            if default is None:
                raise ValueError(f"{name}: None; allowed: a float or {n} floats")
            value = default
        elif not isinstance(value, (int, float)):
            value = np.asarray(value, np.float64)
            if value.shape != (n,):
                raise ValueError(f"{name}: shape {value.shape}; allowed: a float or {n} floats")
        out[:, j] = value
    return out.astype(dtype)


def scalar_table(dtype, *, rho: float, epsilon: float, momentum: float, eps_in_sqrt: bool) -> np.ndarray:
    """(rho, 1 - rho, eps inside sqrt, eps outside sqrt, momentum, 0, 1) in ``dtype``."""
    e_in, e_out = (epsilon, 0.0) if eps_in_sqrt else (0.0, epsilon)
    return np.array([rho, 1.0 - rho, e_in, e_out, momentum, 0.0, 1.0], dtype)
