"""Places, the dygraph/static mode flag and dtype names (Paddle's ``fluid.framework``).

``convert_dtype`` (a ``torch.dtype``) and ``dtype_name`` (Paddle's name) come from
:mod:`torchfluid.dtypes`.

Places map onto torch devices::

    CPUPlace()        -> torch.device("cpu")
    CUDAPlace(i)      -> torch.device("cuda", i)
    CUDAPinnedPlace() -> torch.device("cpu")   (host memory; tensors are not pinned)

New Variables and parameters go to the expected place: CPU unless a guard names
another (Paddle defaults to the GPU in a CUDA build; we keep torch's CPU default).

The mode flag is process-global, as in Paddle. It starts in static mode (``paddle.fluid``
1.x behaviour); ``fluid.dygraph.guard()`` switches to dygraph mode for a ``with`` block,
``enable_dygraph()`` / ``disable_dygraph()`` (2.x: ``disable_static()`` /
``enable_static()``) switch it for good. Entering dygraph mode also opens a fresh
``unique_name`` scope, so the first ``Linear`` of every guard is ``linear_0``.
Dygraph layers and Variables work in either mode (they are torch objects); the flag only
tells mode-dependent functions (``fluid.layers.fill_constant`` and friends) what to build.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from . import unique_name
from .dtypes import dtype_name
from .dtypes import torch_dtype as convert_dtype

__all__ = [
    "Place",
    "CPUPlace",
    "CUDAPlace",
    "CUDAPinnedPlace",
    "in_dygraph_mode",
    "in_dynamic_mode",
    "enable_dygraph",
    "disable_dygraph",
    "enable_static",
    "disable_static",
    "convert_dtype",
    "dtype_name",
]


# ----------------------------------------------------------------------------- places
class Place:
    """Base of the place classes; ``.device`` is the torch device it stands for."""

    device: torch.device

    def is_cpu_place(self) -> bool:
        return self.device.type == "cpu" and not self.is_cuda_pinned_place()

    def is_gpu_place(self) -> bool:
        return self.device.type == "cuda"

    def is_cuda_pinned_place(self) -> bool:
        return isinstance(self, CUDAPinnedPlace)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.device == other.device

    def __hash__(self) -> int:
        return hash((type(self).__name__, str(self.device)))

    def __repr__(self) -> str:
        return type(self).__name__


class CPUPlace(Place):
    """The host CPU (``torch.device('cpu')``)."""

    def __init__(self):
        self.device = torch.device("cpu")

    def is_cpu_place(self) -> bool:
        return True


class CUDAPinnedPlace(Place):
    """Paddle's page-locked host memory; here plain CPU memory (``torch.device('cpu')``)."""

    def __init__(self):
        self.device = torch.device("cpu")


class CUDAPlace(Place):
    """GPU ``id`` (``torch.device('cuda', id)``). Using it needs a CUDA build of torch."""

    def __init__(self, id: int = 0):  # noqa: A002 - Paddle's argument name
        if isinstance(id, bool) or not isinstance(id, (int, np.integer)) or id < 0:
            raise ValueError(f"CUDAPlace: id must be an int >= 0, got {id!r}")
        self.device = torch.device("cuda", int(id))

    def get_device_id(self) -> int:
        return self.device.index

    def __repr__(self) -> str:
        return f"CUDAPlace({self.device.index})"


def _to_place(place, argname: str = "place") -> Place:
    """A Place from a Place, a torch.device or a string ('cpu', 'gpu:0', 'cuda:1')."""
    if isinstance(place, Place):
        return place
    if isinstance(place, str):
        text = place.strip().lower()
        if text == "cpu":
            return CPUPlace()
        kind, _, index = text.partition(":")
        if kind in ("gpu", "cuda") and (index == "" or index.isdigit()):
            return CUDAPlace(int(index or 0))
        raise ValueError(f"{argname} must be 'cpu', 'gpu:N' or 'cuda:N', got {place!r}")
    if isinstance(place, torch.device):
        if place.type == "cpu":
            return CPUPlace()
        if place.type == "cuda":
            return CUDAPlace(place.index or 0)
        raise ValueError(f"{argname}: torch device type {place.type!r} has no Paddle place (cpu or cuda)")
    raise TypeError(
        f"{argname} must be a CPUPlace, CUDAPlace, CUDAPinnedPlace, torch.device or str, got {type(place).__name__}"
    )


# ----------------------------------------------------------------------------- mode flag
_dygraph_mode = False
_expected_place: Place = CPUPlace()
_functional_guard = None


def in_dygraph_mode() -> bool:
    """True inside ``dygraph.guard()`` or after ``enable_dygraph()``."""
    return _dygraph_mode


in_dynamic_mode = in_dygraph_mode


def _current_expected_place() -> Place:
    """The place new Variables and parameters go to (CPU unless a guard said otherwise)."""
    return _expected_place


@contextlib.contextmanager
def _dygraph_guard(place=None):
    """Dygraph mode + expected place + a fresh unique_name scope, restored on exit."""
    global _dygraph_mode, _expected_place
    new_place = _current_expected_place() if place is None else _to_place(place)
    if new_place.is_gpu_place():
        if not torch.cuda.is_available():
            raise RuntimeError(f"place={new_place!r} needs CUDA, but this torch build has no usable GPU")
        if new_place.device.index >= torch.cuda.device_count():
            raise RuntimeError(f"place={new_place!r}: only {torch.cuda.device_count()} GPU(s) are visible")
    old = (_dygraph_mode, _expected_place)
    _dygraph_mode, _expected_place = True, new_place
    try:
        with unique_name.guard():
            yield
    finally:
        _dygraph_mode, _expected_place = old


def enable_dygraph(place=None) -> None:
    """Switch to dygraph mode until ``disable_dygraph()`` (a no-op when already enabled this way)."""
    global _functional_guard
    if _functional_guard is None:
        guard = _dygraph_guard(place)
        guard.__enter__()
        _functional_guard = guard


def disable_dygraph() -> None:
    """Leave the mode ``enable_dygraph()`` entered (a no-op otherwise)."""
    global _functional_guard
    if _functional_guard is not None:
        guard, _functional_guard = _functional_guard, None
        guard.__exit__(None, None, None)


def disable_static(place=None) -> None:
    """Paddle 2.x name of :func:`enable_dygraph`."""
    enable_dygraph(place)


def enable_static() -> None:
    """Paddle 2.x name of :func:`disable_dygraph`."""
    disable_dygraph()


def __getattr__(name):  # fluid.framework's static-mode records: torchfluid.static.framework's __all__ (imported
    # lazily: static mode imports this module)
    from .static import framework as static_framework

    if name in static_framework.__all__:
        return getattr(static_framework, name)
    from ._unsupported import missing  # a fluid.framework name torchfluid does not implement

    raise missing("fluid.framework", name)
