"""Dispatch for ``fluid.layers``: append an op (static) or run its forward (eager).

Each layer function calls :func:`apply_op` once. If any input is a static
:class:`~torchfluid.static.Variable` (or, in static mode, every input is a layer parameter the
program already holds, see :func:`~torchfluid.static.layer_ops.program_parameters_only`) the op
is appended to the current block of the default main program (outputs named like Paddle's
``<layer>_N.tmp_K``); otherwise the inputs are torch tensors and the op's forward runs at once, under torch autograd.
"""

from __future__ import annotations

import torch

from .. import unique_name
from ..dygraph.base import to_variable
from ..dygraph.varbase import VarBase, call_plain, new_parameter
from ..framework import in_dygraph_mode
from ..initializer import ConstantInitializer, XavierInitializer, seeded_generator
from ..dtypes import dtype_name, torch_dtype
from ..ops import check_activation, get_op
from ..param_attr import ParamAttr
from ..static.framework import default_main_program, default_startup_program
from ..static.layer_ops import (
    append_layer_op,
    is_static_value,
    program_parameters_only,
    shared_parameter,
    static_parameter,
    tmp_var,
)

__all__ = [
    "LayerHelper",
    "activation_name",
    "apply_op",
    "is_static",
    "param_attr_of",
    "in_dygraph_mode",
    "eager_variable",
    "static_parameter",
]


def is_static(*values) -> bool:
    """True when a value is a static Variable, or a list/tuple holding one."""
    return any(is_static_value(v) for v in values)


def dtype_of(x) -> str:
    """The Paddle dtype name of a static Variable or a tensor."""
    return x.dtype if is_static(x) else dtype_name(x.dtype)


def param_attr_of(arg, what="param_attr"):
    """Paddle's ``ParamAttr._to_attr``: None/True -> defaults, str -> name, False -> no
    parameter, an initializer or regularizer -> that, a ParamAttr -> itself."""
    try:
        return ParamAttr._to_attr(arg)
    except TypeError as e:
        raise TypeError(f"{what}={arg!r}: {e}") from None


_FROM_KWARGS = object()


class LayerHelper:
    """Names and creates a layer's variables and parameters (static mode).

    As Paddle's ``LayerHelper(layer_type, **kwargs)`` it keeps the layer's keyword arguments in
    ``kwargs``; ``append_activation(out)`` without an ``act`` applies ``kwargs['act']``."""

    def __init__(self, layer_type: str, name: str | None = None, **kwargs):
        self.layer_type = layer_type
        self.name = name if name is not None else unique_name.generate(layer_type)
        self.kwargs = {"name": name, **kwargs}

    @property
    def main_program(self):
        return default_main_program()

    @property
    def startup_program(self):
        return default_startup_program()

    def block(self):
        return self.main_program.current_block()

    def tmp_var(self, dtype=None, stop_gradient=False):
        """A fresh ``<layer>_N.tmp_K``; shape and dtype come from shape inference."""
        return tmp_var(self.name, dtype, stop_gradient)

    def append_op(self, type, inputs, outputs, attrs=None):
        return self.block().append_op(type, inputs, outputs, attrs)

    def create_parameter(self, attr, shape, dtype="float32", is_bias=False, default_initializer=None):
        """A Parameter in the main program plus its initializer op in the startup program.

        Eagerly (no static program in use), a ``torch.nn.Parameter`` filled by the same
        initializer."""
        attr = param_attr_of(attr)
        if attr is False:
            raise ValueError("create_parameter: attr=False means no parameter")
        shape = [int(s) for s in shape]
        init = attr.initializer or default_initializer or (ConstantInitializer(0.0) if is_bias else XavierInitializer())
        name = attr.name or unique_name.generate(f"{self.name}.{'b' if is_bias else 'w'}")
        kwargs = {**attr._to_kwargs(), "name": name}  # trainable, optimize_attr, regularizer, need_clip...
        if in_dygraph_mode():
            t = torch.empty(shape, dtype=torch_dtype(dtype))
            init(t, generator=seeded_generator(self.main_program.random_seed))
            return new_parameter(t, **kwargs)
        block = self.main_program.global_block()
        if attr.name is not None and block.has_var(name):
            return shared_parameter(block.var(name), shape, dtype)
        param = block.create_parameter(shape=shape, dtype=dtype, initializer=init, **kwargs)
        self.set_initializer(param, init)
        return param

    def set_initializer(self, var, init):
        """Create ``var`` in the startup program with an op that fills it with ``init``."""
        self._startup_op(var, "initializer", {"initializer": init, "seed": self.startup_program.random_seed})

    def fill_startup(self, var, value):
        """Initialize persistable ``var`` to the constant ``value`` in the startup program."""
        self._startup_op(var, "fill_constant", {"value": float(value)})

    def _startup_op(self, var, op_type, attrs):
        """``var`` (persistable) in the startup program, filled by one ``op_type`` op; nothing
        when an op there already writes it."""
        sblock = self.startup_program.global_block()
        if sblock.has_var(var.name) and any(var.name in op.output_arg_names for op in sblock.ops):
            return
        svar = sblock.create_var(var.name, var.shape, var.dtype, persistable=True)
        sblock.append_op(op_type, {}, {"Out": [svar]}, {"shape": list(var.shape), "dtype": var.dtype, **attrs})

    def append_activation(self, out, act=_FROM_KWARGS):
        """``act(out)``: the op named ``act`` with its default attributes (``out`` when None).
        ``act`` defaults to the helper's ``kwargs['act']``; as in Paddle it may also be a dict
        ``{'type': name, attr: value, ...}`` (the other entries are the op's attributes)."""
        if act is _FROM_KWARGS:
            act = self.kwargs.get("act")
        attrs = {}
        if isinstance(act, dict):
            if "type" not in act:
                raise ValueError(f"act={act!r}: an activation given as a dict needs its op name under 'type'")
            attrs = {k: v for k, v in act.items() if k not in ("type", "use_cudnn", "use_mkldnn")}
            act = act["type"]
        if activation_name(act) is None:
            return out
        return apply_op(act, {"X": out}, attrs, layer_type=act)


def activation_name(act):
    """``act`` when it is None or an activation name (:data:`torchfluid.ops.ACTIVATIONS`); layers check
    it before they build anything, so a bad name leaves the program unchanged."""
    if act is not None and not isinstance(act, str):
        raise TypeError(f"act={act!r}: expected an activation name such as 'relu'")
    return check_activation(act)


def apply_op(op_type, inputs, attrs=None, *, layer_type=None, name=None, helper=None, out_dtype=None, outputs=None):
    """Run op ``op_type`` on ``inputs`` (slot -> value or list); return its output(s).

    Static inputs append an op and return output Variable(s) (``outputs`` may name existing
    variables for some slots); tensors run eagerly.
    """
    opdef = get_op(op_type)
    if any(is_static_value(v) for v in inputs.values()) or program_parameters_only(inputs.values()):
        layer_name = helper.name if helper is not None else LayerHelper(layer_type or op_type, name).name
        attrs = dict(attrs or {})
        return append_layer_op(op_type, inputs, attrs, layer_name=layer_name, outputs=outputs, out_dtype=out_dtype)
    args = []
    for slot in opdef.inputs:
        v = inputs.get(slot)
        if type(v) is VarBase:  # the per-step case
            args.append(v)
        elif slot in opdef.list_slots:
            args.append([_as_tensor(t, slot, op_type) for t in v])
        else:
            args.append(None if v is None else _as_tensor(v, slot, op_type))
    return call_plain(opdef.forward, *args, **attrs) if attrs else call_plain(opdef.forward, *args)


def eager_variable(t, name=None):
    """``t`` as a dygraph Variable."""
    return to_variable(t, name=name)


def _as_tensor(v, slot, op_type):
    if isinstance(v, torch.Tensor):
        return v
    try:
        return torch.as_tensor(v)
    except Exception as e:  # noqa: BLE001
        raise TypeError(f"{op_type}: input {slot} must be a tensor or a static Variable, got {type(v).__name__}") from e
