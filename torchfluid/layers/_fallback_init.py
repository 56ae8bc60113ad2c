"""Paddle's default initializers, used only while ``torchfluid.initializer`` (owned by
the dygraph package) is absent. Same contract: a callable filling a tensor in place.

* weights: Xavier uniform, ``U(-l, l)``, ``l = sqrt(6 / (fan_in + fan_out))`` with
  Paddle's fans (2-D ``[in, out]``: ``fan_in = in``, ``fan_out = out``; more dims:
  ``fan_in = shape[1] * rf``, ``fan_out = shape[0] * rf``, ``rf = prod(shape[2:])``);
* biases: the constant 0.
"""

from __future__ import annotations

import math

import torch

__all__ = ["Xavier", "Constant"]


def _fans(shape):
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    rf = math.prod(shape[2:])
    return shape[1] * rf, shape[0] * rf


class Xavier:
    """Xavier (Glorot) uniform over Paddle's fans."""

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        fan_in, fan_out = _fans(list(t.shape))
        limit = math.sqrt(6.0 / float(fan_in + fan_out))
        with torch.no_grad():
            return t.uniform_(-limit, limit)


class Constant:
    """Fill with ``value``."""

    def __init__(self, value: float = 0.0):
        self.value = float(value)

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return t.fill_(self.value)
