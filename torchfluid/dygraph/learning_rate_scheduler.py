"""``fluid.dygraph.learning_rate_scheduler``: the fluid decays, defined in :mod:`torchfluid.lr.fluid`."""

from ..lr import fluid as _fluid
from ..lr.fluid import *  # noqa: F403  (its __all__: the fluid decay classes)

__all__ = list(_fluid.__all__)
