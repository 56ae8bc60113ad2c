"""Scopes: where static-mode values live (``name -> torch.Tensor``).

``scope.find_var(name).get_tensor()`` gives a :class:`LoDTensor` view with Paddle's
``set(ndarray, place)``, ``shape()`` and ``np.array(tensor)``.
``scope.var(name).get_selected_rows()`` makes the entry a sparse value
(:class:`~torchfluid.ops.optimizer_ops.SelectedRows`: some rows of a ``[height, width]``
matrix) and gives its :class:`SelectedRowsView` with Paddle's ``set_height``,
``set_rows``, ``height()``, ``rows()`` and ``get_tensor()`` (the rows' values).
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


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class LoDTensor:
    """A view of one scope entry; ``np.array(t)`` copies the value out."""

    def __init__(self, scope: "Scope", name: str):
        self._scope = scope
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

    def lod(self):
        return []

    def recursive_sequence_lengths(self):
        """``[]``: torchfluid tensors carry no LoD (sequence lengths)."""
        return []

    def set_recursive_sequence_lengths(self, lens):
        if lens and not (len(lens) == 1 and all(n == 1 for n in lens[0])):
            raise NotImplementedError(
                "LoD (variable-length sequences) is not supported: pad to one length (README, 'Limits')"
            )

    def set_lod(self, lod):
        if lod:
            raise NotImplementedError("LoD (variable-length sequences) is not supported")

    def __array__(self, dtype=None, copy=None):
        a = self._value().detach().cpu().numpy().copy()
        return a if dtype is None else a.astype(dtype)

    def __repr__(self):
        return f"LoDTensor({self._name!r}, shape={self.shape() if self._is_initialized() else None})"


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

    def drop_kids(self) -> None:
        """Paddle API; this scope has no child scopes."""

    def value(self, name: str) -> torch.Tensor | SelectedRows | None:
        """The tensor (or SelectedRows) held under ``name`` (None: no such entry, or one without a value)."""
        return self._vars.get(name)

    def set_value(self, name: str, value: torch.Tensor | SelectedRows) -> None:
        """Hold ``value`` (the tensor itself, not a copy) under ``name``."""
        self._vars[name] = value


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
