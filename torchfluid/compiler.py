"""``fluid.compiler`` (``from paddle.fluid.compiler import CompiledProgram``): the names of
:mod:`torchfluid.static.compiler`, where they are implemented."""

from ._unsupported import fluid_module_getattr
from .static.compiler import *  # noqa: F403  (its __all__: CompiledProgram, BuildStrategy, ...)
from .static.compiler import __all__  # noqa: F401

__getattr__ = fluid_module_getattr("fluid.compiler")
