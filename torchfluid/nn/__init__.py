"""Paddle 2.x layer spellings (``paddle.nn``): ``Layer``, ``Linear``, ``Embedding``."""

from ..dygraph.layers import Layer
from .common import Embedding, Linear

__all__ = ["Layer", "Linear", "Embedding"]
