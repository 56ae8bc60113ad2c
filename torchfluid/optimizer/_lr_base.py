"""The 2.x ``LRScheduler`` base class (re-exported by :mod:`torchfluid.optimizer.lr`)."""

from __future__ import annotations

import numbers

from .. import lr_math as M
from .._lr_state import StateMixin

__all__ = ["LRScheduler", "check_callable"]


def _check_last_epoch(last_epoch):
    if isinstance(last_epoch, bool) or not isinstance(last_epoch, numbers.Integral):
        raise TypeError(f"last_epoch must be an int, got {last_epoch!r}")
    if last_epoch < -1:
        raise ValueError(f"last_epoch must be >= -1, got {last_epoch!r}")


class LRScheduler(StateMixin):
    """Base class: subclasses implement ``get_lr()`` from ``self.last_epoch`` (and ``self.last_lr``).

    Args:
        learning_rate (float): the initial rate ``base_lr`` (>= 0). Default 0.1.
        last_epoch (int): the epoch before the first ``step()``. Default -1.
        verbose (bool): print ``'Epoch {e}: {Class} set learning rate to {lr}.'`` on each step.
    """

    def __init__(self, learning_rate=0.1, last_epoch=-1, verbose=False):
        M.check_non_negative("learning_rate", learning_rate)
        _check_last_epoch(last_epoch)
        self.base_lr = float(learning_rate)
        self.last_lr = float(learning_rate)
        self.last_epoch = int(last_epoch)
        self.verbose = verbose
        self.step()

    def __call__(self) -> float:
        """The latest computed learning rate (does not advance)."""
        return self.last_lr

    def step(self, epoch=None):
        """Advance one epoch (``epoch=None``) or jump to ``epoch``, and recompute ``last_lr``."""
        if epoch is None:
            self.last_epoch += 1
            self.last_lr = self.get_lr()
        else:
            self.last_epoch = epoch
            closed = getattr(self, "_get_closed_form_lr", None)
            self.last_lr = closed() if closed is not None else self.get_lr()
        self._report()

    def _report(self):
        if self.verbose:
            print(f"Epoch {self.last_epoch}: {type(self).__name__} set learning rate to {self.last_lr}.")

    def get_lr(self) -> float:
        """The rate at ``self.last_epoch``; subclasses must implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_lr()")

    # ---- state (Paddle's protocol: state_keys() sets self.keys)
    def state_keys(self):
        """Set ``self.keys``, the attribute names saved by ``state_dict()``."""
        self.keys = ["last_epoch", "last_lr"]

    def _saved_keys(self):
        self.state_keys()
        return self.keys


def check_callable(name, fn, owner):
    if not callable(fn):
        raise TypeError(f"{name} in {owner} must be callable, got {fn!r} ({type(fn).__name__})")
    return fn
