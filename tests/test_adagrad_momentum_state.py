"""Adagrad's and Momentum's state resumes bit for bit: static persistables loaded into a fresh
scope or into an eager optimizer, and eager state dicts; a bad state dict, or a bad value
written into param_groups, changes nothing."""

import copy

import numpy as np
import pytest
import torch

import torchfluid as fluid
import torchfluid.optimizer as F

from .optimizer_steps import F32, SHAPES, STEPS, Steps, static_program

DATA = Steps(7, [[1, 4, 1], [0, 5], [4, 4, 4, 2], [3]])

# (id, optimizer class, keyword arguments, its accumulator)
RESUMABLE = [
    ("adagrad", F.Adagrad, {"learning_rate": 0.1, "initial_accumulator_value": 0.2}, "moment"),
    ("momentum", F.Momentum, {"learning_rate": 0.1, "momentum": 0.9, "use_nesterov": True}, "velocity"),
]
IDS = [r[0] for r in RESUMABLE]


@pytest.mark.parametrize("case,cls,kwargs,acc", RESUMABLE, ids=IDS)
def test_static_state_loads_into_eager_and_continues_identically(case, cls, kwargs, acc):
    """The static state variables carry Paddle's names, so the scope's values load into an
    eager optimizer (set_dict) and both continue with the same bits."""
    main, start, loss = static_program(lambda: cls(**kwargs))
    scope, exe = fluid.Scope(), fluid.Executor()
    exe.run(start, scope=scope)
    xs = np.random.default_rng(3).normal(size=(4, 5, 3)).astype(F32)
    for i in range(2):
        exe.run(main, feed={"x": xs[i]}, fetch_list=[loss], scope=scope)
    names = ("fc_0.w_0", "fc_0.b_0")
    w, b = (torch.nn.Parameter(scope.value(n).detach().clone()) for n in names)
    opt = cls(parameters=[(names[0], w), (names[1], b)], **kwargs)
    opt.set_dict({f"{n}_{acc}_0": scope.value(f"{n}_{acc}_0").clone() for n in names})
    for i in range(2, 4):
        exe.run(main, feed={"x": xs[i]}, fetch_list=[loss], scope=scope)
        loss_eager = (torch.from_numpy(xs[i]) @ w + b).mean()
        loss_eager.backward()
        opt.step()
        opt.clear_grad()
    for n, t in zip(names, (w, b), strict=True):
        torch.testing.assert_close(t.detach(), scope.value(n), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case,cls,kwargs,acc", RESUMABLE, ids=IDS)
def test_static_save_and_load_persistables_resume_bit_for_bit(tmp_path, case, cls, kwargs, acc):
    """The state variables are persistables: a program saved after two runs and loaded into a
    fresh scope continues exactly as the uninterrupted one."""
    main, start, loss = static_program(lambda: cls(**kwargs))
    xs = np.random.default_rng(5).normal(size=(4, 5, 3)).astype(F32)
    exe = fluid.Executor()
    first, second = fluid.Scope(), fluid.Scope()
    with fluid.scope_guard(first):
        exe.run(start)
        for i in range(2):
            exe.run(main, feed={"x": xs[i]}, fetch_list=[loss])
        fluid.io.save_persistables(exe, str(tmp_path), main)
        assert (tmp_path / f"fc_0.w_0_{acc}_0").is_file()
        want = [exe.run(main, feed={"x": xs[i]}, fetch_list=[loss])[0] for i in range(2, 4)]
    with fluid.scope_guard(second):
        exe.run(start)
        fluid.io.load_persistables(exe, str(tmp_path), main)
        got = [exe.run(main, feed={"x": xs[i]}, fetch_list=[loss])[0] for i in range(2, 4)]
    np.testing.assert_array_equal(np.array(got), np.array(want))
    for n in ("fc_0.w_0", f"fc_0.w_0_{acc}_0", f"fc_0.b_0_{acc}_0"):
        assert torch.equal(first.value(n), second.value(n)), n


@pytest.mark.parametrize("name", [None, "opt"])
@pytest.mark.parametrize("case,cls,kwargs,acc", RESUMABLE, ids=IDS)
def test_checkpoint_round_trip_continues_bit_for_bit(case, cls, kwargs, acc, name):
    kwargs = dict(kwargs, name=name, grad_clip=fluid.ClipGradByNorm(0.5))
    params, opt = DATA.train(cls, kwargs, True, {}, steps=range(2))
    sd = copy.deepcopy(opt.state_dict())  # (state_dict holds the live tensors)
    prefix = f"{name}_" if name else ""
    assert set(sd) == {f"{prefix}{n}_{acc}_0" for n in SHAPES}
    saved_params = {n: t.detach().clone() for n, t in params.items()}
    full, _ = DATA.train(cls, kwargs, True, {}, steps=range(2, STEPS), params=params, opt=opt)
    fresh = {n: torch.nn.Parameter(v) for n, v in saved_params.items()}
    opt2 = cls(parameters=list(fresh.items()), **kwargs)
    assert opt2.set_dict(sd).ok
    resumed, _ = DATA.train(cls, kwargs, True, {}, steps=range(2, STEPS), params=fresh, opt=opt2)
    for n in SHAPES:
        assert torch.equal(resumed[n], full[n])


@pytest.mark.parametrize("case,cls,kwargs,acc", RESUMABLE, ids=IDS)
def test_a_bad_state_dict_changes_nothing(case, cls, kwargs, acc):
    params, opt = DATA.train(cls, kwargs, False, {}, steps=range(1))
    before = copy.deepcopy(opt.state_dict())
    bad = {**before, f"w_{acc}_0": torch.zeros(2, 2)}
    with pytest.raises(ValueError, match=rf"w_{acc}_0: expected shape \[5, 3\] float32, got shape \[2, 2\]"):
        opt.set_dict(bad)
    for k, v in before.items():
        assert torch.equal(opt.state_dict()[k], v)


# (optimizer class, its keyword arguments, an edit of param_groups[0], the error it gives at step())
BAD_EDITS = [
    (F.Adagrad, {}, {"epsilon": 0.0}, r"param_groups\[0\]: epsilon must be > 0, got 0.0"),
    (F.Adagrad, {}, {"initial_accumulator_value": -1.0}, r"param_groups\[0\]: initial_accumulator_value must be >= 0"),
    (F.Momentum, {"momentum": 0.9}, {"momentum": -1.0}, r"param_groups\[0\]: momentum must be >= 0, got -1.0"),
    (
        F.Momentum,
        {"momentum": 0.9},
        {"use_nesterov": "yes"},
        r"param_groups\[0\]: use_nesterov must be True or False, got 'yes'",
    ),
]


@pytest.mark.parametrize("cls,kwargs,edit,match", BAD_EDITS)
def test_edited_groups_are_checked_before_anything_changes(cls, kwargs, edit, match):
    params, opt = DATA.train(cls, dict(learning_rate=0.1, **kwargs), False, {}, steps=range(1))
    before = {n: t.detach().clone() for n, t in params.items()}
    state = copy.deepcopy(opt.state_dict())
    opt.param_groups[0].update(edit)
    for n, t in params.items():
        t.grad = DATA.grad(n, 1, False)
    with pytest.raises(ValueError, match=match):
        opt.step()
    for n, t in params.items():
        assert torch.equal(t.detach(), before[n])
    for k, v in state.items():
        assert torch.equal(opt.state_dict()[k], v)
