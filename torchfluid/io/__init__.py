"""File input/output: safe reading of Paddle's pickled state files and atomic writes.

``safe_load`` is the only way torchfluid reads a pickle it did not create in this
process; see :mod:`torchfluid.io.safe_pickle` for what it admits. (Paddle's static
``fluid.io.save``/``load`` names are left to the static-mode package.)
"""

from .safe_pickle import UnsafePickleError, atomic_write
from .safe_pickle import load as safe_load
from .safe_pickle import loads as safe_loads

__all__ = ["UnsafePickleError", "atomic_write", "safe_load", "safe_loads"]
