"""Gradient clipping of static ``(param, grad)`` pairs: Paddle's own op graph.

``clip(params_grads)`` (a ``fluid.clip`` object) called with program Variables appends
the ops of Paddle 2.1/2.2's ``_static_clip`` and returns ``[(param, clipped grad)]``;
pairs whose grad is None are dropped, pairs whose parameter has ``need_clip=False``
keep their grad variable, as in Paddle. The ops, with the maths each one runs:

* ``ClipGradByValue(max, min)``: per grad ``clip(g, min, max)``.
* ``ClipGradByNorm(clip_norm)``: per grad ``clip_by_norm(g, max_norm=clip_norm)``:
  ``g * clip_norm / ||g||`` where ``||g|| > clip_norm``, else ``g``.
* ``ClipGradByGlobalNorm(clip_norm)``: per grad its squared norm, ``squared_l2_norm(g)``
  (``square`` + ``reduce_sum`` for float16/bfloat16 grads), each in the grad's dtype; a
  ``sum`` of the squared norms of each dtype; the float16 sum ``cast`` to the norm dtype
  (float64 if any grad is float64, else float32; left in float16 when all grads are
  float16 and ``fluid.clip._allow_pure_fp16_global_norm_clip(True)``), float32 cast to
  float64 when there are float64 grads; a ``sum`` when several dtypes remain; ``sqrt``;
  ``fill_constant(clip_norm)`` in the norm dtype; ``scale = clip_norm /
  elementwise_max(clip_norm, norm)``; per grad ``elementwise_mul(g, scale)`` (a grad of
  another dtype than the scale -- float16 as in Paddle, or float32 beside float64 grads --
  multiplies by the scale ``cast`` to its dtype).

The new gradient variables are named ``<grad>@CLIP`` (made unique if taken). The
optimizer's own ``grad_clip`` does NOT come here: ``minimize`` clips inside its one
optimize op (static == eager, bit for bit). A clip class other than these three (a
subclass with its own maths) is appended as one ``clip_gradients`` op running its
``clip_tensors``.

``fluid.clip.set_gradient_clip(clip, param_list=None, program=None)`` (Paddle's older
API) attaches ``clip`` to parameters (all of ``program``'s by default);
``fluid.clip.append_gradient_clip_ops(params_grads)`` then clips the pairs by their
parameters' clips, each group of parameters sharing a clip through that clip's graph
(global-norm clips group by ``group_name``, as in Paddle); ``optimizer.minimize`` does so
when the optimizer has no ``grad_clip`` of its own (an optimizer's ``grad_clip`` wins,
as in Paddle).
"""

from __future__ import annotations

import copy
import warnings

from .. import unique_name
from .._checks import check_number
from ..clip import (
    ClipGradByGlobalNorm,
    ClipGradByNorm,
    ClipGradByValue,
    GradientClipBase,
    _allow_pure_fp16_global_norm_clip,
    need_clip,
    register_record_clipper,
)
from .framework import OpRole, Parameter, Program, Variable, default_main_program

__all__ = ["clip_static_pairs", "set_gradient_clip", "append_gradient_clip_ops", "check_clip"]

_LOW = ("float16", "bfloat16")


def _tmp(block, key, shape, dtype):
    return block.create_var(unique_name.generate(key), list(shape), dtype)


def _clipped_var(block, g):
    name = f"{g.name}@CLIP"
    if block.has_var(name):
        name = unique_name.generate(name)
    return block.create_var(name, g.shape, g.dtype)


def _op(block, type_, inputs, outputs, attrs=None):
    block.append_op(type_, inputs, outputs, attrs or {}, infer=False)


def _squared_norm(block, g):
    """Append ``g``'s squared L2 norm (a ``[1]`` variable of g's dtype)."""
    out = _tmp(block, "squared_l2_norm", [1], g.dtype)
    if g.dtype in _LOW:
        sq = _tmp(block, "square", g.shape, g.dtype)
        _op(block, "square", {"X": [g]}, {"Out": [sq]})
        _op(block, "reduce_sum", {"X": [sq]}, {"Out": [out]}, {"dim": [0], "keep_dim": False, "reduce_all": True})
    else:
        _op(block, "squared_l2_norm", {"X": [g]}, {"Out": [out]})
    return out


def _sum(block, xs, dtype):
    out = _tmp(block, "sum", [1], dtype)
    _op(block, "sum", {"X": list(xs)}, {"Out": [out]})
    return out


def _cast(block, x, dtype):
    out = _tmp(block, "cast", x.shape, dtype)
    _op(block, "cast", {"X": [x]}, {"Out": [out]}, {"in_dtype": x.dtype, "out_dtype": dtype})
    return out


def _global_norm_scale(block, grads, clip_norm):
    """Append Paddle's global-norm graph for ``grads``; return the scale variable."""
    by_dtype: dict[str, list] = {}
    for g in grads:
        by_dtype.setdefault(g.dtype, []).append(_squared_norm(block, g))
    low = [d for d in _LOW if d in by_dtype]
    wide = [d for d in by_dtype if d not in _LOW]
    sum_dtype = "float64" if "float64" in by_dtype else "float32"
    parts = []
    for d in (*low, "float32", "float64"):  # each dtype's sum, cast to sum_dtype unless pure float16
        if d in by_dtype:
            s = _sum(block, by_dtype[d], d)
            pure = d == "float16" and not wide and _allow_pure_fp16_global_norm_clip()
            parts.append(s if d == sum_dtype or pure else _cast(block, s, sum_dtype))
    norm = parts[0] if len(parts) == 1 else _sum(block, parts, sum_dtype)
    dtype = norm.dtype
    root = _tmp(block, "sqrt", [1], dtype)
    _op(block, "sqrt", {"X": [norm]}, {"Out": [root]})
    limit = _tmp(block, "fill_constant", [1], dtype)
    _op(block, "fill_constant", {}, {"Out": [limit]}, {"shape": [1], "dtype": dtype, "value": float(clip_norm)})
    big = _tmp(block, "elementwise_max", [1], dtype)
    _op(block, "elementwise_max", {"X": [limit], "Y": [root]}, {"Out": [big]}, {"axis": -1})
    scale = _tmp(block, "elementwise_div", [1], dtype)
    _op(block, "elementwise_div", {"X": [limit], "Y": [big]}, {"Out": [scale]}, {"axis": -1})
    return scale


def check_clip(clip) -> dict:
    """The numbers of one of the three Paddle clips, checked again as their constructors do
    (they may have been set after the clip was made, or restored from a program description):
    ``{"min", "max"}`` (finite, ``min <= max``) of a ClipGradByValue, ``{"clip_norm"}`` (> 0,
    finite) of a ClipGradByNorm or ClipGradByGlobalNorm (whose ``group_name`` must be a str);
    ``{}`` for any other clip."""
    kind = type(clip)
    if kind is ClipGradByValue:
        lo, hi = check_number("ClipGradByValue.min", clip.min), check_number("ClipGradByValue.max", clip.max)
        if lo > hi:
            raise ValueError(f"ClipGradByValue: min must be <= max, got min={lo:g} and max={hi:g}")
        return {"min": lo, "max": hi}
    if kind in (ClipGradByNorm, ClipGradByGlobalNorm):
        if kind is ClipGradByGlobalNorm and not isinstance(clip.group_name, str):
            raise ValueError(f"ClipGradByGlobalNorm.group_name must be a str, got {clip.group_name!r}")
        return {"clip_norm": check_number(f"{kind.__name__}.clip_norm", clip.clip_norm, lo=0.0, lo_open=True)}
    return {}


_PER_GRAD_OPS = {  # clip class -> (the op clipping each grad on its own, its attrs)
    ClipGradByValue: lambda c: ("clip", check_clip(c)),
    ClipGradByNorm: lambda c: ("clip_by_norm", {"max_norm": check_clip(c)["clip_norm"]}),
}


def _append_clip_graph(clip, block, grads):
    """Append ``clip``'s graph for ``grads`` (all clipped); return the new grad variables."""
    kind = type(clip)
    if kind in _PER_GRAD_OPS and getattr(clip, "float32_attrs", True):  # else: the bounds as given, below
        op_type, attrs = _PER_GRAD_OPS[kind](clip)
        outs = [_clipped_var(block, g) for g in grads]
        for g, o in zip(grads, outs, strict=True):
            _op(block, op_type, {"X": [g]}, {"Out": [o]}, attrs)
        return outs
    if kind is ClipGradByGlobalNorm:
        scale = _global_norm_scale(block, grads, check_clip(clip)["clip_norm"])
        outs = []
        for g in grads:
            s = _cast(block, scale, g.dtype) if scale.dtype != g.dtype else scale
            o = _clipped_var(block, g)
            _op(block, "elementwise_mul", {"X": [g], "Y": [s]}, {"Out": [o]}, {"axis": -1})
            outs.append(o)
        return outs
    outs = [_clipped_var(block, g) for g in grads]
    _op(block, "clip_gradients", {"X": grads}, {"Out": outs}, {"clip": clip, "need_clip": [True] * len(grads)})
    return outs


def _check_grads(clip, grads):
    """Before any op is appended: the gradients are floating-point variables of one program
    (and, for a global norm, not float16 and bfloat16 together)."""
    name = type(clip).__name__
    program = grads[0].block.program
    for g in grads:
        if not isinstance(g, Variable) or g.block.program is not program:
            raise ValueError(
                f"{name}: gradient {g!r} is not a variable of the program of gradient {grads[0].name!r}; "
                "allowed: (param, grad) pairs of one program"
            )
        if g.dtype not in (*_LOW, "float32", "float64"):
            raise ValueError(
                f"{name}: gradient {g.name!r} has dtype {g.dtype!r}; allowed: float16, bfloat16, float32, float64"
            )
    if type(clip) is ClipGradByGlobalNorm and all(any(g.dtype == d for g in grads) for d in _LOW):
        raise ValueError(f"{name}: clipping float16 and bfloat16 gradients together is not supported")


def clip_static_pairs(clip, params_grads):
    """Append ``clip``'s op graph for ``params_grads`` (see the module docstring); None
    grads dropped, a pair whose parameter has ``need_clip=False`` keeps its grad variable."""
    pairs = [(p, g) for p, g in params_grads if g is not None]
    clipped = [i for i, (p, _) in enumerate(pairs) if need_clip(p)]
    if not clipped:
        return pairs
    grads = [pairs[i][1] for i in clipped]
    _check_grads(clip, grads)
    block = grads[0].block
    with block.program._optimized_guard():
        outs = _append_clip_graph(clip, block, grads)
    out = list(pairs)
    for i, o in zip(clipped, outs, strict=True):
        out[i] = (pairs[i][0], o)
    return out


register_record_clipper(Variable, clip_static_pairs)


def set_gradient_clip(clip, param_list=None, program=None):
    """Attach ``clip`` to the parameters in ``param_list`` (Parameters or names; default:
    every parameter of ``program``, default the main program)."""
    if not isinstance(clip, GradientClipBase):
        raise TypeError(f"set_gradient_clip: clip must be a fluid.clip object, got {type(clip).__name__}")
    program = default_main_program() if program is None else program
    if not isinstance(program, Program):
        raise TypeError(f"set_gradient_clip: program must be a Program, got {type(program).__name__}")
    if isinstance(param_list, (str, Variable)):
        raise TypeError(
            f"set_gradient_clip: param_list must be a list of Parameters or their names, got {param_list!r}"
        )
    block = program.global_block()
    if any(op.role & OpRole.Optimize for op in block.ops):  # minimize already ran
        warnings.warn(
            "set_gradient_clip after minimize has no effect on that optimizer's ops; call it before", stacklevel=2
        )
    params = (
        block.all_parameters()
        if param_list is None
        else [block.var(p) if isinstance(p, str) else p for p in param_list]
    )
    for p in params:
        if not isinstance(p, Parameter):
            raise TypeError(f"set_gradient_clip: param_list must hold Parameters or their names, got {p!r}")
        p.gradient_clip_attr = copy.deepcopy(clip)


def _group_key(clip):
    if type(clip) is ClipGradByGlobalNorm:  # Paddle: one norm per group_name
        return (ClipGradByGlobalNorm, clip.group_name)
    return (type(clip), tuple(sorted((k, v) for k, v in vars(clip).items() if isinstance(v, (int, float, str)))))


def append_gradient_clip_ops(param_grads):
    """Clip ``param_grads`` by their parameters' ``set_gradient_clip`` clips, each group
    of parameters sharing a clip through that clip's op graph (global-norm clips group by
    ``group_name``: one norm per group, and a group's clip_norm must agree); returned
    unchanged when the first parameter has none, as Paddle does."""
    pairs = [(p, g) for p, g in param_grads if g is not None]
    if not pairs or getattr(pairs[0][0], "gradient_clip_attr", None) is None:
        return list(param_grads)
    groups: dict = {}
    for i, (p, _g) in enumerate(pairs):
        clip = getattr(p, "gradient_clip_attr", None)
        if clip is None:
            raise ValueError(f"append_gradient_clip_ops: parameter {p.name!r} has no clip (set_gradient_clip)")
        first = groups.setdefault(_group_key(clip), (clip, []))
        if type(clip) is ClipGradByGlobalNorm and first[0].clip_norm != clip.clip_norm:
            raise ValueError(
                f"append_gradient_clip_ops: parameters of global-norm group {clip.group_name!r} have clip_norm "
                f"{first[0].clip_norm:g} and {clip.clip_norm:g}; all parameters of a group must share one clip_norm"
            )
        first[1].append(i)
    for clip, idx in groups.values():  # every group checked before any group's ops are appended
        grads = [pairs[i][1] for i in idx if need_clip(pairs[i][0])]
        if grads:
            check_clip(clip)
            _check_grads(clip, grads)
    out = list(pairs)
    for clip, idx in groups.values():
        for i, pair in zip(idx, clip_static_pairs(clip, [pairs[i] for i in idx]), strict=True):
            out[i] = pair
    return out
