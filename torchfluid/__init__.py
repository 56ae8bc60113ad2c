"""torchfluid: PaddlePaddle fluid's optimizer system, exact, on PyTorch.

``import torchfluid as fluid`` is the intended entry.
"""

from . import checkpoint, clip, kernels, optimizer, regularizer
from .checkpoint import load, save
from .clip import (
    ClipGradByGlobalNorm,
    ClipGradByNorm,
    ClipGradByValue,
    GradientClipByGlobalNorm,
    GradientClipByNorm,
    GradientClipByValue,
)
from .regularizer import L1Decay, L1DecayRegularizer, L2Decay, L2DecayRegularizer

__version__ = "0.1.0"
