"""``fluid.layers.device``: only there so that fluid code importing from it gets a clear error."""

__all__ = []


def __getattr__(name):  # every name here is unsupported: say so, and what to use instead
    from .._unsupported import missing

    raise missing("fluid.layers.device", name, whole_module=True)
