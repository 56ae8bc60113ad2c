"""Paddle's optimizer attributes that Paddle code reads: ``_dtype`` (inferred from the parameters)
and ``fluid.framework.convert_np_dtype_to_dtype_`` (a variable's dtype, a ``torch.dtype`` here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torchfluid as fluid

# dtype name (Paddle's spelling) -> the torch dtype a variable of it has
DTYPES = [
    ("float16", torch.float16),
    ("float32", torch.float32),
    ("float64", torch.float64),
    ("bfloat16", torch.bfloat16),
]


@pytest.mark.parametrize("name, expected", DTYPES, ids=[d[0] for d in DTYPES])
def test_convert_np_dtype_to_dtype_(name, expected):
    convert = fluid.framework.convert_np_dtype_to_dtype_
    assert convert(name) is expected
    if name != "bfloat16":  # numpy has no bfloat16
        assert convert(np.dtype(name)) is expected


def test_convert_np_dtype_to_dtype_rejects_a_non_dtype():
    with pytest.raises(TypeError, match="dtype"):
        fluid.framework.convert_np_dtype_to_dtype_("not-a-dtype")


@pytest.mark.parametrize("cls", [fluid.optimizer.SGD, fluid.optimizer.Adam, fluid.optimizer.RMSProp])
@pytest.mark.parametrize("name, expected", DTYPES[1:3], ids=[d[0] for d in DTYPES[1:3]])
def test_optimizer_dtype_is_the_first_parameters(cls, name, expected):
    with fluid.dygraph.guard():
        layer = fluid.dygraph.Layer()
        w = layer.create_parameter([2, 3], dtype=name)
        b = layer.create_parameter([3], dtype="float32")
        opt = cls(learning_rate=0.1, parameters=[w, b])
        assert opt._dtype is expected == fluid.framework.convert_np_dtype_to_dtype_(name)
        (w.sum() + b.sum()).backward()
        opt.step()
        assert opt._dtype is expected


def test_optimizer_dtype_of_static_records_and_none_without_parameters():
    assert fluid.optimizer.Adam(learning_rate=0.1)._dtype is None
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()):
        w = main.global_block().create_parameter(name="w", shape=[2], dtype="float64")
    assert fluid.optimizer.SGD(learning_rate=0.1, parameter_list=[w])._dtype is torch.float64
