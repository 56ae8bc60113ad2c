"""Paddle's places, mapped onto torch devices::

    CPUPlace()        -> torch.device("cpu")
    CUDAPlace(i)      -> torch.device("cuda", i)
    CUDAPinnedPlace() -> torch.device("cpu")   (host memory; tensors are not pinned)

:func:`to_place` turns what a user may pass as a place (a Place, a ``torch.device``, ``'cpu'``,
``'gpu:N'``) into a Place this process can use; ``fluid.dygraph.guard`` and ``fluid.Executor``
both go through it. Public as :mod:`torchfluid.framework`'s names.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["Place", "CPUPlace", "CUDAPlace", "CUDAPinnedPlace", "to_place"]


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


def to_place(place, argname: str = "place") -> Place:
    """The usable Place named by a Place, a ``torch.device`` or a string (``'cpu'``, ``'gpu'``, ``'gpu:N'``,
    ``'cuda:N'``, any case).

    Anything else raises ``TypeError``, an unknown string or device type ``ValueError``, and a GPU place
    this process cannot use (no CUDA, or index >= ``torch.cuda.device_count()``) ``RuntimeError``.
    """
    if isinstance(place, Place):
        result = place
    elif isinstance(place, str):
        text = place.strip().lower()
        kind, _, index = text.partition(":")
        if text == "cpu":
            result = CPUPlace()
        elif kind in ("gpu", "cuda") and (index == "" or index.isdigit()):
            result = CUDAPlace(int(index or 0))
        else:
            raise ValueError(f"{argname} must be 'cpu', 'gpu', 'gpu:N' or 'cuda:N', got {place!r}")
    elif isinstance(place, torch.device):
        if place.type not in ("cpu", "cuda"):
            raise ValueError(f"{argname}: torch device type {place.type!r} has no Paddle place (cpu or cuda)")
        result = CPUPlace() if place.type == "cpu" else CUDAPlace(place.index or 0)
    else:
        raise TypeError(
            f"{argname} must be a CPUPlace, CUDAPlace, CUDAPinnedPlace, torch.device or str, "
            f"got {place!r} of type {type(place).__name__}"
        )
    if result.is_gpu_place():
        if not torch.cuda.is_available():
            raise RuntimeError(f"{argname}={result!r} needs CUDA, but this torch build has no usable GPU")
        if result.device.index >= torch.cuda.device_count():
            raise RuntimeError(f"{argname}={result!r}: only {torch.cuda.device_count()} GPU(s) are visible")
    return result
