"""``fluid.layers``: network building functions for both modes.

Each function appends an op (static Variables) or runs it eagerly (torch tensors) -- the
same op definitions (:mod:`torchfluid.ops`) in both modes."""

from .._unsupported import fluid_module_getattr
from . import control_flow, device, learning_rate_scheduler, math, nn, sequence, tensor, vision
from .helper import LayerHelper

# each module's __all__ is its public layers
from .control_flow import *  # noqa: F403
from .device import *  # noqa: F403
from .learning_rate_scheduler import *  # noqa: F403
from .math import *  # noqa: F403
from .nn import *  # noqa: F403
from .sequence import *  # noqa: F403
from .tensor import *  # noqa: F403
from .vision import *  # noqa: F403

__all__ = [
    "LayerHelper",
    *nn.__all__,
    *sequence.__all__,
    *math.__all__,
    *tensor.__all__,
    *learning_rate_scheduler.__all__,
    *vision.__all__,
    *control_flow.__all__,
    *device.__all__,
]

# a fluid.layers name torchfluid does not implement: say so, and what to use instead
__getattr__ = fluid_module_getattr("fluid.layers")
