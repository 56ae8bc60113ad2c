"""The optimizer in static mode: minimize's ops and return values, and static training
equal bit for bit to eager training with the same kernels."""

import dataclasses

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import layers as L
from torchfluid.kernels import sgd_
from torchfluid.ops import math_ops
from torchfluid.static.optimize import accumulator_vars

RNG = np.random.default_rng(7)
X = RNG.normal(size=(20, 4, 13)).astype("float32")
Y = (X @ RNG.normal(size=(13, 1)) + 0.3).astype("float32")


def build(opt_factory, **fc_kw):
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = L.data("x", [13])
        y = L.data("y", [1])
        pred = L.fc(x, 1, **fc_kw)
        loss = L.mean(L.square_error_cost(pred, y))
        opt = opt_factory()
        ops, pg = opt.minimize(loss)
    return main, start, loss, opt, ops, pg


# static mode runs the reference kernel and eager mode the fused one (fused=None): both
# compute a correctly rounded sqrt, so they agree bit for bit
OPTS = {
    "rmsprop": lambda params=None: fluid.optimizer.RMSProp(0.01, momentum=0.9, centered=True, parameter_list=params),
    "rmsprop_plain": lambda params=None: fluid.optimizer.RMSProp(0.1, parameter_list=params),
    "sgd": lambda params=None: fluid.optimizer.SGD(0.05, parameter_list=params),
    # static mode keeps the lr in a float32 variable (as Paddle); the Adam kernel computes
    # in the state's dtype, so any lr gives bit-identical results in both modes
    "adam": lambda params=None: fluid.optimizer.Adam(0.01, parameter_list=params),
    "adagrad": lambda params=None: fluid.optimizer.Adagrad(0.05, initial_accumulator_value=0.1, parameter_list=params),
    "momentum": lambda params=None: fluid.optimizer.Momentum(0.05, 0.9, parameter_list=params, use_nesterov=True),
    "rmsprop_l2_clip": lambda params=None: fluid.optimizer.RMSProp(
        0.01,
        momentum=0.5,
        regularization=fluid.L2Decay(0.01),
        grad_clip=fluid.ClipGradByGlobalNorm(0.5),
        parameter_list=params,
    ),
}


@pytest.mark.parametrize("kind", sorted(OPTS))
def test_static_training_equals_eager_bit_for_bit(kind):
    main, start, loss, opt, ops, pg = build(OPTS[kind])
    scope = fluid.Scope()
    exe = fluid.Executor(fluid.static.scope.place_device(None))
    exe.run(start, scope=scope)
    w0 = np.array(scope.find_var("fc_0.w_0").get_tensor())
    b0 = np.array(scope.find_var("fc_0.b_0").get_tensor())
    static_losses = [exe.run(main, feed={"x": X[i], "y": Y[i]}, fetch_list=[loss], scope=scope)[0] for i in range(20)]

    w = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    b = torch.nn.Parameter(torch.from_numpy(b0.copy()))
    eager = OPTS[kind]({"fc_0.w_0": w, "fc_0.b_0": b})
    eager_losses = []
    for i in range(20):  # the same layers, run eagerly on tensors, torch autograd
        pred = L.elementwise_add(math_ops.mul(torch.from_numpy(X[i]), w), b, axis=1)
        out = L.mean(L.square_error_cost(pred, torch.from_numpy(Y[i])))
        out.backward()
        eager.minimize(out)
        eager.clear_gradients()
        eager_losses.append(out.detach().numpy())
    np.testing.assert_array_equal(np.array(static_losses), np.array(eager_losses))
    np.testing.assert_array_equal(np.array(scope.find_var("fc_0.w_0").get_tensor()), w.detach().numpy())
    np.testing.assert_array_equal(np.array(scope.find_var("fc_0.b_0").get_tensor()), b.detach().numpy())
    state = eager.state_dict()
    accs = accumulator_vars(main)
    assert accs, "no accumulators found"
    for pname, by_acc in accs.items():
        for acc, var in by_acc.items():
            assert var == f"{pname}_{acc}_0"
            np.testing.assert_array_equal(np.array(scope.find_var(var).get_tensor()), state[f"{pname}_{acc}_0"].numpy())


def test_minimize_appends_one_optimize_op_for_all_parameters():
    main, start, loss, opt, ops, pg = build(OPTS["rmsprop_l2_clip"])
    assert [o.type for o in ops] == ["rmsprop"]
    assert [(p.name, g.name) for p, g in pg] == [("fc_0.w_0", "fc_0.w_0@GRAD"), ("fc_0.b_0", "fc_0.b_0@GRAD")]
    (op,) = ops
    assert op.input("Param") == ["fc_0.b_0", "fc_0.w_0"]  # sorted by name
    assert op.input("Grad") == ["fc_0.b_0@GRAD", "fc_0.w_0@GRAD"]
    assert op.input("State") == [
        "fc_0.b_0_mean_square_0",
        "fc_0.b_0_momentum_0",
        "fc_0.w_0_mean_square_0",
        "fc_0.w_0_momentum_0",
    ]
    assert op.output("ParamOut") == op.input("Param") and op.output("StateOut") == op.input("State")
    # clip and regularization run inside the op (the same update function as eager step())
    section = op.attr("section")
    assert section.config.clip is opt.grad_clip and section.names == ("fc_0.b_0", "fc_0.w_0")
    assert [type(r).__name__ for r in section.regularizers] == ["L2Decay", "L2Decay"]
    types = [o.type for o in main.global_block().ops]
    assert types[-1] == "rmsprop" and "grad_clip" not in types and "regularization" not in types
    assert main.global_block().ops[-1].role == fluid.static.OpRole.Optimize
    with pytest.raises(dataclasses.FrozenInstanceError):
        section.config.clip = None
    # accumulators: persistable, zero-initialized in the startup program
    block = main.global_block()
    for name in ["fc_0.b_0_mean_square_0", "fc_0.b_0_momentum_0", "fc_0.w_0_mean_square_0"]:
        assert block.var(name).persistable
        init = [o for o in start.global_block().ops if o.output("Out") == [name]]
        assert [(o.type, o.attr("value")) for o in init] == [("fill_constant", 0.0)]
    assert start.global_block().var("learning_rate_0").persistable


def test_optimizer_ops_use_the_param_lr_multiplier():
    main, start, loss, opt, ops, pg = build(
        lambda: fluid.optimizer.SGD(0.5),
        param_attr=fluid.ParamAttr(learning_rate=0.1) if hasattr(fluid, "ParamAttr") else None,
    )
    if not hasattr(fluid, "ParamAttr"):
        pytest.skip("ParamAttr not available yet")
    scope = fluid.Scope()
    exe = fluid.Executor()
    exe.run(start, scope=scope)
    w0 = np.array(scope.find_var("fc_0.w_0").get_tensor())
    (g,) = exe.run(main, feed={"x": X[0], "y": Y[0]}, fetch_list=["fc_0.w_0@GRAD"], scope=scope)
    np.testing.assert_allclose(np.array(scope.find_var("fc_0.w_0").get_tensor()), w0 - 0.05 * g, rtol=1e-5, atol=1e-6)


def test_backward_then_apply_gradients_equals_minimize():
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = L.data("x", [13])
        loss = L.mean(L.fc(x, 1))
        opt = fluid.optimizer.RMSProp(0.1)
        pg = opt.backward(loss)
        ops = opt.apply_gradients(pg)
    assert [o.type for o in ops] == ["rmsprop"]
    assert ops[0].input("Param") == ["fc_0.b_0", "fc_0.w_0"]
    assert [p.name for p, _ in pg] == ["fc_0.w_0", "fc_0.b_0"]


def test_static_lr_decay_variable_drives_the_update():
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = L.data("x", [13])
        loss = L.mean(L.fc(x, 1, bias_attr=False))
        lr = L.exponential_decay(0.1, decay_steps=2, decay_rate=0.5, staircase=True)
        fluid.optimizer.SGD(lr).minimize(loss)
    scope = fluid.Scope()
    exe = fluid.Executor()
    exe.run(start, scope=scope)
    got = []
    for i in range(5):
        w0 = np.array(scope.find_var("fc_0.w_0").get_tensor())
        lr_v, g = exe.run(main, feed={"x": X[i]}, fetch_list=[lr, "fc_0.w_0@GRAD"], scope=scope)
        ref = torch.from_numpy(w0)
        sgd_(ref, torch.from_numpy(g), lr=float(lr_v[0]))
        np.testing.assert_array_equal(np.array(scope.find_var("fc_0.w_0").get_tensor()), ref.numpy())
        got.append(float(lr_v[0]))
    np.testing.assert_allclose(got, [0.1, 0.1, 0.05, 0.05, 0.025], rtol=1e-7)


@pytest.mark.parametrize("nonfinite, raises", [("skip", None), ("raise", FloatingPointError)])
def test_a_step_not_applied_leaves_the_schedule_counter_unchanged(nonfinite, raises):
    """The counter ``@LR_DECAY_COUNTER@`` advances on each applied step only: a skipped
    step (inf gradient, nonfinite='skip') and a raising one leave it where it was."""
    from torchfluid.layers.learning_rate_scheduler import COUNTER_NAME

    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = L.data("x", [13])
        y = L.data("y", [1])
        loss = L.mean(L.square_error_cost(L.fc(x, 1), y))
        lr = L.piecewise_decay([1, 2], [0.1, 0.05, 0.01])
        fluid.optimizer.RMSProp(lr, nonfinite=nonfinite).minimize(loss)
    (op,) = [o for o in main.global_block().ops if o.type == "rmsprop"]
    assert op.input("Counter") == op.output("CounterOut") == [COUNTER_NAME]
    scope = fluid.Scope()
    exe = fluid.Executor()
    exe.run(start, scope=scope)
    bad = X[1].copy()
    bad[0, 0] = np.inf
    counter = lambda: int(np.array(scope.find_var(COUNTER_NAME).get_tensor())[0])  # noqa: E731
    lrs, counters = [], [counter()]
    for xs, ys in [(X[0], Y[0]), (bad, Y[1]), (bad, Y[1]), (X[2], Y[2]), (X[3], Y[3])]:
        try:
            lrs.append(float(exe.run(main, feed={"x": xs, "y": ys}, fetch_list=[lr], scope=scope)[0][0]))
        except Exception as e:  # noqa: BLE001
            assert raises is not None and isinstance(e.__cause__ or e, raises), e
            lrs.append(None)
        counters.append(counter())
    assert counters == [-1, 0, 0, 0, 1, 2]
    bad_lr = 0.05 if raises is None else None  # what the skipped run computed (and fetched) before it was undone
    assert lrs == pytest.approx([0.1, bad_lr, bad_lr, 0.05, 0.01])


def test_dygraph_schedule_in_static_mode_is_refused():
    from torchfluid.dygraph.learning_rate_scheduler import ExponentialDecay

    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        loss = L.mean(L.fc(L.data("x", [3]), 1))
        opt = fluid.optimizer.SGD(ExponentialDecay(0.1, 2, 0.5))
        with pytest.raises(TypeError, match="dygraph learning-rate schedule"):
            opt.minimize(loss)


def _trained(opt_factory, feeds, **build_kw):
    main, start, loss, opt, ops, pg = build(opt_factory, **build_kw)
    scope = fluid.Scope()
    exe = fluid.Executor()
    exe.run(start, scope=scope)
    for x, y in feeds:
        exe.run(main, feed={"x": x, "y": y}, fetch_list=[loss], scope=scope)
    return main, scope, exe, loss


def test_the_program_holds_no_optimizer_object():
    import gc
    import weakref

    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        loss = L.mean(L.square_error_cost(L.fc(L.data("x", [13]), 1), L.data("y", [1])))
        opt = fluid.optimizer.RMSProp(0.01, momentum=0.9, grad_clip=fluid.ClipGradByNorm(1.0))
        (op,), _ = opt.minimize(loss)
    alive = weakref.ref(opt)
    del opt
    gc.collect()
    assert alive() is None  # only the frozen configuration went into the program
    scope = fluid.Scope()
    exe = fluid.Executor()
    exe.run(start, scope=scope)
    w0 = np.array(scope.find_var("fc_0.w_0").get_tensor())
    exe.run(main, feed={"x": X[0], "y": Y[0]}, fetch_list=[loss], scope=scope)
    assert not np.array_equal(np.array(scope.find_var("fc_0.w_0").get_tensor()), w0)
    config = op.attr("section").config
    with pytest.raises(TypeError):
        config.hparams["rho"] = 0.5  # read-only


def test_a_run_that_raises_leaves_parameters_and_state_unchanged():
    bad = X[1].copy()
    bad[0, 0] = np.inf
    opt = lambda: fluid.optimizer.RMSProp(0.01, momentum=0.9, nonfinite="raise")  # noqa: E731
    main, scope, exe, loss = _trained(opt, [(X[0], Y[0])])
    names = ["fc_0.w_0", "fc_0.b_0", "fc_0.w_0_mean_square_0", "fc_0.w_0_momentum_0"]
    before = {n: np.array(scope.find_var(n).get_tensor()).copy() for n in names}
    with pytest.raises(FloatingPointError, match="fc_0.w_0"):
        exe.run(main, feed={"x": bad, "y": Y[1]}, fetch_list=[loss], scope=scope)
    for n in names:
        np.testing.assert_array_equal(np.array(scope.find_var(n).get_tensor()), before[n])


@pytest.mark.parametrize("fused", [None, False])
def test_one_op_updates_every_parameter_in_one_fused_call(fused):
    from torchfluid.kernels import fused_cpu

    if fused is None and not fused_cpu.available():
        pytest.skip("the fused CPU kernel needs numba")
    opt = lambda: fluid.optimizer.RMSProp(0.01, momentum=0.9, fused=fused)  # noqa: E731
    main, scope, exe, loss = _trained(opt, [(X[0], Y[0]), (X[1], Y[1])])
    storages = {
        scope.value(n).untyped_storage().data_ptr()
        for n in ["fc_0.w_0_mean_square_0", "fc_0.b_0_mean_square_0", "fc_0.w_0_momentum_0", "fc_0.b_0_momentum_0"]
    }
    # fused: the state of both parameters lives in the flat buffers of ONE kernel call
    # (one buffer per accumulator kind); reference: four separate tensors
    assert len(storages) == (2 if fused is None else 4)


def test_a_program_learning_rate_refuses_eager_updates():
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()):
        lr = L.exponential_decay(0.1, decay_steps=2, decay_rate=0.5)
    w = torch.nn.Parameter(torch.ones(3))
    opt = fluid.optimizer.RMSProp(lr, parameters=[w])
    w.grad = torch.ones(3)
    with pytest.raises(TypeError, match="learning-rate variable"):
        opt.step()
    assert torch.equal(w.detach(), torch.ones(3)) and not opt.state


@pytest.mark.parametrize("decay", [False, True], ids=["float lr", "decay variable"])
def test_set_lr_after_minimize_is_refused_and_changes_nothing(decay):
    # the program's update reads its own learning-rate variable, which set_lr cannot reach
    # (Paddle's set_lr and current_step_lr are dygraph-only)
    def make():
        return L.exponential_decay(0.1, decay_steps=2, decay_rate=0.5) if decay else 0.1

    main, start, loss, opt, _, _ = build(lambda: fluid.optimizer.SGD(make()))
    scope = fluid.Scope()
    exe = fluid.Executor()
    exe.run(start, scope=scope)
    exe.run(main, feed={"x": X[0], "y": Y[0]}, scope=scope)
    with pytest.raises(RuntimeError, match=r"set_lr cannot change .* the variable '(learning_rate|exponential_decay)"):
        opt.set_lr(0.5)
    if decay:
        with pytest.raises(TypeError, match="program's learning-rate variable 'exponential_decay"):
            opt.current_step_lr()
    else:
        assert opt.current_step_lr() == 0.1 and opt.defaults["lr"] == 0.1
    # the refused call changed nothing: the next run is the run without it
    w0 = np.array(scope.find_var("fc_0.w_0").get_tensor())
    lr_v, g = exe.run(
        main, feed={"x": X[1], "y": Y[1]}, fetch_list=[opt._global_learning_rate(main), "fc_0.w_0@GRAD"], scope=scope
    )
    ref = torch.from_numpy(w0)
    sgd_(ref, torch.from_numpy(g), lr=float(lr_v[0]))
    np.testing.assert_array_equal(np.array(scope.find_var("fc_0.w_0").get_tensor()), ref.numpy())
    assert float(lr_v[0]) == pytest.approx(0.1 * 0.5 ** (1 / 2) if decay else 0.1, rel=1e-6)


def test_state_dict_of_an_optimizer_whose_state_lives_in_a_program_is_refused():
    main, start, loss, opt, _, _ = build(lambda: fluid.optimizer.RMSProp(0.1, momentum=0.9))
    exe = fluid.Executor()
    scope = fluid.Scope()
    exe.run(start, scope=scope)
    exe.run(main, feed={"x": X[0], "y": Y[0]}, scope=scope)
    for call in (opt.state_dict, opt.torch_state_dict, lambda: opt.set_state_dict({}), lambda: opt.set_dict({})):
        with pytest.raises(RuntimeError, match=r"persistable variables in the scope hold its state.*save_persistables"):
            call()
    assert not opt.state
    assert fluid.optimizer.RMSProp(0.1).state_dict() == {}  # appended nowhere: empty, as Paddle's before minimize


@pytest.mark.parametrize("second", ["minimize", "apply_gradients", "minimize of one parameter"])
def test_a_second_update_of_the_same_parameters_by_one_optimizer_is_refused_before_any_op(second):
    main, start, loss, opt, _, _ = build(lambda: fluid.optimizer.RMSProp(0.1))
    with fluid.program_guard(main, start):
        pg = opt.backward(loss) if second == "apply_gradients" else None
        ops, nvars = [op.type for op in main.global_block().ops], len(main.global_block().vars)
        with pytest.raises(
            ValueError, match=r"update of \[('fc_0.b_0', )?'fc_0.w_0'\] is already in this program .*rmsprop"
        ):
            if second == "apply_gradients":
                opt.apply_gradients(pg)
            else:
                opt.minimize(loss, parameter_list=["fc_0.w_0"] if second != "minimize" else None)
        assert [op.type for op in main.global_block().ops] == ops and len(main.global_block().vars) == nvars
        # another optimizer may add its own update (Paddle allows it)
        assert [op.type for op in fluid.optimizer.SGD(0.1).minimize(loss)[0]] == ["sgd"]


def test_set_lr_on_an_optimizer_no_program_holds_still_works():
    w = torch.nn.Parameter(torch.ones(3))
    opt = fluid.optimizer.SGD(0.1, parameter_list=[w])
    main, start, *_ = build(lambda: fluid.optimizer.SGD(0.1))  # another optimizer's program
    opt.set_lr(0.5)
    w.grad = torch.ones(3)
    opt.step()
    assert opt.current_step_lr() == 0.5 and torch.equal(w.detach(), torch.full((3,), 0.5))


def test_register_front_door_takes_a_class():
    from torchfluid.optimizer.base import register_front_door

    with pytest.raises(TypeError, match="record_type must be a class"):
        register_front_door("Variable", object())
