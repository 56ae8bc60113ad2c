"""Appending one layer's op to the default main program, and the program parameters that
stand for dygraph layer parameters.

Used by ``fluid.layers`` (through :func:`torchfluid.layers.helper.apply_op`) and by the
dygraph layers when they are called with static Variables: a dygraph layer's torch
parameter becomes a program :class:`~torchfluid.static.framework.Parameter` of the same
name, initialised by a startup-program op that copies the layer's current value.
"""

from __future__ import annotations

import torch

from .. import unique_name
from ..dtypes import dtype_name
from ..framework import in_dygraph_mode
from ..ops import get_op
from .framework import Parameter, Variable, default_main_program, default_startup_program

__all__ = [
    "is_static_value",
    "program_parameters_only",
    "static_parameter",
    "shared_parameter",
    "append_layer_op",
    "tmp_var",
]


def is_static_value(v) -> bool:
    """True for a static Variable, or a list/tuple holding one."""
    if isinstance(v, Variable):
        return True
    return isinstance(v, (list, tuple)) and any(is_static_value(x) for x in v)


def program_parameters_only(values) -> bool:
    """True in static mode when every tensor among ``values`` (top level or in lists/tuples) is a
    dygraph layer parameter that the default main program already holds as a Parameter of the same
    name (its layer was called on static Variables in this program): ``fluid.layers.transpose(
    layer.weight)`` after ``layer(static_x)`` then appends an op on that Parameter, as in Paddle,
    where a layer built in static mode has program parameters. Anything else stays eager."""
    params = []
    for v in values:
        for t in v if isinstance(v, (list, tuple)) else (v,):
            if isinstance(t, torch.nn.Parameter):
                params.append(t)
            elif isinstance(t, torch.Tensor):
                return False  # a plain tensor among the inputs: eager (the common case leaves here)
    if not params or in_dygraph_mode():
        return False
    block = default_main_program().global_block()
    for t in params:
        name = getattr(t, "name", None)
        if not isinstance(name, str) or not isinstance(block.vars.get(name), Parameter):
            return False
    return True


def shared_parameter(existing, shape, dtype):
    """The parameter a second layer names again (``param_attr='shared_w'``): the same
    Parameter, when its shape and dtype agree."""
    if not isinstance(existing, Parameter):
        raise ValueError(
            f"parameter name {existing.name!r} is already used by a non-parameter variable of this program"
        )
    if list(existing.shape) != list(shape) or existing.dtype != dtype:
        raise ValueError(
            f"parameter {existing.name!r} is shared by name, but this layer asks for shape {list(shape)} "
            f"dtype {dtype} and the existing one is shape {list(existing.shape)} dtype {existing.dtype}"
        )
    return existing


def static_parameter(param):
    """The program Parameter standing for a dygraph layer's torch parameter ``param`` in the
    default main program (same name; created on first use, with a startup op copying the
    layer's current value, so a layer starts from the values it would have in dygraph mode)."""
    name = getattr(param, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(
            "a torch tensor used in a static program must be a named layer parameter "
            f"(fluid ParamBase), got {type(param).__name__}"
        )
    block = default_main_program().global_block()
    dtype = dtype_name(param.dtype)
    if block.has_var(name):
        return shared_parameter(block.var(name), list(param.shape), dtype)
    trainable = bool(getattr(param, "trainable", param.requires_grad))
    p = block.create_parameter(
        name,
        list(param.shape),
        dtype,
        trainable=trainable,
        optimize_attr=dict(getattr(param, "optimize_attr", None) or {"learning_rate": 1.0}),
        regularizer=getattr(param, "regularizer", None),
        need_clip=bool(getattr(param, "need_clip", True)),
    )
    sblock = default_startup_program().global_block()
    if not any(name in op.output_arg_names for op in sblock.ops):
        svar = sblock.create_var(name, p.shape, dtype, persistable=True)
        sblock.append_op("copy_layer_parameter", {}, {"Out": [svar]}, {"source": param})
    return p


def _static_inputs(inputs):
    def static(t):
        return static_parameter(t) if isinstance(t, torch.nn.Parameter) else t

    return {slot: [static(t) for t in v] if isinstance(v, (list, tuple)) else static(v) for slot, v in inputs.items()}


def tmp_var(layer_name, dtype=None, stop_gradient=False):
    """A fresh ``<layer_name>.tmp_K`` in the current block; shape and dtype come from shape
    inference when the op is appended."""
    block = default_main_program().current_block()
    return block.create_var(
        unique_name.generate_with_ignorable_key(f"{layer_name}.tmp"),
        None,
        dtype or "float32",
        stop_gradient=stop_gradient,
    )


def append_layer_op(op_type, inputs, attrs=None, *, layer_name=None, outputs=None, out_dtype=None):
    """Append op ``op_type`` to the current block of the default main program; return its
    output Variable(s) (one per output slot, in the op's order).

    Dygraph layer parameters among ``inputs`` become program parameters; ``outputs`` may
    name existing variables for some slots (e.g. batch_norm's moving statistics), the other
    slots get fresh ``<layer_name>.tmp_K`` variables."""
    opdef = get_op(op_type)
    layer_name = layer_name or unique_name.generate(op_type)
    outs = dict(outputs or {})
    for slot in opdef.outputs:
        if slot not in outs:
            outs[slot] = [tmp_var(layer_name, out_dtype)]
    default_main_program().current_block().append_op(op_type, _static_inputs(inputs), outs, dict(attrs or {}))
    res = [outs[s][0] for s in opdef.outputs]
    return res[0] if len(res) == 1 else tuple(res)
