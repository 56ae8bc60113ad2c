"""``fluid.layers.device``: only there so that fluid code importing from it gets a clear error.

``get_places`` can be imported (fluid code imports it at the top); calling it
raises the error. Any other name raises it at import.
"""

from .._unsupported import unsupported_callable as _stand_in

__all__ = []

get_places = _stand_in("fluid.layers.device", "get_places")


def __getattr__(name):  # every name here is unsupported: say so, and what to use instead
    from .._unsupported import missing

    raise missing("fluid.layers.device", name, whole_module=True)
