"""``fluid.executor`` (``import paddle.fluid.executor as executor``): the Executor and the scope
functions, implemented in :mod:`torchfluid.static.executor` and :mod:`torchfluid.static.scope`.
Re-importing this module (``importlib.reload``) changes nothing: the global scope lives in
:mod:`torchfluid.static.scope`."""

from ._unsupported import fluid_module_getattr
from .static.executor import Executor, FeedError
from .static.scope import global_scope, scope_guard

__all__ = ["Executor", "FeedError", "global_scope", "scope_guard"]

__getattr__ = fluid_module_getattr("fluid.executor")
