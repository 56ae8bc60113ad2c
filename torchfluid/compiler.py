"""``fluid.compiler`` (``from paddle.fluid.compiler import CompiledProgram``): the names of
:mod:`torchfluid.static.compiler`, where they are implemented."""

from ._unsupported import fluid_module_getattr
from .static.compiler import (
    BuildStrategy,
    CompiledProgram,
    ExecutionStrategy,
    cpu_places,
    cuda_pinned_places,
    cuda_places,
)

__all__ = [
    "CompiledProgram",
    "BuildStrategy",
    "ExecutionStrategy",
    "cpu_places",
    "cuda_places",
    "cuda_pinned_places",
]

__getattr__ = fluid_module_getattr("fluid.compiler")
