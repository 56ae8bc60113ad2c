"""``fluid.create_lod_tensor`` / ``create_random_int_lodtensor`` for the one LoD case that is
a plain dense batch: every sequence of length 1 (``recursive_seq_lens=[[1, 1, ...]]``).

Variable-length sequences (any other lengths) are not supported: they raise an error
saying to pad to one length (README, "Limits").
"""

from __future__ import annotations

import numpy as np
import torch

from .._unsupported import UnsupportedFluidAPIError
from .scope import LoDTensor, Scope

__all__ = ["create_lod_tensor", "create_random_int_lodtensor"]


def _rows(recursive_seq_lens, what) -> int:
    if not isinstance(recursive_seq_lens, (list, tuple)) or not all(
        isinstance(level, (list, tuple)) for level in recursive_seq_lens
    ):
        raise TypeError(f"{what}: recursive_seq_lens must be a list of lists of ints, got {recursive_seq_lens!r}")
    if len(recursive_seq_lens) != 1 or any(n != 1 for n in recursive_seq_lens[0]):
        raise UnsupportedFluidAPIError(
            f"{what}: recursive_seq_lens={recursive_seq_lens!r} describes variable-length sequences (LoD), which "
            "torchfluid does not support; only one level of length-1 sequences ([[1, 1, ...]], a plain batch) is "
            "accepted. Pad sequences to one length and feed dense tensors (README, 'Limits')"
        )
    return len(recursive_seq_lens[0])


def _tensor(value) -> LoDTensor:
    scope = Scope()
    t = LoDTensor(scope, "lod_tensor")
    t.set(value)
    return t


def create_lod_tensor(data, recursive_seq_lens, place=None):
    """``data`` (ndarray, list of rows or LoDTensor) as a LoDTensor of length-1 sequences."""
    rows = _rows(recursive_seq_lens, "create_lod_tensor")
    arr = np.array(data) if isinstance(data, LoDTensor) else np.asarray(data)
    if arr.ndim == 0 or arr.shape[0] != rows:
        raise ValueError(
            f"create_lod_tensor: data has {arr.shape[0] if arr.ndim else 0} rows, recursive_seq_lens gives {rows}"
        )
    return _tensor(arr)


def create_random_int_lodtensor(recursive_seq_lens, base_shape, place=None, low=0, high=1):
    """A LoDTensor ``[rows] + base_shape`` of int64 drawn uniformly from ``[low, high]``
    (both ends included, as Paddle; the torch RNG)."""
    rows = _rows(recursive_seq_lens, "create_random_int_lodtensor")
    if int(low) > int(high):
        raise ValueError(f"create_random_int_lodtensor: low must be <= high, got low={low}, high={high}")
    shape = [rows] + [int(s) for s in base_shape]
    return _tensor(torch.randint(int(low), int(high) + 1, shape, dtype=torch.int64).numpy())
