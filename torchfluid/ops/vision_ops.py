"""Image and regularisation ops of the book models (Paddle op types) with their grad rules.

* ``conv2d``: ``Output[n, o] = sum_{c, i, j} Input[n, g(o)*C/G + c, s*y + d*i - p, s*x + d*j - p]
  * Filter[o, c, i, j]`` (NCHW, ``groups`` G). Grad rule: ``aten.convolution_backward``.
* ``pool2d``: max or average over ``ksize`` windows; ``global_pooling`` pools the whole
  H x W; average pooling with ``exclusive=True`` (Paddle's default) divides by the number of
  non-padding elements. Grad rule: ``aten.max_pool2d_with_indices_backward`` /
  ``aten.avg_pool2d_backward``.
* ``batch_norm``: training: ``y = (x - mean_B) / sqrt(var_B + eps) * Scale + Bias`` with
  the batch mean and the *biased* batch variance over N, H, W, and moving statistics
  ``MeanOut = momentum * Mean + (1 - momentum) * mean_B`` (likewise the variance, biased as
  in Paddle's kernel). ``is_test`` or ``use_global_stats``: normalise with ``Mean`` and
  ``Variance``; the moving statistics are left as they are.
* ``dropout``: ``Mask ~ Bernoulli(1 - p)``; ``downgrade_in_infer`` (Paddle's default):
  train ``x * Mask``, test ``x * (1 - p)``; ``upscale_in_train``: train
  ``x * Mask / (1 - p)``, test ``x``.
* ``uniform_random``: a new tensor, uniform on ``[min, max)``.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

from .._checks import ArgumentTypeError, check_int, check_number
from ..dtypes import torch_dtype
from ..initializer import ConstantInitializer, NormalInitializer
from ..param_attr import ParamAttr
from .registry import register

__all__ = [
    "conv2d",
    "pool2d",
    "batch_norm",
    "dropout",
    "uniform_random",
    "gaussian_random",
    "conv2d_layer_args",
    "pool2d_layer_attrs",
    "batch_norm_layer_attrs",
    "batch_norm_uses_moving",
    "batch_norm_stat_attrs",
    "check_dropout",
]


def _pair(v, what):
    if isinstance(v, int):
        return [v, v]
    v = [int(x) for x in v]
    if len(v) == 1:
        return v * 2
    if len(v) == 4 and v[0] == v[1] and v[2] == v[3]:  # Paddle's [top, bottom, left, right]
        return [v[0], v[2]]
    if len(v) != 2:
        raise ValueError(f"{what} must be an int or a list of 2 ints, got {v}")
    return v


# ---------------------------------------------------------------- conv2d


def _conv_attrs(*, strides=(1, 1), paddings=(0, 0), dilations=(1, 1), groups=1, data_format="NCHW", use_cudnn=False):
    """conv2d's attributes, with their defaults, as ``(strides, paddings, dilations, groups)``."""
    if data_format not in ("NCHW", "AnyLayout"):
        raise ValueError(f"conv2d: data_format must be 'NCHW', got {data_format!r}")
    return _pair(strides, "strides"), _pair(paddings, "paddings"), _pair(dilations, "dilations"), int(groups)


def _conv2d_grad(Input, Filter, Output, dOutput, *, need=(True, True), **attrs):
    s, p, d, g = _conv_attrs(**attrs)
    dx, dw, _ = torch.ops.aten.convolution_backward(
        dOutput, Input, Filter, None, s, p, d, False, [0, 0], g, [bool(need[0]), bool(need[1]), False]
    )
    return dx, dw


@register("conv2d", ["Output"], grad=_conv2d_grad)
def conv2d(Input, Filter, **attrs):
    """2-D convolution (cross-correlation), NCHW; Filter ``[O, C / groups, kh, kw]``;
    attributes ``strides``, ``paddings``, ``dilations``, ``groups`` (see ``_conv_attrs``)."""
    s, p, d, g = _conv_attrs(**attrs)
    return F.conv2d(Input, Filter, None, s, p, d, g)


# ---------------------------------------------------------------- pool2d


def _pool_attrs(
    X,
    *,
    pooling_type="max",
    ksize=(2, 2),
    strides=(1, 1),
    paddings=(0, 0),
    global_pooling=False,
    ceil_mode=False,
    exclusive=True,
    data_format="NCHW",
    use_cudnn=False,
):
    """pool2d's attributes, with their defaults, as ``(pooling_type, ksize, strides, paddings,
    ceil_mode, count_include_pad)``; ``global_pooling`` pools all of X's H x W."""
    if pooling_type not in ("max", "avg"):
        raise ValueError(f"pool2d: pooling_type must be 'max' or 'avg', got {pooling_type!r}")
    if data_format not in ("NCHW", "AnyLayout"):
        raise ValueError(f"pool2d: data_format must be 'NCHW', got {data_format!r}")
    if global_pooling:
        k, s, p = [int(X.shape[-2]), int(X.shape[-1])], [1, 1], [0, 0]
    else:
        k, s, p = _pair(ksize, "ksize"), _pair(strides, "strides"), _pair(paddings, "paddings")
    return pooling_type, k, s, p, bool(ceil_mode), not exclusive


def _pool2d_grad(X, Out, dOut, *, need=(True,), **attrs):
    kind, k, s, p, ceil_mode, count_pad = _pool_attrs(X, **attrs)
    if kind == "max":
        _, idx = torch.ops.aten.max_pool2d_with_indices(X, k, s, p, [1, 1], ceil_mode)
        return (torch.ops.aten.max_pool2d_with_indices_backward(dOut, X, k, s, p, [1, 1], ceil_mode, idx),)
    return (torch.ops.aten.avg_pool2d_backward(dOut, X, k, s, p, ceil_mode, count_pad, None),)


@register("pool2d", ["Out"], grad=_pool2d_grad)
def pool2d(X, **attrs):
    """Max or average pooling over windows (NCHW); attributes ``pooling_type``, ``ksize``,
    ``strides``, ``paddings``, ``global_pooling`` (pools all of H x W), ``ceil_mode``,
    ``exclusive`` (see ``_pool_attrs``)."""
    kind, k, s, p, ceil_mode, count_pad = _pool_attrs(X, **attrs)
    if kind == "max":
        return F.max_pool2d(X, k, s, p, ceil_mode=ceil_mode)
    return F.avg_pool2d(X, k, s, p, ceil_mode=ceil_mode, count_include_pad=count_pad)


# ---------------------------------------------------------------- batch_norm


def _bn_view(t, X):
    return t.reshape((1, -1) + (1,) * (X.dim() - 2))


def _bn_dims(X):
    return [0] + list(range(2, X.dim()))


def _bn_apply(X, Scale, Bias, mean, var, epsilon):
    inv = torch.rsqrt(var + epsilon)
    return (X - _bn_view(mean, X)) * _bn_view(inv * Scale, X) + _bn_view(Bias, X)


def _bn_attrs(
    *,
    momentum=0.9,
    epsilon=1e-5,
    is_test=False,
    use_global_stats=False,
    data_layout="NCHW",
    trainable_statistics=False,
):
    """batch_norm's attributes, with their defaults, as ``(momentum, epsilon, use_moving)``;
    ``use_moving`` (``use_global_stats``, or ``is_test`` without ``trainable_statistics``, as
    Paddle's kernel): normalise with the moving statistics, else with the batch's (and move
    them)."""
    if data_layout not in ("NCHW", "AnyLayout"):
        raise ValueError(f"batch_norm: data_layout must be 'NCHW', got {data_layout!r}")
    return momentum, epsilon, (bool(is_test) and not trainable_statistics) or bool(use_global_stats)


def _batch_norm_grad(
    X,
    Scale,
    Bias,
    Mean,
    Variance,
    Y,
    MeanOut,
    VarianceOut,
    SavedMean,
    SavedVariance,
    dY,
    dMeanOut,
    dVarianceOut,
    dSavedMean,
    dSavedVariance,
    *,
    need=(True, True, True, False, False),
    **attrs,
):
    """dX, dScale, dBias of ``batch_norm`` (the moving statistics get no gradient).

    With batch statistics, ``xhat = (x - mean) / sqrt(var + eps)`` over the N, H, W of each
    channel: ``dScale = sum(dY * xhat)``, ``dBias = sum(dY)``, ``dX = inv * (dxhat - mean(dxhat)
    - xhat * mean(dxhat * xhat))`` with ``dxhat = dY * Scale``. They are computed as the
    vector-Jacobian product of the forward itself (torch.autograd over ``batch_norm``'s own
    operations), so a program's gradients are bit-identical to those of the same layer in
    dygraph mode (a closed form summed in another order differs in the last float32 bits).
    With the moving statistics (``is_test`` / ``use_global_stats``) ``dX = dY * Scale * inv``,
    ``xhat`` from the moving mean and variance; computed the same way."""
    ins = (X, Scale, Bias)
    with torch.enable_grad():
        xs = [t.detach().requires_grad_(bool(n)) for t, n in zip(ins, need[:3], strict=True)]
        y = batch_norm(*xs, Mean, Variance, **attrs)[0]
        wanted = [t for t in xs if t.requires_grad]
        grads = iter(torch.autograd.grad(y, wanted, dY)) if wanted else iter(())
    return (*(next(grads) if n else None for n in need[:3]), None, None)


@register(
    "batch_norm",
    ["Y", "MeanOut", "VarianceOut", "SavedMean", "SavedVariance"],
    no_grad_slots=["Mean", "Variance"],
    grad=_batch_norm_grad,
)
def batch_norm(X, Scale, Bias, Mean, Variance, **attrs):
    """Batch normalisation over channel dim 1 (see the module docstring; attributes
    ``momentum``, ``epsilon``, ``is_test``, ``use_global_stats``, see ``_bn_attrs``);
    returns ``(Y, MeanOut, VarianceOut, SavedMean, SavedVariance)``."""
    momentum, epsilon, use_moving = _bn_attrs(**attrs)
    if X.dim() < 2 or X.shape[1] != Scale.shape[0]:
        raise ValueError(f"batch_norm: X {list(X.shape)} must have {Scale.shape[0]} channels on dim 1")
    if use_moving:
        y = _bn_apply(X, Scale, Bias, Mean, Variance, epsilon)
        return y, Mean, Variance, Mean, Variance
    dims = _bn_dims(X)
    bmean = X.mean(dim=dims)
    bvar = (X - _bn_view(bmean, X)).square().mean(dim=dims)  # biased, as Paddle
    y = _bn_apply(X, Scale, Bias, bmean, bvar, epsilon)
    with torch.no_grad():
        mean_out = Mean * momentum + bmean.detach() * (1.0 - momentum)
        var_out = Variance * momentum + bvar.detach() * (1.0 - momentum)
    return y, mean_out, var_out, bmean.detach(), bvar.detach()


# ---------------------------------------------------------------- layer arguments
# ``fluid.layers`` (conv2d, pool2d, batch_norm) and the ``fluid.dygraph`` layers (Conv2D,
# Pool2D, BatchNorm) check their arguments and build their op attributes here, alike.


def _int_pair(name, value):
    items = value if isinstance(value, (list, tuple)) else [value, value]
    if len(items) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items):
        raise ArgumentTypeError(f"{name} must be an int or a list of 2 ints, got {value!r}")
    return [int(v) for v in items]


def conv2d_layer_args(num_channels, num_filters, filter_size, stride, padding, dilation, groups):
    """``(filter shape, filter initializer, conv2d attrs)`` of a conv2d layer: the filter is
    ``[num_filters, num_channels / groups, kh, kw]`` drawn from
    ``N(0, sqrt(2 / (kh * kw * num_channels)))``; ``groups`` None means 1."""
    num_channels = check_int("num_channels", num_channels, lo=0, lo_open=True)
    num_filters = check_int("num_filters", num_filters, lo=0, lo_open=True)
    groups = 1 if groups is None else check_int("groups", groups, lo=0, lo_open=True)
    if num_channels % groups or num_filters % groups:
        raise ValueError(f"groups={groups} must divide num_channels ({num_channels}) and num_filters ({num_filters})")
    k = _int_pair("filter_size", filter_size)
    attrs = {
        "strides": _int_pair("stride", stride),
        "paddings": _int_pair("padding", padding),
        "dilations": _int_pair("dilation", dilation),
        "groups": groups,
        "data_format": "NCHW",
    }
    init = NormalInitializer(0.0, math.sqrt(2.0 / (k[0] * k[1] * num_channels)))
    return [num_filters, num_channels // groups] + k, init, attrs


def pool2d_layer_attrs(
    pool_size, pool_type, pool_stride, pool_padding, global_pooling, ceil_mode, exclusive, data_format
):
    """The pool2d attrs of a pooling layer; ``pool_size`` is needed unless ``global_pooling``."""
    if pool_type not in ("max", "avg"):
        raise ValueError(f"pool2d: pool_type must be 'max' or 'avg', got {pool_type!r}")
    if data_format != "NCHW":
        raise ValueError(f"pool2d: data_format must be 'NCHW', got {data_format!r}")
    if not global_pooling and (pool_size is None or pool_size == -1):
        raise ValueError("pool2d: give pool_size (an int or [h, w]) unless global_pooling=True")
    return {
        "pooling_type": pool_type,
        "ksize": [1, 1] if global_pooling else _int_pair("pool_size", pool_size),
        "strides": _int_pair("pool_stride", pool_stride),
        "paddings": _int_pair("pool_padding", pool_padding),
        "global_pooling": bool(global_pooling),
        "ceil_mode": bool(ceil_mode),
        "exclusive": bool(exclusive),
        "data_format": "NCHW",
    }


def batch_norm_layer_attrs(momentum, epsilon, is_test, use_global_stats, data_layout, trainable_statistics=False):
    """The batch_norm attrs of a batch-normalisation layer (``momentum`` in [0, 1], ``epsilon`` >= 0)."""
    if data_layout != "NCHW":
        raise ValueError(f"batch_norm: data_layout must be 'NCHW', got {data_layout!r}")
    return {
        "momentum": check_number("momentum", momentum, lo=0.0, hi=1.0),
        "epsilon": check_number("epsilon", epsilon, lo=0.0),
        "is_test": bool(is_test),
        "use_global_stats": bool(use_global_stats),
        "data_layout": "NCHW",
        "trainable_statistics": bool(trainable_statistics),
    }


def batch_norm_uses_moving(attrs) -> bool:
    """Whether ``batch_norm`` with ``attrs`` normalises with the moving statistics (and
    leaves them as they are) rather than with the batch's."""
    return _bn_attrs(**attrs)[2]


def batch_norm_stat_attrs(moving_mean_name, moving_variance_name):
    """ParamAttrs of a batch-normalisation layer's moving mean (zeros) and variance (ones),
    never trained."""
    return [
        ParamAttr(name=n, initializer=ConstantInitializer(v), trainable=False)
        for n, v in ((moving_mean_name, 0.0), (moving_variance_name, 1.0))
    ]


# ---------------------------------------------------------------- dropout

_IMPLEMENTATIONS = ("downgrade_in_infer", "upscale_in_train")


def check_dropout(dropout_prob, dropout_implementation):
    if not 0.0 <= float(dropout_prob) <= 1.0:
        raise ValueError(f"dropout: dropout_prob must be in [0, 1], got {dropout_prob}")
    if dropout_implementation not in _IMPLEMENTATIONS:
        raise ValueError(
            f"dropout: dropout_implementation must be one of {_IMPLEMENTATIONS}, got {dropout_implementation!r}"
        )


def _dropout_grad(
    X,
    Out,
    Mask,
    dOut,
    dMask,
    *,
    dropout_prob=0.5,
    is_test=False,
    fix_seed=False,
    seed=0,
    dropout_implementation="downgrade_in_infer",
    need=(True,),
):
    p = float(dropout_prob)
    if is_test:
        return (dOut * (1.0 - p) if dropout_implementation == "downgrade_in_infer" else dOut,)
    g = dOut * Mask.to(dOut.dtype)
    if dropout_implementation == "upscale_in_train":
        g = g / (1.0 - p) if p < 1.0 else torch.zeros_like(g)
    return (g,)


@register("dropout", ["Out", "Mask"], grad=_dropout_grad)
def dropout(X, *, dropout_prob=0.5, is_test=False, fix_seed=False, seed=0, dropout_implementation="downgrade_in_infer"):
    """Zero each element with probability ``dropout_prob`` (see the module docstring);
    returns ``(Out, Mask)`` with Mask uint8 (1 = kept)."""
    check_dropout(dropout_prob, dropout_implementation)
    p = float(dropout_prob)
    if is_test:
        out = X * (1.0 - p) if dropout_implementation == "downgrade_in_infer" else X.clone()
        return out, torch.ones_like(X, dtype=torch.uint8)
    if X.device.type == "meta":
        return torch.empty_like(X), torch.empty_like(X, dtype=torch.uint8)
    gen = torch.Generator(device=X.device).manual_seed(int(seed)) if fix_seed else None
    mask = (torch.rand(X.shape, generator=gen, device=X.device) >= p).to(torch.uint8)
    out = X * mask.to(X.dtype)
    if dropout_implementation == "upscale_in_train":
        out = out / (1.0 - p) if p < 1.0 else torch.zeros_like(X)
    return out, mask


# ---------------------------------------------------------------- random


@register("uniform_random", ["Out"])
def uniform_random(*, shape, dtype="float32", min=-1.0, max=1.0, seed=0):  # noqa: A002 - Paddle's names
    """A new ``shape`` tensor, uniform on ``[min, max)``; ``seed != 0`` fixes the draw."""
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"uniform_random: shape must be all >= 0 at run time, got {list(shape)}")
    if not float(min) < float(max):
        raise ValueError(f"uniform_random: min must be < max, got min={min}, max={max}")
    gen = torch.Generator().manual_seed(int(seed)) if seed else None
    t = torch.rand(shape, generator=gen, dtype=torch.float64)
    return (t * (float(max) - float(min)) + float(min)).to(torch_dtype(dtype))


@register("gaussian_random", ["Out"])
def gaussian_random(*, shape, mean=0.0, std=1.0, seed=0, dtype="float32"):
    """A new ``shape`` tensor drawn from the normal distribution ``N(mean, std^2)``;
    ``seed != 0`` fixes the draw."""
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"gaussian_random: shape must be all >= 0 at run time, got {list(shape)}")
    if not float(std) >= 0.0:
        raise ValueError(f"gaussian_random: std must be >= 0, got {std}")
    gen = torch.Generator().manual_seed(int(seed)) if seed else None
    t = torch.randn(shape, generator=gen, dtype=torch.float64)
    return (t * float(std) + float(mean)).to(torch_dtype(dtype))
