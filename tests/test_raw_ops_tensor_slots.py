"""Paddle's raw ``adam`` op with its hyper-parameter tensor slots (``Beta1Tensor``,
``Beta2Tensor``: Paddle 2.0's adam_op; ``EpsilonTensor``: 2.1's), sparse ``adam`` on edge
cases of the gradient's rows, and Paddle's ``sgd`` op on a SelectedRows ``Param`` (sgd_op.h),
each checked against numpy written from Paddle's kernels, and their errors."""

import numpy as np
import pytest

import torchfluid as fluid
from torchfluid.op import Operator

PLACE = fluid.CPUPlace()
ADAM_SLOTS = {
    "Param": "p", "Grad": "g", "LearningRate": "lr", "Moment1": "m1", "Moment2": "m2", "Beta1Pow": "b1p",
    "Beta2Pow": "b2p",
    "ParamOut": "p", "Moment1Out": "m1", "Moment2Out": "m2", "Beta1PowOut": "b1p", "Beta2PowOut": "b2p",
}  # fmt: skip
STATE = ("p", "m1", "m2", "b1p", "b2p")


def _get(scope, name):
    return np.array(scope.find_var(name).get_tensor())


def _selected_rows(scope, name, height, rows, value):
    sr = scope.var(name).get_selected_rows()
    sr.set_height(height)
    sr.set_rows(rows)
    sr.get_tensor().set(value, PLACE)


def _adam_values(rng, shape=(6, 3)):
    return {
        "p": rng.standard_normal(shape).astype(np.float32),
        "m1": rng.standard_normal(shape).astype(np.float32) * 0.1,
        "m2": rng.random(shape, dtype=np.float32) * 0.1,
        "b1p": np.array([0.9**3], np.float32),
        "b2p": np.array([0.999**3], np.float32),
        "lr": np.array([0.01], np.float32),
    }


def _adam_numpy(v, g, beta1, beta2, eps, rows=None):
    """Paddle's adam_update in float64 from float32 inputs; ``rows`` (lazy mode): only
    those rows of p, m1, m2 change."""
    p, m1, m2 = (v[k].astype(np.float64) for k in ("p", "m1", "m2"))
    b1p, b2p, lr = (float(v[k][0]) for k in ("b1p", "b2p", "lr"))
    n1 = beta1 * m1 + (1 - beta1) * g
    n2 = beta2 * m2 + (1 - beta2) * g * g
    lr_t = lr * np.sqrt(1 - b2p) / (1 - b1p)
    np_ = p - lr_t * n1 / (np.sqrt(n2) + eps * np.sqrt(1 - b2p))
    if rows is not None:
        keep = [r for r in range(p.shape[0]) if r not in rows]
        for new, old in ((np_, p), (n1, m1), (n2, m2)):
            new[keep] = old[keep]
    return {"p": np_, "m1": n1, "m2": n2, "b1p": [b1p * beta1], "b2p": [b2p * beta2]}


F32 = float(np.float32(0.85))  # what Paddle reads from a float32 [1] tensor holding 0.85

TENSOR_CASES = [
    # (tensor slots given -> value, attributes, the (beta1, beta2, epsilon) the update uses)
    ({"Beta1Tensor": 0.85}, {}, (F32, 0.999, 1e-8)),
    ({"Beta1Tensor": 0.85, "Beta2Tensor": 0.95}, {"beta1": 0.5, "beta2": 0.5}, (F32, float(np.float32(0.95)), 1e-8)),
    ({"Beta2Tensor": 0.0}, {"beta1": 0.7}, (0.7, 0.0, 1e-8)),
    ({"EpsilonTensor": 1e-3}, {"epsilon": 0.5}, (0.9, 0.999, float(np.float32(1e-3)))),
    ({"Beta1Tensor": 0.0, "Beta2Tensor": 0.5, "EpsilonTensor": 0.25}, {"epsilon": 1.0}, (0.0, 0.5, 0.25)),
]


@pytest.mark.parametrize("sparse", [None, "dense_rows", "lazy"])
@pytest.mark.parametrize("tensors,attrs,used", TENSOR_CASES)
def test_adam_tensor_slots_replace_the_attributes(tensors, attrs, used, sparse):
    rng = np.random.default_rng(7)
    v = _adam_values(rng)
    scope = fluid.Scope()
    for name, value in v.items():
        scope.var(name).get_tensor().set(value, PLACE)
    rows = None
    if sparse is None:
        g = rng.standard_normal((6, 3)).astype(np.float32)
        scope.var("g").get_tensor().set(g, PLACE)
    else:
        rows = [4, 1]
        val = rng.standard_normal((2, 3)).astype(np.float32)
        _selected_rows(scope, "g", 6, rows, val)
        g = np.zeros((6, 3), np.float32)
        g[rows] = val
    slots = {}
    for slot, value in tensors.items():
        scope.var(slot.lower()).get_tensor().set(np.array([value], np.float32), PLACE)
        slots[slot] = slot.lower()
    Operator("adam", **ADAM_SLOTS, **slots, **attrs, lazy_mode=sparse == "lazy").run(scope, PLACE)
    want = _adam_numpy(v, g.astype(np.float64), *used, rows=rows if sparse == "lazy" else None)
    for name in STATE:
        np.testing.assert_allclose(_get(scope, name), want[name], rtol=3e-6, atol=1e-7, err_msg=name)
    for slot, value in tensors.items():  # the tensors are read, never written
        np.testing.assert_array_equal(_get(scope, slot.lower()), np.array([value], np.float32))


def test_adam_beta_tensor_read_at_each_run():
    """A program changes the beta between runs: each run uses the tensor's value then."""
    rng = np.random.default_rng(8)
    v = _adam_values(rng)
    scope = fluid.Scope()
    for name, value in v.items():
        scope.var(name).get_tensor().set(value, PLACE)
    want = dict(v)
    for beta1 in (0.5, 0.8, 0.25):
        g = rng.standard_normal((6, 3)).astype(np.float32)
        scope.var("g").get_tensor().set(g, PLACE)
        scope.var("beta1").get_tensor().set(np.array([beta1], np.float32), PLACE)
        Operator("adam", **ADAM_SLOTS, Beta1Tensor="beta1").run(scope, PLACE)
        want = {k: np.asarray(x, np.float32) for k, x in _adam_numpy({**want}, g, beta1, 0.999, 1e-8).items()}
        want["lr"] = v["lr"]
        for name in STATE:
            np.testing.assert_allclose(_get(scope, name), want[name], rtol=3e-6, atol=1e-7, err_msg=name)
        want = {name: _get(scope, name) for name in (*STATE, "lr")}  # the next run starts from what this one left


@pytest.mark.parametrize(
    "slot,value,match",
    [
        (
            "Beta1Tensor",
            np.array([1.0], np.float32),
            r"input Beta1Tensor holds 1.0; allowed: a finite value in \[0, 1\)",
        ),
        ("Beta2Tensor", np.array([-0.5], np.float32), r"input Beta2Tensor holds -0.5; allowed"),
        ("Beta1Tensor", np.array([np.nan], np.float32), r"input Beta1Tensor holds nan"),
        ("EpsilonTensor", np.array([0.0], np.float32), r"input EpsilonTensor holds 0.0; allowed: a finite value > 0"),
        ("EpsilonTensor", np.array([np.inf], np.float32), r"input EpsilonTensor holds inf"),
        ("Beta1Tensor", np.array([0.9, 0.9], np.float32), r"Beta1Tensor must hold a 1-element floating-point tensor"),
        ("Beta2Tensor", np.array([1], np.int64), r"Beta2Tensor must hold a 1-element floating-point tensor"),
    ],
)
def test_adam_bad_tensor_slot_writes_nothing(slot, value, match):
    rng = np.random.default_rng(9)
    v = _adam_values(rng)
    scope = fluid.Scope()
    for name, x in {**v, "g": v["p"] * 0.5, "t": value}.items():
        scope.var(name).get_tensor().set(x, PLACE)
    with pytest.raises(Exception, match=match):
        Operator("adam", **ADAM_SLOTS, **{slot: "t"}).run(scope, PLACE)
    for name in STATE:
        np.testing.assert_array_equal(_get(scope, name), v[name], err_msg=name)


@pytest.mark.parametrize("lazy", [False, True])
def test_sparse_adam_without_rows_changes_nothing(lazy):
    """Paddle's kernel returns at once for a SelectedRows gradient with no rows: the
    parameter, the moments and the beta powers all keep their values."""
    rng = np.random.default_rng(10)
    v = _adam_values(rng)
    scope = fluid.Scope()
    for name, x in v.items():
        scope.var(name).get_tensor().set(x, PLACE)
    _selected_rows(scope, "g", 6, [], np.zeros((0, 3), np.float32))
    Operator("adam", **ADAM_SLOTS, lazy_mode=lazy).run(scope, PLACE)
    for name in STATE:
        np.testing.assert_array_equal(_get(scope, name), v[name], err_msg=name)


def _paddle_sparse_adam_loop(v, rows, value, beta1, beta2, eps, lazy):
    """Paddle's sparse Adam written as its row loop (float64): the rows merged (duplicates
    summed) and sorted; lazy: each merged row updated; otherwise every row, an absent one
    with g = 0 (its moments decay, the parameter still moves)."""
    merged = {}
    for r, x in zip(rows, value, strict=True):
        merged[r] = merged.get(r, 0.0) + x.astype(np.float64)
    p, m1, m2 = (v[k].astype(np.float64).copy() for k in ("p", "m1", "m2"))
    b1p, b2p, lr = (float(v[k][0]) for k in ("b1p", "b2p", "lr"))
    lr_t = lr * np.sqrt(1 - b2p) / (1 - b1p)
    for r in sorted(merged) if lazy else range(p.shape[0]):
        g = merged.get(r, np.zeros(p.shape[1]))
        m1[r] = beta1 * m1[r] + (1 - beta1) * g
        m2[r] = beta2 * m2[r] + (1 - beta2) * g * g
        p[r] -= lr_t * m1[r] / (np.sqrt(m2[r]) + eps * np.sqrt(1 - b2p))
    return {"p": p, "m1": m1, "m2": m2, "b1p": [b1p * beta1], "b2p": [b2p * beta2]}


SPARSE_ADAM_CASES = [
    # (rows of the gradient, lazy_mode)
    ([0, 4, 7], False),
    ([0, 4, 7], True),
    ([7, 2, 7, 0, 2], False),  # unsorted, repeated: merged (summed) first
    ([7, 2, 7, 0, 2], True),
    ([3], True),
    (list(range(8)), False),  # every row present
]


@pytest.mark.parametrize("rows,lazy", SPARSE_ADAM_CASES)
def test_sparse_adam_matches_paddles_row_loop(rows, lazy):
    rng = np.random.default_rng(len(rows) + lazy)
    v = _adam_values(rng, (8, 4))
    value = rng.standard_normal((len(rows), 4)).astype(np.float32)
    scope = fluid.Scope()
    for name, x in v.items():
        scope.var(name).get_tensor().set(x, PLACE)
    _selected_rows(scope, "g", 8, rows, value)
    Operator("adam", **ADAM_SLOTS, lazy_mode=lazy, beta1=0.78, beta2=0.836, epsilon=1e-4).run(scope, PLACE)
    want = _paddle_sparse_adam_loop(v, rows, value, 0.78, 0.836, 1e-4, lazy)
    for name in STATE:
        np.testing.assert_allclose(_get(scope, name), want[name], rtol=3e-6, atol=1e-6, err_msg=name)
    if lazy:  # rows without a gradient are left exactly as they were
        absent = [r for r in range(8) if r not in rows]
        for name in ("p", "m1", "m2"):
            np.testing.assert_array_equal(_get(scope, name)[absent], v[name][absent], err_msg=name)


# ------------------------------------------------------------------ sgd on a SelectedRows Param

TABLE_CASES = [
    # (Param's rows, Grad's height and rows)
    (list(range(8)), 10, [0, 4, 7]),  # Paddle's TestSGDOpOptimizeSelectedRows: grad height 10, table height 8
    ([5, 2, 9], 10, [9, 2]),  # the table holds rows 5, 2, 9 at positions 0, 1, 2
    ([5, 2, 9], 10, [2, 2, 9, 2]),  # a repeated gradient row: one update per entry, in order
    ([3, 1, 3], 4, [3, 1]),  # a repeated table row: its last position is the one updated
    ([0, 1], 2, []),  # no gradient rows: nothing changes
]


def _table_scope(table_rows, grad_height, grad_rows, rng):
    width = 3
    scope = fluid.Scope()
    w = rng.standard_normal((len(table_rows), width)).astype(np.float32)
    _selected_rows(scope, "w", max(table_rows) + 1, table_rows, w)
    gval = rng.standard_normal((len(grad_rows), width)).astype(np.float32)
    _selected_rows(scope, "g", grad_height, grad_rows, gval)
    scope.var("lr").get_tensor().set(np.array([0.1], np.float32), PLACE)
    return scope, w, gval


@pytest.mark.parametrize("table_rows,grad_height,grad_rows", TABLE_CASES)
def test_sgd_on_a_selected_rows_param(table_rows, grad_height, grad_rows):
    rng = np.random.default_rng(len(table_rows) * 10 + len(grad_rows))
    scope, w, gval = _table_scope(table_rows, grad_height, grad_rows, rng)
    scope.var("w").get_selected_rows().sync_index()  # Paddle's call before the op; nothing to rebuild here
    want = w.copy()
    last = {r: i for i, r in enumerate(table_rows)}
    for i, r in enumerate(grad_rows):  # numpy, float32 as Paddle's kernel: out[k] -= lr * g[i]
        want[last[r]] = want[last[r]] - np.float32(0.1) * gval[i]
    Operator("sgd", Param="w", Grad="g", LearningRate="lr", ParamOut="w").run(scope, PLACE)
    sr = scope.find_var("w").get_selected_rows()
    np.testing.assert_allclose(np.array(sr.get_tensor()), want, rtol=1e-6, atol=1e-7)
    assert sr.rows() == table_rows and sr.height() == max(table_rows) + 1
    np.testing.assert_array_equal(np.array(scope.find_var("g").get_selected_rows().get_tensor()), gval)


def test_sgd_on_paddles_table_is_exact():
    """Paddle's TestSGDOpOptimizeSelectedRows: integer-valued rows, lr 0.1, compared with ==."""
    scope = fluid.Scope()
    grad = np.ones((3, 12), np.float32)
    grad[0, 0], grad[2, 8] = 2.0, 4.0
    _selected_rows(scope, "g", 10, [0, 4, 7], grad)
    w = np.ones((8, 12), np.float32) * np.arange(8, dtype=np.float32)[:, None]
    _selected_rows(scope, "w", 8, list(range(8)), w)
    scope.var("lr").get_tensor().set(np.full(1, 0.1, np.float32), PLACE)
    Operator("sgd", Param="w", Grad="g", ParamOut="w", LearningRate="lr").run(scope, PLACE)
    want = w.copy()
    for i, r in enumerate([0, 4, 7]):
        want[r] = w[r] - 0.1 * grad[i]
    assert (np.array(scope.find_var("w").get_selected_rows().get_tensor()) == want).all()


def _dense_grad(scope):
    scope.erase(["g"])
    scope.var("g").get_tensor().set(np.ones((8, 3), np.float32), PLACE)


def _grad_rows(rows, value=None):
    def change(scope):
        scope.erase(["g"])
        _selected_rows(scope, "g", 10, rows, np.ones((len(rows), 3), np.float32) if value is None else value)

    return change


@pytest.mark.parametrize(
    "change,error,match",
    [
        (_dense_grad, TypeError, "Param is a SelectedRows, so Grad must be a SelectedRows too, got Tensor"),
        (_grad_rows([0, 3]), ValueError, r"row 3 of Grad is not one of Param's rows \[0, 1, 2, 4\]"),
        (_grad_rows([1], np.ones((1, 2), np.float32)), ValueError, r"stands for shape \[10, 2\]"),
        (_grad_rows([1], np.ones((1, 3), np.float64)), ValueError, "Grad .SelectedRows. is float64"),
        (_grad_rows([1, 2], np.ones((1, 3), np.float32)), ValueError, "one value row per row index"),
        (_grad_rows([1, 12]), ValueError, r"row index 12 is out of range; allowed: 0 <= row < height=10"),
        (lambda s: s.var("lr").get_tensor().set(np.ones(2, np.float32)), ValueError, "LearningRate must hold"),
    ],
)
def test_sgd_on_a_selected_rows_param_errors_write_nothing(change, error, match):
    rng = np.random.default_rng(0)
    scope, w, _ = _table_scope([0, 1, 2, 4], 10, [1], rng)
    change(scope)
    with pytest.raises(Exception, match=match) as info:
        Operator("sgd", Param="w", Grad="g", LearningRate="lr", ParamOut="w").run(scope, PLACE)
    assert isinstance(info.value.__cause__ or info.value, error)  # the executor's error names the op, the cause
    np.testing.assert_array_equal(np.array(scope.find_var("w").get_selected_rows().get_tensor()), w)


def test_sgd_on_a_selected_rows_param_must_update_in_place():
    rng = np.random.default_rng(1)
    scope, w, _ = _table_scope([0, 1], 2, [1], rng)
    with pytest.raises(ValueError, match="ParamOut must name the same variable as Param"):
        Operator("sgd", Param="w", Grad="g", LearningRate="lr", ParamOut="w2").run(scope, PLACE)
    np.testing.assert_array_equal(np.array(scope.find_var("w").get_selected_rows().get_tensor()), w)
