"""``fluid.layers`` tensor creation: fill_constant, create_global_var, create_parameter, assign."""

from __future__ import annotations

import numpy as np
import torch

from ..dtypes import dtype_name, torch_dtype
from ..ops import get_op
from .. import unique_name
from ..static.framework import default_main_program
from .helper import LayerHelper, apply_op, eager_variable, in_dygraph_mode, is_static

__all__ = ["fill_constant", "create_global_var", "create_parameter", "assign", "uniform_random", "gaussian_random"]


def _shape(shape, what):
    if isinstance(shape, int):
        shape = [shape]
    if not isinstance(shape, (list, tuple)) or not all(isinstance(s, (int, np.integer)) for s in shape):
        raise TypeError(f"{what}: shape must be a list of ints, got {shape!r}")
    return [int(s) for s in shape]


def fill_constant(shape, dtype, value, force_cpu=False, out=None, name=None):
    """A ``shape`` tensor of ``dtype`` filled with ``value`` (a tensor in dygraph mode)."""
    shape = _shape(shape, "fill_constant")
    dtype = dtype_name(dtype)
    attrs = {"shape": shape, "dtype": dtype, "value": float(value)}
    if in_dygraph_mode() or isinstance(out, torch.Tensor):
        t = get_op("fill_constant").forward(**attrs)
        if out is not None:
            with torch.no_grad():
                out.copy_(t)
            return out
        return eager_variable(t, name=name)
    helper = LayerHelper("fill_constant", name)
    if out is None:
        out = helper.tmp_var(dtype, stop_gradient=True)
    helper.append_op("fill_constant", {}, {"Out": [out]}, attrs)
    out.stop_gradient = True
    return out


def create_global_var(shape, value, dtype, persistable=False, force_cpu=False, name=None):
    """A global variable initialized to ``value`` by the startup program (a tensor in
    dygraph mode)."""
    shape = _shape(shape, "create_global_var")
    dtype = dtype_name(dtype)
    if in_dygraph_mode():
        t = torch.full(shape, float(value), dtype=torch_dtype(dtype))
        return eager_variable(t, name=name or unique_name.generate("global_var"))
    helper = LayerHelper("global_var")
    name = name or unique_name.generate_with_ignorable_key(f"{helper.name}.tmp")
    var = (
        default_main_program()
        .global_block()
        .create_var(name, shape, dtype, persistable=persistable, stop_gradient=True)
    )
    helper.fill_startup(var, value)
    return var


def create_parameter(shape, dtype, name=None, attr=None, is_bias=False, default_initializer=None):
    """A parameter (``name`` or ``attr`` names it; initialized in the startup program)."""
    shape = _shape(shape, "create_parameter")
    helper = LayerHelper("create_parameter")
    if name is not None and attr is None:
        attr = name
    return helper.create_parameter(attr, shape, dtype_name(dtype), is_bias, default_initializer)


def assign(input, output=None):
    """Copy ``input`` (Variable, tensor or numpy array) into ``output`` (new if None)."""
    if is_static(input):
        outputs = None if output is None else {"Out": [output]}
        return apply_op("assign", {"X": input}, layer_type="assign", outputs=outputs)
    if (
        isinstance(input, (np.ndarray, list, tuple, float, int))
        and not in_dygraph_mode()
        and not isinstance(output, torch.Tensor)
    ):
        arr = np.asarray(input)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        helper = LayerHelper("assign")
        out = output if output is not None else helper.tmp_var(dtype_name(arr.dtype), stop_gradient=True)
        helper.append_op(
            "assign_value",
            {},
            {"Out": [out]},
            {"shape": list(arr.shape), "dtype": dtype_name(arr.dtype), "values": arr.ravel().tolist()},
        )
        return out
    t = input if isinstance(input, torch.Tensor) else torch.as_tensor(np.asarray(input))
    res = get_op("assign").forward(t)
    if output is not None:
        with torch.no_grad():
            output.copy_(res)
        return output
    return res


def uniform_random(shape, dtype="float32", min=-1.0, max=1.0, seed=0, name=None):  # noqa: A002 - Paddle's names
    """A ``shape`` tensor uniform on ``[min, max)``: a new draw on every run of the program
    (static mode) or a tensor now (dygraph mode). ``seed != 0`` fixes the draw."""
    shape = _shape(shape, "uniform_random")
    attrs = {"shape": shape, "dtype": dtype_name(dtype), "min": float(min), "max": float(max), "seed": int(seed)}
    return _random_draw("uniform_random", attrs, name)


def gaussian_random(shape, mean=0.0, std=1.0, seed=0, dtype="float32", name=None):
    """A ``shape`` tensor drawn from ``N(mean, std^2)``: a new draw on every run of the program
    (static mode) or a tensor now (dygraph mode), with no gradient. ``seed != 0`` fixes the draw."""
    shape = _shape(shape, "gaussian_random")
    for arg, value in (("mean", mean), ("std", std)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"gaussian_random: {arg} must be a number, got {type(value).__name__}")
    if not float(std) >= 0.0:
        raise ValueError(f"gaussian_random: std must be >= 0, got {std}")
    attrs = {"shape": shape, "mean": float(mean), "std": float(std), "seed": int(seed), "dtype": dtype_name(dtype)}
    return _random_draw("gaussian_random", attrs, name)


def _random_draw(op_type, attrs, name):
    """The draw of ``op_type`` (an op without inputs or gradient): a tensor now in dygraph
    mode, else the op appended to the program (a new draw on every run)."""
    if in_dygraph_mode():
        return eager_variable(get_op(op_type).forward(**attrs), name=name)
    helper = LayerHelper(op_type, name)
    out = helper.tmp_var(attrs["dtype"], stop_gradient=True)
    helper.append_op(op_type, {}, {"Out": [out]}, attrs)
    return out
