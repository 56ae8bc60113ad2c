"""``paddle.optimizer.lr``: the 2.x schedulers, defined in :mod:`torchfluid.lr.scheduler`."""

from ..lr import scheduler as _scheduler
from ..lr.scheduler import *  # noqa: F403  (its __all__: the 2.x scheduler classes)

__all__ = list(_scheduler.__all__)
