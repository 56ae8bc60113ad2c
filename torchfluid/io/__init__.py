"""File input/output: safe reading of Paddle's pickled state files and atomic writes.

``safe_load`` is the only way torchfluid reads a pickle it did not create in this
process; see :mod:`torchfluid.io.safe_pickle` for what it admits. Paddle's static
``fluid.io.save_persistables``/``load_persistables``/... come from
:mod:`torchfluid.static.io`; ``save_inference_model``/``load_inference_model`` from
:mod:`torchfluid.io.inference`.
"""

from ..checkpoint.atomic import atomic_write
from .safe_pickle import UnsafePickleError
from .safe_pickle import load as safe_load
from .safe_pickle import loads as safe_loads


def __getattr__(name):  # fluid.io's static-mode names, from torchfluid.static.io and .inference (imported
    # lazily: static mode imports this package)
    if name in _STATIC_NAMES:
        from ..static import io as static_io

        return getattr(static_io, name)
    if name in _INFERENCE_NAMES:
        from . import inference

        return getattr(inference, name)
    from .._unsupported import missing

    raise missing("fluid.io", name)


_STATIC_NAMES = (
    "save_persistables",
    "load_persistables",
    "save_params",
    "load_params",
    "save_vars",
    "load_vars",
    "load_program_state",
    "set_program_state",
)
_INFERENCE_NAMES = ("save_inference_model", "load_inference_model", "InferenceModelError")

# PyReader: set by the torchfluid package (it builds dygraph Variables, a layer above this package)
__all__ = [
    "UnsafePickleError",
    "atomic_write",
    "safe_load",
    "safe_loads",
    "PyReader",
    *_STATIC_NAMES,
    *_INFERENCE_NAMES,
]
