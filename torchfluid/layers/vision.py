"""``fluid.layers`` for images and regularisation: conv2d, pool2d, batch_norm, dropout.

The maths of each op is in :mod:`torchfluid.ops.vision_ops`. Parameters, as Paddle names
and initialises them:

* conv2d: filter ``<name>.w_0`` ``[num_filters, C / groups, kh, kw]`` drawn from
  ``N(0, sqrt(2 / (kh * kw * C)))``; bias ``<name>.b_0`` ``[num_filters]`` (zeros), added
  on dim 1.
* batch_norm: scale ``.w_0`` (ones), bias ``.b_0`` (zeros), moving mean ``.w_1`` (zeros)
  and moving variance ``.w_2`` (ones); the moving statistics are persistable and never
  trained.
"""

from __future__ import annotations

from ..initializer import ConstantInitializer
from ..ops.vision_ops import (
    batch_norm_layer_attrs,
    batch_norm_stat_attrs,
    check_dropout,
    conv2d_layer_args,
    pool2d_layer_attrs,
)
from .helper import LayerHelper, activation_name, apply_op, dtype_of, is_static, param_attr_of

__all__ = ["conv2d", "pool2d", "batch_norm", "dropout"]


def _check_nchw(x, layer):
    shape = list(x.shape)
    if len(shape) != 4:
        raise ValueError(f"{layer}: input must be 4-D [N, C, H, W], got shape {shape}")
    return shape


def conv2d(
    input,
    num_filters,
    filter_size,
    stride=1,
    padding=0,
    dilation=1,
    groups=None,
    param_attr=None,
    bias_attr=None,
    use_cudnn=True,
    act=None,
    name=None,
    data_format="NCHW",
):
    """``act(conv2d(input, W) + b)`` (NCHW); see the module docstring for W and b."""
    if data_format != "NCHW":
        raise ValueError(f"conv2d: data_format must be 'NCHW', got {data_format!r}")
    channels = _check_nchw(input, "conv2d")[1]
    activation_name(act)
    w_shape, w_init, attrs = conv2d_layer_args(channels, num_filters, filter_size, stride, padding, dilation, groups)
    helper = LayerHelper("conv2d", name)
    dtype = dtype_of(input)
    w = helper.create_parameter(param_attr, w_shape, dtype, default_initializer=w_init)
    out = apply_op("conv2d", {"Input": input, "Filter": w}, attrs, helper=helper)
    if param_attr_of(bias_attr, "bias_attr") is not False:
        b = helper.create_parameter(bias_attr, w_shape[:1], dtype, is_bias=True)
        out = apply_op("elementwise_add", {"X": out, "Y": b}, {"axis": 1}, helper=helper)
    return helper.append_activation(out, act)


def pool2d(
    input,
    pool_size=-1,
    pool_type="max",
    pool_stride=1,
    pool_padding=0,
    global_pooling=False,
    use_cudnn=True,
    ceil_mode=False,
    name=None,
    exclusive=True,
    data_format="NCHW",
):
    """Max or average pooling (NCHW); ``global_pooling`` pools the whole H x W."""
    _check_nchw(input, "pool2d")
    attrs = pool2d_layer_attrs(
        pool_size, pool_type, pool_stride, pool_padding, global_pooling, ceil_mode, exclusive, data_format
    )
    return apply_op("pool2d", {"X": input}, attrs, layer_type="pool2d", name=name)


def batch_norm(
    input,
    act=None,
    is_test=False,
    momentum=0.9,
    epsilon=1e-05,
    param_attr=None,
    bias_attr=None,
    data_layout="NCHW",
    in_place=False,
    name=None,
    moving_mean_name=None,
    moving_variance_name=None,
    do_model_average_for_mean_and_var=True,
    use_global_stats=False,
):
    """Batch normalisation over channel dim 1 (see :mod:`torchfluid.ops.vision_ops`)."""
    activation_name(act)
    attrs = batch_norm_layer_attrs(momentum, epsilon, is_test, use_global_stats, data_layout)
    shape = list(input.shape)
    if len(shape) < 2 or shape[1] <= 0:
        raise ValueError(f"batch_norm: input must be [N, C, ...] with a known C, got shape {shape}")
    c = int(shape[1])
    helper = LayerHelper("batch_norm", name)
    dtype = dtype_of(input)
    scale = helper.create_parameter(param_attr, [c], dtype, default_initializer=ConstantInitializer(1.0))
    bias = helper.create_parameter(bias_attr, [c], dtype, is_bias=True)
    mean_attr, variance_attr = batch_norm_stat_attrs(moving_mean_name, moving_variance_name)
    mean = helper.create_parameter(mean_attr, [c], dtype)
    variance = helper.create_parameter(variance_attr, [c], dtype)
    inputs = {"X": input, "Scale": scale, "Bias": bias, "Mean": mean, "Variance": variance}
    outputs = None
    if is_static(input):  # the moving statistics are updated in place, never trained
        mean.stop_gradient = variance.stop_gradient = True
        outputs = {"MeanOut": [mean], "VarianceOut": [variance]}
    y = apply_op("batch_norm", inputs, attrs, helper=helper, out_dtype=dtype, outputs=outputs)[0]
    return helper.append_activation(y, act)


def dropout(x, dropout_prob, is_test=False, seed=None, name=None, dropout_implementation="downgrade_in_infer"):
    """Zero each element with probability ``dropout_prob``: ``downgrade_in_infer``
    (default) scales by ``1 - p`` at test time, ``upscale_in_train`` by ``1 / (1 - p)`` in
    training. ``Program.clone(for_test=True)`` sets ``is_test``."""
    attrs = {
        "dropout_prob": float(dropout_prob),
        "is_test": bool(is_test),
        "fix_seed": seed is not None,
        "seed": int(seed or 0),
        "dropout_implementation": dropout_implementation,
    }
    check_dropout(attrs["dropout_prob"], dropout_implementation)
    return apply_op("dropout", {"X": x}, attrs, layer_type="dropout", name=name)[0]
