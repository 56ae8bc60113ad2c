"""``paddle.optimizer.lr_scheduler``: Paddle 2.0-rc's ``*LR`` names of the 2.x schedulers.

Each is a thin subclass of the current class in :mod:`torchfluid.lr.scheduler` (same
arguments; ``verbose`` messages print the old name); ``_LRScheduler`` is the base class.
"""

from ..lr.scheduler import RC_CLASSES
from ..lr.scheduler import LRScheduler as _LRScheduler  # noqa: F401  (Paddle 2.0-rc's base-class name)

__all__ = list(RC_CLASSES)
globals().update(RC_CLASSES)
