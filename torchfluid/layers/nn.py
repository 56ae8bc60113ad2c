"""``fluid.layers`` network layers: data, fc, embedding, losses, softmax, accuracy."""

from __future__ import annotations

import math
import numbers

import torch

from .._checks import check_int
from ..dtypes import dtype_name
from ..dygraph.nn import padding_index
from ..static.framework import default_main_program
from ..dygraph.varbase import call_plain
from ..ops import get_op
from .helper import LayerHelper, activation_name, apply_op, dtype_of, is_static, param_attr_of
from .tensor import create_global_var

__all__ = [
    "data",
    "fc",
    "embedding",
    "square_error_cost",
    "cross_entropy",
    "softmax_with_cross_entropy",
    "softmax",
    "accuracy",
    "auc",
    "one_hot",
]


def data(name, shape, append_batch_size=True, dtype="float32", lod_level=0, type=None, stop_gradient=True):
    """A data (feed) variable in the default main program; ``[-1] + shape`` when
    ``append_batch_size`` and no dim of ``shape`` is already ``-1``/``None``.

    As in Paddle, the executor takes a fed array or tensor as it is, whatever its shape
    and dtype (Paddle's classic programs feed ``[N, T, 1]`` ids to a ``[-1, T]`` variable,
    or int64 labels to a float32 one); a nested list is converted to ``dtype``. An op that
    cannot take the value raises, naming the op. :func:`static_data` (``fluid.data``)
    checks both.

    ``lod_level=1``: the variable takes sequences (a LoDTensor with sequence lengths, or a
    DataFeeder batch); ``lod_level`` 2 and more are not supported (NotImplementedError)."""
    return _data_var(name, shape, append_batch_size, dtype, lod_level, stop_gradient, need_check_feed=False)


def _data_var(name, shape, append_batch_size, dtype, lod_level, stop_gradient, *, need_check_feed):
    if not isinstance(name, str) or not name:
        raise TypeError(f"data(name={name!r}): name must be a non-empty str")
    lod_level = check_int(f"data({name!r}): lod_level", lod_level, lo=0)
    if lod_level > 1:
        raise NotImplementedError(
            f"data({name!r}): lod_level={lod_level} is not supported; torchfluid supports lod_level 0 (dense "
            "batches) and 1 (one level of variable-length sequences)"
        )
    shape = [-1 if s is None else int(s) for s in shape]
    if any(s < 0 for s in shape):
        append_batch_size = False
    if append_batch_size:
        shape = [-1] + shape
    block = default_main_program().global_block()
    return block.create_var(
        name,
        shape,
        dtype_name(dtype),
        is_data=True,
        stop_gradient=stop_gradient,
        lod_level=lod_level,
        need_check_feed=need_check_feed,
    )


def static_data(name, shape, dtype="float32", lod_level=0):
    """``fluid.data``: like :func:`data` but the shape is used as given (None -> -1), and
    the executor checks each fed value's shape and dtype against it (a ``FeedError``)."""
    return _data_var(name, shape, False, dtype, lod_level, True, need_check_feed=True)


def fc(input, size, num_flatten_dims=1, param_attr=None, bias_attr=None, act=None, name=None):
    """``act(sum_i mul(input_i, w_i) + b)``; weights ``fc_N.w_K`` of shape
    ``[prod(input.shape[num_flatten_dims:]), size]`` (Xavier), bias ``fc_N.b_0`` (zeros)."""
    activation_name(act)
    helper = LayerHelper("fc", name)
    inputs = list(input) if isinstance(input, (list, tuple)) else [input]
    attrs = param_attr if isinstance(param_attr, (list, tuple)) else [param_attr] * len(inputs)
    if len(attrs) != len(inputs):
        raise ValueError(f"fc: {len(inputs)} inputs but {len(attrs)} param_attrs")
    muls = []
    for x, pattr in zip(inputs, attrs, strict=True):
        shape = list(x.shape)
        if not 1 <= num_flatten_dims < len(shape):
            raise ValueError(
                f"fc: num_flatten_dims={num_flatten_dims} must be in [1, {len(shape) - 1}] for input of shape {shape}"
            )
        w_shape = [math.prod(int(s) for s in shape[num_flatten_dims:]), size]
        dtype = dtype_of(x)
        w = helper.create_parameter(pattr, w_shape, dtype)
        muls.append(
            apply_op("mul", {"X": x, "Y": w}, {"x_num_col_dims": num_flatten_dims, "y_num_col_dims": 1}, helper=helper)
        )
    pre_bias = muls[0] if len(muls) == 1 else apply_op("sum", {"X": muls}, helper=helper)
    battr = param_attr_of(bias_attr, "bias_attr")
    if battr is not False:
        b = helper.create_parameter(bias_attr, [size], dtype, is_bias=True)
        pre_bias = apply_op("elementwise_add", {"X": pre_bias, "Y": b}, {"axis": num_flatten_dims}, helper=helper)
    return helper.append_activation(pre_bias, act)


def embedding(input, size, is_sparse=False, is_distributed=False, padding_idx=None, param_attr=None, dtype="float32"):
    """Rows of a ``size = [vocab, dim]`` table (``embedding_N.w_0``, Xavier) picked by
    int64 ids ``[..., 1]``; ``padding_idx`` rows are zeros (negative counts from the end)."""
    helper = LayerHelper("embedding")
    attrs = {"padding_idx": padding_index(padding_idx, int(size[0])), "is_sparse": bool(is_sparse)}
    w = helper.create_parameter(param_attr, list(size), dtype_name(dtype))
    return apply_op("lookup_table", {"W": w, "Ids": input}, attrs, helper=helper)


def _square_error(input, label):
    return get_op("square").forward(get_op("elementwise_sub").forward(input, label))


def square_error_cost(input, label):
    """``(input - label) ** 2`` element-wise (ops ``elementwise_sub`` then ``square``)."""
    if isinstance(input, torch.Tensor) and isinstance(label, torch.Tensor):  # dygraph: one dispatch hop
        return call_plain(_square_error, input, label)
    helper = LayerHelper("square_error_cost")
    minus = apply_op("elementwise_sub", {"X": input, "Y": label}, helper=helper)
    return apply_op("square", {"X": minus}, helper=helper)


def cross_entropy(input, label, soft_label=False, ignore_index=-100):
    """``-log(input[label])`` per row (input: probabilities; label int64 ``[N, 1]``)."""
    return apply_op(
        "cross_entropy",
        {"X": input, "Label": label},
        {"soft_label": bool(soft_label), "ignore_index": int(ignore_index)},
        layer_type="cross_entropy",
    )


def softmax_with_cross_entropy(
    logits, label, soft_label=False, ignore_index=-100, numeric_stable_mode=True, return_softmax=False, axis=-1
):
    """Cross entropy of ``softmax(logits)``; returns the loss (and softmax if asked)."""
    sm, loss = apply_op(
        "softmax_with_cross_entropy",
        {"Logits": logits, "Label": label},
        {
            "soft_label": bool(soft_label),
            "ignore_index": int(ignore_index),
            "numeric_stable_mode": bool(numeric_stable_mode),
            "axis": int(axis),
        },
        layer_type="softmax_with_cross_entropy",
    )
    return (loss, sm) if return_softmax else loss


def softmax(input, use_cudnn=False, name=None, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis``."""
    return apply_op("softmax", {"X": input}, {"axis": int(axis)}, name=name)


def auc(input, label, curve="ROC", num_thresholds=2**12 - 1, topk=1, slide_steps=1):
    """Paddle's ``auc``: the ROC AUC of probabilities ``input`` ``[N, C]`` (its last column is the
    positive class's probability, in ``[0, 1]``) against int ``label`` ``[N, 1]`` (> 0 positive,
    0 negative), scores binned into ``num_thresholds + 1`` buckets (op ``auc``).

    Returns ``(auc_out, batch_auc_out, [batch_stat_pos, batch_stat_neg, stat_pos, stat_neg])``:
    ``auc_out`` over every batch run so far (``stat_pos`` / ``stat_neg``: persistable int64
    counts ``[1, num_thresholds + 1]``), ``batch_auc_out`` over the last ``slide_steps``
    batches (0: every batch; their counts ``[(1 + slide_steps) * (num_thresholds + 1) + 1]``),
    both float64 ``[1]``; all counts start at 0 (the startup program). In dygraph mode the
    counts are fresh tensors, so both values are this batch's. ``topk`` is accepted and unused,
    as in Paddle; ``curve`` must be ``'ROC'`` (Paddle's kernel computes the ROC area whatever
    it says)."""
    if curve != "ROC":
        raise ValueError(f"auc: curve must be 'ROC' (the area computed is always the ROC one), got {curve!r}")
    for arg, value, lo in (("num_thresholds", num_thresholds, 1), ("slide_steps", slide_steps, 0), ("topk", topk, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
            raise ValueError(f"auc: {arg} must be an int >= {lo}, got {value!r}")
    if dtype_of(input) not in ("float32", "float64"):
        raise TypeError(f"auc: input must be float32 or float64 probabilities, got {dtype_of(input)}")
    if dtype_of(label) not in ("int32", "int64"):
        raise TypeError(f"auc: label must be int32 or int64, got {dtype_of(label)}")
    n = int(num_thresholds) + 1
    batch_size = (1 + int(slide_steps)) * n + 1
    batch_pos, batch_neg = (create_global_var([batch_size], 0, "int64", persistable=True) for _ in range(2))
    stat_pos, stat_neg = (create_global_var([1, n], 0, "int64", persistable=True) for _ in range(2))
    outs = []
    for pos, neg, steps in ((batch_pos, batch_neg, int(slide_steps)), (stat_pos, stat_neg, 0)):
        attrs = {"curve": curve, "num_thresholds": int(num_thresholds), "slide_steps": steps}
        inputs = {"Predict": input, "Label": label, "StatPos": pos, "StatNeg": neg}
        if is_static(input, label):
            helper = LayerHelper("auc")
            area = helper.tmp_var("float64", stop_gradient=True)
            apply_op(
                "auc", inputs, attrs, helper=helper, outputs={"AUC": [area], "StatPosOut": [pos], "StatNegOut": [neg]}
            )
        else:
            area, new_pos, new_neg = apply_op("auc", inputs, attrs)
            with torch.no_grad():
                pos.copy_(new_pos)
                neg.copy_(new_neg)
        outs.append(area)
    batch_auc_out, auc_out = outs
    return auc_out, batch_auc_out, [batch_pos, batch_neg, stat_pos, stat_neg]


def one_hot(input, depth, allow_out_of_range=False):
    """Paddle's ``one_hot``: int ids ``[..., 1]`` -> float32 ``[..., depth]`` with a 1 at each id.
    An id outside ``[0, depth)`` raises, or with ``allow_out_of_range=True`` gives a zero row.
    The result carries no gradient (the ids are integers)."""
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral) or depth < 1:
        raise ValueError(f"one_hot: depth must be an int >= 1, got {depth!r}")
    if not isinstance(allow_out_of_range, bool):
        raise TypeError(f"one_hot: allow_out_of_range must be a bool, got {allow_out_of_range!r}")
    helper = LayerHelper("one_hot") if is_static(input) else None
    out = apply_op(
        "one_hot", {"X": input}, {"depth": int(depth), "allow_out_of_range": allow_out_of_range}, helper=helper
    )
    if helper is not None:
        out.stop_gradient = True
    return out


def accuracy(input, label, k=1, correct=None, total=None):
    """Top-``k`` accuracy of predictions ``input`` ``[N, C]`` against ``label`` ``[N, 1]``."""
    helper = LayerHelper("accuracy") if is_static(input, label) else None
    _, idx = apply_op("top_k", {"X": input}, {"k": int(k)}, helper=helper)
    acc, c, t = apply_op("accuracy", {"Out": input, "Indices": idx, "Label": label}, helper=helper)
    for target, value in ((correct, c), (total, t)):
        if target is not None and helper is None:  # eager: fill the given tensors too
            target.copy_(value)
    return acc
