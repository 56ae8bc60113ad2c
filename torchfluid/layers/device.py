"""``fluid.layers.device``: ``get_places``, the places a ``ParallelDo`` runs its block on.

Paddle's ``get_places`` appends a ``get_places`` op whose list is made when the program
runs. torchfluid unrolls a ``ParallelDo`` block once per place when the program is built,
so the list is made at once: ``get_places`` returns a :class:`PlaceList` (a tuple of places).

Any other name of this module raises an error saying what to use instead.
"""

from __future__ import annotations

import os

import torch

from .._checks import check_int
from .._unsupported import unsupported_module_getattr
from ..places import CPUPlace, CUDAPlace, Place, to_place

__all__ = ["get_places"]

_DEVICE_TYPES = ("AUTO", "CPU", "CUDA")


class PlaceList(tuple):
    """The places ``get_places`` returns (a tuple of ``CPUPlace`` / ``CUDAPlace``), for ``ParallelDo``."""

    __slots__ = ()

    def __new__(cls, places=()):
        places = tuple(places)
        for i, p in enumerate(places):
            if not isinstance(p, Place):
                raise TypeError(f"PlaceList: item {i} must be a Place, got {p!r} of type {type(p).__name__}")
        return super().__new__(cls, places)

    def __repr__(self) -> str:
        return f"PlaceList([{', '.join(map(repr, self))}])"


def _cpu_count() -> int:
    n = os.cpu_count()
    if not n:
        raise RuntimeError("get_places: cannot tell this machine's CPU count; pass device_count=n")
    return n


def get_places(device_count=None, device_type=None) -> PlaceList:
    """``device_count`` places of ``device_type`` for ``fluid.layers.ParallelDo`` (Paddle's ``get_places_op``).

    * ``device_type``: ``'CPU'``, ``'CUDA'`` or ``'AUTO'`` (None means ``'AUTO'``; any case). Paddle
      decides ``'AUTO'`` from the executor's place when the program runs; torchfluid builds the
      per-place copies of a ParallelDo block when the program is built, before any executor is
      known, so ``'AUTO'`` means CPU places here: ask for ``'CUDA'`` to get GPU places.
    * ``device_count``: how many places; None or 0 means all of them: ``os.cpu_count()`` CPU
      places (Paddle's ``std::thread::hardware_concurrency()``, not ``CPU_NUM``), or
      ``CUDAPlace(0) .. CUDAPlace(n-1)`` for the ``n = torch.cuda.device_count()`` visible GPUs.

    CPU places repeat ``CPUPlace()``. GPU places need a torch build with a usable GPU and at
    most as many places as visible GPUs (a ``RuntimeError`` otherwise, as ``fluid.Executor``'s).
    """
    count = 0 if device_count is None else check_int("get_places: device_count", device_count, lo=0)
    kind = "AUTO" if device_type is None else device_type
    if not isinstance(kind, str) or kind.upper() not in _DEVICE_TYPES:
        raise ValueError(f"get_places: device_type must be 'CPU', 'CUDA', 'AUTO' or None, got {device_type!r}")
    kind = kind.upper()
    if kind == "CUDA":
        if not torch.cuda.is_available():
            raise RuntimeError("get_places(device_type='CUDA') needs CUDA, but this torch build has no usable GPU")
        visible = torch.cuda.device_count()
        count = count or visible
        if count > visible:
            raise RuntimeError(
                f"get_places(device_count={count}, device_type='CUDA'): only {visible} GPU(s) are visible"
            )
        return PlaceList(to_place(CUDAPlace(i)) for i in range(count))
    return PlaceList(CPUPlace() for _ in range(count or _cpu_count()))


# every other name here is unsupported: say so, and what to use instead
__getattr__ = unsupported_module_getattr("fluid.layers.device")
