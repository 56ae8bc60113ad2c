"""Gradient clipping of static ``(param, grad)`` pairs.

``clip(params_grads)`` (any ``fluid.clip`` object) called with program Variables appends
one ``clip_gradients`` op computing new gradient variables ``<grad>@CLIP`` (the clip's maths
at run time; a global norm spans all the clipped pairs) and returns ``[(param, clipped
grad)]``; pairs whose grad is None are dropped and pairs whose parameter has
``need_clip=False`` keep their grad variable, as in Paddle.

``fluid.clip.set_gradient_clip(clip, param_list=None, program=None)`` (Paddle's older
API) attaches ``clip`` to parameters (all of ``program``'s by default);
``fluid.clip.append_gradient_clip_ops(params_grads)`` then clips the pairs by their
parameters' clips, and ``optimizer.minimize`` does so when the optimizer has no
``grad_clip`` of its own (an optimizer's ``grad_clip`` wins, as in Paddle).
"""

from __future__ import annotations

import copy
import warnings

from ..clip import GradientClipBase, need_clip, register_record_clipper
from .framework import Parameter, Variable, default_main_program

__all__ = ["clip_static_pairs", "set_gradient_clip", "append_gradient_clip_ops"]


def clip_static_pairs(clip, params_grads):
    """Append the ``clip_gradients`` op for ``params_grads`` (None grads dropped; a pair
    whose parameter has ``need_clip=False`` keeps its own grad variable)."""
    pairs = [(p, g) for p, g in params_grads if g is not None]
    clipped = [i for i, (p, _) in enumerate(pairs) if need_clip(p)]
    if not clipped:
        return pairs
    block = pairs[clipped[0]][1].block
    grads = [pairs[i][1] for i in clipped]
    outs = [block.create_var(f"{g.name}@CLIP", g.shape, g.dtype) for g in grads]
    with block.program._optimized_guard():
        block.append_op(
            "clip_gradients", {"X": grads}, {"Out": outs}, {"clip": clip, "need_clip": [True] * len(grads)}, infer=False
        )
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
    block = program.global_block()
    if any(op.role & 0x0002 for op in block.ops):  # OpRole.Optimize: minimize already ran
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
    return (type(clip), tuple(sorted((k, v) for k, v in vars(clip).items() if isinstance(v, (int, float, str)))))


def append_gradient_clip_ops(param_grads):
    """Clip ``param_grads`` by their parameters' ``set_gradient_clip`` clips (pairs whose
    parameters share an equal clip are clipped together: one global norm); returned
    unchanged when the first parameter has none, as Paddle does."""
    pairs = [(p, g) for p, g in param_grads if g is not None]
    if not pairs or getattr(pairs[0][0], "gradient_clip_attr", None) is None:
        return list(param_grads)
    groups: dict = {}
    for i, (p, _g) in enumerate(pairs):
        clip = getattr(p, "gradient_clip_attr", None)
        if clip is None:
            raise ValueError(f"append_gradient_clip_ops: parameter {p.name!r} has no clip (set_gradient_clip)")
        groups.setdefault(_group_key(clip), (clip, []))[1].append(i)
    out = list(pairs)
    for clip, idx in groups.values():
        for i, pair in zip(idx, clip_static_pairs(clip, [pairs[i] for i in idx]), strict=True):
            out[i] = pair
    return out
