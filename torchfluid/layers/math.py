"""``fluid.layers`` maths: elementwise ops, activations, reductions, matmul, reshape,
concat, cast; and the ``+ - * /`` operators of static Variables."""

from __future__ import annotations

import math
import numbers

import torch

from .._checks import ArgumentTypeError, check_number
from ..dtypes import dtype_name
from ..static.framework import Variable
from .helper import LayerHelper, activation_name, apply_op, dtype_of, is_static
from .tensor import fill_constant

# one layer per op below; each layer's name is its op's type (tests check that __name__ matches)
_ELEMENTWISE = tuple(f"elementwise_{op}" for op in ("add", "sub", "mul", "div", "max", "min", "pow"))
_ACTIVATIONS = (
    "relu",
    "sigmoid",
    "tanh",
    "square",
    "sqrt",
    "exp",
    "log",
    "abs",
    "softplus",
    "softsign",
    "sign",
    "sin",
    "cos",
)

__all__ = [
    *_ELEMENTWISE,
    *_ACTIVATIONS,
    "relu6",
    "leaky_relu",
    "elu",
    "gelu",
    "scale",
    "increment",
    "mean",
    "reduce_mean",
    "reduce_sum",
    "sums",
    "matmul",
    "mul",
    "reshape",
    "concat",
    "cast",
    "slice",
    "split",
    "transpose",
]


def _named(layer, op_type, doc):
    layer.__name__ = op_type
    layer.__doc__ = doc
    return layer


def _elementwise(op_type):
    def layer(x, y, axis=-1, act=None, name=None):
        activation_name(act)
        helper = LayerHelper(op_type, name)
        out = apply_op(op_type, {"X": x, "Y": y}, {"axis": int(axis)}, helper=helper)
        return helper.append_activation(out, act)

    return _named(layer, op_type, f"Paddle ``{op_type}`` (``axis``: where Y's dims line up with X's; -1 = trailing).")


# Paddle's activation layers take floating-point input only (``check_variable_and_dtype``); abs, exp and
# square take int32 and int64 too. A number or list (run eagerly) is converted as any op input is.
_FLOAT_NAMES = ("float16", "bfloat16", "float32", "float64")
_INT_TOO = ("abs", "exp", "square")


def _check_input_dtype(op_type, x):
    if getattr(x, "dtype", None) is None:
        return
    allowed = _FLOAT_NAMES + (("int32", "int64") if op_type in _INT_TOO else ())
    name = dtype_of(x)
    if name not in allowed:
        raise ArgumentTypeError(f"{op_type}: x must have one of the dtypes {', '.join(allowed)}; got {name}")


def _unary(op_type):
    def layer(x, name=None):
        _check_input_dtype(op_type, x)
        return apply_op(op_type, {"X": x}, name=name)

    return _named(layer, op_type, f"Paddle ``{op_type}`` activation.")


(
    elementwise_add,
    elementwise_sub,
    elementwise_mul,
    elementwise_div,
    elementwise_max,
    elementwise_min,
    elementwise_pow,
) = map(_elementwise, _ELEMENTWISE)
relu, sigmoid, tanh, square, sqrt, exp, log, abs, softplus, softsign, sign, sin, cos = map(  # noqa: A001
    _unary, _ACTIVATIONS
)


def relu6(x, threshold=6.0, name=None):
    """``min(max(x, 0), threshold)`` (op ``relu6``)."""
    _check_input_dtype("relu6", x)
    return apply_op("relu6", {"X": x}, {"threshold": threshold}, name=name)


def leaky_relu(x, alpha=0.02, name=None):
    """``x`` where ``x >= 0``, else ``alpha * x`` (op ``leaky_relu``)."""
    _check_input_dtype("leaky_relu", x)
    return apply_op("leaky_relu", {"X": x}, {"alpha": alpha}, name=name)


def elu(x, alpha=1.0, name=None):
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)`` (op ``elu``)."""
    _check_input_dtype("elu", x)
    return apply_op("elu", {"X": x}, {"alpha": alpha}, name=name)


def gelu(x, approximate=False):
    """``0.5 * x * (1 + erf(x / sqrt(2)))``, or its tanh approximation when ``approximate`` (op ``gelu``)."""
    _check_input_dtype("gelu", x)
    return apply_op("gelu", {"X": x}, {"approximate": approximate})


def scale(x, scale=1.0, bias=0.0, bias_after_scale=True, act=None, name=None):
    """``scale * x + bias`` (or ``scale * (x + bias)``)."""
    activation_name(act)
    helper = LayerHelper("scale", name)
    out = apply_op(
        "scale",
        {"X": x},
        {"scale": float(scale), "bias": float(bias), "bias_after_scale": bool(bias_after_scale)},
        helper=helper,
    )
    return helper.append_activation(out, act)


_INCREMENT_DTYPES = ("float16", "bfloat16", "float32", "float64", "int32", "int64")


def increment(x, value=1.0, in_place=True):
    """``x + value`` for a one-element ``x`` (a counter), ``value`` cast to x's dtype (op
    ``increment``). ``in_place`` (the default) writes the result into ``x`` itself and returns
    ``x``: in a program the op's output is ``x``, so a persistable counter advances every run;
    in dygraph ``x``'s value changes (outside autograd, as an optimizer's update does).
    Otherwise a new variable holds the result."""
    if not isinstance(x, (Variable, torch.Tensor)):
        raise ArgumentTypeError(f"increment: x must be a Variable or tensor, got {type(x).__name__}")
    shape = list(x.shape)
    if -1 not in shape and math.prod(shape) != 1:
        raise ValueError(f"increment: x must have exactly one element, got shape {shape}")
    if dtype_of(x) not in _INCREMENT_DTYPES:
        raise TypeError(
            f"increment: x must be of dtype {', '.join(_INCREMENT_DTYPES)} (Paddle's increment kernels), "
            f"got {dtype_of(x)}"
        )
    attrs = {"step": check_number("value", value)}
    if is_static(x):
        if in_place:
            return apply_op("increment", {"X": x}, attrs, outputs={"Out": [x]})
        helper = LayerHelper("increment")
        out = helper.tmp_var(x.dtype, stop_gradient=x.stop_gradient)
        out.shape = tuple(x.shape)  # x's size is checked when it runs where a dim is unknown (-1)
        return apply_op("increment", {"X": x}, attrs, helper=helper, outputs={"Out": [out]})
    out = apply_op("increment", {"X": x}, attrs)
    if not in_place:
        return out
    with torch.no_grad():
        x.copy_(out)
    return x


def mean(x, name=None):
    """Mean of all elements, shape ``[1]``."""
    return apply_op("mean", {"X": x}, name=name)


def _reduce(op_type):
    def layer(input, dim=None, keep_dim=False, name=None):
        dims = [dim] if isinstance(dim, int) else (list(dim) if dim is not None else None)
        attrs = {"dim": dims if dims else [0], "keep_dim": bool(keep_dim), "reduce_all": not dims}
        return apply_op(op_type, {"X": input}, attrs, name=name)

    return _named(layer, op_type, f"Paddle ``{op_type}`` over ``dim`` (all dims when None; then shape ``[1]``).")


reduce_mean = _reduce("reduce_mean")
reduce_sum = _reduce("reduce_sum")


def sums(input, out=None):
    """Element-wise sum of a list of tensors."""
    return apply_op("sum", {"X": list(input)}, layer_type="sum")


def matmul(x, y, transpose_x=False, transpose_y=False, alpha=1.0, name=None):
    """``alpha * op(x) @ op(y)`` (batched; op = optional transpose of the last two dims)."""
    return apply_op(
        "matmul",
        {"X": x, "Y": y},
        {"transpose_X": bool(transpose_x), "transpose_Y": bool(transpose_y), "alpha": float(alpha)},
        name=name,
    )


def mul(x, y, x_num_col_dims=1, y_num_col_dims=1, name=None):
    """Paddle ``mul``: ``x`` flattened to a matrix at ``x_num_col_dims`` (its first ``x_num_col_dims``
    dims make the rows) times ``y`` flattened at ``y_num_col_dims``; the result has shape
    ``x.shape[:x_num_col_dims] + y.shape[y_num_col_dims:]``."""
    for arg, value, t in (("x_num_col_dims", x_num_col_dims, x), ("y_num_col_dims", y_num_col_dims, y)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ArgumentTypeError(f"mul: {arg} must be an int, got {type(value).__name__}")
        if not 1 <= value < len(t.shape):
            raise ValueError(f"mul: {arg} must be in [1, {len(t.shape)}) for a {len(t.shape)}-D input, got {value}")
    return apply_op(
        "mul",
        {"X": x, "Y": y},
        {"x_num_col_dims": int(x_num_col_dims), "y_num_col_dims": int(y_num_col_dims)},
        name=name,
    )


def reshape(x, shape, actual_shape=None, act=None, inplace=False, name=None):
    """Reshape; ``0`` copies the input dim, one ``-1`` is inferred."""
    if not isinstance(shape, (list, tuple)):
        raise TypeError(f"reshape: shape must be a list or tuple of ints, got {type(shape).__name__}")
    activation_name(act)
    helper = LayerHelper("reshape2", name)
    out = apply_op("reshape2", {"X": x}, {"shape": [int(s) for s in shape]}, helper=helper)
    return helper.append_activation(out, act)


def concat(input, axis=0, name=None):
    """Join a list of tensors along ``axis``."""
    return apply_op("concat", {"X": list(input)}, {"axis": int(axis)}, name=name)


def _int_list(layer, what, value) -> list[int]:
    if isinstance(value, (Variable, torch.Tensor)) or not isinstance(value, (list, tuple)):
        raise ArgumentTypeError(
            f"{layer}: {what} must be a list or tuple of ints, got {type(value).__name__} "
            "(Variables as bounds are not supported)"
        )
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        raise ArgumentTypeError(f"{layer}: {what} must hold ints only, got {list(value)!r}")
    return [int(v) for v in value]


def slice(input, axes, starts, ends):  # noqa: A001 - Paddle's name
    """``input[..., starts[i]:ends[i], ...]`` on each axis ``axes[i]`` (op ``slice``).

    A negative bound counts from the end of its dim, bounds are clamped to ``[0, dim]``, and an empty slice
    is refused (Paddle's ``end > start`` check). ``starts`` / ``ends`` are ints (Paddle also
    takes Variables there; torchfluid refuses them)."""
    attrs = {
        "axes": _int_list("slice", "axes", axes),
        "starts": _int_list("slice", "starts", starts),
        "ends": _int_list("slice", "ends", ends),
    }
    if not len(attrs["axes"]) == len(attrs["starts"]) == len(attrs["ends"]):
        raise ValueError(
            f"slice: axes, starts and ends must have the same length, got {len(attrs['axes'])}, "
            f"{len(attrs['starts'])} and {len(attrs['ends'])}"
        )
    return apply_op("slice", {"Input": input}, attrs)


def split(input, num_or_sections, dim=-1, name=None):
    """Cut ``input`` along ``dim`` into a list of tensors (op ``split``).

    ``num_or_sections`` an int ``n`` gives ``n`` equal parts (``n`` must divide the dim); a list gives parts of those
    sizes, one of which may be ``-1`` (the rest)."""
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise ArgumentTypeError(f"split: dim must be an int, got {type(dim).__name__}")
    if isinstance(num_or_sections, numbers.Integral) and not isinstance(num_or_sections, bool):
        if num_or_sections < 1:
            raise ValueError(f"split: num_or_sections must be >= 1 when it is an int, got {num_or_sections}")
        attrs, n = {"axis": int(dim), "num": int(num_or_sections), "sections": []}, int(num_or_sections)
    else:
        sections = _int_list("split", "num_or_sections", num_or_sections)
        if not sections:
            raise ValueError("split: num_or_sections must not be an empty list")
        attrs, n = {"axis": int(dim), "num": 0, "sections": sections}, len(sections)
    if not is_static(input):
        return list(apply_op("split", {"X": input}, attrs))
    helper = LayerHelper("split", name)
    outs = [helper.tmp_var(input.dtype) for _ in range(n)]
    apply_op("split", {"X": input}, attrs, helper=helper, outputs={"Out": outs})
    return outs


def transpose(x, perm, name=None):
    """Permute the dims of ``x``: the output's dim ``i`` is ``x``'s dim ``perm[i]`` (op ``transpose2``)."""
    perm = _int_list("transpose", "perm", perm)
    if len(perm) != len(x.shape):
        raise ValueError(f"transpose: perm {perm} has {len(perm)} entries, but x has {len(x.shape)} dims")
    return apply_op("transpose2", {"X": x}, {"axis": perm}, name=name)


def cast(x, dtype):
    """``x`` converted to ``dtype``."""
    attrs = {"in_dtype": dtype_of(x), "out_dtype": dtype_name(dtype)}
    return apply_op("cast", {"X": x}, attrs, layer_type="cast")


# ---------------------------------------------------------------- Variable operators


def _binop(op_type, reverse=False):
    def method(self, other):
        if isinstance(other, numbers.Number):
            other = fill_constant([1], self.dtype, other)
        elif not isinstance(other, Variable):
            return NotImplemented
        x, y = (other, self) if reverse else (self, other)
        return apply_op(op_type, {"X": x, "Y": y})

    return method


for _name, _op in (("add", "add"), ("sub", "sub"), ("mul", "mul"), ("truediv", "div")):  # x.__add__, x.__radd__...
    setattr(Variable, f"__{_name}__", _binop(f"elementwise_{_op}"))
    setattr(Variable, f"__r{_name}__", _binop(f"elementwise_{_op}", reverse=True))
Variable.__pow__ = _binop("elementwise_pow")
Variable.__neg__ = lambda self: scale(self, -1.0)
Variable.astype = cast
