"""torchfluid: PaddlePaddle fluid's optimizer system, exact, on PyTorch.

``import torchfluid as fluid`` is the intended entry.
"""

from . import kernels

__version__ = "0.1.0"
