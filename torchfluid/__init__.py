"""torchfluid: PaddlePaddle fluid's optimizer system, exact, on PyTorch.

``import torchfluid as fluid`` is the intended entry.
"""

from . import checkpoint, clip, kernels, optimizer, regularizer
from .clip import (
    ClipGradByGlobalNorm,
    ClipGradByNorm,
    ClipGradByValue,
    GradientClipByGlobalNorm,
    GradientClipByNorm,
    GradientClipByValue,
)
from .regularizer import L1Decay, L1DecayRegularizer, L2Decay, L2DecayRegularizer

# dygraph mode: guard, layers, parameters, places
from . import dygraph, framework, initializer, io, nn, param_attr, unique_name
from .dygraph import load_dygraph, save_dygraph
from .dygraph.layers import Layer
from .dygraph.nn import BatchNorm, Conv2D, Embedding, Linear, Pool2D
from .framework import (
    CPUPlace,
    CUDAPinnedPlace,
    CUDAPlace,
    disable_dygraph,
    disable_static,
    enable_dygraph,
    enable_static,
    get_flags,
    in_dygraph_mode,
    in_dynamic_mode,
    set_flags,
)
from .param_attr import ParamAttr

__version__ = "0.1.0"

# static mode: programs, layers, the executor; static.optimize registers program records
# as the optimizers' front door (minimize on a program loss appends the optimize op)
from . import core, dataset, layer_helper, layers, nets, op, static  # noqa: E402
from .static import optimize as _static_optimize  # noqa: E402,F401
from .layers.nn import static_data as data  # noqa: E402  (fluid.data: shape as given)
from . import backward  # noqa: E402  (fluid.backward: static.backward's API)
from .static.data_feeder import DataFeeder  # noqa: E402
from . import compiler, executor  # noqa: E402  (fluid.compiler, fluid.executor: importable modules)
from .static import (  # noqa: E402
    BuildStrategy,
    CompiledProgram,
    ExecutionStrategy,
    Executor,
    LoDTensor,
    Parameter,
    Program,
    Scope,
    Variable,
    default_main_program,
    default_startup_program,
    global_scope,
    cpu_places,
    cuda_pinned_places,
    cuda_places,
    program_guard,
    scope_guard,
)
from .static.reader import PyReader, batch  # noqa: E402
from .static.clip import append_gradient_clip_ops as _append_clip_ops  # noqa: E402
from .static.clip import set_gradient_clip as _set_clip  # noqa: E402
from .static.lod import create_lod_tensor, create_random_int_lodtensor  # noqa: E402
from .static.io import load_any as load, save_any as save  # noqa: E402  (Program -> static, else checkpoint)
from .static.io import load_program_state, set_program_state  # noqa: E402
from ._unsupported import fluid_module_getattr as _fluid_module_getattr  # noqa: E402

# Names of fluid.io and fluid.clip that need static mode or dygraph Variables live in the
# facade (static.reader, static.clip) and are attached here: torchfluid.io and torchfluid.clip
# stay below static/ and dygraph/ in the import graph.
io.PyReader = PyReader
clip.set_gradient_clip, clip.append_gradient_clip_ops = _set_clip, _append_clip_ops

# a subpackage not imported yet (torchfluid.optim, ...) is imported on first use; a fluid
# name torchfluid does not implement says so, and what to use instead
__getattr__ = _fluid_module_getattr("fluid", __name__)
