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
    "set_flags",
    "get_flags",
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


# ----------------------------------------------------------------------------- global flags
# Paddle's FLAGS_* settable from Python (fluid.set_flags / get_flags); the ones torchfluid has, with their defaults
_FLAG_DEFAULTS = {"FLAGS_retain_grad_for_all_tensor": False, "FLAGS_sort_sum_gradient": False}
_flags = dict(_FLAG_DEFAULTS)
retain_grad_for_all_tensor = False  # FLAGS_retain_grad_for_all_tensor, read by every dygraph op (a plain bool)


def set_flags(flags) -> None:
    """Paddle's ``fluid.set_flags({'FLAGS_name': value, ...})``: set global flags. Each is checked before
    any is set (a bad entry changes none). The flags torchfluid has:

    * ``FLAGS_retain_grad_for_all_tensor`` (bool, default False): when True, every dygraph Variable an op
      makes from now on keeps its gradient after ``backward()`` (``gradient()`` of an intermediate result,
      as Paddle's legacy dygraph did); when False only leaves (parameters, ``to_variable`` inputs) and
      Variables given ``retain_grad()`` keep one (torch's rule, torchfluid's default).
    * ``FLAGS_sort_sum_gradient`` (bool, default False): accepted and recorded. Paddle sums the gradients
      that fan into one Variable in a fixed order when it is set; torch's autograd always sums them in one
      fixed order on a given graph, so runs repeat bit for bit either way.
    """
    if not isinstance(flags, dict):
        raise TypeError(f"set_flags: flags must be a dict of flag name -> value, got {type(flags).__name__}")
    for name, value in flags.items():
        if name not in _FLAG_DEFAULTS:
            raise ValueError(f"set_flags: unknown flag {name!r}; torchfluid has {', '.join(sorted(_FLAG_DEFAULTS))}")
        if not isinstance(value, bool):
            raise TypeError(f"set_flags: {name} must be a bool, got {value!r}")
    global retain_grad_for_all_tensor
    _flags.update(flags)
    retain_grad_for_all_tensor = _flags["FLAGS_retain_grad_for_all_tensor"]


def get_flags(flags) -> dict:
    """Paddle's ``fluid.get_flags``: ``{name: value}`` for a flag name or a list/tuple of them
    (see :func:`set_flags` for the flags torchfluid has)."""
    names = [flags] if isinstance(flags, str) else flags
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"get_flags: flags must be a flag name or a list/tuple of them, got {flags!r}")
    unknown = [n for n in names if n not in _FLAG_DEFAULTS]
    if unknown:
        raise ValueError(f"get_flags: unknown flag {unknown[0]!r}; torchfluid has {', '.join(sorted(_FLAG_DEFAULTS))}")
    return {n: _flags[n] for n in names}


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
