"""Paddle dtype names (``'float32'``, ``'int64'``, ...) and their torch / numpy twins.

Every spelling a user may pass -- a Paddle name or alias (``'float'``, ``'long'``; any
case), a numpy dtype or type, a torch dtype -- goes through :func:`dtype_name`, which
returns the Paddle name; :func:`torch_dtype` and :func:`numpy_dtype` map that name on.
An unsupported dtype raises ``TypeError`` naming the argument and the allowed names.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["NAMES", "dtype_name", "torch_dtype", "numpy_dtype", "is_float_dtype"]

_TORCH = {
    "bool": torch.bool,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
    "complex64": torch.complex64,
    "complex128": torch.complex128,
}
NAMES = tuple(_TORCH)
_FROM_TORCH = {v: k for k, v in _TORCH.items()}
_ALIASES = {"float": "float32", "double": "float64", "int": "int32", "long": "int64", "half": "float16"}
_FLOATS = ("float16", "bfloat16", "float32", "float64")


def dtype_name(dtype, argname: str = "dtype") -> str:
    """Paddle's name for ``dtype`` (a name or alias, a numpy dtype/type, or a torch dtype).

    >>> dtype_name(torch.float32), dtype_name("Long"), dtype_name(np.dtype("f8"))
    ('float32', 'int64', 'float64')
    """
    if isinstance(dtype, torch.dtype):
        name = _FROM_TORCH.get(dtype)
    elif isinstance(dtype, str):
        name = _ALIASES.get(dtype.lower(), dtype.lower())
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            raise TypeError(
                f"{argname} must be a dtype name, numpy dtype or torch dtype, got {type(dtype).__name__}"
            ) from None
    if name not in _TORCH:
        raise TypeError(f"{argname} must be one of {sorted(_TORCH)}, got {dtype!r}")
    return name


def torch_dtype(dtype, argname: str = "dtype") -> torch.dtype:
    """The ``torch.dtype`` for any spelling :func:`dtype_name` accepts."""
    return _TORCH[dtype_name(dtype, argname)]


def numpy_dtype(dtype, argname: str = "dtype") -> np.dtype:
    """The numpy dtype for any spelling :func:`dtype_name` accepts (bfloat16 has none: ``TypeError``)."""
    name = dtype_name(dtype, argname)
    if name == "bfloat16":
        raise TypeError(f"{argname}: bfloat16 has no numpy dtype")
    return np.dtype(name)


def is_float_dtype(dtype) -> bool:
    """Whether ``dtype`` is a real floating-point dtype (float16, bfloat16, float32, float64)."""
    return dtype_name(dtype) in _FLOATS
