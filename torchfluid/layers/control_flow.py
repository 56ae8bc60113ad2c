"""``fluid.layers.control_flow``: only there so that fluid code importing from it gets a clear error.

``ParallelDo`` can be imported (fluid code imports it at the top); calling it
raises the error. Any other name raises it at import.
"""

from .._unsupported import unsupported_callable as _stand_in

__all__ = []

ParallelDo = _stand_in("fluid.layers.control_flow", "ParallelDo")


def __getattr__(name):  # every name here is unsupported: say so, and what to use instead
    from .._unsupported import missing

    raise missing("fluid.layers.control_flow", name, whole_module=True)
