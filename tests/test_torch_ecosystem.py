"""torchfluid's optimizers inside torch's ecosystem of "any optimizer" tools: LR schedulers
resumed from a checkpoint, ``torch.optim.swa_utils``, ``GradScaler``, ``torch.compile``.

Each table runs the same case on ``torch.optim.RMSprop`` (the reference behaviour) and on
torchfluid's optimizers, and checks they agree."""

import io

import pytest
import torch
from torch.optim import lr_scheduler as sched

import torchfluid.optim
import torchfluid.optimizer


def _params(seed=0):
    torch.manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(2))]


# optimizer factories: torch's RMSprop is the reference, the others must behave as it does
OPTIMIZERS = {
    "torch.optim.RMSprop": lambda ps, **kw: torch.optim.RMSprop(ps, **kw),
    "torchfluid.optim.RMSprop": lambda ps, **kw: torchfluid.optim.RMSprop(ps, **kw),
    "torchfluid.optim.RMSProp": lambda ps, **kw: torchfluid.optim.RMSProp(ps, **kw),
    "torchfluid.optim.RMSProp.preset": lambda ps, **kw: torchfluid.optim.RMSProp.preset("torch", ps, **kw),
    "torchfluid.optimizer.RMSProp.preset": lambda ps, **kw: torchfluid.optimizer.RMSProp.preset("torch", ps, **kw),
}

# schedulers and the group keys each one writes into param_groups
SCHEDULERS = {
    "StepLR": (lambda o, **kw: sched.StepLR(o, step_size=2, gamma=0.5, **kw), {"initial_lr"}),
    "OneCycleLR": (
        lambda o, **kw: sched.OneCycleLR(o, max_lr=0.1, total_steps=10, **kw),
        {"initial_lr", "max_lr", "min_lr", "base_momentum", "max_momentum"},
    ),
    "CyclicLR": (
        lambda o, **kw: sched.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2, **kw),
        {"initial_lr", "base_momentum", "max_momentum"},
    ),
    "SWALR": (lambda o, **kw: torch.optim.swa_utils.SWALR(o, swa_lr=0.05, anneal_epochs=2, **kw), {"swa_lr"}),
}


def _through_a_file(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


def _train_steps(opt, params, scheduler, n):
    for _ in range(n):
        opt.zero_grad()
        sum((p**2).sum() for p in params).backward()
        opt.step()
        scheduler.step()


@pytest.mark.parametrize("sched_name", SCHEDULERS)
@pytest.mark.parametrize("opt_name", OPTIMIZERS)
def test_scheduler_group_keys_survive_a_checkpoint_and_the_scheduler_resumes(opt_name, sched_name):
    """torch keeps every key of a saved param group on load (a scheduler's ``initial_lr``,
    ``max_lr``, ``swa_lr``, ...), so a scheduler rebuilt with ``last_epoch`` resumes."""
    make_opt = OPTIMIZERS[opt_name]
    make_sched, keys = SCHEDULERS[sched_name]
    params = _params()
    opt = make_opt(params, lr=0.05, momentum=0.5)
    scheduler = make_sched(opt)
    _train_steps(opt, params, scheduler, 3)
    saved_opt, saved_sched = _through_a_file(opt.state_dict()), _through_a_file(scheduler.state_dict())

    params2 = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt2 = make_opt(params2, lr=0.05, momentum=0.5)
    opt2.load_state_dict(saved_opt)
    for g, g2 in zip(opt.param_groups, opt2.param_groups, strict=True):
        for key in keys | {"lr", "momentum"}:
            assert key in g2, f"{key} lost on load"
            assert float(g2[key]) == float(g[key]), key
    make_sched(opt2, last_epoch=scheduler.last_epoch)  # resuming needs initial_lr in the groups

    # the usual resume (scheduler built, then both loaded) continues the same trajectory
    params3 = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt3 = make_opt(params3, lr=0.05, momentum=0.5)
    scheduler3 = make_sched(opt3)
    opt3.load_state_dict(saved_opt)
    scheduler3.load_state_dict(saved_sched)
    _train_steps(opt, params, scheduler, 2)
    _train_steps(opt3, params3, scheduler3, 2)
    assert [g["lr"] for g in opt3.param_groups] == [g["lr"] for g in opt.param_groups]
    for p, p3 in zip(params, params3, strict=True):
        torch.testing.assert_close(p3, p, rtol=0, atol=0)


@pytest.mark.parametrize(
    "opt_name", [n for n in OPTIMIZERS if n != "torch.optim.RMSprop" and not n.startswith("torchfluid.optim.RMSprop")]
)
def test_torch_options_a_paddle_optimizer_lacks_are_still_dropped_on_load(opt_name):
    """A torch.optim.RMSprop checkpoint carries ``weight_decay``, ``foreach``, ... : options the
    Paddle-convention optimizer's groups do not have (a group ``weight_decay`` of 0, torch's
    default, would replace its regularization); they are dropped, while a scheduler's keys are kept."""
    params = _params()
    ref = torch.optim.RMSprop(params, lr=0.05, alpha=0.9, momentum=0.5)
    sched.StepLR(ref, step_size=2)
    sd = ref.state_dict()
    opt = OPTIMIZERS[opt_name]([torch.nn.Parameter(p.detach().clone()) for p in params], lr=0.1, momentum=0.5)
    opt.load_state_dict(sd)
    group = opt.param_groups[0]
    for key in ("weight_decay", "foreach", "capturable", "differentiable", "alpha", "eps"):
        assert key not in group
    assert group["rho"] == 0.9 and group["initial_lr"] == 0.05 and group["lr"] == 0.05


# torch's ways of passing parameters and lr, each with what the optimizer must end up holding
TORCH_CALLS = {
    "params keyword": (lambda cls, ps: cls(params=ps, lr=0.1), 0.1),
    "tensor lr": (lambda cls, ps: cls(ps, lr=torch.tensor(0.1)), 0.1),
    "tensor lr in a group": (lambda cls, ps: cls([{"params": ps, "lr": torch.tensor(0.2)}], lr=0.1), 0.2),
}
TORCH_CALL_CLASSES = {
    "torch.optim.RMSprop": torch.optim.RMSprop,
    "torchfluid.optim.RMSprop": torchfluid.optim.RMSprop,
    "torchfluid.optim.RMSProp": torchfluid.optim.RMSProp,
    "torchfluid.optim.Momentum": torchfluid.optim.Momentum,
}


@pytest.mark.parametrize("call", TORCH_CALLS)
@pytest.mark.parametrize("cls_name", TORCH_CALL_CLASSES)
def test_torch_calls_and_tensor_lr_followed_in_place(cls_name, call):
    """torch.optim takes ``params=`` and a 1-element tensor ``lr`` (in the call or a group);
    torch's LR schedulers then change that tensor in place, and the next step uses the new
    value: the step with lr set to 0 in place leaves the parameters as they are."""
    make, lr = TORCH_CALLS[call]
    params = _params()
    opt = make(TORCH_CALL_CLASSES[cls_name], params)
    group_lr = opt.param_groups[0]["lr"]
    assert float(group_lr) == pytest.approx(lr)
    sum((p**2).sum() for p in params).backward()
    opt.step()
    moved = [p.detach().clone() for p in params]
    assert not torch.equal(moved[0], _params()[0])
    if isinstance(group_lr, torch.Tensor):
        group_lr.fill_(0.0)  # what torch's schedulers do to a tensor lr
    else:
        opt.param_groups[0]["lr"] = 0.0
    opt.step()
    for p, m in zip(params, moved, strict=True):
        torch.testing.assert_close(p.detach(), m, rtol=0, atol=0)


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.tensor([0.1, 0.2]), "lr as a tensor must have 1 element"),
        (torch.tensor(1), "lr as a tensor must have 1 element of a floating-point dtype"),
        (torch.tensor(-0.1), r"lr must be >= 0, got -0.1"),
        (torch.tensor(float("nan")), "lr must be"),
    ],
)
def test_bad_tensor_lr_in_a_group_is_refused_before_anything_changes(bad, message):
    params = _params()
    opt = torchfluid.optim.RMSProp(params, lr=0.1)
    with pytest.raises(ValueError, match=message):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(2))], "lr": bad})
    sum((p**2).sum() for p in params).backward()
    before = [p.detach().clone() for p in params]
    opt.param_groups[0]["lr"] = bad
    with pytest.raises(ValueError, match=message):
        opt.step()
    for p, b in zip(params, before, strict=True):
        assert torch.equal(p.detach(), b)


def _scaled_steps(make_opt, how, *, scaled, seed=0):
    """Three steps on a small model, through a GradScaler (``scaled``) or plainly (the
    control); with ``how == 'overflow'`` the second step overflows (the control skips it).
    Returns the model, each step's gradients as ``.grad`` holds them after the step, and
    the final loss scale."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    x, y = torch.randn(8, 4), torch.randn(8, 1)
    opt = make_opt(list(model.parameters()), lr=0.01, momentum=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1, enabled=scaled)
    seen = []
    for i in range(3):
        opt.zero_grad()
        scaler.scale(torch.nn.functional.mse_loss(model(x), y)).backward()
        overflow = how == "overflow" and i == 1
        if overflow and scaled:
            model[2].weight.grad[0, 0] = float("inf")
        if how == "unscale_ and clip":
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)
        if scaled or not overflow:
            scaler.step(opt)
            scaler.update()
        seen.append([p.grad.clone() for p in model.parameters()])
    return model, seen, scaler.get_scale()


@pytest.mark.parametrize("how", ["step", "unscale_ and clip", "overflow"])
@pytest.mark.parametrize("opt_name", OPTIMIZERS)
def test_grad_scaler_steps_and_leaves_unscaled_gradients_as_without_it(opt_name, how):
    """torch's GradScaler contract (its ``_run_scaling_case``): training through the scaler
    gives the parameters and, after ``scaler.step(opt)``, the ``.grad`` of training without
    it: the scaler divides float32 ``.grad`` in place (the optimizer does it inside the step
    only for float16/bfloat16 gradients, ``_step_supports_amp_scaling``); an overflowed step
    is skipped and the scale backs off. The scale is a power of two, so unscaling is exact."""
    control, control_seen, _ = _scaled_steps(OPTIMIZERS[opt_name], how, scaled=False)
    model, seen, scale = _scaled_steps(OPTIMIZERS[opt_name], how, scaled=True)
    assert scale == 2.0**10 * (2.0**2 * 0.5 if how == "overflow" else 2.0**3)
    for i, (grads, ref_grads) in enumerate(zip(seen, control_seen, strict=True)):
        if how == "overflow" and i == 1:
            continue  # skipped: torch's plain path unscaled them, its fused path leaves them scaled
        for g, r in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(g, r, rtol=1e-6, atol=1e-9)
    for p, r in zip(model.parameters(), control.parameters(), strict=True):
        torch.testing.assert_close(p, r, rtol=1e-6, atol=1e-7)


_COMPILED_STEP = """
import sys, warnings
import torch
import torchfluid.optim, torchfluid.optimizer

warnings.simplefilter("ignore")
make = {
    "torchfluid.optim.RMSprop": lambda ps: torchfluid.optim.RMSprop(ps, lr=0.01, momentum=0.5),
    "torchfluid.optim.RMSProp": lambda ps: torchfluid.optim.RMSProp(ps, lr=0.01, momentum=0.5),
    "torchfluid.optimizer.RMSProp": lambda ps: torchfluid.optimizer.RMSProp(0.01, momentum=0.5, parameters=ps),
}[sys.argv[1]]

def run(compiled):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = make(list(model.parameters()))

    def train_step(x, y):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    step = torch.compile(train_step, backend="aot_eager") if compiled else train_step
    torch.manual_seed(1)
    for _ in range(3):
        step(torch.randn(4, 6), torch.randn(4, 1))
    return [p.detach() for p in model.parameters()]

same = all(torch.equal(a, b) for a, b in zip(run(False), run(True), strict=True))
print("same" if same else "different")
"""


@pytest.mark.parametrize(
    "opt_name", ["torchfluid.optim.RMSprop", "torchfluid.optim.RMSProp", "torchfluid.optimizer.RMSProp"]
)
def test_torch_compile_of_a_training_step_with_the_update_gives_eager_numbers(opt_name):
    """``torch.compile`` (fullgraph=False) of zero_grad + forward + backward + ``opt.step()``:
    the update is a graph break and runs eagerly (the fused kernel reads raw memory, which
    traced tensors do not have), so the parameters equal eager training bit for bit. Run in
    a subprocess: a traced fused update would crash the interpreter."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-c", _COMPILED_STEP, opt_name], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("same")


GROUP_LIST_CLASSES = {
    "torch.optim.RMSprop": lambda groups: torch.optim.RMSprop(groups, lr=0.01),
    "torchfluid.optim.RMSprop": lambda groups: torchfluid.optim.RMSprop(groups, lr=0.01),
    "torchfluid.optim.RMSProp": lambda groups: torchfluid.optim.RMSProp(groups, lr=0.01),
    "torchfluid.optimizer.RMSProp": lambda groups: torchfluid.optimizer.RMSProp(0.01, parameters=groups),
}


@pytest.mark.parametrize("cls_name", GROUP_LIST_CLASSES)
def test_empty_param_groups_are_kept_in_place_as_torch_keeps_them(cls_name):
    """Param-group dicts may have no parameters (ZeroRedundancyOptimizer builds each rank's
    optimizer from its shard's groups, and a rank may get none): they keep their position,
    so group i's hyper-parameters still apply to group i. An empty flat list is refused."""
    make = GROUP_LIST_CLASSES[cls_name]
    assert len(make([{"params": []}]).param_groups) == 1  # nothing to optimize on this rank: accepted
    make([{"params": []}]).step()
    params, ref_params = _params(), _params()
    opt = make([{"params": [], "lr": 0.5}, {"params": params, "lr": 0.2}])
    ref = make([{"params": ref_params, "lr": 0.2}])
    assert len(opt.param_groups) == 2 and opt.param_groups[0]["params"] == []
    for ps, o in ((params, opt), (ref_params, ref)):
        sum((p**2).sum() for p in ps).backward()
        o.step()
    for p, r in zip(params, ref_params, strict=True):
        assert torch.equal(p, r)
    with pytest.raises(ValueError, match="empty parameter list"):
        make([])


@pytest.mark.parametrize("cls_name", GROUP_LIST_CLASSES)
def test_an_optimizer_is_freed_without_the_garbage_collector(cls_name):
    """torch's optimizers hold no reference cycle: dropping the last reference (even with a
    scheduler attached and after steps) frees the optimizer at once, with gc disabled."""
    import gc
    import weakref

    def run():
        params = _params()
        opt = GROUP_LIST_CLASSES[cls_name]([{"params": params}])
        scheduler = sched.LambdaLR(opt, lambda epoch: 1.0)
        for _ in range(2):
            sum((p**2).sum() for p in params).backward()
            opt.step()
            scheduler.step()
        others = [
            r for r in gc.get_referrers(opt) if r is not scheduler and r is not getattr(scheduler, "__dict__", None)
        ]
        assert others == [], "nothing but the caller and its scheduler may refer to the optimizer"
        return weakref.ref(opt), weakref.ref(scheduler)

    gc.disable()
    try:
        refs = run()
        assert all(ref() is None for ref in refs)
    finally:
        gc.enable()
