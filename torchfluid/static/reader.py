"""``paddle.batch``: group a sample reader's items into minibatches; ``fluid.io.PyReader``."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["batch", "PyReader"]


def batch(reader, batch_size, drop_last=False):
    """A reader yielding lists of ``batch_size`` samples (the last one shorter unless
    ``drop_last``)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size <= 0:
        raise ValueError(f"batch_size should be a positive integer, but got batch_size={batch_size!r}")
    if not callable(reader):
        raise TypeError(f"batch(reader=...): expected a callable returning an iterator, got {type(reader).__name__}")

    def batch_reader():
        b = []
        for sample in reader():
            b.append(sample)
            if len(b) == batch_size:
                yield b
                b = []
        if b and not drop_last:
            yield b

    return batch_reader


class PyReader:
    """``fluid.io.PyReader`` (iterable form): batches from a Python generator.

    ``decorate_sample_list_generator(reader)``: ``reader()`` yields minibatches (lists of
    samples, one field per input); ``decorate_batch_generator(reader)``: it yields tuples
    of arrays, one per input; ``decorate_sample_generator(gen, batch_size, drop_last)``:
    ``gen()`` yields single samples. Iterating the PyReader yields, per batch, a list of
    dygraph Variables in dygraph mode (or with ``return_list=True``), else a list holding one
    feed dict ``{feed_list[i].name: array}`` for ``Executor.run`` (Paddle's one-place form).
    Sample fields are stacked with ``np.stack``; no threads, no queue (``capacity`` is
    accepted and unused).
    """

    def __init__(self, feed_list=None, capacity=None, use_double_buffer=True, iterable=True, return_list=False):
        if not iterable:
            raise ValueError(
                "PyReader(iterable=False) (start()/reset() with a queue) is not supported; "
                "use the iterable form: for data in reader(): ..."
            )
        self._feed_list = list(feed_list or [])
        self._return_list = bool(return_list)
        self._batches = None

    def decorate_sample_list_generator(self, reader, places=None):
        if not callable(reader):
            raise TypeError(f"PyReader: reader must be callable, got {type(reader).__name__}")

        def batches():
            for samples in reader():
                fields = list(zip(*samples, strict=True))
                yield [np.stack([np.asarray(v) for v in f]) for f in fields]

        self._batches = batches
        return self

    def decorate_batch_generator(self, reader, places=None):
        if not callable(reader):
            raise TypeError(f"PyReader: reader must be callable, got {type(reader).__name__}")
        self._batches = lambda: ([np.asarray(a) for a in b] for b in reader())
        return self

    def decorate_sample_generator(self, sample_generator, batch_size, drop_last=True, places=None):
        return self.decorate_sample_list_generator(batch(sample_generator, batch_size, drop_last), places)

    def __call__(self):
        if self._batches is None:
            raise RuntimeError("PyReader: call one of the decorate_*_generator methods before iterating")
        from ..framework import in_dygraph_mode

        dygraph = in_dygraph_mode() or self._return_list or not self._feed_list
        for arrays in self._batches():
            if dygraph:
                from ..dygraph.base import to_variable

                yield [to_variable(a) for a in arrays]
            else:
                if len(arrays) != len(self._feed_list):
                    raise ValueError(
                        f"PyReader: a batch has {len(arrays)} fields, feed_list has {len(self._feed_list)} variables"
                    )
                yield [{v if isinstance(v, str) else v.name: a for v, a in zip(self._feed_list, arrays, strict=True)}]

    __iter__ = __call__
