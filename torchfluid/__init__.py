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

# --- dygraph (helper D) ---
from . import dygraph, framework, initializer, io, nn, param_attr, unique_name
from .dygraph import load_dygraph, save_dygraph
from .dygraph.nn import Linear
from .framework import (
    CPUPlace, CUDAPinnedPlace, CUDAPlace, disable_dygraph, disable_static, enable_dygraph,
    enable_static, in_dygraph_mode, in_dynamic_mode,
)
from .optimizer import lr_scheduler as _lr_scheduler  # noqa: F401  (paddle.optimizer.lr_scheduler.NoamLR)
from .param_attr import ParamAttr
# --- end dygraph (helper D) ---

__version__ = "0.1.0"
