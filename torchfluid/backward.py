"""``fluid.backward``: reverse mode over the static IR (see :mod:`torchfluid.static.backward`)."""

from .static.backward import EMPTY_VAR_NAME, append_backward

__all__ = ["append_backward", "EMPTY_VAR_NAME"]
