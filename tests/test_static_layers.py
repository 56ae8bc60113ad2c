"""fluid.layers: the same functions run eagerly on tensors and as static ops give the
same numbers; the static learning-rate decays follow torchfluid.lr.formulas step by step."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import layers as L
from torchfluid.lr import formulas as lr_math

RNG = np.random.default_rng(11)
A = RNG.normal(size=(4, 6)).astype("float32")
B = RNG.normal(size=(4, 6)).astype("float32")
P = np.abs(RNG.normal(size=(4, 6))).astype("float32") + 0.1
LBL = RNG.integers(0, 6, size=(4, 1)).astype("int64")

# (layer call on (a, b, p, lbl), inputs used)
LAYERS = [
    ("elementwise_add", lambda a, b, p, lbl: L.elementwise_add(a, b)),
    ("elementwise_sub", lambda a, b, p, lbl: L.elementwise_sub(a, b, act="relu")),
    ("elementwise_mul", lambda a, b, p, lbl: L.elementwise_mul(a, b)),
    ("elementwise_div", lambda a, b, p, lbl: L.elementwise_div(a, p)),
    ("relu", lambda a, b, p, lbl: L.relu(a)),
    ("sigmoid", lambda a, b, p, lbl: L.sigmoid(a)),
    ("tanh", lambda a, b, p, lbl: L.tanh(a)),
    ("softmax", lambda a, b, p, lbl: L.softmax(a)),
    ("mean", lambda a, b, p, lbl: L.mean(a)),
    ("reduce_mean", lambda a, b, p, lbl: L.reduce_mean(a, dim=1)),
    ("reduce_sum", lambda a, b, p, lbl: L.reduce_sum(a)),
    ("reduce_sum_keep", lambda a, b, p, lbl: L.reduce_sum(a, dim=[0], keep_dim=True)),
    ("square_error_cost", lambda a, b, p, lbl: L.square_error_cost(a, b)),
    ("matmul", lambda a, b, p, lbl: L.matmul(a, b, transpose_y=True)),
    ("reshape", lambda a, b, p, lbl: L.reshape(a, [0, 2, 3])),
    ("concat", lambda a, b, p, lbl: L.concat([a, b], axis=1)),
    ("cast", lambda a, b, p, lbl: L.cast(a, "float64")),
    ("cross_entropy", lambda a, b, p, lbl: L.cross_entropy(L.softmax(a), lbl)),
    ("softmax_with_cross_entropy", lambda a, b, p, lbl: L.softmax_with_cross_entropy(a, lbl)),
    ("accuracy", lambda a, b, p, lbl: L.accuracy(a, lbl, k=2)),
    ("scale", lambda a, b, p, lbl: L.scale(a, 2.0, 1.0)),
    ("assign", lambda a, b, p, lbl: L.assign(a)),
]


@pytest.mark.parametrize("name,call", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_eager_equals_static(name, call):
    eager = call(torch.from_numpy(A), torch.from_numpy(B), torch.from_numpy(P), torch.from_numpy(LBL))
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        a = L.data("a", [6])
        b = L.data("b", [6])
        p = L.data("p", [6])
        lbl = L.data("lbl", [1], dtype="int64")
        out = call(a, b, p, lbl)
    (got,) = fluid.Executor().run(
        main, feed={"a": A, "b": B, "p": P, "lbl": LBL}, fetch_list=[out], scope=fluid.Scope()
    )
    assert isinstance(eager, torch.Tensor)
    assert tuple(d if d >= 0 else 4 for d in out.shape) == got.shape
    np.testing.assert_array_equal(got, eager.detach().numpy())


OP_NAMED_LAYERS = [("elementwise_" + k, 2) for k in ("add", "sub", "mul", "div", "max", "min", "pow")] + [
    (k, 1)
    for k in (
        *("relu", "sigmoid", "tanh", "square", "sqrt", "exp", "log", "abs", "reduce_mean", "reduce_sum"),
        *("relu6", "leaky_relu", "elu", "gelu", "softplus", "softsign"),
    )
]


@pytest.mark.parametrize("name,n_in", OP_NAMED_LAYERS, ids=[c[0] for c in OP_NAMED_LAYERS])
def test_op_named_layer_builds_its_own_op(name, n_in):
    layer = getattr(L, name)
    assert layer.__name__ == name
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        layer(*[L.data(f"x{i}", [6]) for i in range(n_in)])
    assert [op.type for op in main.global_block().ops] == [name]


def test_eager_layers_are_differentiable_by_autograd():
    a = torch.from_numpy(A).requires_grad_()
    L.mean(L.square_error_cost(L.tanh(a), torch.from_numpy(B))).backward()
    ref = torch.from_numpy(A).requires_grad_()
    ((torch.tanh(ref) - torch.from_numpy(B)) ** 2).mean().backward()
    torch.testing.assert_close(a.grad, ref.grad)


def test_fill_constant_and_global_var_static_and_eager():
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        c = L.fill_constant([2, 3], "int64", 7)
        g = L.create_global_var([1], 0.5, "float32", persistable=True, name="gv")
        s = L.elementwise_add(L.cast(c, "float32"), g)
    scope, exe = fluid.Scope(), fluid.Executor()
    exe.run(start, scope=scope)
    cv, sv = exe.run(main, fetch_list=[c, s], scope=scope)
    assert cv.dtype == np.int64 and (cv == 7).all() and (sv == 7.5).all()
    np.testing.assert_array_equal(np.array(scope.find_var("gv").get_tensor()), [0.5])
    t = L.fill_constant([2], "float32", 1.5, out=torch.zeros(2))
    assert t.tolist() == [1.5, 1.5]


def test_static_assign_into_a_given_variable():
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        a = L.data("a", [6])
        target = L.create_global_var([4, 6], 0.0, "float32", persistable=True, name="target")
        assert L.assign(L.scale(a, 2.0), output=target) is target
    assert [op.type for op in main.global_block().ops][-1] == "assign"
    scope, exe = fluid.Scope(), fluid.Executor()
    exe.run(start, scope=scope)
    exe.run(main, feed={"a": A}, scope=scope)
    np.testing.assert_array_equal(np.array(scope.find_var("target").get_tensor()), 2 * A)


def test_eager_accuracy_fills_correct_and_total():
    pred = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    label = torch.tensor([[1], [1], [0]])
    correct, total = torch.zeros(1, dtype=torch.int32), torch.zeros(1, dtype=torch.int32)
    acc = L.accuracy(pred, label, correct=correct, total=total)
    assert acc.item() == pytest.approx(1 / 3) and correct.item() == 1 and total.item() == 3


@pytest.mark.parametrize(
    "padding_idx,error,match",
    [(5, ValueError, r"padding_idx must be within \[-5, 5\), got 5"), (1.0, TypeError, "must be an int or None")],
)
def test_embedding_bad_padding_idx(padding_idx, error, match):
    with fluid.program_guard(fluid.Program(), fluid.Program()), pytest.raises(error, match=match):
        L.embedding(L.data("ids", [1], dtype="int64"), size=[5, 3], padding_idx=padding_idx)


def test_embedding_static():
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        ids = L.data("ids", [1], dtype="int64")
        emb = L.embedding(ids, size=[5, 3], padding_idx=-1)
    assert emb.shape == (-1, 3)
    scope, exe = fluid.Scope(), fluid.Executor()
    exe.run(start, scope=scope)
    (out,) = exe.run(main, feed={"ids": np.array([[0], [4], [2]], "int64")}, fetch_list=[emb], scope=scope)
    w = np.array(scope.find_var("embedding_0.w_0").get_tensor())
    np.testing.assert_array_equal(out, np.stack([w[0], np.zeros(3, "float32"), w[2]]))


DECAYS = [
    (
        lambda: L.piecewise_decay([2, 4], [0.3, 0.2, 0.1]),
        lambda s: lr_math.piecewise_decay(s, boundaries=[2, 4], values=[0.3, 0.2, 0.1]),
        0,
    ),
    (
        lambda: L.exponential_decay(0.1, 3, 0.5),
        lambda s: lr_math.exponential_decay(s, learning_rate=0.1, decay_steps=3, decay_rate=0.5),
        0,
    ),
    (
        lambda: L.natural_exp_decay(0.1, 3, 0.5, staircase=True),
        lambda s: lr_math.natural_exp_decay(s, learning_rate=0.1, decay_steps=3, decay_rate=0.5, staircase=True),
        0,
    ),
    (
        lambda: L.inverse_time_decay(0.1, 3, 0.5),
        lambda s: lr_math.inverse_time_decay(s, learning_rate=0.1, decay_steps=3, decay_rate=0.5),
        0,
    ),
    (
        lambda: L.polynomial_decay(0.1, 4, 0.01, power=2.0, cycle=True),
        lambda s: lr_math.polynomial_decay(
            s, learning_rate=0.1, decay_steps=4, end_learning_rate=0.01, power=2.0, cycle=True
        ),
        0,
    ),
    (
        lambda: L.cosine_decay(0.1, 2, 3),
        lambda s: lr_math.cosine_decay(s, learning_rate=0.1, step_each_epoch=2, epochs=3),
        0,
    ),
    (lambda: L.noam_decay(16, 3), lambda s: lr_math.noam_decay(s, d_model=16, warmup_steps=3), 1),
    (
        lambda: L.linear_lr_warmup(0.1, 3, 0.0, 0.1),
        lambda s: lr_math.linear_warmup(s, warmup_steps=3, start_lr=0.0, end_lr=0.1, learning_rate=0.1),
        0,
    ),
    (
        lambda: L.linear_lr_warmup(L.exponential_decay(0.1, 3, 0.5), 3, 0.0, 0.1),
        lambda s: lr_math.linear_warmup(
            s,
            warmup_steps=3,
            start_lr=0.0,
            end_lr=0.1,
            learning_rate=lr_math.exponential_decay(s, learning_rate=0.1, decay_steps=3, decay_rate=0.5),
        ),
        0,
    ),
]


@pytest.mark.parametrize("make,formula,begin", DECAYS)
def test_static_lr_decays_follow_lr_math_per_run(make, formula, begin):
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        lr = make()
    scope, exe = fluid.Scope(), fluid.Executor()
    exe.run(start, scope=scope)
    got = [exe.run(main, fetch_list=[lr], scope=scope)[0][0] for _ in range(8)]
    want = np.array([formula(begin + k) for k in range(8)], dtype=np.float32)
    np.testing.assert_array_equal(np.array(got, dtype=np.float32), want)
    counter = np.array(scope.find_var("@LR_DECAY_COUNTER@").get_tensor())
    assert counter.dtype == np.int64 and counter[0] == begin + 7


# ----------------------------------------------------------------------------- increment
# (dtype, value, start, expected after two runs): the step is cast to x's dtype first (Paddle's
# ``x + static_cast<T>(step)``), so an int counter adds the truncated value
INCREMENT_CASES = [
    ("float32", 1.0, 0.0, 2.0),
    ("float32", 0.25, 1.0, 1.5),
    ("float64", -1.5, 0.0, -3.0),
    ("int64", 2.7, 0, 4),
    ("int32", -1.9, 5, 3),
]


@pytest.mark.parametrize("dtype,value,start,expected", INCREMENT_CASES)
def test_increment_counts_in_place_in_a_program_and_in_dygraph(dtype, value, start, expected):
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup):
        x = L.create_global_var([1], start, dtype, persistable=True, name="counter")
        out = L.increment(x, value)
        copy = L.increment(x, value, in_place=False)
    assert out is x
    scope, exe = fluid.Scope(), fluid.Executor()
    exe.run(startup, scope=scope)
    for _ in range(2):
        got, got_copy = exe.run(main, fetch_list=[x, copy], scope=scope)
    assert got.dtype == np.dtype(dtype) and got_copy.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, [expected])
    np.testing.assert_array_equal(got_copy, got + np.array(value).astype(dtype))
    with fluid.dygraph.guard():
        v = fluid.dygraph.to_variable(np.array([start], dtype))
        assert L.increment(v, value) is v and L.increment(v, value) is v
        np.testing.assert_array_equal(v.numpy(), [expected])
        new = L.increment(v, value, in_place=False)
        np.testing.assert_array_equal(v.numpy(), [expected])
        assert new.numpy().dtype == np.dtype(dtype)


@pytest.mark.parametrize(
    "make,value,error,match",
    [
        (lambda: np.zeros(1, "float32"), 1.0, TypeError, r"increment: x must be a Variable or tensor, got ndarray"),
        (lambda: torch.zeros(3), 1.0, ValueError, r"x must have exactly one element, got shape \[3\]"),
        (lambda: torch.zeros(1), float("nan"), ValueError, r"value must be a finite number"),
        (lambda: torch.zeros(1), "1", TypeError, r"value"),
    ],
)
def test_increment_refuses_bad_input(make, value, error, match):
    x = make()
    with pytest.raises(error, match=match):
        L.increment(x, value)
    if isinstance(x, torch.Tensor):
        assert not x.any()
