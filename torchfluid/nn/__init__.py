"""Paddle 2.x layer spellings (``paddle.nn``) over the dygraph layers.

``Layer``, ``Linear``, ``Embedding``, ``Conv2D``, ``BatchNorm2D`` and the ``initializer``
module (2.x names and signatures)."""

from ..dygraph.layers import Layer
from . import initializer
from .common import Embedding, Linear
from .conv import Conv2D
from .norm import BatchNorm2D

__all__ = ["Layer", "Linear", "Embedding", "Conv2D", "BatchNorm2D", "initializer"]
