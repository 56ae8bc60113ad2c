"""RMSProp.preset(name, ...) reproduces each library's real runs (tests/reference), and
'torch' is also checked live against torch.optim.RMSprop.

Each reference case holds the library's params and optimizer state after every step; the
library's state names are mapped to ours below (see torchfluid.optimizer.presets)."""

import pathlib
import re

import numpy as np
import pytest
import torch

from torchfluid.clip import ClipGradByGlobalNorm, ClipGradByNorm, ClipGradByValue
from torchfluid.optimizer import RMSProp
from torchfluid.optimizer.presets import PRESETS
from torchfluid.regularizer import L2Decay

from .conftest import load_reference

RTOL, ATOL = 1e-5, 1e-6


# ---------------------------------------------------------------- library adapters
def _changes(case):
    """``{step index: lr}``: set the lr to that value before that step."""
    sched = case.get("lr_schedule") or {}
    return {int(t): v for t, v in sched.get("changes", {}).items()}


def _torch_state(record, k, case):
    names = {"square_avg": "mean_square", "grad_avg": "mean_grad", "momentum_buffer": "momentum"}
    return {names[a]: v for a, v in record["state"][k].items() if a in names}


def _tf1_state(record, k, case):
    s = record["state"][k]
    out = {"mean_square": s["rms"]}
    if "mg" in s:
        out["mean_grad"] = s["mg"]
    # TF1 keeps the momentum slot even at momentum 0, where it is the last update
    out["momentum" if case["config"]["momentum"] else "last_update"] = s["momentum"]
    return out


def _keras_state(record, k, case):
    s = record["state"]
    out = {"mean_square": s[f"rmsprop/{k}_velocity"]}
    if f"rmsprop/{k}_momentum" in s:
        out["momentum"] = s[f"rmsprop/{k}_momentum"]
    if f"rmsprop/{k}_average_gradient" in s:
        out["mean_grad"] = s[f"rmsprop/{k}_average_gradient"]
    return out


def _optax_state(record, k, case):
    out = {}
    for key, value in record["state"].items():
        field = key.split(".")[-1]
        if field == "nu":
            out["mean_square"] = value[k]
        elif field == "mu":
            out["mean_grad"] = value[k]
        elif field == "trace":  # optax's trace is the negated, lr-scaled velocity
            out["momentum"] = (-np.asarray(value[k], dtype=np.float32)).tolist()
        elif key.startswith("0.") and field == "count":  # bias-correction count
            out["step"] = value
    return out


def _optax_kwargs(case):
    """optax's piecewise_constant_schedule(init, {b: s}) scales the lr from count == b on
    (count = updates done before this one), i.e. before step index b: a set_lr there."""
    config = dict(case["config"])
    lr = config["learning_rate"]
    changes = {}
    if isinstance(lr, dict):
        assert lr["schedule"] == "optax.piecewise_constant_schedule"
        config["learning_rate"] = value = lr["init_value"]
        for boundary, scale in sorted(lr["boundaries_and_scales"].items(), key=lambda kv: int(kv[0])):
            value *= scale
            changes[int(boundary)] = value
    return config, changes


LIBRARIES = {
    "torch": ("torch_rmsprop_reference.json", _torch_state, lambda c: (c["config"], _changes(c))),
    "timm": ("timm_rmsprop_reference.json", _torch_state, lambda c: (c["config"], _changes(c))),
    "tf1": ("tensorflow_v1_rmsprop_reference.json", _tf1_state, lambda c: (c["config"], _changes(c))),
    "keras": ("keras_rmsprop_reference.json", _keras_state, lambda c: (c["config"], _changes(c))),
    "optax": ("optax_rmsprop_reference.json", _optax_state, _optax_kwargs),
}
CASES = [(lib, case) for lib, (fname, _, _) in LIBRARIES.items() for case in load_reference(fname)["cases"]]


@pytest.mark.parametrize("lib,case", CASES, ids=[f"{lib}-{c['name']}" for lib, c in CASES])
def test_preset_reproduces_library(lib, case):
    _, state_of, kwargs_of = LIBRARIES[lib]
    kwargs, changes = kwargs_of(case)
    params = {k: torch.nn.Parameter(torch.tensor(v, dtype=torch.float32)) for k, v in case["initial_params"].items()}
    opt = RMSProp.preset(lib, parameters=list(params.items()), **kwargs)
    assert type(opt) is RMSProp
    for t, (grads, record) in enumerate(zip(case["grads"], case["steps"], strict=False)):
        if t in changes:
            opt.set_lr(changes[t])
        if "lr_used" in record:
            assert opt.get_lr() == pytest.approx(record["lr_used"])
        before = {k: p.detach().clone() for k, p in params.items()}
        for k, p in params.items():
            p.grad = torch.tensor(grads[k], dtype=torch.float32)
        opt.step()
        sd = opt.state_dict()
        for k, p in params.items():
            where = f"{lib} {case['name']} step {t} {k}"
            np.testing.assert_allclose(p.detach().numpy(), record["params"][k], rtol=RTOL, atol=ATOL, err_msg=where)
            want = state_of(record, k, case)
            assert want, where
            for acc, value in want.items():
                if acc == "last_update":
                    got = (before[k] - p.detach()).numpy()
                elif acc == "step":
                    got = int(sd[f"{k}_step_0"])
                else:
                    got = sd[f"{k}_{acc}_0"].numpy()
                np.testing.assert_allclose(got, value, rtol=RTOL, atol=ATOL, err_msg=f"{where} {acc}")
            kept = {key.rsplit("_", 1)[0][len(k) + 1 :] for key in sd if key.startswith(f"{k}_")}
            assert kept == set(want) - {"last_update"}, where  # no state the library lacks


def test_every_reference_case_is_covered():
    counts = {lib: sum(1 for case_lib, _ in CASES if case_lib == lib) for lib in LIBRARIES}
    assert counts == {"torch": 12, "timm": 8, "tf1": 7, "keras": 10, "optax": 13}


def test_paddle_preset_is_the_native_optimizer():
    a = torch.nn.Parameter(torch.randn(4, 3))
    b = torch.nn.Parameter(a.detach().clone())
    ours = RMSProp.preset("paddle", parameters=[("w", a)], learning_rate=0.01, momentum=0.9, centered=True)
    native = RMSProp(learning_rate=0.01, momentum=0.9, centered=True, parameters=[("w", b)])
    assert ours.defaults == native.defaults
    for _ in range(3):
        g = torch.randn(4, 3)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        native.step()
    assert torch.equal(a, b)


# ------------------------------------------------------------- live vs torch.optim
TORCH_GRID = [
    {},
    {"lr": 0.05, "alpha": 0.9, "eps": 1e-6},
    {"momentum": 0.9},
    {"centered": True},
    {"centered": True, "momentum": 0.5, "alpha": 0.95},
    {"weight_decay": 0.1},
    {"weight_decay": 0.05, "momentum": 0.9, "centered": True},
    {"maximize": True, "weight_decay": 0.1, "momentum": 0.9},
    {"maximize": True, "centered": True},
    {"eps": 0.5, "momentum": 0.3},
]


def _torch_twins(shapes, seed):
    gen = torch.Generator().manual_seed(seed)
    ours = [torch.nn.Parameter(torch.randn(*s, generator=gen)) for s in shapes]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    return ours, theirs


def _feed(pairs, gen, scale=1.0):
    for a, b in pairs:
        g = torch.randn(a.shape, generator=gen) * scale
        a.grad, b.grad = g.clone(), g.clone()


def _assert_torch_state_equal(opt, ref, ours, theirs):
    sd = opt.state_dict()
    names = {"square_avg": "mean_square", "grad_avg": "mean_grad", "momentum_buffer": "momentum"}
    for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL)
        for theirs_name, ours_name in names.items():
            if theirs_name in ref.state[b]:
                torch.testing.assert_close(sd[f"p{i}_{ours_name}_0"], ref.state[b][theirs_name], rtol=RTOL, atol=ATOL)
            else:
                assert f"p{i}_{ours_name}_0" not in sd


@pytest.mark.parametrize("config", TORCH_GRID, ids=[str(c) or "defaults" for c in TORCH_GRID])
def test_torch_preset_live(config):
    ours, theirs = _torch_twins([(6, 5), (7,)], seed=len(str(config)))
    opt = RMSProp.preset("torch", parameters=[(f"p{i}", p) for i, p in enumerate(ours)], **config)
    ref = torch.optim.RMSprop(theirs, **config)
    gen = torch.Generator().manual_seed(1)
    for t in range(8):
        if t == 5:  # an lr change: torch keeps lr outside the buffer, and so does the preset
            opt.set_lr(0.003)
            for g in ref.param_groups:
                g["lr"] = 0.003
        _feed(zip(ours, theirs, strict=False), gen, scale=0.3)
        opt.step()
        ref.step()
        _assert_torch_state_equal(opt, ref, ours, theirs)


def test_torch_preset_param_groups_use_torch_names():
    ours, theirs = _torch_twins([(4, 4), (4,)], seed=3)

    def groups(ps):
        return [
            {"params": [ps[0]], "alpha": 0.9, "eps": 1e-4, "momentum": 0.9},
            {"params": [ps[1]], "lr": 0.1, "centered": True},
        ]

    opt = RMSProp.preset("torch", parameters=groups([("p0", ours[0]), ("p1", ours[1])]), lr=0.02)
    ref = torch.optim.RMSprop(groups(theirs), lr=0.02)
    assert opt.param_groups[0]["rho"] == 0.9 and opt.param_groups[0]["epsilon"] == 1e-4
    gen = torch.Generator().manual_seed(2)
    for _ in range(5):
        _feed(zip(ours, theirs, strict=False), gen)
        opt.step()
        ref.step()
        _assert_torch_state_equal(opt, ref, ours, theirs)


def test_preset_state_dict_round_trip_resumes_exactly():
    def make(ps):
        return RMSProp.preset(
            "optax",
            parameters=ps,
            learning_rate=0.02,
            momentum=0.9,
            nesterov=True,
            centered=True,
            bias_correction=True,
            initial_scale=0.5,
        )

    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(3, 2, generator=gen) for _ in range(6)]
    a = torch.nn.Parameter(torch.ones(3, 2))
    full = make([("w", a)])
    for g in grads:
        a.grad = g.clone()
        full.step()
    b = torch.nn.Parameter(torch.ones(3, 2))
    first = make([("w", b)])
    for g in grads[:3]:
        b.grad = g.clone()
        first.step()
    saved = first.state_dict()
    assert int(saved["w_step_0"]) == 3
    groups = first.torch_state_dict()["param_groups"]
    assert groups[0]["bias_correction"] is True and groups[0]["nesterov"] is True
    c = torch.nn.Parameter(b.detach().clone())
    resumed = make([("w", c)])
    resumed.set_state_dict(saved)
    for g in grads[3:]:
        c.grad = g.clone()
        resumed.step()
    assert torch.equal(a, c)


# --------------------------------------------------------------------- translation
def test_keras_clip_arguments_map_to_clip_classes():
    p = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(RMSProp.preset("keras", parameters=p, clipnorm=1.0).grad_clip, ClipGradByNorm)
    assert isinstance(RMSProp.preset("keras", parameters=p, global_clipnorm=1.0).grad_clip, ClipGradByGlobalNorm)
    clip = RMSProp.preset("keras", parameters=p, clipvalue=0.5).grad_clip
    assert isinstance(clip, ClipGradByValue) and (clip.min, clip.max) == (-0.5, 0.5)
    assert RMSProp.preset("keras", parameters=p, clipnorm=0.0).grad_clip is None  # Keras: <= 0 means off


def test_preset_translations():
    p = [torch.nn.Parameter(torch.zeros(2))]
    t = RMSProp.preset("torch", parameters=p, weight_decay=0.1)
    assert t.regularization == L2Decay(0.1, float32_attrs=False)  # torch's decay: float64 as given
    assert (t.defaults["eps_in_sqrt"], t.defaults["lr_in_momentum"], t.defaults["rho"]) == (False, False, 0.99)
    timm = RMSProp.preset("timm", parameters=p, weight_decay=0.1, decoupled_decay=True)
    assert timm.regularization is None and timm.defaults["decoupled_weight_decay"] == 0.1
    assert timm.defaults["initial_mean_square"] == 1.0
    assert RMSProp.preset("timm", parameters=p, weight_decay=0.1).regularization == L2Decay(0.1, float32_attrs=False)
    k = RMSProp.preset("keras", parameters=p, weight_decay=0.004)
    assert k.defaults["decoupled_weight_decay"] == 0.004 and k.get_lr() == 0.001
    o = RMSProp.preset("optax", parameters=p, learning_rate=0.1, nesterov=True)  # no momentum: optax ignores it
    assert o.defaults["nesterov"] is False and o.defaults["momentum"] == 0.0
    tf = RMSProp.preset("tf1", parameters=p, learning_rate=0.1, use_locking=True)
    assert tf.defaults["initial_mean_square"] == 1.0 and tf.defaults["epsilon"] == 1e-10
    m = RMSProp.preset("torch", parameters=p, multi_precision=True, nonfinite="skip", name="opt")
    assert m.multi_precision and m.nonfinite == "skip" and m._name == "opt"


BAD = [
    ({"name": "adam"}, ValueError, "unknown RMSProp preset 'adam'; choose one of 'paddle', 'torch'"),
    (
        {"name": "torch", "betas": (0.9, 0.99)},
        TypeError,
        "got unexpected argument(s) 'betas'; torch.optim.RMSprop takes: lr, alpha, eps, weight_decay, momentum, "
        "centered, maximize (accepted and ignored: foreach); torchfluid adds: name, multi_precision",
    ),
    ({"name": "keras", "rho": 0.9, "decay": 0.1}, TypeError, "keras.optimizers.RMSprop takes: learning_rate, rho"),
    ({"name": "optax", "decay": 0.9}, TypeError, "RMSProp.preset('optax') needs learning_rate"),
    ({"name": "tf1"}, TypeError, "needs learning_rate (tf.compat.v1.train.RMSPropOptimizer has no default)"),
    (
        {"name": "keras", "clipnorm": 1.0, "clipvalue": 0.5},
        ValueError,
        "only one of clipnorm, clipvalue and global_clipnorm can be set (as in Keras), got clipnorm=1.0, clipvalue=0.5",
    ),
    ({"name": "keras", "use_ema": True}, ValueError, "use_ema=True is not supported (only the default use_ema=False"),
    ({"name": "timm", "caution": True}, ValueError, "caution=True is not supported"),
    ({"name": "torch", "capturable": True}, ValueError, "capturable=True is not supported"),
    ({"name": "torch", "eps": 0.0}, ValueError, "eps must be > 0, got 0.0"),
    ({"name": "torch", "alpha": 1.0}, ValueError, "alpha must be in [0, 1), got 1.0"),
    ({"name": "timm", "weight_decay": -1.0}, ValueError, "weight_decay must be >= 0, got -1.0"),
    ({"name": "optax", "learning_rate": 0.1, "decay": 1.5}, ValueError, "decay must be in [0, 1), got 1.5"),
    ({"name": "optax", "learning_rate": 0.1, "momentum": -0.5}, ValueError, "momentum must be >= 0, got -0.5"),
    ({"name": "keras", "weight_decay": -0.1}, ValueError, "weight_decay must be >= 0, got -0.1"),
    ({"name": "tf1", "learning_rate": 0.1, "decay": 1.0}, ValueError, "decay must be in [0, 1), got 1.0"),
    ({"name": "paddle", "learning_rate": 0.1, "rho": 1.0}, ValueError, "rho must be in [0, 1), got 1.0"),
    ({"name": "torch", "nonfinite": "ignore"}, ValueError, "nonfinite must be one of 'propagate', 'skip', 'raise'"),
]


@pytest.mark.parametrize("kwargs,exc,message", BAD, ids=[str(k) for k, _, _ in BAD])
def test_preset_bad_arguments(kwargs, exc, message):
    kwargs = dict(kwargs)
    name = kwargs.pop("name")
    with pytest.raises(exc, match=re.escape(message)):
        RMSProp.preset(name, parameters=[torch.nn.Parameter(torch.zeros(2))], **kwargs)


def test_preset_group_errors():
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match=re.escape("param_groups[0]: weight_decay must be >= 0, got -0.1")):
        opt = RMSProp.preset("torch", parameters=[{"params": [p], "weight_decay": 0.1}])
        opt.param_groups[0]["weight_decay"] = -0.1
        p.grad = torch.ones(2)
        opt.step()
    assert torch.equal(p.detach(), torch.zeros(2))  # refused before anything changed
    with pytest.raises(ValueError, match=re.escape("parameters[0] sets both 'alpha' and 'rho'")):
        RMSProp.preset("timm", parameters=[{"params": [p], "alpha": 0.9, "rho": 0.9}])


def test_every_preset_lists_its_library_defaults():
    assert PRESETS["torch"].args == {
        "lr": 0.01,
        "alpha": 0.99,
        "eps": 1e-8,
        "weight_decay": 0.0,
        "momentum": 0.0,
        "centered": False,
        "maximize": False,
    }
    assert PRESETS["keras"].args["epsilon"] == 1e-7 and PRESETS["keras"].args["learning_rate"] == 0.001
    assert PRESETS["timm"].args["eps"] == 1e-10 and PRESETS["tf1"].args["epsilon"] == 1e-10
    assert PRESETS["optax"].args["eps"] == 1e-8 and PRESETS["paddle"].args["epsilon"] == 1e-6


# ---------------------------------------------------------------- options directly
BAD_OPTIONS = [
    ({"nesterov": True}, "nesterov=True needs momentum > 0, got momentum=0"),
    ({"initial_mean_square": -1.0}, "initial_mean_square must be >= 0, got -1.0"),
    ({"decoupled_weight_decay": -0.1}, "decoupled_weight_decay must be >= 0, got -0.1"),
    ({"eps_in_sqrt": 1}, "eps_in_sqrt must be True or False, got 1"),
    ({"maximize": "yes"}, "maximize must be True or False, got 'yes'"),
    ({"bias_correction": None}, "bias_correction must be True or False, got None"),
    ({"lr_in_momentum": 0}, "lr_in_momentum must be True or False, got 0"),
]


@pytest.mark.parametrize("kwargs,message", BAD_OPTIONS, ids=[str(k) for k, _ in BAD_OPTIONS])
def test_bad_convention_options(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        RMSProp(learning_rate=0.1, parameters=[torch.nn.Parameter(torch.zeros(2))], **kwargs)


def test_bad_group_option_rejected_and_nothing_added():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    opt = RMSProp(learning_rate=0.1, parameters=[a])
    with pytest.raises(ValueError, match=re.escape("nesterov=True needs momentum > 0")):
        opt.add_param_group({"params": [b], "nesterov": True})
    assert len(opt.param_groups) == 1


def test_convention_options_per_group_with_torch_and_paddle_groups():
    """One optimizer, two conventions: group options override the defaults."""
    a = torch.nn.Parameter(torch.ones(3))
    b = torch.nn.Parameter(torch.ones(3))
    ta = torch.nn.Parameter(torch.ones(3))
    opt = RMSProp(
        learning_rate=0.01,
        parameters=[
            {
                "params": [("a", a)],
                "rho": 0.99,
                "epsilon": 1e-8,
                "eps_in_sqrt": False,
                "lr_in_momentum": False,
                "momentum": 0.9,
            },
            {"params": [("b", b)]},
        ],
    )
    ref = torch.optim.RMSprop([ta], lr=0.01, alpha=0.99, eps=1e-8, momentum=0.9)
    paddle_b = torch.nn.Parameter(torch.ones(3))
    paddle = RMSProp(learning_rate=0.01, parameters=[paddle_b])
    for t in range(4):
        g = torch.tensor([0.1, -0.2, 0.3]) * (t + 1)
        a.grad, ta.grad, b.grad, paddle_b.grad = g.clone(), g.clone(), g.clone(), g.clone()
        opt.step()
        ref.step()
        paddle.step()
    torch.testing.assert_close(a, ta, rtol=RTOL, atol=ATOL)
    assert torch.equal(b, paddle_b)


def test_maximize_flips_the_gradient_before_clipping_and_regularization():
    a = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    b = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    clip = ClipGradByValue(0.5, -0.1)  # asymmetric: the sign flip must come first
    up = RMSProp(learning_rate=0.1, maximize=True, grad_clip=clip, weight_decay=0.2, parameters=[a])
    down = RMSProp(learning_rate=0.1, grad_clip=clip, weight_decay=0.2, parameters=[b])
    g = torch.tensor([0.3, -0.7])
    a.grad, b.grad = g.clone(), -g
    up.step()
    down.step()
    assert torch.equal(a, b)
    assert torch.equal(a.grad, g)  # .grad itself is never modified


def test_decoupled_weight_decay_and_bias_correction_one_step_numpy():
    p0 = np.array([0.5, -1.5, 2.0], dtype=np.float64)
    g = np.array([0.2, 0.4, -0.1], dtype=np.float64)
    p = torch.nn.Parameter(torch.tensor(p0))
    opt = RMSProp(
        learning_rate=0.1,
        rho=0.9,
        epsilon=1e-3,
        decoupled_weight_decay=0.5,
        bias_correction=True,
        initial_mean_square=0.2,
        parameters=[p],
    )
    p.grad = torch.tensor(g)
    opt.step()
    rho, eps = float(np.float32(0.9)), float(np.float32(1e-3))  # Paddle's float32 attributes (float64 params)
    ms = rho * 0.2 + (1 - rho) * g * g
    want = p0 * (1 - 0.1 * 0.5) - 0.1 * g / np.sqrt(ms / (1 - rho) + eps)
    np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-13)
    np.testing.assert_allclose(opt.state_dict()["param_0_mean_square_0"].numpy(), ms, rtol=1e-13)


# ------------------------------------------------------------------ the docs table
DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "conventions.md"


def test_conventions_doc_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/conventions.md block {i}", "exec"), {"__name__": "__doc__"})


def test_conventions_doc_lists_every_preset_default():
    text = DOC.read_text()
    for name, preset in PRESETS.items():
        assert f"`{name}`" in text, name
        eps_name = next(k for k in ("epsilon", "eps") if k in preset.args)
        assert f"{preset.args[eps_name]:g}" in text, (name, eps_name)
