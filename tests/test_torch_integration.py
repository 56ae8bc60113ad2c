"""torchfluid optimizers inside ordinary PyTorch training: torch LR schedulers, GradScaler,
checkpoint resume through torch.save (Lightning style), closures, and torchfluid schedules."""

import io

import pytest
import torch

import torchfluid as fluid
from torchfluid.dygraph.learning_rate_scheduler import PiecewiseDecay as FluidPiecewiseDecay
from torchfluid.optimizer import RMSProp
from torchfluid.optimizer.lr import PiecewiseDecay, StepDecay


def model_and_data(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x, y = torch.randn(32, 4), torch.randn(32, 1)
    return model, x, y


def train(model, opt, x, y, steps, sched=None, scaler=None):
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        if sched is not None:
            sched.step()
        losses.append(loss.item())
    return losses


def test_trains_a_torch_model_and_matches_torch_rmsprop_where_conventions_coincide():
    """momentum 0, rho=alpha, eps tiny relative to sqrt(ms) and the float64 hyper-parameters
    as given (``float32_attrs=False``; Paddle's are float32): Paddle and torch agree closely."""
    m1, x, y = model_and_data()
    m2, _, _ = model_and_data()
    m1, m2, x, y = m1.double(), m2.double(), x.double(), y.double()
    ours = RMSProp(0.01, rho=0.99, epsilon=1e-40, parameters=m1.parameters(), float32_attrs=False)
    ref = torch.optim.RMSprop(m2.parameters(), lr=0.01, alpha=0.99, eps=1e-20)
    l1 = train(m1, ours, x, y, 30)
    train(m2, ref, x, y, 30)
    assert l1[-1] < l1[0] * 0.8
    for a, b in zip(m1.parameters(), m2.parameters(), strict=False):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_torch_lr_scheduler_drives_param_groups():
    model, x, y = model_and_data()
    opt = RMSProp(0.1, parameters=model.parameters())
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(6):
        train(model, opt, x, y, 1)
        sched.step()
        lrs.append(opt.current_step_lr())
    assert lrs == pytest.approx([0.1, 0.05, 0.05, 0.025, 0.025, 0.0125])


def test_grad_scaler_unscales_and_skips_steps_with_inf():
    model, x, y = model_and_data()
    opt = RMSProp(0.01, parameters=model.parameters())
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    train(model, opt, x, y, 3, scaler=scaler)
    before = [p.detach().clone() for p in model.parameters()]
    state_before = {k: v.clone() for k, v in opt.state_dict().items() if torch.is_tensor(v)}
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y) * float("inf")
    scaler.scale(loss).backward()
    scaler.step(opt)  # inf grads: step skipped
    scaler.update()
    for p, b in zip(model.parameters(), before, strict=False):
        assert torch.equal(p, b)
    for k, v in state_before.items():
        assert torch.equal(opt.state_dict()[k], v)


def test_checkpoint_resume_through_torch_save_is_bit_exact():
    model, x, y = model_and_data()
    opt = RMSProp(0.01, momentum=0.9, centered=True, parameters=model.named_parameters())
    train(model, opt, x, y, 5)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    expected = train(model, opt, x, y, 5)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    model2, _, _ = model_and_data(seed=1)
    model2.load_state_dict(ckpt["model"])
    opt2 = RMSProp(0.01, momentum=0.9, centered=True, parameters=model2.named_parameters())
    opt2.load_state_dict(ckpt["opt"])
    assert train(model2, opt2, x, y, 5) == expected
    for a, b in zip(model.parameters(), model2.parameters(), strict=False):
        assert torch.equal(a, b)


def test_step_with_closure_returns_the_loss():
    model, x, y = model_and_data()
    opt = RMSProp(0.01, parameters=model.parameters())

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    first = opt.step(closure).item()
    for _ in range(10):
        last = opt.step(closure).item()
    assert last < first


def test_fluid_piecewise_decay_current_step_lr_sequence():
    """The page's example: current_step_lr after each of 12 minimize calls."""
    model, x, y = model_and_data()
    decay = FluidPiecewiseDecay([2, 4, 6, 8], [0.2, 0.4, 0.6, 0.8, 1.0], 0)
    opt = fluid.optimizer.Adam(decay, parameters=model.parameters())
    assert opt.current_step_lr() == pytest.approx(0.2)
    seen = []
    for _ in range(12):
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.minimize(loss)
        opt.clear_gradients()
        seen.append(opt.current_step_lr())
    assert seen == pytest.approx([0.2, 0.2, 0.4, 0.4, 0.6, 0.6, 0.8, 0.8, 1.0, 1.0, 1.0, 1.0])
    with pytest.raises(RuntimeError, match="set_lr cannot be used while a learning-rate schedule"):
        opt.set_lr(0.1)


def test_v2_scheduler_advances_only_on_its_own_step_and_is_saved():
    model, x, y = model_and_data()
    sched = PiecewiseDecay(boundaries=[2, 4], values=[0.1, 0.05, 0.01])
    opt = RMSProp(sched, parameters=model.parameters())
    got = []
    for _ in range(5):
        train(model, opt, x, y, 1)
        got.append(opt.get_lr())
        sched.step()
    assert got == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.01])
    sd = opt.state_dict()
    assert sd["LR_Scheduler"]["last_epoch"] == 5
    sched2 = PiecewiseDecay(boundaries=[2, 4], values=[0.1, 0.05, 0.01])
    opt2 = RMSProp(sched2, parameters=model.parameters())
    opt2.set_state_dict(sd)
    assert sched2.last_epoch == 5 and opt2.get_lr() == pytest.approx(0.01)
    # a constant-lr optimizer leaves the schedule's entry unused, as Paddle's set_state_dict does
    plain = RMSProp(0.1, parameters=model.parameters())
    report = plain.set_state_dict(sd)
    assert report.ok and report.ignored == ["LR_Scheduler (this optimizer has a constant learning rate)"]
    assert plain.get_lr() == 0.1
    assert all(torch.equal(plain.state_dict()[k], v) for k, v in sd.items() if isinstance(v, torch.Tensor))


def test_v2_step_decay_with_lr_applied_to_updates():
    p = torch.nn.Parameter(torch.zeros(3))
    sched = StepDecay(learning_rate=1.0, step_size=1, gamma=0.5)
    opt = fluid.optimizer.SGD(sched, parameters=[p])
    for lr in (1.0, 0.5, 0.25):
        before = p.detach().clone()
        p.grad = torch.ones(3)
        opt.step()
        torch.testing.assert_close(before - p.detach(), torch.full((3,), lr))
        sched.step()
