"""``fluid.DataFeeder``: turns a minibatch (a list of samples) into a feed dict."""

from __future__ import annotations

import numpy as np

from .._checks import check_int
from ..dtypes import numpy_dtype
from ..places import to_place
from .framework import Variable, default_main_program
from .scope import LoDTensor

__all__ = ["DataFeeder"]


class DataFeeder:
    """``feed(minibatch)``: sample ``i`` is a tuple with one field per ``feed_list``
    variable; field columns become arrays of the variable's dtype and shape.

    For a variable of ``lod_level=1`` each field is one sequence (a list or array of items,
    each an item of the variable's shape without its first dim): the items of all samples
    become the rows of one array, and the feed is a LoDTensor whose sequence lengths are
    the fields' lengths (``[[len(field) for each sample]]``). ``lod_level`` 2 and more are
    not supported (NotImplementedError when the feeder is made)."""

    def __init__(self, feed_list, place=None, program=None):
        program = program or default_main_program()
        if place is not None:
            to_place(place, "DataFeeder: place")  # a junk place fails here, not at the first feed
        self.place = place
        self.feed_vars = []
        if not isinstance(feed_list, (list, tuple)):
            raise TypeError(
                f"DataFeeder(feed_list=...): expected a list of Variables or names, got {type(feed_list).__name__}"
            )
        for v in feed_list:
            if isinstance(v, str):
                v = program.global_block().var(v)
            if not isinstance(v, Variable):
                raise TypeError(f"DataFeeder(feed_list=...): expected Variables or names, got {type(v).__name__}")
            level = check_int(f"DataFeeder: variable {v.name!r} lod_level", v.lod_level, lo=0)
            if level > 1:
                raise NotImplementedError(
                    f"DataFeeder: variable {v.name!r} has lod_level={level}, which is not supported; torchfluid "
                    "supports lod_level 0 (dense batches) and 1 (one level of variable-length sequences)"
                )
            self.feed_vars.append(v)

    def feed(self, iterable) -> dict:
        if isinstance(iterable, (str, bytes)) or not hasattr(iterable, "__iter__"):
            raise TypeError(
                f"DataFeeder.feed: the minibatch must be an iterable of samples (a list of tuples), "
                f"got {type(iterable).__name__}"
            )
        n = len(self.feed_vars)
        columns = [[] for _ in range(n)]
        for i, sample in enumerate(iterable):
            if not isinstance(sample, (list, tuple, np.ndarray)):
                raise TypeError(
                    f"DataFeeder.feed: sample {i} must be a tuple or list with one field per feed_list variable "
                    f"({', '.join(v.name for v in self.feed_vars)}), got {type(sample).__name__} {sample!r}"
                )
            if len(sample) != n:
                raise ValueError(
                    f"DataFeeder.feed: sample {i} has {len(sample)} fields but feed_list has {n} variables "
                    f"({', '.join(v.name for v in self.feed_vars)})"
                )
            for col, field in zip(columns, sample, strict=True):
                col.append(field)
        out = {}
        for var, col in zip(self.feed_vars, columns, strict=True):
            if var.lod_level == 1:
                out[var.name] = self._sequences(var, col)
            else:
                out[var.name] = _shaped(var, _array(var, col, "the samples' fields"), len(col))
        return out

    def _sequences(self, var, col) -> LoDTensor:
        if not col:
            raise ValueError(
                f"DataFeeder.feed: variable {var.name!r} has lod_level=1 but the minibatch has no samples, and a LoD "
                "needs at least one sequence (an empty sequence is a sample whose field is [])"
            )
        lengths, items = [], []
        for i, seq in enumerate(col):
            if not isinstance(seq, (list, tuple, np.ndarray)) or (isinstance(seq, np.ndarray) and seq.ndim == 0):
                raise ValueError(
                    f"DataFeeder.feed: variable {var.name!r} has lod_level=1, so each sample's field must be a "
                    f"sequence (a list or array of items), but sample {i} gives {type(seq).__name__} {seq!r}"
                )
            lengths.append(len(seq))
            items.extend(seq)
        arr = _shaped(var, _array(var, items, "the sequences' items"), len(items))
        t = LoDTensor(name=var.name)
        t.set(arr, self.place)
        t.set_recursive_sequence_lengths([lengths])
        return t


def _array(var, values, what):
    """``values`` as one array of ``var``'s dtype; ragged values are a ValueError naming ``var``."""
    try:
        return np.array(values, dtype=numpy_dtype(var.dtype))
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"DataFeeder.feed: variable {var.name!r} ({var.dtype}, shape {list(var.shape or [])}): {what} do not "
            f"make one {var.dtype} array (ragged, or not numbers): {e}"
        ) from e


def _shaped(var, arr, rows):
    """``arr`` reshaped to ``[rows] + var.shape[1:]`` when its rank differs from the variable's."""
    shape = list(var.shape) if var.shape is not None else None
    if shape is not None and arr.ndim != len(shape):
        try:
            arr = arr.reshape([rows] + shape[1:])
        except ValueError as e:
            raise ValueError(
                f"DataFeeder.feed: variable {var.name!r} is declared with shape {shape} but the "
                f"minibatch gives shape {list(arr.shape)}"
            ) from e
    return arr
