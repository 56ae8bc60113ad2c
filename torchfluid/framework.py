"""Places, the dygraph/static mode flag and dtype names (Paddle's ``fluid.framework``).

``convert_dtype`` (a ``torch.dtype``) and ``dtype_name`` (Paddle's name) come from
:mod:`torchfluid.dtypes`.

Places (``CPUPlace``, ``CUDAPlace``, ``CUDAPinnedPlace``, :func:`to_place`) come from
:mod:`torchfluid.places`, below the static and dygraph facades, which both use them.

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

from . import unique_name
from .dtypes import dtype_name
from .dtypes import torch_dtype as convert_dtype
from .dtypes import torch_dtype as convert_np_dtype_to_dtype_  # Paddle's name; a variable's dtype is a torch.dtype
from .places import CPUPlace, CUDAPinnedPlace, CUDAPlace, Place, to_place

__all__ = [
    "Place",
    "CPUPlace",
    "CUDAPlace",
    "CUDAPinnedPlace",
    "to_place",
    "in_dygraph_mode",
    "in_dynamic_mode",
    "enable_dygraph",
    "disable_dygraph",
    "enable_static",
    "disable_static",
    "convert_dtype",
    "convert_np_dtype_to_dtype_",
    "dtype_name",
    "set_default_dtype",
    "get_default_dtype",
]


# ----------------------------------------------------------------------------- default dtype
_DEFAULT_DTYPES = ("float16", "float32", "float64")
_default_dtype = "float32"


def set_default_dtype(d) -> None:
    """Paddle 2.x ``paddle.set_default_dtype``: the dtype the 2.x layers
    (:class:`torchfluid.nn.Linear`, :class:`torchfluid.nn.Embedding`) create their parameters
    in from now on. ``d``: ``'float16'``, ``'float32'`` or ``'float64'``, as a name, a numpy
    dtype or type, or a ``torch.dtype``. The fluid layers keep their own ``dtype`` argument
    (default float32), as in Paddle. torch's own default dtype is left alone."""
    global _default_dtype
    try:
        name = None if d is None or isinstance(d, bool) else dtype_name(convert_dtype(d))
    except (TypeError, ValueError):
        name = None
    if name not in _DEFAULT_DTYPES:
        raise TypeError(f"set_default_dtype: d must be one of {', '.join(_DEFAULT_DTYPES)}, got {d!r}")
    _default_dtype = name


def get_default_dtype() -> str:
    """The dtype name :func:`set_default_dtype` set (``'float32'`` until then)."""
    return _default_dtype


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
    new_place = _current_expected_place() if place is None else to_place(place)
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
