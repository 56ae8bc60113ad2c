"""The op registry shared by static and dygraph mode (see :mod:`.registry`).

Importing this package registers every op type of :mod:`.math_ops`, :mod:`.nn_ops`,
:mod:`.state_ops`, :mod:`.vision_ops`, :mod:`.sequence_ops` and :mod:`.optimizer_ops` (Paddle's
raw per-parameter optimizer ops ``raw_rmsprop``, ``raw_sgd``, ``raw_adam``); the optimize section
ops (``rmsprop``, ``sgd``, ``adam``), which call the optimizer layer, are registered by
:mod:`torchfluid.static.optimize`.

``ACTIVATIONS`` names the ops a layer's ``act`` may be (``check_activation`` checks one): the
dygraph layers run the op's forward and static programs append the op, so the modes agree.
"""

from . import math_ops, nn_ops, optimizer_ops, sequence_ops, state_ops, vision_ops  # noqa: F401  (registration side effects)
from ..dtypes import dtype_name as convert_dtype  # fluid's names for the dtype functions
from ..dtypes import is_float_dtype
from ..dtypes import numpy_dtype as to_numpy_dtype
from ..dtypes import torch_dtype as to_torch_dtype
from .math_ops import ACTIVATIONS, check_activation
from .registry import GRAD_SUFFIX, OpDef, get_op, has_op, register, registered_types

__all__ = [
    "OpDef",
    "register",
    "get_op",
    "has_op",
    "registered_types",
    "GRAD_SUFFIX",
    "convert_dtype",
    "to_torch_dtype",
    "to_numpy_dtype",
    "is_float_dtype",
    "ACTIVATIONS",
    "check_activation",
]
