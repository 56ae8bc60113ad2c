"""The IR records: names, shapes, roles, clone, printing, guards and build errors."""

import numpy as np
import pytest

import torchfluid as fluid
from torchfluid import layers as L
from torchfluid.static import OpRole
from torchfluid.static._infer import OpBuildError


def net(optimizer=True):
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = L.data("x", [13])
        y = L.data("y", [1])
        pred = L.fc(x, 1)
        loss = L.mean(L.square_error_cost(pred, y))
        if optimizer:
            fluid.optimizer.RMSProp(0.1).minimize(loss)
    return main, start, x, y, pred, loss


def test_names_shapes_and_dtypes_like_paddle():
    main, start, x, y, pred, loss = net(optimizer=False)
    assert (x.shape, x.dtype, x.is_data, x.stop_gradient) == ((-1, 13), "float32", True, True)
    assert pred.name == "fc_0.tmp_1" and pred.shape == (-1, 1)
    assert loss.name == "mean_0.tmp_0" and loss.shape == (1,)
    params = main.global_block().all_parameters()
    assert [(p.name, p.shape, p.trainable) for p in params] == [("fc_0.w_0", (13, 1), True), ("fc_0.b_0", (1,), True)]
    assert [op.type for op in main.global_block().ops] == [
        "mul",
        "elementwise_add",
        "elementwise_sub",
        "square",
        "mean",
    ]
    assert [op.type for op in start.global_block().ops] == ["initializer", "initializer"]
    assert main.global_block().var("square_error_cost_0.tmp_1").shape == (-1, 1)


@pytest.mark.parametrize(
    "shape,append,expected",
    [
        ([13], True, (-1, 13)),
        ([3, 4], True, (-1, 3, 4)),
        ([-1, 5], True, (-1, 5)),
        ([None, 5], True, (-1, 5)),
        ([7, 2], False, (7, 2)),
    ],
)
def test_data_shapes(shape, append, expected):
    with fluid.program_guard(fluid.Program()):
        assert L.data("d", shape, append_batch_size=append).shape == expected
    with fluid.program_guard(fluid.Program()):
        assert fluid.data("d", [None, 3]).shape == (-1, 3)


def test_ops_record_role_and_user_line():
    main, *_ = net()
    ops = main.global_block().ops
    roles = {op.type: op.role for op in ops}
    assert roles["mul"] == OpRole.Forward
    assert roles["mean"] == OpRole.Forward | OpRole.Loss
    assert roles["mul_grad"] == OpRole.Backward
    assert roles["rmsprop"] == OpRole.Optimize
    fname, line, code = ops[0].callsite
    assert fname == __file__ and "L.fc(x, 1)" in code


def test_clone_for_test_keeps_forward_only_and_runs_without_changing_params():
    main, start, x, y, pred, loss = net()
    test_prog = main.clone(for_test=True)
    assert [op.type for op in test_prog.global_block().ops] == [
        "mul",
        "elementwise_add",
        "elementwise_sub",
        "square",
        "mean",
    ]
    assert not any(n.endswith("@GRAD") for n in test_prog.global_block().vars)
    test_vars = test_prog.global_block().vars
    accumulators = [n for n, v in main.global_block().vars.items() if v.belong_to_optimizer]
    assert accumulators and not any(n in test_vars for n in accumulators)  # persistable, yet the optimizer's
    assert all(p.name in test_vars for p in main.all_parameters())
    full = main.clone()
    assert [o.type for o in full.global_block().ops] == [o.type for o in main.global_block().ops]
    assert list(full.global_block().vars) == list(main.global_block().vars)
    scope, exe = fluid.Scope(), fluid.Executor()
    exe.run(start, scope=scope)
    before = {n: np.array(scope.find_var(n).get_tensor()) for n in scope.local_var_names()}
    feed = {"x": np.ones((3, 13), "float32"), "y": np.zeros((3, 1), "float32")}
    (out1,) = exe.run(test_prog, feed=feed, fetch_list=[loss.name], scope=scope)
    (out2,) = exe.run(test_prog, feed=feed, fetch_list=[loss.name], scope=scope)
    assert out1 == out2
    for n, v in before.items():
        np.testing.assert_array_equal(np.array(scope.find_var(n).get_tensor()), v)


def test_to_string_is_readable():
    main, start, *_ = net()
    text = str(main)
    assert "param fc_0.w_0 : LOD_TENSOR.shape(13, 1).dtype(float32)" in text
    assert "{Out=['fc_0.tmp_0']} = mul(inputs={X=['x'], Y=['fc_0.w_0']}" in text
    assert "rmsprop(" in text and "persist var fc_0.w_0_mean_square_0" in text
    assert "fill_constant" in str(start)


def test_unique_name_guard_and_prefix():
    with fluid.unique_name.guard():
        assert fluid.unique_name.generate("fc") == "fc_0"
        assert fluid.unique_name.generate("fc") == "fc_1"
        with fluid.unique_name.guard("pre_"):
            assert fluid.unique_name.generate("fc") == "pre_fc_0"
        assert fluid.unique_name.generate("fc") == "fc_2"


def test_program_guard_restores_defaults_and_checks_types():
    outer = fluid.default_main_program()
    p = fluid.Program()
    with fluid.program_guard(p):
        assert fluid.default_main_program() is p
    assert fluid.default_main_program() is outer
    with pytest.raises(TypeError, match="main_program must be a Program"):
        with fluid.program_guard("main"):
            pass


BAD_BUILDS = [
    (lambda x: L.matmul(x, x), "op matmul built at .*test_static_program.py.*X=x: float32\\[-1, 13\\]"),
    (lambda x: L.reshape(x, [-1, -1]), "op reshape2 built at .*more than one -1"),
    (lambda x: L.elementwise_add(x, L.data("z", [5])), "op elementwise_add .*Y=z: float32\\[-1, 5\\]"),
    (lambda x: L.fc(x, 2, num_flatten_dims=2), "num_flatten_dims=2 must be in \\[1, 1\\]"),
]


@pytest.mark.parametrize("build,message", BAD_BUILDS)
def test_build_errors_name_the_op_inputs_and_line(build, message):
    with fluid.program_guard(fluid.Program(), fluid.Program()), fluid.unique_name.guard():
        x = L.data("x", [13])
        with pytest.raises((OpBuildError, ValueError), match=message):
            build(x)


def test_block_var_lookup_errors():
    main, *_ = net(optimizer=False)
    with pytest.raises(ValueError, match="var 'nope' is not in block 0"):
        main.global_block().var("nope")


def test_variable_operators_build_elementwise_ops():
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        a = L.data("a", [3])
        c = (a + 1.0) * a - a / 2.0
        d = -c
    types = [o.type for o in main.global_block().ops]
    assert types == [
        "fill_constant",
        "elementwise_add",
        "elementwise_mul",
        "fill_constant",
        "elementwise_div",
        "elementwise_sub",
        "scale",
    ]
    (out,) = fluid.Executor().run(
        main, feed={"a": np.array([[1.0, 2.0, 4.0]], "float32")}, fetch_list=[d], scope=fluid.Scope()
    )
    a_ = np.array([[1.0, 2.0, 4.0]], "float32")
    np.testing.assert_allclose(out, -((a_ + 1) * a_ - a_ / 2))


@pytest.mark.parametrize(
    "dtype, expected",
    [
        ("int32", np.array([[1, -2, 4]], "int32")),
        ("float64", np.array([[1.75, -2.5, 4.0]], "float64")),
        ("bool", np.array([[True, True, True]])),
    ],
)
def test_variable_astype_appends_a_cast_op(dtype, expected):
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        a = L.data("a", [3])
        b = a.astype(dtype)
    assert [o.type for o in main.global_block().ops] == ["cast"]
    assert b.dtype == dtype
    (out,) = fluid.Executor().run(
        main, feed={"a": np.array([[1.75, -2.5, 4.0]], "float32")}, fetch_list=[b], scope=fluid.Scope()
    )
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out, expected)
