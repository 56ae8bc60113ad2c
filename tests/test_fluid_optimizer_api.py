"""The optimizer API as Paddle's own tests use it (fluid keywords and attributes)."""

import pytest
import torch

import torchfluid as fluid
from torchfluid.regularizer import L1Decay, L1DecayRegularizer, L2Decay, L2DecayRegularizer


@pytest.mark.parametrize(
    "cls,coeff,term",
    [
        (L2Decay, 0.5, lambda p: 0.5 * p),
        (L2DecayRegularizer, 0.25, lambda p: 0.25 * p),
        (L1Decay, 0.1, lambda p: 0.1 * torch.sign(p)),
        (L1DecayRegularizer, 2.0, lambda p: 2.0 * torch.sign(p)),
    ],
)
def test_regularization_coeff_keyword(cls, coeff, term):
    reg = cls(regularization_coeff=coeff)
    assert reg.coeff == coeff and reg == cls(coeff)
    p, g = torch.tensor([-2.0, 0.0, 3.0]), torch.tensor([1.0, 1.0, 1.0])
    torch.testing.assert_close(reg(p, g), g + term(p))


@pytest.mark.parametrize(
    "kwargs,exc,msg",
    [
        ({"coeff": 0.1, "regularization_coeff": 0.2}, TypeError, "not both"),
        ({"regularization_coeff": -1.0}, ValueError, "regularization_coeff"),
    ],
)
def test_regularization_coeff_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        fluid.regularizer.L2Decay(**kwargs)


def test_executor_sets_the_program_lr_from_its_scheduler():
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        lr = fluid.layers.create_global_var([1], 0.0, "float32", persistable=True, name="learning_rate_0")
        doubled = fluid.layers.scale(lr, 2.0)
    sched = fluid.optimizer.lr.StepDecay(learning_rate=0.5, step_size=2, gamma=0.1)
    main.lr_sheduler = sched  # Paddle's attribute name
    sched._var_name = lr.name
    exe = fluid.Executor()
    seen = []
    with fluid.scope_guard(fluid.Scope()):
        exe.run(startup)
        for _ in range(5):
            seen.append(float(exe.run(main, fetch_list=[doubled])[0][0]))
            sched.step()
        sched._var_name = "nope"
        with pytest.raises(ValueError, match="names learning-rate variable 'nope'"):
            exe.run(main, fetch_list=[doubled])
    torch.testing.assert_close(torch.tensor(seen), torch.tensor([1.0, 1.0, 0.1, 0.1, 0.01]))


# ---------------------------------------------------------------- optimizer attributes and lr API

import numpy as np  # noqa: E402


def _linear():
    return fluid.dygraph.Linear(3, 2)


def test_epsilon_zero_is_accepted_and_used():
    with fluid.dygraph.guard():
        fc = _linear()
        opt = fluid.optimizer.RMSProp(0.1, rho=0.9, epsilon=0.0, parameters=fc.parameters())
        w0 = fc.weight.numpy().copy()
        x = fluid.dygraph.to_variable(np.ones((4, 3), "float32"))
        fluid.layers.reduce_sum(fc(x)).backward()
        g = fc.weight.grad.numpy().copy()
        opt.step()
    ms = 0.1 * g * g  # mean square after one step from 0
    np.testing.assert_allclose(fc.weight.numpy(), w0 - 0.1 * g / np.sqrt(ms), rtol=1e-5)
    assert fluid.optimizer.RMSPropOptimizer(0.1, epsilon=0.0)._learning_rate == 0.1


def test_learning_rate_and_parameter_list_attributes():
    with fluid.dygraph.guard():
        a, b = _linear(), _linear()
        opt = fluid.optimizer.SGD(learning_rate=0.25, parameter_list=a.parameters() + b.parameters())
        assert opt._learning_rate == 0.25
        assert opt._parameter_list == a.parameters() + b.parameters()
        sched = fluid.optimizer.lr.ExponentialDecay(learning_rate=0.5, gamma=0.9)
        opt2 = fluid.optimizer.Adam(sched, parameters=a.parameters())
        assert opt2._learning_rate is sched
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()):
        lr = fluid.layers.create_global_var([1], 0.1, "float32", persistable=True)
        assert fluid.optimizer.SGD(learning_rate=lr)._learning_rate is lr


def test_set_lr_scheduler():
    with fluid.dygraph.guard():
        fc = _linear()
        opt = fluid.optimizer.SGD(learning_rate=0.1, parameters=fc.parameters())
        sched = fluid.optimizer.lr.StepDecay(learning_rate=0.4, step_size=1, gamma=0.5)
        opt.set_lr_scheduler(sched)
        assert opt._learning_rate is sched and opt.get_lr() == 0.4
        sched.step()
        assert opt.get_lr() == 0.2
        with pytest.raises(RuntimeError, match="set_lr cannot be used"):
            opt.set_lr(0.3)
        with pytest.raises(TypeError, match="needs a paddle.optimizer.lr.LRScheduler, got float"):
            opt.set_lr_scheduler(0.1)


def test_set_lr_with_a_variable():
    with fluid.dygraph.guard():
        fc = _linear()
        lr_var = fluid.layers.create_global_var(shape=[1], value=0.7, dtype="float32")
        v2 = fluid.optimizer.Adam(0.1, parameters=fc.parameters())
        with pytest.raises(TypeError, match="Paddle 2.x optimizers take no tensor"):
            v2.set_lr(lr_var)
        v2.set_lr(0.3)
        assert v2.get_lr() == 0.3
        fluid_opt = fluid.optimizer.Adam(0.1, parameter_list=fc.parameters())
        fluid_opt.set_lr(lr_var)  # fluid 1.x accepts a 1-element Variable
        assert fluid_opt.current_step_lr() == pytest.approx(0.7)


def test_2x_scheduler_in_static_mode_stepped_by_the_user():
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[2], dtype="float32")
        loss = fluid.layers.reduce_sum(fluid.layers.fc(x, 1, bias_attr=False))
        sched = fluid.optimizer.lr.MultiStepDecay(learning_rate=0.5, milestones=[1, 3], gamma=0.1)
        fluid.optimizer.SGD(learning_rate=sched).minimize(loss)
    exe = fluid.Executor()
    xv = np.array([[1.0, 2.0]], "float32")
    with fluid.scope_guard(fluid.Scope()):
        exe.run(startup)
        (w,) = exe.run(main, feed={"x": xv}, fetch_list=["fc_0.w_0"])  # one step at lr 0.5
        ws = [w]
        for _ in range(4):
            sched.step()
            ws.append(exe.run(main, feed={"x": xv}, fetch_list=["fc_0.w_0"])[0])
    steps = [float((ws[i] - ws[i + 1])[0, 0]) for i in range(4)]  # grad of w[0] is x[0] = 1
    np.testing.assert_allclose(steps, [0.05, 0.05, 0.005, 0.005], rtol=1e-5)


# ---------------------------------------------------------------- clipping (param, grad) pairs


def _static_pairs(need_clip_b=True):
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[4], dtype="float32")
        h = fluid.layers.fc(
            x, 3, param_attr=fluid.ParamAttr(name="w"), bias_attr=fluid.ParamAttr(name="b", need_clip=need_clip_b)
        )
        loss = fluid.layers.reduce_sum(fluid.layers.square(h))
        pg = fluid.backward.append_backward(loss)
    return main, startup, pg


def _grads(main, startup, names):
    exe = fluid.Executor()
    with fluid.scope_guard(fluid.Scope()):
        exe.run(startup)
        return exe.run(main, feed={"x": np.linspace(-1, 1, 8, dtype="float32").reshape(2, 4) * 3}, fetch_list=names)


@pytest.mark.parametrize(
    "clip,ref",
    [
        (
            fluid.clip.GradientClipByGlobalNorm(0.5),
            lambda gs, nc: [
                g * (0.5 / max(0.5, np.sqrt(sum((h * h).sum() for h, c in zip(gs, nc, strict=True) if c)))) if c else g
                for g, c in zip(gs, nc, strict=True)
            ],
        ),
        (
            fluid.clip.GradientClipByNorm(0.5),
            lambda gs, nc: [
                g * (0.5 / max(0.5, np.sqrt((g * g).sum()))) if c else g for g, c in zip(gs, nc, strict=True)
            ],
        ),
        (
            fluid.clip.GradientClipByValue(0.2, -0.1),
            lambda gs, nc: [np.clip(g, -0.1, 0.2) if c else g for g, c in zip(gs, nc, strict=True)],
        ),
    ],
    ids=["global_norm", "norm", "value"],
)
@pytest.mark.parametrize("need_clip_b", [True, False])
def test_clip_objects_on_static_pairs(clip, ref, need_clip_b):
    main, startup, pg = _static_pairs(need_clip_b)
    with fluid.program_guard(main, startup):
        clipped = clip(pg + [(pg[0][0], None)])  # a None grad is dropped
    assert [p.name for p, _ in clipped] == [p.name for p, _ in pg]
    assert (clipped[1][1] is pg[1][1]) is not need_clip_b  # need_clip=False: the grad variable itself
    types = [op.type for op in main.global_block().ops]
    assert "clip_gradients" not in types and types[-1] in ("elementwise_mul", "clip_by_norm", "clip")  # Paddle's graph
    out = _grads(main, startup, [g for _, g in pg] + [g for _, g in clipped])
    raw, got = out[:2], out[2:]
    for a, b in zip(got, ref(raw, [True, need_clip_b]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_set_gradient_clip_and_append_gradient_clip_ops():
    main, startup, pg = _static_pairs()
    with fluid.program_guard(main, startup):
        assert fluid.clip.append_gradient_clip_ops(pg) == pg  # no clip set: unchanged
        fluid.clip.set_gradient_clip(fluid.clip.GradientClipByGlobalNorm(0.5))
        clipped = fluid.clip.append_gradient_clip_ops(pg)
    out = _grads(main, startup, [g for _, g in pg] + [g for _, g in clipped])
    raw, got = out[:2], out[2:]
    scale = 0.5 / max(0.5, np.sqrt(sum((g * g).sum() for g in raw)))
    for a, b in zip(got, raw, strict=True):
        np.testing.assert_allclose(a, b * scale, rtol=1e-5)
    with pytest.raises(TypeError, match="clip must be a fluid.clip object"):
        fluid.clip.set_gradient_clip("test")


@pytest.mark.parametrize("opt_clip", [None, fluid.clip.GradientClipByValue(1e-3)])
def test_minimize_uses_set_gradient_clip_unless_the_optimizer_clips(opt_clip):
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[2], dtype="float32")
        loss = fluid.layers.reduce_sum(fluid.layers.fc(x, 1, param_attr=fluid.ParamAttr(name="w"), bias_attr=False))
        fluid.clip.set_gradient_clip(fluid.clip.GradientClipByValue(0.01))
        fluid.optimizer.SGD(learning_rate=1.0, grad_clip=opt_clip).minimize(loss)
    exe = fluid.Executor()
    with fluid.scope_guard(fluid.Scope()):
        exe.run(startup)
        w0 = np.array(fluid.global_scope().find_var("w").get_tensor())
        (w1,) = exe.run(main, feed={"x": np.array([[5.0, -5.0]], "float32")}, fetch_list=["w"])
    bound = 0.01 if opt_clip is None else 1e-3
    np.testing.assert_allclose(w0 - w1, [[bound], [-bound]], rtol=1e-4)


def test_dygraph_clip_drops_pairs_without_grad():
    with fluid.dygraph.guard():
        x = fluid.dygraph.to_variable(np.array([2, 3]).astype("float32"), name="x")
        y = fluid.dygraph.to_variable(np.array([3, 4]).astype("float32"), name="y")
        for clip in (
            fluid.clip.GradientClipByGlobalNorm(0.8),
            fluid.clip.GradientClipByNorm(0.8),
            fluid.clip.GradientClipByValue(0.2, 0.1),
        ):
            assert clip([(x, None)]) == []
            out = clip([(x, x), (x, y), (x, None)])
            assert len(out) == 2 and all(p is x for p, _ in out)


def _dygraph_step(model, opt, seed=0):
    x = fluid.dygraph.to_variable(torch.randn(4, 3, generator=torch.Generator().manual_seed(seed)).numpy())
    loss = fluid.layers.mean(model(x))
    loss.backward()
    opt.minimize(loss)
    model.clear_gradients()
    return loss


def test_an_eager_loss_needs_the_optimizers_parameters():
    with fluid.dygraph.guard():
        model = fluid.dygraph.Linear(3, 2)
        w0 = model.weight.numpy().copy()
        opt = fluid.optimizer.RMSProp(0.1)  # no parameter_list: static mode's spelling
        loss = fluid.layers.mean(model(fluid.dygraph.to_variable(torch.ones(4, 3).numpy())))
        loss.backward()
        for call in (lambda: opt.minimize(loss), lambda: opt.backward(loss)):
            with pytest.raises(ValueError, match=r"manages no parameters .*parameter_list="):
                call()
        assert (model.weight.numpy() == w0).all() and not opt.state


@pytest.mark.parametrize("which", ["tensor", "name"])
def test_minimize_refuses_a_parameter_list_entry_it_does_not_manage(which):
    with fluid.dygraph.guard():
        model, other = fluid.dygraph.Linear(3, 2), fluid.dygraph.Linear(3, 2)
        opt = fluid.optimizer.RMSProp(0.1, parameter_list=model.parameters())
        loss = fluid.layers.mean(model(fluid.dygraph.to_variable(torch.ones(4, 3).numpy())))
        loss.backward()
        w0 = model.weight.numpy().copy()
        stranger = other.weight if which == "tensor" else other.weight.name
        expected = r"shape \[3, 2\]" if which == "tensor" else repr(other.weight.name)
        with pytest.raises(ValueError, match=rf"parameter_list\[1\] is .*{expected}.* does not manage"):
            opt.minimize(loss, parameter_list=[model.weight, stranger])
        assert (model.weight.numpy() == w0).all() and not opt.state
        opt.minimize(loss, parameter_list=[model.weight.name])  # a managed name updates that parameter only
        assert not (model.weight.numpy() == w0).all() and list(opt.state) == [model.weight]


def test_a_state_dict_of_differently_named_parameters_says_how_to_load_it():
    with fluid.dygraph.guard():
        saved_model = fluid.dygraph.Linear(3, 2)
        saved = fluid.optimizer.RMSProp(0.1, momentum=0.9, parameter_list=saved_model.parameters())
        _dygraph_step(saved_model, saved)
        state = saved.state_dict()
        model = fluid.dygraph.Linear(3, 2)  # built second in the process: linear_1.*
        opt = fluid.optimizer.RMSProp(0.1, momentum=0.9, parameter_list=model.parameters())
        old, new = [p.name for p in saved_model.parameters()], [p.name for p in model.parameters()]
        with pytest.raises(ValueError, match=r"fluid.unique_name.guard\(\).*key_map=\{") as err:
            opt.set_dict(state)
        assert all(repr(n) in str(err.value) for n in old + new) and not opt.state
        opt.set_state_dict(state, key_map=dict(zip(old, new, strict=True)))  # what the hint suggests
        for p, q in zip(saved_model.parameters(), model.parameters(), strict=True):
            for acc, t in saved.state[p].items():
                assert torch.equal(opt.state[q][acc], t)
