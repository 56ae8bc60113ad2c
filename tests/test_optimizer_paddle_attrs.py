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


# optimizer -> the accumulators Paddle names for each parameter (<param>_<acc>_0)
ACCUMULATORS = [
    (lambda **kw: fluid.optimizer.SGD(learning_rate=0.1, **kw), []),
    (
        lambda **kw: fluid.optimizer.Adam(learning_rate=0.1, **kw),
        ["moment1", "moment2", "beta1_pow_acc", "beta2_pow_acc"],
    ),
    (lambda **kw: fluid.optimizer.RMSProp(learning_rate=0.1, momentum=0.9, **kw), ["momentum", "mean_square"]),
    (
        lambda **kw: fluid.optimizer.RMSProp(learning_rate=0.1, momentum=0.9, centered=True, **kw),
        ["momentum", "mean_square", "mean_grad"],
    ),
]


@pytest.mark.parametrize("make, accs", ACCUMULATORS, ids=["sgd", "adam", "rmsprop", "rmsprop-centered"])
def test_get_opti_var_name_list_eager(make, accs):
    lin = torch.nn.Linear(3, 2)
    opt = make(parameters=lin.named_parameters())
    assert opt.get_opti_var_name_list() == []  # no state before the first update
    lin(torch.ones(1, 3)).sum().backward()
    opt.step()
    assert sorted(opt.get_opti_var_name_list()) == sorted(f"{p}_{a}_0" for p in ("weight", "bias") for a in accs)


@pytest.mark.parametrize("make, accs", ACCUMULATORS, ids=["sgd", "adam", "rmsprop", "rmsprop-centered"])
def test_get_opti_var_name_list_static(make, accs):
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.data(name="x", shape=[3, 4], dtype="float32")
        loss = fluid.layers.mean(fluid.layers.fc(x, 2))
        opt = make()
        opt.minimize(loss)
        names = opt.get_opti_var_name_list()
        other = make()
        assert other.get_opti_var_name_list() == []  # appended nothing
    params = [p.name for p in main.global_block().all_parameters()]
    assert sorted(names) == sorted(f"{p}_{a}_0" for p in params for a in accs)
    assert all(main.global_block().var(n).persistable for n in names)
    assert opt.get_opti_var_name_list() == []  # outside the guard: another default main program
