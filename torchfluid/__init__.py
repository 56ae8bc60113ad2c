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

# --- static mode (helper C) ---
from . import dataset, layers, static  # noqa: E402
from .layers.nn import static_data as data  # noqa: E402  (fluid.data: shape as given)
from .static import backward  # noqa: E402
from .static.data_feeder import DataFeeder  # noqa: E402
from .static.executor import Executor  # noqa: E402
from .static.framework import (  # noqa: E402
    Parameter, Program, Variable, default_main_program, default_startup_program, program_guard,
)
from .static.reader import batch  # noqa: E402
from .static.scope import Scope, global_scope, scope_guard  # noqa: E402
from .static.io import load_any as load, save_any as save  # noqa: E402  (Program -> static, else checkpoint)
from .static import io as _static_io  # noqa: E402

if "unique_name" not in globals():  # the dygraph package's module when present (one generator)
    from .static import unique_name  # noqa: E402

if "io" in globals():  # fluid.io is the dygraph package's module: add the static names to it
    for _n in ("save_persistables", "load_persistables", "save_params", "load_params", "save_vars", "load_vars"):
        setattr(io, _n, getattr(_static_io, _n))  # noqa: F821
else:
    io = _static_io
# --- end static mode (helper C) ---
