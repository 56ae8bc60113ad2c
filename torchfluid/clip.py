"""Gradient clipping (Paddle's ``fluid.clip`` / ``paddle.nn.ClipGrad*``).

Clipping runs FIRST in each step, before regularization and the update. A parameter
with ``need_clip = False`` is neither clipped nor counted in the global norm. Clipping
never modifies ``param.grad``: it returns new gradient tensors (as Paddle does).

* ``ClipGradByValue(max, min=None)``: ``g = clamp(g, min, max)``; ``min`` defaults to ``-max``.
* ``ClipGradByNorm(clip_norm)``: per tensor, ``g = g * clip_norm / max(||g||_2, clip_norm)``.
* ``ClipGradByGlobalNorm(clip_norm)``: ``n = sqrt(sum_i ||g_i||^2)`` over the clipped
  set, ``scale = clip_norm / max(n, clip_norm)``, every clipped ``g_i *= scale``.
  The pre-clip norm is returned by :func:`global_norm` and kept as ``last_global_norm``.

Norms are accumulated in at least float32. Row-sparse (torch sparse COO) gradients are
coalesced (duplicate rows summed) and clipped on their values.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ._checks import check_number

__all__ = [
    "GradientClipBase",
    "ClipGradByValue",
    "ClipGradByNorm",
    "ClipGradByGlobalNorm",
    "GradientClipByValue",
    "GradientClipByNorm",
    "GradientClipByGlobalNorm",
    "global_norm",
    "need_clip",
]


def need_clip(param) -> bool:
    """A parameter's ``need_clip`` attribute (ParamAttr), True when absent."""
    return bool(getattr(param, "need_clip", True))


def _values(g: torch.Tensor) -> torch.Tensor:
    return g.coalesce().values() if g.is_sparse else g


def _acc_dtype(g: torch.Tensor) -> torch.dtype:
    return torch.float64 if g.dtype == torch.float64 else torch.float32


def _squared_norm(g: torch.Tensor) -> torch.Tensor:
    v = _values(g)
    return torch.sum(torch.square(v.to(_acc_dtype(v))))


def global_norm(grads: Sequence[torch.Tensor], sum_across=None) -> torch.Tensor:
    """``sqrt(sum_i ||g_i||^2)`` as a 0-d float32 (float64 if any grad is float64) tensor.

    ``sum_across`` (distributed, see :mod:`torchfluid.distributed`): each process passes
    only its shard's gradients; their squared norm, a 0-d float64 tensor, is summed over
    the processes by ``sum_across(t) -> total`` (e.g. one all-reduce) before the sqrt.
    It is called even when ``grads`` is empty, so every process joins the collective.
    """
    if sum_across is not None:
        parts = [_squared_norm(g).to(torch.float64) for g in grads]
        sq = sum_across(torch.stack(parts).sum() if parts else torch.zeros((), dtype=torch.float64))
        wide = any(g.dtype == torch.float64 for g in grads)
        return torch.sqrt(sq).to(torch.float64 if wide else torch.float32)
    if not grads:
        return torch.zeros(())
    sq = [_squared_norm(g) for g in grads]
    dtype = torch.float64 if any(s.dtype == torch.float64 for s in sq) else torch.float32
    return torch.sqrt(torch.stack([s.to(device=sq[0].device, dtype=dtype) for s in sq]).sum())


def _map_values(g: torch.Tensor, fn) -> torch.Tensor:
    if not g.is_sparse:
        return fn(g)
    c = g.coalesce()
    return torch.sparse_coo_tensor(c.indices(), fn(c.values()), c.shape).coalesce()


class GradientClipBase:
    """Base: ``clip_tensors(grads, need_clip) -> new grads``; ``clip(params_grads)``."""

    def clip_tensors(self, grads: Sequence[torch.Tensor], need_clip: Sequence[bool]) -> list[torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, params_grads):
        """Clip a list of ``(param, grad)`` pairs, reading each param's ``need_clip``."""
        params = [p for p, _ in params_grads]
        grads = self.clip_tensors([g for _, g in params_grads], [need_clip(p) for p in params])
        return list(zip(params, grads))


class ClipGradByValue(GradientClipBase):
    """Clamp each gradient element into ``[min, max]`` (``min`` defaults to ``-max``)."""

    def __init__(self, max: float, min: float | None = None):
        if min is None:
            max = check_number("max", max, lo=0.0, lo_open=True)
            min = -max
        else:
            max = check_number("max", max)
            min = check_number("min", min)
            if min > max:
                raise ValueError(f"min must be <= max, got min={min:g} and max={max:g}")
        self.max, self.min = max, min

    @torch.no_grad()
    def clip_tensors(self, grads, need_clip):
        return [_map_values(g, lambda v: torch.clamp(v, self.min, self.max)) if nc else g
                for g, nc in zip(grads, need_clip)]

    def __repr__(self) -> str:
        return f"ClipGradByValue(max={self.max:g}, min={self.min:g})"


class ClipGradByNorm(GradientClipBase):
    """Per tensor: ``g * clip_norm / max(||g||_2, clip_norm)``."""

    def __init__(self, clip_norm: float):
        self.clip_norm = check_number("clip_norm", clip_norm, lo=0.0, lo_open=True)

    @torch.no_grad()
    def clip_tensors(self, grads, need_clip):
        out = []
        for g, nc in zip(grads, need_clip):
            if not nc:
                out.append(g)
                continue
            norm = torch.sqrt(_squared_norm(g))
            scale = self.clip_norm / torch.clamp_min(norm, self.clip_norm)
            out.append(_map_values(g, lambda v: v * scale.to(v.dtype)))
        return out

    def __repr__(self) -> str:
        return f"ClipGradByNorm(clip_norm={self.clip_norm:g})"


class ClipGradByGlobalNorm(GradientClipBase):
    """Scale all clipped gradients by ``clip_norm / max(global_norm, clip_norm)``."""

    def __init__(self, clip_norm: float, group_name: str = "default_group"):
        self.clip_norm = check_number("clip_norm", clip_norm, lo=0.0, lo_open=True)
        if not isinstance(group_name, str):
            raise ValueError(f"group_name must be a str, got {group_name!r}")
        self.group_name = group_name
        self.last_global_norm: torch.Tensor | None = None

    def scale_for(self, grads, need_clip, sum_across=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(global_norm, scale)`` over the gradients with ``need_clip`` True
        (``sum_across``: partial norms summed over processes, see :func:`global_norm`)."""
        norm = global_norm([g for g, nc in zip(grads, need_clip) if nc], sum_across)
        return norm, self.clip_norm / torch.clamp_min(norm, self.clip_norm)

    @torch.no_grad()
    def clip_tensors(self, grads, need_clip, sum_across=None):
        norm, scale = self.scale_for(grads, need_clip, sum_across)
        self.last_global_norm = norm
        return [_map_values(g, lambda v: v * scale.to(device=v.device, dtype=v.dtype)) if nc else g
                for g, nc in zip(grads, need_clip)]

    def __repr__(self) -> str:
        return f"ClipGradByGlobalNorm(clip_norm={self.clip_norm:g})"


GradientClipByValue = ClipGradByValue
GradientClipByNorm = ClipGradByNorm
GradientClipByGlobalNorm = ClipGradByGlobalNorm
