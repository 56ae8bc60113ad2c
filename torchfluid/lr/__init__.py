"""Learning-rate schedules: each formula once, and three views over them.

* :mod:`.formulas` -- pure functions of the step number, one per schedule.
* :mod:`.fluid` -- Paddle 1.8's fluid dygraph decays (``fluid.dygraph.ExponentialDecay``
  ...): calling one returns the rate and advances it (auto-step).
* :mod:`.scheduler` -- Paddle 2.x's schedulers (``paddle.optimizer.lr``; also the 2.0-rc
  ``*LR`` names): the user advances them with ``step()``.
* the static ``fluid.layers.*_decay`` variables (:mod:`torchfluid.layers.learning_rate_scheduler`)
  build a fluid decay and hand its formula and parameters to an ``lr_schedule`` op.
* :mod:`.state` -- the state-dict protocol both families share; :mod:`.schedules` --
  how an optimizer reads either kind.

The fluid and 2.x families share several class names with different arguments
(``fluid.ExponentialDecay(learning_rate, decay_steps, decay_rate)`` versus
``scheduler.ExponentialDecay(learning_rate, gamma)``), as in Paddle; the module says which.
"""

from . import fluid, formulas, schedules, scheduler, state

__all__ = ["formulas", "fluid", "scheduler", "schedules", "state"]
