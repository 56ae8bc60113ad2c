"""Paddle dtype names (``'float32'``, ``'int64'``, ...) and their torch / numpy twins."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["convert_dtype", "to_torch_dtype", "to_numpy_dtype", "is_float_dtype"]

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
}
_FROM_TORCH = {v: k for k, v in _TORCH.items()}
_ALIASES = {"float": "float32", "double": "float64", "int": "int32", "long": "int64", "half": "float16"}


def convert_dtype(dtype) -> str:
    """Paddle's name for ``dtype`` (a name, numpy dtype/type or torch dtype)."""
    if isinstance(dtype, torch.dtype):
        name = _FROM_TORCH.get(dtype)
    elif isinstance(dtype, str):
        name = _ALIASES.get(dtype, dtype)
        name = name if name in _TORCH else None
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = None
        name = name if name in _TORCH else None
    if name is None:
        raise TypeError(
            f"dtype {dtype!r} is not supported; expected one of {', '.join(_TORCH)}"
        )
    return name


def to_torch_dtype(dtype) -> torch.dtype:
    return _TORCH[convert_dtype(dtype)]


def to_numpy_dtype(dtype) -> np.dtype:
    name = convert_dtype(dtype)
    if name == "bfloat16":
        raise TypeError("bfloat16 has no numpy dtype")
    return np.dtype(name)


def is_float_dtype(dtype) -> bool:
    return convert_dtype(dtype) in ("float16", "bfloat16", "float32", "float64")
