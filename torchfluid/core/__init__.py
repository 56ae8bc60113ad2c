"""``fluid.core``: the basics every fluid program imports from Paddle's C++ core.

Places are torch devices (:mod:`torchfluid.framework`), a :class:`Scope` holds static-mode
values, ``VarBase`` is the dygraph Variable class (``isinstance(v, core.VarBase)``),
``LoDTensor`` is a view on one scope entry (with a one-level LoD, the sequence
lengths, where one was fed or set: see :mod:`torchfluid.static.lod`).
"""

import torch

from ..framework import CPUPlace, CUDAPinnedPlace, CUDAPlace, Place
from ..dygraph.varbase import VarBase
from ..ops import GRAD_SUFFIX
from ..static.scope import LoDTensor, Scope
from .._unsupported import fluid_module_getattr

__all__ = [
    "CPUPlace",
    "CUDAPlace",
    "CUDAPinnedPlace",
    "Place",
    "Scope",
    "LoDTensor",
    "VarBase",
    "grad_var_suffix",
    "is_compiled_with_cuda",
    "is_compiled_with_rocm",
    "is_compiled_with_xpu",
    "get_cuda_device_count",
]


def grad_var_suffix() -> str:
    """``'@GRAD'``: the suffix of a variable's gradient in a program (``w`` -> ``w@GRAD``)."""
    return GRAD_SUFFIX


def is_compiled_with_cuda() -> bool:
    """True when torch can use a CUDA GPU here (Paddle: a CUDA build)."""
    return torch.cuda.is_available()


def is_compiled_with_rocm() -> bool:
    """True when torch is a ROCm build with a usable GPU."""
    return torch.cuda.is_available() and torch.version.hip is not None


def is_compiled_with_xpu() -> bool:
    """Always False: Baidu XPUs are not supported."""
    return False


def get_cuda_device_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


# a fluid.core name torchfluid does not implement: say so, and what to use instead
__getattr__ = fluid_module_getattr("fluid.core", __name__)
