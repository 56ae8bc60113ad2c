"""The optimizer layer: RMSProp, SGD and Adam with Paddle fluid's API, as torch optimizers."""

from . import lr, lr_scheduler
from .adam import Adam, AdamOptimizer
from .base import Optimizer
from .rmsprop import RMSProp, RMSPropOptimizer
from .sgd import SGD, SGDOptimizer
from .state import LoadReport

__all__ = [
    "Optimizer",
    "RMSPropOptimizer",
    "RMSProp",
    "SGDOptimizer",
    "SGD",
    "AdamOptimizer",
    "Adam",
    "LoadReport",
    "lr",
    "lr_scheduler",
]
