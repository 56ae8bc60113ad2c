"""Paddle's raw optimizer ops through ``fluid.op.Operator`` on scope values (dense and
SelectedRows gradients), checked against numpy written from Paddle's kernels
(rmsprop_op.h, sgd_op.h, adam_op.h), and their errors."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid.kernels.rmsprop import rmsprop_
from torchfluid.op import RAW_OPS, Operator

PLACE = fluid.CPUPlace()


def _scope(values, sparse=None):
    scope = fluid.Scope()
    for name, v in values.items():
        scope.var(name).get_tensor().set(v, PLACE)
    if sparse is not None:
        name, height, rows, value = sparse
        sr = scope.var(name).get_selected_rows()
        sr.set_height(height)
        sr.set_rows(rows)
        sr.get_tensor().set(value, PLACE)
    return scope


def _get(scope, name):
    return np.array(scope.find_var(name).get_tensor())


def _dense(height, rows, value):
    """numpy: the SelectedRows' matrix, duplicate rows summed in order."""
    out = np.zeros((height,) + value.shape[1:], value.dtype)
    for r, v in zip(rows, value, strict=True):
        out[r] += v
    return out


def _rmsprop_ref(p, g, ms, mom, mg, lr, eps, decay, momentum, centered):
    ms = decay * ms + (1 - decay) * g * g
    if centered:
        mg = decay * mg + (1 - decay) * g
        mom = momentum * mom + lr * g / np.sqrt(ms - mg * mg + eps)
    else:
        mom = momentum * mom + lr * g / np.sqrt(ms + eps)
    return p - mom, ms, mom, mg


RMSPROP_CASES = [
    # (shape, sparse rows or None, centered, epsilon, decay, momentum)
    ((8, 5), None, False, 1e-6, 0.9, 0.1),
    ((8, 5), None, True, 1e-6, 0.9, 0.1),
    ((4, 3, 2), None, False, 1e-10, 0.95, 0.0),
    ((8, 5), [1, 6, 1, 3], False, 1e-6, 0.9, 0.1),  # duplicates summed, absent rows get g = 0
    ((8, 5), [1, 6, 1, 3], True, 1e-6, 0.9, 0.1),
    ((8, 5), [7, 0, 7, 7, 2, 2], True, 1e-4, 0.5, 0.9),
    ((8, 5), [], False, 1e-6, 0.9, 0.1),  # no rows: every row decays
]


@pytest.mark.parametrize("shape,rows,centered,eps,decay,momentum", RMSPROP_CASES)
def test_raw_rmsprop_matches_numpy(shape, rows, centered, eps, decay, momentum):
    rng = np.random.default_rng(len(shape) + (len(rows) if rows else 0))
    p = rng.random(shape, dtype=np.float32)
    ms = rng.uniform(1, 2, shape).astype(np.float32)
    mom = rng.random(shape, dtype=np.float32)
    mg = rng.random(shape, dtype=np.float32) * 0.1
    lr = np.array([0.01], np.float32)
    values = {"param": p, "ms": ms, "mom": mom, "mg": mg, "lr": lr}
    if rows is None:
        g = rng.random(shape, dtype=np.float32)
        values["grad"] = g
        scope = _scope(values)
    else:
        val = rng.random((len(rows),) + shape[1:], dtype=np.float32)
        g = _dense(shape[0], rows, val)
        scope = _scope(values, ("grad", shape[0], rows, val))
    kw = {"Param": "param", "Grad": "grad", "MeanSquare": "ms", "Moment": "mom", "LearningRate": "lr"}
    kw.update(ParamOut="param", MeanSquareOut="ms", MomentOut="mom")
    if centered:
        kw.update(MeanGrad="mg", MeanGradOut="mg")
    Operator("rmsprop", epsilon=eps, decay=decay, momentum=momentum, centered=centered, **kw).run(scope, PLACE)
    ref = _rmsprop_ref(p, g, ms, mom, mg, lr[0], eps, decay, momentum, centered)
    for name, want in zip(("param", "ms", "mom", "mg"), ref, strict=True):
        np.testing.assert_allclose(_get(scope, name), want, rtol=2e-6, atol=1e-7, err_msg=name)
    if not centered:
        np.testing.assert_array_equal(_get(scope, "mg"), mg)  # untouched when not centered


def test_raw_rmsprop_is_the_reference_kernel_bit_for_bit():
    rng = np.random.default_rng(3)
    p, g, mg = (rng.standard_normal((5, 7)).astype(np.float32) for _ in range(3))
    ms = rng.uniform(1, 2, (5, 7)).astype(np.float32)
    mom = rng.standard_normal((5, 7)).astype(np.float32)
    scope = _scope({"p": p, "g": g, "ms": ms, "mom": mom, "mg": mg, "lr": np.array([0.003], np.float32)})
    Operator(
        "rmsprop", Param="p", Grad="g", MeanSquare="ms", Moment="mom", MeanGrad="mg", LearningRate="lr",
        ParamOut="p", MeanSquareOut="ms", MomentOut="mom", MeanGradOut="mg", centered=True, momentum=0.5,
        epsilon=1e-6, decay=0.8,
    ).run(scope, PLACE)  # fmt: skip
    t = [torch.from_numpy(a.copy()) for a in (p, g, ms, mg, mom)]
    rmsprop_(*t, lr=float(np.float32(0.003)), rho=0.8, epsilon=1e-6, momentum=0.5)
    for name, want in zip(("p", "ms", "mg", "mom"), (t[0], t[2], t[3], t[4]), strict=True):
        np.testing.assert_array_equal(_get(scope, name), want.numpy(), err_msg=name)


SGD_CASES = [None, [2, 0], [3, 1, 3, 3]]


@pytest.mark.parametrize("rows", SGD_CASES)
def test_raw_sgd_matches_numpy(rows):
    rng = np.random.default_rng(7)
    p = rng.standard_normal((5, 4)).astype(np.float32)
    lr = np.array([0.1], np.float32)
    want = p.copy()
    if rows is None:
        g = rng.standard_normal((5, 4)).astype(np.float32)
        scope = _scope({"p": p, "lr": lr, "g": g})
        want -= lr[0] * g
    else:
        val = rng.standard_normal((len(rows), 4)).astype(np.float32)
        scope = _scope({"p": p, "lr": lr}, ("g", 5, rows, val))
        for r, v in zip(rows, val, strict=True):  # Paddle's loop: one update per entry, in order
            want[r] -= lr[0] * v
    Operator("sgd", Param="p", LearningRate="lr", Grad="g", ParamOut="p").run(scope, PLACE)
    np.testing.assert_allclose(_get(scope, "p"), want, rtol=1e-6, atol=1e-7)
    if rows is not None:
        untouched = [r for r in range(5) if r not in rows]
        np.testing.assert_array_equal(_get(scope, "p")[untouched], p[untouched])


def _adam_ref(p, g, m1, m2, b1p, b2p, lr, beta1, beta2, eps):
    m1 = beta1 * m1 + (1 - beta1) * g
    m2 = beta2 * m2 + (1 - beta2) * g * g
    lr_t = lr * np.sqrt(1 - b2p) / (1 - b1p)
    p = p - lr_t * m1 / (np.sqrt(m2) + eps * np.sqrt(1 - b2p))
    return p, m1, m2, b1p * beta1, b2p * beta2


@pytest.mark.parametrize("rows,lazy", [(None, False), ([4, 1, 4], False), ([4, 1, 4], True)])
def test_raw_adam_matches_numpy(rows, lazy):
    rng = np.random.default_rng(11)
    shape = (6, 3)
    p = rng.standard_normal(shape).astype(np.float32)
    m1 = rng.standard_normal(shape).astype(np.float32) * 0.1
    m2 = rng.random(shape, dtype=np.float32) * 0.1
    b1p, b2p = np.array([0.9**3], np.float32), np.array([0.999**3], np.float32)
    lr = np.array([0.01], np.float32)
    values = {"p": p, "m1": m1, "m2": m2, "b1p": b1p, "b2p": b2p, "lr": lr}
    if rows is None:
        g = rng.standard_normal(shape).astype(np.float32)
        scope = _scope({**values, "g": g})
    else:
        val = rng.standard_normal((len(rows), 3)).astype(np.float32)
        g = _dense(6, rows, val)
        scope = _scope(values, ("g", 6, rows, val))
    Operator(
        "adam", Param="p", Grad="g", LearningRate="lr", Moment1="m1", Moment2="m2", Beta1Pow="b1p", Beta2Pow="b2p",
        ParamOut="p", Moment1Out="m1", Moment2Out="m2", Beta1PowOut="b1p", Beta2PowOut="b2p", lazy_mode=lazy,
        beta1=0.9, beta2=0.999, epsilon=1e-8,
    ).run(scope, PLACE)  # fmt: skip
    want = list(_adam_ref(p, g, m1, m2, b1p, b2p, lr[0], 0.9, 0.999, 1e-8))
    if lazy:  # only the gradient's rows change
        absent = [r for r in range(6) if r not in rows]
        for i, orig in enumerate((p, m1, m2)):
            want[i][absent] = orig[absent]
    for name, w in zip(("p", "m1", "m2", "b1p", "b2p"), want, strict=True):
        np.testing.assert_allclose(_get(scope, name), w, rtol=2e-6, atol=1e-7, err_msg=name)


# out-of-place: each ...Out slot names a variable of its own; the outputs get what the in-place
# run computes (checked against the same numpy references) and the inputs keep their values
OUT_OF_PLACE = [
    # (op type, sparse rows of the gradient or None, extra attributes)
    ("sgd", None, {}),
    ("adam", None, {}),
    ("adam", [4, 1, 4], {"lazy_mode": False}),
    ("rmsprop", None, {"centered": True, "momentum": 0.5}),
    ("rmsprop", [1, 5, 1], {}),
    ("adagrad", None, {"epsilon": 1e-6}),
    ("momentum", None, {"mu": 0.9, "use_nesterov": True}),
    ("momentum", [2, 0, 2], {"mu": 0.5, "regularization_method": "l2_decay", "regularization_coeff": 0.1}),
]


def _out_of_place_values(rng, shape):
    return {
        "p": rng.standard_normal(shape).astype(np.float32),
        "m1": rng.standard_normal(shape).astype(np.float32) * 0.1,
        "m2": rng.random(shape, dtype=np.float32) * 0.1 + 0.5,
        "mg": rng.standard_normal(shape).astype(np.float32) * 0.1,
        "b1p": np.array([0.9**3], np.float32),
        "b2p": np.array([0.999**3], np.float32),
        "lr": np.array([0.01], np.float32),
    }


@pytest.mark.parametrize("op_type, rows, attrs", OUT_OF_PLACE)
def test_raw_op_writes_its_outputs_to_their_own_variables(op_type, rows, attrs):
    rng = np.random.default_rng(3)
    shape = (6, 3)
    v = _out_of_place_values(rng, shape)
    if rows is None:
        g = rng.standard_normal(shape).astype(np.float32)
        scope = _scope({**v, "g": g})
    else:
        val = rng.standard_normal((len(rows), 3)).astype(np.float32)
        g = _dense(6, rows, val)
        scope = _scope(v, ("g", 6, rows, val))
    scope.var("p_out").get_tensor().set(np.full(shape, 7.0, np.float32), PLACE)  # an output that held a value
    if op_type == "sgd":
        slots = {"Param": "p", "Grad": "g", "LearningRate": "lr", "ParamOut": "p_out"}
        want = {"p_out": v["p"] - v["lr"][0] * g}
    elif op_type == "adam":
        slots = {
            "Param": "p", "Grad": "g", "LearningRate": "lr", "Moment1": "m1", "Moment2": "m2", "Beta1Pow": "b1p",
            "Beta2Pow": "b2p",
            "ParamOut": "p_out", "Moment1Out": "m1_out", "Moment2Out": "m2_out", "Beta1PowOut": "b1p_out",
            "Beta2PowOut": "b2p_out",
        }  # fmt: skip
        ref = _adam_ref(v["p"], g, v["m1"], v["m2"], v["b1p"], v["b2p"], v["lr"][0], 0.9, 0.999, 1e-8)
        want = dict(zip(("p_out", "m1_out", "m2_out", "b1p_out", "b2p_out"), ref, strict=True))
    elif op_type == "adagrad":  # moment += g*g; p -= lr*g / (sqrt(moment) + eps)
        slots = {
            "Param": "p",
            "Grad": "g",
            "Moment": "m2",
            "LearningRate": "lr",
            "ParamOut": "p_out",
            "MomentOut": "m2_out",
        }
        moment = v["m2"] + g * g
        want = {"m2_out": moment, "p_out": v["p"] - v["lr"][0] * g / (np.sqrt(moment) + np.float32(1e-6))}
    elif op_type == "momentum":  # v = v*mu + g (+ p*coeff in g); p -= lr*v, or (g + v*mu)*lr with Nesterov
        slots = {
            "Param": "p",
            "Grad": "g",
            "Velocity": "m1",
            "LearningRate": "lr",
            "ParamOut": "p_out",
            "VelocityOut": "m1_out",
        }
        mu, lr = np.float32(attrs["mu"]), v["lr"][0]
        if attrs.get("regularization_method") == "l2_decay":
            g = v["p"] * np.float32(attrs["regularization_coeff"]) + g
        vel = v["m1"] * mu + g
        step = (g + vel * mu) * lr if attrs.get("use_nesterov") else lr * vel
        want = {"m1_out": vel, "p_out": v["p"] - step}
    else:
        centered = attrs.get("centered", False)
        slots = {
            "Param": "p", "Grad": "g", "MeanSquare": "m2", "Moment": "m1", "LearningRate": "lr",
            "ParamOut": "p_out", "MeanSquareOut": "m2_out", "MomentOut": "m1_out",
        }  # fmt: skip
        if centered:
            slots.update(MeanGrad="mg", MeanGradOut="mg_out")
        ref = _rmsprop_ref(v["p"], g, v["m2"], v["m1"], v["mg"], 0.01, 1e-10, 0.9, attrs.get("momentum", 0.0), centered)
        want = dict(zip(("p_out", "m2_out", "m1_out", "mg_out"), ref, strict=True))
        if not centered:
            del want["mg_out"]
    Operator(op_type, **slots, **attrs).run(scope, PLACE)
    for name, w in want.items():
        np.testing.assert_allclose(_get(scope, name), w, rtol=2e-6, atol=1e-7, err_msg=name)
    for name in ("p", "m1", "m2", "mg", "b1p", "b2p", "lr"):  # the inputs are unchanged
        np.testing.assert_array_equal(_get(scope, name), v[name], err_msg=name)


def test_raw_sgd_with_selected_rows_must_update_in_place():
    p = np.ones((4, 2), np.float32)
    scope = _scope({"p": p, "lr": np.array([0.1], np.float32)}, ("g", 4, [1], np.ones((1, 2), np.float32)))
    op = Operator("sgd", Param="p", Grad="g", LearningRate="lr", ParamOut="p_out")
    with pytest.raises(ValueError, match="with a SelectedRows Grad, ParamOut must name the same variable as Param"):
        op.run(scope, PLACE)
    assert scope.find_var("p_out") is None
    np.testing.assert_array_equal(_get(scope, "p"), p)


def test_raw_op_out_of_place_failure_writes_nothing():
    scope = _rms_scope()
    scope.var("ms").get_tensor().set(np.ones((2, 2), np.float32))  # wrong shape: the op refuses it
    before = {n: _get(scope, n) for n in ("p", "mom", "ms")}
    slots = {**RMS_SLOTS, "ParamOut": "p_out", "MomentOut": "mom_out"}
    with pytest.raises(Exception, match=r"MeanSquare is float32 \[2, 2\]"):
        Operator("rmsprop", **slots).run(scope, PLACE)
    assert scope.find_var("p_out") is None and scope.find_var("mom_out") is None
    for n, v in before.items():
        np.testing.assert_array_equal(_get(scope, n), v)


def _rms_scope():
    z = np.zeros((3, 2), np.float32)
    return _scope({"p": z + 1, "g": z + 0.5, "ms": z + 1, "mom": z, "lr": np.array([0.1], np.float32)})


RMS_SLOTS = {
    "Param": "p", "Grad": "g", "MeanSquare": "ms", "Moment": "mom", "LearningRate": "lr",
    "ParamOut": "p", "MeanSquareOut": "ms", "MomentOut": "mom",
}  # fmt: skip


@pytest.mark.parametrize(
    "change,error,match",
    [
        ({"MeanSquare": None}, ValueError, "slot MeanSquare is missing; required slots: Param, Grad"),
        ({"MeanSquareOut": None}, ValueError, "slot MeanSquareOut is missing"),
        ({"rho": 0.9}, TypeError, "unknown slot or attribute 'rho'; allowed slots: .*attributes: epsilon, decay"),
        ({"ParamOut": "g"}, ValueError, "ParamOut names variable 'g', which input slot Grad reads"),
        ({"MomentOut": "p2", "ParamOut": "p2"}, ValueError, "output slots ParamOut and MomentOut both name"),
        ({"MeanGradOut": "mg"}, ValueError, "slot MeanGradOut is given without MeanGrad"),
        ({"Grad": ["g", "g"]}, ValueError, "slot Grad takes one variable name"),
    ],
)
def test_raw_op_slot_errors(change, error, match):
    kw = {**RMS_SLOTS, **change}
    kw = {k: v for k, v in kw.items() if v is not None}
    with pytest.raises(error, match=match):
        Operator("rmsprop", **kw)


@pytest.mark.parametrize(
    "setup,attrs,match",
    [
        (lambda s: None, {"centered": True}, "op 'raw_rmsprop' needs input slot 'MeanGrad' when centered is True"),
        (lambda s: s.var("ms").get_tensor().set(np.ones((2, 2), np.float32)), {}, r"MeanSquare is float32 \[2, 2\]"),
        (lambda s: s.var("lr").get_tensor().set(np.ones(2, np.float32)), {}, "LearningRate must hold a 1-element"),
        (lambda s: s.var("g").get_tensor().set(np.ones((3, 2), np.float64)), {}, "Grad is float64"),
        (lambda s: None, {"decay": "0.9"}, "attribute decay must be a real number"),
    ],
)
def test_raw_op_bad_values_leave_state_untouched(setup, attrs, match):
    scope = _rms_scope()
    setup(scope)
    before = {n: _get(scope, n) for n in ("p", "mom")}
    with pytest.raises(Exception, match=match):
        Operator("rmsprop", **RMS_SLOTS, **attrs).run(scope, PLACE)
    for n, v in before.items():
        np.testing.assert_array_equal(_get(scope, n), v)


@pytest.mark.parametrize(
    "height,rows,value_shape,match",
    [
        (3, [0, 3], (2, 2), r"row index 3 is out of range; allowed: 0 <= row < height=3"),
        (4, [0, 1], (2, 2), r"stands for shape \[4, 2\] \(height 4\), allowed: the parameter's shape \[3, 2\]"),
        (3, [0, 1, 2], (2, 2), "one value row per row index"),
    ],
)
def test_raw_op_bad_selected_rows(height, rows, value_shape, match):
    scope = _rms_scope()
    scope.erase(["g"])
    sr = scope.var("g").get_selected_rows()
    sr.set_height(height)
    sr.set_rows(rows)
    sr.get_tensor().set(np.ones(value_shape, np.float32), PLACE)
    before = _get(scope, "p")
    with pytest.raises(Exception, match=match):
        Operator("rmsprop", **RMS_SLOTS).run(scope, PLACE)
    np.testing.assert_array_equal(_get(scope, "p"), before)


def test_selected_rows_scope_api():
    scope = fluid.Scope()
    sr = scope.var("s").get_selected_rows()
    sr.set_height(5)
    sr.set_rows(np.array([4, 0, 4], np.int64))
    sr.get_tensor().set(np.arange(6, dtype=np.float32).reshape(3, 2), PLACE)
    assert sr.height() == 5 and sr.rows() == [4, 0, 4] and sr.numel() == 6
    np.testing.assert_array_equal(np.array(scope.find_var("s").get_selected_rows().get_tensor())[2], [4, 5])
    with pytest.raises(TypeError, match="holds a SelectedRows .*get_selected_rows"):
        np.array(scope.find_var("s").get_tensor())
    scope.var("d").get_tensor().set(np.zeros(2, np.float32), PLACE)
    with pytest.raises(TypeError, match="holds a dense tensor, not a SelectedRows"):
        scope.var("d").get_selected_rows()
    with pytest.raises(TypeError, match="rows must be a 1-D sequence of ints"):
        sr.set_rows([0.5])
    with pytest.raises(ValueError, match="height must be an int >= 0"):
        sr.set_height(-1)


def test_raw_table_names_the_registered_ops():
    """Paddle's names map to registered raw ops; the plain names stay the optimize section."""
    for paddle_type, sig in RAW_OPS.items():
        op = Operator(paddle_type, **_fill(sig))
        assert op.type == paddle_type and op._def.type == sig.registered
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup):
        x = fluid.data("x", [-1, 3], "float32")
        loss = fluid.layers.mean(fluid.layers.fc(x, 1))
        fluid.optimizer.RMSPropOptimizer(0.1).minimize(loss)
    assert [op.type for op in main.global_block().ops][-1] == "rmsprop"


def _fill(sig):
    """Every required slot of ``sig``: inputs by their own (lower-case) name, outputs by their input's."""
    alias = dict(sig.inplace)
    return {s: alias.get(s, s).lower() for s in sig.required}


def test_raw_table_is_paddles_signatures():
    """RAW_OPS holds Paddle's slot lists (rmsprop_op.cc, sgd_op.cc, adam_op.cc, adagrad_op.cc,
    momentum_op.cc, adamax_op.cc, adadelta_op.cc, lamb_op.cc) and in-place pairs."""
    want = {
        "rmsprop": (
            "raw_rmsprop",
            ("Param", "Grad", "MeanSquare", "Moment", "LearningRate", "ParamOut", "MeanSquareOut", "MomentOut"),
            (("ParamOut", "Param"), ("MeanSquareOut", "MeanSquare"), ("MomentOut", "Moment")),
            (("MeanGradOut", "MeanGrad"),),
        ),
        "sgd": ("raw_sgd", ("Param", "LearningRate", "Grad", "ParamOut"), (("ParamOut", "Param"),), ()),
        "adam": (
            "raw_adam",
            ("Param", "Grad", "LearningRate", "Moment1", "Moment2", "Beta1Pow", "Beta2Pow")
            + ("ParamOut", "Moment1Out", "Moment2Out", "Beta1PowOut", "Beta2PowOut"),
            (("ParamOut", "Param"), ("Moment1Out", "Moment1"), ("Moment2Out", "Moment2"))
            + (("Beta1PowOut", "Beta1Pow"), ("Beta2PowOut", "Beta2Pow")),
            (),
        ),
        "adagrad": (
            "raw_adagrad",
            ("Param", "Grad", "Moment", "LearningRate", "ParamOut", "MomentOut"),
            (("ParamOut", "Param"), ("MomentOut", "Moment")),
            (),
        ),
        "momentum": (
            "raw_momentum",
            ("Param", "Grad", "Velocity", "LearningRate", "ParamOut", "VelocityOut"),
            (("ParamOut", "Param"), ("VelocityOut", "Velocity")),
            (),
        ),
        "adamax": (  # Beta1Pow has no output: Paddle's optimizer advances it with a scale op
            "raw_adamax",
            ("Param", "Grad", "LearningRate", "Moment", "InfNorm", "Beta1Pow", "ParamOut", "MomentOut", "InfNormOut"),
            (("ParamOut", "Param"), ("MomentOut", "Moment"), ("InfNormOut", "InfNorm")),
            (),
        ),
        "adadelta": (  # LearningRate: the optional slot of Paddle's later op
            "raw_adadelta",
            ("Param", "Grad", "AvgSquaredGrad", "AvgSquaredUpdate")
            + ("ParamOut", "AvgSquaredGradOut", "AvgSquaredUpdateOut"),
            (("ParamOut", "Param"), ("AvgSquaredGradOut", "AvgSquaredGrad"))
            + (("AvgSquaredUpdateOut", "AvgSquaredUpdate"),),
            (),
        ),
        "lamb": (  # SkipUpdate: Paddle 2.3's optional slot
            "raw_lamb",
            ("Param", "Grad", "LearningRate", "Moment1", "Moment2", "Beta1Pow", "Beta2Pow")
            + ("ParamOut", "Moment1Out", "Moment2Out", "Beta1PowOut", "Beta2PowOut"),
            (("ParamOut", "Param"), ("Moment1Out", "Moment1"), ("Moment2Out", "Moment2"))
            + (("Beta1PowOut", "Beta1Pow"), ("Beta2PowOut", "Beta2Pow")),
            (),
        ),
    }
    assert set(RAW_OPS) == set(want)
    for paddle_type, (registered, required, inplace, optional_inplace) in want.items():
        sig = RAW_OPS[paddle_type]
        assert (sig.registered, sig.required, sig.inplace) == (registered, required, inplace + optional_inplace)
