"""Mixed and low precision: master weights, bfloat16 state, non-finite policies, AMP.

Documented bound (small-model test below): a 16-32-1 tanh MLP trained 150 steps of
centered RMSProp (momentum 0.9, epsilon 1e-4, global-norm clip) tracks the float32 run:
  * float16 parameters + multi_precision (with or without GradScaler): final loss,
    judged in float32, within 3% of the float32 run's, every parameter within 0.005;
  * bfloat16 parameters + multi_precision, float32 parameters with bfloat16 state, or
    autocast(bfloat16) + GradScaler: final loss within 8%, every parameter within 0.02.
Measured on CPU: <= 0.8% / 0.001 (float16) and <= 3.7% / 0.0083 (bfloat16); bfloat16
parameters WITHOUT master weights drift by 0.037, outside the bound.
"""

import re

import numpy as np
import pytest
import torch

from torchfluid.clip import ClipGradByGlobalNorm
from torchfluid.kernels import rmsprop_
from torchfluid.optimizer import RMSProp
from torchfluid.dygraph.learning_rate_scheduler import PiecewiseDecay
from torchfluid.optimizer.precision import optimizer_memory_bytes, stochastic_round_

LOW = [torch.float16, torch.bfloat16]


def snapshot(opt, params):
    """Bit-exact copy of params, state, masters and the schedule's position."""
    state = {k: v.clone() for k, v in opt.state_dict().items() if isinstance(v, torch.Tensor)}
    masters = {k: v.clone() for k, v in opt.state_dict().get("master_weights", {}).items()}
    return [p.detach().clone() for p in params], state, masters, opt.get_lr()


def assert_bit_identical(a, b):
    (pa, sa, ma, la), (pb, sb, mb, lb) = a, b
    assert all(torch.equal(x.view(torch.uint8), y.view(torch.uint8)) for x, y in zip(pa, pb, strict=False))
    assert sa.keys() == sb.keys() and ma.keys() == mb.keys()
    for k in sa:
        assert torch.equal(sa[k].view(torch.uint8), sb[k].view(torch.uint8)), k
    for k in ma:
        assert torch.equal(ma[k].view(torch.uint8), mb[k].view(torch.uint8)), k
    assert la == lb


# ------------------------------------------------------------------ master weights
@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("centered,momentum", [(False, 0.0), (True, 0.9)])
def test_master_weights_follow_the_float32_trajectory_exactly(dtype, centered, momentum):
    """Low-precision grads and params are exact in float32, so the master must take
    exactly the float32 optimizer's steps; the parameter is the master rounded."""
    gen = torch.Generator().manual_seed(0)
    p0 = torch.randn(5, 4, generator=gen).to(dtype)
    low = torch.nn.Parameter(p0.clone())
    ref = torch.nn.Parameter(p0.float())
    kw = {"learning_rate": 0.01, "centered": centered, "momentum": momentum}
    opt = RMSProp(parameters=[("w", low)], multi_precision=True, **kw)
    opt32 = RMSProp(parameters=[("w", ref)], **kw)  # fused; the master path runs the reference kernel
    for _ in range(6):
        g = torch.randn(5, 4, generator=gen).to(dtype)
        low.grad, ref.grad = g, g.float()
        opt.step()
        opt32.step()
        sd, sd32 = opt.state_dict(), opt32.state_dict()
        master = sd["master_weights"]["w"]
        assert master.dtype == torch.float32 and sd["w_mean_square_0"].dtype == torch.float32
        assert torch.equal(master, ref)
        assert torch.equal(low, master.to(dtype))
        for key in sd32:
            if key != "param_groups":
                assert torch.equal(sd[key], sd32[key]), key


def test_multi_precision_leaves_float32_params_alone():
    a, h = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2, dtype=torch.float16))
    opt = RMSProp(learning_rate=0.1, parameters=[("a", a), ("h", h)], multi_precision=True)
    a.grad, h.grad = torch.ones(3), torch.ones(2, dtype=torch.float16)
    opt.step()
    sd = opt.state_dict()
    assert list(sd["master_weights"]) == ["h"]
    assert sd["a_mean_square_0"].dtype == torch.float32 and sd["h_mean_square_0"].dtype == torch.float32


def test_without_multi_precision_state_follows_the_param_dtype_like_paddle():
    h = torch.nn.Parameter(torch.ones(2, dtype=torch.bfloat16))
    opt = RMSProp(learning_rate=0.1, parameters=[("h", h)])
    h.grad = torch.ones(2, dtype=torch.bfloat16)
    opt.step()
    sd = opt.state_dict()
    assert sd["h_mean_square_0"].dtype == torch.bfloat16 and "master_weights" not in sd


def _fp16_run(steps, opt_from=None, **kw):
    gen = torch.Generator().manual_seed(4)
    p = torch.nn.Parameter(torch.randn(6, 3, generator=gen).half())
    opt = RMSProp(learning_rate=0.01, momentum=0.9, centered=True, parameters=[("w", p)], multi_precision=True, **kw)
    grads = [torch.randn(6, 3, generator=gen).half() for _ in range(steps)]
    return p, opt, grads


def test_master_weights_state_dict_round_trip_resumes_bit_exactly():
    p, opt, grads = _fp16_run(6)
    for g in grads:
        p.grad = g
        opt.step()
    q, first, _ = _fp16_run(6)
    for g in grads[:3]:
        q.grad = g
        first.step()
    saved = first.state_dict()
    # the master holds what the fp16 param cannot: it is not the param widened
    assert not torch.equal(saved["master_weights"]["w"], q.detach().float())
    r, resumed, _ = _fp16_run(6)
    with torch.no_grad():
        r.copy_(q)
    resumed.set_state_dict(saved)
    for g in grads[3:]:
        r.grad = g
        resumed.step()
    assert torch.equal(p, r)
    assert torch.equal(opt.state_dict()["master_weights"]["w"], resumed.state_dict()["master_weights"]["w"])


BAD_MASTER = [
    (
        lambda sd: sd["master_weights"].update(w=sd["master_weights"]["w"].half()),
        "mismatched (1): master_weights['w']: expected shape [6, 3] float32, got shape [6, 3] float16",
    ),
    (
        lambda sd: sd["master_weights"].update(w=torch.zeros(3, 6)),
        "master_weights['w']: expected shape [6, 3] float32, got shape [3, 6] float32",
    ),
    (lambda sd: sd["master_weights"].pop("w"), "missing (1): master_weights['w']"),
    (
        lambda sd: sd["master_weights"].update(v=torch.zeros(1)),
        "unexpected (1): master_weights['v'] (no such parameter)",
    ),
    (lambda sd: sd.update(master_weights=[1, 2]), "master_weights: expected a dict of name -> tensor, got list"),
]


@pytest.mark.parametrize("corrupt,message", BAD_MASTER, ids=[m[:40] for _, m in BAD_MASTER])
def test_bad_master_weights_load_nothing(corrupt, message):
    p, opt, grads = _fp16_run(2)
    for g in grads:
        p.grad = g
        opt.step()
    saved = opt.state_dict()
    saved = {k: (dict(v) if k == "master_weights" else v) for k, v in saved.items()}
    corrupt(saved)
    q, other, _ = _fp16_run(1)
    q.grad = torch.ones(6, 3, dtype=torch.float16)
    other.step()
    before = snapshot(other, [q])
    with pytest.raises(ValueError, match=re.escape(message)):
        other.set_state_dict(saved)
    assert_bit_identical(before, snapshot(other, [q]))


def test_master_weights_for_a_float32_param_are_unexpected_and_key_map_renames():
    h = torch.nn.Parameter(torch.ones(2, dtype=torch.float16))
    a = torch.nn.Parameter(torch.ones(2))
    opt = RMSProp(learning_rate=0.1, parameters=[("h", h), ("a", a)], multi_precision=True)
    with pytest.raises(ValueError, match=re.escape("master_weights['a'] (the parameter is float32)")):
        opt.set_state_dict({"master_weights": {"a": torch.ones(2)}})
    report = opt.set_state_dict(
        {"old_h_mean_square_0": torch.zeros(2), "master_weights": {"old_h": torch.full((2,), 3.0)}},
        key_map={"old_h": "h"},
    )
    assert report.ok
    h.grad = torch.zeros(2, dtype=torch.float16)
    opt.step()
    assert torch.equal(h, torch.full((2,), 3.0, dtype=torch.float16))  # rewritten from the loaded master


# -------------------------------------------------------------------- small model
X = torch.randn(256, 16, generator=torch.Generator().manual_seed(0))
Y = torch.tanh(X @ torch.randn(16, 1, generator=torch.Generator().manual_seed(1)))


def train(dtype, steps=150, scaler=None, autocast=None, **kw):
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1)).to(dtype)
    opt = RMSProp(
        learning_rate=0.003,
        epsilon=1e-4,
        momentum=0.9,
        centered=True,
        parameters=list(model.named_parameters()),
        grad_clip=ClipGradByGlobalNorm(5.0),
        **kw,
    )
    for i in range(steps):
        rows = slice((i * 32) % 256, (i * 32) % 256 + 32)
        with torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            loss = (model(X[rows].to(dtype)).float() - Y[rows]).pow(2).mean()
        opt.clear_grad(set_to_zero=False)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    with torch.no_grad():  # the trained weights judged in float32
        full = (model.float()(X) - Y).pow(2).mean().item()
    return full, [p.detach().float() for p in model.parameters()], opt


@pytest.fixture(scope="module")
def fp32_run():
    return train(torch.float32)


def _distance(params, ref):
    return max((a - b).abs().max().item() for a, b in zip(params, ref, strict=False))


LOW_RUNS = [
    ("fp16 multi_precision", {"dtype": torch.float16, "multi_precision": True}, (0.03, 0.005)),
    (
        "fp16 multi_precision GradScaler",
        {"dtype": torch.float16, "multi_precision": True, "scaler": True},
        (0.03, 0.005),
    ),
    ("bf16 multi_precision", {"dtype": torch.bfloat16, "multi_precision": True}, (0.08, 0.02)),
    ("fp32 bf16 state", {"dtype": torch.float32, "state_dtype": torch.bfloat16}, (0.08, 0.02)),
    (
        "fp32 autocast(bf16) GradScaler",
        {"dtype": torch.float32, "autocast": torch.bfloat16, "scaler": True},
        (0.08, 0.02),
    ),
]


@pytest.mark.parametrize("label,kw,bound", LOW_RUNS, ids=[r[0] for r in LOW_RUNS])
def test_low_precision_training_tracks_float32(fp32_run, label, kw, bound):
    kw = dict(kw)
    if kw.get("scaler"):
        kw["scaler"] = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    loss_bound, param_bound = bound
    loss32, params32, _ = fp32_run
    loss, params, opt = train(**kw)
    assert abs(loss - loss32) <= loss_bound * loss32, (label, loss, loss32)
    assert _distance(params, params32) <= param_bound, label
    assert opt.skipped_steps == 0


def test_bf16_params_without_master_weights_fall_outside_the_bound(fp32_run):
    """What the master weights buy: the same run without them drifts much further."""
    _, params32, _ = fp32_run
    _, params, _ = train(torch.bfloat16)
    assert _distance(params, params32) > 0.02


# ------------------------------------------------------------------ GradScaler
def _scaled_pair(init_scale):
    gen = torch.Generator().manual_seed(7)
    w0 = torch.randn(4, 3, generator=gen)
    x = torch.randn(8, 4, generator=gen)
    a, b = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    kw = {"learning_rate": 0.01, "momentum": 0.9, "grad_clip": ClipGradByGlobalNorm(0.1)}
    return a, b, x, RMSProp(parameters=[("w", a)], **kw), RMSProp(parameters=[("w", b)], **kw)


def test_grad_scaler_unscales_before_clipping_bit_exactly():
    """Power-of-two loss scale: the scaled run is the unscaled run, bit for bit, and the
    tight global-norm clip proves the unscale came first."""
    a, b, x, opt_a, opt_b = _scaled_pair(1024.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=1000)
    for _ in range(4):
        opt_a.clear_grad(set_to_zero=False)
        opt_b.clear_grad(set_to_zero=False)
        scaler.scale((x @ a).pow(2).sum()).backward()
        scaler.step(opt_a)
        scaler.update()
        (x @ b).pow(2).sum().backward()
        opt_b.step()
    assert torch.equal(a, b)
    assert opt_a.skipped_steps == 0 and not hasattr(opt_a, "grad_scale")


def _step_calls(opt):
    """Wrap ``opt.step`` on the instance, as accelerate's ``AcceleratedOptimizer`` does to tell
    a skipped step (a scaler step that never called step() was skipped)."""
    calls = []
    original = opt.step

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    opt.step = counted
    return calls


def test_grad_scaler_overflow_skips_the_step_and_changes_nothing():
    """float32 gradients: GradScaler unscales them and, on overflow, does not call step(), as
    for torch.optim's optimizers (skipped_steps counts the optimizer's own skips only)."""
    a, _, x, opt, _ = _scaled_pair(1024.0)
    calls = _step_calls(opt)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    scaler.scale((x @ a).pow(2).sum()).backward()
    assert not opt._step_supports_amp_scaling
    scaler.step(opt)
    scaler.update()
    assert len(calls) == 1
    before = snapshot(opt, [a])
    opt.clear_grad(set_to_zero=False)
    scaler.scale((x @ a).pow(2).sum()).backward()
    a.grad[0, 0] = float("inf")
    scaler.step(opt)
    scaler.update()
    assert_bit_identical(before, snapshot(opt, [a]))
    assert len(calls) == 1 and opt.skipped_steps == 0 and scaler.get_scale() == 512.0


@pytest.mark.parametrize(
    "dtype, multi_precision, handles",
    [
        (torch.float32, False, False),
        (torch.float64, False, False),
        (torch.float16, True, True),
        (torch.bfloat16, True, True),
        (torch.bfloat16, False, True),
    ],
)
def test_grad_scaler_step_is_called_only_where_the_optimizer_unscales(dtype, multi_precision, handles):
    """``_step_supports_amp_scaling`` holds while a gradient is float16/bfloat16: GradScaler
    then calls step() with its inf flag, and an overflowed step is skipped inside (counted);
    otherwise GradScaler skips it without calling step(). Either way nothing changes."""
    w = torch.nn.Parameter(torch.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=dtype))
    opt = RMSProp(learning_rate=0.01, momentum=0.9, parameters=[("w", w)], multi_precision=multi_precision)
    calls = _step_calls(opt)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    scaler.scale(torch.ones(()))  # the scale exists from the first scale() on
    assert not opt._step_supports_amp_scaling  # no gradient yet
    w.grad = torch.full_like(w, 2.0**8)
    assert opt._step_supports_amp_scaling is handles
    scaler.step(opt)
    scaler.update()
    assert len(calls) == 1 and opt.skipped_steps == 0
    before = snapshot(opt, [w])
    w.grad = torch.tensor([[1.0, float("inf")], [0.0, 1.0]], dtype=dtype)
    scaler.step(opt)
    scaler.update()
    assert_bit_identical(before, snapshot(opt, [w]))
    assert (len(calls), opt.skipped_steps) == ((2, 1) if handles else (1, 0))
    assert scaler.get_scale() == 2.0**7


def test_explicit_unscale_then_step_works_for_float32():
    a, b, x, opt_a, opt_b = _scaled_pair(8.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=8.0)
    scaler.scale((x @ a).pow(2).sum()).backward()
    scaler.unscale_(opt_a)  # grads unscaled in place by torch; the optimizer must not unscale again
    scaler.step(opt_a)
    (x @ b).pow(2).sum().backward()
    opt_b.step()
    assert torch.equal(a, b)


# ------------------------------------------------------------ non-finite policies
def _nan_setup(policy, schedule=False):
    a = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    b = torch.nn.Parameter(torch.tensor([[0.5, -0.5]]))
    lr = PiecewiseDecay([2], [0.1, 0.01], begin=0) if schedule else 0.1  # advances per update
    opt = RMSProp(learning_rate=lr, momentum=0.9, centered=True, parameters=[("a", a), ("b", b)], nonfinite=policy)
    a.grad, b.grad = torch.tensor([0.1, 0.2]), torch.tensor([[0.3, 0.4]])
    opt.step()
    return a, b, opt


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_skip_leaves_params_and_state_bit_identical(bad):
    a, b, opt = _nan_setup("skip")
    before = snapshot(opt, [a, b])
    a.grad = torch.tensor([0.1, bad])
    b.grad = torch.tensor([[0.3, 0.4]])
    opt.step()
    assert_bit_identical(before, snapshot(opt, [a, b]))
    assert opt.skipped_steps == 1
    a.grad = torch.tensor([0.1, 0.2])
    opt.step()  # a finite step afterwards proceeds
    assert opt.skipped_steps == 1 and not torch.equal(a, before[0][0])


def test_skip_with_a_sparse_nan_gradient():
    a, b, opt = _nan_setup("skip")
    emb = torch.nn.Embedding(5, 2, sparse=True)
    opt.add_param_group({"params": [("emb", emb.weight)]})
    emb(torch.tensor([1, 3])).sum().backward()
    opt.step()
    before = snapshot(opt, [a, b, emb.weight])
    emb.weight.grad = torch.sparse_coo_tensor([[1]], [[float("nan"), 0.0]], (5, 2), check_invariants=True)
    a.grad = torch.tensor([0.1, 0.2])
    opt.step()
    assert_bit_identical(before, snapshot(opt, [a, b, emb.weight]))


def test_skip_does_not_advance_a_fluid_decay():
    a, b, opt = _nan_setup("skip", schedule=True)
    lr_before = opt._schedule.state_dict()
    a.grad = torch.tensor([float("nan"), 0.0])
    opt.step()
    assert opt._schedule.state_dict() == lr_before
    a.grad = torch.tensor([0.1, 0.0])
    opt.step()  # a real update does advance it: the check above can fail
    assert opt._schedule.state_dict() != lr_before


def test_raise_names_the_parameters_and_changes_nothing():
    a, b, opt = _nan_setup("raise")
    before = snapshot(opt, [a, b])
    a.grad = torch.tensor([float("nan"), float("inf")])
    b.grad = torch.tensor([[float("inf"), 0.0]])
    with pytest.raises(
        FloatingPointError,
        match=re.escape(
            "non-finite gradient (NaN or inf) for 'a' (2 of 2 elements), 'b' (1 of 2 elements); nothing was changed"
        ),
    ):
        opt.step()
    assert_bit_identical(before, snapshot(opt, [a, b]))


def test_propagate_is_the_default_and_matches_paddle():
    a = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = RMSProp(learning_rate=0.1, parameters=[("a", a)])
    assert opt.nonfinite == "propagate"
    a.grad = torch.tensor([float("nan"), 1.0])
    opt.step()
    assert torch.isnan(a[0]) and torch.isfinite(a[1]) and opt.skipped_steps == 0


# -------------------------------------------------- centered, near-constant gradients
CENTERED_CONFIGS = [
    (torch.float32, {}),
    (torch.float16, {"multi_precision": True}),
    (torch.bfloat16, {"multi_precision": True}),
    (torch.float32, {"state_dtype": torch.bfloat16}),
]


@pytest.mark.parametrize("dtype,kw", CENTERED_CONFIGS, ids=[f"{d}-{k}" for d, k in CENTERED_CONFIGS])
def test_centered_near_constant_gradients_never_nan(dtype, kw):
    """mxnet#6235: with a (near-)constant gradient ``ms - mg^2`` is 0 up to rounding and
    goes negative; unclamped, ``sqrt(ms - mg^2 + eps)`` is then NaN."""
    g0 = torch.tensor([1.0, 3.0, 0.1, 123.456, 1e-3, 7.0])
    p = torch.nn.Parameter(torch.zeros(6, dtype=dtype))
    # lr small enough for float16: with the variance clamped to 0 a step is lr * g / sqrt(eps)
    opt = RMSProp(learning_rate=1e-6, rho=0.9, epsilon=1e-10, centered=True, momentum=0.9, parameters=[("w", p)], **kw)
    gen = torch.Generator().manual_seed(0)
    unclamped_nan = False
    for t in range(300):
        noise = 0.0 if t % 2 else 1e-7 * torch.randn(6, generator=gen)
        p.grad = (g0 * (1 + noise)).to(dtype)
        opt.step()
        sd = opt.state_dict()
        ms, mg = sd["w_mean_square_0"].float(), sd["w_mean_grad_0"].float()
        unclamped_nan |= bool(torch.isnan(torch.sqrt(ms - mg * mg + 1e-10)).any())
        assert torch.isfinite(p).all() and torch.isfinite(ms).all() and torch.isfinite(mg).all(), t
    if dtype == torch.float32:
        assert unclamped_nan  # the hazard really occurred, and the clamp kept the update finite


# ------------------------------------------------------------ bfloat16 state
def test_stochastic_rounding_is_unbiased_and_within_one_ulp():
    x = torch.full((200_000,), 1.0 + 2.0**-9)  # a quarter of the way from 1 to the next bf16
    out = torch.empty_like(x, dtype=torch.bfloat16)
    stochastic_round_(out, x, torch.Generator().manual_seed(0))
    values = set(out.float().unique().tolist())
    assert values == {1.0, 1.0 + 2.0**-7}
    up = (out.float() > 1.0).double().mean().item()
    assert abs(up - 0.25) < 4 * np.sqrt(0.25 * 0.75 / x.numel())
    y = torch.tensor([0.0, -0.0, 1.5, -3.0, float("inf"), -float("inf"), float("nan"), -(2.0**-7) - 2.0**-20])
    out = torch.empty_like(y, dtype=torch.bfloat16)
    stochastic_round_(out, y, torch.Generator().manual_seed(1))
    assert out.float()[:6].tolist() == [0.0, -0.0, 1.5, -3.0, float("inf"), -float("inf")]
    assert torch.isnan(out[6]) and out.float()[7].item() in (-(2.0**-7), -(2.0**-7) - 2.0**-14)
    with pytest.raises(TypeError, match="stochastic_round_ stores float32 into bfloat16"):
        stochastic_round_(torch.empty(2, dtype=torch.float16), torch.zeros(2))


def test_bf16_state_with_stochastic_rounding_reaches_the_average_nearest_rounding_stalls():
    steps, rho = 1500, 0.99
    p = torch.nn.Parameter(torch.zeros(2000))
    opt = RMSProp(learning_rate=1e-6, rho=rho, parameters=[("w", p)], state_dtype=torch.bfloat16)
    ms_rn = torch.zeros(2000, dtype=torch.bfloat16)
    q = torch.zeros(2000)
    for _ in range(steps):
        p.grad = torch.ones(2000)
        opt.step()
        rmsprop_(q, torch.ones(2000), ms_rn, lr=1e-6, rho=rho, epsilon=1e-6)  # bf16 state, nearest
    ms_sr = opt.state_dict()["w_mean_square_0"]
    assert ms_sr.dtype == torch.bfloat16
    assert abs(ms_sr.float().mean().item() - 1.0) < 0.01
    assert ms_rn.float().max().item() < 0.85  # stalled 20-39% short, as documented


def test_bf16_state_halves_state_memory_centered_included():
    def state_bytes(**kw):
        p = torch.nn.Parameter(torch.zeros(1000))
        opt = RMSProp(learning_rate=0.1, centered=True, momentum=0.9, parameters=[p], **kw)
        p.grad = torch.ones(1000)
        opt.step()
        return optimizer_memory_bytes(opt)

    assert state_bytes() == {"state": 12000, "master_weights": 0}
    assert state_bytes(state_dtype=torch.bfloat16) == {"state": 6000, "master_weights": 0}


# ---------------------------------------------------------------- epsilon checks
BAD_PRECISION = [
    (
        {"dtype": torch.float16, "epsilon": 1e-8},
        ValueError,
        "epsilon=1e-08 is not representable in the float16 optimizer state (float16 parameters without "
        "multi_precision): its smallest normal number is 6.1e-05",
    ),
    ({"dtype": torch.float16, "epsilon": 1e-6}, ValueError, "Use multi_precision=True (float32 state)"),
    (
        {"state_dtype": torch.float16},
        ValueError,
        "state_dtype must be one of None, torch.float32, torch.bfloat16, got torch.float16",
    ),
    ({"multi_precision": 1}, ValueError, "multi_precision must be True or False, got 1"),
    ({"nonfinite": "ignore"}, ValueError, "nonfinite must be one of 'propagate', 'skip', 'raise', got 'ignore'"),
]


@pytest.mark.parametrize("kw,exc,message", BAD_PRECISION, ids=[m[:40] for _, _, m in BAD_PRECISION])
def test_bad_precision_arguments(kw, exc, message):
    kw = dict(kw)
    p = torch.nn.Parameter(torch.zeros(2, dtype=kw.pop("dtype", torch.float32)))
    with pytest.raises(exc, match=re.escape(message)):
        RMSProp(learning_rate=0.1, parameters=[p], **kw)


def test_epsilon_fine_where_the_state_is_wide_enough():
    for dtype, kw in [
        (torch.float16, {"multi_precision": True}),
        (torch.float16, {"state_dtype": torch.float32}),
        (torch.bfloat16, {}),
        (torch.float32, {"state_dtype": torch.bfloat16}),
    ]:
        p = torch.nn.Parameter(torch.zeros(2, dtype=dtype))
        RMSProp(learning_rate=0.1, epsilon=1e-8, parameters=[p], **kw)


def test_epsilon_checked_for_groups_and_loaded_hyper_parameters():
    a = torch.nn.Parameter(torch.zeros(2))
    h = torch.nn.Parameter(torch.zeros(2, dtype=torch.float16))
    opt = RMSProp(learning_rate=0.1, epsilon=1e-8, parameters=[("a", a)])
    with pytest.raises(ValueError, match=re.escape("epsilon=1e-08 is not representable in the float16")):
        opt.add_param_group({"params": [("h", h)]})
    opt.add_param_group({"params": [("h", h)], "epsilon": 1e-4})
    sd = opt.torch_state_dict()
    sd["param_groups"][1].update(epsilon=1e-7, eps=1e-7)  # ours and torch's key of it
    with pytest.raises(ValueError, match=re.escape("param_groups[1]: epsilon=1e-07 is not representable")):
        opt.set_state_dict(sd)
    assert opt.param_groups[1]["epsilon"] == 1e-4


def test_kernel_computes_low_precision_state_in_float32():
    """fp16 state: widened, updated in fp32, rounded once (never an fp16 denominator)."""
    gen = torch.Generator().manual_seed(3)
    g = torch.randn(50, generator=gen) * 1e-3
    ms16 = (torch.rand(50, generator=gen) * 1e-6).half()
    p16 = torch.randn(50, generator=gen).half()
    p32, ms32 = p16.float(), ms16.float()
    rmsprop_(p16, g.half(), ms16, lr=0.01, rho=0.9, epsilon=1e-4)
    rmsprop_(p32, g.half().float(), ms32, lr=0.01, rho=0.9, epsilon=1e-4)
    assert torch.equal(ms16, ms32.half()) and torch.equal(p16, p32.half())


def test_fused_eligibility_marks_what_only_the_reference_path_handles():
    from torchfluid.optimizer.precision import Precision
    from torchfluid.optimizer.rmsprop import RMSPropRule

    a, h = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2, dtype=torch.float16))
    group = RMSProp(learning_rate=0.1, parameters=[a], epsilon=1e-4).param_groups[0]
    plain = Precision(multi_precision=False, state_dtype=None, nonfinite="propagate")
    rule = RMSPropRule()
    assert rule.fused_eligible(a, group, plain) and not rule.fused_eligible(h, group, plain)
    for key, value in [("decoupled_weight_decay", 0.1), ("bias_correction", True)]:
        assert not rule.fused_eligible(a, {**group, key: value}, plain)
    bf16 = Precision(multi_precision=False, state_dtype=torch.bfloat16, nonfinite="propagate")
    assert not rule.fused_eligible(a, group, bf16)
    master = Precision(multi_precision=True, state_dtype=None, nonfinite="propagate")
    assert rule.fused_eligible(a, group, master) and not rule.fused_eligible(h, group, master)


def test_master_weights_in_torch_style_state_dict_and_to_keeps_them_float32():
    p, opt, grads = _fp16_run(2)
    for g in grads:
        p.grad = g
        opt.step()
    tsd = opt.torch_state_dict()
    assert set(tsd) == {"state", "param_groups", "master_weights"}
    q, other, _ = _fp16_run(1)
    other.load_state_dict(tsd)
    assert torch.equal(other.state_dict()["master_weights"]["w"], opt.state_dict()["master_weights"]["w"])
    other.to(dtype=torch.float64)
    assert other.state_dict()["master_weights"]["w"].dtype == torch.float32
