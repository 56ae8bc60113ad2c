"""docs/api.md matches the code; unsupported fluid names fail clearly; fluid.core basics."""

import os

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import _api_doc
from torchfluid._unsupported import UnsupportedFluidAPIError, UnsupportedFluidModuleError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_api_md_is_generated_from_the_code():
    with open(os.path.join(ROOT, "docs", "api.md"), encoding="utf-8") as f:
        text = f.read()
    assert text == _api_doc.render(), "docs/api.md is stale: run python -m torchfluid._api_doc > docs/api.md"


def test_every_listed_name_resolves():
    names = _api_doc.supported_names()
    assert "save_inference_model" in names["fluid.io"] and "load_inference_model" in names["fluid.io"]
    for name in ("conv2d", "pool2d", "batch_norm", "dropout", "relu", "tanh", "sigmoid", "concat",
                 "uniform_random", "reshape"):
        assert name in names["fluid.layers"]
    assert {"Conv2D", "Pool2D", "BatchNorm", "Linear", "Embedding", "Layer"} <= set(names["fluid.dygraph"])
    assert names["fluid.nets"] == ["simple_img_conv_pool"]
    for (fluid_mod, mod) in _api_doc.MODULES:
        module = __import__(mod, fromlist=["_"])
        for n in names[fluid_mod]:
            assert getattr(module, n) is not None


@pytest.mark.parametrize("expr,alternative", [
    ("fluid.layers.ParallelDo", "torch.distributed"),
    ("fluid.DistributeTranspiler", "torch.distributed"),
    ("fluid.ParallelExecutor", "torch.distributed"),
    ("fluid.layers.sequence_pool", "LoD tensors"),
    ("fluid.layers.dynamic_lstm", "LoD tensors"),
    ("fluid.create_lod_tensor", "LoD tensors"),
    ("fluid.layers.not_a_layer", "docs/api.md"),
    ("fluid.io.PyReader", "docs/api.md"),
])
def test_unsupported_names_say_what_to_use(expr, alternative):
    with pytest.raises(UnsupportedFluidAPIError) as err:
        eval(expr)
    assert expr.split(".", 1)[1] in str(err.value) and alternative in str(err.value)
    assert isinstance(err.value, AttributeError) and isinstance(err.value, NotImplementedError)


def test_unsupported_module_imports_say_what_to_use():
    with pytest.raises(UnsupportedFluidModuleError, match="get_places is not implemented.*torch.distributed"):
        from torchfluid.layers.device import get_places  # noqa: F401
    with pytest.raises(ImportError, match="ParallelDo is not implemented.*torch.distributed"):
        from torchfluid.layers.control_flow import ParallelDo  # noqa: F401


def test_probes_stay_plain_attribute_errors():
    assert not hasattr(fluid, "definitely_missing")
    assert getattr(fluid.layers, "_private", None) is None
    with pytest.raises(AttributeError) as err:
        fluid.__wrapped__  # noqa: B018
    assert not isinstance(err.value, UnsupportedFluidAPIError)


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
