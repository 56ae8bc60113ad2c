"""Scopes: where static-mode values live (``name -> torch.Tensor``).

``scope.find_var(name).get_tensor()`` gives a :class:`LoDTensor` view with Paddle's
``set(ndarray, place)``, ``shape()``, ``np.array(tensor)`` and a LoD of one level
(``set_recursive_sequence_lengths``, ``set_lod``, ``lod()``, ...), held next to the value.
``scope.var(name).get_selected_rows()`` makes the entry a sparse value
(:class:`~torchfluid.ops.optimizer_ops.SelectedRows`: some rows of a ``[height, width]``
matrix) and gives its :class:`SelectedRowsView` with Paddle's ``set_height``,
``set_rows``, ``height()``, ``rows()``, ``sync_index()`` and ``get_tensor()`` (the rows' values).
``set`` stores a copy of a tensor or of numbers (an ndarray or nested lists of bool, int,
float or complex; a big-endian array in native byte order); anything else is refused
before the old value is touched.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from .._checks import ArgumentTypeError, check_int
from ..dtypes import dtype_name
from ..ops.optimizer_ops import SelectedRows
from ..places import to_place

__all__ = [
    "Scope",
    "ScopeVar",
    "LoDTensor",
    "SelectedRowsView",
    "global_scope",
    "scope_guard",
    "place_device",
    "offsets_of",
    "lengths_of",
    "lod_problem",
]


def place_device(place) -> torch.device:
    """The torch device of ``place``: None is the CPU, anything else goes through
    :func:`torchfluid.framework.to_place` (a Place, a ``torch.device``, ``'cpu'``, ``'gpu:N'``; a GPU
    place this process cannot use raises ``RuntimeError``)."""
    return torch.device("cpu") if place is None else to_place(place).device


def _stored(what: str, value, place) -> torch.Tensor:
    """A copy of ``value`` (a tensor, ndarray, number or nested list of numbers) on ``place``,
    for ``what`` (the variable): anything else, and a meta tensor (no data), is an
    ArgumentTypeError (a TypeError and a ValueError) naming it."""
    if isinstance(value, torch.Tensor):
        if value.is_meta:
            raise ArgumentTypeError(f"{what}: a meta tensor holds no data; allowed: a tensor with values")
        return value.detach().clone().to(place_device(place))
    try:
        a = np.array(value, copy=True)
    except (TypeError, ValueError) as e:  # ragged nested lists
        raise ArgumentTypeError(f"{what}: cannot hold {type(value).__name__} {_short(value)}: {e}") from None
    if a.dtype.kind not in "biufc":
        raise ArgumentTypeError(
            f"{what}: cannot hold {type(value).__name__} {_short(value)} (numpy dtype {a.dtype}); "
            "allowed: a tensor, an ndarray or (nested lists of) bool, int, float or complex numbers"
        )
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return torch.from_numpy(a).to(place_device(place))


def offsets_of(lengths) -> tuple[int, ...]:
    """Sequence lengths ``[2, 3]`` as offsets ``(0, 2, 5)``."""
    out = [0]
    for n in lengths:
        out.append(out[-1] + n)
    return tuple(out)


def lengths_of(offsets) -> list[int]:
    """Offsets ``(0, 2, 5)`` as sequence lengths ``[2, 3]``."""
    return [b - a for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def lod_problem(offsets, rows: int | None) -> str | None:
    """What is wrong with level-1 LoD ``offsets`` for a value of ``rows`` rows (None: no value
    yet, the row count is not checked), as Paddle's ``CheckLoD``; None when it is valid."""
    if len(offsets) < 2:
        return f"the offsets {list(offsets)} need at least two entries (0 and the row count)"
    if offsets[0] != 0:
        return f"the offsets {list(offsets)} must start at 0"
    if any(b < a for a, b in zip(offsets[:-1], offsets[1:], strict=True)):
        return f"the offsets {list(offsets)} decrease"
    if rows is not None and rows > 0 and offsets[-1] != rows:
        return f"the offsets {list(offsets)} end at row {offsets[-1]} but the tensor has {rows} rows"
    return None


def _one_level(what: str, lod, kind: str) -> tuple[int, ...] | None:
    """The one level of ``lod`` (a list of lists of ints) as a tuple; None for ``[]``. As
    Paddle's binding takes any sequences, a level may be a 1-d int array and ``lod`` a 2-d one."""
    if isinstance(lod, np.ndarray) and lod.ndim == 2:
        lod = list(lod)
    if isinstance(lod, (list, tuple)):
        lod = [
            lv.tolist() if isinstance(lv, np.ndarray) and lv.ndim == 1 and lv.dtype.kind in "iu" else lv for lv in lod
        ]
    if not isinstance(lod, (list, tuple)) or not all(isinstance(level, (list, tuple)) for level in lod):
        raise TypeError(f"{what}: expected a list of lists of ints ({kind}), got {lod!r}")
    if not lod:
        return None
    if len(lod) > 1:
        raise NotImplementedError(
            f"{what}: a LoD of {len(lod)} levels ({lod!r}) is not supported; torchfluid supports one level "
            "(sequences of rows, e.g. [[2, 3]]) or none"
        )
    level = lod[0]
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in level):
        raise TypeError(f"{what}: the {kind} must be ints, got {level!r}")
    return tuple(int(n) for n in level)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class LoDTensor:
    """A view of one scope entry; ``np.array(t)`` copies the value out.

    ``LoDTensor()`` makes a stand-alone tensor (its own scope), as ``fluid.LoDTensor()`` does.
    Besides its value it may hold a LoD of one level: ``set_recursive_sequence_lengths([[2, 3]])``
    (sequence lengths) or ``set_lod([[0, 2, 5]])`` (offsets) say rows ``0:2`` and ``2:5`` are two
    sequences. Both are checked as Paddle's ``CheckLoD`` does (offsets start at 0, never decrease,
    end at the row count of the value, if set) and raise ValueError otherwise; a LoD of two or
    more levels raises NotImplementedError. ``set`` keeps the LoD (as Paddle's does): a value of
    another row count makes it invalid, which ``has_valid_recursive_sequence_lengths`` reports
    and feeding the tensor refuses.
    """

    def __init__(self, scope: "Scope | None" = None, name: str = "lod_tensor"):
        self._scope = Scope() if scope is None else scope
        self._name = name

    def _value(self) -> torch.Tensor:
        t = self._scope.value(self._name)
        if t is None:
            raise RuntimeError(f"variable {self._name!r} holds no tensor yet (run the startup program?)")
        if isinstance(t, SelectedRows):
            raise TypeError(
                f"variable {self._name!r} holds a SelectedRows (sparse rows), not a dense tensor; "
                "read it with get_selected_rows()"
            )
        return t

    def _is_initialized(self) -> bool:
        return self._scope.value(self._name) is not None

    def set(self, value, place=None) -> None:
        """Store a copy of ``value`` (ndarray, tensor or nested list of numbers) on ``place``."""
        self._scope.set_value(self._name, _stored(f"variable {self._name!r}", value, place))

    def shape(self) -> list[int]:
        return list(self._value().shape)

    def _dtype(self) -> str:
        return dtype_name(self._value().dtype)

    def _rows(self) -> int | None:
        t = self._scope.value(self._name)
        return t.shape[0] if isinstance(t, torch.Tensor) and t.dim() else None

    def lod(self) -> list[list[int]]:
        """The LoD as offsets (``[[0, 2, 5]]``); ``[]`` when the tensor has none."""
        offsets = self._scope.lod(self._name)
        return [list(offsets)] if offsets is not None else []

    def recursive_sequence_lengths(self) -> list[list[int]]:
        """The LoD as sequence lengths (``[[2, 3]]``); ``[]`` when the tensor has none."""
        offsets = self._scope.lod(self._name)
        return [lengths_of(offsets)] if offsets is not None else []

    def set_lod(self, lod) -> None:
        """Set the LoD from offsets (``[[0, 2, 5]]``; ``[]`` removes it)."""
        offsets = _one_level(f"LoDTensor {self._name!r}: set_lod", lod, "offsets")
        if offsets is not None:
            problem = lod_problem(offsets, self._rows())
            if problem:
                raise ValueError(f"LoDTensor {self._name!r}: set_lod({lod!r}): {problem}")
        self._scope.set_lod(self._name, offsets)

    def set_recursive_sequence_lengths(self, lens) -> None:
        """Set the LoD from sequence lengths (``[[2, 3]]``; ``[]`` removes it)."""
        lengths = _one_level(f"LoDTensor {self._name!r}: set_recursive_sequence_lengths", lens, "lengths")
        offsets = None
        if lengths is not None:
            if any(n < 0 for n in lengths):
                raise ValueError(
                    f"LoDTensor {self._name!r}: set_recursive_sequence_lengths({lens!r}): a sequence length is negative"
                )
            offsets = offsets_of(lengths)
            problem = lod_problem(offsets, self._rows())
            if problem:
                raise ValueError(f"LoDTensor {self._name!r}: set_recursive_sequence_lengths({lens!r}): {problem}")
        self._scope.set_lod(self._name, offsets)

    def has_valid_recursive_sequence_lengths(self) -> bool:
        """Whether the LoD (if any) fits the value: offsets from 0, never decreasing, ending at
        the row count (Paddle's ``CheckLoD``)."""
        offsets = self._scope.lod(self._name)
        return offsets is None or lod_problem(offsets, self._rows()) is None

    def __array__(self, dtype=None, copy=None):
        a = self._value().detach().cpu().numpy().copy()
        return a if dtype is None else a.astype(dtype)

    def __repr__(self):
        lod = self.lod()
        extra = f", lod={lod}" if lod else ""
        return f"LoDTensor({self._name!r}, shape={self.shape() if self._is_initialized() else None}{extra})"


class _RowsValue(LoDTensor):
    """``get_tensor()`` of a SelectedRows: the ``[len(rows), width]`` values of its rows."""

    def __init__(self, rows: SelectedRows, name: str):
        self._rows = rows
        self._name = name

    def _value(self) -> torch.Tensor:
        if self._rows.value is None:
            raise RuntimeError(f"the SelectedRows {self._name!r} holds no value tensor yet (set it first)")
        return self._rows.value

    def _is_initialized(self) -> bool:
        return self._rows.value is not None

    def lod(self) -> list[list[int]]:
        return []

    def recursive_sequence_lengths(self) -> list[list[int]]:
        return []

    def has_valid_recursive_sequence_lengths(self) -> bool:
        return True

    def set_lod(self, lod) -> None:
        raise TypeError(f"SelectedRows {self._name!r}: the values of a SelectedRows hold no LoD")

    set_recursive_sequence_lengths = set_lod

    def set(self, value, place=None) -> None:
        """Store a copy of ``value`` (one row per row index, at least 1-D) on ``place``."""
        t = _stored(f"SelectedRows {self._name!r}", value, place)
        if t.dim() < 1:
            raise ValueError(f"SelectedRows {self._name!r}: the value must be at least 1-D (one row per index)")
        self._rows.value = t


class SelectedRowsView:
    """Paddle's ``SelectedRows`` API on one scope entry (see the module docstring)."""

    def __init__(self, rows: SelectedRows, name: str):
        self._rows = rows
        self._name = name

    def set_height(self, height) -> None:
        self._rows.height = check_int("height", height, lo=0)

    def height(self) -> int:
        return self._rows.height

    def set_rows(self, rows) -> None:
        """The row indices (ints, may repeat, any order)."""
        idx = np.asarray(rows)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise TypeError(f"SelectedRows {self._name!r}: rows must be a 1-D sequence of ints, got {rows!r}")
        self._rows.rows = [int(r) for r in idx]

    def rows(self) -> list[int]:
        return list(self._rows.rows)

    def sync_index(self) -> None:
        """Paddle rebuilds its row -> value-position map here (what ``sgd`` on a SelectedRows
        ``Param`` looks rows up in). torchfluid's SelectedRows computes that map from
        ``rows()`` at each use (:meth:`~torchfluid.ops.optimizer_ops.SelectedRows.row_index`:
        the last position of a repeated row, as Paddle's), so it is always in sync and this
        call has nothing left to do."""

    def get_tensor(self) -> LoDTensor:
        return _RowsValue(self._rows, self._name)

    def numel(self) -> int:
        return 0 if self._rows.value is None else self._rows.value.numel()


class ScopeVar:
    """What ``find_var``/``var`` return: a handle on one name."""

    def __init__(self, scope: "Scope", name: str):
        self._scope, self._name = scope, name

    def get_tensor(self) -> LoDTensor:
        return LoDTensor(self._scope, self._name)

    def get_selected_rows(self) -> SelectedRowsView:
        """The entry as a SelectedRows (an empty one is made when the entry holds nothing)."""
        v = self._scope.value(self._name)
        if v is None:
            v = SelectedRows()
            self._scope.set_value(self._name, v)
        elif not isinstance(v, SelectedRows):
            raise TypeError(
                f"variable {self._name!r} holds a dense tensor, not a SelectedRows; read it with get_tensor()"
            )
        return SelectedRowsView(v, self._name)

    def is_initialized(self) -> bool:
        return self._scope.value(self._name) is not None


class Scope:
    """``name -> torch.Tensor``. The executor reads and writes persistables here."""

    def __init__(self):
        self._vars: dict[str, torch.Tensor | None] = {}
        self._lods: dict[str, tuple[int, ...]] = {}

    def var(self, name: str) -> ScopeVar:
        if not isinstance(name, str):
            raise TypeError(f"Scope.var: name must be a str, got {name!r}")
        self._vars.setdefault(name, None)
        return ScopeVar(self, name)

    def find_var(self, name: str) -> ScopeVar | None:
        return ScopeVar(self, name) if name in self._vars else None

    def local_var_names(self) -> list[str]:
        return list(self._vars)

    def erase(self, names) -> None:
        for n in names:
            self._vars.pop(n, None)
            self._lods.pop(n, None)

    def drop_kids(self) -> None:
        """Paddle API; this scope has no child scopes."""

    def value(self, name: str) -> torch.Tensor | SelectedRows | None:
        """The tensor (or SelectedRows) held under ``name`` (None: no such entry, or one without a value)."""
        return self._vars.get(name)

    def set_value(self, name: str, value: torch.Tensor | SelectedRows) -> None:
        """Hold ``value`` (the tensor itself, not a copy) under ``name``."""
        self._vars[name] = value

    def lod(self, name: str) -> tuple[int, ...] | None:
        """The level-1 LoD offsets held with ``name``'s value (None: none)."""
        return self._lods.get(name)

    def set_lod(self, name: str, offsets: tuple[int, ...] | None) -> None:
        """Hold LoD ``offsets`` with ``name``'s value (None removes it); the caller checked them."""
        if offsets is None:
            self._lods.pop(name, None)
        else:
            self._lods[name] = tuple(offsets)


_global_scope = Scope()


def global_scope() -> Scope:
    return _global_scope


@contextlib.contextmanager
def scope_guard(scope: Scope):
    """Make ``scope`` the global scope in the body."""
    global _global_scope
    if not isinstance(scope, Scope):
        raise TypeError(f"scope_guard: scope must be a Scope, got {type(scope).__name__}")
    old, _global_scope = _global_scope, scope
    try:
        yield
    finally:
        _global_scope = old
