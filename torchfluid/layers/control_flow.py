"""``fluid.layers.control_flow``: only there so that fluid code importing from it gets a clear error.

``ParallelDo`` can be imported (fluid code imports it at the top); calling it
raises the error. Any other name raises it at import.
"""

from .._unsupported import unsupported_callable, unsupported_module_getattr

__all__ = []

ParallelDo = unsupported_callable("fluid.layers.control_flow", "ParallelDo")

# every other name here is unsupported: say so, and what to use instead
__getattr__ = unsupported_module_getattr("fluid.layers.control_flow")
