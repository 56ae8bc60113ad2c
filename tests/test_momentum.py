"""Momentum (Paddle's ``momentum`` op and ``MomentumOptimizer``) against numpy re-implementations:
the optimizer over several steps (dense and row-sparse gradients, Nesterov, regularized,
clipped, groups, dtypes), torch.optim.SGD's momentum, the raw op with test_momentum_op's
semantics (our own numbers), static programs, checkpoints, torch's layout, and the errors.

The numpy reference computes in float32 as Paddle's float32 kernel does::

    v = v * mu + g
    p = p - lr * v                  (Nesterov: p = p - (g + v * mu) * lr)

A sparse gradient is merged (duplicate rows summed) and EVERY row is updated, absent rows
with gradient 0.
"""

import copy
import math

import numpy as np
import pytest
import torch

import torchfluid as fluid
import torchfluid.optim as O
import torchfluid.optimizer as F
from torchfluid.kernels import momentum_
from torchfluid.op import Operator

from .optimizer_steps import F32, PLACE, SHAPES, STEPS, Steps, dense_of, op_scope, static_program


# ---------------------------------------------------------------- the numpy reference


def np_momentum(p, g, v, lr, mu, nesterov, dtype=F32):
    """One dense update in ``dtype`` (new arrays): ``(p, v)``."""
    mu = dtype(F32(mu))  # Paddle: a float32 attribute, then static_cast<T>
    lr = dtype(lr) if dtype == np.float64 else dtype(F32(lr))  # a float64 lr tensor for float64, else float32
    v = v * mu + g
    step = (g + v * mu) * lr if nesterov else lr * v
    return p - step, v


# ---------------------------------------------------------------- gradients of each step

STEPS_DATA = Steps(11, [[1, 4, 1], [0, 5], [4, 4, 2], [3]])  # rows may repeat (summed); rows absent each step
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
    ("dense", {"learning_rate": 0.1, "momentum": 0.9}, False, {}),
    ("nesterov", {"learning_rate": 0.1, "momentum": 0.9, "use_nesterov": True}, False, {}),
    ("mu_zero_is_sgd", {"learning_rate": 0.2, "momentum": 0.0}, False, {}),
    ("mu_above_one", {"learning_rate": 0.01, "momentum": 1.5}, False, {}),
    ("defaults_2x", {}, False, {}),
    ("l2", {"learning_rate": 0.1, "momentum": 0.9, "regularization": fluid.L2Decay(0.1)}, False, {}),
    ("l1_nesterov",
     {"learning_rate": 0.1, "momentum": 0.5, "use_nesterov": True, "regularization": fluid.L1Decay(0.05)}, False, {}),
    ("weight_decay_float", {"learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.05}, False, {}),
    ("param_regularizer_overrides",
     {"learning_rate": 0.1, "momentum": 0.9, "regularization": fluid.L2Decay(0.1)}, False,
     {"w": {"regularizer": fluid.L1Decay(0.2)}}),
    ("clip_value", {"learning_rate": 0.1, "momentum": 0.9, "grad_clip": fluid.ClipGradByValue(0.3)}, False, {}),
    ("clip_norm", {"learning_rate": 0.1, "momentum": 0.9, "grad_clip": fluid.ClipGradByNorm(0.5)}, False, {}),
    ("clip_global_norm_l2", {"learning_rate": 0.1, "momentum": 0.9, "grad_clip": fluid.ClipGradByGlobalNorm(0.8),
                                 "regularization": fluid.L2Decay(0.1)}, False, {}),
    ("clip_global_norm_need_clip_false", {"learning_rate": 0.1, "momentum": 0.9,
                                              "grad_clip": fluid.ClipGradByGlobalNorm(0.8)}, False,
     {"b": {"need_clip": False}}),
    ("lr_multiplier", {"learning_rate": 0.1, "momentum": 0.9}, False,
     {"w": {"learning_rate": 0.5}, "b": {"learning_rate": 3.0}}),
    ("sparse", {"learning_rate": 0.1, "momentum": 0.9}, True, {}),
    ("sparse_nesterov", {"learning_rate": 0.3, "momentum": 0.8, "use_nesterov": True}, True, {}),
    ("sparse_clip_value", {"learning_rate": 0.1, "momentum": 0.9, "grad_clip": fluid.ClipGradByValue(0.4)}, True, {}),
    ("sparse_clip_global_norm", {"learning_rate": 0.1, "momentum": 0.9, "grad_clip": fluid.ClipGradByGlobalNorm(0.8)},
     True, {}),
    ("sparse_l2", {"learning_rate": 0.1, "momentum": 0.9, "regularization": fluid.L2Decay(0.1)}, True, {}),
]  # fmt: skip


def _reference(kwargs, sparse, attrs):
    """The run of a :data:`CASES` entry in numpy: final parameters and velocities."""
    lr, mu = kwargs.get("learning_rate", 0.001), kwargs.get("momentum", 0.9)
    nesterov = kwargs.get("use_nesterov", False)
    clip = kwargs.get("grad_clip")
    reg = kwargs.get("regularization")
    if kwargs.get("weight_decay") is not None:
        reg = fluid.L2Decay(kwargs["weight_decay"])
    p = {n: v.copy() for n, v in P0.items()}
    v = {n: np.zeros(s, F32) for n, s in SHAPES.items()}
    for step in range(STEPS):
        values, rows = {}, {}
        for n in SHAPES:
            if sparse and n == "emb":
                # clipping sees the merged rows (a norm over them equals the dense norm)
                rows[n] = sorted(set(SPARSE_ROWS[step]))
                dense = dense_of(SPARSE_ROWS[step], SPARSE_VALUES[step], SHAPES[n][0])
                values[n] = dense[rows[n]]
            else:
                values[n] = DENSE_G[step][n]
        clipped = [n for n in SHAPES if attrs.get(n, {}).get("need_clip", True)]
        if isinstance(clip, fluid.ClipGradByValue):
            values = {n: (np.clip(g, F32(clip.min), F32(clip.max)) if n in clipped else g) for n, g in values.items()}
        elif isinstance(clip, fluid.ClipGradByNorm):
            for n in clipped:
                norm = math.sqrt(float(np.sum(values[n].astype(np.float64) ** 2)))
                values[n] = values[n] * F32(clip.clip_norm / max(norm, clip.clip_norm))
        elif isinstance(clip, fluid.ClipGradByGlobalNorm):
            gn = math.sqrt(sum(float(np.sum(values[n].astype(np.float64) ** 2)) for n in clipped))
            scale = F32(clip.clip_norm / max(gn, clip.clip_norm))
            values = {n: (g * scale if n in clipped else g) for n, g in values.items()}
        for n in SHAPES:
            g = values[n]
            if n in rows:  # Paddle's sparse rule: every row, gradient 0 where absent
                g = dense_of(rows[n], g, SHAPES[n][0])
            r = attrs.get(n, {}).get("regularizer", reg)
            if isinstance(r, fluid.L2Decay):
                g = g + F32(r.coeff) * p[n]
            elif isinstance(r, fluid.L1Decay):
                g = g + F32(r.coeff) * np.sign(p[n])
            own_lr = lr * attrs.get(n, {}).get("learning_rate", 1.0)
            p[n], v[n] = np_momentum(p[n], g, v[n], own_lr, mu, nesterov)
    return p, v


@pytest.mark.parametrize("case_id,kwargs,sparse,attrs", CASES, ids=[c[0] for c in CASES])
def test_optimizer_matches_numpy(case_id, kwargs, sparse, attrs):
    params, opt = _train(F.Momentum, kwargs, sparse, attrs)
    want_p, want_v = _reference(kwargs, sparse, attrs)
    sd = opt.state_dict()
    assert sorted(k for k in sd if k.endswith("_velocity_0")) == sorted(f"{n}_velocity_0" for n in SHAPES)
    # plain float32 maths is exact; a norm (float64 here, one pass there) may move the last bit
    tol = {"rtol": 2e-6, "atol": 1e-7} if "norm" in case_id else {"rtol": 0, "atol": 0}
    for n in SHAPES:
        np.testing.assert_allclose(params[n].detach().numpy(), want_p[n], **tol, err_msg=n)
        np.testing.assert_allclose(sd[f"{n}_velocity_0"].numpy(), want_v[n], **tol, err_msg=n)


def test_sparse_rows_absent_from_the_gradient_still_move():
    """Paddle's sparse rule: a row absent from the gradient has its velocity decayed by mu
    and moves by it; a NaN velocity stays in its own row."""
    p = torch.nn.Parameter(torch.tensor(P0["emb"]))
    opt = F.Momentum(0.1, 0.5, parameters=[("emb", p)])
    velocity = np.full(SHAPES["emb"], 0.25, F32)
    velocity[2] = np.nan
    opt.set_state_dict({"emb_velocity_0": velocity})
    p.grad = torch.sparse_coo_tensor(torch.tensor([[0, 5, 0]]), torch.ones(3, 3), SHAPES["emb"], check_invariants=True)
    opt.step()
    got_p, got_v = p.detach().numpy(), opt.state_dict()["emb_velocity_0"].numpy()
    absent = [1, 3, 4]
    np.testing.assert_array_equal(got_v[absent], np.full((3, 3), 0.125, F32))
    np.testing.assert_array_equal(got_p[absent], P0["emb"][absent] - F32(0.1) * F32(0.125))
    assert np.isnan(got_p[2]).all() and np.isfinite(got_p[[0, 1, 3, 4, 5]]).all()
    np.testing.assert_array_equal(got_v[0], np.full(3, 0.125 + 2.0, F32))  # row 0 twice: summed


def test_sparse_embedding_model_equals_its_dense_twin():
    """``torch.nn.Embedding(sparse=True)`` trains exactly as the dense embedding (every row
    moves by its velocity, as with a dense zero gradient)."""
    torch.manual_seed(0)
    sparse, dense = torch.nn.Embedding(10, 4, sparse=True), torch.nn.Embedding(10, 4)
    dense.load_state_dict(sparse.state_dict())
    opts = [F.Momentum(0.5, 0.9, parameters=m.parameters(), use_nesterov=True) for m in (sparse, dense)]
    ids = [torch.tensor([1, 3, 3, 7]), torch.tensor([0, 1, 1]), torch.tensor([7, 8])]
    start = sparse.weight.detach().clone()
    for x in ids:
        for m, opt in zip((sparse, dense), opts, strict=True):
            opt.clear_grad(set_to_zero=False)
            m(x).pow(2).sum().backward()
            opt.step()
    torch.testing.assert_close(sparse.weight, dense.weight, rtol=0, atol=0)
    assert not torch.equal(sparse.weight[2], start[2]) or not torch.equal(sparse.weight[1], start[1])
    assert torch.equal(sparse.weight[[2, 4, 5, 6, 9]], start[[2, 4, 5, 6, 9]])  # never seen, velocity 0


def test_groups_keep_their_own_momentum_nesterov_and_lr():
    """Paddle 2.x parameter groups: ``momentum`` and ``use_nesterov`` are group options,
    ``learning_rate`` a multiplier; each group follows its own numbers."""
    a = torch.nn.Parameter(torch.tensor(P0["w"]))
    b = torch.nn.Parameter(torch.tensor(P0["b"]))
    groups = [
        {"params": [("a", a)]},
        {"params": [("b", b)], "momentum": 0.99, "use_nesterov": True, "learning_rate": 0.5},
    ]
    opt = F.Momentum(learning_rate=0.2, momentum=0.5, parameters=groups)
    pa, va = P0["w"], np.zeros(SHAPES["w"], F32)
    pb, vb = P0["b"], np.zeros(SHAPES["b"], F32)
    for step in range(STEPS):
        a.grad, b.grad = torch.tensor(DENSE_G[step]["w"]), torch.tensor(DENSE_G[step]["b"])
        opt.step()
        pa, va = np_momentum(pa, DENSE_G[step]["w"], va, 0.2, 0.5, False)
        pb, vb = np_momentum(pb, DENSE_G[step]["b"], vb, 0.2 * 0.5, 0.99, True)
    np.testing.assert_array_equal(a.detach().numpy(), pa)
    np.testing.assert_array_equal(b.detach().numpy(), pb)
    np.testing.assert_array_equal(opt.state_dict()["b_velocity_0"].numpy(), vb)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_other_dtypes_compute_in_the_parameters_dtype(dtype, nesterov):
    """Without multi-precision the velocity has the parameter's dtype and every operation is
    rounded to it, lr and mu too (Paddle's static_cast<T>): numpy in that dtype."""
    p = torch.nn.Parameter(torch.tensor(P0["w"].astype(dtype)))
    opt = F.Momentum(0.1, 0.9, parameters=[("w", p)], use_nesterov=nesterov)
    ref_p, ref_v = P0["w"].astype(dtype), np.zeros(SHAPES["w"], dtype)
    for step in range(STEPS):
        g = DENSE_G[step]["w"].astype(dtype)
        p.grad = torch.tensor(g)
        opt.step()
        ref_p, ref_v = np_momentum(ref_p, g, ref_v, 0.1, 0.9, nesterov, dtype=dtype)
    assert opt.state_dict()["w_velocity_0"].dtype == torch.from_numpy(ref_v).dtype
    np.testing.assert_array_equal(p.detach().numpy(), ref_p)
    np.testing.assert_array_equal(opt.state_dict()["w_velocity_0"].numpy(), ref_v)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_multi_precision_keeps_float32_masters_and_velocity(dtype):
    """``multi_precision=True`` (Paddle 2.x): the update runs in float32 on a float32 master
    weight and velocity; the parameter is the master rounded once per step."""
    p = torch.nn.Parameter(torch.tensor(P0["w"]).to(dtype))
    opt = F.Momentum(0.1, 0.9, parameters=[("w", p)], multi_precision=True)
    master, v = torch.tensor(P0["w"]).to(dtype).float().numpy(), np.zeros(SHAPES["w"], F32)
    for step in range(STEPS):
        g = torch.tensor(DENSE_G[step]["w"]).to(dtype)
        p.grad = g
        opt.step()
        master, v = np_momentum(master, g.float().numpy(), v, 0.1, 0.9, False)
    sd = opt.state_dict()
    assert opt.multi_precision and sd["w_velocity_0"].dtype == torch.float32
    np.testing.assert_array_equal(sd["master_weights"]["w"].numpy(), master)
    assert torch.equal(p.detach(), torch.from_numpy(master).to(dtype))


def test_torch_sgd_momentum_has_the_same_velocity_numbers():
    """torch.optim.SGD(momentum=mu, dampening=0): its buffer starts at g, Paddle's velocity
    at 0 * mu + g = g; both are the same numbers at every step. The parameters agree up to
    the rounding of torch's fused multiply-add."""
    for nesterov in (False, True):
        ours = torch.nn.Parameter(torch.tensor(P0["w"]))
        theirs = torch.nn.Parameter(torch.tensor(P0["w"]))
        opt = F.Momentum(0.1, 0.9, parameters=[ours], use_nesterov=nesterov)
        ref = torch.optim.SGD([theirs], lr=0.1, momentum=0.9, nesterov=nesterov)
        for step in range(STEPS):
            ours.grad = torch.tensor(DENSE_G[step]["w"])
            theirs.grad = torch.tensor(DENSE_G[step]["w"])
            opt.step()
            ref.step()
            assert torch.equal(opt.state[ours]["velocity"], ref.state[theirs]["momentum_buffer"])
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)


def test_torch_sgd_weight_decay_is_the_coupled_l2_decay():
    ours = torch.nn.Parameter(torch.tensor(P0["w"]))
    theirs = torch.nn.Parameter(torch.tensor(P0["w"]))
    opt = F.Momentum(0.1, 0.9, parameters=[ours], weight_decay=0.05)
    ref = torch.optim.SGD([theirs], lr=0.1, momentum=0.9, weight_decay=0.05)
    for step in range(STEPS):
        ours.grad = torch.tensor(DENSE_G[step]["w"])
        theirs.grad = torch.tensor(DENSE_G[step]["w"])
        opt.step()
        ref.step()
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- the kernel


# (id, nesterov, rescale_grad, l2_coeff)
KERNEL_CASES = [
    ("plain", False, 1.0, 0.0),
    ("nesterov", True, 1.0, 0.0),
    ("rescale", False, 0.25, 0.0),
    ("l2", False, 1.0, 0.3),
    ("rescale_then_l2_nesterov", True, 0.5, 0.3),
]


@pytest.mark.parametrize("case_id,nesterov,rescale,coeff", KERNEL_CASES, ids=[c[0] for c in KERNEL_CASES])
def test_kernel_matches_numpy(case_id, nesterov, rescale, coeff):
    p, g, v = P0["w"].copy(), DENSE_G[0]["w"], DENSE_G[1]["w"] * F32(0.5)
    tp, tv = torch.tensor(p), torch.tensor(v)
    momentum_(tp, torch.tensor(g), tv, lr=0.2, mu=0.7, use_nesterov=nesterov, rescale_grad=rescale, l2_coeff=coeff)
    g = g * F32(rescale)
    if coeff:
        g = p * F32(coeff) + g
    want_p, want_v = np_momentum(p, g, v, 0.2, 0.7, nesterov)
    np.testing.assert_array_equal(tp.numpy(), want_p)
    np.testing.assert_array_equal(tv.numpy(), want_v)


def test_kernel_hyper_parameters_are_keyword_only():
    p, g, v = (torch.tensor(P0["w"]) for _ in range(3))
    with pytest.raises(TypeError):
        momentum_(p, g, v, 0.1, 0.9)  # noqa - lr and mu are keyword-only


# ---------------------------------------------------------------- the raw op (test_momentum_op semantics)


def _run_op(scope, **attrs):
    slots = {"Param": "Param", "Grad": "Grad", "Velocity": "Velocity", "LearningRate": "LearningRate"}
    Operator("momentum", ParamOut="Param", VelocityOut="Velocity", **slots, **attrs).run(scope, PLACE)
    return np.array(scope.find_var("Param").get_tensor()), np.array(scope.find_var("Velocity").get_tensor())


# (id, shape, dtype, lr, attributes, velocity start)
RAW_DENSE = [
    ("small_mu", (23, 31), F32, 0.001, {"mu": 0.0001}, 0.0),
    ("nesterov", (23, 31), F32, 0.001, {"mu": 0.0001, "use_nesterov": True}, 0.0),
    ("running_velocity", (8, 5), F32, 0.5, {"mu": 0.9}, 0.75),
    ("l2_decay_nesterov", (8, 5), F32, 0.01, {"mu": 0.5, "use_nesterov": True, "regularization_method": "l2_decay",
                                                 "regularization_coeff": 0.9}, 0.1),
    ("l2_decay", (3, 4, 5), F32, 0.01, {"mu": 0.5, "regularization_method": "l2_decay", "regularization_coeff": 0.9},
     0.1),
    ("coeff_without_method_is_ignored", (8, 5), F32, 0.01, {"mu": 0.5, "regularization_coeff": 0.9}, 0.1),
    ("rescale_grad", (8, 5), F32, 0.1, {"mu": 0.9, "rescale_grad": 0.125, "regularization_method": "l2_decay",
                                            "regularization_coeff": 0.5}, 0.2),
    ("float16", (23, 31), np.float16, 0.001, {"mu": 0.0001}, 0.0),
    ("float64_nesterov", (8, 5), np.float64, 0.3, {"mu": 0.9, "use_nesterov": True}, 0.5),
    ("zero_d", (), F32, 0.1, {"mu": 0.9}, 0.4),
]  # fmt: skip


@pytest.mark.parametrize("case_id,shape,dtype,lr,attrs,v0", RAW_DENSE, ids=[c[0] for c in RAW_DENSE])
def test_raw_dense_momentum_op_matches_numpy(case_id, shape, dtype, lr, attrs, v0):
    rng = np.random.default_rng(len(shape) + int(lr * 1000))
    param = rng.random(shape).astype(dtype)
    grad = rng.random(shape).astype(dtype)
    velocity = np.full(shape, v0, dtype)
    lr_dtype = np.float64 if dtype == np.float64 else F32  # Paddle's: the parameter's, float32 for float16
    scope = op_scope({"Param": param, "Grad": grad, "Velocity": velocity, "LearningRate": np.array([lr], lr_dtype)})
    got_p, got_v = _run_op(scope, **attrs)
    g = grad * dtype(F32(attrs.get("rescale_grad", 1.0)))
    if attrs.get("regularization_method") == "l2_decay":
        g = param * dtype(F32(attrs["regularization_coeff"])) + g
    want_p, want_v = np_momentum(param, g, velocity, lr, attrs["mu"], attrs.get("use_nesterov", False), dtype=dtype)
    assert got_p.shape == shape and got_p.dtype == dtype
    np.testing.assert_array_equal(got_v, want_v)
    np.testing.assert_array_equal(got_p, want_p)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("decay", [None, 0.9])
def test_raw_sparse_momentum_op_updates_every_row(nesterov, decay):
    """test_momentum_op's sparse case with our numbers: rows [0, 4, 7, 4] of a 10-row
    gradient (row 4 twice: summed), mu 1, lr 2; every row is updated, the absent ones with
    gradient 0 (and the L2 term, which reaches every row)."""
    height, width, rows = 10, 12, [0, 4, 7, 4]
    value = np.ones((len(rows), width), F32)
    value[0, 0], value[2, 8], value[3, 5] = 2.0, 4.0, -3.0
    param = np.full((height, width), 5.0, F32)
    velocity = np.ones((height, width), F32)
    scope = op_scope(
        {"Param": param, "Velocity": velocity, "LearningRate": np.array([2.0], F32)}, (height, rows, value)
    )
    attrs = {"mu": 1.0, "use_nesterov": nesterov}
    if decay is not None:
        attrs.update(regularization_method="l2_decay", regularization_coeff=decay)
    got_p, got_v = _run_op(scope, **attrs)
    g = dense_of(rows, value, height)
    assert g[4, 5] == -2.0 and g[4, 0] == 2.0  # the repeated row summed
    if decay is not None:
        g = param * F32(decay) + g
    want_p, want_v = np_momentum(param, g, velocity, 2.0, 1.0, nesterov)
    np.testing.assert_array_equal(got_v, want_v)
    np.testing.assert_array_equal(got_p, want_p)
    if decay is None:  # an absent row: v = 1 * 1 + 0, p = 5 - 2 * 1 (Nesterov: 5 - (0 + 1 * 1) * 2)
        assert got_v[3, 0] == 1.0 and got_p[3, 0] == 3.0


def test_raw_sparse_op_equals_the_optimizer_on_a_sparse_gradient():
    """The raw op and the optimizer's sparse path are one kernel: equal bits."""
    rows, value = [2, 0, 2], SPARSE_VALUES[2]
    velocity = DENSE_G[0]["emb"] * F32(0.1)
    scope = op_scope(
        {"Param": P0["emb"], "Velocity": velocity, "LearningRate": np.array([0.3], F32)},
        (SHAPES["emb"][0], rows, value),
    )
    got_p, got_v = _run_op(scope, mu=0.9, use_nesterov=True)
    p = torch.nn.Parameter(torch.tensor(P0["emb"]))
    opt = F.Momentum(0.3, 0.9, parameters=[("e", p)], use_nesterov=True)
    opt.set_state_dict({"e_velocity_0": velocity})
    p.grad = torch.sparse_coo_tensor(torch.tensor([rows]), torch.tensor(value), SHAPES["emb"], check_invariants=True)
    opt.step()
    np.testing.assert_array_equal(got_p, p.detach().numpy())
    np.testing.assert_array_equal(got_v, opt.state_dict()["e_velocity_0"].numpy())


# ---------------------------------------------------------------- static programs


def test_static_minimize_appends_one_momentum_op_and_velocity_variables():
    main, start, _ = static_program(lambda: F.Momentum(0.1, 0.9, use_nesterov=True))
    ops = [op.type for op in main.global_block().ops]
    assert ops[-1] == "momentum" and ops.count("momentum") == 1
    from torchfluid.static.optimize import accumulator_vars

    assert accumulator_vars(main) == {
        "fc_0.b_0": {"velocity": "fc_0.b_0_velocity_0"},
        "fc_0.w_0": {"velocity": "fc_0.w_0_velocity_0"},
    }
    scope = fluid.Scope()
    fluid.Executor().run(start, scope=scope)
    np.testing.assert_array_equal(np.array(scope.find_var("fc_0.w_0_velocity_0").get_tensor()), np.zeros((3, 2), F32))


# ---------------------------------------------------------------- checkpoints and layouts


def test_torch_layout_optimizer_and_cross_layout_loading():
    """torchfluid.optim.Momentum: torch's layout (the velocity is torch.optim.SGD's
    ``momentum_buffer``), torch's call, the same update; each layout loads into the other
    and the runs continue with the same bits."""
    kw = {"momentum": 0.9, "use_nesterov": True}
    params, opt = _train(O.Momentum, dict(lr=0.1, **kw), False, {}, steps=range(2))
    sd = opt.state_dict()
    assert set(sd) >= {"state", "param_groups"}
    assert sd["param_groups"][0]["param_names"] == list(SHAPES)
    assert set(sd["state"][0]) == {"momentum_buffer"} and set(opt.paddle_state_dict()) == {
        f"{n}_velocity_0" for n in SHAPES
    }
    paddle_params, paddle_opt = _train(F.Momentum, dict(learning_rate=0.1, **kw), False, {}, steps=range(2))
    for n in SHAPES:
        assert torch.equal(params[n], paddle_params[n])
    twin = {n: torch.nn.Parameter(t.detach().clone()) for n, t in params.items()}
    twin_opt = F.Momentum(0.1, parameters=list(twin.items()), **kw)
    twin_opt.load_state_dict(sd)  # torch layout into the Paddle-layout optimizer
    back = O.Momentum(list(paddle_params.items()), lr=0.1, **kw)
    back.load_state_dict(paddle_opt.state_dict())  # and the other way
    a, _ = _train(None, None, False, {}, steps=range(2, STEPS), params=twin, opt=twin_opt)
    b, _ = _train(None, None, False, {}, steps=range(2, STEPS), params=paddle_params, opt=back)
    c, _ = _train(None, None, False, {}, steps=range(2, STEPS), params=params, opt=opt)
    for n in SHAPES:
        assert torch.equal(a[n], c[n]) and torch.equal(b[n], c[n])


@pytest.mark.parametrize("cls", [F.Momentum, O.Momentum], ids=["paddle-layout", "torch-layout"])
def test_a_torch_sgd_state_dict_loads_and_the_run_continues(cls):
    """torch.optim.SGD(momentum=0.9, nesterov=True)'s state dict (its momentum_buffer, its
    group's ``nesterov``) loads by name and the run continues as torch's does."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    theirs = torch.optim.SGD(model.named_parameters(), lr=0.1, momentum=0.9, nesterov=True)
    x = torch.randn(6, 3)
    for _ in range(3):
        theirs.zero_grad()
        model(x).pow(2).sum().backward()
        theirs.step()
    twin = copy.deepcopy(model)
    ours = cls(parameters=list(twin.named_parameters()), learning_rate=0.1, momentum=0.9)
    ours.load_state_dict(copy.deepcopy(theirs.state_dict()))
    assert ours.param_groups[0]["use_nesterov"] is True
    for m, opt in ((model, theirs), (twin, ours)):
        for _ in range(3):
            opt.zero_grad()
            m(x).pow(2).sum().backward()
            opt.step()
    for got, want in zip(twin.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "sgd_kwargs,match",
    [
        ({"dampening": 0.1}, r"a param group has dampening=0.1; allowed: 0 \(Paddle's momentum has no dampening"),
    ],
)
def test_a_torch_sgd_state_dict_with_other_maths_is_refused(sgd_kwargs, match):
    """torch.optim.SGD's dampening has no Paddle counterpart: such a state dict is refused
    and nothing changes."""
    p = torch.nn.Parameter(torch.tensor(P0["w"]))
    sgd = torch.optim.SGD([p], lr=0.1, momentum=0.9, **sgd_kwargs)
    p.grad = torch.tensor(DENSE_G[0]["w"])
    sgd.step()
    q = torch.nn.Parameter(torch.tensor(P0["w"]))
    ours = O.Momentum([q], lr=0.1, momentum=0.9)
    q.grad = torch.tensor(DENSE_G[0]["w"])
    ours.step()
    before = copy.deepcopy(ours.paddle_state_dict())
    with pytest.raises(ValueError, match=match):
        ours.load_state_dict(sgd.state_dict())
    for k, v in before.items():
        assert torch.equal(ours.paddle_state_dict()[k], v)


# ---------------------------------------------------------------- names and errors


def test_fluid_and_2x_names():
    assert fluid.optimizer.Momentum is fluid.optimizer.MomentumOptimizer is F.MomentumOptimizer
    assert issubclass(O.Momentum, F.Momentum) and issubclass(F.Momentum, torch.optim.Optimizer)
    p = torch.nn.Parameter(torch.ones(2))
    fluid_style = F.MomentumOptimizer(0.1, 0.8, [p], True, fluid.L2Decay(0.1), None, "n")  # Paddle's positions
    assert fluid_style.defaults["momentum"] == 0.8 and fluid_style.defaults["use_nesterov"] is True
    assert fluid_style.regularization == fluid.L2Decay(0.1) and fluid_style.name == "n"
    v2 = F.Momentum(
        parameters=[p], weight_decay=0.01, grad_clip=fluid.ClipGradByNorm(1.0), rescale_grad=1.0, use_multi_tensor=True
    )
    assert (v2.defaults["lr"], v2.defaults["momentum"]) == (0.001, 0.9)  # paddle.optimizer.Momentum's defaults
    assert v2.regularization == fluid.L2Decay(0.01) and v2.grad_clip.clip_norm == 1.0 and not v2.multi_precision


# (keyword arguments, error type, message)
BAD_ARGS = [
    ({"momentum": -0.1}, ValueError, r"^momentum must be >= 0, got -0.1$"),
    ({"momentum": float("inf")}, ValueError, r"^momentum must be >= 0, got inf$"),
    ({"momentum": True}, TypeError, r"^momentum must be a real number >= 0, got True of type bool$"),
    ({"momentum": None}, ValueError, r"^momentum must be >= 0, got None$"),  # Paddle 2.x: ValueError
    ({"learning_rate": None}, ValueError, r"^learning_rate is not set: pass a float >= 0"),
    ({"learning_rate": -0.1}, ValueError, r"learning_rate must be >= 0, got -0.1"),
    ({"use_nesterov": 1}, TypeError, r"^use_nesterov must be True or False, got 1$"),
    ({"multi_precision": "yes"}, TypeError, r"^multi_precision must be True or False, got 'yes'$"),
    ({"use_multi_tensor": None}, TypeError, r"^use_multi_tensor must be True or False, got None$"),
    ({"rescale_grad": 0.5}, ValueError, r"^rescale_grad must be 1.0, got 0.5: Paddle's CPU kernel ignores it"),
    ({"rescale_grad": "1"}, TypeError, r"^rescale_grad must be a real number, got '1' of type str$"),
]


@pytest.mark.parametrize("kwargs,error,match", BAD_ARGS)
def test_bad_arguments_raise_in_the_house_style(kwargs, error, match):
    p = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(error, match=match):
        F.Momentum(**{"learning_rate": 0.1, **kwargs}, parameters=[p])


def test_add_param_group_checks_the_options():
    opt = F.Momentum(0.1, parameters=[torch.nn.Parameter(torch.ones(2))])
    with pytest.raises(ValueError, match=r"^momentum must be >= 0, got -1.0$"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(2))], "momentum": -1.0})
    assert len(opt.param_groups) == 1


def test_a_torch_sgd_state_dict_with_maximize_loads_and_the_run_continues_as_torchs():
    """maximize is every optimizer's option: the group's flag loads with the velocity."""
    p, q = (torch.nn.Parameter(torch.tensor(P0["w"])) for _ in range(2))
    sgd = torch.optim.SGD([p], lr=0.1, momentum=0.9, maximize=True)
    p.grad = torch.tensor(DENSE_G[0]["w"])
    sgd.step()
    ours = O.Momentum([q], lr=0.1, momentum=0.9)
    ours.load_state_dict(sgd.state_dict())
    q.data.copy_(p.detach())
    assert ours.param_groups[0]["maximize"] is True
    for step in (1, 2):
        p.grad, q.grad = torch.tensor(DENSE_G[step]["w"]), torch.tensor(DENSE_G[step]["w"])
        sgd.step()
        ours.step()
    torch.testing.assert_close(q, p, rtol=1e-6, atol=1e-7)
