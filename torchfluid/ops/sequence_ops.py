"""Sequence ops over one level of LoD (Paddle op types) with their grad rules, and the
table of ops that keep a LoD from an input to their outputs.

A LoD of level 1 splits the rows of a tensor into sequences: ``offsets = (0, 2, 5, 5)``
says rows ``0:2``, ``2:5`` and ``5:5`` (an empty one) are three sequences. The ops take
the offsets as the keyword ``offsets`` (a tuple of ints: the static executor passes the
LoD that came with the fed value); a tensor alone carries none.
"""

from __future__ import annotations

import math

import torch

from .registry import register

__all__ = ["POOL_TYPES", "LOD_PASS", "LOD_READS", "sequence_pool"]

POOL_TYPES = ("AVERAGE", "SUM", "SQRT", "MAX", "LAST", "FIRST")

# op type -> (input slot, output slots): ops whose output rows are the rows of that input,
# one to one, so the outputs have its LoD (Paddle's ShareLoD in their shape inference).
# A grad op ``T_grad`` gives ``S@GRAD`` the LoD of its forward input ``S``.
_X_OUT = ("X", ("Out",))
LOD_PASS: dict[str, tuple[str, tuple[str, ...]]] = {
    **dict.fromkeys(
        (
            "abs",
            "assign",
            "cast",
            "clip",
            "elu",
            "exp",
            "gelu",
            "leaky_relu",
            "log",
            "relu",
            "relu6",
            "scale",
            "sigmoid",
            "sign",
            "softmax",
            "softplus",
            "softsign",
            "sqrt",
            "square",
            "sum",
            "tanh",
            "mul",
            "elementwise_add",
            "elementwise_sub",
            "elementwise_mul",
            "elementwise_div",
            "elementwise_max",
            "elementwise_min",
            "elementwise_pow",
        ),
        _X_OUT,
    ),
    "dropout": ("X", ("Out", "Mask")),
    "lookup_table": ("Ids", ("Out",)),
    "cross_entropy": ("X", ("Y",)),
    "softmax_with_cross_entropy": ("Logits", ("Softmax", "Loss")),
    "top_k": ("X", ("Out", "Indices")),
    "batch_norm": ("X", ("Y",)),
}

# op type -> the input slot whose LoD the op reads (as its ``offsets`` keyword)
LOD_READS: dict[str, str] = {"sequence_pool": "X", "sequence_pool_grad": "X"}


def _segments(X: torch.Tensor, offsets):
    """``(rows as [n_rows, width], lengths [n_seq], segment id of each row [n_rows])``."""
    if offsets is None:
        raise ValueError(
            "sequence_pool needs the LoD (sequence offsets) of X, and a tensor alone carries none: "
            "it runs in static programs, on a fed LoDTensor (or a DataFeeder batch) with sequence lengths"
        )
    if X.dim() < 1:
        raise ValueError("sequence_pool: X must have at least one dim (rows), got a 0-d tensor")
    rows = X.shape[0]
    if len(offsets) < 2 or offsets[0] != 0 or offsets[-1] != rows:
        raise ValueError(
            f"sequence_pool: the LoD offsets {list(offsets)} do not split X's {rows} rows "
            "(they must start at 0 and end at the row count)"
        )
    width = math.prod(X.shape[1:])
    lengths = torch.tensor([b - a for a, b in zip(offsets[:-1], offsets[1:], strict=True)], device=X.device)
    seg = torch.repeat_interleave(torch.arange(len(lengths), device=X.device), lengths, output_size=rows)
    return X.reshape(rows, width), lengths, seg


def _max_pool(x2, lengths, seg, offsets):
    """Per sequence and column: the max, and the row holding it (Paddle's MaxIndex), as Paddle's
    CPU kernel scans: start at the sequence's first row, move to a later row only when its value
    is greater. So ties keep the first row; a NaN first row stays (NaN is greater than nothing)
    and a later NaN row is never taken."""
    n, rows = len(lengths), x2.shape[0]
    idx_seg = seg.unsqueeze(1).expand_as(x2)
    starts = torch.tensor(offsets[:-1], dtype=torch.int64, device=x2.device)
    first_nan = x2.isnan()[starts.clamp(0, max(rows - 1, 0))] if rows else x2.new_zeros(n, x2.shape[1], dtype=bool)
    clean = torch.where(x2.isnan(), float("-inf"), x2)
    out = clean.new_zeros(n, x2.shape[1]).scatter_reduce_(0, idx_seg, clean, "amax", include_self=False)
    row = torch.arange(rows, device=x2.device).unsqueeze(1).expand_as(x2)
    first = torch.where(clean == out[seg], row, rows)
    index = torch.full((n, x2.shape[1]), rows, dtype=torch.int64, device=x2.device)
    index.scatter_reduce_(0, idx_seg, first, "amin", include_self=True)
    out = torch.where(first_nan, float("nan"), out)
    index = torch.where(first_nan, starts.unsqueeze(1), index)
    return out, index


def _check_pooltype(pooltype):
    if pooltype not in POOL_TYPES:
        raise ValueError(f"sequence_pool: pooltype must be one of {', '.join(POOL_TYPES)}, got {pooltype!r}")


def _sequence_pool_infer(X, *, pooltype="AVERAGE", is_test=False, pad_value=0.0, offsets=None):
    _check_pooltype(pooltype)
    return X.new_empty(X.shape), X.new_empty(X.shape, dtype=torch.int32)


def _sequence_pool_grad(
    X,
    Out,
    MaxIndex,
    dOut,
    dMaxIndex=None,
    *,
    pooltype="AVERAGE",
    is_test=False,
    pad_value=0.0,
    offsets=None,
    need=(True,),
):
    x2, lengths, seg = _segments(X, offsets)
    g = dOut.reshape(len(lengths), x2.shape[1])
    if pooltype in ("SUM", "AVERAGE", "SQRT"):
        dx = g[seg]
        if pooltype != "SUM":
            h = lengths.to(g.dtype)
            dx = dx / (h if pooltype == "AVERAGE" else h.sqrt())[seg].unsqueeze(1)
    else:
        dx = torch.zeros_like(x2)
        keep = lengths > 0
        if pooltype == "MAX":
            index = MaxIndex.reshape(g.shape).long()
            picked = index >= 0
            col = torch.arange(g.shape[1], device=g.device).expand_as(g)
            dx[index[picked], col[picked]] = g[picked]
        else:
            starts = torch.tensor(offsets[:-1], device=g.device)
            pick = starts + lengths - 1 if pooltype == "LAST" else starts
            dx[pick[keep]] = g[keep]
    return (dx.reshape(X.shape),)


@register(
    "sequence_pool",
    ["Out", "MaxIndex"],
    grad=_sequence_pool_grad,
    infer=_sequence_pool_infer,
)
def sequence_pool(X, *, pooltype="AVERAGE", is_test=False, pad_value=0.0, offsets=None):
    """One row per sequence of X's LoD (``offsets``): for a sequence of rows ``x_1..x_h``

    * ``SUM``: ``sum_j x_j``; ``AVERAGE``: ``sum_j x_j / h``; ``SQRT``: ``sum_j x_j / sqrt(h)``
    * ``MAX``: ``max_j x_j`` per column, and ``MaxIndex`` the row (an index into X) of its
      first occurrence, as Paddle's CPU kernel scans (a NaN in a sequence's first row is
      kept, a NaN in a later row is skipped); ``LAST``: ``x_h``; ``FIRST``: ``x_1``

    An empty sequence (``h = 0``) gives ``pad_value`` (and MaxIndex ``-1``). Returns
    ``(Out, MaxIndex)``: Out is ``[n_seq] + X.shape[1:]``; MaxIndex (int32, same shape) is
    ``-1`` everywhere for the other pool types. The gradient goes to the rows that made
    each output: all rows of the sequence (scaled by ``1``, ``1/h`` or ``1/sqrt(h)``), the
    max row, the last or the first row."""
    _check_pooltype(pooltype)
    x2, lengths, seg = _segments(X, offsets)
    n, width = len(lengths), x2.shape[1]
    empty = lengths == 0
    index = None
    if pooltype in ("SUM", "AVERAGE", "SQRT"):
        out = x2.new_zeros(n, width).index_add_(0, seg, x2)
        if pooltype != "SUM":
            h = lengths.to(x2.dtype).clamp(min=1)
            out = out / (h if pooltype == "AVERAGE" else h.sqrt()).unsqueeze(1)
    elif pooltype == "MAX":
        out, index = _max_pool(x2, lengths, seg, offsets)
    else:
        starts = torch.tensor(offsets[:-1], device=x2.device)
        pick = starts + lengths - 1 if pooltype == "LAST" else starts
        out = x2[pick.clamp(0, max(x2.shape[0] - 1, 0))] if x2.shape[0] else x2.new_zeros(n, width)
    out = torch.where(empty.unsqueeze(1), torch.full_like(out, float(pad_value)), out)
    if index is None:
        index = torch.full((n, width), -1, dtype=torch.int32, device=x2.device)
    else:
        index = torch.where(empty.unsqueeze(1), -1, index).to(torch.int32)
    shape = (n,) + tuple(X.shape[1:])
    return out.reshape(shape), index.reshape(shape)
