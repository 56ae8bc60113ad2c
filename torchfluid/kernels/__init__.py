"""Pure update kernels: functions over tensors, keyword-only hyper-parameters, no state.

``rmsprop_`` is the reference every fast path (fused CPU, GPU) is tested against.
"""

from .adadelta import adadelta_
from .adagrad import adagrad_, adagrad_rows_
from .adam import adam_
from .adamax import adamax_
from .lamb import lamb_
from .momentum import momentum_
from .rmsprop import rmsprop_, rmsprop_denominator
from .sgd import sgd_

__all__ = [
    "rmsprop_",
    "rmsprop_denominator",
    "sgd_",
    "adam_",
    "adamax_",
    "adadelta_",
    "lamb_",
    "adagrad_",
    "adagrad_rows_",
    "momentum_",
]
