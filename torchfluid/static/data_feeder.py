"""``fluid.DataFeeder``: turns a minibatch (a list of samples) into a feed dict."""

from __future__ import annotations

import numpy as np

from ..dtypes import numpy_dtype
from .framework import Variable, default_main_program

__all__ = ["DataFeeder"]


class DataFeeder:
    """``feed(minibatch)``: sample ``i`` is a tuple with one field per ``feed_list``
    variable; field columns become arrays of the variable's dtype and shape."""

    def __init__(self, feed_list, place=None, program=None):
        program = program or default_main_program()
        self.place = place
        self.feed_vars = []
        for v in feed_list:
            if isinstance(v, str):
                v = program.global_block().var(v)
            if not isinstance(v, Variable):
                raise TypeError(f"DataFeeder(feed_list=...): expected Variables or names, got {type(v).__name__}")
            self.feed_vars.append(v)

    def feed(self, iterable) -> dict:
        n = len(self.feed_vars)
        columns = [[] for _ in range(n)]
        for i, sample in enumerate(iterable):
            if len(sample) != n:
                raise ValueError(
                    f"DataFeeder.feed: sample {i} has {len(sample)} fields but feed_list has {n} variables "
                    f"({', '.join(v.name for v in self.feed_vars)})"
                )
            for col, field in zip(columns, sample, strict=True):
                col.append(field)
        out = {}
        for var, col in zip(self.feed_vars, columns, strict=True):
            arr = np.array(col, dtype=numpy_dtype(var.dtype))
            shape = list(var.shape) if var.shape is not None else None
            if shape is not None and arr.ndim != len(shape):
                target = [len(col)] + [d for d in shape[1:]]
                try:
                    arr = arr.reshape(target)
                except ValueError as e:
                    raise ValueError(
                        f"DataFeeder.feed: variable {var.name!r} is declared with shape {shape} but the "
                        f"minibatch gives shape {list(arr.shape)}"
                    ) from e
            out[var.name] = arr
        return out
