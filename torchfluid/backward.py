"""``fluid.backward``: reverse mode over the static IR (see :mod:`torchfluid.static.backward`)."""

from .ops import GRAD_SUFFIX
from .static.backward import EMPTY_VAR_NAME, append_backward

__all__ = ["append_backward", "EMPTY_VAR_NAME", "_append_grad_suffix_"]


def _append_grad_suffix_(name: str) -> str:
    """Paddle's name of a variable's gradient: ``name + '@GRAD'`` (``param_x`` -> ``param_x@GRAD``)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"_append_grad_suffix_: name must be a non-empty str, got {name!r}")
    return name + GRAD_SUFFIX
