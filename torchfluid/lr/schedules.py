"""How the optimizer talks to learning-rate schedules (fluid decays and 2.x schedulers).

* fluid dygraph ``LearningRateDecay``: ``decay.step()`` is the lr at ``step_num``
  without advancing; ``decay()`` returns it and advances. The optimizer calls
  ``decay()`` once per update, so ``current_step_lr()`` reports the lr the last update
  used (Paddle 1.8 semantics).
* 2.x ``LRScheduler``: ``scheduler()`` is its current value; only the user's
  ``scheduler.step()`` advances it.
"""

from __future__ import annotations

from .fluid import LearningRateDecay
from .scheduler import LRScheduler

__all__ = ["as_schedule", "is_fluid_decay", "peek", "take"]


def is_fluid_decay(obj) -> bool:
    return isinstance(obj, LearningRateDecay)


def as_schedule(learning_rate):
    """The schedule object if ``learning_rate`` is one, else None (a float lr)."""
    if isinstance(learning_rate, (LearningRateDecay, LRScheduler)):
        return learning_rate
    return None


def peek(schedule) -> float:
    """The schedule's current value, without advancing it."""
    return float(schedule.current_lr()) if is_fluid_decay(schedule) else float(schedule())


def take(schedule) -> float:
    """The value for this update; a fluid decay advances by one step."""
    return float(schedule())
