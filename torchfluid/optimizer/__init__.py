"""The optimizer layer: RMSProp, SGD, Adam and Adagrad with Paddle fluid's API, as torch optimizers."""

from . import lr, lr_scheduler
from .adagrad import Adagrad, AdagradOptimizer
from .adam import Adam, AdamOptimizer
from .base import Optimizer
from .rmsprop import RMSProp, RMSPropOptimizer
from .sgd import SGD, SGDOptimizer
from .state import LoadReport
from .._unsupported import fluid_module_getattr

__all__ = [
    "Optimizer",
    "RMSPropOptimizer",
    "RMSProp",
    "SGDOptimizer",
    "SGD",
    "AdamOptimizer",
    "Adam",
    "AdagradOptimizer",
    "Adagrad",
    "LoadReport",
    "lr",
    "lr_scheduler",
]

# a fluid.optimizer name torchfluid does not implement: say so, and what to use instead
__getattr__ = fluid_module_getattr("fluid.optimizer", __name__)
