"""docs/api.md matches the code; unsupported fluid names fail clearly; fluid.core basics."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import _api_doc
from torchfluid._unsupported import UnsupportedFluidAPIError, UnsupportedFluidModuleError, fluid_module_getattr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_api_md_is_generated_from_the_code():
    with open(os.path.join(ROOT, "docs", "api.md"), encoding="utf-8") as f:
        text = f.read()
    assert text == _api_doc.render(), "docs/api.md is stale: run python -m torchfluid._api_doc > docs/api.md"


def test_every_listed_name_resolves():
    names = _api_doc.supported_names()
    assert "save_inference_model" in names["fluid.io"] and "load_inference_model" in names["fluid.io"]
    for name in (
        "conv2d",
        "pool2d",
        "batch_norm",
        "dropout",
        "relu",
        "tanh",
        "sigmoid",
        "concat",
        "uniform_random",
        "reshape",
        "ParallelDo",
        "get_places",
    ):
        assert name in names["fluid.layers"]
    assert {"Conv2D", "Pool2D", "BatchNorm", "Linear", "Embedding", "Layer"} <= set(names["fluid.dygraph"])
    assert names["fluid.nets"] == ["simple_img_conv_pool"]
    for name in ("CompiledProgram", "BuildStrategy", "ExecutionStrategy", "cpu_places", "cuda_places"):
        assert name in names["fluid"] and name in names["fluid.compiler"]
    assert fluid.compiler.CompiledProgram is fluid.CompiledProgram
    assert {"Adagrad", "AdagradOptimizer", "Adam", "SGD", "RMSProp", "Momentum", "MomentumOptimizer"} <= set(
        names["fluid.optimizer"]
    )
    for fluid_mod, mod in _api_doc.MODULES:
        module = __import__(mod, fromlist=["_"])
        for n in names[fluid_mod]:
            assert getattr(module, n) is not None


@pytest.mark.parametrize(
    "expr,alternative",
    [
        ("fluid.DistributeTranspiler", "torch.distributed"),
        ("fluid.ParallelExecutor", "torch.distributed"),
        ("fluid.layers.sequence_conv", "the sequence_pool layers"),
        ("fluid.layers.dynamic_lstm", "LoD of two or more levels are not supported"),
        ("fluid.layers.lod_reset", "pad sequences to one length"),
        ("fluid.layers.not_a_layer", "docs/api.md"),
        ("fluid.io.DataLoader", "docs/api.md"),
        # every fluid module torchfluid implements answers for the names it lacks
        ("fluid.optimizer.ModelAverage", "torch.optim.swa_utils.AveragedModel"),
        ("fluid.dygraph.DataParallel", "torch.distributed"),
        ("fluid.dygraph.GRUUnit", "torch.nn layer"),
        ("fluid.dygraph.Conv2DTranspose", "torch.nn layer"),
        ("fluid.param_attr.WeightNormParamAttr", "torch.nn.utils.parametrizations.weight_norm"),
        ("fluid.initializer.Bilinear", "NumpyArrayInitializer"),
        ("fluid.nets.sequence_conv_pool", "one level of LoD in static programs"),
        ("fluid.nets.glu", "docs/api.md"),
        ("fluid.clip.ErrorClipByValue", "docs/api.md"),
        ("fluid.regularizer.not_a_regularizer", "docs/api.md"),
        ("fluid.core.not_a_core_name", "docs/api.md"),
        ("fluid.framework.not_a_framework_name", "docs/api.md"),
    ],
)
def test_unsupported_names_say_what_to_use(expr, alternative):
    with pytest.raises(UnsupportedFluidAPIError) as err:
        eval(expr)
    assert expr.split(".", 1)[1] in str(err.value) and alternative in str(err.value)
    assert isinstance(err.value, AttributeError) and isinstance(err.value, NotImplementedError)


def test_unsupported_module_names_import_and_fail_when_used():
    from torchfluid.layers.control_flow import ParallelDo
    from torchfluid.layers.device import get_places

    # the implemented names of the two modules work; their other names fail with the module's error
    assert ParallelDo is fluid.layers.ParallelDo and get_places is fluid.layers.get_places
    with pytest.raises(UnsupportedFluidModuleError, match="device.cuda_places is not implemented"):
        from torchfluid.layers.device import cuda_places  # noqa: F401
    with pytest.raises(UnsupportedFluidModuleError, match="control_flow.IfElse is not implemented"):
        from torchfluid.layers.control_flow import IfElse  # noqa: F401


def test_probes_stay_plain_attribute_errors():
    assert not hasattr(fluid, "definitely_missing")
    assert not hasattr(fluid.optimizer, "Ftrl")
    assert getattr(fluid.layers, "_private", None) is None
    for module in (fluid.optimizer, fluid.dygraph, fluid.clip, fluid.core, fluid.framework):
        with pytest.raises(AttributeError) as err:
            module.__wrapped__  # noqa: B018
        assert not isinstance(err.value, UnsupportedFluidAPIError)
    module_getattr = fluid_module_getattr("fluid.optimizer", "torchfluid.optimizer")
    with pytest.raises(UnsupportedFluidAPIError):
        module_getattr("Ftrl")
    with pytest.raises(AttributeError) as err:
        fluid.__wrapped__  # noqa: B018
    assert not isinstance(err.value, UnsupportedFluidAPIError)


def test_submodules_not_imported_yet_import_on_first_use():
    # `import torchfluid` then `torchfluid.optim.RMSprop`, as `torch.optim` after `import torch`;
    # a fresh interpreter, so that no other test has imported them already
    code = (
        "import sys, torchfluid\n"
        "assert 'torchfluid.optim' not in sys.modules and 'torchfluid.cli' not in sys.modules\n"
        "assert torchfluid.optim.RMSprop.__module__.startswith('torchfluid.optim')\n"
        "assert torchfluid.cli is sys.modules['torchfluid.cli']\n"
        "assert torchfluid.optimizer.presets is sys.modules['torchfluid.optimizer.presets']\n"
        "try:\n    torchfluid.not_a_fluid_name\n"
        "except torchfluid._unsupported.UnsupportedFluidAPIError as e:\n    print(e)\n"
    )
    env = {**os.environ, "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert "fluid.not_a_fluid_name is not implemented by torchfluid" in out


def test_core_basics():
    assert fluid.core.CPUPlace() == fluid.CPUPlace()
    assert fluid.core.CUDAPlace(0).get_device_id() == 0
    assert fluid.core.is_compiled_with_cuda() == torch.cuda.is_available()
    assert fluid.framework.Program is fluid.Program
    assert fluid.framework.default_main_program is fluid.default_main_program
    scope = fluid.core.Scope()
    with fluid.scope_guard(scope):
        fluid.global_scope().var("v").get_tensor().set(np.arange(3, dtype="float32"), fluid.core.CPUPlace())
    np.testing.assert_array_equal(np.array(scope.find_var("v").get_tensor()), [0, 1, 2])
