"""Tensor maths ops (Paddle op types) with their grad rules.

Broadcasting follows Paddle's ``axis`` convention for ``elementwise_*``: ``Y``'s dims
line up with ``X``'s dims starting at ``axis`` (``-1``: trailing, numpy style).
Grad rules reduce a broadcast gradient with ``Tensor.sum_to_size``, the same reduction
torch autograd uses, so static and eager gradients agree bit for bit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._checks import check_bool, check_number
from ..dtypes import torch_dtype
from .registry import UNKNOWN_DIM, is_unknown_dim, register

# ---------------------------------------------------------------- helpers


def sum_to(g: torch.Tensor, shape) -> torch.Tensor:
    """Sum a broadcast gradient back to ``shape``."""
    shape = tuple(shape)
    return g if tuple(g.shape) == shape else g.sum_to_size(shape)


def _align_y(X: torch.Tensor, Y: torch.Tensor, axis: int) -> torch.Tensor:
    if axis == -1 or Y.dim() >= X.dim():
        return Y
    if not 0 <= axis <= X.dim() - Y.dim():
        raise ValueError(
            f"axis={axis} is out of range for X of rank {X.dim()} and Y of rank {Y.dim()}; "
            f"allowed: -1 or 0..{X.dim() - Y.dim()}"
        )
    return Y.reshape((1,) * axis + tuple(Y.shape) + (1,) * (X.dim() - axis - Y.dim()))


def _ew_grad(fn_dx, fn_dy):
    def grad(X, Y, Out, dOut, *, axis=-1, need=(True, True)):
        Ya = _align_y(X, Y, axis)
        dX = sum_to(fn_dx(X, Ya, Out, dOut), X.shape) if need[0] else None
        dY = sum_to(fn_dy(X, Ya, Out, dOut), Ya.shape).reshape(Y.shape) if need[1] else None
        return dX, dY

    return grad


def _elementwise(type_, op, dx, dy):
    def forward(X, Y, *, axis=-1):
        return op(X, _align_y(X, Y, axis))

    forward.__doc__ = f"Paddle ``{type_}``: ``Out = X {type_[12:]} Y`` with Paddle's axis broadcast."
    register(type_, ["Out"], grad=_ew_grad(dx, dy))(forward)


for _row in (  # op type, forward, dOut -> dX, dOut -> dY (each a function of x, y, out, dOut)
    ("elementwise_add", torch.add, lambda x, y, o, g: g, lambda x, y, o, g: g),
    ("elementwise_sub", torch.sub, lambda x, y, o, g: g, lambda x, y, o, g: -g),
    ("elementwise_mul", torch.mul, lambda x, y, o, g: g * y, lambda x, y, o, g: g * x),
    ("elementwise_div", torch.div, lambda x, y, o, g: g / y, lambda x, y, o, g: -g * (o / y)),
    ("elementwise_max", torch.maximum, lambda x, y, o, g: g * (x > y), lambda x, y, o, g: g * (x <= y)),
    ("elementwise_min", torch.minimum, lambda x, y, o, g: g * (x < y), lambda x, y, o, g: g * (x >= y)),
    (
        "elementwise_pow",
        torch.pow,
        # torch's pow backward formulas, grouped as autograd groups them (bit-identical to dygraph)
        lambda x, y, o, g: torch.where(y == 0, torch.zeros_like(g), g * (y * torch.pow(x, y - 1))),
        lambda x, y, o, g: g * torch.where((x == 0) & (y >= 0), torch.zeros_like(o), o * torch.log(x)),
    ),
):
    _elementwise(*_row)


# ---------------------------------------------------------------- matrix products


def _flat2d(t: torch.Tensor, ncol: int) -> torch.Tensor:
    if t.dim() == 2 and ncol == 1:
        return t
    return t.reshape(math.prod(t.shape[:ncol]), math.prod(t.shape[ncol:]))


def _mul_grad(X, Y, Out, dOut, *, x_num_col_dims=1, y_num_col_dims=1, need=(True, True)):
    x2, y2 = _flat2d(X, x_num_col_dims), _flat2d(Y, y_num_col_dims)
    g2 = dOut if dOut.dim() == 2 else dOut.reshape(x2.shape[0], y2.shape[1])
    dX = _like(g2 @ y2.t(), X) if need[0] else None
    dY = _like(x2.t() @ g2, Y) if need[1] else None
    return dX, dY


def _like(t, ref):
    return t if t.dim() == ref.dim() and t.shape == ref.shape else t.reshape(ref.shape)


@register("mul", ["Out"], grad=_mul_grad)
def mul(X, Y, *, x_num_col_dims=1, y_num_col_dims=1):
    """Paddle ``mul``: flatten X to 2-D at ``x_num_col_dims``, Y at ``y_num_col_dims``, matmul."""
    out = _flat2d(X, x_num_col_dims) @ _flat2d(Y, y_num_col_dims)
    if X.dim() == 2 and Y.dim() == 2:
        return out
    return out.reshape(tuple(X.shape[:x_num_col_dims]) + tuple(Y.shape[y_num_col_dims:]))


def _t(t):
    return t.transpose(-1, -2)


def _matmul_grad(X, Y, Out, dOut, *, transpose_X=False, transpose_Y=False, alpha=1.0, need=(True, True)):
    """``dX = alpha * dOut @ op(Y)^T`` and ``dY = alpha * op(X)^T @ dOut`` (transposed back where
    op transposed; a broadcast batch summed), computed as the vector-Jacobian product of the
    forward: torch.matmul folds and broadcasts batches its own way, and differentiating it as
    autograd does makes a program's gradients equal dygraph's bit for bit."""
    return _autograd_vjp(matmul, (X, Y), dOut, need, transpose_X=transpose_X, transpose_Y=transpose_Y, alpha=alpha)


@register("matmul", ["Out"], grad=_matmul_grad)
def matmul(X, Y, *, transpose_X=False, transpose_Y=False, alpha=1.0):
    """Paddle ``matmul`` (v1): ``alpha * op(X) @ op(Y)``, batched, op = optional transpose."""
    a = _t(X) if transpose_X and X.dim() > 1 else X
    b = _t(Y) if transpose_Y and Y.dim() > 1 else Y
    out = _batched_matmul(a, b)
    return out * alpha if alpha != 1.0 else out


def _batched_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``torch.matmul(a, b)`` with one way of computing a batched product against an unbatched
    matrix, whatever the inputs' ``requires_grad``: torch.matmul folds the batch into one
    matrix product when a gradient is needed but may run a batched product otherwise, and the
    two round differently (a program, which runs without autograd, would then differ from
    dygraph in the last bits). Here a batched ``a`` times a matrix or vector ``b`` is always
    folded (``a.reshape(-1, k) @ b``), and a matrix ``a`` times a batched ``b`` is always a
    batched product (``a`` broadcast over ``b``'s batch)."""
    if a.dim() >= 3 and b.dim() <= 2:
        out = a.reshape(-1, a.shape[-1]) @ b
        return out.reshape(*a.shape[:-1], *b.shape[1:])
    if a.dim() == 2 and b.dim() >= 3:
        return torch.matmul(a.expand(*b.shape[:-2], *a.shape), b)
    return torch.matmul(a, b)


def _autograd_vjp(fn, ins, dout, need, **attrs):
    with torch.enable_grad():
        xs = [x.detach().requires_grad_(bool(n)) for x, n in zip(ins, need, strict=True)]
        out = fn(*xs, **attrs)
        wanted = [x for x in xs if x.requires_grad]
        gs = iter(torch.autograd.grad(out, wanted, dout, allow_unused=True)) if wanted else iter(())
    return tuple(next(gs) if n else None for n in need)


# ---------------------------------------------------------------- unary


def _act_grad(dfn):
    """The grad rule of a one-input op from ``dfn(x, out, dout, **attrs) -> dx``."""

    def grad(X, Out, dOut, need=(True,), **attrs):
        return (dfn(X, Out, dOut, **attrs),)

    return grad


def _unary(type_, fwd, dfn, doc):
    def forward(X):
        return fwd(X)

    forward.__doc__ = doc
    register(type_, ["Out"], grad=_act_grad(dfn))(forward)
    return forward


relu = _unary("relu", torch.relu, lambda x, o, g: g * (o > 0), "``max(x, 0)``")
# sigmoid's and tanh's grads (``g * o * (1 - o)``, ``g * (1 - o * o)``) are torch's own backward
# kernels, the ones autograd runs in dygraph mode: static and eager gradients agree bit for bit.
sigmoid = _unary(
    "sigmoid", torch.sigmoid, lambda x, o, g: torch.ops.aten.sigmoid_backward(g, o), "``1 / (1 + exp(-x))``"
)
tanh = _unary("tanh", torch.tanh, lambda x, o, g: torch.ops.aten.tanh_backward(g, o), "``tanh(x)``")
square = _unary("square", torch.square, lambda x, o, g: g * 2 * x, "``x * x``")
sqrt = _unary("sqrt", torch.sqrt, lambda x, o, g: g / (2 * o), "``sqrt(x)``")
exp = _unary("exp", torch.exp, lambda x, o, g: g * o, "``exp(x)``")
log = _unary("log", torch.log, lambda x, o, g: g / x, "``log(x)``")
sign = _unary("sign", torch.sign, lambda x, o, g: torch.zeros_like(g), "``sign(x)`` (-1, 0 or 1; gradient 0)")
abs_ = _unary("abs", torch.abs, lambda x, o, g: g * torch.sign(x), "``|x|``")
sin = _unary("sin", torch.sin, lambda x, o, g: g * torch.cos(x), "``sin(x)``")
cos = _unary("cos", torch.cos, lambda x, o, g: -g * torch.sin(x), "``cos(x)``")


# Activations with attributes: Paddle's forward formulas and grad functors (``activation_op.h``,
# ``gelu_op.h``). Each forward is written so that torch autograd of it gives Paddle's gradient
# everywhere, the kinks included: eager (autograd) and static (the grad rule) agree.
_GELU_TANH_C = math.sqrt(2.0 / math.pi)  # Paddle's M_2_SQRTPI * M_SQRT1_2
_GELU_CUBIC = 0.044715


def _relu6_grad(x, out, dout, *, threshold=6.0):
    return dout * ((out > 0) & (out < threshold))


@register("relu6", ["Out"], grad=_act_grad(_relu6_grad))
def relu6(X, *, threshold=6.0):
    """``min(max(x, 0), threshold)`` (``threshold > 0``); gradient 1 where ``0 < x < threshold``, else 0."""
    return F.hardtanh(X, 0.0, check_number("relu6: threshold", threshold, lo=0, lo_open=True))


def _leaky_relu_grad(x, out, dout, *, alpha=0.02):
    return torch.where(x >= 0, dout, dout * alpha)


@register("leaky_relu", ["Out"], grad=_act_grad(_leaky_relu_grad))
def leaky_relu(X, *, alpha=0.02):
    """``x`` where ``x >= 0``, else ``alpha * x`` (Paddle's default ``alpha = 0.02``); gradient 1 where
    ``x >= 0`` (so 1 at 0), else ``alpha`` (a finite number)."""
    return torch.where(X >= 0, X, X * check_number("leaky_relu: alpha", alpha))


def _elu_grad(x, out, dout, *, alpha=1.0):
    return torch.where(x > 0, dout, dout * alpha * torch.exp(x))


@register("elu", ["Out"], grad=_act_grad(_elu_grad))
def elu(X, *, alpha=1.0):
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)`` (``alpha >= 0``); gradient 1 where ``x > 0``,
    else ``alpha * exp(x)``, so ``alpha`` at ``x = 0`` (Paddle's ``ELUGradFunctor``: the default ELU,
    ``alpha = 1``, has gradient 1 on both sides of 0). Paddle's fluid forward
    ``max(x, 0) + min(alpha * (exp(x) - 1), 0)`` is this for ``alpha >= 0``; for a negative alpha it
    is ``max(x, 0)``, which that gradient does not differentiate, so a negative alpha is refused.
    ``exp`` sees ``min(x, 0)``: a large ``x`` never overflows it (no ``inf * 0`` in the gradient)."""
    a = check_number("elu: alpha", alpha, lo=0)
    return torch.where(X > 0, X, a * (torch.exp(X.clamp(max=0)) - 1))


def _vjp_grad(forward):
    """The grad rule of a one-input op as the vector-Jacobian product of ``forward`` itself (for
    forwards composed of several torch operations: autograd differentiates the same ones in
    dygraph mode, so both modes agree bit for bit)."""

    def grad(X, Out, dOut, need=(True,), **attrs):
        return _autograd_vjp(forward, (X,), dOut, need, **attrs)

    return grad


@register("gelu", ["Out"], grad=_vjp_grad(lambda X, **a: gelu(X, **a)))
def gelu(X, *, approximate=False):
    """``0.5 * x * (1 + erf(x / sqrt(2)))`` (gradient ``Phi(x) + x * phi(x)``, the normal cdf and pdf);
    with ``approximate`` ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))``."""
    if check_bool("gelu: approximate", approximate):
        return X * 0.5 * (1 + torch.tanh(_GELU_TANH_C * (X + _GELU_CUBIC * X * X * X)))
    return X * 0.5 * (1 + torch.erf(X * math.sqrt(0.5)))


@register("softplus", ["Out"], grad=_vjp_grad(lambda X: softplus(X)))
def softplus(X):
    """``log(1 + exp(x))``, computed as ``m + log(exp(-m) + exp(x - m))`` with ``m = max(x, 0)``;
    gradient ``sigmoid(x)``."""
    t = X.clamp(min=0)
    return t + torch.log(torch.exp(-t) + torch.exp(X - t))


def _softsign_grad(x, out, dout):
    return dout / torch.square(1 + x.abs())


class _Softsign(torch.autograd.Function):
    """``x / (1 + |x|)`` differentiated by Paddle's formula ``1 / (1 + |x|)**2``: autograd of the
    quotient, ``1 / (1 + |x|) - |x| / (1 + |x|)**2``, cancels (a relative error of ``|x| * eps``)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x / (1 + x.abs())

    @staticmethod
    def backward(ctx, dout):
        (x,) = ctx.saved_tensors
        return _softsign_grad(x, None, dout)


@register("softsign", ["Out"], grad=_act_grad(_softsign_grad))
def softsign(X):
    """``x / (1 + |x|)``; gradient ``1 / (1 + |x|)**2`` (1 at 0), in eager mode too."""
    return _Softsign.apply(X)


def _softmax_grad(X, Out, dOut, *, axis=-1, need=(True,)):
    """``Out * (dOut - sum(dOut * Out, axis))``, by torch's softmax backward kernel (the one
    autograd runs in dygraph mode, so both modes agree bit for bit)."""
    return (torch.ops.aten._softmax_backward_data(dOut, Out, axis % max(X.dim(), 1), X.dtype),)


@register("softmax", ["Out"], grad=_softmax_grad)
def softmax(X, *, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis``."""
    return torch.softmax(X, dim=axis)


# The names a layer's ``act`` argument accepts (fc, elementwise_*, Linear, Conv2D, BatchNorm): each is
# the one-input op of that type, run with its default attributes, in eager and static mode alike.
ACTIVATIONS = (
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "relu6",
    "leaky_relu",
    "elu",
    "gelu",
    "softplus",
    "softsign",
    "exp",
    "abs",
    "square",
    "sqrt",
)


def check_activation(act):
    """``act`` when it is None or one of :data:`ACTIVATIONS`; otherwise a ValueError naming them."""
    if act is not None and (not isinstance(act, str) or act not in ACTIVATIONS):
        raise ValueError(f"act must be None or one of {sorted(ACTIVATIONS)}, got {act!r}")
    return act


def _scale_grad(X, Out, dOut, *, scale=1.0, bias=0.0, bias_after_scale=True, need=(True,)):
    return (dOut * scale,)


@register("scale", ["Out"], grad=_scale_grad)
def scale(X, *, scale=1.0, bias=0.0, bias_after_scale=True):
    """``scale * x + bias`` (or ``scale * (x + bias)`` when ``bias_after_scale`` is False)."""
    if bias_after_scale:
        return X * scale + bias if bias else X * scale
    return (X + bias) * scale


@register("increment", ["Out"], grad=lambda X, Out, dOut, need=(True,), step=1.0: (dOut,))
def increment(X, *, step=1.0):
    """``x + step`` for a one-element ``x`` (a counter: ``fluid.layers.increment``, the global
    step of the lr decays), ``step`` cast to x's dtype first (Paddle's kernel: ``x +
    static_cast<T>(step)``, so an int64 counter stays int64 and ``step=1.5`` adds 1)."""
    if X.numel() != 1:
        raise ValueError(f"increment: x must have exactly one element, got shape {list(X.shape)}")
    return X + torch.tensor(step, dtype=torch.float64).to(X.dtype)


# ---------------------------------------------------------------- reductions


def _reduce_dims(X, dim, reduce_all):
    if reduce_all or dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return None
    dims = [dim] if isinstance(dim, int) else list(dim)
    return [d + X.dim() if d < 0 else d for d in dims]


def _reduce(fn):
    def forward(X, *, dim=None, keep_dim=False, reduce_all=False):
        dims = _reduce_dims(X, dim, reduce_all)
        if dims is None:
            out = fn(X)
            return out.reshape([1] * X.dim()) if keep_dim else out.reshape(1)
        return fn(X, dim=dims, keepdim=keep_dim)

    return forward


def _reduce_grad(is_mean):
    def grad(X, Out, dOut, *, dim=None, keep_dim=False, reduce_all=False, need=(True,)):
        dims = _reduce_dims(X, dim, reduce_all)
        if dims is None:
            g = dOut.reshape(()).expand(X.shape)
            return (g / X.numel() if is_mean else g,)
        if not keep_dim:
            for d in sorted(dims):
                dOut = dOut.unsqueeze(d)
        g = dOut.expand(X.shape)
        return (g / math.prod(X.shape[d] for d in dims) if is_mean else g,)

    return grad


reduce_sum = register("reduce_sum", ["Out"], grad=_reduce_grad(False))(_reduce(torch.sum))
reduce_mean = register("reduce_mean", ["Out"], grad=_reduce_grad(True))(_reduce(torch.mean))


@register("mean", ["Out"], grad=_reduce_grad(True))  # the grad of a mean over all elements
def mean(X):
    """Mean of all elements, shape ``[1]``."""
    return X.mean().reshape(1)


def _sum_grad(X, Out, dOut, need=None):
    flags = need[0] if need is not None else [True] * len(X)
    return ([dOut if n else None for n in flags],)


@register("sum", ["Out"], grad=_sum_grad, list_slots=["X"])
def sum_(X):
    """Element-wise sum of a list of same-shaped tensors (gradient fan-in uses it)."""
    if not X:
        raise ValueError("sum: X must hold at least one tensor, got none")
    out = X[0]
    for t in X[1:]:
        out = out + t
    return out


# ---------------------------------------------------------------- shape


def _resolve_shape(X, shape):
    shape = list(shape)
    if shape.count(-1) > 1:
        raise ValueError(f"shape {shape} has more than one -1; at most one dim may be inferred")
    out = [X.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return out


def _reshape_grad(X, Out, dOut, *, shape, need=(True,)):
    return (dOut.reshape(X.shape),)


def _reshape_infer(X, *, shape):
    """Build-time shape: as the forward, except where the input still has an unknown (batch)
    dim and the sizes do not divide: a target without ``-1`` is taken as given, and a ``-1`` in
    the target stays unknown (Paddle's compile-time ``-1``); the run checks the sizes."""
    out = _resolve_shape(X, shape)
    try:
        return X.reshape(out)
    except RuntimeError:
        if -1 in out and any(is_unknown_dim(d) for d in X.shape):  # the inferred dim is unknown too
            out[out.index(-1)] = UNKNOWN_DIM
        elif -1 in out:
            raise
        return X.new_empty(out)


@register("reshape2", ["Out"], grad=_reshape_grad, infer=_reshape_infer)
def reshape2(X, *, shape):
    """Paddle reshape: ``0`` copies the input dim, one ``-1`` is inferred (at run time, from
    the fed batch)."""
    return X.reshape(_resolve_shape(X, shape))


def _concat_grad(X, Out, dOut, *, axis=0, need=None):
    sizes = [t.shape[axis] for t in X]
    return (list(torch.split(dOut, sizes, dim=axis)),)


@register("concat", ["Out"], grad=_concat_grad, list_slots=["X"])
def concat(X, *, axis=0):
    """Join tensors along ``axis``."""
    return torch.cat(list(X), dim=axis)


def _axis(ndim: int, axis: int, what: str) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{what}: axis {axis} is out of range for a tensor of rank {ndim}; allowed: {-ndim}..{ndim - 1}"
        )
    return axis + ndim if axis < 0 else axis


def slice_bounds(shape, axes, starts, ends) -> list[tuple[int, int, int]]:
    """``(axis, start, end)`` per sliced axis, as Paddle's slice op computes them: a negative
    start or end counts from the end of the dim, both are clamped to ``[0, dim]``, and the
    slice must not be empty (``end > start``)."""
    if not len(axes) == len(starts) == len(ends):
        raise ValueError(
            f"slice: axes, starts and ends must have the same length, got {len(axes)}, {len(starts)} and {len(ends)}"
        )
    out = []
    for a, s, e in zip(axes, starts, ends, strict=True):
        ax = _axis(len(shape), int(a), "slice")
        if ax in (o[0] for o in out):
            raise ValueError(f"slice: axis {a} appears twice in axes {list(axes)}")
        dim = int(shape[ax])
        start = min(max(s + dim if s < 0 else s, 0), dim)
        end = min(max(e + dim if e < 0 else e, 0), dim)
        if end <= start:
            raise ValueError(
                f"slice: the slice of axis {a} (dim {dim}) from start {s} to end {e} is empty "
                f"(resolved start {start}, end {end}); end must be greater than start"
            )
        out.append((ax, start, end))
    return out


def _slice_grad(Input, Out, dOut, *, axes, starts, ends, decrease_axis=(), need=(True,)):
    dX = dOut.new_zeros(Input.shape)
    index = [slice(None)] * Input.dim()
    for ax, start, end in slice_bounds(Input.shape, axes, starts, ends):
        index[ax] = slice(start, end)
    dX[tuple(index)] = dOut.reshape(dX[tuple(index)].shape)
    return (dX,)


def _slice_infer(Input, *, axes, starts, ends, decrease_axis=()):
    """Build-time shape: as the forward, except that a sliced dim of unknown size stays unknown
    (Paddle's compile-time ``-1``: the slice's size depends on the fed size)."""
    unknown = {ax for ax in (_axis(Input.dim(), int(a), "slice") for a in axes) if is_unknown_dim(Input.shape[ax])}
    if not unknown:
        return slice_(Input, axes=axes, starts=starts, ends=ends, decrease_axis=decrease_axis)
    shape = list(Input.shape)
    for ax, start, end in slice_bounds(Input.shape, axes, starts, ends):
        shape[ax] = UNKNOWN_DIM if ax in unknown else end - start
    drop = {_axis(Input.dim(), int(a), "slice: decrease_axis") for a in decrease_axis}
    return Input.new_empty([d for i, d in enumerate(shape) if i not in drop] or [1])


@register("slice", ["Out"], grad=_slice_grad, infer=_slice_infer)
def slice_(Input, *, axes, starts, ends, decrease_axis=()):
    """Paddle ``slice``: ``Out = Input[..., starts[i]:ends[i], ...]`` on each axis ``axes[i]``
    (negative bounds count from the end, bounds are clamped to ``[0, dim]``, an empty slice is
    refused); the axes in ``decrease_axis`` (each of size 1 after slicing) are then dropped
    (a result with no dims left has shape ``[1]``)."""
    index = [slice(None)] * Input.dim()
    for ax, start, end in slice_bounds(Input.shape, axes, starts, ends):
        index[ax] = slice(start, end)
    out = Input[tuple(index)]
    if decrease_axis:
        drop = {_axis(Input.dim(), int(a), "slice: decrease_axis") for a in decrease_axis}
        for a in drop:
            if out.shape[a] != 1:
                raise ValueError(f"slice: decrease_axis {a} has size {out.shape[a]} after slicing; it must be 1")
        keep = [d for i, d in enumerate(out.shape) if i not in drop]
        out = out.reshape(keep or [1])
    return out


def split_sizes(dim: int, num: int, sections) -> list[int]:
    """The sizes Paddle's split op cuts a dim of size ``dim`` into: ``num`` equal parts
    (``num`` must divide ``dim``), or ``sections`` (one of them may be ``-1``: the rest)."""
    if num:
        if dim % num:
            raise ValueError(f"split: the dim of size {dim} cannot be split into {num} equal parts")
        return [dim // num] * num
    sizes = [int(s) for s in sections]
    if sizes.count(-1) > 1:
        raise ValueError(f"split: at most one section may be -1 (inferred), got {sizes}")
    if any(s < 0 and s != -1 for s in sizes) or 0 in sizes:
        raise ValueError(f"split: sections must be positive ints or one -1, got {sizes}")
    known = sum(s for s in sizes if s != -1)
    if -1 in sizes:
        if known >= dim:
            raise ValueError(f"split: sections {sizes} leave nothing for the -1 section of a dim of size {dim}")
        sizes[sizes.index(-1)] = dim - known
    elif known != dim:
        raise ValueError(f"split: sections {sizes} sum to {known}, but the dim being split has size {dim}")
    return sizes


def _split_grad(X, Out, dOut, *, axis=0, num=0, sections=(), need=(True,)):
    parts = [g if g is not None else o.new_zeros(o.shape) for o, g in zip(Out, dOut, strict=True)]
    return (torch.cat(parts, dim=_axis(X.dim(), axis, "split")),)


def _split_infer(X, *, axis=0, num=0, sections=()):
    """Build-time shapes: as the forward, except along an axis of unknown size: ``num`` equal
    parts of unknown size, or the given sections with the ``-1`` one unknown."""
    ax = _axis(X.dim(), axis, "split")
    if not is_unknown_dim(X.shape[ax]):
        return split(X, axis=axis, num=num, sections=sections)
    if num:
        sizes = [UNKNOWN_DIM] * int(num)
    else:
        sizes = [UNKNOWN_DIM if int(s) == -1 else int(s) for s in sections]
        if sum(1 for s in sections if int(s) == -1) > 1:
            raise ValueError(f"split: at most one section may be -1 (inferred), got {list(sections)}")
    shape = list(X.shape)
    return [X.new_empty(shape[:ax] + [n] + shape[ax + 1 :]) for n in sizes]


@register("split", ["Out"], grad=_split_grad, list_slots=["Out"], infer=_split_infer)
def split(X, *, axis=0, num=0, sections=()):
    """Paddle ``split``: cut ``X`` along ``axis`` into ``num`` equal parts, or into parts of
    the sizes ``sections`` (one may be ``-1``: the rest); a list of tensors. The gradient of an
    output nothing used is zeros."""
    ax = _axis(X.dim(), axis, "split")
    return list(torch.split(X, split_sizes(X.shape[ax], num, sections), dim=ax))


def check_perm(ndim: int, axis) -> list[int]:
    """``axis`` when it is a permutation of ``0..ndim-1`` (negative entries count from the end)."""
    perm = [int(a) + ndim if int(a) < 0 else int(a) for a in axis]
    if sorted(perm) != list(range(ndim)):
        raise ValueError(f"transpose: perm {list(axis)} is not a permutation of the {ndim} dims of the input")
    return perm


def _transpose_grad(X, Out, dOut, *, axis, need=(True,)):
    perm = check_perm(X.dim(), axis)
    inverse = [perm.index(i) for i in range(len(perm))]
    return (dOut.permute(inverse),)


@register("transpose2", ["Out"], grad=_transpose_grad)
def transpose2(X, *, axis):
    """Paddle ``transpose``: ``Out``'s dim ``i`` is ``X``'s dim ``axis[i]`` (a permutation)."""
    return X.permute(check_perm(X.dim(), axis))


def _cast_grad(X, Out, dOut, *, in_dtype, out_dtype, need=(True,)):
    return (dOut.to(X.dtype),)


@register("cast", ["Out"], grad=_cast_grad)
def cast(X, *, in_dtype=None, out_dtype):
    """Convert to ``out_dtype`` (a Paddle dtype name)."""
    return X.to(torch_dtype(out_dtype))


def _assign_grad(X, Out, dOut, need=(True,)):
    return (dOut,)


@register("assign", ["Out"], grad=_assign_grad)
def assign(X):
    """A copy of ``X``."""
    return X.clone()


@register("fill_constant", ["Out"])
def fill_constant(*, shape, dtype, value):
    """A new tensor of ``shape`` filled with ``value``."""
    return torch.full(tuple(shape), value, dtype=torch_dtype(dtype))


@register("copy_layer_parameter", ["Out"])
def copy_layer_parameter(*, source):
    """A copy of a dygraph layer's parameter ``source`` (the startup op of a layer called in
    a static program)."""
    return source.detach().clone()
