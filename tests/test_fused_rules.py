"""The fused CPU kernels of Momentum, Adagrad, SGD and Adam equal their reference kernels
bit for bit: the flat groups against ``momentum_`` / ``adagrad_`` / ``sgd_`` / ``adam_`` (with the folded
clip and L2/L1 terms), and whole optimizers (``fused=None`` against ``fused=False``) over
random shapes, dtypes, hyper-parameters, parameter groups, regularizers, clips, learning
rate schedules and missing gradients; plus what the fused path refuses or leaves to the
reference kernel."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import torchfluid as fluid
import torchfluid.optim as O
from torchfluid.dygraph import learning_rate_scheduler as dy_lr
from torchfluid.kernels.adagrad import adagrad_
from torchfluid.kernels.adam import adam_
from torchfluid.kernels.attrs import paddle_attrs
from torchfluid.kernels.adadelta import adadelta_
from torchfluid.kernels.adamax import adamax_
from torchfluid.kernels.flat import FlatAdadelta, FlatAdagrad, FlatAdam, FlatAdamax, FlatMomentum, FlatSGD, GradFold
from torchfluid.kernels.momentum import momentum_
from torchfluid.kernels.sgd import sgd_

from .fused_cases import shapes

pytest.importorskip("numba")  # CPU groups step with the numba kernel

KINDS = ("momentum", "adagrad", "sgd", "adam", "adamw", "adamax", "adadelta")
STATE = {
    "momentum": ("velocity",),
    "adagrad": ("moment",),
    "sgd": (),
    "adam": ("moment1", "moment2", "beta1_pow_acc", "beta2_pow_acc"),
    "adamw": ("moment1", "moment2", "beta1_pow_acc", "beta2_pow_acc"),
    "adamax": ("moment", "inf_norm", "beta1_pow_acc"),
    "adadelta": ("_avg_squared_grad", "_avg_squared_update"),
}


def bits(t: torch.Tensor) -> torch.Tensor:
    """``t``'s bit pattern (NaNs compare equal to themselves)."""
    return t.detach().contiguous().view(torch.int32 if t.dtype == torch.float32 else torch.int64)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(bits(a), bits(b))


# ------------------------------------------------------------------ flat groups
per_tensor = st.one_of(st.just(0.0), st.floats(1e-4, 0.5))


@st.composite
def flat_cases(draw):
    shp = draw(shapes)[:4]
    n = len(shp)

    def each(strategy):
        return draw(st.lists(strategy, min_size=n, max_size=n))

    return {
        "kind": draw(st.sampled_from(KINDS)),
        "shapes": shp,
        "dtype": draw(st.sampled_from([torch.float32, torch.float64])),
        "seed": draw(st.integers(0, 2**31 - 1)),
        "missing": each(st.booleans()),
        "mu": draw(st.one_of(st.just(0.0), st.sampled_from([0.5, 0.9, 0.99]), st.floats(0.0, 1.5))),
        "nesterov": draw(st.booleans()),
        "epsilon": draw(st.sampled_from([1e-10, 1e-6, 1e-3, 0.1])),
        "initial": draw(st.sampled_from([0.0, 0.1, 1.0])),
        "betas": draw(st.sampled_from([(0.9, 0.999), (0.5, 0.9), (0.0, 0.0)])),
        "lr": each(st.floats(1e-4, 1.0)),
        "scale": each(st.one_of(st.just(1.0), st.floats(0.01, 1.0))),
        "clip": each(st.one_of(st.none(), st.floats(0.1, 2.0).map(lambda c: (-c, c)))),
        "l2": each(per_tensor),
        "l1": each(per_tensor),
        "decay": each(st.one_of(st.just(0.0), st.sampled_from([0.01, 0.1]), st.floats(0.0, 2.0))),
        "amsgrad": draw(st.booleans()),
        "steps": draw(st.integers(1, 3)),
    }


def _prepared(p, g, scale, clip, l2, l1):
    """The gradient the reference kernel gets: scaled (a global-norm clip), clipped by
    value, then L2 and L1 decay, each op rounded as the optimizer's pipeline rounds it."""
    g = g.mul(scale) if scale != 1.0 else g
    if clip is not None:
        g = g.clamp(*clip)
    if l2 != 0.0:
        g = g.add(p.mul(l2))
    if l1 != 0.0:
        g = g.add(torch.sign(p).mul(l1))
    return g


def _reference(kind, p, g, state, case, lr, coeff=0.0):
    if kind == "momentum":
        momentum_(p, g, state["velocity"], lr=lr, mu=case["mu"], use_nesterov=case["nesterov"])
    elif kind == "adagrad":
        adagrad_(p, g, state["moment"], lr=lr, epsilon=case["epsilon"])
    elif kind in ("adam", "adamw"):
        beta1, beta2 = case["betas"]
        if kind == "adamw" and coeff != 0.0:  # AdamWRule.update's decay: p - (lr * coeff) * p in the dtype
            lr_t, coeff_t = (torch.tensor(v, dtype=p.dtype) for v in (lr, *paddle_attrs(p.dtype, coeff)))
            p.sub_(p * (lr_t * coeff_t))
        adam_(
            p,
            g,
            *(state[k] for k in STATE["adam"]),
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            epsilon=case["epsilon"],
            moment2_max=state.get("moment2_max"),
        )
    elif kind == "adadelta":
        adadelta_(p, g, *(state[k] for k in STATE["adadelta"]), lr=lr, rho=case["betas"][1], epsilon=case["epsilon"])
    elif kind == "adamax":
        beta1, beta2 = case["betas"]
        adamax_(p, g, *(state[k] for k in STATE["adamax"]), lr=lr, beta1=beta1, beta2=beta2, epsilon=case["epsilon"])
    else:
        sgd_(p, g, lr=lr)


def _flat_step(kind, group, case, grads):
    extras = {
        "lr": case["lr"],
        "grads": grads,
        "fold": GradFold(
            grad_scale=case["scale"],
            clip_min=[-float("inf") if c is None else c[0] for c in case["clip"]],
            clip_max=[float("inf") if c is None else c[1] for c in case["clip"]],
            l2=case["l2"],
            l1=case["l1"],
        ),
    }
    if kind == "momentum":
        group.step(mu=case["mu"], use_nesterov=case["nesterov"], **extras)
    elif kind == "adagrad":
        group.step(epsilon=case["epsilon"], **extras)
    elif kind == "adamax":
        group.step(beta1=case["betas"][0], beta2=case["betas"][1], epsilon=case["epsilon"], **extras)
    elif kind == "adadelta":
        group.step(rho=case["betas"][1], epsilon=case["epsilon"], **extras)
    elif kind in ("adam", "adamw"):
        decay = {"decay": case["decay"]} if kind == "adamw" else {}
        group.step(beta1=case["betas"][0], beta2=case["betas"][1], epsilon=case["epsilon"], **extras, **decay)
    else:
        group.step(**extras)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=flat_cases())
def test_flat_group_step_equals_the_reference_kernel_bit_for_bit(case):
    kind, dt = case["kind"], case["dtype"]
    gen = torch.Generator().manual_seed(case["seed"])

    def rnd(shape):
        return torch.randn(shape, generator=gen, dtype=torch.float64).to(dt)

    params = [rnd(s) for s in case["shapes"]]
    ref_params = [p.clone() for p in params]
    if kind == "momentum":
        group = FlatMomentum(params)
    elif kind == "adagrad":
        group = FlatAdagrad(params, initial_accumulator_value=case["initial"])
    elif kind in ("adam", "adamw"):
        group = FlatAdam(params, beta1=case["betas"][0], beta2=case["betas"][1], amsgrad=case["amsgrad"])
    elif kind == "adamax":
        group = FlatAdamax(params, beta1=case["betas"][0])
    elif kind == "adadelta":
        group = FlatAdadelta(params)
    else:
        group = FlatSGD(params)
    accs = STATE[kind] + (("moment2_max",) if kind in ("adam", "adamw") and case["amsgrad"] else ())
    for i in range(len(params)):  # start from state that is not the initial one
        for acc in accs:
            view = group.state(i)[acc]
            if acc in ("velocity", "moment1") or (kind == "adamax" and acc == "moment"):
                view.copy_(rnd(view.shape) * 0.1)
            elif acc in ("moment2", "moment2_max", "inf_norm", "_avg_squared_grad", "_avg_squared_update"):
                view.copy_(rnd(view.shape).abs() * 0.1)
    ref_state = [{acc: group.state(i)[acc].clone() for acc in accs} for i in range(len(params))]
    for step in range(case["steps"]):
        grads = [None if miss else rnd(s) for s, miss in zip(case["shapes"], case["missing"], strict=True)]
        _flat_step(kind, group, case, grads)
        for i, (p, g) in enumerate(zip(ref_params, grads, strict=True)):
            if g is None:
                continue
            g = _prepared(p, g, case["scale"][i], case["clip"][i], case["l2"][i], case["l1"][i])
            _reference(kind, p, g, ref_state[i], case, case["lr"][i], case["decay"][i])
        for i in range(len(params)):
            assert same_bits(params[i], ref_params[i]), f"step {step}: param {i} differs"
            for acc in accs:
                assert same_bits(group.state(i)[acc], ref_state[i][acc]), f"step {step}: {acc} {i} differs"


@pytest.mark.parametrize(
    "make,call,error",
    [
        (FlatMomentum, {"lr": 0.1, "mu": -0.5}, "mu: -0.5; allowed: a finite mu >= 0"),
        (FlatMomentum, {"lr": 0.1, "mu": float("inf")}, "mu: inf; allowed: a finite mu >= 0"),
        (FlatMomentum, {"lr": 0.1, "mu": "x"}, "mu: 'x' is not a real number"),
        (FlatAdagrad, {"lr": 0.1, "epsilon": -1.0}, "epsilon: -1.0; allowed: epsilon >= 0"),
        (FlatAdam, {"lr": 0.1, "beta1": 1.0, "beta2": 0.9, "epsilon": 1e-8}, "beta1: 1.0; allowed: 0 <= beta1 < 1"),
        (FlatAdam, {"lr": 0.1, "beta1": 0.9, "beta2": -0.1, "epsilon": 1e-8}, "beta2: -0.1; allowed: 0 <= beta2 < 1"),
        (
            FlatAdam,
            {"lr": 0.1, "beta1": 0.9, "beta2": 0.9, "epsilon": 1e-8, "decay": [-1.0]},
            r"decay\[0\]: -1.0; allowed",
        ),
        (
            FlatAdam,
            {"lr": 0.1, "beta1": 0.9, "beta2": 0.9, "epsilon": 1e-8, "decay": [0.1, 0.1]},
            "decay: 2 values for 1",
        ),
        (FlatSGD, {"lr": [0.1, 0.2]}, r"lr: shape \(2,\); allowed: a float or 1 floats"),
        (FlatSGD, {"lr": 0.1, "fold": GradFold(l2=[0.1, 0.2])}, r"l2: shape \(2,\); allowed: a float or 1 floats"),
        (FlatAdagrad, {"lr": 0.1, "epsilon": 1e-6, "fold": GradFold(clip_max=[[1.0]])}, r"clip_max: shape \(1, 1\)"),
        (FlatMomentum, {"lr": 0.1, "mu": 0.9, "fold": GradFold(grad_scale=[])}, r"grad_scale: shape \(0,\)"),
    ],
    ids=[
        "negative mu",
        "infinite mu",
        "mu not a number",
        "negative epsilon",
        "beta1 1",
        "beta2 < 0",
        "negative decay",
        "decay too long",
        "lr too long",
        "l2 too long",
        "clip_max 2-d",
        "grad_scale empty",
    ],
)
def test_flat_group_refuses_bad_hyper_parameters_before_any_change(make, call, error):
    p = torch.randn(5)
    group = make([p])
    before = p.clone()
    p.grad = torch.randn(5)
    with pytest.raises(ValueError, match=error):
        group.step(**call)
    assert torch.equal(p, before)


@pytest.mark.parametrize(
    "make,call",
    [
        (FlatMomentum, {"lr": 0.1, "mu": 0.9}),
        (FlatAdagrad, {"lr": 0.1, "epsilon": 1e-6}),
        (FlatAdam, {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}),
        (FlatSGD, {"lr": 0.1}),
    ],
)
@pytest.mark.parametrize("fold", [{"l2": 0.1}, (1.0, None, None, 0.0, 0.0), None], ids=["dict", "tuple", "None"])
def test_flat_group_takes_the_folded_terms_only_as_one_record(make, call, fold):
    p = torch.randn(5)
    group = make([p])
    before = p.clone()
    p.grad = torch.randn(5)
    with pytest.raises(TypeError, match=f"fold: {type(fold).__name__}; allowed: a GradFold"):
        group.step(**call, fold=fold)
    assert torch.equal(p, before)


def test_flat_groups_have_no_cuda_kernel():
    with pytest.raises(ValueError, match="params\\[0\\]: on meta, where FlatMomentum has no kernel; allowed: cpu"):
        FlatMomentum([torch.empty(3, device="meta")])


# ------------------------------------------------------------------ optimizers
SCHEDULES = {
    "none": None,
    "piecewise": lambda: dy_lr.PiecewiseDecay([1, 2], [0.05, 0.02, 0.01], begin=0),
    "exponential": lambda: dy_lr.ExponentialDecay(0.05, 1, 0.5),
}
CLIPS = {
    "none": None,
    "value": lambda: fluid.ClipGradByValue(0.05),
    "norm": lambda: fluid.ClipGradByNorm(0.1),
    "global_norm": lambda: fluid.ClipGradByGlobalNorm(0.1),
}
REGS = {"none": None, "l2": lambda: fluid.L2Decay(0.05), "l1": lambda: fluid.L1Decay(0.02)}


@st.composite
def optimizer_cases(draw):
    kind = draw(st.sampled_from(KINDS))
    groups = []
    for _ in range(draw(st.integers(1, 2))):
        group = {
            "shapes": draw(shapes)[:3],
            "dtype": draw(st.sampled_from([torch.float32, torch.float64])),
            "param_reg": draw(st.sampled_from(list(REGS))),
        }
        if kind == "momentum":
            group["momentum"] = draw(st.sampled_from([0.0, 0.5, 0.9]))
            group["use_nesterov"] = draw(st.booleans())
        elif kind == "adagrad":
            group["epsilon"] = draw(st.sampled_from([1e-6, 1e-3]))
            group["initial_accumulator_value"] = draw(st.sampled_from([0.0, 0.1]))
            group["lr_decay"] = draw(st.sampled_from([0.0, 0.0, 0.5]))  # torch's, with a step count per member
        elif kind == "sgd":  # torch.optim.SGD's momentum options
            group["momentum"] = draw(st.sampled_from([0.0, 0.5, 0.9]))
            group["dampening"] = draw(st.sampled_from([0.0, 0.0, 0.25])) if group["momentum"] else 0.0
            group["nesterov"] = group["momentum"] > 0 and not group["dampening"] and draw(st.booleans())
        elif kind in ("adam", "adamw", "adamax"):
            group["beta1"], group["beta2"] = draw(st.sampled_from([(0.9, 0.999), (0.5, 0.9)]))
            group["epsilon"] = draw(st.sampled_from([1e-8, 1e-3]))
        elif kind == "adadelta":
            group["rho"] = draw(st.sampled_from([0.9, 0.95, 1.0]))
            group["epsilon"] = draw(st.sampled_from([1e-6, 1e-3]))
        if kind == "adamw":
            group["weight_decay"] = draw(st.sampled_from([0.0, 0.01, 0.3]))
        groups.append(group)
    return {
        "kind": kind,
        "amsgrad": kind in ("adam", "adamw") and draw(st.booleans()),
        "groups": groups,
        "lr": draw(st.sampled_from(list(SCHEDULES))),
        "clip": draw(st.sampled_from(list(CLIPS))),
        "reg": draw(st.sampled_from(list(REGS))),
        "seed": draw(st.integers(0, 2**31 - 1)),
        "missing": draw(st.lists(st.integers(0, 5), max_size=2)),
        "steps": draw(st.integers(1, 4)),
    }


OPTIMIZERS = {
    "momentum": fluid.optimizer.Momentum,
    "adagrad": fluid.optimizer.Adagrad,
    "sgd": fluid.optimizer.SGD,
    "adam": fluid.optimizer.Adam,
    "adamw": fluid.optimizer.AdamW,
    "adamax": fluid.optimizer.Adamax,
    "adadelta": fluid.optimizer.Adadelta,
}


def _adamw(lr, *, parameters, grad_clip, regularization, fused, amsgrad):
    """AdamW (no optimizer-wide regularizer: its decay is the groups' weight_decay) with
    the first parameter of each group left undecayed and the second at half the lr."""
    del regularization
    return fluid.optimizer.AdamW(
        lr,
        parameters=parameters,
        grad_clip=grad_clip,
        fused=fused,
        amsgrad=amsgrad,
        apply_decay_param_fun=lambda name: not name.endswith("_p0"),
        lr_ratio=lambda p: 0.5 if p.name.endswith("_p1") else 1.0,
    )


def _build(case, fused):
    gen = torch.Generator().manual_seed(case["seed"])
    groups, params = [], []
    for gi, g in enumerate(case["groups"]):
        members = []
        for j, s in enumerate(g["shapes"]):
            p = torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64).to(g["dtype"]))
            if REGS[g["param_reg"]] is not None and j == 0:
                p.regularizer = REGS[g["param_reg"]]()
            members.append((f"g{gi}_p{j}", p))
            params.append(p)
        options = {k: v for k, v in g.items() if k not in ("shapes", "dtype", "param_reg")}
        groups.append({"params": members, **options})
    lr = 0.05 if SCHEDULES[case["lr"]] is None else SCHEDULES[case["lr"]]()
    clip = None if CLIPS[case["clip"]] is None else CLIPS[case["clip"]]()
    reg = None if REGS[case["reg"]] is None else REGS[case["reg"]]()
    make = _adamw if case["kind"] == "adamw" else OPTIMIZERS[case["kind"]]
    extra = {"amsgrad": case["amsgrad"]} if case["kind"] in ("adam", "adamw") else {}
    opt = make(lr, parameters=groups, grad_clip=clip, regularization=reg, fused=fused, **extra)
    return params, opt


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=optimizer_cases())
def test_fused_optimizer_equals_the_reference_optimizer_bit_for_bit(case):
    ps, fused = _build(case, None)
    qs, ref = _build(case, False)
    gen = torch.Generator().manual_seed(case["seed"] + 1)
    for step in range(case["steps"]):
        for i, (p, q) in enumerate(zip(ps, qs, strict=True)):
            g = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
            missing = i in case["missing"] and step % 2 == 1
            p.grad, q.grad = (None, None) if missing else (g.clone(), g.clone())
        fused.step()
        ref.step()
        for i, (p, q) in enumerate(zip(ps, qs, strict=True)):
            assert same_bits(p, q), f"step {step}: parameter {i} differs"
        sa, sb = fused.state_dict(), ref.state_dict()
        assert sorted(k for k in sa if isinstance(sa[k], torch.Tensor)) == sorted(
            k for k in sb if isinstance(sb[k], torch.Tensor)
        )
        for k, v in sb.items():
            if isinstance(v, torch.Tensor):
                assert same_bits(sa[k], v), f"step {step}: {k} differs"
    # every parameter was in a flat group (the fused kernel updated it), none on the reference one
    flat = {id(p) for fg in fused._fused.flat.values() for p in fg.params}
    assert flat == {id(p) for p in ps}
    assert not ref._fused


def test_the_fused_state_records_are_views_of_the_flat_buffers():
    ps = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))]
    opt = fluid.optimizer.Adagrad(0.1, parameters=ps, initial_accumulator_value=0.25)
    for p in ps:
        p.grad = torch.ones_like(p)
    opt.step()
    (fg,) = opt._fused.flat.values()
    for i, p in enumerate(fg.params):
        assert opt.state[p]["moment"] is fg.state(i)["moment"]
        torch.testing.assert_close(opt.state[p]["moment"], torch.full_like(p, 1.25), rtol=0, atol=0)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps, **kw: fluid.optimizer.Momentum(0.1, momentum=0.9, parameters=ps, **kw),
        lambda ps, **kw: fluid.optimizer.Adagrad(0.1, parameters=ps, **kw),
        lambda ps, **kw: fluid.optimizer.SGD(0.1, parameters=ps, **kw),
        lambda ps, **kw: fluid.optimizer.Adam(0.1, parameters=ps, **kw),
    ],
    ids=["Momentum", "Adagrad", "SGD", "Adam"],
)
def test_fused_true_refuses_what_the_kernel_cannot_take_and_none_falls_back(make):
    p = torch.nn.Parameter(torch.randn(10, 4))
    sparse = torch.sparse_coo_tensor(torch.tensor([[1, 3]]), torch.randn(2, 4), (10, 4))
    before = p.detach().clone()
    opt = make([("emb", p)], fused=True)
    p.grad = sparse
    with pytest.raises(ValueError, match="fused=True: parameter 'emb' .* cannot take the fused kernel; allowed: dense"):
        opt.step()
    assert torch.equal(p.detach(), before)  # refused before anything changed
    half = torch.nn.Parameter(torch.randn(3).half())
    opt = make([("h", half)], fused=True)
    half.grad = torch.ones_like(half)
    with pytest.raises(ValueError, match="fused=True: parameter 'h' \\(torch.float16 on cpu"):
        opt.step()
    auto = make([("emb", p)])
    auto.step()  # fused=None: the sparse gradient takes the reference kernel
    assert not torch.equal(p.detach(), before)
    with pytest.raises((TypeError, ValueError), match="fused"):
        make([p], fused="yes")


def test_a_compiled_step_runs_the_fused_path_and_gives_its_bits():
    torch._dynamo.reset()
    results = []
    for compiled in (False, True):
        a = torch.nn.Parameter(torch.linspace(-1, 1, 12))
        opt = fluid.optimizer.Momentum(0.05, momentum=0.9, use_nesterov=True, parameters=[a])
        step = torch.compile(opt.step, backend="eager") if compiled else opt.step
        for i in range(3):
            a.grad = torch.sin(torch.arange(12.0) + i)
            step()
        assert opt._fused.flat  # the fused path ran, outside the compiled graph
        results.append(a.detach().clone())
    assert torch.equal(*results)


def test_adam_with_tensor_betas_takes_the_reference_kernel_without_flat_groups():
    """Hyper-parameters read from tensors at each update are a new mapping every step:
    those groups take the reference kernel (with the values read), the others the fused one,
    and no flat buffers pile up."""
    beta1 = torch.tensor([0.9])
    ps = [torch.nn.Parameter(torch.linspace(-1, 1, 6)), torch.nn.Parameter(torch.linspace(1, 2, 4))]
    qs = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    groups = lambda xs: [{"params": [("a", xs[0])], "beta1": beta1}, {"params": [("b", xs[1])]}]  # noqa: E731
    fused = fluid.optimizer.Adam(0.05, parameters=groups(ps))
    ref = fluid.optimizer.Adam(0.05, parameters=groups(qs), fused=False)
    for step in range(4):
        beta1.fill_(0.9 - 0.1 * step)
        for p, q in zip(ps, qs, strict=True):
            p.grad = torch.cos(torch.arange(float(p.numel())) + step)
            q.grad = p.grad.clone()
        fused.step()
        ref.step()
        for p, q in zip(ps, qs, strict=True):
            assert same_bits(p, q), f"step {step}"
    assert [fg.params for fg in fused._fused.flat.values()] == [[ps[1]]]  # only the float group's


@pytest.mark.parametrize("name", ["Adam", "Adamax"])
def test_a_power_advances_only_for_parameters_with_a_gradient_as_on_the_reference_kernel(name):
    """The fused kernel's powers (one flat buffer) move only where a parameter had a gradient
    this step, bit for bit as the reference kernel's, every step and every other step alike."""
    runs = []
    for fused in (None, False):
        gen = torch.Generator().manual_seed(0)
        ps = [torch.nn.Parameter(torch.randn(3, generator=gen)) for _ in range(3)]
        opt = getattr(O, name)(ps, lr=0.1, fused=fused)
        for k in range(5):
            for i, p in enumerate(ps):
                p.grad = None if (i == 1 and k % 2) else torch.randn(3, generator=gen)
            opt.step()
        runs.append([t.detach().clone() for p in ps for t in (p, opt.state[p]["beta1_pow_acc"])])
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))
