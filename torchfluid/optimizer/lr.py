"""``paddle.optimizer.lr``: the 2.x schedulers, defined in :mod:`torchfluid.lr.scheduler`."""

from ..lr.scheduler import (
    CosineAnnealingDecay, CosineAnnealingWarmRestarts, CyclicLR, ExponentialDecay, InverseTimeDecay, LambdaDecay,
    LinearLR, LinearWarmup, LRScheduler, MultiplicativeDecay, MultiStepDecay, NaturalExpDecay, NoamDecay, OneCycleLR,
    PiecewiseDecay, PolynomialDecay, ReduceOnPlateau, StepDecay,
)

__all__ = [
    "CosineAnnealingDecay", "CosineAnnealingWarmRestarts", "CyclicLR", "ExponentialDecay", "InverseTimeDecay",
    "LambdaDecay", "LinearLR", "LinearWarmup", "LRScheduler", "MultiplicativeDecay", "MultiStepDecay",
    "NaturalExpDecay", "NoamDecay", "OneCycleLR", "PiecewiseDecay", "PolynomialDecay", "ReduceOnPlateau",
    "StepDecay",
]
