"""torch's ``betas`` in the Adam family's param groups: torchfluid.optim's classes keep it in
every group (and in ``defaults``) equal to ``beta1``/``beta2``, so that torch's tools that
write it (``OneCycleLR`` and ``CyclicLR`` with ``cycle_momentum``, ``ZeroRedundancyOptimizer``'s
group sync) drive the update; a group given or written with ``betas`` sets ``beta1``/``beta2``
in every class; both written with other values is refused, naming them."""

import copy

import pytest
import torch

import torchfluid.optim as O
import torchfluid.optimizer as F

TORCH_CLASSES = [O.Adam, O.AdamW, O.Adamax, O.Lamb]


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def _loss(model, seed):
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(seed))
    return model(x).pow(2).mean()


SCHEDULERS = {
    "OneCycleLR": lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=12),
    "CyclicLR": lambda opt: torch.optim.lr_scheduler.CyclicLR(
        opt, base_lr=0.001, max_lr=0.02, step_size_up=3, base_momentum=0.8, max_momentum=0.95
    ),
}


@pytest.mark.parametrize("schedule", list(SCHEDULERS))
@pytest.mark.parametrize("cls", TORCH_CLASSES, ids=lambda c: c.__name__)
def test_a_schedulers_betas_drive_the_update(cls, schedule):
    """The run under the scheduler equals, bit for bit, a twin whose beta1 and lr are set by
    hand to what the scheduler wrote before each step (Paddle's powers then multiply the
    betas each update used)."""
    model, twin_model = _model(), _model()
    opt = cls(model.parameters(), lr=0.01)
    twin = cls(twin_model.parameters(), lr=0.01)
    assert opt.defaults["betas"] == (opt.defaults["beta1"], opt.defaults["beta2"])
    sched = SCHEDULERS[schedule](opt)
    seen = set()
    for seed in range(12):
        betas, lr = opt.param_groups[0]["betas"], opt.param_groups[0]["lr"]
        seen.add(betas[0])
        twin.param_groups[0]["beta1"], twin.param_groups[0]["lr"] = betas[0], lr
        for m, o in ((model, opt), (twin_model, twin)):
            o.zero_grad()
            _loss(m, seed).backward()
            o.step()
        assert opt.param_groups[0]["beta1"] == betas[0]  # the update read the scheduler's betas
        sched.step()
    assert len(seen) > 3  # the momentum did cycle
    for a, b in zip(model.parameters(), twin_model.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "cls", [*TORCH_CLASSES, F.Adam, F.AdamW, F.Adamax, F.Lamb], ids=lambda c: c.__module__[11:16] + c.__name__
)
def test_add_param_group_reads_torchs_betas(cls):
    a, b = torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(3))
    opt = cls([a], lr=0.01) if cls in TORCH_CLASSES else cls(0.01, parameters=[a])
    opt.add_param_group({"params": [b], "betas": (0.8, 0.95)})
    group = opt.param_groups[1]
    assert (group["beta1"], group["beta2"]) == (0.8, 0.95)
    assert ("betas" in opt.param_groups[0]) == (cls in TORCH_CLASSES)  # Paddle's groups keep beta1/beta2 only
    c = torch.nn.Parameter(torch.randn(3))
    with pytest.raises(ValueError, match=r"sets betas=\(0.8, 0.95\) and beta1=0.7; they mean the same: set one"):
        opt.add_param_group({"params": [c], "betas": (0.8, 0.95), "beta1": 0.7})
    with pytest.raises(ValueError, match=r"betas=\(0.8,\); allowed: a pair \(beta1, beta2\)"):
        opt.add_param_group({"params": [c], "betas": (0.8,)})
    assert len(opt.param_groups) == 2
    opt.add_param_group({"params": [c], "betas": (0.8, 0.95), "beta1": 0.8})  # the same value: no clash
    assert (opt.param_groups[2]["beta1"], opt.param_groups[2]["beta2"]) == (0.8, 0.95)


@pytest.mark.parametrize("cls", TORCH_CLASSES, ids=lambda c: c.__name__)
def test_betas_and_beta1_written_into_a_group_follow_each_other(cls):
    model = _model()
    opt = cls(model.parameters(), lr=0.01)
    group = opt.param_groups[0]
    group["beta1"] = 0.7  # Paddle's key written: torch's pair follows at the next step
    _loss(model, 0).backward()
    opt.step()
    assert group["betas"] == (0.7, group["beta2"])
    group["betas"] = (0.6, 0.99)  # torch's pair written (a scheduler, ZeRO's sync): beta1/beta2 follow
    opt.step()
    assert (group["beta1"], group["beta2"]) == (0.6, 0.99)
    snapshot = copy.deepcopy((list(model.parameters()), opt.state_dict()))
    group["betas"], group["beta1"] = (0.5, 0.99), 0.4
    with pytest.raises(ValueError, match=r"param_groups\[0\]: the param group sets betas=\(0.5, 0.99\) and beta1=0.4"):
        opt.step()
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), snapshot[0], strict=True))
    group["beta1"], group["betas"] = 0.6, (1.5, 0.99)  # the pair alone, out of range
    with pytest.raises(ValueError, match=r"beta1 must be in \[0, 1\), got 1.5"):
        opt.step()


def test_a_torch_checkpoints_betas_stay_in_the_group_and_a_paddle_ones_are_followed():
    model = _model()
    ref = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.9))
    _loss(model, 0).backward()
    ref.step()
    opt = O.Adam(model.parameters(), lr=0.01)
    opt.load_state_dict(copy.deepcopy(ref.state_dict()))
    group = opt.param_groups[0]
    assert group["betas"] == (0.8, 0.9) and (group["beta1"], group["beta2"]) == (0.8, 0.9)
    assert opt.state_dict()["param_groups"][0]["betas"] == (0.8, 0.9)
    paddle = F.Adam(0.01, parameters=model.parameters())
    paddle.param_groups[0].update(beta1=0.7, beta2=0.95)  # edited: Paddle's layout then saves the groups
    paddle.step()
    sd = paddle.paddle_state_dict()
    assert "betas" not in sd["param_groups"][0]  # Paddle's layout: beta1/beta2 only
    opt.load_state_dict(sd)
    assert group["betas"] == (0.7, 0.95)


def test_a_step_with_no_gradients_checks_nothing_and_the_next_update_refuses_bad_values():
    """As torch's: ``step()`` with no gradient changes nothing, so it checks nothing (torch's
    scheduler tests step a momentum-less loop with a ``beta1`` of 22); the first step that
    updates checks what was written, by name, before anything changes."""
    model = _model()
    opt = O.Adam(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=25, total_steps=10, base_momentum=1, max_momentum=22)
    for _ in range(3):
        opt.step()  # no gradients
        sched.step()
    before = [p.detach().clone() for p in model.parameters()]
    _loss(model, 0).backward()
    with pytest.raises(ValueError, match=r"param_groups\[0\]: beta1 must be in \[0, 1\), got"):
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), before, strict=True)) and not opt.state
