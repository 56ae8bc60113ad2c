"""Dygraph (eager) mode: Variables that are torch tensors, layers that are torch modules.

``guard``, ``to_variable``, ``Layer``, ``Linear``, ``Embedding``, ``save_dygraph`` /
``load_dygraph`` and the fluid learning-rate decays (defined in :mod:`torchfluid.lr.fluid`)."""

from . import base, checkpoint, layers, learning_rate_scheduler, nn, varbase
from .base import disable_dygraph, enable_dygraph, enabled, guard, no_grad, to_variable
from .checkpoint import load_dygraph, save_dygraph
from .layers import Layer
from .learning_rate_scheduler import *  # noqa: F403  (the fluid decays, in its __all__)
from .nn import BatchNorm, Conv2D, Embedding, Linear, Pool2D
from .varbase import ParamBase, VarBase
from .._unsupported import fluid_module_getattr

Variable = VarBase
Tensor = VarBase

__all__ = [
    "guard",
    "to_variable",
    "no_grad",
    "enabled",
    "enable_dygraph",
    "disable_dygraph",
    "Layer",
    *nn.__all__,
    "save_dygraph",
    "load_dygraph",
    "VarBase",
    "ParamBase",
    "Variable",
    "Tensor",
    *learning_rate_scheduler.__all__,
]

# a fluid.dygraph name torchfluid does not implement: say so, and what to use instead
__getattr__ = fluid_module_getattr("fluid.dygraph", __name__)
