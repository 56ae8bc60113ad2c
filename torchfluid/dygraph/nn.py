"""Fluid dygraph layers ``Linear`` and ``Embedding`` (Paddle's ``fluid.dygraph.nn``), exact.

Called with a static ``Variable`` (inside ``program_guard``), a layer appends ops to the
default main program instead; its parameters become program parameters of the same names,
initialised by the startup program to the layer's current values.

``Linear``: ``out = act(matmul(x, W) + b)`` with ``W`` of shape ``[input_dim,
output_dim]`` (the transpose of torch's) and the bias added after the product, as
Paddle's ``matmul`` + ``elementwise_add`` (not a fused ``addmm``).

``Embedding`` (``lookup_table_v2``): ``out[..., :] = W[ids[...]]``, shape
``ids.shape + [D]``. Ids equal to ``padding_idx`` give zero rows. Gradients:

* dense: rows summed per id; the padding row gets exactly zero;
* ``is_sparse=True``: a torch sparse COO gradient with one row per id occurrence, in
  order, duplicates not merged (Paddle's SelectedRows). As in Paddle's kernel, the
  padding id's rows carry the upstream gradient unchanged.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

from .. import unique_name
from .._checks import check_bool, check_int
from ..initializer import ConstantInitializer
from ..ops import check_activation, get_op, vision_ops
from ..static.framework import Variable
from ..static.layer_ops import append_layer_op, static_parameter
from .layers import Layer
from .varbase import VarBase, call_plain

__all__ = ["Linear", "Embedding", "Conv2D", "Pool2D", "BatchNorm"]


def _apply_static(op_type, inputs, attrs, layer_type, outputs=None):
    """Append the op to the default main program (the layer was called with a static
    Variable); the layer's parameters stand in the program under their own names."""
    return append_layer_op(op_type, inputs, attrs, layer_name=unique_name.generate(layer_type), outputs=outputs)


def _static_act(out, act):
    return out if act is None else _apply_static(act, {"X": out}, {}, act)


def _static_biased(layer_type, op_type, inputs, attrs, bias, axis, act):
    """``act(op(inputs) + bias)``, the bias added on ``axis``: a layer's ops in a static program."""
    out = _apply_static(op_type, inputs, attrs, layer_type)
    if bias is not None:
        out = _apply_static("elementwise_add", {"X": out, "Y": bias}, {"axis": axis}, layer_type)
    return _static_act(out, act)


def apply_activation(x, act):
    """``act(x)``: the forward of the registered op ``act`` (the op a static program appends)."""
    return x if act is None else get_op(act).forward(x)


def _positive_int(name, value) -> int:
    return check_int(name, value, lo=0, lo_open=True)


def _linear(input, weight, bias, act):
    out = torch.matmul(input, weight)
    if bias is not None:
        out = out + bias
    return apply_activation(out, act)


class Linear(Layer):
    """``act(input @ weight + bias)``; ``weight`` is ``[input_dim, output_dim]``, named ``linear_N.w_0``."""

    def __init__(self, input_dim, output_dim, param_attr=None, bias_attr=None, act=None, dtype="float32"):
        super().__init__(dtype=dtype)
        input_dim = _positive_int("input_dim", input_dim)
        output_dim = _positive_int("output_dim", output_dim)
        self._act = check_activation(act)
        self.weight = self.create_parameter(shape=[input_dim, output_dim], attr=param_attr, is_bias=False)
        self.register_parameter("bias", self.create_parameter(shape=[output_dim], attr=bias_attr, is_bias=True))

    def forward(self, input):
        if isinstance(input, Variable):
            return _static_biased("linear", "matmul", {"X": input, "Y": self.weight}, {}, self.bias, -1, self._act)
        return call_plain(_linear, input, self.weight, self.bias, self._act)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}, bias={self.bias is not None}, act={self._act}"


class _SparsePaddedLookup(torch.autograd.Function):
    """Lookup with zeroed padding rows whose sparse gradient keeps every id (Paddle's kernel)."""

    @staticmethod
    def forward(ctx, ids, weight, padding_idx):
        ctx.save_for_backward(ids)
        ctx.table_shape = tuple(weight.shape)
        out = F.embedding(ids, weight)
        return out.masked_fill((ids == padding_idx).unsqueeze(-1), 0)

    @staticmethod
    def backward(ctx, grad_out):
        (ids,) = ctx.saved_tensors
        rows, width = ctx.table_shape
        grad = torch.sparse_coo_tensor(
            ids.reshape(1, -1).to(torch.long),
            grad_out.reshape(-1, width).contiguous(),
            (rows, width),
            check_invariants=False,
        )
        return None, grad, None


def embedding_lookup(ids, weight, padding_idx=None, sparse=False):
    """``weight[ids]`` with Paddle's padding and sparse-gradient rules (module docstring)."""
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"Embedding input must be a Tensor of int64/int32 ids, got {type(ids).__name__}")
    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"Embedding input must hold int64 or int32 ids, got dtype {ids.dtype}")
    if padding_idx is None or padding_idx < 0:
        return F.embedding(ids, weight, sparse=sparse)
    if sparse:
        out = _SparsePaddedLookup.apply(ids, weight, int(padding_idx))
        if type(out) is torch.Tensor:
            out.__class__ = VarBase
        return out
    out = F.embedding(ids, weight)
    return out.masked_fill((ids == padding_idx).unsqueeze(-1), 0)


def padding_index(padding_idx, rows: int) -> int:
    """``padding_idx`` of a ``rows``-row table as an index >= 0 (-1: None, no padding row)."""
    if padding_idx is None:
        return -1
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, numbers.Integral):
        raise TypeError(f"padding_idx must be an int or None, got {padding_idx!r}")
    if not -rows <= padding_idx < rows:
        raise ValueError(f"padding_idx must be within [-{rows}, {rows}), got {padding_idx}")
    return int(padding_idx) if padding_idx >= 0 else rows + int(padding_idx)


class Embedding(Layer):
    """Lookup table ``[size[0], size[1]]`` named ``embedding_N.w_0``; see the module docstring."""

    def __init__(self, size, is_sparse=False, is_distributed=False, padding_idx=None, param_attr=None, dtype="float32"):
        super().__init__(dtype=dtype)
        if not isinstance(size, (list, tuple)) or len(size) != 2:
            raise ValueError(f"size must be a list of two ints [vocab_size, emb_dim], got {size!r}")
        rows = _positive_int("size[0]", size[0])
        width = _positive_int("size[1]", size[1])
        if is_distributed:
            raise ValueError("is_distributed=True (a parameter-server table) is not supported")
        self._size = [rows, width]
        self._is_sparse = check_bool("is_sparse", is_sparse)
        self._padding_idx = padding_index(padding_idx, rows)
        self.weight = self.create_parameter(shape=self._size, attr=param_attr, is_bias=False)

    def forward(self, input):
        if isinstance(input, Variable):
            return _apply_static(
                "lookup_table",
                {"W": self.weight, "Ids": input},
                {"padding_idx": self._padding_idx, "is_sparse": self._is_sparse},
                "embedding",
            )
        return embedding_lookup(input, self.weight, self._padding_idx, self._is_sparse)

    def extra_repr(self) -> str:
        return f"{self._size}, padding_idx={self._padding_idx}, is_sparse={self._is_sparse}"


class Conv2D(Layer):
    """``act(conv2d(input, weight) + bias)`` (NCHW), Paddle's ``fluid.dygraph.Conv2D``.

    ``weight``: ``[num_filters, num_channels / groups, kh, kw]`` drawn from
    ``N(0, sqrt(2 / (kh * kw * num_channels)))``; ``bias``: ``[num_filters]`` zeros added on
    dim 1. Maths: op ``conv2d`` of :mod:`torchfluid.ops.vision_ops`.
    """

    def __init__(
        self,
        num_channels,
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
        dtype="float32",
    ):
        super().__init__(dtype=dtype)
        shape, init, self._attrs = vision_ops.conv2d_layer_args(
            num_channels, num_filters, filter_size, stride, padding, dilation, groups
        )
        self._act = check_activation(act)
        self.weight = self.create_parameter(shape=shape, attr=param_attr, default_initializer=init)
        self.register_parameter("bias", self.create_parameter(shape=shape[:1], attr=bias_attr, is_bias=True))

    def forward(self, input):
        if isinstance(input, Variable):
            inputs = {"Input": input, "Filter": self.weight}
            return _static_biased("conv2d", "conv2d", inputs, self._attrs, self.bias, 1, self._act)
        out = get_op("conv2d").forward(input, self.weight, **self._attrs)
        if self.bias is not None:
            out = out + self.bias.reshape(1, -1, 1, 1)
        return apply_activation(out, self._act)


class Pool2D(Layer):
    """Max or average pooling (NCHW), Paddle's ``fluid.dygraph.Pool2D``; op ``pool2d``."""

    def __init__(
        self,
        pool_size=-1,
        pool_type="max",
        pool_stride=1,
        pool_padding=0,
        global_pooling=False,
        use_cudnn=True,
        ceil_mode=False,
        exclusive=True,
        data_format="NCHW",
    ):
        super().__init__()
        self._attrs = vision_ops.pool2d_layer_attrs(
            pool_size, pool_type, pool_stride, pool_padding, global_pooling, ceil_mode, exclusive, data_format
        )

    def forward(self, input):
        if isinstance(input, Variable):
            return _apply_static("pool2d", {"X": input}, self._attrs, "pool2d")
        return get_op("pool2d").forward(input, **self._attrs)


class BatchNorm(Layer):
    """Batch normalisation over dim 1, Paddle's ``fluid.dygraph.BatchNorm``; op ``batch_norm``.

    Parameters: ``weight`` (ones), ``bias`` (zeros), and the moving statistics ``_mean``
    (zeros, ``<name>.w_1``) and ``_variance`` (ones, ``<name>.w_2``), non-trainable
    parameters as in Paddle. Training (``layer.train()``, the default, and ``is_test`` False):
    batch statistics, and ``_mean``/``_variance`` move by ``momentum``; ``layer.eval()``,
    ``is_test`` or ``use_global_stats``: the moving statistics normalise, except that
    ``trainable_statistics=True`` keeps the batch statistics (and their moving update) in
    eval mode too, as Paddle's kernel (``use_global_stats`` still wins).
    """

    def __init__(
        self,
        num_channels,
        act=None,
        is_test=False,
        momentum=0.9,
        epsilon=1e-05,
        param_attr=None,
        bias_attr=None,
        dtype="float32",
        data_layout="NCHW",
        in_place=False,
        moving_mean_name=None,
        moving_variance_name=None,
        do_model_average_for_mean_and_var=True,
        use_global_stats=False,
        trainable_statistics=False,
    ):
        super().__init__(dtype=dtype)
        c = _positive_int("num_channels", num_channels)
        self._attrs = vision_ops.batch_norm_layer_attrs(
            momentum, epsilon, is_test, use_global_stats, data_layout, trainable_statistics
        )
        self._act = check_activation(act)
        self.weight = self.create_parameter(shape=[c], attr=param_attr, default_initializer=ConstantInitializer(1.0))
        self.register_parameter("bias", self.create_parameter(shape=[c], attr=bias_attr, is_bias=True))
        mean_attr, variance_attr = vision_ops.batch_norm_stat_attrs(moving_mean_name, moving_variance_name)
        self._mean = self.create_parameter(shape=[c], attr=mean_attr)
        self._variance = self.create_parameter(shape=[c], attr=variance_attr)

    def forward(self, input):
        if isinstance(input, Variable):
            mean, var = static_parameter(self._mean), static_parameter(self._variance)
            y = _apply_static(
                "batch_norm",
                {"X": input, "Scale": self.weight, "Bias": self.bias, "Mean": mean, "Variance": var},
                self._attrs,
                "batch_norm",
                outputs={"MeanOut": [mean], "VarianceOut": [var]},
            )[0]
            return _static_act(y, self._act)
        attrs = {**self._attrs, "is_test": self._attrs["is_test"] or not self.training}
        y, mean_out, var_out, _, _ = get_op("batch_norm").forward(
            input, self.weight, self.bias, self._mean, self._variance, **attrs
        )
        if not vision_ops.batch_norm_uses_moving(attrs):
            with torch.no_grad():
                self._mean.copy_(mean_out)
                self._variance.copy_(var_out)
        return apply_activation(y, self._act)
