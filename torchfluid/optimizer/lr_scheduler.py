"""Paddle 2.0-rc names for the 2.x schedulers (``paddle.optimizer.lr_scheduler``).

Paddle 2.0-rc exposed the schedulers now in ``paddle.optimizer.lr`` under ``*LR``
names; the documentation page's example uses
``paddle.optimizer.lr_scheduler.NoamLR(d_model=0.01, warmup_steps=100, verbose=True)``.
Each old name is a thin subclass of the current class (same arguments and
behaviour; ``verbose`` messages print the old name), so ``isinstance(s, LRScheduler)``
holds for all of them. ``_LRScheduler`` is the base class itself.
"""

from __future__ import annotations

from . import lr as _lr

__all__ = [
    "NoamLR", "PiecewiseLR", "NaturalExpLR", "InverseTimeLR", "PolynomialLR", "LinearLrWarmup",
    "ExponentialLR", "MultiStepLR", "StepLR", "LambdaLR", "ReduceLROnPlateau", "CosineAnnealingLR",
]

_LRScheduler = _lr.LRScheduler


class NoamLR(_lr.NoamDecay):
    """Paddle 2.0-rc name of :class:`torchfluid.optimizer.lr.NoamDecay` (same arguments)."""


class PiecewiseLR(_lr.PiecewiseDecay):
    """Paddle 2.0-rc name of :class:`torchfluid.optimizer.lr.PiecewiseDecay` (same arguments)."""


class NaturalExpLR(_lr.NaturalExpDecay):
    """Paddle 2.0-rc name of :class:`torchfluid.optimizer.lr.NaturalExpDecay` (same arguments)."""


class InverseTimeLR(_lr.InverseTimeDecay):
    """Paddle 2.0-rc name of :class:`torchfluid.optimizer.lr.InverseTimeDecay` (same arguments)."""


class PolynomialLR(_lr.PolynomialDecay):
    """Paddle 2.0-rc name of :class:`torchfluid.optimizer.lr.PolynomialDecay` (same arguments)."""


class LinearLrWarmup(_lr.LinearWarmup):
    """Paddle 2.0-rc name of :class:`torchfluid.optimizer.lr.LinearWarmup` (same arguments)."""


class ExponentialLR(_lr.ExponentialDecay):
    """Paddle 2.0-rc name of :class:`torchfluid.optimizer.lr.ExponentialDecay` (same arguments)."""


class MultiStepLR(_lr.MultiStepDecay):
    """Paddle 2.0-rc name of :class:`torchfluid.optimizer.lr.MultiStepDecay` (same arguments)."""


class StepLR(_lr.StepDecay):
    """Paddle 2.0-rc name of :class:`torchfluid.optimizer.lr.StepDecay` (same arguments)."""


class LambdaLR(_lr.LambdaDecay):
    """Paddle 2.0-rc name of :class:`torchfluid.optimizer.lr.LambdaDecay` (same arguments)."""


class ReduceLROnPlateau(_lr.ReduceOnPlateau):
    """Paddle 2.0-rc name of :class:`torchfluid.optimizer.lr.ReduceOnPlateau` (same arguments)."""


class CosineAnnealingLR(_lr.CosineAnnealingDecay):
    """Paddle 2.0-rc name of :class:`torchfluid.optimizer.lr.CosineAnnealingDecay` (same arguments)."""
