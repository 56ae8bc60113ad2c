"""The optimizer layer: Paddle's optimizers (RMSProp, SGD, Momentum, Adam, AdamW, Adamax, Adadelta, Adagrad, Lamb).

Paddle 2.0-rc also exported its schedulers here under their ``*LR`` names
(``paddle.optimizer.NoamLR``, ``StepLR``, ``LinearLrWarmup``, ``ReduceLROnPlateau``, ...);
they are the classes of :mod:`.lr_scheduler` (thin subclasses of :mod:`.lr`'s).
"""

from . import lr, lr_scheduler
from .adadelta import Adadelta, AdadeltaOptimizer
from .adagrad import Adagrad, AdagradOptimizer
from .adam import Adam, AdamOptimizer, AdamW
from .adamax import Adamax, AdamaxOptimizer
from .base import Optimizer
from .lamb import Lamb, LambOptimizer
from .momentum import Momentum, MomentumOptimizer
from .rmsprop import RMSProp, RMSPropOptimizer
from .sgd import SGD, SGDOptimizer
from .state import LoadReport
from .._unsupported import fluid_module_getattr
from .lr_scheduler import *  # noqa: F403  (Paddle 2.0-rc's scheduler names: NoamLR, StepLR, ...)

__all__ = [
    "Optimizer",
    "RMSPropOptimizer",
    "RMSProp",
    "SGDOptimizer",
    "SGD",
    "AdamOptimizer",
    "Adam",
    "AdamW",
    "AdamaxOptimizer",
    "Adamax",
    "AdadeltaOptimizer",
    "Adadelta",
    "LambOptimizer",
    "Lamb",
    "AdagradOptimizer",
    "Adagrad",
    "MomentumOptimizer",
    "Momentum",
    "LoadReport",
    "lr",
    "lr_scheduler",
    *lr_scheduler.__all__,
]

# a fluid.optimizer name torchfluid does not implement: say so, and what to use instead
__getattr__ = fluid_module_getattr("fluid.optimizer", __name__)
