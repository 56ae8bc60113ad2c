"""Paddle's raw ``adamax``, ``adadelta`` and ``lamb`` ops through ``fluid.op.Operator`` on scope
values, checked against numpy written from Paddle's kernels (adamax_op.h, adadelta_op.h and
lamb_op.h: dense and SelectedRows gradients), chained over several steps, and their errors."""

import re

import numpy as np
import pytest

from torchfluid.op import Operator
from tests.test_raw_optimizer_ops import PLACE, _dense, _get, _scope


# ---------------------------------------------------------------- adamax


def _adamax_ref(p, m, u, g, b1p, lr, beta1, beta2, eps):
    """adamax_op.h: moment, inf norm (epsilon inside the max), lr / (1 - beta1_pow); float64."""
    p, g, m, u = (np.asarray(x, np.float64) for x in (p, g, m, u))
    m = beta1 * m + (1 - beta1) * g
    u = np.maximum(np.abs(g), beta2 * u + eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = p - lr / (1 - b1p) * (m / u)
    return p, m, u


ADAMAX_SLOTS = {
    "Param": "p", "Grad": "g", "LearningRate": "lr", "Moment": "m", "InfNorm": "u", "Beta1Pow": "b1p",
    "ParamOut": "p", "MomentOut": "m", "InfNormOut": "u",
}  # fmt: skip

ADAMAX_CASES = [
    # (shape, beta1, beta2, epsilon, beta1_pow, lr, steps)
    ((7, 5), 0.78, 0.899, 1e-5, 0.78**10, 0.002, 1),
    ((7, 5), 0.9, 0.999, 1e-8, 0.9**8, 0.002, 1),
    ((3, 4, 2), 0.8, 0.99, 1e-5, 0.8, 0.01, 5),  # chained: the caller advances the power
    ((6,), 0.5, 0.5, 1e-3, 0.25, 0.1, 3),
]


@pytest.mark.parametrize("shape,beta1,beta2,eps,b1p,lr,steps", ADAMAX_CASES)
def test_raw_adamax_matches_numpy(shape, beta1, beta2, eps, b1p, lr, steps):
    rng = np.random.default_rng(len(shape) * 10 + steps)
    p = rng.uniform(-1, 1, shape).astype(np.float32)
    m = rng.uniform(-1, 1, shape).astype(np.float32)
    u = rng.random(shape, dtype=np.float32)
    b1p_arr = np.array([b1p], np.float32)
    lr_arr = np.array([lr], np.float32)
    scope = _scope({"p": p, "m": m, "u": u, "b1p": b1p_arr, "lr": lr_arr})
    ref = (p, m, u)
    for _ in range(steps):
        g = rng.uniform(-1, 1, shape).astype(np.float32)
        scope.var("g").get_tensor().set(g, PLACE)
        Operator("adamax", **ADAMAX_SLOTS, beta1=beta1, beta2=beta2, epsilon=eps).run(scope, PLACE)
        # Beta1Pow is read, never advanced by the op (Paddle has no Beta1PowOut)
        np.testing.assert_array_equal(_get(scope, "b1p"), b1p_arr)
        ref = _adamax_ref(*ref, g, float(b1p_arr[0]), float(lr_arr[0]), beta1, beta2, eps)
        for name, want in zip(("p", "m", "u"), ref, strict=True):
            np.testing.assert_allclose(_get(scope, name), want, rtol=1e-5, atol=1e-6, err_msg=name)
        ref = tuple(_get(scope, n) for n in ("p", "m", "u"))
        b1p_arr = b1p_arr * np.float32(beta1)
        scope.var("b1p").get_tensor().set(b1p_arr, PLACE)


def test_raw_adamax_beta1_pow_one_is_an_infinite_step():
    """Beta1Pow = 1 (the power before any step; Paddle's multi-step op test starts there): lr / 0."""
    scope = _scope({
        "p": np.array([0.5, -0.5], np.float32), "g": np.array([1.0, -2.0], np.float32),
        "m": np.zeros(2, np.float32), "u": np.zeros(2, np.float32),
        "b1p": np.array([1.0], np.float32), "lr": np.array([0.1], np.float32),
    })  # fmt: skip
    Operator("adamax", **ADAMAX_SLOTS).run(scope, PLACE)
    np.testing.assert_array_equal(_get(scope, "p"), [-np.inf, np.inf])


# ---------------------------------------------------------------- adadelta


def _adadelta_ref(p, asg, asu, g, lr, rho, eps):
    p, g, asg, asu = (np.asarray(x, np.float64) for x in (p, g, asg, asu))
    asg = rho * asg + (1 - rho) * g * g
    update = -(np.sqrt(asu + eps) / np.sqrt(asg + eps)) * g  # Paddle kernel: two square roots
    asu = rho * asu + (1 - rho) * update * update
    return p + lr * update, asg, asu


ADADELTA_SLOTS = {
    "Param": "p", "Grad": "g", "AvgSquaredGrad": "asg", "AvgSquaredUpdate": "asu",
    "ParamOut": "p", "AvgSquaredGradOut": "asg", "AvgSquaredUpdateOut": "asu",
}  # fmt: skip

ADADELTA_CASES = [
    # (shape, rho, epsilon, learning rate or None (no slot, as in Paddle's 2.0-2.4 op tests: lr = 1), steps)
    ((9, 4), 0.95, 1e-6, None, 1),
    ((9, 4), 0.95, 1e-6, 1.0, 1),
    ((5, 2, 3), 0.9, 1e-4, 0.01, 4),
    ((8,), 0.5, 1e-2, None, 3),
]


@pytest.mark.parametrize("shape,rho,eps,lr,steps", ADADELTA_CASES)
def test_raw_adadelta_matches_numpy(shape, rho, eps, lr, steps):
    rng = np.random.default_rng(len(shape) + 7 * steps)
    p = rng.uniform(-1, 1, shape).astype(np.float32)
    asg = rng.random(shape, dtype=np.float32)
    asu = rng.random(shape, dtype=np.float32)
    values = {"p": p, "asg": asg, "asu": asu}
    slots = dict(ADADELTA_SLOTS)
    if lr is not None:
        values["lr"] = np.array([lr], np.float32)
        slots["LearningRate"] = "lr"
    scope = _scope(values)
    ref = (p, asg, asu)
    for _ in range(steps):
        g = rng.uniform(-1, 1, shape).astype(np.float32)
        scope.var("g").get_tensor().set(g, PLACE)
        Operator("adadelta", **slots, rho=rho, epsilon=eps).run(scope, PLACE)
        ref = _adadelta_ref(*ref, g, 1.0 if lr is None else float(np.float32(lr)), rho, eps)
        for name, want in zip(("p", "asg", "asu"), ref, strict=True):
            np.testing.assert_allclose(_get(scope, name), want, rtol=1e-5, atol=1e-6, err_msg=name)
        ref = tuple(_get(scope, n) for n in ("p", "asg", "asu"))


# ---------------------------------------------------------------- lamb


def _lamb_ref(p, m1, m2, g, b1p, b2p, lr, wd, beta1, beta2, eps):
    """lamb_op.h in float64: moments, bias-corrected ratio + weight decay, trust ratio
    ||p|| / ||r|| (1 if either norm is 0, or if the weight decay is 0: Paddle's kernel then
    takes no norm, its ``always_adapt`` being False), powers advanced."""
    p, g, m1, m2 = (np.asarray(x, np.float64) for x in (p, g, m1, m2))
    m1 = beta1 * m1 + (1 - beta1) * g
    m2 = beta2 * m2 + (1 - beta2) * g * g
    r = (m1 / (1 - b1p)) / (np.sqrt(m2 / (1 - b2p)) + eps) + wd * p
    pn, rn = (np.linalg.norm(p), np.linalg.norm(r)) if wd > 0 else (0.0, 0.0)
    ratio = pn / rn if pn > 0 and rn > 0 else 1.0
    return p - lr * ratio * r, m1, m2, b1p * beta1, b2p * beta2


LAMB_SLOTS = {
    "Param": "p", "Grad": "g", "LearningRate": "lr", "Moment1": "m1", "Moment2": "m2", "Beta1Pow": "b1p",
    "Beta2Pow": "b2p",
    "ParamOut": "p", "Moment1Out": "m1", "Moment2Out": "m2", "Beta1PowOut": "b1p", "Beta2PowOut": "b2p",
}  # fmt: skip

LAMB_CASES = [
    # (shape, sparse rows or None, weight_decay, beta1, beta2, epsilon, lr, steps, zero param)
    ((10, 7), None, 0.01, 0.78, 0.836, 1e-4, 0.001, 1, False),
    ((10, 7), None, 0.01, 0.9, 0.999, 1e-8, 0.001, 4, False),
    ((4, 3, 5), None, 0.0, 0.9, 0.999, 1e-6, 0.01, 2, False),
    ((10, 7), None, 0.05, 0.9, 0.999, 1e-6, 0.01, 1, True),  # ||p|| = 0: ratio 1
    ((10, 12), [0, 4, 7], 0.05, 0.78, 0.836, 1e-4, 2.0, 1, False),  # absent rows get g = 0
    ((10, 12), [7, 0, 7, 3], 0.01, 0.9, 0.999, 1e-6, 0.5, 2, False),  # duplicates summed
]


@pytest.mark.parametrize("shape,rows,wd,beta1,beta2,eps,lr,steps,zero", LAMB_CASES)
def test_raw_lamb_matches_numpy(shape, rows, wd, beta1, beta2, eps, lr, steps, zero):
    rng = np.random.default_rng(len(shape) + 3 * steps + (len(rows) if rows else 0))
    p = np.zeros(shape, np.float32) if zero else rng.uniform(-1, 1, shape).astype(np.float32)
    m1 = rng.uniform(-1, 1, shape).astype(np.float32)
    m2 = rng.random(shape, dtype=np.float32)
    b1p, b2p = np.array([beta1], np.float32), np.array([beta2], np.float32)
    lr_arr = np.array([lr], np.float32)
    scope = _scope({"p": p, "m1": m1, "m2": m2, "b1p": b1p, "b2p": b2p, "lr": lr_arr})
    ref = (p, m1, m2, float(b1p[0]), float(b2p[0]))
    for _ in range(steps):
        if rows is None:
            g = rng.uniform(-1, 1, shape).astype(np.float32)
            scope.var("g").get_tensor().set(g, PLACE)
        else:
            val = rng.uniform(-1, 1, (len(rows),) + shape[1:]).astype(np.float32)
            g = _dense(shape[0], rows, val)
            sr = scope.var("g").get_selected_rows()
            sr.set_height(shape[0])
            sr.set_rows(rows)
            sr.get_tensor().set(val, PLACE)
        Operator("lamb", **LAMB_SLOTS, weight_decay=wd, beta1=beta1, beta2=beta2, epsilon=eps).run(scope, PLACE)
        ref = _lamb_ref(*ref[:3], g, *ref[3:], float(lr_arr[0]), wd, beta1, beta2, eps)
        for name, want in zip(("p", "m1", "m2", "b1p", "b2p"), ref, strict=True):
            np.testing.assert_allclose(_get(scope, name).reshape(np.shape(want)), want, rtol=1e-5, atol=1e-6,
                                       err_msg=name)  # fmt: skip
        ref = (*(_get(scope, n) for n in ("p", "m1", "m2")), float(_get(scope, "b1p")[0]),
               float(_get(scope, "b2p")[0]))  # fmt: skip


def test_raw_lamb_paddles_sparse_numbers():
    """Paddle's TestSparseLambOp setting (param, moments 5; rows 0, 4, 7 of ones with two
    entries 2 and 4; lr 2): every moment row moves, absent rows with g = 0."""
    beta1, beta2 = 0.78, 0.836
    val = np.ones((3, 12), np.float32)
    val[0, 0], val[2, 8] = 2.0, 4.0
    full = np.full((10, 12), 5.0, np.float32)
    scope = _scope(
        {"p": full, "m1": full, "m2": full, "b1p": [beta1], "b2p": [beta2], "lr": [2.0]}, ("g", 10, [0, 4, 7], val)
    )
    for n, dt in (("b1p", np.float32), ("b2p", np.float32), ("lr", np.float32)):
        scope.var(n).get_tensor().set(_get(scope, n).astype(dt), PLACE)
    Operator("lamb", **LAMB_SLOTS, weight_decay=0.05, beta1=beta1, beta2=beta2, epsilon=1e-4).run(scope, PLACE)
    m1 = _get(scope, "m1")
    assert m1[1, 0] == pytest.approx(beta1 * 5.0)  # an absent row: g = 0
    assert m1[0, 0] == pytest.approx(beta1 * 5.0 + (1 - beta1) * 2.0)
    assert m1[7, 8] == pytest.approx(beta1 * 5.0 + (1 - beta1) * 4.0)
    want = _lamb_ref(full, full, full, _dense(10, [0, 4, 7], val), beta1, beta2, 2.0, 0.05, beta1, beta2, 1e-4)
    np.testing.assert_allclose(_get(scope, "p"), want[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_get(scope, "m2"), want[2], rtol=1e-6)


def test_raw_lamb_skip_update_leaves_everything():
    rng = np.random.default_rng(0)
    v = {
        "p": rng.standard_normal((4, 3)).astype(np.float32), "g": rng.standard_normal((4, 3)).astype(np.float32),
        "m1": np.zeros((4, 3), np.float32), "m2": np.zeros((4, 3), np.float32),
        "b1p": np.array([0.9], np.float32), "b2p": np.array([0.999], np.float32), "lr": np.array([0.1], np.float32),
    }  # fmt: skip
    for skip, moved in ((True, False), (False, True)):
        scope = _scope({**v, "skip": np.array([skip])})
        Operator("lamb", **LAMB_SLOTS, SkipUpdate="skip", weight_decay=0.01).run(scope, PLACE)
        for n in ("p", "m1", "m2", "b1p", "b2p"):
            assert (not np.array_equal(_get(scope, n), v[n])) == moved, n


# ---------------------------------------------------------------- errors (nothing written)


def _base_values(rng):
    z = rng.uniform(-1, 1, (3, 2)).astype(np.float32)
    return {
        "p": z, "g": z * 0.5, "m": z * 0.1, "u": np.abs(z), "m1": z * 0.1, "m2": np.abs(z), "asg": np.abs(z),
        "asu": np.abs(z), "b1p": np.array([0.9], np.float32), "b2p": np.array([0.99], np.float32),
        "lr": np.array([0.1], np.float32),
    }  # fmt: skip


ERROR_CASES = [
    # (op, slots, attrs, sparse Grad, setup, error, match)
    ("adamax", ADAMAX_SLOTS, {}, True, None, ValueError, "adamax: input Grad is a SelectedRows; allowed: a dense"),
    ("adadelta", ADADELTA_SLOTS, {}, True, None, ValueError, "adadelta: input Grad is a SelectedRows"),
    ("adamax", ADAMAX_SLOTS, {"beta1": 1.0}, False, None, ValueError, r"beta1 must be in \[0, 1\)"),
    ("adamax", ADAMAX_SLOTS, {"epsilon": 0.0}, False, None, ValueError, "epsilon must be"),
    ("adamax", ADAMAX_SLOTS, {}, False, ("b1p", [1.5]), ValueError, r"Beta1Pow holds 1.5; allowed: .* \[0, 1\]"),
    ("adadelta", ADADELTA_SLOTS, {"rho": 1.5}, False, None, ValueError, r"rho must be in \[0, 1\]"),
    ("adadelta", {**ADADELTA_SLOTS, "LearningRate": "lr"}, {}, False, ("lr", [np.nan]), ValueError,
     "LearningRate holds nan; allowed: a finite value$"),
    ("lamb", LAMB_SLOTS, {}, False, None, ValueError, "lamb: attribute weight_decay is missing"),
    ("lamb", LAMB_SLOTS, {"weight_decay": -0.1}, False, None, ValueError, "weight_decay must be"),
    ("lamb", LAMB_SLOTS, {"weight_decay": 0.01, "multi_precision": True}, False, None, ValueError,
     "multi_precision=True needs the MasterParam slots"),
    ("lamb", LAMB_SLOTS, {"weight_decay": 0.01}, False, ("b2p", [1.0]), ValueError, r"Beta2Pow holds 1.0"),
    ("lamb", {**LAMB_SLOTS, "SkipUpdate": "lr"}, {"weight_decay": 0.01}, False, None, ValueError,
     "SkipUpdate must hold a 1-element bool tensor"),
    ("lamb", {**LAMB_SLOTS, "MasterParam": "p"}, {"weight_decay": 0.01}, False, None, TypeError,
     "unknown slot or attribute 'MasterParam'"),
]  # fmt: skip


@pytest.mark.parametrize("op_type,slots,attrs,sparse,setup,error,match", ERROR_CASES)
def test_raw_op_errors_leave_state_untouched(op_type, slots, attrs, sparse, setup, error, match):
    rng = np.random.default_rng(1)
    v = _base_values(rng)
    if sparse:
        del v["g"]
    scope = _scope(v, ("g", 3, [0, 2], np.ones((2, 2), np.float32)) if sparse else None)
    if setup is not None:
        scope.var(setup[0]).get_tensor().set(np.array(setup[1], np.float32), PLACE)
    before = {n: _get(scope, n) for n in v if n != "g"}
    with pytest.raises(Exception) as info:  # noqa: PT011 - the executor wraps the op's own error
        Operator(op_type, **slots, **attrs).run(scope, PLACE)
    err = info.value.__cause__ or info.value
    assert isinstance(err, error) and re.search(match, str(err)), repr(err)
    for n, want in before.items():
        np.testing.assert_array_equal(_get(scope, n), want, err_msg=n)
