"""Hostile and careless inputs to the static-mode features: ``fluid.op.Operator`` on scope
values, static gradient clipping, program descriptions, inference models and the Executor.
Every bad input must raise a clear error (naming the op, slot or attribute, the value and
what is allowed) and leave every variable as it was."""

import re

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid.op import Operator
from torchfluid.static.executor import FeedError
from torchfluid.static.plan import OpRunError

PLACE = fluid.CPUPlace()

# ---------------------------------------------------------------- fluid.op.Operator (raw ops)

SHAPE = (4, 3)
_VALUES = {
    "param": np.linspace(-1, 1, 12, dtype=np.float32).reshape(SHAPE),
    "grad": np.full(SHAPE, 0.5, np.float32),
    "ms": np.ones(SHAPE, np.float32),
    "mom": np.full(SHAPE, 0.25, np.float32),
    "mg": np.full(SHAPE, 0.1, np.float32),
    "lr": np.array([0.1], np.float32),
    "m1": np.full(SHAPE, 0.1, np.float32),
    "m2": np.full(SHAPE, 0.2, np.float32),
    "b1": np.array([0.9], np.float32),
    "b2": np.array([0.999], np.float32),
}
SLOTS = {
    "rmsprop": {
        "Param": "param", "Grad": "grad", "MeanSquare": "ms", "Moment": "mom", "LearningRate": "lr",
        "ParamOut": "param", "MeanSquareOut": "ms", "MomentOut": "mom",
    },
    "sgd": {"Param": "param", "Grad": "grad", "LearningRate": "lr", "ParamOut": "param"},
    "adam": {
        "Param": "param", "Grad": "grad", "LearningRate": "lr", "Moment1": "m1", "Moment2": "m2", "Beta1Pow": "b1",
        "Beta2Pow": "b2",
        "ParamOut": "param", "Moment1Out": "m1", "Moment2Out": "m2", "Beta1PowOut": "b1", "Beta2PowOut": "b2",
    },
    "adagrad": {
        "Param": "param", "Grad": "grad", "Moment": "mom", "LearningRate": "lr",
        "ParamOut": "param", "MomentOut": "mom",
    },
    "momentum": {
        "Param": "param", "Grad": "grad", "Velocity": "mom", "LearningRate": "lr", "ParamOut": "param",
        "VelocityOut": "mom", "mu": 0.9,
    },
}  # fmt: skip


def _scope(values=None, sparse=None):
    """A scope holding ``_VALUES`` updated by ``values``; ``sparse = (height, rows, value)``
    makes ``grad`` a SelectedRows."""
    scope = fluid.Scope()
    for name, v in {**_VALUES, **(values or {})}.items():
        scope.var(name).get_tensor().set(v, PLACE)
    if sparse is not None:
        height, rows, value = sparse
        scope.erase(["grad"])
        sr = scope.var("grad").get_selected_rows()
        sr.set_height(height)
        sr.set_rows(rows)
        sr.get_tensor().set(value, PLACE)
    return scope


def _raises(error, match, fn):
    """``fn()`` raises ``error`` matching ``match``: itself, or as the cause of the executor's
    OpRunError (which adds the op's line and inputs)."""
    with pytest.raises((error, OpRunError)) as info:
        fn()
    exc = info.value.__cause__ if isinstance(info.value, OpRunError) else info.value
    assert isinstance(exc, error), repr(exc)
    assert re.search(match, str(exc)), str(exc)


def _snapshot(scope):
    return {n: scope.value(n).clone() for n in scope.local_var_names() if isinstance(scope.value(n), torch.Tensor)}


def _assert_unchanged(scope, before):
    for n, t in before.items():
        now = scope.value(n)
        assert now.dtype == t.dtype and now.shape == t.shape, n
        assert torch.equal(torch.nan_to_num(now), torch.nan_to_num(t)), f"variable {n!r} changed"


_ROWS2 = np.ones((2, 3), np.float32)
# (op type, keyword overrides, scope value overrides, sparse grad, error, message)
OPERATOR_BAD = [
    # attributes of the wrong type or out of range
    ("rmsprop", {"epsilon": True}, None, None, TypeError, r"rmsprop: attribute epsilon must be a real number .*True"),
    ("rmsprop", {"epsilon": "1e-6"}, None, None, TypeError, r"attribute epsilon must be a real number.*'1e-6'"),
    (
        "rmsprop",
        {"epsilon": float("nan")},
        None,
        None,
        ValueError,
        r"rmsprop: attribute epsilon must be >= 0, got nan",
    ),
    ("rmsprop", {"epsilon": float("inf")}, None, None, ValueError, r"attribute epsilon must be >= 0, got inf"),
    ("rmsprop", {"epsilon": -1e-6}, None, None, ValueError, r"attribute epsilon must be >= 0, got -1e-06"),
    ("rmsprop", {"decay": float("nan")}, None, None, ValueError, r"attribute decay must be in \[0, 1\), got nan"),
    ("rmsprop", {"decay": 1.5}, None, None, ValueError, r"attribute decay must be in \[0, 1\), got 1.5"),
    ("rmsprop", {"decay": -0.1}, None, None, ValueError, r"attribute decay must be in \[0, 1\), got -0.1"),
    ("rmsprop", {"decay": 1.0}, None, None, ValueError, r"attribute decay must be in \[0, 1\), got 1.0"),
    ("rmsprop", {"momentum": float("inf")}, None, None, ValueError, r"attribute momentum must be >= 0, got inf"),
    ("rmsprop", {"momentum": -0.5}, None, None, ValueError, r"attribute momentum must be >= 0, got -0.5"),
    ("rmsprop", {"centered": 1}, None, None, TypeError, r"attribute centered must be a bool, got 1"),
    ("adam", {"beta1": float("nan")}, None, None, ValueError, r"adam: attribute beta1 must be in \[0, 1\), got nan"),
    ("adam", {"beta1": 1.0}, None, None, ValueError, r"attribute beta1 must be in \[0, 1\), got 1.0"),
    ("adam", {"beta2": 2.0}, None, None, ValueError, r"attribute beta2 must be in \[0, 1\), got 2.0"),
    ("adam", {"epsilon": 0.0}, None, None, ValueError, r"attribute epsilon must be > 0, got 0.0"),
    ("adam", {"epsilon": float("inf")}, None, None, ValueError, r"attribute epsilon must be > 0, got inf"),
    ("adam", {"lazy_mode": "no"}, None, None, TypeError, r"attribute lazy_mode must be a bool, got 'no'"),
    ("adam", {"min_row_size_to_use_multithread": "x"}, None, None, TypeError, r"min_row_size_to_use_multithread"),
    ("adam", {"min_row_size_to_use_multithread": True}, None, None, TypeError, r"must be an int >= 0, got True"),
    ("adam", {"min_row_size_to_use_multithread": -1}, None, None, ValueError, r"must be an int >= 0, got -1"),
    ("adam", {"min_row_size_to_use_multithread": 1.5}, None, None, TypeError, r"must be an int >= 0, got 1.5"),
    # LearningRate and beta powers
    ("sgd", {}, {"lr": np.array([np.nan], np.float32)}, None, ValueError, r"sgd: input LearningRate holds nan"),
    ("rmsprop", {}, {"lr": np.array([np.inf], np.float32)}, None, ValueError, r"LearningRate holds inf; allowed"),
    ("adam", {}, {"lr": np.array([0.1, 0.2], np.float32)}, None, ValueError, r"LearningRate must hold a 1-element"),
    ("sgd", {}, {"lr": np.zeros((0,), np.float32)}, None, ValueError, r"LearningRate must hold a 1-element"),
    ("rmsprop", {}, {"lr": np.array([1], np.int64)}, None, ValueError, r"1-element floating-point tensor, got torch"),
    ("adam", {}, {"b1": np.array([np.nan], np.float32)}, None, ValueError, r"adam: input Beta1Pow holds nan"),
    ("adam", {}, {"b2": np.array([1.0], np.float32)}, None, ValueError, r"Beta2Pow holds 1.0; allowed: .*\[0, 1\)"),
    ("adam", {}, {"b1": np.array([0.9, 0.9], np.float32)}, None, ValueError, r"Beta1Pow must hold a 1-element"),
    # dense slots of the wrong shape or dtype
    ("rmsprop", {}, {"grad": np.ones((3, 4), np.float32)}, None, ValueError, r"input Grad is float32 \[3, 4\]"),
    ("adam", {}, {"grad": np.ones(SHAPE, np.float64)}, None, ValueError, r"input Grad is float64"),
    ("sgd", {}, {"param": np.ones(SHAPE, np.int32)}, None, TypeError, r"Param must hold a floating-point"),
    ("rmsprop", {}, {"mom": np.ones((4, 1), np.float32)}, None, ValueError, r"input Moment is float32 \[4, 1\]"),
    ("adam", {}, {"m2": np.ones(SHAPE, np.float16)}, None, ValueError, r"input Moment2 is float16"),
    # MeanGrad: checked whenever given, needed when centered
    (
        "rmsprop",
        {"centered": True},
        None,
        None,
        ValueError,
        r"op 'raw_rmsprop' needs input slot 'MeanGrad' when centered is True",
    ),
    (
        "rmsprop",
        {"MeanGrad": "mg", "MeanGradOut": "mg"},
        {"mg": np.zeros((2, 3), np.float32)},
        None,
        ValueError,
        r"input MeanGrad is float32 \[2, 3\]",
    ),
    # SelectedRows gradients
    (
        "rmsprop",
        {},
        None,
        (4, [0, 4], _ROWS2),
        ValueError,
        r"row index 4 is out of range; allowed: 0 <= row < height=4",
    ),
    ("sgd", {}, None, (4, [0, -1], _ROWS2), ValueError, r"row index -1 is out of range"),
    ("adam", {"lazy_mode": True}, None, (4, [9, 0], _ROWS2), ValueError, r"row index 9 is out of range"),
    ("sgd", {}, None, (5, [0, 1], _ROWS2), ValueError, r"stands for shape \[5, 3\] \(height 5\).*\[4, 3\]"),
    ("adam", {}, None, (4, [0, 1, 2], _ROWS2), ValueError, r"value has shape \[2, 3\] but 3 rows"),
    ("rmsprop", {}, None, (4, [0, 1], np.ones((2, 5), np.float32)), ValueError, r"stands for shape \[4, 5\]"),
    ("sgd", {}, None, (4, [0, 1], _ROWS2.astype(np.float64)), ValueError, r"\(SelectedRows\) is float64"),
    # slots: missing, extra, aliased
    ("sgd", {"Grad": None}, None, None, ValueError, r"Operator 'sgd' \(Paddle's raw op\): slot Grad is missing"),
    ("rmsprop", {"Foo": "x"}, None, None, TypeError, r"unknown slot or attribute 'Foo'; allowed slots: Param"),
    ("sgd", {"epsilon": 1.0}, None, None, TypeError, r"unknown slot or attribute 'epsilon'.*attributes: none"),
    ("adam", {"Grad": ["grad", "grad"]}, None, None, ValueError, r"slot Grad takes one variable name"),
    ("rmsprop", {"ParamOut": "grad"}, None, None, ValueError, r"ParamOut names variable 'grad', which input slot"),
    ("sgd", {"ParamOut": "other"}, None, (4, [0, 1], _ROWS2), ValueError, r"SelectedRows Grad, ParamOut must name"),
    ("rmsprop", {"Grad": "param"}, None, None, ValueError, r"slots Param and Grad both name variable 'param'"),
    (
        "rmsprop",
        {"Moment": "ms", "MomentOut": "ms"},
        None,
        None,
        ValueError,
        r"slots MeanSquare and Moment both name variable 'ms'",
    ),
    ("adam", {"Beta2Pow": "b1", "Beta2PowOut": "b1"}, None, None, ValueError, r"Beta1Pow and Beta2Pow both name"),
    ("sgd", {"LearningRate": "param"}, None, None, ValueError, r"slots Param and LearningRate both name"),
    # adagrad
    ("adagrad", {"epsilon": 0.0}, None, None, ValueError, r"adagrad: attribute epsilon must be > 0, got 0.0"),
    ("adagrad", {"epsilon": -1.0}, None, None, ValueError, r"attribute epsilon must be > 0, got -1.0"),
    ("adagrad", {"epsilon": float("nan")}, None, None, ValueError, r"attribute epsilon must be > 0, got nan"),
    ("adagrad", {"epsilon": True}, None, None, TypeError, r"attribute epsilon must be a real number .*True"),
    ("adagrad", {"multi_precision": True}, None, None, TypeError, r"unknown slot or attribute 'multi_precision'"),
    (
        "adagrad",
        {},
        {"mom": np.ones((3, 4), np.float32)},
        None,
        ValueError,
        r"adagrad: input Moment is float32 \[3, 4\]",
    ),
    ("adagrad", {}, {"mom": np.ones(SHAPE, np.float64)}, None, ValueError, r"input Moment is float64"),
    ("adagrad", {}, {"lr": np.array([0.1, 0.2], np.float32)}, None, ValueError, r"LearningRate must hold a 1-element"),
    ("adagrad", {}, {"lr": np.array([np.inf], np.float32)}, None, ValueError, r"input LearningRate holds inf"),
    ("adagrad", {}, {"grad": np.ones((4, 2), np.float32)}, None, ValueError, r"input Grad is float32 \[4, 2\]"),
    ("adagrad", {}, None, (4, [1, 4], _ROWS2), ValueError, r"adagrad: input Grad: row index 4 is out of range"),
    ("adagrad", {}, None, (4, [0, 1], _ROWS2.astype(np.float64)), ValueError, r"\(SelectedRows\) is float64"),
    ("adagrad", {"MomentOut": "grad"}, None, None, ValueError, r"MomentOut names variable 'grad', which input slot"),
    ("adagrad", {"Moment": "param", "MomentOut": "param"}, None, None, ValueError, r"slots Param and Moment both name"),
    ("adagrad", {"Moment": None}, None, None, ValueError, r"slot Moment is missing"),
    # momentum
    ("momentum", {"mu": None}, None, None, ValueError, r"momentum: attribute mu is missing; allowed: a finite real"),
    ("momentum", {"mu": -0.1}, None, None, ValueError, r"momentum: attribute mu must be >= 0, got -0.1"),
    ("momentum", {"mu": float("nan")}, None, None, ValueError, r"attribute mu must be >= 0, got nan"),
    ("momentum", {"mu": True}, None, None, TypeError, r"attribute mu must be a real number .*True"),
    ("momentum", {"use_nesterov": 1}, None, None, TypeError, r"attribute use_nesterov must be a bool, got 1"),
    ("momentum", {"multi_precision": "no"}, None, None, TypeError, r"attribute multi_precision must be a bool"),
    ("momentum", {"multi_precision": True}, None, None, ValueError, r"multi_precision=True needs the MasterParam"),
    ("momentum", {"MasterParam": "m1"}, None, None, TypeError, r"unknown slot or attribute 'MasterParam'"),
    (
        "momentum",
        {"regularization_method": "l1_decay"},
        None,
        None,
        ValueError,
        r"attribute regularization_method is 'l1_decay'; allowed: '' or 'l2_decay'",
    ),
    ("momentum", {"regularization_coeff": -1.0}, None, None, ValueError, r"regularization_coeff must be >= 0, got -1"),
    (
        "momentum",
        {"rescale_grad": float("inf")},
        None,
        None,
        ValueError,
        r"attribute rescale_grad must be a finite number, got inf",
    ),
    (
        "momentum",
        {},
        {"mom": np.ones((3, 4), np.float32)},
        None,
        ValueError,
        r"momentum: input Velocity is float32 \[3, 4\]",
    ),
    ("momentum", {}, {"mom": np.ones(SHAPE, np.float64)}, None, ValueError, r"input Velocity is float64"),
    ("momentum", {}, {"lr": np.array([0.1, 0.2], np.float32)}, None, ValueError, r"LearningRate must hold a 1-elem"),
    ("momentum", {}, {"lr": np.array([np.nan], np.float32)}, None, ValueError, r"input LearningRate holds nan"),
    ("momentum", {}, {"grad": np.ones((4, 2), np.float32)}, None, ValueError, r"input Grad is float32 \[4, 2\]"),
    ("momentum", {}, None, (4, [1, 4], _ROWS2), ValueError, r"momentum: input Grad: row index 4 is out of range"),
    ("momentum", {}, None, (4, [0, 1], _ROWS2.astype(np.float64)), ValueError, r"\(SelectedRows\) is float64"),
    ("momentum", {"VelocityOut": "grad"}, None, None, ValueError, r"VelocityOut names variable 'grad', which input"),
    (
        "momentum",
        {"Velocity": "param", "VelocityOut": "param"},
        None,
        None,
        ValueError,
        r"slots Param and Velocity both",
    ),
    ("momentum", {"Velocity": None}, None, None, ValueError, r"slot Velocity is missing"),
]


@pytest.mark.parametrize("op_type,kw,values,sparse,error,match", OPERATOR_BAD)
def test_operator_bad_input_raises_and_changes_nothing(op_type, kw, values, sparse, error, match):
    scope = _scope(values, sparse)
    before = _snapshot(scope)
    slots = {k: v for k, v in {**SLOTS[op_type], **kw}.items() if v is not None}
    _raises(error, match, lambda: Operator(op_type, **slots).run(scope, PLACE))
    _assert_unchanged(scope, before)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda s: Operator(None), r"Operator: type must be an op type name \(a str\), got None"),
        (lambda s: Operator(["sgd"]), r"type must be an op type name \(a str\), got \['sgd'\]"),
        (lambda s: Operator("sgd", **SLOTS["sgd"]).run(None, PLACE), r"Operator sgd: run\(scope\) takes a Scope"),
        (lambda s: Operator("sgd", **SLOTS["sgd"]).run({"param": 1}, PLACE), r"takes a Scope, got dict"),
        (
            lambda s: Operator("elementwise_add", X="param", Y="grad", Out="o", foo=1).run(s, PLACE),
            r"Operator 'elementwise_add': unknown slot or attribute 'foo'; allowed slots: X, Y, Out; attributes: axis",
        ),
    ],
)
def test_operator_type_scope_and_attributes_are_checked_up_front(make, match):
    scope = _scope()
    before = _snapshot(scope)
    with pytest.raises(TypeError, match=match):
        make(scope)
    _assert_unchanged(scope, before)
    assert scope.find_var("o") is None


def test_adam_on_a_0d_parameter_matches_the_1_element_update():
    """A 0-d Param (and state) runs as its 1-element view, as a [1] parameter does."""
    vals = {"param": np.float32(0.3), "grad": np.float32(0.5), "m1": np.float32(0.1), "m2": np.float32(0.2)}
    scalar = _scope(vals)
    vector = _scope({k: np.reshape(v, (1,)) for k, v in vals.items()})
    for scope in (scalar, vector):
        Operator("adam", **SLOTS["adam"]).run(scope, PLACE)
    for n in ("param", "m1", "m2", "b1", "b2"):
        got, want = np.array(scalar.find_var(n).get_tensor()), np.array(vector.find_var(n).get_tensor())
        assert got.shape == (() if n in vals else (1,))
        np.testing.assert_array_equal(got.reshape(-1), want)
    # and the update is Adam's: p - lr * sqrt(1 - b2p) / (1 - b1p) * m1 / (sqrt(m2) + eps * sqrt(1 - b2p))
    m1 = 0.9 * 0.1 + 0.1 * 0.5
    m2 = 0.999 * 0.2 + 0.001 * 0.25
    c = np.sqrt(1 - 0.999)
    want_p = 0.3 - 0.1 * c / (1 - 0.9) * m1 / (np.sqrt(m2) + 1e-8 * c)
    np.testing.assert_allclose(np.array(scalar.find_var("param").get_tensor()), want_p, rtol=1e-5)


@pytest.mark.parametrize("op_type", ["rmsprop", "sgd", "adam", "adagrad", "momentum"])
def test_non_finite_sparse_rows_stay_in_their_rows(op_type):
    """NaN gradient values are data (Paddle propagates them): they reach exactly the rows they are in."""
    value = np.array([[np.nan, 1.0, 1.0], [1.0, 1.0, 1.0]], np.float32)
    scope = _scope(sparse=(4, [2, 0], value))
    Operator(op_type, **SLOTS[op_type]).run(scope, PLACE)
    p = np.array(scope.find_var("param").get_tensor())
    assert np.isnan(p[2]).any() and np.isfinite(p[[0, 1, 3]]).all()


# ---------------------------------------------------------------- program descriptions and inference models


def _small_program():
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start):
        x = fluid.data("x", [None, 3], "float32")
        y = fluid.layers.fc(x, 2, act="relu")
    return main, start, y


def _drop(*path):
    """A mutation deleting ``path`` (keys and indices) from the description."""

    def mutate(d):
        for k in path[:-1]:
            d = d[k]
        del d[path[-1]]

    return mutate


def _set(path, value):
    """A mutation setting ``path`` (keys and indices) of the description to ``value``."""

    def mutate(d):
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value

    return mutate


def _clip_state(cls, **state):
    """A described clip object of class ``torchfluid.clip.<cls>`` with ``state``."""
    return {"__object__": f"torchfluid.clip:{cls}", "state": {"__dict__": [[k, v] for k, v in state.items()]}}


_OP0 = ("blocks", 0, "ops", 0)
_VAR0 = ("blocks", 0, "vars", 0)
# (case, mutation of the parsed description or the text itself, message)
DESC_BAD = [
    ("deep nesting", "[" * 100000 + "]" * 100000, r"not a torchfluid program description \(JSON expected\)"),
    ("int of 5000 digits", '{"format": ' + "9" * 5000 + "}", r"JSON expected\).*digits"),
    ("seed inf", _set(("random_seed",), float("inf")), r"random_seed is inf; allowed: an int in \[0, 2\*\*63 - 1\]"),
    ("seed 1.5", _set(("random_seed",), 1.5), r"random_seed is 1.5; allowed"),
    ("seed negative", _set(("random_seed",), -5), r"random_seed is -5; allowed"),
    ("seed bool", _set(("random_seed",), True), r"random_seed is True; allowed"),
    ("seed huge", _set(("random_seed",), 10**400), r"random_seed is an integer of 401 digits"),
    ("block parent itself", _set(("blocks", 0, "parent_idx"), 0), r"block 0 has idx 0 and parent_idx 0; allowed"),
    ("block parent missing", _set(("blocks", 0, "parent_idx"), 7), r"parent_idx 7; allowed"),
    ("block idx float", _set(("blocks", 0, "idx"), 0.0), r"block 0 has idx 0.0"),
    ("unknown op type", _set((*_OP0, "type"), "no_such_op"), r"block 0 op 0: unknown op type 'no_such_op'"),
    ("op type int", _set((*_OP0, "type"), 3), r"op type must be a str, got 3"),
    ("op inputs str", _set((*_OP0, "inputs"), "x"), r"op mul inputs must be an object slot -> names, got 'x'"),
    ("op input names str", _set((*_OP0, "inputs", "X"), "x"), r"op mul input X must be a list of names, got 'x'"),
    ("op unknown slot", _set((*_OP0, "inputs", "Bogus"), ["x"]), r"op mul has no input slot 'Bogus'; allowed: X, Y"),
    (
        "op unknown attr",
        _set((*_OP0, "attrs", "bogus"), 1),
        r"op mul has no attribute 'bogus'; allowed: x_num_col_dims",
    ),
    ("op missing input var", _set((*_OP0, "inputs", "X"), ["ghost"]), r"input X names variable 'ghost', which is not"),
    ("op missing output var", _set((*_OP0, "outputs", "Out"), ["ghost"]), r"output Out names variable 'ghost'"),
    ("op attrs list", _set((*_OP0, "attrs"), []), r"op mul attrs must be an object, got \[\]"),
    (
        "op attr str for int",
        _set((*_OP0, "attrs", "x_num_col_dims"), "one"),
        r"'x_num_col_dims' is 'one'; allowed: an int",
    ),
    ("op attr float for int", _set((*_OP0, "attrs", "x_num_col_dims"), 1.5), r"'x_num_col_dims' is 1.5; allowed"),
    ("op attr bool for int", _set((*_OP0, "attrs", "x_num_col_dims"), True), r"'x_num_col_dims' is True; allowed"),
    (
        "var shape negative",
        _set((*_VAR0, "shape"), {"__tuple__": [-7, 3]}),
        r"variable 'x' has shape \(-7, 3\); allowed",
    ),
    ("var shape huge", _set((*_VAR0, "shape"), {"__tuple__": [2**64]}), r"has shape \(18446744073709551616,\)"),
    ("var shape str", _set((*_VAR0, "shape"), "abc"), r"variable 'x' has shape 'abc'"),
    ("var flag str", _set((*_VAR0, "persistable"), "yes"), r"field 'persistable' must be true or false, got 'yes'"),
    (
        "var described twice",
        lambda d: d["blocks"][0]["vars"].append(d["blocks"][0]["vars"][0]),
        r"'x' is described twice",
    ),
    (
        "array shape negative",
        _set((*_OP0, "attrs", "extra"), {"__array__": {"dtype": "float32", "shape": [-1], "data": [1]}}),
        r"array shape \[-1\]; allowed: a list of ints >= 0",
    ),
    (
        "clip state clip_norm str",
        _set((*_OP0, "attrs", "extra"), _clip_state("ClipGradByNorm", clip_norm="x")),
        r"object 'torchfluid.clip:ClipGradByNorm': ArgumentTypeError: ClipGradByNorm.clip_norm must be a real",
    ),
    (
        "clip state clip_norm nan",
        _set((*_OP0, "attrs", "extra"), _clip_state("ClipGradByGlobalNorm", clip_norm=float("nan"), group_name="g")),
        r"ClipGradByGlobalNorm.clip_norm must be > 0, got nan",
    ),
    (
        "clip state group_name int",
        _set((*_OP0, "attrs", "extra"), _clip_state("ClipGradByGlobalNorm", clip_norm=1.0, group_name=3)),
        r"group_name must be a str, got 3",
    ),
    (
        "clip state min above max",
        _set((*_OP0, "attrs", "extra"), _clip_state("ClipGradByValue", min=2.0, max=1.0)),
        r"ClipGradByValue: min must be <= max, got min=2 and max=1",
    ),
    (
        "clip state missing clip_norm",
        _set((*_OP0, "attrs", "extra"), _clip_state("ClipGradByNorm")),
        r"object 'torchfluid.clip:ClipGradByNorm': AttributeError",
    ),
]


@pytest.mark.parametrize("case,mutation,match", DESC_BAD, ids=[c[0] for c in DESC_BAD])
def test_parse_from_string_refuses_a_bad_description(case, mutation, match):
    import json

    from torchfluid.static.program_desc import ProgramDescError

    main, _, _ = _small_program()
    text = main.desc.serialize_to_string()
    if callable(mutation):
        desc = json.loads(text)
        assert desc["blocks"][0]["ops"][0]["type"] == "mul" and desc["blocks"][0]["vars"][0]["name"] == "x"
        mutation(desc)
        text = json.dumps(desc)
    else:
        text = mutation
    with pytest.raises(ProgramDescError, match=match):
        fluid.Program.parse_from_string(text)
    assert isinstance(fluid.Program.parse_from_string(main.desc.serialize_to_string()), fluid.Program)


# (case, mutation of the __model__ description or the text itself, message)
INFERENCE_BAD = [
    ("deep nesting", "[" * 100000, r"not a torchfluid inference program \(JSON expected\)"),
    ("int of 5000 digits", '{"a": ' + "9" * 5000 + "}", r"JSON expected\).*digits"),
    ("op inputs str", _set(("ops", 0, "inputs"), "x"), r"op 0: op mul inputs must be an object slot -> names"),
    ("op attrs list", _set(("ops", 0, "attrs"), []), r"op 0: op mul attrs must be an object, got \[\]"),
    ("op attr str for int", _set(("ops", 0, "attrs", "x_num_col_dims"), "one"), r"'x_num_col_dims' is 'one'"),
    ("op unknown slot", _set(("ops", 0, "outputs", "Zzz"), ["x"]), r"op mul has no output slot 'Zzz'; allowed: Out"),
    ("op unknown attr", _set(("ops", 0, "attrs", "bogus"), 1), r"op 0: op mul has no attribute 'bogus'"),
    ("op output var missing", _set(("ops", 0, "outputs", "Out"), ["ghost"]), r"output Out names variable 'ghost'"),
    ("var shape negative", _set(("vars", 0, "shape"), [-5, 3]), r"variable 'x' has shape \[-5, 3\]; allowed"),
    ("var shape float", _set(("vars", 0, "shape"), [1.5, 3]), r"variable 'x' has shape \[1.5, 3\]"),
    ("var flag str", _set(("vars", 0, "persistable"), "false"), r"field 'persistable' must be true or false"),
    ("var described twice", lambda d: d["vars"].append(d["vars"][0]), r"variable 'x' is described twice"),
    ("feed names nested", _set(("feed",), [["x"]]), r"field 'feed' must be a list of variable names"),
    ("fetch names int", _set(("fetch",), [3]), r"field 'fetch' must be a list of variable names"),
    ("op without a required input", lambda d: d["ops"][0]["inputs"].pop("Y"), r"op 0: op 'mul' needs input slot 'Y'"),
    ("op required input empty", _set(("ops", 0, "inputs", "Y"), []), r"op 0: op 'mul' needs input slot 'Y'"),
    ("add without X", lambda d: d["ops"][1]["inputs"].pop("X"), r"op 1: op 'elementwise_add' needs input slot 'X'"),
]


@pytest.mark.parametrize("case,mutation,match", INFERENCE_BAD, ids=[c[0] for c in INFERENCE_BAD])
def test_load_inference_model_refuses_a_bad_program_file(tmp_path, case, mutation, match):
    import json

    main, start, y = _small_program()
    scope = fluid.Scope()
    exe = fluid.Executor(PLACE)
    with fluid.scope_guard(scope):
        exe.run(start)
        fluid.io.save_inference_model(str(tmp_path), ["x"], [y], exe, main_program=main)
        model = tmp_path / "__model__"
        if callable(mutation):
            desc = json.loads(model.read_text())
            assert desc["ops"][0]["type"] == "mul" and desc["vars"][0]["name"] == "x"
            mutation(desc)
            model.write_text(json.dumps(desc))
        else:
            model.write_text(mutation)
        before = set(scope.local_var_names())
        before_values = _snapshot(scope)
        with pytest.raises(fluid.io.InferenceModelError, match=match):
            fluid.io.load_inference_model(str(tmp_path), exe)
        assert set(scope.local_var_names()) == before
        _assert_unchanged(scope, before_values)


# ---------------------------------------------------------------- static gradient clipping


def _grad_program(dtype="float32", need_clip=True):
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start):
        x = fluid.data("x", [None, 3], dtype)
        attr = fluid.ParamAttr(need_clip=need_clip)
        loss = fluid.layers.mean(fluid.layers.fc(x, 2, param_attr=attr, bias_attr=attr))
        params_grads = fluid.backward.append_backward(loss)
    return main, start, params_grads


def _set_attr(name, value):
    return lambda clip: setattr(clip, name, value)


# (clip, change made after it was built, error, message)
CLIP_GRAPH_BAD = [
    (fluid.clip.ClipGradByGlobalNorm(1.0), _set_attr("clip_norm", float("nan")), ValueError, r"clip_norm must be > 0"),
    (fluid.clip.ClipGradByGlobalNorm(1.0), _set_attr("clip_norm", -1.0), ValueError, r"Norm.clip_norm must be > 0"),
    (fluid.clip.ClipGradByGlobalNorm(1.0), _set_attr("clip_norm", True), TypeError, r"real number > 0, got True"),
    (fluid.clip.ClipGradByNorm(1.0), _set_attr("clip_norm", 0.0), ValueError, r"ClipGradByNorm.clip_norm must be > 0"),
    (fluid.clip.ClipGradByNorm(1.0), _set_attr("clip_norm", float("inf")), ValueError, r"clip_norm must be > 0"),
    (fluid.clip.ClipGradByNorm(1.0), _set_attr("clip_norm", "1"), TypeError, r"a real number > 0, got '1'"),
    (fluid.clip.ClipGradByValue(1.0), _set_attr("max", float("nan")), ValueError, r"ClipGradByValue.max must be a"),
    (fluid.clip.ClipGradByValue(1.0), _set_attr("min", 2.0), ValueError, r"min must be <= max, got min=2 and max=1"),
]


@pytest.mark.parametrize("clip,change,error,match", CLIP_GRAPH_BAD)
def test_a_clip_changed_to_a_bad_value_builds_no_graph(clip, change, error, match):
    import copy

    clip = copy.deepcopy(clip)
    change(clip)
    main, _, params_grads = _grad_program()
    block = main.global_block()
    n_ops, names = len(block.ops), list(block.vars)
    with fluid.program_guard(main), pytest.raises(error, match=match):
        clip(params_grads)
    assert len(block.ops) == n_ops and list(block.vars) == names


def _int_grad_pair():
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()):
        p = fluid.layers.create_parameter([3], "float32", name="ip")
        g = main.global_block().create_var("ip@GRAD", [3], "int64")
    return main, [(p, g)]


def _fp16_and_bf16_pairs():
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()):
        pairs = []
        for i, dt in enumerate(("float16", "bfloat16")):
            p = fluid.layers.create_parameter([3], dt, name=f"lp{i}")
            pairs.append((p, main.global_block().create_var(f"lp{i}@GRAD", [3], dt)))
    return main, pairs


def _two_program_pairs():
    (m1, _, pg1), (m2, _, pg2) = _grad_program(), _grad_program()
    return m1, pg1[:1] + pg2[:1], m2


@pytest.mark.parametrize(
    "clip",
    [fluid.clip.ClipGradByGlobalNorm(1.0), fluid.clip.ClipGradByNorm(1.0), fluid.clip.ClipGradByValue(1.0)],
    ids=lambda c: type(c).__name__,
)
@pytest.mark.parametrize(
    "make,match",
    [
        (_int_grad_pair, r"gradient 'ip@GRAD' has dtype 'int64'; allowed: float16, bfloat16, float32, float64"),
        (_two_program_pairs, r"is not a variable of the program of gradient 'fc_\d+.w_0@GRAD'"),
        (_fp16_and_bf16_pairs, r"ClipGradByGlobalNorm: clipping float16 and bfloat16 gradients together"),
    ],
    ids=["int grad", "two programs", "float16 with bfloat16"],
)
def test_clip_of_bad_gradients_appends_nothing(clip, make, match):
    main, pairs, *others = make()
    if make is _fp16_and_bf16_pairs and not isinstance(clip, fluid.clip.ClipGradByGlobalNorm):
        with fluid.program_guard(main):  # per-gradient clips take each dtype on its own
            out = clip(pairs)
        assert [g.dtype for _, g in out] == ["float16", "bfloat16"] and len(main.global_block().ops) == 2
        return
    programs = [main, *others]
    before = [(len(p.global_block().ops), list(p.global_block().vars)) for p in programs]
    with fluid.program_guard(main), pytest.raises(ValueError, match=match):
        clip(pairs)
    assert [(len(p.global_block().ops), list(p.global_block().vars)) for p in programs] == before


@pytest.mark.parametrize(
    "kw,error,match",
    [
        ({"program": 3}, TypeError, r"set_gradient_clip: program must be a Program, got int"),
        ({"param_list": "fc_0.w_0"}, TypeError, r"param_list must be a list of Parameters or their names"),
        ({"param_list": ["nope"]}, ValueError, r"var 'nope' is not in block 0"),
    ],
)
def test_set_gradient_clip_refuses_bad_arguments(kw, error, match):
    main, _, _ = _grad_program()
    kw = {"program": main, **kw}
    with pytest.raises(error, match=match):
        fluid.clip.set_gradient_clip(fluid.clip.ClipGradByNorm(1.0), **kw)
    assert all(getattr(p, "gradient_clip_attr", None) is None for p in main.global_block().all_parameters())


def test_clip_of_need_clip_false_params_only_appends_nothing():
    main, _, params_grads = _grad_program(need_clip=False)
    n_ops = len(main.global_block().ops)
    with fluid.program_guard(main):
        out = fluid.clip.ClipGradByGlobalNorm(0.1)(params_grads)
    assert [(p.name, g.name) for p, g in out] == [(p.name, g.name) for p, g in params_grads]
    assert len(main.global_block().ops) == n_ops
    fluid.clip.set_gradient_clip(fluid.clip.ClipGradByNorm(1.0), program=fluid.Program())  # no parameters: no-op


@pytest.mark.parametrize(
    "clip,want",
    [
        # fc(x, 2) on x = ones([2, 3]): each weight grad 0.5, each bias grad 0.5; 6 + 2 entries
        (fluid.clip.ClipGradByGlobalNorm(1.0), [0.5 / np.sqrt(8 * 0.25)] * 2),  # global norm sqrt(2): scaled
        (fluid.clip.ClipGradByNorm(1.0), [0.5 / np.sqrt(6 * 0.25), 0.5]),  # weight norm 1.22 > 1, bias 0.71
        (fluid.clip.ClipGradByValue(0.25), [0.25, 0.25]),
    ],
)
def test_clip_graph_on_float16_grads(clip, want):
    main, start, params_grads = _grad_program("float16")
    with fluid.program_guard(main):
        out = clip(params_grads)
    scope, exe = fluid.Scope(), fluid.Executor(PLACE)
    exe.run(start, scope=scope)
    got = exe.run(main, feed={"x": np.ones((2, 3), np.float16)}, fetch_list=[g for _, g in out], scope=scope)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.float16
        np.testing.assert_allclose(g, np.full(g.shape, w), rtol=2e-3)


# ---------------------------------------------------------------- Executor


def _train_program():
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start):
        x = fluid.data("x", [None, 3], "float32")
        loss = fluid.layers.mean(fluid.layers.fc(x, 2))
        fluid.optimizer.RMSPropOptimizer(0.1).minimize(loss)
    return main, start, loss


_OK = np.ones((2, 3), np.float32)
# (feed, fetch names (None: the loss), error, message)
EXECUTOR_BAD = [
    ({"x": None}, None, FeedError, r"feed 'x': the value is None; allowed: an array"),
    ({"x": _OK.astype(np.float64)}, None, FeedError, r"must be 'float32', but received 'float64'"),
    ({"x": _OK.astype(np.float16)}, None, FeedError, r"must be 'float32', but received 'float16'"),
    ({"x": np.ones((2, 4), np.float32)}, None, FeedError, r"should have shape \[-1, 3\].*\[2, 4\]"),
    ({"x": np.ones(3, np.float32)}, None, FeedError, r"should have shape \[-1, 3\].*received shape \[3\]"),
    ({"x": [[1, 2, 3], [1, 2]]}, None, FeedError, r"feed 'x': cannot convert list to float32"),
    ({"x": "abc"}, None, FeedError, r"cannot convert str to float32"),
    ({"x": _OK, "zzz": _OK}, None, FeedError, r"feed 'zzz': no variable of that name"),
    ({}, None, FeedError, r"data variable 'x' is needed"),
    ({"x": _OK}, ["nope"], ValueError, r"variable 'nope' is neither computed by this program nor held in the scope"),
    ({"x": _OK}, [3], TypeError, r"fetch_list item 3 is not a Variable"),
]


@pytest.mark.parametrize("feed,fetch,error,match", EXECUTOR_BAD)
def test_executor_bad_feed_or_fetch_changes_nothing(feed, fetch, error, match):
    main, start, loss = _train_program()
    scope, exe = fluid.Scope(), fluid.Executor(PLACE)
    exe.run(start, scope=scope)
    before = _snapshot(scope)
    with pytest.raises(error, match=match):
        exe.run(main, feed=feed, fetch_list=[loss] if fetch is None else fetch, scope=scope)
    _assert_unchanged(scope, before)


def test_executor_run_after_close_raises_and_a_new_executor_runs():
    main, start, loss = _train_program()
    scope, exe = fluid.Scope(), fluid.Executor(PLACE)
    exe.run(start, scope=scope)
    exe.close()
    before = _snapshot(scope)
    with pytest.raises(RuntimeError, match=r"Executor.run: this executor was closed"):
        exe.run(main, feed={"x": _OK}, fetch_list=[loss], scope=scope)
    _assert_unchanged(scope, before)
    exe.close()  # closing twice is allowed
    (out,) = fluid.Executor(PLACE).run(main, feed={"x": _OK}, fetch_list=[loss], scope=scope)
    assert np.isfinite(out).all()


def test_executor_program_of_another_scope_needs_its_startup():
    main, start, loss = _train_program()
    fluid.Executor(PLACE).run(start, scope=fluid.Scope())
    with pytest.raises(RuntimeError, match=r"variable 'fc_\d+.w_0' is read by this program but holds no value"):
        fluid.Executor(PLACE).run(main, feed={"x": _OK}, fetch_list=[loss], scope=fluid.Scope())


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a[::-1].copy()[::-1],  # negative strides
        lambda a: a.astype(">f4"),  # big-endian float32
        lambda a: np.asfortranarray(a),
        lambda a: torch.from_numpy(a.T.copy()).T,  # a non-contiguous tensor
    ],
    ids=["negative strides", "big endian", "fortran order", "non-contiguous tensor"],
)
def test_executor_takes_any_layout_of_a_valid_feed(make):
    """Feeds that are valid float32 arrays in an unusual memory layout give the plain array's result."""
    main, start, loss = _train_program()
    x = np.arange(6, dtype=np.float32).reshape(2, 3) / 6
    scope, exe = fluid.Scope(), fluid.Executor(PLACE)
    exe.run(start, scope=scope)
    initial = _snapshot(scope)
    results = []
    for feed in (x, make(x)):
        for n, t in initial.items():
            scope.set_value(n, t.clone())
        results.append(exe.run(main, feed={"x": feed}, fetch_list=[loss], scope=scope)[0])
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("as_tensor", [False, True])
def test_executor_never_writes_into_a_fed_parameter(as_tensor):
    """A fed parameter is updated in the scope's own copy: the caller's array/tensor is unchanged."""
    main, start, loss = _train_program()
    scope, exe = fluid.Scope(), fluid.Executor(PLACE)
    exe.run(start, scope=scope)
    w_name = main.global_block().all_parameters()[0].name
    w = np.full((3, 2), 0.5, np.float32)
    fed = torch.from_numpy(w.copy()) if as_tensor else w.copy()
    for _ in range(2):
        exe.run(main, feed={"x": _OK, w_name: fed}, fetch_list=[loss], scope=scope)
    np.testing.assert_array_equal(np.asarray(fed), w)
    assert not np.array_equal(np.array(scope.find_var(w_name).get_tensor()), w)  # the scope's copy moved


def test_executor_feeds_a_bfloat16_tensor_and_refuses_a_meta_tensor():
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start):
        doubled = fluid.layers.scale(fluid.data("xb", [None, 3], "bfloat16"), 2.0)
        out = fluid.layers.cast(doubled, "float32")
    exe = fluid.Executor(PLACE)
    x = torch.tensor([[1.0, 2.5, -3.0]], dtype=torch.bfloat16)
    (got,) = exe.run(main, feed={"xb": x}, fetch_list=[out], scope=fluid.Scope())
    np.testing.assert_array_equal(got, [[2.0, 5.0, -6.0]])
    with pytest.raises(TypeError, match=r"fetch 'scale_\d+.tmp_0': a bfloat16 value has no numpy dtype"):
        exe.run(main, feed={"xb": x}, fetch_list=[doubled], scope=fluid.Scope())
    with pytest.raises(FeedError, match=r"feed 'xb': a meta tensor holds no data"):
        exe.run(main, feed={"xb": torch.empty(1, 3, device="meta")}, fetch_list=[out], scope=fluid.Scope())
    for dtype in (torch.uint16, torch.float8_e4m3fn, torch.complex64):  # dtypes fluid has no name for, too
        with pytest.raises(FeedError, match=rf"feed 'xb': .*must be 'bfloat16', but received '{str(dtype)[6:]}'"):
            exe.run(main, feed={"xb": torch.zeros(1, 3, dtype=dtype)}, fetch_list=[out], scope=fluid.Scope())


# ---------------------------------------------------------------- scope values

# (value, message): none of these is a tensor of numbers
SCOPE_SET_BAD = [
    (None, r"variable 'a': cannot hold NoneType None \(numpy dtype object\); allowed: a tensor, an ndarray"),
    ("abc", r"cannot hold str 'abc'"),
    ([[1, 2], [3]], r"cannot hold list \[\[1, 2\], \[3\]\]"),
    ({"a": 1}, r"cannot hold dict"),
    ([10**30], r"cannot hold list \[1000000000000000000000000000000\] \(numpy dtype object\)"),
    (np.array(["2020-01-01"], dtype="datetime64[D]"), r"numpy dtype datetime64\[D\]"),
    (torch.empty(2, device="meta"), r"variable 'a': a meta tensor holds no data"),
]


@pytest.mark.parametrize("value,match", SCOPE_SET_BAD)
@pytest.mark.parametrize("sparse", [False, True])
def test_scope_set_refuses_what_is_not_numbers_and_keeps_the_old_value(value, match, sparse):
    scope = fluid.Scope()
    if sparse:
        view = scope.var("a").get_selected_rows().get_tensor()
        match = match.replace("variable 'a'", "SelectedRows 'a'")
    else:
        view = scope.var("a").get_tensor()
    view.set(np.ones((2, 3), np.float32), PLACE)
    with pytest.raises((TypeError, ValueError), match=match):
        view.set(value, PLACE)
    np.testing.assert_array_equal(np.array(view), np.ones((2, 3), np.float32))


def test_scope_set_takes_a_big_endian_array_and_names_must_be_strings():
    scope = fluid.Scope()
    a = np.arange(6, dtype=">f4").reshape(2, 3)
    scope.var("a").get_tensor().set(a, PLACE)
    got = np.array(scope.find_var("a").get_tensor())
    assert got.dtype == np.float32 and got.dtype.isnative
    np.testing.assert_array_equal(got, a)
    with pytest.raises(TypeError, match=r"Scope.var: name must be a str, got 3"):
        scope.var(3)


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"dirname": 3}, r"load_inference_model: dirname must be a path \(str\) or None, got 3"),
        ({"params_filename": 3}, r"params_filename must be a file name \(str\) or None, got 3"),
        ({"model_filename": b"__model__"}, r"model_filename must be a file name \(str\) or None, got b'__model__'"),
    ],
)
def test_load_inference_model_argument_types(tmp_path, kw, match):
    main, start, y = _small_program()
    exe = fluid.Executor(PLACE)
    with fluid.scope_guard(fluid.Scope()):
        exe.run(start)
        fluid.io.save_inference_model(str(tmp_path), ["x"], [y], exe, main_program=main)
        with pytest.raises(TypeError, match=match):
            fluid.io.load_inference_model(**{"dirname": str(tmp_path), "executor": exe, **kw})


def test_append_gradient_clip_ops_checks_every_group_before_appending():
    """A bad clip in a later group leaves no op of an earlier group behind."""
    main, _, params_grads = _grad_program()
    w, b = (p for p, _ in params_grads)
    fluid.clip.set_gradient_clip(fluid.clip.ClipGradByNorm(1.0), param_list=[w], program=main)
    fluid.clip.set_gradient_clip(fluid.clip.ClipGradByValue(1.0), param_list=[b], program=main)
    b.gradient_clip_attr.max = float("nan")
    block = main.global_block()
    n_ops, names = len(block.ops), list(block.vars)
    with fluid.program_guard(main), pytest.raises(ValueError, match=r"ClipGradByValue.max must be a finite number"):
        fluid.clip.append_gradient_clip_ops(params_grads)
    assert len(block.ops) == n_ops and list(block.vars) == names
