"""``fluid.layers.device``: only there so that fluid code importing from it gets a clear error.

``get_places`` can be imported (fluid code imports it at the top); calling it
raises the error. Any other name raises it at import.
"""

from .._unsupported import unsupported_callable, unsupported_module_getattr

__all__ = []

get_places = unsupported_callable("fluid.layers.device", "get_places")

# every other name here is unsupported: say so, and what to use instead
__getattr__ = unsupported_module_getattr("fluid.layers.device")
