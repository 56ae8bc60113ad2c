"""Momentum and Adagrad used as a careless or hostile user would, and in whole training loops.

* state dicts of another optimizer, malformed torch-layout state dicts: a clear ValueError
  and nothing changes (parameters and state compared bit for bit with a copy);
* torch's group keys (``nesterov``, ``dampening``, ``eps``, ``lr_decay``) in
  ``add_param_group`` or written into ``param_groups``: read as ours or refused, never
  silently ignored;
* whole loops against independent references: ``torch.optim.SGD(momentum, nesterov)`` and
  ``torch.optim.Adagrad(lr_decay=0)`` over 20 steps of a small MLP (with torch LR schedulers
  and ``torch.amp.GradScaler``), ``torch.compile`` of the step, checkpoint resume.
"""

import copy
import re

import numpy as np
import pytest
import torch

import torchfluid as fluid
import torchfluid.checkpoint as C
import torchfluid.optim as O
import torchfluid.optimizer as F

X = torch.randn(16, 3, generator=torch.Generator().manual_seed(1))
Y = torch.randn(16, 1, generator=torch.Generator().manual_seed(2))


def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def _steps(model, opt, steps, sched=None, scaler=None):
    for i in steps:
        opt.zero_grad()
        loss = ((model(X * (1 + i % 3)) - Y) ** 2).mean()
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        if sched is not None:
            sched.step()


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _snapshot(opt, model):
    """Parameters and every state tensor, copied."""
    state = {id(p): {k: v.clone() for k, v in s.items()} for p, s in opt.state.items()}
    return _flat(model).clone(), state


def _same(opt, model, snap):
    params, state = snap
    now = {id(p): s for p, s in opt.state.items()}
    return (
        torch.equal(_flat(model), params)
        and now.keys() == state.keys()
        and all(
            s.keys() == now[i].keys() and all(torch.equal(v, now[i][k]) for k, v in s.items()) for i, s in state.items()
        )
    )


# ---------------------------------------------------------------- state dicts of another optimizer

MAKERS = {
    "F.RMSProp": lambda ps: F.RMSProp(0.01, parameters=ps),
    "O.RMSProp": lambda ps: O.RMSProp(ps, lr=0.01),
    "F.Momentum": lambda ps: F.Momentum(0.05, parameters=ps),
    "O.Momentum": lambda ps: O.Momentum(ps, lr=0.05),
    "F.Adagrad": lambda ps: F.Adagrad(0.05, parameters=ps),
    "O.Adagrad": lambda ps: O.Adagrad(ps, lr=0.05),
    "F.Adam": lambda ps: F.Adam(0.01, parameters=ps),
    "torch.SGD": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
    "torch.Adagrad": lambda ps: torch.optim.Adagrad(ps, lr=0.05),
    "torch.RMSprop": lambda ps: torch.optim.RMSprop(ps, lr=0.01),
}

# (file's optimizer, loading optimizer, the report's words): Momentum's velocity is torch's momentum_buffer,
# which an RMSProp with momentum=0 tolerates, but it never stands in for RMSProp's mean_square
CROSS = [
    ("O.Momentum", "F.RMSProp", r"missing \(4\): param_0_mean_square_0"),
    ("O.Momentum", "O.RMSProp", r"missing \(4\): param_0_mean_square_0"),
    ("torch.SGD", "O.RMSProp", r"missing \(4\): param_0_mean_square_0"),
    ("F.RMSProp", "F.Momentum", r"unexpected \(4\): 'param_0_mean_square_0'"),
    ("O.RMSProp", "O.Momentum", r"unexpected \(4\): 'param_0_square_avg_0'"),  # the file's (torch's) names
    ("F.Adagrad", "F.Momentum", r"unexpected \(4\): 'param_0_moment_0'"),
    ("F.Momentum", "F.Adagrad", r"unexpected \(4\): 'param_0_velocity_0'"),
    ("O.Momentum", "O.Adagrad", r"unexpected \(4\): 'param_0_momentum_buffer_0'"),
    ("F.Adam", "O.Momentum", r"unexpected \(16\): 'param_0_moment1_0'"),
    ("torch.Adagrad", "O.Momentum", r"unexpected \(4\): 'param_0_sum_0'"),
    ("torch.RMSprop", "O.Adagrad", r"unexpected \(4\): 'param_0_square_avg_0'"),
]


@pytest.mark.parametrize("source,target,match", CROSS, ids=[f"{a}->{b}" for a, b, _ in CROSS])
def test_a_state_dict_of_another_optimizer_is_refused_and_nothing_changes(source, target, match):
    src_model = _mlp()
    src = MAKERS[source](src_model.parameters())
    _steps(src_model, src, range(2))
    sd = src.state_dict()
    ours_model = _mlp()
    ours = MAKERS[target](list(ours_model.parameters()))
    _steps(ours_model, ours, range(1))
    snap = _snapshot(ours, ours_model)
    with pytest.raises(ValueError, match=r"state_dict does not match this optimizer; nothing was loaded\. .*" + match):
        ours.load_state_dict(sd)
    assert _same(ours, ours_model, snap)
    report = ours.set_state_dict(sd, strict=False)  # strict=False: the report, nothing half-loaded
    assert not report.ok and not any(ours.state[p] for p in ours_model.parameters() if p in ours.state)


def test_an_rmsprop_file_with_momentum_still_loads_into_momentum_zero():
    """The tolerated entry is still tolerated when the records it goes with are there."""
    a_model, b_model = _mlp(), _mlp()
    a = F.RMSProp(0.01, momentum=0.9, parameters=list(a_model.parameters()))
    _steps(a_model, a, range(2))
    b = F.RMSProp(0.01, momentum=0.0, parameters=list(b_model.parameters()))
    b.set_state_dict(a.state_dict())
    for p, q in zip(a_model.parameters(), b_model.parameters(), strict=True):
        assert set(b.state[q]) == {"mean_square"} and torch.equal(b.state[q]["mean_square"], a.state[p]["mean_square"])


# ---------------------------------------------------------------- malformed torch-layout state dicts


def _no_group_entry(sd):
    sd["state"][99] = copy.deepcopy(sd["state"][0])


def _string_entry(sd):
    sd["state"]["w"] = copy.deepcopy(sd["state"][0])


# (id, mutation, error raised with strict=True, report entry with strict=False or None: strict=False raises too)
MALFORMED = [
    ("state index in no group", _no_group_entry, r"unexpected \(1\): 'state\[99\] \(in no param group\)'", True),
    ("string state key", _string_entry, r"unexpected \(1\): \"state\['w'\] \(in no param group\)\"", True),
    (
        "group without params",
        lambda sd: sd["param_groups"][0].pop("params"),
        r"^torch-style state_dict: param_groups\[0\] must be a dict with a 'params' list of state indices, got no "
        r"'params'$",
        False,
    ),
    (
        "params not a list",
        lambda sd: sd["param_groups"][0].__setitem__("params", 3),
        r"param_groups\[0\] must be a dict with a 'params' list of state indices, got params of type int$",
        False,
    ),
    (
        "group not a dict",
        lambda sd: sd["param_groups"].__setitem__(0, "g"),
        r"param_groups\[0\] must be a dict with a 'params' list of state indices, got a str$",
        False,
    ),
    (
        "fewer names than params",
        lambda sd: sd["param_groups"][0].update(param_names=["a", "b", "c"]),  # (unnamed params write none)
        r"^torch-style state_dict: param_groups\[0\] has 4 params and 3 param_names$",
        False,
    ),
]


def _strict_load_is_refused(cls, mutate, match):
    """A trained ``cls``'s torch-layout state dict, ``mutate``d, loaded strictly into another
    ``cls`` that has stepped once: a ValueError matching ``match``, and nothing changes.
    Returns (the source's model, its optimizer, the model, its optimizer, the mutated state
    dict, the model's snapshot)."""
    src_model = _mlp()
    src = cls(src_model.parameters(), lr=0.05)
    _steps(src_model, src, range(2))
    sd = copy.deepcopy(src.state_dict())
    mutate(sd)
    model = _mlp()
    opt = cls(model.parameters(), lr=0.05)
    _steps(model, opt, range(1))
    snap = _snapshot(opt, model)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(sd)
    assert _same(opt, model, snap)
    return src_model, src, model, opt, sd, snap


@pytest.mark.parametrize("cls", [O.Momentum, O.Adagrad], ids=["Momentum", "Adagrad"])
@pytest.mark.parametrize("case_id,mutate,match,reported", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_a_malformed_torch_layout_state_dict_is_refused_and_nothing_changes(cls, case_id, mutate, match, reported):
    src_model, src, model, opt, sd, snap = _strict_load_is_refused(cls, mutate, match)
    if reported:
        report = opt.set_state_dict(sd, strict=False)  # the rest loads: the file's state
        assert len(report.unexpected) == 1 and not report.missing and not report.mismatched
        for p, q in zip(src_model.parameters(), model.parameters(), strict=True):
            assert all(torch.equal(v, opt.state[q][k]) for k, v in src.state[p].items())
    else:
        with pytest.raises(ValueError, match=match):
            opt.set_state_dict(sd, strict=False)
        assert _same(opt, model, snap)


# ---------------------------------------------------------------- torch's group keys


def _two_groups(cls, extra: dict):
    """An optimizer over the MLP's first layer, then ``add_param_group`` of the second with ``extra``."""
    model = _mlp()
    first, second = list(model[0].parameters()), list(model[2].parameters())
    opt = cls(first, lr=0.05)
    opt.add_param_group({"params": second, **extra})
    return model, opt


@pytest.mark.parametrize("nesterov", [False, True])
def test_add_param_group_reads_torch_sgds_nesterov(nesterov):
    """torch.optim.SGD's ``nesterov`` in a group is Momentum's ``use_nesterov`` (compared
    with torch.optim.SGD's own groups)."""
    model, opt = _two_groups(O.Momentum, {"nesterov": nesterov, "lr": 0.02})
    assert opt.param_groups[1]["use_nesterov"] is nesterov and "nesterov" not in opt.param_groups[1]
    ref_model = _mlp()
    ref = torch.optim.SGD(ref_model[0].parameters(), lr=0.05, momentum=0.9)
    ref.add_param_group({"params": list(ref_model[2].parameters()), "nesterov": nesterov, "lr": 0.02})
    _steps(model, opt, range(5))
    _steps(ref_model, ref, range(5))
    torch.testing.assert_close(_flat(model), _flat(ref_model), rtol=1e-6, atol=1e-7)


def test_add_param_group_reads_torch_adagrads_eps():
    model, opt = _two_groups(O.Adagrad, {"eps": 1e-3})
    assert opt.param_groups[1]["epsilon"] == 1e-3 and "eps" not in opt.param_groups[1]
    ref_model = _mlp()
    ref = torch.optim.Adagrad(ref_model[0].parameters(), lr=0.05, eps=1e-6)
    ref.add_param_group({"params": list(ref_model[2].parameters()), "eps": 1e-3})
    _steps(model, opt, range(5))
    _steps(ref_model, ref, range(5))
    torch.testing.assert_close(_flat(model), _flat(ref_model), rtol=1e-6, atol=1e-7)


# (optimizer, group keys, error text): maths these optimizers do not have, or two names for one key
BAD_GROUPS = [
    (O.Momentum, {"dampening": 0.5}, r"^the param group has dampening=0\.5; allowed: 0 \(Paddle's momentum"),
    (O.Momentum, {"nesterov": True, "use_nesterov": False}, r"^param_group sets both 'nesterov' and 'use_nesterov'"),
    (O.Momentum, {"nesterov": 1}, r"^use_nesterov must be True or False, got 1$"),
    (O.Adagrad, {"lr_decay": -0.1}, r"^lr_decay must be >= 0, got -0\.1$"),
    (O.Adagrad, {"eps": 0.0}, r"^epsilon must be > 0, got 0\.0$"),
    (O.Adagrad, {"eps": 1e-3, "epsilon": 1e-4}, r"^param_group sets both 'eps' and 'epsilon'"),
]


@pytest.mark.parametrize("cls,extra,match", BAD_GROUPS, ids=[f"{c.__name__}-{sorted(e)}" for c, e, _ in BAD_GROUPS])
def test_add_param_group_refuses_torch_keys_it_cannot_honour(cls, extra, match):
    model = _mlp()
    opt = cls(list(model[0].parameters()), lr=0.05)
    _steps(model, opt, range(1))
    snap = _snapshot(opt, model)
    with pytest.raises(ValueError, match=match):
        opt.add_param_group({"params": list(model[2].parameters()), **extra})
    assert len(opt.param_groups) == 1 and len(opt.param_names) == 2 and _same(opt, model, snap)
    opt.add_param_group({"params": list(model[2].parameters())})  # nothing of the failed call was kept
    assert len(opt.param_names) == 4


# (optimizer, torch's key written into param_groups[0], value, the option it stands for)
EDITS = [
    (O.Momentum, "nesterov", True, "use_nesterov"),
    (O.Adagrad, "eps", 1e-10, "epsilon"),
    (O.RMSProp, "alpha", 0.9, "rho"),
    (O.RMSProp, "eps", 1e-8, "epsilon"),
]


@pytest.mark.parametrize("cls,key,value,ours", EDITS, ids=[f"{c.__name__}-{k}" for c, k, _, _ in EDITS])
def test_torch_keys_written_into_param_groups_set_the_options_they_stand_for(cls, key, value, ours):
    """What ZeroRedundancyOptimizer's group sync and torch's tools write: read as the option,
    bit for bit as writing the option itself; both written with other values is refused."""
    model, twin_model = _mlp(), _mlp()
    opt, twin = cls(model.parameters(), lr=0.05), cls(twin_model.parameters(), lr=0.05)
    _steps(model, opt, range(1))
    _steps(twin_model, twin, range(1))
    opt.param_groups[0][key] = value
    twin.param_groups[0][ours] = value
    _steps(model, opt, range(1, 3))
    _steps(twin_model, twin, range(1, 3))
    assert opt.param_groups[0][ours] == value and torch.equal(_flat(model), _flat(twin_model))
    if isinstance(value, bool):
        return  # a flag has no third value: written both ways, one of them agrees
    snap = _snapshot(opt, model)
    opt.param_groups[0][key], opt.param_groups[0][ours] = value / 2, value * 2
    with pytest.raises(ValueError, match=rf"^param_groups\[0\]: the param group sets {key}=.* and {ours}=.*set one"):
        _steps(model, opt, range(3, 4))
    assert _same(opt, model, snap)


def test_torchs_dampening_written_into_a_momentum_group_is_refused_before_anything_changes():
    model = _mlp()
    opt = O.Momentum(model.parameters(), lr=0.05)
    _steps(model, opt, range(1))
    snap = _snapshot(opt, model)
    opt.param_groups[0]["dampening"] = 0.1
    with pytest.raises(ValueError, match=r"^param_groups\[0\]: the param group has dampening=0\.1; allowed: 0"):
        _steps(model, opt, range(1))
    assert _same(opt, model, snap)
    del opt.param_groups[0]["dampening"]
    _steps(model, opt, range(1))  # the group as it was steps again
    assert not torch.equal(_flat(model), snap[0])


# ---------------------------------------------------------------- whole loops against torch.optim


def _sgd_pair(nesterov, weight_decay):
    return (
        lambda ps: O.Momentum(ps, lr=0.05, momentum=0.9, use_nesterov=nesterov, weight_decay=weight_decay),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=weight_decay),
    )


def _adagrad_pair(eps, initial):
    return (
        lambda ps: O.Adagrad(ps, lr=0.05, epsilon=eps, initial_accumulator_value=initial),
        lambda ps: torch.optim.Adagrad(ps, lr=0.05, eps=eps, initial_accumulator_value=initial, lr_decay=0),
    )


SCHEDULERS = {
    "none": None,
    "StepLR": lambda o: torch.optim.lr_scheduler.StepLR(o, 5, 0.5),
    "CosineAnnealingLR": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 20),
    "OneCycleLR": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.1, total_steps=20),  # cycles 'momentum' too
}

# (id, (ours, torch's)): the maths coincide (Momentum: torch's dampening=0; Adagrad: lr_decay=0)
LOOP_PAIRS = [
    ("momentum", _sgd_pair(False, 0.0)),
    ("nesterov", _sgd_pair(True, 0.0)),
    ("momentum-l2", _sgd_pair(False, 0.01)),
    ("adagrad", _adagrad_pair(1e-10, 0.0)),
    ("adagrad-initial", _adagrad_pair(1e-6, 0.1)),
]


@pytest.mark.parametrize("sched", list(SCHEDULERS))
@pytest.mark.parametrize("case_id,pair", LOOP_PAIRS, ids=[c[0] for c in LOOP_PAIRS])
def test_twenty_steps_of_an_mlp_match_torch_optim(case_id, pair, sched):
    """20 steps of a small MLP with a torch LR scheduler: the parameters agree with
    torch.optim's up to rounding order (torch's fused multiply-add and addcdiv; measured
    at most 1.2e-7 apart)."""
    if sched == "OneCycleLR" and case_id.startswith("adagrad"):
        pytest.skip("OneCycleLR cycles a 'momentum' key Adagrad has not (torch.optim.Adagrad neither)")
    results = []
    for make in pair:
        model = _mlp()
        opt = make(model.parameters())
        s = SCHEDULERS[sched](opt) if SCHEDULERS[sched] else None
        _steps(model, opt, range(20), sched=s)
        results.append(_flat(model))
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=1e-6)
    assert not torch.equal(results[0], _flat(_mlp()))


@pytest.mark.parametrize("case_id,pair", LOOP_PAIRS[::2], ids=[c[0] for c in LOOP_PAIRS[::2]])
def test_a_grad_scaler_loop_matches_torch_and_skips_overflowing_steps(case_id, pair):
    """torch.amp.GradScaler: our optimizers see the unscaled gradients as torch's do; a
    step whose gradients overflow changes neither parameters nor state."""
    results = []
    for make in pair:
        model = _mlp()
        opt = make(model.parameters())
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
        _steps(model, opt, range(5), scaler=scaler)
        snap = _snapshot(opt, model) if isinstance(opt, F.Optimizer) else None
        opt.zero_grad()
        scaler.scale(((model(X) - Y) ** 2).mean()).backward()
        model[0].weight.grad[0, 0] = float("inf")
        scaler.step(opt)
        scaler.update()
        assert scaler.get_scale() == 2.0**9
        if snap is not None:
            assert _same(opt, model, snap)
        _steps(model, opt, range(5, 8), scaler=scaler)
        results.append(_flat(model))
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse-embedding"])
@pytest.mark.parametrize("make", [_sgd_pair(True, 0.0)[0], _adagrad_pair(1e-6, 0.1)[0]], ids=["Momentum", "Adagrad"])
def test_a_compiled_step_gives_the_eager_bits(make, sparse):
    """torch.compile(opt.step), with dense gradients and with an Embedding(sparse=True)'s
    row-sparse ones (repeated ids), against the eager step."""
    results = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Embedding(6, 3, sparse=sparse), torch.nn.Flatten(), torch.nn.Linear(6, 1))
        opt = make(model.parameters())
        step = torch.compile(opt.step) if compiled else opt.step
        for ids in ([[1, 1], [3, 0]], [[5, 2], [2, 2]], [[4, 1], [0, 0]]):
            opt.zero_grad()
            ((model(torch.tensor(ids)) - Y[:2]) ** 2).mean().backward()
            step()
        results.append(_flat(model))
    assert torch.equal(results[0], results[1])


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: F.Momentum(0.05, parameters=ps, use_nesterov=True),
        lambda ps: O.Momentum(ps, lr=0.05, momentum=0.8),
        lambda ps: F.Adagrad(0.05, parameters=ps, initial_accumulator_value=0.1),
        lambda ps: O.Adagrad(ps, lr=0.05),
    ],
    ids=["F.Momentum", "O.Momentum", "F.Adagrad", "O.Adagrad"],
)
def test_a_checkpoint_with_a_torch_scheduler_resumes_bit_for_bit(make, tmp_path):
    """torchfluid.checkpoint of model, optimizer and a torch scheduler after 3 steps; a fresh
    run loaded from it takes 3 more steps to the same bits as the run that went on."""
    model = _mlp()
    opt = make(model.parameters())
    sched = torch.optim.lr_scheduler.StepLR(opt, 2, 0.5)
    _steps(model, opt, range(3), sched=sched)
    path = tmp_path / "ckpt.pt"
    C.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, path)
    _steps(model, opt, range(3, 6), sched=sched)
    resumed = _mlp()
    opt2 = make(resumed.parameters())
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, 2, 0.5)
    ck = C.load(path)
    resumed.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["opt"])
    sched2.load_state_dict(ck["sched"])
    _steps(resumed, opt2, range(3, 6), sched=sched2)
    assert torch.equal(_flat(resumed), _flat(model))


# ---------------------------------------------------------------- complex parameters with a clip or regularizer

COMPLEX_CASES = [
    ("L1Decay", {"regularization": fluid.regularizer.L1Decay(0.1)}, None),
    ("own L1Decay", {}, fluid.regularizer.L1Decay(0.1)),
    ("ClipGradByValue", {"grad_clip": fluid.clip.ClipGradByValue(0.5)}, None),
    ("ClipGradByNorm", {"grad_clip": fluid.clip.ClipGradByNorm(0.5)}, None),
    ("ClipGradByGlobalNorm", {"grad_clip": fluid.clip.ClipGradByGlobalNorm(0.5)}, None),
]


@pytest.mark.parametrize("cls", [F.Momentum, F.SGD, F.RMSProp], ids=["Momentum", "SGD", "RMSProp-fused"])
@pytest.mark.parametrize("case_id,kwargs,own_reg", COMPLEX_CASES, ids=[c[0] for c in COMPLEX_CASES])
def test_a_clip_or_regularizer_that_fails_on_a_complex_gradient_changes_nothing(cls, case_id, kwargs, own_reg):
    """The real parameter listed first is not updated, no state is made and the fluid
    decay does not advance; the error names the complex parameter."""
    real = torch.nn.Parameter(torch.ones(2))
    cplx = torch.nn.Parameter(torch.ones(2, dtype=torch.complex64))
    if own_reg is not None:
        cplx.regularizer = own_reg
    decay = fluid.dygraph.PiecewiseDecay([1], [0.1, 0.01], 0)
    opt = cls(decay, parameters=[("real", real), ("cplx", cplx)], **kwargs)
    real.grad, cplx.grad = torch.ones(2), torch.full((2,), 1 + 1j, dtype=torch.complex64)
    with pytest.raises(ValueError, match=r"^complex parameters \['cplx'\]: the gradient clip or a regularizer cannot"):
        opt.step()
    assert torch.equal(real.detach(), torch.ones(2)) and torch.equal(
        cplx.detach(), torch.ones(2, dtype=torch.complex64)
    )
    assert not any(opt.state.values()) and decay.step_num == 0
    cplx.need_clip, cplx.regularizer = False, None  # what the message suggests
    opt2 = cls(
        0.1, parameters=[("real", real), ("cplx", cplx)], **{k: v for k, v in kwargs.items() if k != "regularization"}
    )
    opt2.step()
    if cls is not F.RMSProp:  # p - lr * g on the first step
        torch.testing.assert_close(cplx.detach(), torch.full((2,), 0.9 - 0.1j, dtype=torch.complex64))
    assert not torch.equal(cplx.detach(), torch.ones(2, dtype=torch.complex64))


def test_a_complex_momentum_with_l2_decay_equals_torch_sgd():
    g = torch.Generator().manual_seed(0)
    p0 = torch.randn(4, 3, dtype=torch.complex64, generator=g)
    grads = [torch.randn(4, 3, dtype=torch.complex64, generator=g) for _ in range(4)]
    for nesterov in (False, True):
        a, b = torch.nn.Parameter(p0.clone()), torch.nn.Parameter(p0.clone())
        ours = O.Momentum([a], lr=0.1, momentum=0.9, use_nesterov=nesterov, weight_decay=0.1)
        ref = torch.optim.SGD([b], lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.1)
        for grad in grads:
            a.grad, b.grad = grad.clone(), grad.clone()
            ours.step()
            ref.step()
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- Checkpointer and two gloo ranks

RESUMABLE = {
    "F.Momentum": lambda ps: F.Momentum(0.05, parameters=list(ps), use_nesterov=True),
    "O.Momentum": lambda ps: O.Momentum(ps, lr=0.05),
    "F.Adagrad": lambda ps: F.Adagrad(0.05, parameters=list(ps), initial_accumulator_value=0.1),
    "O.Adagrad": lambda ps: O.Adagrad(ps, lr=0.05),
}


def _dropout_mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.2), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def _checkpointed_run(make, folder, *, stop=None, resume=False):
    """10 steps of a dropout MLP with a torch scheduler, a Checkpointer save every 2 steps."""
    model = _dropout_mlp()
    opt = make(model.parameters())
    sched = torch.optim.lr_scheduler.StepLR(opt, 3, 0.5)
    torch.manual_seed(5)
    with C.Checkpointer(folder, every=2) as ck:
        start = ck.resume(model=model, optimizer=opt, scheduler=sched)["step"] + 1 if resume else 0
        for i in range(start, 10):
            opt.zero_grad()
            ((model(X) - Y) ** 2).mean().backward()
            opt.step()
            sched.step()
            ck.save(i, model=model, optimizer=opt, scheduler=sched)
            if i == stop:
                break
    return _flat(model)


@pytest.mark.parametrize("name", list(RESUMABLE))
def test_a_checkpointer_run_stopped_and_resumed_is_bit_identical(name, tmp_path):
    """Model, optimizer, torch scheduler and the dropout RNG restored from the newest save."""
    full = _checkpointed_run(RESUMABLE[name], tmp_path / "full")
    _checkpointed_run(RESUMABLE[name], tmp_path / "cut", stop=6)
    assert torch.equal(_checkpointed_run(RESUMABLE[name], tmp_path / "cut", resume=True), full)


def test_resuming_another_optimizers_checkpoint_restores_nothing(tmp_path):
    _checkpointed_run(lambda ps: F.RMSProp(0.01, parameters=list(ps)), tmp_path, stop=4)
    model = _dropout_mlp()
    opt = F.Momentum(0.05, parameters=list(model.parameters()))
    before = _flat(model).clone()
    with pytest.raises(ValueError, match=r"unexpected \(4\): 'param_0_mean_square_0'"):
        C.Checkpointer(tmp_path).resume(model=model, optimizer=opt)
    assert torch.equal(_flat(model), before) and not opt.state


DIST_MAKERS = {
    "Momentum": lambda ps, **kw: F.Momentum(0.05, parameters=list(ps), use_nesterov=True, **kw),
    "Adagrad": lambda ps, **kw: F.Adagrad(0.05, parameters=list(ps), **kw),
}
DIST_MODES = ("ddp", "ddp+shard_state", "shard_state+reduce")


def _dist_rank(rank, world, port, out):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    results = {}
    for name, make in DIST_MAKERS.items():
        for mode in DIST_MODES:
            model = _mlp()
            net = model if mode == "shard_state+reduce" else torch.nn.parallel.DistributedDataParallel(model)
            kw = {} if mode == "ddp" else {"shard_state": True}
            if mode == "shard_state+reduce":
                kw["grad_reduction"] = "reduce"
            opt = make(model.parameters(), **kw)
            part = slice(rank * 8, rank * 8 + 8)
            for i in range(5):
                opt.clear_grad()
                ((net(X[part] * (1 + i)) - Y[part]) ** 2).mean().backward()
                opt.step()
            results[name, mode] = _flat(model)
    if rank == 0:
        torch.save(results, out)
    dist.destroy_process_group()


def test_two_gloo_ranks_ddp_and_sharded_state_equal_one_process(tmp_path):
    """DDP, DDP with ZeRO-1 state sharding and sharding with its own gradient averaging on
    2 ranks (half the batch each) against one process on the whole batch."""
    import multiprocessing
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "dist.pt")
    ctx = multiprocessing.get_context("forkserver")
    procs = [ctx.Process(target=_dist_rank, args=(r, 2, port, out)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0, 0], "a rank failed (its traceback is in the captured stderr)"
    results = torch.load(out)
    for name, make in DIST_MAKERS.items():
        model = _mlp()
        opt = make(model.parameters())
        for i in range(5):
            opt.clear_grad()
            ((model(X * (1 + i)) - Y) ** 2).mean().backward()
            opt.step()
        for mode in DIST_MODES:
            torch.testing.assert_close(results[name, mode], _flat(model), rtol=0, atol=1e-6, msg=f"{name} {mode}")


# ---------------------------------------------------------------- torch's call

# (class, torch's keyword arguments, the torch.optim twin): the same run
TORCH_CALLS = [
    (O.Momentum, {"lr": 0.05, "momentum": 0.9, "nesterov": True}, torch.optim.SGD),
    (
        O.Momentum,
        {"lr": 0.05, "momentum": 0.9, "dampening": 0, "weight_decay": 0.01, "nesterov": False, "maximize": False},
        torch.optim.SGD,
    ),
    (O.Momentum, {"lr": 0.05, "momentum": 0.9, "maximize": True, "weight_decay": 0.01}, torch.optim.SGD),
    (O.Adagrad, {"lr": 0.05, "eps": 1e-10}, torch.optim.Adagrad),
    (O.Adagrad, {"lr": 0.05, "eps": 1e-10, "maximize": True}, torch.optim.Adagrad),
    (
        O.Adagrad,
        {
            "lr": 0.05,
            "lr_decay": 0,
            "weight_decay": 0.01,
            "initial_accumulator_value": 0.1,
            "eps": 1e-8,
            "maximize": False,
        },
        torch.optim.Adagrad,
    ),
]


@pytest.mark.parametrize("cls,kwargs,twin", TORCH_CALLS, ids=[f"{c.__name__}-{sorted(k)}" for c, k, _ in TORCH_CALLS])
def test_torch_call_with_torch_option_names_runs_as_torch(cls, kwargs, twin):
    """What ZeroRedundancyOptimizer(params, optimizer_class=cls, **kwargs) calls."""
    runs = []
    for make in (cls, twin):
        model = _mlp()
        opt = make(model.parameters(), **kwargs)
        _steps(model, opt, range(10))
        runs.append(_flat(model))
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=1e-6)


BAD_TORCH_CALLS = [
    (
        O.Momentum,
        {"nesterov": True, "use_nesterov": False},
        r"^torchfluid\.optim\.Momentum\(\.\.\.\) sets both 'nesterov' and",
    ),
    (O.Momentum, {"dampening": 0.1}, r"^torchfluid\.optim\.Momentum\(\.\.\.\) has dampening=0\.1; allowed: 0"),
    (O.Momentum, {"nesterov": "yes"}, r"^use_nesterov must be True or False, got 'yes'$"),
    (O.Adagrad, {"eps": 1e-3, "epsilon": 1e-4}, r"^torchfluid\.optim\.Adagrad\(\.\.\.\) sets both 'eps' and 'epsilon'"),
    (O.Adagrad, {"lr_decay": -0.01}, r"^Invalid lr_decay value: -0\.01 \(lr_decay must be >= 0, got -0\.01\)$"),
    (O.Adagrad, {"eps": -1.0}, r"^Invalid epsilon value: -1\.0 \(epsilon must be > 0, got -1\.0\)$"),
    (O.SGD, {"momentum": -0.5}, r"^Invalid momentum value: -0\.5 \(momentum must be >= 0, got -0\.5\)$"),
    (
        O.SGD,
        {"momentum": 0.9, "nesterov": True, "dampening": 0.1},
        r"^nesterov=True needs momentum > 0 and dampening=0",
    ),
    (O.SGD, {"nesterov": True}, r"^nesterov=True needs momentum > 0 and dampening=0"),
]


@pytest.mark.parametrize(
    "cls,kwargs,match", BAD_TORCH_CALLS, ids=[f"{c.__name__}-{sorted(k)}" for c, k, _ in BAD_TORCH_CALLS]
)
def test_torch_call_refuses_torch_options_it_cannot_honour(cls, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cls(_mlp().parameters(), lr=0.05, **kwargs)


# (optimizer, key, value of several elements written into param_groups[0], error text)
ARRAY_EDITS = [
    (
        O.Momentum,
        "lr",
        np.array([0.05, 0.1]),
        r"lr must be a real number >= 0, got array\(\[0\.05, 0\.1 \]\) of type ndarray",
    ),
    (
        O.Momentum,
        "momentum",
        torch.tensor([0.9, 0.9]),
        r"momentum must be a real number >= 0, got tensor\(\[0\.9000, 0\.9000\]\)",
    ),
    (
        O.Adagrad,
        "epsilon",
        np.array([1e-6, 1e-6]),
        r"epsilon must be a real number > 0, got array\(\[1\.e-06, 1\.e-06\]\)",
    ),
    (O.Adagrad, "initial_accumulator_value", torch.zeros(2), r"initial_accumulator_value must be a real number >= 0"),
]


@pytest.mark.parametrize("cls,key,value,match", ARRAY_EDITS, ids=[f"{c.__name__}-{k}" for c, k, _, _ in ARRAY_EDITS])
def test_an_array_written_into_param_groups_is_refused_before_anything_changes(cls, key, value, match):
    """Not the ambiguous-truth-value error of comparing it with the value last checked."""
    model = _mlp()
    opt = cls(model.parameters(), lr=0.05)
    _steps(model, opt, range(1))
    snap = _snapshot(opt, model)
    opt.param_groups[0][key] = value
    with pytest.raises(TypeError, match=r"^param_groups\[0\]: " + match):
        _steps(model, opt, range(1))
    assert _same(opt, model, snap)


@pytest.mark.parametrize("cls", [O.Adagrad, F.Adagrad], ids=["torch-layout", "paddle-layout"])
def test_a_torch_adagrad_state_dict_loads_and_the_run_continues(cls):
    """torch.optim.Adagrad's 'sum' is the moment (bit for bit), its eps the epsilon, its
    initial_accumulator_value and lr the group's; the runs then agree up to rounding order."""
    theirs = _mlp()
    ref = torch.optim.Adagrad(theirs.parameters(), lr=0.05, eps=1e-8, initial_accumulator_value=0.1)
    _steps(theirs, ref, range(3))
    sd = ref.state_dict()
    ours = copy.deepcopy(theirs)
    opt = cls(list(ours.parameters()), lr=0.01) if cls is O.Adagrad else cls(0.01, parameters=list(ours.parameters()))
    opt.load_state_dict(sd)
    group = opt.param_groups[0]
    assert (group["lr"], group["epsilon"], group["initial_accumulator_value"]) == (0.05, 1e-8, 0.1)
    for i, p in enumerate(ours.parameters()):
        assert set(opt.state[p]) == {"moment"} and torch.equal(opt.state[p]["moment"], sd["state"][i]["sum"])
    _steps(theirs, ref, range(3, 8))
    _steps(ours, opt, range(3, 8))
    torch.testing.assert_close(_flat(ours), _flat(theirs), rtol=0, atol=1e-6)


def test_a_torch_adagrad_state_dict_with_lr_decay_resumes_as_torch():
    """torch's lr_decay (lr / (1 + (step - 1) * lr_decay)) with its per-parameter step count:
    a torch.optim.Adagrad checkpoint loads (its 'sum' and 'step') and the run goes on as torch's."""
    theirs = _mlp()
    ref = torch.optim.Adagrad(theirs.parameters(), lr=0.05, lr_decay=0.1, eps=1e-10)
    _steps(theirs, ref, range(3))
    model = _mlp()
    model.load_state_dict(theirs.state_dict())
    opt = O.Adagrad(model.parameters(), lr=0.05, lr_decay=0.1, eps=1e-10)
    opt.load_state_dict(ref.state_dict())
    for p in model.parameters():
        assert set(opt.state[p]) == {"moment", "step"} and float(opt.state[p]["step"]) == 3.0
    _steps(theirs, ref, range(3, 9))
    _steps(model, opt, range(3, 9))
    torch.testing.assert_close(_flat(model), _flat(theirs), rtol=0, atol=1e-6)


def _first_entry(sd, make):
    (acc,) = (k for k in sd["state"][0] if k != "step")  # the one record (torch's step count aside)
    sd["state"][0][acc] = make(sd["state"][0][acc])


# (id, mutation of param_0's entry, report field, its text): strict=True refuses all; strict=False loads the others
BAD_ENTRIES = [
    (
        "wrong shape",
        lambda sd: _first_entry(sd, lambda t: torch.zeros(5)),
        "mismatched",
        r"expected shape \[8, 3\] float32, got shape \[5\] float32",
    ),
    (
        "wrong dtype",
        lambda sd: _first_entry(sd, lambda t: t.double()),
        "mismatched",
        r"expected shape \[8, 3\] float32, got shape \[8, 3\] float64",
    ),
    (
        "not a tensor",
        lambda sd: _first_entry(sd, lambda t: t.tolist()),
        "mismatched",
        r"expected a tensor or numpy array, got list",
    ),
    (
        "sparse",
        lambda sd: _first_entry(sd, lambda t: t.to_sparse()),
        "mismatched",
        r"expected a dense tensor, got layout sparse_coo",
    ),
    (
        "unknown entry",
        lambda sd: sd["state"][0].__setitem__("bogus", torch.zeros(1)),
        "unexpected",
        r"'param_0_bogus_0'",
    ),
]


@pytest.mark.parametrize("cls", [O.Momentum, O.Adagrad], ids=["Momentum", "Adagrad"])
@pytest.mark.parametrize("case_id,mutate,field,text", BAD_ENTRIES, ids=[c[0] for c in BAD_ENTRIES])
def test_a_bad_torch_layout_entry_strict_and_not(cls, case_id, mutate, field, text):
    src_model, src, model, opt, sd, snap = _strict_load_is_refused(cls, mutate, text)
    report = opt.set_state_dict(sd, strict=False)
    assert len(getattr(report, field)) == 1 and re.search(text, getattr(report, field)[0])
    params, src_params = list(model.parameters()), list(src_model.parameters())
    for p, q in zip(params[1:], src_params[1:], strict=True):  # the others load as the file holds them
        assert all(torch.equal(v, opt.state[p][k]) for k, v in src.state[q].items())
    if field == "mismatched":  # param_0's record is unusable: it starts fresh
        assert not opt.state.get(params[0])
