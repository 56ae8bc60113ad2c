"""Adam's ``beta1``, ``beta2`` and ``epsilon`` as tensors (eager, dygraph) or program
variables (static), Paddle 2.0's ``AdamOptimizer(beta1=Variable)`` and 2.1's
``paddle.optimizer.Adam(epsilon=Tensor)``: the value is read at every update (so it may
change between steps), checked then, and the beta powers of a tensor beta start at
Paddle's 0.9 / 0.999. Checked against a numpy Adam written from Paddle's kernel; the
three modes against each other bit for bit in tests/test_config_table.py (the
``adam_tensor_*`` rows)."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import layers as L
from torchfluid.initializer import NumpyArrayInitializer
from torchfluid.optimizer import Adam
from torchfluid.param_attr import ParamAttr
from torchfluid.static.optimize import accumulator_vars

STEPS = 4
RNG = np.random.default_rng(5)
W0 = RNG.standard_normal((3, 2)).astype(np.float32)
GRADS = RNG.standard_normal((STEPS, 3, 2)).astype(np.float32)


def _numpy_adam(values: dict, lr=0.01):
    """Paddle's Adam over STEPS steps in float64: ``values[name]`` is a float (fixed) or a
    list (the tensor's value at each step, whose power then starts at Paddle's default)."""

    def at(name, i):
        v = values[name]
        return v[i] if isinstance(v, list) else v

    p, m1, m2 = W0.astype(np.float64), np.zeros((3, 2)), np.zeros((3, 2))
    b1p = 0.9 if isinstance(values["beta1"], list) else values["beta1"]
    b2p = 0.999 if isinstance(values["beta2"], list) else values["beta2"]
    for i in range(STEPS):
        b1, b2, eps, g = at("beta1", i), at("beta2", i), at("epsilon", i), GRADS[i].astype(np.float64)
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b2 * m2 + (1 - b2) * g * g
        lr_t = lr * np.sqrt(1 - b2p) / (1 - b1p)
        p = p - lr_t * m1 / (np.sqrt(m2) + eps * np.sqrt(1 - b2p))
        b1p, b2p = b1p * b1, b2p * b2
    return p, b1p, b2p


CASES = [
    # name -> a float, or the tensor's value at each step
    {"beta1": [0.85] * STEPS, "beta2": 0.999, "epsilon": 1e-8},
    {"beta1": [0.85, 0.5, 0.9, 0.0], "beta2": [0.95, 0.99, 0.5, 0.999], "epsilon": 1e-8},
    {"beta1": 0.9, "beta2": 0.999, "epsilon": [1e-8, 1e-3, 0.5, 1e-6]},
    {"beta1": [0.7, 0.6, 0.5, 0.4], "beta2": [0.9] * STEPS, "epsilon": [1e-4] * STEPS},
]


def _f32(values):  # what a float32 tensor holds
    return {k: [float(np.float32(x)) for x in v] if isinstance(v, list) else v for k, v in values.items()}


@pytest.mark.parametrize("values", CASES)
def test_eager_tensor_hparams_are_read_at_each_step(values):
    tensors = {k: torch.tensor([v[0]]) for k, v in values.items() if isinstance(v, list)}
    w = torch.nn.Parameter(torch.from_numpy(W0.copy()))
    opt = Adam(0.01, parameters=[w], **{**values, **tensors})
    for i in range(STEPS):
        for k, t in tensors.items():
            t.fill_(values[k][i])
        w.grad = torch.from_numpy(GRADS[i].copy())
        opt.step()
    p, b1p, b2p = _numpy_adam(_f32(values))
    np.testing.assert_allclose(w.detach().numpy(), p, rtol=2e-5, atol=1e-6)
    sd = opt.state_dict()
    np.testing.assert_allclose(sd["param_0_beta1_pow_acc_0"].numpy(), [b1p], rtol=1e-6)
    np.testing.assert_allclose(sd["param_0_beta2_pow_acc_0"].numpy(), [b2p], rtol=1e-6)
    for k, t in tensors.items():  # read, never written
        assert t.item() == pytest.approx(values[k][-1])


def test_powers_of_tensor_betas_start_at_paddles_defaults():
    """Paddle makes the power accumulators before it knows a tensor beta's value: 0.9 and
    0.999, whatever the tensor holds; a float beta starts its own power."""
    w = torch.nn.Parameter(torch.ones(2))
    opt = Adam(0.01, parameters=[w], beta1=torch.tensor([0.5]), beta2=0.8)
    w.grad = torch.ones(2)
    opt.step()
    sd = opt.state_dict()
    assert sd["param_0_beta1_pow_acc_0"].item() == pytest.approx(0.9 * 0.5)
    assert sd["param_0_beta2_pow_acc_0"].item() == pytest.approx(0.8 * 0.8)
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        loss = L.mean(L.fc(L.data("x", [2], dtype="float32"), 1))
        b1 = L.create_global_var([1], 0.5, "float32", persistable=True, name="b1")
        b2 = L.create_global_var([1], 0.6, "float32", persistable=True, name="b2")
        Adam(0.01, beta1=b1, beta2=b2).minimize(loss)
    scope = fluid.Scope()
    fluid.Executor().run(start, scope=scope)
    accs = accumulator_vars(main)["fc_0.w_0"]
    assert np.array(scope.find_var(accs["beta1_pow_acc"]).get_tensor()) == pytest.approx([0.9])
    assert np.array(scope.find_var(accs["beta2_pow_acc"]).get_tensor()) == pytest.approx([0.999])


def test_the_configuration_holds_the_tensor_not_its_value():
    b1 = torch.tensor([0.8])
    w = torch.nn.Parameter(torch.ones(2))
    opt = Adam(0.01, parameters=[w], beta1=b1)
    config = opt.update_config()
    assert config.hparams["beta1"] is b1
    b1.fill_(0.5)
    assert opt.update_config() is config  # nothing to rebuild: the value is read at the update
    w.grad = torch.ones(2)
    opt.step()
    assert opt.state_dict()["param_0_beta1_pow_acc_0"].item() == pytest.approx(0.9 * 0.5)


def test_a_param_group_may_hold_its_own_tensor_beta():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    t = torch.tensor([0.5])
    opt = Adam(0.01, parameters=[{"params": [a]}, {"params": [b], "beta1": t}], beta1=0.7)
    for _ in range(2):
        a.grad, b.grad = torch.ones(2), torch.ones(2)
        opt.step()
        t.fill_(0.25)
    sd = opt.state_dict()
    assert sd["param_0_beta1_pow_acc_0"].item() == pytest.approx(0.7**3)
    assert sd["param_1_beta1_pow_acc_0"].item() == pytest.approx(0.9 * 0.5 * 0.25)


def test_dygraph_paddle_adam_takes_tensors():
    with fluid.dygraph.guard():
        fc = fluid.dygraph.Linear(3, 2)
        beta1 = fluid.dygraph.to_variable(np.array([0.8], np.float32))
        eps = fluid.dygraph.to_variable(np.array([1e-3], np.float32))
        opt = Adam(0.01, parameters=fc.parameters(), beta1=beta1, epsilon=eps)
        before = fc.weight.numpy().copy()
        loss = L.mean(fc(fluid.dygraph.to_variable(np.ones((2, 3), np.float32))))
        loss.backward()
        opt.minimize(loss)
        assert not np.array_equal(fc.weight.numpy(), before)
        assert opt.state_dict()[fc.weight.name + "_beta1_pow_acc_0"].item() == pytest.approx(0.9 * 0.8)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"beta1": torch.tensor([0.9, 0.9])}, ValueError, r"beta1 must be a real number or a 1-element floating"),
        ({"beta2": torch.tensor([1])}, ValueError, r"beta2 must be .* got a torch.int64 tensor of shape \[1\]"),
        ({"epsilon": "1e-8"}, TypeError, r"epsilon must be a real number > 0 or a 1-element floating-point tensor"),
        ({"beta1": np.array([0.9])}, TypeError, r"beta1 must be a real number in \[0, 1\) or a 1-element"),
        ({"beta1": 1.0}, ValueError, r"beta1 must be in \[0, 1\), got 1.0"),
        ({"epsilon": 0.0}, ValueError, r"epsilon must be > 0, got 0.0"),
    ],
)
def test_construction_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        Adam(0.01, parameters=[torch.nn.Parameter(torch.ones(2))], **kwargs)


@pytest.mark.parametrize(
    "name,value,match",
    [
        ("beta1", 1.0, r"beta1 must be in \[0, 1\), got 1.0 \(the value its tensor holds at this update\)"),
        ("beta2", -0.5, r"beta2 must be in \[0, 1\), got -0.5"),
        ("epsilon", 0.0, r"epsilon must be > 0, got 0.0"),
        ("epsilon", float("nan"), r"epsilon must be > 0, got nan"),
    ],
)
def test_an_out_of_range_value_at_a_step_changes_nothing(name, value, match):
    t = torch.tensor([0.5 if name != "epsilon" else 1e-8])
    w = torch.nn.Parameter(torch.ones(3))
    sched = fluid.dygraph.PiecewiseDecay([1], [0.1, 0.01], 0)
    opt = Adam(sched, parameters=[w], **{name: t})
    w.grad = torch.ones(3)
    opt.step()
    before = ({k: v.clone() for k, v in opt.state_dict().items() if torch.is_tensor(v)}, w.detach().clone())
    lr_before = opt.current_step_lr()
    t.fill_(value)
    with pytest.raises(ValueError, match=match):
        opt.step()
    assert torch.equal(w.detach(), before[1]) and opt.current_step_lr() == lr_before
    for k, v in opt.state_dict().items():
        if torch.is_tensor(v):
            assert torch.equal(v, before[0][k]), k
    t.fill_(0.5 if name != "epsilon" else 1e-8)
    opt.step()  # a good value again: the update runs
    assert not torch.equal(w.detach(), before[1])


def test_eager_update_with_a_program_variable_is_refused():
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()):
        b1 = L.create_global_var([1], 0.9, "float32", persistable=True)
    w = torch.nn.Parameter(torch.ones(2))
    opt = Adam(0.01, parameters=[w], beta1=b1)
    w.grad = torch.ones(2)
    with pytest.raises(TypeError, match="beta1 is a Variable, which this update cannot read"):
        opt.step()
    assert torch.equal(w.detach(), torch.ones(2)) and not opt.state_dict()


@pytest.mark.parametrize(
    "shape,dtype,match",
    [
        ([2], "float32", r"beta1 is variable 'b' of shape \[2\] and dtype float32; allowed: a variable of one"),
        ([1], "int64", r"beta1 is variable 'b' of shape \[1\] and dtype int64"),
    ],
)
def test_static_bad_variable_is_refused_at_minimize(shape, dtype, match):
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        loss = L.mean(L.fc(L.data("x", [2], dtype="float32"), 1))
        b = L.create_global_var(shape, 0, dtype, persistable=True, name="b")
        with pytest.raises(ValueError, match=match):
            Adam(0.01, beta1=b).minimize(loss)


def test_static_program_with_variable_betas_round_trips_its_description():
    from torchfluid.static.program_desc import parse_program, serialize_program

    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = L.data("x", [3], dtype="float32")
        init = NumpyArrayInitializer(np.array([[0.5], [-1.0], [2.0]], np.float32))
        loss = L.mean(L.fc(x, 1, param_attr=ParamAttr(initializer=init), bias_attr=False))
        b1 = L.create_global_var([1], 0.8, "float32", persistable=True, name="b1")
        eps = L.create_global_var([1], 1e-3, "float32", persistable=True, name="eps")
        Adam(0.01, beta1=b1, epsilon=eps).minimize(loss)
    restored = parse_program(serialize_program(main))
    op = restored.global_block().ops[-1]
    assert op.type == "adam" and op.input("HyperParam") == ["b1", "eps"]
    assert op.attr("section").hyper_names == ("beta1", "epsilon")
    results = []
    for program in (main, restored):  # the restored program updates as the original
        scope = fluid.Scope()
        exe = fluid.Executor()
        exe.run(start, scope=scope)
        for beta1 in (0.8, 0.3):
            scope.var("b1").get_tensor().set(np.array([beta1], np.float32))
            exe.run(program, feed={"x": np.ones((2, 3), np.float32)}, scope=scope)
        results.append(np.array(scope.find_var("fc_0.w_0").get_tensor()))
    assert not np.array_equal(results[0], [[0.5], [-1.0], [2.0]])
    np.testing.assert_array_equal(results[0], results[1])
