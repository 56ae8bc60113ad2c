"""``fluid.layers`` sequence layers over a LoD of one level (static programs only).

The input's LoD comes with the fed value (a LoDTensor with sequence lengths, or a
DataFeeder batch of ``lod_level=1`` data) through the ops that keep rows one to one
(embedding, activations, fc, ...); see :mod:`torchfluid.static.lod`.
"""

from __future__ import annotations

from .._unsupported import UnsupportedFluidAPIError
from ..ops.sequence_ops import POOL_TYPES
from .helper import LayerHelper, apply_op, is_static

__all__ = ["sequence_pool", "sequence_first_step", "sequence_last_step"]


def sequence_pool(input, pool_type, is_test=False, pad_value=0.0):
    """One row per sequence of ``input``'s LoD, pooled by ``pool_type``.

    ``pool_type`` (any case), for a sequence of rows ``x_1..x_h``: ``sum`` (``sum_j x_j``),
    ``average`` (``sum_j x_j / h``), ``sqrt`` (``sum_j x_j / sqrt(h)``), ``max`` (per column),
    ``last`` (``x_h``) or ``first`` (``x_1``); an empty sequence gives ``pad_value``. The output
    ``[n_seq] + input.shape[1:]`` has no LoD. Static programs only: an eager (dygraph) tensor
    carries no LoD."""
    if not is_static(input):
        raise UnsupportedFluidAPIError(
            "fluid.layers.sequence_pool works in static programs only: an eager (dygraph) tensor carries no LoD "
            "(sequence lengths); in dygraph mode pad the sequences to one length and reduce over the time axis "
            "with a mask (README, 'Limits')"
        )
    kind = pool_type.upper() if isinstance(pool_type, str) else None
    if kind not in POOL_TYPES:
        raise ValueError(
            f"sequence_pool: pool_type must be one of {', '.join(t.lower() for t in POOL_TYPES)}, got {pool_type!r}"
        )
    if input.dtype not in ("float32", "float64"):
        raise TypeError(f"sequence_pool: input {input.name!r} must be float32 or float64, got {input.dtype}")
    helper = LayerHelper("sequence_pool")
    shape = (-1,) + tuple(input.shape[1:])
    out = helper.tmp_var(input.dtype)
    index = helper.tmp_var("int32", stop_gradient=True)
    out.shape = index.shape = shape
    attrs = {"pooltype": kind, "is_test": bool(is_test), "pad_value": float(pad_value)}
    apply_op("sequence_pool", {"X": input}, attrs, helper=helper, outputs={"Out": [out], "MaxIndex": [index]})
    return out


def sequence_first_step(input):
    """The first row of each sequence: ``sequence_pool(input, 'first')``."""
    return sequence_pool(input, "first")


def sequence_last_step(input):
    """The last row of each sequence: ``sequence_pool(input, 'last')``."""
    return sequence_pool(input, "last")
