"""Gradient clipping (Paddle's ``fluid.clip`` / ``paddle.nn.ClipGrad*``).

Clipping runs FIRST in each step, before regularization and the update. A parameter
with ``need_clip = False`` is neither clipped nor counted in the global norm. Clipping
never modifies ``param.grad``: it returns new gradient tensors (as Paddle does).

* ``ClipGradByValue(max, min=None)``: ``g = clamp(g, min, max)``; ``min`` defaults to ``-max``.
* ``ClipGradByNorm(clip_norm)``: per tensor, ``g = g * clip_norm / max(||g||_2, clip_norm)``.
* ``ClipGradByGlobalNorm(clip_norm)``: ``n = sqrt(sum_i ||g_i||^2)`` over the clipped
  set, ``scale = clip_norm / max(n, clip_norm)``, every clipped ``g_i *= scale``.
  The pre-clip norm is returned by :func:`global_norm` and kept as ``last_global_norm``.

Squared norms are accumulated in float64, in one pass over all the gradients
(:mod:`torchfluid.kernels.norms`); norms and scales are float32 (float64 for float64
gradients). Row-sparse (torch sparse COO) gradients are
coalesced (duplicate rows summed) and clipped on their values.

Each clip first makes a *plan* (:meth:`GradientClipBase.plan`): one :class:`ClipStep`
per gradient (a scale tensor and/or value bounds). ``clip_tensors`` applies the plan to
the gradients; a fused optimizer kernel can take the same plan instead and clip in its
own pass over the gradient, with the same result.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch

from ._checks import check_bool, check_number
from .kernels.attrs import paddle_attrs
from ._registry import ByType
from .kernels.norms import squared_norms
from ._unsupported import fluid_module_getattr

__all__ = [
    "ClipStep",
    "GradientClipBase",
    "ClipGradByValue",
    "ClipGradByNorm",
    "ClipGradByGlobalNorm",
    "GradientClipByValue",
    "GradientClipByNorm",
    "GradientClipByGlobalNorm",
    "global_norm",
    "need_clip",
    "register_record_clipper",
]


_RECORD_CLIPPERS = ByType("record_type")


def register_record_clipper(record_type: type, clipper) -> None:
    """``clipper(clip, params_grads) -> params_grads`` clips pairs whose grads are
    ``record_type`` instances (the static program registers its variables)."""
    _RECORD_CLIPPERS.register(record_type, clipper)


_PURE_FP16_GLOBAL_NORM = [False]


def _allow_pure_fp16_global_norm_clip(*args) -> bool:
    """Paddle's switch for static global-norm clipping of float16 gradients only: with it
    on, their squared norms are summed and the scale computed in float16 (no cast to
    float32). ``_allow_pure_fp16_global_norm_clip()`` reads it; ``(flag)`` sets it and
    returns the previous value."""
    if not args:
        return _PURE_FP16_GLOBAL_NORM[0]
    if len(args) != 1 or not isinstance(args[0], bool):
        raise TypeError(f"_allow_pure_fp16_global_norm_clip takes one bool, got {args!r}")
    old, _PURE_FP16_GLOBAL_NORM[0] = _PURE_FP16_GLOBAL_NORM[0], args[0]
    return old


def _pairs(params_grads) -> list:
    """The ``(param, grad)`` pairs of ``params_grads`` whose grad is not None; a TypeError
    naming what was given for anything that is not a sequence of pairs."""
    if isinstance(params_grads, (str, bytes)) or not hasattr(params_grads, "__iter__"):
        raise TypeError(f"params_grads must be a list of (param, grad) pairs, got {type(params_grads).__name__}")
    pairs = []
    for i, pair in enumerate(params_grads):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            what = f"a {type(pair).__name__} of {len(pair)}" if isinstance(pair, (tuple, list)) else type(pair).__name__
            raise TypeError(f"params_grads: item {i} must be a (param, grad) pair, got {what}")
        if pair[1] is not None:
            pairs.append((pair[0], pair[1]))
    return pairs


def need_clip(param) -> bool:
    """A parameter's ``need_clip`` attribute (ParamAttr), True when absent."""
    return bool(getattr(param, "need_clip", True))


def _values(g: torch.Tensor) -> torch.Tensor:
    return g.coalesce().values() if g.is_sparse else g


def _norm_dtype(grads: Sequence[torch.Tensor]) -> torch.dtype:
    """float64 if any gradient is float64, else float32 (norms and scales are never
    computed in float16/bfloat16)."""
    return torch.float64 if any(g.dtype == torch.float64 for g in grads) else torch.float32


def _squared_norms(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-gradient ``sum(g*g)`` (float64, one pass; see :mod:`torchfluid.kernels.norms`)."""
    return squared_norms([_values(g) for g in grads])


def global_norm(grads: Sequence[torch.Tensor], sum_across=None) -> torch.Tensor:
    """``sqrt(sum_i ||g_i||^2)`` as a 0-d float32 (float64 if any grad is float64) tensor.

    The squared norms are accumulated in float64 in one pass over all the gradients
    (:func:`torchfluid.kernels.norms.squared_norms`), summed, and the square root is
    rounded once to the result dtype (Paddle sums in float32; the two agree to float32
    rounding on well-scaled gradients, and this one does not drift with size).

    ``sum_across`` (distributed, see :mod:`torchfluid.distributed`): each process passes
    only its shard's gradients; their squared norm, a 0-d float64 tensor, is summed over
    the processes by ``sum_across(t) -> total`` (e.g. one all-reduce) before the sqrt.
    It is called even when ``grads`` is empty, so every process joins the collective.
    """
    sq = _squared_norms(grads).sum()
    if sum_across is not None:
        sq = sum_across(sq)
    return torch.sqrt(sq).to(_norm_dtype(grads))


def _map_values(g: torch.Tensor, fn) -> torch.Tensor:
    if not g.is_sparse:
        return fn(g)
    c = g.coalesce()
    # the indices are a coalesced tensor's (valid by construction): no invariant check, and no warning about it
    return torch.sparse_coo_tensor(c.indices(), fn(c.values()), c.shape, check_invariants=False).coalesce()


class ClipStep(NamedTuple):
    """How one gradient is clipped: ``g * scale`` (a 0-d tensor), then clamped into
    ``[min, max]``; a None part is skipped. ``apply`` returns a new tensor."""

    scale: torch.Tensor | None = None
    min: float | None = None
    max: float | None = None

    def is_noop(self) -> bool:
        return self.scale is None and self.min is None

    def apply(self, g: torch.Tensor) -> torch.Tensor:
        if self.scale is not None:
            s = self.scale
            g = _map_values(g, lambda v: v * s.to(device=v.device, dtype=v.dtype))
        if self.min is not None:
            g = _map_values(g, lambda v: torch.clamp(v, self.min, self.max))
        return g


_NO_CLIP = ClipStep()


class GradientClipBase:
    """Base: ``plan(grads, need_clip) -> [ClipStep]``; ``clip_tensors(grads, need_clip) ->
    new grads`` (the plan applied); ``clip(params_grads)``."""

    def plan(self, grads: Sequence[torch.Tensor], need_clip: Sequence[bool]) -> list[ClipStep] | None:
        """One step per gradient (need_clip False: no step), or None if this clip cannot
        be expressed as steps (then only ``clip_tensors`` clips)."""
        return None

    def plannable(self) -> bool:
        """Whether ``clip_tensors`` is exactly ``plan`` applied (a fused kernel may then
        take the plan instead of the clipped gradients)."""
        cls = type(self)
        return cls.plan is not GradientClipBase.plan and cls.clip_tensors in _PLAN_APPLIERS

    @torch.no_grad()
    def clip_tensors(self, grads: Sequence[torch.Tensor], need_clip: Sequence[bool]) -> list[torch.Tensor]:
        steps = self.plan(grads, need_clip)
        if steps is None:
            raise NotImplementedError(f"{type(self).__name__} must define plan or clip_tensors")
        return [step.apply(g) for g, step in zip(grads, steps, strict=False)]

    @torch.no_grad()
    def __call__(self, params_grads):
        """Clip a list of ``(param, grad)`` pairs, reading each param's ``need_clip``;
        pairs whose grad is None are dropped (as Paddle). Pairs of records registered
        with :func:`register_record_clipper` (static program variables) go to it."""
        params_grads = _pairs(params_grads)
        clipper = _RECORD_CLIPPERS.lookup(params_grads[0][1]) if params_grads else None
        if clipper is not None:
            return clipper(self, params_grads)
        for i, (_, g) in enumerate(params_grads):
            if not isinstance(g, torch.Tensor):
                raise TypeError(f"params_grads: the gradient of pair {i} must be a tensor, got {type(g).__name__}")
        params = [p for p, _ in params_grads]
        grads = self.clip_tensors([g for _, g in params_grads], [need_clip(p) for p in params])
        return list(zip(params, grads, strict=False))


class ClipGradByValue(GradientClipBase):
    """Clamp each gradient element into ``[min, max]`` (``min`` defaults to ``-max``).

    As Paddle's ``clip`` op, whose ``min``/``max`` are float32 attributes, a float64
    gradient is clamped into ``[float64(float32(min)), float64(float32(max))]``;
    ``float32_attrs=False`` uses the bounds as given (narrower gradients are not affected)."""

    float32_attrs = True  # (the class default also serves clips described before the option existed)

    def __init__(self, max: float, min: float | None = None, *, float32_attrs: bool = True):
        if min is None:
            max = check_number("max", max, lo=0.0, lo_open=True)
            min = -max
        else:
            max = check_number("max", max)
            min = check_number("min", min)
            if min > max:
                raise ValueError(f"min must be <= max, got min={min:g} and max={max:g}")
        self.max, self.min = max, min
        self.float32_attrs = check_bool("float32_attrs", float32_attrs)

    def plan(self, grads, need_clip):
        steps: dict = {}
        out = []
        for g, nc in zip(grads, need_clip, strict=False):
            if not nc:
                out.append(_NO_CLIP)
                continue
            step = steps.get(g.dtype)
            if step is None:
                lo, hi = paddle_attrs(g.dtype, self.min, self.max) if self.float32_attrs else (self.min, self.max)
                step = steps[g.dtype] = ClipStep(min=lo, max=hi)
            out.append(step)
        return out

    def __repr__(self) -> str:
        flag = "" if self.float32_attrs else ", float32_attrs=False"
        return f"ClipGradByValue(max={self.max:g}, min={self.min:g}{flag})"


class ClipGradByNorm(GradientClipBase):
    """Per tensor: ``g * clip_norm / max(||g||_2, clip_norm)``."""

    def __init__(self, clip_norm: float):
        self.clip_norm = check_number("clip_norm", clip_norm, lo=0.0, lo_open=True)

    @torch.no_grad()
    def plan(self, grads, need_clip):
        clipped = [g for g, nc in zip(grads, need_clip, strict=False) if nc]
        norms = torch.sqrt(_squared_norms(clipped))  # one pass over every clipped gradient
        dtypes = [_norm_dtype([g]) for g in clipped]
        scales = {dt: self.clip_norm / torch.clamp_min(norms.to(dt), self.clip_norm) for dt in set(dtypes)}
        clip_steps = iter(ClipStep(scale=scales[dt][k]) for k, dt in enumerate(dtypes))
        return [next(clip_steps) if nc else _NO_CLIP for nc in need_clip]

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
        norm = global_norm([g for g, nc in zip(grads, need_clip, strict=False) if nc], sum_across)
        return norm, self.clip_norm / torch.clamp_min(norm, self.clip_norm)

    @torch.no_grad()
    def plan(self, grads, need_clip, sum_across=None):
        """The steps of :meth:`scale_for`'s scale; sets ``last_global_norm``."""
        norm, scale = self.scale_for(grads, need_clip, sum_across)
        self.last_global_norm = norm
        step = ClipStep(scale=scale)
        return [step if nc else _NO_CLIP for nc in need_clip]

    @torch.no_grad()
    def clip_tensors(self, grads, need_clip, sum_across=None):
        return [step.apply(g) for g, step in zip(grads, self.plan(grads, need_clip, sum_across), strict=False)]

    def __repr__(self) -> str:
        return f"ClipGradByGlobalNorm(clip_norm={self.clip_norm:g})"


_PLAN_APPLIERS = (GradientClipBase.clip_tensors, ClipGradByGlobalNorm.clip_tensors)

GradientClipByValue = ClipGradByValue
GradientClipByNorm = ClipGradByNorm
GradientClipByGlobalNorm = ClipGradByGlobalNorm

# a fluid.clip name torchfluid does not implement: say so, and what to use instead
__getattr__ = fluid_module_getattr("fluid.clip")
