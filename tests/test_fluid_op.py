"""fluid.op.Operator runs one registered op on a scope's values."""

import numpy as np
import pytest

import torchfluid as fluid
from torchfluid.op import Operator


def test_operator_runs_on_scope_values():
    scope = fluid.Scope()
    x, y = np.random.rand(3, 4).astype("float32"), np.random.rand(4).astype("float32")
    scope.var("x").get_tensor().set(x, fluid.CPUPlace())
    scope.var("y").get_tensor().set(y, fluid.CPUPlace())
    Operator("elementwise_mul", X="x", Y="y", Out="out", axis=-1).run(scope, fluid.CPUPlace())
    np.testing.assert_allclose(np.array(scope.find_var("out").get_tensor()), x * y, rtol=1e-6)
    Operator("sum", X=["x", "out"], Out="s").run(scope, fluid.CPUPlace())
    np.testing.assert_allclose(np.array(scope.find_var("s").get_tensor()), x + x * y, rtol=1e-6)


def test_operator_errors():
    with pytest.raises(KeyError, match="unknown op type 'nope'"):
        Operator("nope")
    with pytest.raises(ValueError, match="'missing' holds no value"):
        Operator("relu", X="missing", Out="o").run(fluid.Scope())
    with pytest.raises(TypeError, match="variable name or a list of names"):
        Operator("relu", X=3, Out="o")
