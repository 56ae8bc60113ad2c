"""Adagrad (Paddle's ``adagrad`` op and ``AdagradOptimizer``) against numpy re-implementations:
the optimizer over several steps (dense and row-sparse gradients, regularized, clipped,
``initial_accumulator_value``, groups), the raw op with test_adagrad_op's semantics (our
own numbers), checkpoints, torch's layout, and the errors.

The numpy reference computes in float32 as Paddle's float32 kernel does:
``m = m + g * g``; ``p = p - (lr * g) / (sqrt(m) + eps)``; a sparse gradient is merged
(duplicate rows summed) and only those rows change.
"""

import math

import numpy as np
import pytest
import torch

import torchfluid as fluid
import torchfluid.optim as O
import torchfluid.optimizer as F
from torchfluid.kernels import adagrad_, adagrad_rows_
from torchfluid.op import Operator

from .optimizer_steps import F32, PLACE, SHAPES, STEPS, Steps, dense_of, op_scope, static_program


# ---------------------------------------------------------------- the numpy reference


def np_adagrad(p, g, m, lr, eps):
    """One dense update in float32 (new arrays)."""
    m = m + g * g
    return p - (F32(lr) * g) / (np.sqrt(m) + F32(eps)), m


def np_merge(rows, values, height):
    """Paddle's MergeAdd: distinct rows in increasing order, each one's summed value."""
    uniq = sorted(set(rows))
    merged = np.zeros((len(uniq),) + values.shape[1:], F32)
    for r, v in zip(rows, values, strict=True):
        merged[uniq.index(r)] += v
    return np.array(uniq, np.int64), merged


def np_adagrad_rows(p, rows, values, m, lr, eps):
    """Paddle's SparseAdagradFunctor: only the merged rows change."""
    rows, merged = np_merge(rows, values, p.shape[0])
    p, m = p.copy(), m.copy()
    p[rows], m[rows] = np_adagrad(p[rows], merged, m[rows], lr, eps)
    return p, m


# ---------------------------------------------------------------- gradients of each step

STEPS_DATA = Steps(7, [[1, 4, 1], [0, 5], [4, 4, 4, 2], [3]])  # rows may repeat (summed)
P0, DENSE_G, SPARSE_ROWS, SPARSE_VALUES = (
    STEPS_DATA.p0,
    STEPS_DATA.dense_g,
    STEPS_DATA.sparse_rows,
    STEPS_DATA.sparse_values,
)
_grad, _train = STEPS_DATA.grad, STEPS_DATA.train


# ---------------------------------------------------------------- the optimizer vs numpy

# (id, optimizer keyword arguments, sparse 'emb' gradients, per-parameter attributes)
CASES = [
    ("dense", {"learning_rate": 0.1}, False, {}),
    ("epsilon_initial", {"learning_rate": 0.2, "epsilon": 1e-2, "initial_accumulator_value": 0.3}, False, {}),
    ("l2", {"learning_rate": 0.1, "regularization": fluid.L2Decay(0.1)}, False, {}),
    ("l1", {"learning_rate": 0.1, "regularization": fluid.L1Decay(0.05)}, False, {}),
    ("weight_decay_float", {"learning_rate": 0.1, "weight_decay": 0.05}, False, {}),
    ("param_regularizer_overrides", {"learning_rate": 0.1, "regularization": fluid.L2Decay(0.1)}, False,
     {"w": {"regularizer": fluid.L1Decay(0.2)}}),
    ("clip_value", {"learning_rate": 0.1, "grad_clip": fluid.ClipGradByValue(0.3)}, False, {}),
    ("clip_norm", {"learning_rate": 0.1, "grad_clip": fluid.ClipGradByNorm(0.5)}, False, {}),
    ("clip_global_norm_l2", {"learning_rate": 0.1, "grad_clip": fluid.ClipGradByGlobalNorm(0.8),
                                 "regularization": fluid.L2Decay(0.1)}, False, {}),
    ("clip_global_norm_need_clip_false", {"learning_rate": 0.1, "grad_clip": fluid.ClipGradByGlobalNorm(0.8)}, False,
     {"b": {"need_clip": False}}),
    ("lr_multiplier", {"learning_rate": 0.1}, False, {"w": {"learning_rate": 0.5}, "b": {"learning_rate": 3.0}}),
    ("sparse", {"learning_rate": 0.1}, True, {}),
    ("sparse_initial", {"learning_rate": 0.3, "epsilon": 1e-3, "initial_accumulator_value": 0.5}, True, {}),
    ("sparse_clip_value", {"learning_rate": 0.1, "grad_clip": fluid.ClipGradByValue(0.4)}, True, {}),
    ("sparse_clip_global_norm", {"learning_rate": 0.1, "grad_clip": fluid.ClipGradByGlobalNorm(0.8)}, True, {}),
    ("sparse_l2_makes_it_dense", {"learning_rate": 0.1, "regularization": fluid.L2Decay(0.1)}, True, {}),
]  # fmt: skip


def _reference(kwargs, sparse, attrs):
    """The run of :data:`CASES` entry in numpy: final parameters and moments."""
    lr, eps = kwargs["learning_rate"], kwargs.get("epsilon", 1e-6)
    init = kwargs.get("initial_accumulator_value", 0.0)
    clip = kwargs.get("grad_clip")
    reg = kwargs.get("regularization")
    if kwargs.get("weight_decay") is not None:
        reg = fluid.L2Decay(kwargs["weight_decay"])
    p = {n: v.copy() for n, v in P0.items()}
    m = {n: np.full(s, init, F32) for n, s in SHAPES.items()}
    for step in range(STEPS):
        # each gradient as (rows, merged values) if sparse, else dense
        grads = {}
        for n in SHAPES:
            if sparse and n == "emb":
                grads[n] = np_merge(SPARSE_ROWS[step], SPARSE_VALUES[step], SHAPES[n][0])
            else:
                grads[n] = DENSE_G[step][n]
        values = {n: (g[1] if isinstance(g, tuple) else g) for n, g in grads.items()}
        clipped = [n for n in SHAPES if attrs.get(n, {}).get("need_clip", True)]
        if isinstance(clip, fluid.ClipGradByValue):
            values = {n: (np.clip(v, F32(clip.min), F32(clip.max)) if n in clipped else v) for n, v in values.items()}
        elif isinstance(clip, fluid.ClipGradByNorm):
            for n in clipped:
                norm = math.sqrt(float(np.sum(values[n].astype(np.float64) ** 2)))
                values[n] = values[n] * F32(clip.clip_norm / max(norm, clip.clip_norm))
        elif isinstance(clip, fluid.ClipGradByGlobalNorm):
            gn = math.sqrt(sum(float(np.sum(values[n].astype(np.float64) ** 2)) for n in clipped))
            scale = F32(clip.clip_norm / max(gn, clip.clip_norm))
            values = {n: (v * scale if n in clipped else v) for n, v in values.items()}
        for n in SHAPES:
            own_lr = lr * attrs.get(n, {}).get("learning_rate", 1.0)
            r = attrs.get(n, {}).get("regularizer", reg)
            g = values[n]
            if isinstance(grads[n], tuple):
                rows = grads[n][0]
                if r is None:
                    p[n], m[n] = np_adagrad_rows(p[n], list(rows), g, m[n], own_lr, eps)
                    continue
                g = dense_of(list(rows), g, SHAPES[n][0])  # a dense term makes it dense
            if isinstance(r, fluid.L2Decay):
                g = g + F32(r.coeff) * p[n]
            elif isinstance(r, fluid.L1Decay):
                g = g + F32(r.coeff) * np.sign(p[n])
            p[n], m[n] = np_adagrad(p[n], g, m[n], own_lr, eps)
    return p, m


@pytest.mark.parametrize("case_id,kwargs,sparse,attrs", CASES, ids=[c[0] for c in CASES])
def test_optimizer_matches_numpy(case_id, kwargs, sparse, attrs):
    params, opt = _train(F.Adagrad, kwargs, sparse, attrs)
    want_p, want_m = _reference(kwargs, sparse, attrs)
    sd = opt.state_dict()
    assert sorted(k for k in sd if k.endswith("_moment_0")) == sorted(f"{n}_moment_0" for n in SHAPES)
    # plain float32 maths is exact; a norm (float64 here, one pass there) may move the last bit
    tol = {"rtol": 2e-6, "atol": 1e-7} if "norm" in case_id else {"rtol": 0, "atol": 0}
    for n in SHAPES:
        np.testing.assert_allclose(params[n].detach().numpy(), want_p[n], **tol, err_msg=n)
        np.testing.assert_allclose(sd[f"{n}_moment_0"].numpy(), want_m[n], **tol, err_msg=n)


def test_sparse_rows_absent_from_the_gradient_are_never_touched():
    """Rows outside a sparse gradient keep their exact bits, even a NaN moment (a dense
    zero gradient would turn them into NaN: 0 / (NaN + eps))."""
    p = torch.nn.Parameter(torch.tensor(P0["emb"]))
    opt = F.Adagrad(0.1, parameters=[("emb", p)])
    moment = np.full(SHAPES["emb"], 0.5, F32)
    moment[2] = np.nan
    opt.set_state_dict({"emb_moment_0": moment})
    p.grad = torch.sparse_coo_tensor(torch.tensor([[0, 5, 0]]), torch.ones(3, 3), SHAPES["emb"], check_invariants=True)
    opt.step()
    got = p.detach().numpy()
    np.testing.assert_array_equal(got[[1, 2, 3, 4]], P0["emb"][[1, 2, 3, 4]])
    assert np.isnan(opt.state_dict()["emb_moment_0"].numpy()[2]).all()
    want_p, want_m = np_adagrad_rows(P0["emb"], [0, 5, 0], np.ones((3, 3), F32), moment, 0.1, 1e-6)
    np.testing.assert_array_equal(got, want_p)


def test_sparse_embedding_model_equals_its_dense_twin_on_the_rows_it_sees():
    """``torch.nn.Embedding(sparse=True)`` trains as the dense embedding does wherever rows
    appear; rows never looked up stay where they started (the dense twin moves none of
    them either, as Adagrad with a zero gradient does not move)."""
    torch.manual_seed(0)
    sparse, dense = torch.nn.Embedding(10, 4, sparse=True), torch.nn.Embedding(10, 4)
    dense.load_state_dict(sparse.state_dict())
    opts = [F.Adagrad(0.5, parameters=m.parameters()) for m in (sparse, dense)]
    ids = [torch.tensor([1, 3, 3, 7]), torch.tensor([0, 1, 1]), torch.tensor([7, 8])]
    start = sparse.weight.detach().clone()
    for x in ids:
        for m, opt in zip((sparse, dense), opts, strict=True):
            opt.clear_grad(set_to_zero=False)
            m(x).pow(2).sum().backward()
            opt.step()
    torch.testing.assert_close(sparse.weight, dense.weight, rtol=0, atol=0)
    untouched = [2, 4, 5, 6, 9]
    assert torch.equal(sparse.weight[untouched], start[untouched])


def test_groups_keep_their_own_epsilon_initial_value_and_lr():
    """Paddle 2.x parameter groups: ``epsilon`` and ``initial_accumulator_value`` are group
    options, ``learning_rate`` a multiplier; each group follows its own numbers."""
    a = torch.nn.Parameter(torch.tensor(P0["w"]))
    b = torch.nn.Parameter(torch.tensor(P0["b"]))
    groups = [
        {"params": [("a", a)]},
        {"params": [("b", b)], "epsilon": 0.1, "initial_accumulator_value": 2.0, "learning_rate": 0.5},
    ]
    opt = F.Adagrad(learning_rate=0.2, parameters=groups, initial_accumulator_value=0.25)
    pa, ma = P0["w"], np.full(SHAPES["w"], 0.25, F32)
    pb, mb = P0["b"], np.full(SHAPES["b"], 2.0, F32)
    for step in range(STEPS):
        a.grad, b.grad = torch.tensor(DENSE_G[step]["w"]), torch.tensor(DENSE_G[step]["b"])
        opt.step()
        pa, ma = np_adagrad(pa, DENSE_G[step]["w"], ma, 0.2, 1e-6)
        pb, mb = np_adagrad(pb, DENSE_G[step]["b"], mb, 0.2 * 0.5, 0.1)
    np.testing.assert_array_equal(a.detach().numpy(), pa)
    np.testing.assert_array_equal(b.detach().numpy(), pb)
    np.testing.assert_array_equal(opt.state_dict()["b_moment_0"].numpy(), mb)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_dtypes_follow_the_same_maths(dtype):
    """float64 state for float64 parameters; float32 state for float16/bfloat16 ones, the
    parameter rounded once per step."""
    p = torch.nn.Parameter(torch.tensor(P0["w"]).to(dtype))
    opt = F.Adagrad(0.1, parameters=[("w", p)])
    ref_p = torch.tensor(P0["w"]).to(dtype)
    state_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    ref_m = torch.zeros(SHAPES["w"], dtype=state_dtype)
    for step in range(STEPS):
        g = torch.tensor(DENSE_G[step]["w"]).to(dtype)
        p.grad = g
        opt.step()
        g32 = g.to(state_dtype)
        ref_m = ref_m + g32 * g32
        root = torch.from_numpy(np.sqrt(ref_m.numpy()))  # numpy's sqrt: correctly rounded, as Paddle's
        eps = float(np.float32(1e-6))  # Paddle's float32 attribute (float32 state rounds it alike)
        ref_p = (ref_p.to(state_dtype) - (g32 * 0.1) / (root + eps)).to(dtype)
    assert opt.state_dict()["w_moment_0"].dtype == state_dtype
    assert torch.equal(p.detach(), ref_p)
    assert torch.equal(opt.state_dict()["w_moment_0"], ref_m)


def test_torch_adagrad_is_the_same_maths_without_lr_decay():
    """torch.optim.Adagrad (lr_decay=0, the same eps and initial value) computes the same
    update up to rounding order (lr * (g / std) there, (lr * g) / std here)."""
    ours = torch.nn.Parameter(torch.tensor(P0["w"]))
    theirs = torch.nn.Parameter(torch.tensor(P0["w"]))
    opt = F.Adagrad(0.1, epsilon=1e-6, initial_accumulator_value=0.1, parameters=[ours])
    ref = torch.optim.Adagrad([theirs], lr=0.1, eps=1e-6, initial_accumulator_value=0.1)
    for step in range(STEPS):
        ours.grad = torch.tensor(DENSE_G[step]["w"])
        theirs.grad = torch.tensor(DENSE_G[step]["w"])
        opt.step()
        ref.step()
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- the kernels


def test_kernels_are_pure_and_keyword_only():
    p, g, m = (torch.tensor(P0["w"]) for _ in range(3))
    with pytest.raises(TypeError):
        adagrad_(p, g, m, 0.1)  # noqa - lr is keyword-only
    rows = torch.tensor([0, 3])
    p2, m2 = p.clone(), torch.zeros_like(p)
    adagrad_rows_(p2, rows, g[:2].clone(), m2, lr=0.1, epsilon=1e-6)
    want_p, want_m = np_adagrad(P0["w"][[0, 3]], P0["w"][:2], np.zeros((2, 3), F32), 0.1, 1e-6)
    np.testing.assert_array_equal(p2.numpy()[[0, 3]], want_p)
    np.testing.assert_array_equal(m2.numpy()[[0, 3]], want_m)
    np.testing.assert_array_equal(p2.numpy()[[1, 2, 4]], P0["w"][[1, 2, 4]])


# ---------------------------------------------------------------- the raw op (test_adagrad_op semantics)


def _run_op(scope, **attrs):
    slots = {"Param": "Param", "Grad": "Grad", "Moment": "Moment", "LearningRate": "LearningRate"}
    Operator("adagrad", ParamOut="Param", MomentOut="Moment", **slots, **attrs).run(scope, PLACE)
    return np.array(scope.find_var("Param").get_tensor()), np.array(scope.find_var("Moment").get_tensor())


# (id, shape, lr, epsilon attribute (None: the default 1e-6), moment start)
RAW_DENSE = [
    ("explicit_epsilon", (17, 29), 0.01, 1e-8, 0.0),
    ("default_epsilon", (17, 29), 0.01, None, 0.0),
    ("running_moment", (8, 5), 0.5, 1e-3, 1.5),
    ("large_epsilon", (3, 4, 5), 2.0, 2.0, 0.25),
    ("zero_d", (), 0.1, 1e-6, 0.4),
]


@pytest.mark.parametrize("case_id,shape,lr,eps,m0", RAW_DENSE, ids=[c[0] for c in RAW_DENSE])
def test_raw_dense_adagrad_op_matches_numpy(case_id, shape, lr, eps, m0):
    rng = np.random.default_rng(len(shape) + int(lr * 100))
    param = rng.random(shape).astype(F32)
    grad = rng.random(shape).astype(F32)
    moment = np.full(shape, m0, F32)
    scope = op_scope({"Param": param, "Grad": grad, "Moment": moment, "LearningRate": np.array([lr], F32)})
    got_p, got_m = _run_op(scope, **({} if eps is None else {"epsilon": eps}))
    want_p, want_m = np_adagrad(param, grad, moment, lr, 1e-6 if eps is None else eps)
    assert got_p.shape == shape
    np.testing.assert_array_equal(got_m, want_m)
    np.testing.assert_array_equal(got_p, want_p)


def test_raw_sparse_adagrad_op_updates_only_the_merged_rows():
    """A SelectedRows gradient with a repeated row: the repeat is summed, rows absent keep
    moment and parameter (test_adagrad_op's sparse case, our numbers)."""
    height, width, rows = 8, 5, [1, 6, 3, 6]
    value = np.full((len(rows), width), 0.5, F32)
    value[0, 2] = 3.0
    value[3, 4] = -2.0
    param = np.full((height, width), 4.0, F32)
    moment = np.full((height, width), 1.0, F32)
    scope = op_scope({"Param": param, "Moment": moment, "LearningRate": np.array([1.5], F32)}, (height, rows, value))
    got_p, got_m = _run_op(scope, epsilon=0.5)
    # the hand-computed entries: moment 1 + g^2, param 4 - 1.5 * g / (sqrt(m) + 0.5)
    assert got_m[1, 2] == F32(10.0) and got_m[1, 0] == F32(1.25)
    assert got_m[6, 0] == F32(2.0)  # row 6 twice: (0.5 + 0.5)^2 added once
    assert got_m[6, 4] == F32(1.0 + (0.5 - 2.0) ** 2)
    assert got_m[0, 0] == F32(1.0) and got_m[7, 3] == F32(1.0)
    np.testing.assert_allclose(got_p[1, 2], 4.0 - 1.5 * 3.0 / (math.sqrt(10.0) + 0.5), rtol=1e-6)
    np.testing.assert_allclose(got_p[6, 4], 4.0 - 1.5 * -1.5 / (math.sqrt(3.25) + 0.5), rtol=1e-6)
    np.testing.assert_array_equal(got_p[[0, 2, 4, 5, 7]], param[[0, 2, 4, 5, 7]])
    want_p, want_m = np_adagrad_rows(param, rows, value, moment, 1.5, 0.5)
    np.testing.assert_array_equal(got_p, want_p)
    np.testing.assert_array_equal(got_m, want_m)


def test_raw_sparse_op_equals_the_optimizer_on_a_sparse_gradient():
    """The raw op and the optimizer's sparse path are one kernel: equal bits."""
    rows, value = [2, 0, 2], SPARSE_VALUES[2][:3]
    scope = op_scope(
        {"Param": P0["emb"], "Moment": np.full(SHAPES["emb"], 0.2, F32), "LearningRate": np.array([0.3], F32)},
        (SHAPES["emb"][0], rows, value),
    )
    got_p, got_m = _run_op(scope)
    p = torch.nn.Parameter(torch.tensor(P0["emb"]))
    opt = F.Adagrad(0.3, initial_accumulator_value=0.2, parameters=[("e", p)])
    p.grad = torch.sparse_coo_tensor(torch.tensor([rows]), torch.tensor(value), SHAPES["emb"], check_invariants=True)
    opt.step()
    np.testing.assert_array_equal(got_p, p.detach().numpy())
    np.testing.assert_array_equal(got_m, opt.state_dict()["e_moment_0"].numpy())


# ---------------------------------------------------------------- static programs


def test_static_minimize_appends_one_adagrad_op_and_moment_variables():
    main, start, _ = static_program(lambda: F.Adagrad(0.1, initial_accumulator_value=0.7))
    ops = [op.type for op in main.global_block().ops]
    assert ops[-1] == "adagrad" and ops.count("adagrad") == 1
    from torchfluid.static.optimize import accumulator_vars

    assert accumulator_vars(main) == {
        "fc_0.b_0": {"moment": "fc_0.b_0_moment_0"},
        "fc_0.w_0": {"moment": "fc_0.w_0_moment_0"},
    }
    scope = fluid.Scope()
    fluid.Executor().run(start, scope=scope)
    np.testing.assert_array_equal(np.array(scope.find_var("fc_0.w_0_moment_0").get_tensor()), np.full((3, 2), 0.7, F32))


# ---------------------------------------------------------------- checkpoints and layouts


def test_torch_layout_optimizer_and_cross_layout_loading():
    """torchfluid.optim.Adagrad: torch's state_dict layout, torch's call, the same update;
    each layout loads into the other and the runs continue with the same bits."""
    params, opt = _train(O.Adagrad, {"lr": 0.1, "epsilon": 1e-4}, False, {}, steps=range(2))
    sd = opt.state_dict()
    assert set(sd) >= {"state", "param_groups"}
    assert sd["param_groups"][0]["param_names"] == list(SHAPES)
    assert set(sd["state"][0]) == {"step", "sum"}  # torch.optim.Adagrad's names (step 0: no lr_decay)
    paddle_params, paddle_opt = _train(F.Adagrad, {"learning_rate": 0.1, "epsilon": 1e-4}, False, {}, steps=range(2))
    for n in SHAPES:
        assert torch.equal(params[n], paddle_params[n])
    twin = {n: torch.nn.Parameter(t.detach().clone()) for n, t in params.items()}
    twin_opt = F.Adagrad(0.1, epsilon=1e-4, parameters=list(twin.items()))
    twin_opt.load_state_dict(sd)  # torch layout into the Paddle-layout optimizer
    back = O.Adagrad(list(paddle_params.items()), lr=0.1, epsilon=1e-4)
    back.load_state_dict(paddle_opt.state_dict())  # and the other way
    a, _ = _train(None, None, False, {}, steps=range(2, STEPS), params=twin, opt=twin_opt)
    b, _ = _train(None, None, False, {}, steps=range(2, STEPS), params=paddle_params, opt=back)
    c, _ = _train(None, None, False, {}, steps=range(2, STEPS), params=params, opt=opt)
    for n in SHAPES:
        assert torch.equal(a[n], c[n]) and torch.equal(b[n], c[n])


# ---------------------------------------------------------------- names and errors


def test_fluid_and_2x_names():
    assert fluid.optimizer.Adagrad is fluid.optimizer.AdagradOptimizer is F.AdagradOptimizer
    assert issubclass(O.Adagrad, F.Adagrad) and issubclass(F.Adagrad, torch.optim.Optimizer)
    p = torch.nn.Parameter(torch.ones(2))
    fluid_style = F.AdagradOptimizer(0.1, 1e-5, [p], fluid.L2Decay(0.1), None, "n", 0.2)  # Paddle's positions
    assert fluid_style.defaults["epsilon"] == 1e-5 and fluid_style.defaults["initial_accumulator_value"] == 0.2
    assert fluid_style.regularization == fluid.L2Decay(0.1) and fluid_style.name == "n"
    v2 = F.Adagrad(learning_rate=0.1, parameters=[p], weight_decay=0.01, grad_clip=fluid.ClipGradByNorm(1.0))
    assert v2.regularization == fluid.L2Decay(0.01) and v2.grad_clip.clip_norm == 1.0


# (keyword arguments, error type, message)
BAD_ARGS = [
    ({"epsilon": 0.0}, ValueError, r"^epsilon must be > 0, got 0.0$"),
    ({"epsilon": -1e-6}, ValueError, r"^epsilon must be > 0, got -1e-06$"),
    ({"epsilon": float("nan")}, ValueError, r"^epsilon must be > 0, got nan$"),
    ({"epsilon": True}, TypeError, r"^epsilon must be a real number > 0, got True of type bool$"),
    ({"epsilon": "1e-6"}, TypeError, r"^epsilon must be a real number > 0, got '1e-6' of type str$"),
    ({"initial_accumulator_value": -0.1}, ValueError, r"^initial_accumulator_value must be >= 0, got -0.1$"),
    ({"initial_accumulator_value": float("inf")}, ValueError, r"^initial_accumulator_value must be >= 0, got inf$"),
    ({"initial_accumulator_value": None}, TypeError, r"^initial_accumulator_value must be >= 0, got None$"),
    ({"learning_rate": -0.1}, ValueError, r"learning_rate must be >= 0, got -0.1"),
]


@pytest.mark.parametrize("kwargs,error,match", BAD_ARGS)
def test_bad_arguments_raise_in_the_house_style(kwargs, error, match):
    p = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(error, match=match):
        F.Adagrad(**{"learning_rate": 0.1, **kwargs}, parameters=[p])


def test_learning_rate_is_required_as_in_paddle():
    with pytest.raises(TypeError, match="learning_rate"):
        F.Adagrad(parameters=[torch.nn.Parameter(torch.ones(2))])


def test_add_param_group_checks_the_options():
    opt = F.Adagrad(0.1, parameters=[torch.nn.Parameter(torch.ones(2))])
    with pytest.raises(ValueError, match=r"^epsilon must be > 0, got -1.0$"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(2))], "epsilon": -1.0})
    assert len(opt.param_groups) == 1
