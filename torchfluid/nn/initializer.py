"""``paddle.nn.initializer``: Paddle 2.x names and signatures of the initializers of
:mod:`torchfluid.initializer` (the same draws)."""

from __future__ import annotations

import numpy as np
import torch

from .. import initializer as _init

__all__ = [
    "Constant",
    "Normal",
    "Uniform",
    "TruncatedNormal",
    "XavierNormal",
    "XavierUniform",
    "KaimingNormal",
    "KaimingUniform",
    "Assign",
]

Constant = _init.ConstantInitializer  # Constant(value=0.0)


class Normal(_init.NormalInitializer):
    """``N(mean, std)``."""

    def __init__(self, mean=0.0, std=1.0, name=None):
        super().__init__(loc=mean, scale=std)


class TruncatedNormal(_init.TruncatedNormalInitializer):
    """``N(mean, std)`` restricted to ``mean +- 2 std``."""

    def __init__(self, mean=0.0, std=1.0, name=None):
        super().__init__(loc=mean, scale=std)


class Uniform(_init.UniformInitializer):
    """``U(low, high)``."""

    def __init__(self, low=-1.0, high=1.0, name=None):
        super().__init__(low=low, high=high)


class XavierNormal(_init.XavierInitializer):
    """``N(0, sqrt(2 / (fan_in + fan_out)))``."""

    def __init__(self, fan_in=None, fan_out=None, name=None):
        super().__init__(uniform=False, fan_in=fan_in, fan_out=fan_out)


class XavierUniform(_init.XavierInitializer):
    """``U(+-sqrt(6 / (fan_in + fan_out)))``."""

    def __init__(self, fan_in=None, fan_out=None, name=None):
        super().__init__(uniform=True, fan_in=fan_in, fan_out=fan_out)


class KaimingNormal(_init.MSRAInitializer):
    """``N(0, sqrt(2 / fan_in))`` (ReLU gain)."""

    def __init__(self, fan_in=None, name=None):
        super().__init__(uniform=False, fan_in=fan_in)


class KaimingUniform(_init.MSRAInitializer):
    """``U(+-sqrt(6 / fan_in))`` (ReLU gain)."""

    def __init__(self, fan_in=None, name=None):
        super().__init__(uniform=True, fan_in=fan_in)


class Assign(_init.NumpyArrayInitializer):
    """Copy ``value`` (a numpy array, list or tensor of the parameter's shape)."""

    def __init__(self, value, name=None):
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        elif isinstance(value, (list, tuple)):
            value = np.asarray(value)
        super().__init__(value)
