"""LoD of one level (variable-length sequences) in static programs.

A LoDTensor may carry a LoD: offsets ``(0, 2, 5)`` say its rows ``0:2`` and ``2:5`` are
two sequences (:class:`~torchfluid.static.scope.LoDTensor`). ``fluid.create_lod_tensor``,
``create_random_int_lodtensor`` and ``DataFeeder`` (for ``lod_level=1`` data) make them.

How a fed LoD reaches the ops that read it: when a plan is built, :func:`lod_sources`
follows each fed variable through the ops that keep rows one to one
(:data:`torchfluid.ops.sequence_ops.LOD_PASS`: lookup_table, activations, elementwise,
mul/fc, scale, cast, dropout, ...) and their grad ops, so every variable knows which feed
its LoD comes from. At run time the executor puts the LoD of each fed LoDTensor in the
run's environment under :func:`lod_key` of the feed, and only the steps of the ops that
read a LoD (``sequence_pool`` and its grad) look it up: a program without them runs
exactly as before. Levels of two or more are not supported.
"""

from __future__ import annotations

import numpy as np

from ..ops.sequence_ops import LOD_PASS, LOD_READS
from .scope import LoDTensor

__all__ = ["create_lod_tensor", "create_random_int_lodtensor", "lod_key", "lod_sources", "LoDError"]

_GRAD = "@GRAD"


class LoDError(ValueError):
    """An op that reads a LoD gets an input that cannot carry one."""


def lod_key(name: str) -> tuple[str, str]:
    """The key of feed ``name``'s LoD offsets in a run's environment (no variable name is a tuple)."""
    return ("@LOD", name)


def lod_sources(ops, feed_names) -> dict[str, str]:
    """``{variable: the feed whose LoD it has}`` after running ``ops`` with ``feed_names`` fed.

    A fed variable is its own source; an op of :data:`LOD_PASS` gives its output slots the
    source of its input slot; a grad op ``T_grad`` gives ``S@GRAD`` the source of ``S``; any
    other op's outputs have none (``sequence_pool``'s output has one row per sequence)."""
    src = {n: n for n in feed_names}
    if not src:
        return src
    for op in ops:
        given = {}
        rule = LOD_PASS.get(op.type)
        if rule is not None:
            names = op.inputs.get(rule[0]) or ()
            s = src.get(names[0]) if names else None
            if s is not None:
                given = {n: s for slot in rule[1] for n in op.outputs.get(slot, ())}
        elif op.type.endswith("_grad"):
            for slot, gnames in op.outputs.items():
                if slot.endswith(_GRAD):
                    fwd = op.inputs.get(slot[: -len(_GRAD)], ())
                    given.update((g, src[f]) for g, f in zip(gnames, fwd, strict=False) if f in src)
        for n in op.output_arg_names:
            if n in given:
                src[n] = given[n]
            else:
                src.pop(n, None)
    return src


def lod_readers(ops, src) -> list[tuple[int, str]]:
    """``[(op index, source feed)]`` for each op that reads a LoD; an input with no source is a
    :class:`LoDError` naming the op, its input and where it was built."""
    out = []
    for i, op in enumerate(ops):
        slot = LOD_READS.get(op.type)
        if slot is None:
            continue
        names = op.inputs.get(slot) or ()
        s = src.get(names[0]) if names else None
        if s is None:
            raise LoDError(
                f"op {op.type} (built at {op.where()}) reads the LoD of its input {slot} "
                f"({names[0] if names else 'none'!r}), which does not come from a fed variable through ops that keep "
                "rows one to one (lookup_table/embedding, activations, elementwise, mul/fc, scale, cast, dropout, "
                "...): feed the sequences (a LoDTensor with sequence lengths, or a DataFeeder batch of a "
                "lod_level=1 variable) and build the op on them"
            )
        out.append((i, s))
    return out


def _tensor(arr, lens, place, what) -> LoDTensor:
    t = LoDTensor(name=what)
    t.set(arr, place)
    t.set_recursive_sequence_lengths(lens)
    return t


def create_lod_tensor(data, recursive_seq_lens, place=None):
    """A LoDTensor on ``place`` holding ``data`` split into sequences by ``recursive_seq_lens``.

    One level of sequence lengths, e.g. ``[[2, 3]]``: two sequences of 2 and 3 rows.

    ``data``: an ndarray (or LoDTensor) whose rows the lengths split; or a list with one
    entry per sequence, each a list of items (as Paddle, the items become rows of the
    array ``np.array(all items)`` with a trailing dim of 1 added; the lengths must be the
    lists' lengths). Lengths that do not fit raise ValueError; two or more levels
    NotImplementedError."""
    what = "create_lod_tensor"
    if isinstance(data, LoDTensor):
        return create_lod_tensor(np.array(data), recursive_seq_lens, place)
    if isinstance(data, list):
        check = LoDTensor(name=what)
        check.set_recursive_sequence_lengths(recursive_seq_lens)  # the type and level checks
        recursive_seq_lens = check.recursive_sequence_lengths()  # plain lists (arrays given are read once)
        if not recursive_seq_lens:
            raise ValueError(f"{what}: list data needs one level of sequence lengths, got {recursive_seq_lens!r}")
        lens = [len(seq) if isinstance(seq, (list, tuple, np.ndarray)) else None for seq in data]
        if None in lens:
            raise TypeError(f"{what}: list data must hold one list of items per sequence, got {data!r}")
        if [lens] != [list(recursive_seq_lens[0])]:
            raise ValueError(
                f"{what}: the data's sequences have lengths {[lens]} but recursive_seq_lens is {recursive_seq_lens!r}"
            )
        items = [item for seq in data for item in seq]
        try:
            arr = np.array(items)
        except ValueError as e:
            raise ValueError(f"{what}: the sequences' items do not make one array (ragged items): {e}") from e
        return _tensor(arr.reshape(arr.shape + (1,)), recursive_seq_lens, place, what)
    if isinstance(data, np.ndarray):
        if data.ndim == 0:
            raise ValueError(f"{what}: data must have at least one dim (rows), got a 0-d array")
        return _tensor(data, recursive_seq_lens, place, what)
    raise TypeError(f"{what}: data must be a LoDTensor, an ndarray or a list, got {type(data).__name__}")


def create_random_int_lodtensor(recursive_seq_lens, base_shape, place=None, low=0, high=1):
    """A LoDTensor of random int64 in ``[low, high]`` with sequence lengths ``recursive_seq_lens``.

    Drawn uniformly (both ends included) from numpy's global generator, as Paddle; the shape
    is ``[sum of the lengths] + base_shape``."""
    what = "create_random_int_lodtensor"
    if not isinstance(base_shape, (list, tuple)):
        raise TypeError(f"{what}: base_shape must be a list of ints, got {base_shape!r}")
    if (
        not isinstance(recursive_seq_lens, (list, tuple))
        or not recursive_seq_lens
        or not all(isinstance(level, (list, tuple)) for level in recursive_seq_lens)
    ):
        raise TypeError(f"{what}: recursive_seq_lens must be a list of lists of ints, got {recursive_seq_lens!r}")
    if int(low) > int(high):
        raise ValueError(f"{what}: low must be <= high, got low={low}, high={high}")
    shape = [sum(int(n) for n in recursive_seq_lens[-1])] + [int(s) for s in base_shape]
    data = np.random.randint(int(low), int(high) + 1, size=shape).astype("int64")
    return _tensor(data, recursive_seq_lens, place, what)
