"""Dygraph mode entry points: ``guard``, ``to_variable``, ``no_grad`` (Paddle's ``dygraph.base``)."""

from __future__ import annotations

import numpy as np
import torch

from .. import framework
from ..dtypes import NAMES, numpy_dtype, torch_dtype
from ..framework import disable_dygraph, enable_dygraph
from .varbase import VarBase

__all__ = ["guard", "to_variable", "no_grad", "enabled", "enable_dygraph", "disable_dygraph"]

no_grad = torch.no_grad  # a context manager and a decorator (with or without parentheses)


def enabled() -> bool:
    """Alias of ``fluid.in_dygraph_mode()``."""
    return framework.in_dygraph_mode()


def guard(place=None):
    """Run the ``with`` block in dygraph mode on ``place`` (CPUPlace() by default).

    Inside, names restart (``linear_0``...) and ``fluid.in_dygraph_mode()`` is True;
    both are restored on exit.
    """
    return framework._dygraph_guard(place)


_SUPPORTED = (list, tuple, np.ndarray, torch.Tensor)
# numpy dtypes torch.from_numpy shares (native byte order; numpy has no bfloat16)
_SHAREABLE = frozenset(np.dtype(name) for name in NAMES if name != "bfloat16")


def _shareable(array: np.ndarray) -> bool:
    return array.dtype in _SHAREABLE and array.flags.writeable and all(s >= 0 for s in array.strides)


def to_variable(value, name=None, zero_copy=None, dtype=None) -> VarBase:
    """A Variable (``stop_gradient=True``) from a list, tuple, numpy array or tensor.

    A Variable is returned as it is (``dtype`` ignored, as in Paddle); a plain torch
    tensor is wrapped without copying. A numpy array on a CPU place is shared when
    ``zero_copy`` is None or True and its dtype and layout allow (else copied);
    ``zero_copy=True`` on a GPU place is an error. Unlike Paddle it also works outside
    dygraph mode (a Variable is a torch tensor either way).
    """
    place = framework._current_expected_place()
    if type(value) is np.ndarray and dtype is None and name is None and zero_copy is not False:
        if place.is_cpu_place() and _shareable(value):  # the per-step case: a numpy batch, shared
            out = torch.from_numpy(value)
            out.__class__ = VarBase  # a fresh tensor: switch its class in place
            return out
    if not isinstance(value, _SUPPORTED):
        raise TypeError(
            "The type of 'value' in fluid.dygraph.to_variable must be list, tuple, numpy.ndarray "
            f"or Tensor, but received {type(value).__name__}"
        )
    if name is not None and not isinstance(name, str):
        raise TypeError(f"to_variable: name must be a str or None, got {type(name).__name__}")
    if isinstance(value, VarBase):
        return value
    if isinstance(value, torch.Tensor):
        out = value.as_subclass(VarBase)  # an alias: the caller's tensor keeps its type
        if dtype is not None:
            out = out.to(torch_dtype(dtype))
    else:
        if zero_copy and not place.is_cpu_place():
            raise ValueError(f"to_variable: zero_copy=True works only on CPUPlace, the place is {place!r}")
        array = value if isinstance(value, np.ndarray) else np.array(value)
        if dtype is not None:
            array = array.astype(numpy_dtype(dtype), copy=False)
        if array.dtype.kind not in "biufc":
            raise TypeError(f"to_variable: value must be numeric, got numpy dtype {array.dtype}")
        share = zero_copy is not False and place.is_cpu_place() and _shareable(array)
        tensor = torch.from_numpy(array if share else np.array(array, copy=True, order="C"))
        out = tensor.to(place.device)
        out.__class__ = VarBase  # a fresh tensor: switch its class in place
    out.requires_grad_(False)
    if name:
        out.name = name
    return out
