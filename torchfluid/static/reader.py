"""``paddle.batch``: group a sample reader's items into minibatches."""

from __future__ import annotations

import numbers

__all__ = ["batch"]


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
