"""torch.optim.SGD's momentum options and torch.optim.Adagrad's lr_decay, against torch itself.

``SGD(momentum, dampening, nesterov)`` and ``Adagrad(lr_decay)`` are torch's maths on
torchfluid's pipeline (clip, regularization, schedules, checkpoints): whole training loops
must follow torch's to float32 rounding, checkpoints from torch must resume as torch, and
torch's calls (``torchfluid.optim``) must take torch's defaults and raise torch's errors.
"""

import copy

import pytest
import torch

import torchfluid.optim as O
from torchfluid.optimizer import SGD, Adagrad


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _batch(i):
    g = torch.Generator().manual_seed(100 + i)
    return torch.randn(5, 6, generator=g), torch.randn(5, 3, generator=g)


def _steps(model, opt, steps):
    for i in steps:
        x, y = _batch(i)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


# (id, torch.optim.SGD keyword arguments): the same call on both classes
SGD_CALLS = [
    ("plain", {"lr": 0.1}),
    ("default_lr", {}),
    ("momentum", {"lr": 0.1, "momentum": 0.9}),
    ("dampening", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5}),
    ("nesterov_wd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("dampening_wd_maximize", {"lr": 0.05, "momentum": 0.5, "dampening": 0.25, "weight_decay": 0.1, "maximize": True}),
    ("momentum_fused_false", {"lr": 0.1, "momentum": 0.9, "fused": False}),
]


@pytest.mark.parametrize("kwargs", [k for _, k in SGD_CALLS], ids=[i for i, _ in SGD_CALLS])
def test_torchfluid_optim_sgd_trains_as_torch_sgd(kwargs):
    ours_model, theirs_model = _mlp(), _mlp()
    ours = O.SGD(ours_model.parameters(), **kwargs)
    theirs = torch.optim.SGD(theirs_model.parameters(), **{k: v for k, v in kwargs.items() if k != "fused"})
    _steps(ours_model, ours, range(12))
    _steps(theirs_model, theirs, range(12))
    torch.testing.assert_close(_flat(ours_model), _flat(theirs_model), rtol=1e-5, atol=1e-6)
    if kwargs.get("momentum", 0) == 0:
        assert len(ours.state) == 0 == len(theirs.state)  # torch keeps no state without momentum
    else:
        for p, q in zip(ours_model.parameters(), theirs_model.parameters(), strict=True):
            torch.testing.assert_close(ours.state[p]["velocity"], theirs.state[q]["momentum_buffer"])


def test_param_groups_with_their_own_momentum_options_train_as_torch():
    ours_model, theirs_model = _mlp(), _mlp()

    def groups(model):
        return [
            {"params": model[0].parameters(), "momentum": 0.9, "dampening": 0.5},
            {"params": model[2].parameters(), "momentum": 0.8, "nesterov": True},
        ]

    ours = O.SGD(groups(ours_model), lr=0.05)
    theirs = torch.optim.SGD(groups(theirs_model), lr=0.05)
    _steps(ours_model, ours, range(5))
    _steps(theirs_model, theirs, range(5))
    for opt in (ours, theirs):  # edits as torch users make them: momentum on, then dampening on
        opt.param_groups[1]["nesterov"] = False
        opt.param_groups[1]["dampening"] = 0.25
    _steps(ours_model, ours, range(5, 10))
    _steps(theirs_model, theirs, range(5, 10))
    torch.testing.assert_close(_flat(ours_model), _flat(theirs_model), rtol=1e-5, atol=1e-6)


def test_momentum_switched_on_mid_run_starts_the_velocity_as_torch():
    ours_model, theirs_model = _mlp(), _mlp()
    ours = O.SGD(ours_model.parameters(), lr=0.1)
    theirs = torch.optim.SGD(theirs_model.parameters(), lr=0.1)
    _steps(ours_model, ours, range(3))
    _steps(theirs_model, theirs, range(3))
    for opt in (ours, theirs):
        opt.param_groups[0]["momentum"] = 0.9
        opt.param_groups[0]["dampening"] = 0.5
    _steps(ours_model, ours, range(3, 9))
    _steps(theirs_model, theirs, range(3, 9))
    torch.testing.assert_close(_flat(ours_model), _flat(theirs_model), rtol=1e-5, atol=1e-6)


def test_a_torch_sgd_checkpoint_with_dampening_resumes_as_torch():
    """torch keeps no step count: a loaded velocity has started, so the next step is damped."""
    theirs_model = _mlp()
    theirs = torch.optim.SGD(theirs_model.parameters(), lr=0.1, momentum=0.9, dampening=0.5)
    _steps(theirs_model, theirs, range(3))
    ours_model = _mlp()
    ours_model.load_state_dict(theirs_model.state_dict())
    ours = O.SGD(ours_model.parameters(), lr=0.1, momentum=0.9, dampening=0.5)
    ours.load_state_dict(theirs.state_dict())
    assert all(float(ours.state[p]["step"]) == 1.0 for p in ours_model.parameters())
    _steps(theirs_model, theirs, range(3, 8))
    _steps(ours_model, ours, range(3, 8))
    torch.testing.assert_close(_flat(ours_model), _flat(theirs_model), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layout", ["paddle", "torch"])
@pytest.mark.parametrize("at_step", [0, 1, 3])
def test_a_dampened_sgd_checkpoint_resumes_bit_exactly(layout, at_step):
    """Saved before the first step (step 0: the next update is undamped), after it, and later."""
    model, twin = _mlp(), _mlp()
    opt = SGD(0.1, parameters=model.parameters(), momentum=0.9, dampening=0.5)
    _steps(model, opt, range(at_step))
    twin.load_state_dict(model.state_dict())
    saved = copy.deepcopy(opt.state_dict() if layout == "paddle" else opt.torch_state_dict())
    resumed = SGD(0.1, parameters=twin.parameters(), momentum=0.9, dampening=0.5)
    resumed.set_state_dict(saved)
    _steps(model, opt, range(at_step, at_step + 4))
    _steps(twin, resumed, range(at_step, at_step + 4))
    assert torch.equal(_flat(model), _flat(twin))
    if at_step:
        assert set(opt.state_dict()) == {
            f"{n}_{acc}_0" for n in opt.param_names.values() for acc in ("velocity", "step")
        }


def test_sgd_momentum_errors_name_the_argument_and_torch_calls_use_torchs_words():
    p = [torch.nn.Parameter(torch.ones(2))]
    with pytest.raises(ValueError, match=r"^momentum must be >= 0, got -0\.5$"):
        SGD(0.1, parameters=p, momentum=-0.5)
    with pytest.raises(ValueError, match=r"^Invalid momentum value: -0\.5 \(momentum must be >= 0, got -0\.5\)$"):
        O.SGD(p, lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match=r"^nesterov=True needs momentum > 0 and dampening=0"):
        SGD(0.1, parameters=p, nesterov=True)
    with pytest.raises(ValueError, match=r"^nesterov must be True or False, got 1$"):
        SGD(0.1, parameters=p, momentum=0.9, nesterov=1)
    with pytest.raises(ValueError, match=r"has capturable=True; allowed: False"):
        O.SGD(p, lr=0.1, capturable=True)


@pytest.mark.parametrize("resume_at", [None, 2], ids=["straight", "resumed from torch"])
def test_dampening_runs_on_the_fused_kernel_bit_for_bit(resume_at):
    """The flat group keeps each member's count: first updates (undamped) and later ones go
    to the kernel as two calls, the reference path's numbers bit for bit, also for a member
    that skips a step and after a torch checkpoint (no counts: started)."""
    runs = []
    for fused in (True, False):
        model = _mlp()
        opt = O.SGD(model.parameters(), lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01, fused=fused)
        for i in range(6):
            x, y = _batch(i)
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            if i == 0:
                model[2].bias.grad = None  # its first update comes at step 1
            opt.step()
            if i == resume_at:
                torch_layout = opt.torch_state_dict()
                for entry in torch_layout["state"].values():
                    del entry["step"]  # as torch.optim.SGD saves it
                opt = O.SGD(model.parameters(), lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01, fused=fused)
                opt.load_state_dict(torch_layout)
        if fused:
            assert len(opt._fused.flat) == 1
        runs.append((_flat(model), opt.paddle_state_dict()))
    assert torch.equal(runs[0][0], runs[1][0])
    assert all(torch.equal(runs[0][1][k], v) for k, v in runs[1][1].items() if isinstance(v, torch.Tensor))


def test_torch_calls_without_lr_take_torchs_default_where_paddle_has_none():
    def p():
        return [torch.nn.Parameter(torch.ones(2))]

    assert O.SGD(p()).param_groups[0]["lr"] == 1e-3
    assert O.Adagrad(p()).param_groups[0]["lr"] == 1e-2
    assert O.RMSProp(p()).param_groups[0]["lr"] == 1e-2
    assert O.Adamax(p()).param_groups[0]["lr"] == 1e-3  # Paddle's default stays
    with pytest.raises(TypeError, match="params argument given to the optimizer should be an iterable"):
        O.SGD(torch.nn.Parameter(torch.ones(2)))


# (id, torch.optim.Adagrad keyword arguments)
ADAGRAD_CALLS = [
    ("lr_decay", {"lr": 0.1, "lr_decay": 0.5, "eps": 1e-10}),
    ("lr_decay_wd_initial", {"lr": 0.1, "lr_decay": 0.1, "weight_decay": 0.1, "initial_accumulator_value": 0.2}),
    ("lr_decay_maximize", {"lr": 0.05, "lr_decay": 0.3, "maximize": True, "eps": 1e-10}),
]


@pytest.mark.parametrize("kwargs", [k for _, k in ADAGRAD_CALLS], ids=[i for i, _ in ADAGRAD_CALLS])
def test_torchfluid_optim_adagrad_lr_decay_trains_as_torch(kwargs):
    ours_model, theirs_model = _mlp(), _mlp()
    ours = O.Adagrad(ours_model.parameters(), **kwargs)
    theirs = torch.optim.Adagrad(theirs_model.parameters(), **{"eps": 1e-6, **kwargs})  # Paddle's default eps
    _steps(ours_model, ours, range(12))
    _steps(theirs_model, theirs, range(12))
    torch.testing.assert_close(_flat(ours_model), _flat(theirs_model), rtol=1e-5, atol=1e-6)
    for p, q in zip(ours_model.parameters(), theirs_model.parameters(), strict=True):
        assert torch.equal(ours.state[p]["step"], theirs.state[q]["step"])


def test_adagrad_lr_decay_per_group_and_switched_on_mid_run():
    ours_model, theirs_model = _mlp(), _mlp()

    def groups(model):
        return [{"params": model[0].parameters(), "lr_decay": 0.5}, {"params": model[2].parameters()}]

    ours = O.Adagrad(groups(ours_model), lr=0.1, eps=1e-10)
    theirs = torch.optim.Adagrad(groups(theirs_model), lr=0.1, eps=1e-10)
    _steps(ours_model, ours, range(4))
    _steps(theirs_model, theirs, range(4))
    torch.testing.assert_close(_flat(ours_model), _flat(theirs_model), rtol=1e-5, atol=1e-6)
    assert all("step" not in ours.state[p] for p in ours_model[2].parameters())  # no count without lr_decay
    ours.param_groups[1]["lr_decay"] = 0.25
    _steps(ours_model, ours, range(4, 6))
    # torch counts every step of every group; torchfluid counts from the first update with lr_decay
    for p in ours_model[2].parameters():
        assert float(ours.state[p]["step"]) == 2.0
    for p in ours_model[0].parameters():
        assert float(ours.state[p]["step"]) == 6.0


def test_adagrad_lr_decay_runs_on_the_fused_kernel_bit_for_bit():
    """The flat group keeps each member's count (views of one buffer, as the state records)
    and hands the kernel each member's decayed rate: the reference path's numbers, bit for
    bit, with a member that skips a step (no gradient: its count stays)."""
    runs = []
    for fused in (True, False):
        model = _mlp()
        opt = O.Adagrad(model.parameters(), lr=0.1, lr_decay=0.5, weight_decay=0.01, fused=fused)
        for i in range(6):
            x, y = _batch(i)
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            if i == 2:
                model[2].bias.grad = None
            opt.step()
        runs.append((_flat(model), opt.paddle_state_dict()))
        if fused:
            (fg,) = opt._fused.flat.values()
            views = zip(fg.params, fg.steps, strict=True)
            assert all(opt.state[p]["step"].data_ptr() == v.data_ptr() for p, v in views)
    assert torch.equal(runs[0][0], runs[1][0])
    assert runs[0][1].keys() == runs[1][1].keys()
    assert all(torch.equal(runs[0][1][k], v) for k, v in runs[1][1].items() if isinstance(v, torch.Tensor))
    assert float(runs[0][1]["param_3_step_0"]) == 5.0 and float(runs[0][1]["param_2_step_0"]) == 6.0
    with pytest.raises(ValueError, match=r"^lr_decay must be >= 0, got -1\.0$"):
        Adagrad(0.1, parameters=[torch.nn.Parameter(torch.ones(3))], lr_decay=-1.0)


@pytest.mark.parametrize("tensor", [False, True], ids=["float", "tensor"])
@pytest.mark.parametrize(
    "make_scheduler",
    [
        lambda opt, t: torch.optim.lr_scheduler.CyclicLR(
            opt, base_lr=t(0.01), max_lr=t(0.1), step_size_up=3, base_momentum=t(0.8), max_momentum=t(0.9)
        ),
        lambda opt, t: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=t(0.1), total_steps=12),
    ],
    ids=["CyclicLR", "OneCycleLR"],
)
def test_schedulers_that_cycle_the_momentum_drive_sgd_as_torchs(make_scheduler, tensor):
    """torch's CyclicLR and OneCycleLR write ``momentum`` into the groups at every step (a
    tensor when they were given tensors): the velocity follows it as torch's does."""

    def t(x):
        return torch.tensor(x) if tensor else x

    runs = []
    for cls in (O.SGD, torch.optim.SGD):
        model = _mlp()
        opt = cls(model.parameters(), lr=t(0.01), momentum=t(0.9), weight_decay=0.01)
        sched = make_scheduler(opt, t)
        for i in range(12):
            _steps(model, opt, [i])
            sched.step()
        runs.append(_flat(model))
    torch.testing.assert_close(runs[0], runs[1], rtol=1e-5, atol=1e-6)


def test_a_tensor_momentum_is_checked_when_it_is_read():
    p = torch.nn.Parameter(torch.ones(3))
    momentum = torch.tensor(0.5)
    opt = O.SGD([p], lr=0.1, momentum=momentum)
    p.grad = torch.ones(3)
    opt.step()
    momentum.fill_(-1.0)  # changed in place after the check: refused at the update, before any change
    before = p.detach().clone()
    with pytest.raises(ValueError, match=r"momentum must be >= 0, got -1\.0 \(the value its tensor holds"):
        opt.step()
    assert torch.equal(p.detach(), before)
    with pytest.raises(ValueError, match=r"momentum must be a real number or a 1-element floating-point tensor"):
        O.SGD([p], lr=0.1, momentum=torch.tensor([0.5, 0.5]))


@pytest.mark.parametrize("named_from,named_to", [(False, True), (True, False), (False, False), (True, True)])
def test_torch_layout_names_only_given_names_and_loads_by_position_otherwise(named_from, named_to):
    """As torch: an optimizer built from unnamed parameters writes no ``param_names``, and a
    state dict loads by position into one whose names were made up (``param_<k>``); given
    names still match by name. The resumed run equals the uninterrupted one, bit for bit."""

    def params(model, named):
        return model.named_parameters() if named else model.parameters()

    model, twin = _mlp(), _mlp()
    opt = O.Adam(params(model, named_from), lr=0.01, fused=False)
    _steps(model, opt, range(3))
    twin.load_state_dict(model.state_dict())
    saved = copy.deepcopy(opt.state_dict())
    assert ("param_names" in saved["param_groups"][0]) == named_from
    resumed = O.Adam(params(twin, named_to), lr=0.01, fused=False)
    resumed.load_state_dict(saved)
    # an optimizer with made-up names takes the state dict's, as torch's does
    names = resumed.state_dict()["param_groups"][0].get("param_names")
    assert names == (["0.weight", "0.bias", "2.weight", "2.bias"] if named_from or named_to else None)
    _steps(model, opt, range(3, 6))
    _steps(twin, resumed, range(3, 6))
    assert torch.equal(_flat(model), _flat(twin))


def test_rename_params_renames_the_state_keys_and_refuses_clashes():
    model = _mlp()
    opt = SGD(0.1, parameters=model.parameters(), momentum=0.9)
    _steps(model, opt, range(2))
    before = opt.state_dict()
    with pytest.raises(ValueError, match=r"new name 'param_1' is not a unique non-empty str"):
        opt.rename_params({"param_0": "param_1"})
    with pytest.raises(ValueError, match=r"no parameter is named 'w'"):
        opt.rename_params({"w": "v"})
    assert opt.state_dict().keys() == before.keys()
    opt.rename_params({"param_0": "w", "param_1": "b"})
    assert set(opt.state_dict()) == {"w_velocity_0", "b_velocity_0", "param_2_velocity_0", "param_3_velocity_0"}
    assert opt.generated_names == {"param_2", "param_3"}
    _steps(model, opt, range(2, 3))  # the renamed state is used


def test_given_names_that_do_not_match_are_still_refused():
    model = _mlp()
    opt = O.Adam(model.named_parameters(), lr=0.01)
    _steps(model, opt, range(1))
    saved = opt.state_dict()
    saved["param_groups"][0]["param_names"] = [f"other.{n}" for n in saved["param_groups"][0]["param_names"]]
    fresh = O.Adam(model.named_parameters(), lr=0.01)
    with pytest.raises(ValueError, match=r"parameter names .* do not match"):
        fresh.load_state_dict(saved)


@pytest.mark.parametrize("cls", [O.SGD, O.RMSProp], ids=["SGD", "RMSProp"])
def test_a_cycled_tensor_momentum_gives_the_bits_of_the_same_floats(cls):
    """CyclicLR given tensors writes tensor momenta into the groups: read at each update,
    they give the same numbers as the float momenta of the same schedule."""
    runs = []
    for tensor in (True, False):

        def t(x, tensor=tensor):
            return torch.tensor(x, dtype=torch.float64) if tensor else x

        model = _mlp()
        opt = cls(model.parameters(), lr=0.01, momentum=t(0.9))
        sched = torch.optim.lr_scheduler.CyclicLR(
            opt, base_lr=0.01, max_lr=0.1, step_size_up=3, base_momentum=t(0.8), max_momentum=t(0.9)
        )
        for i in range(8):
            _steps(model, opt, [i])
            sched.step()
        assert isinstance(opt.param_groups[0]["momentum"], torch.Tensor) == tensor
        runs.append(_flat(model))
    assert torch.equal(runs[0], runs[1])
