"""Paddle 2.x ``paddle.optimizer.AdamW`` (Adam with decoupled weight decay): against a numpy
re-implementation of Paddle's ``adamw`` op (decay ``p *= 1 - lr * coeff`` in the dtype, then
Adam with Paddle's eps placement), against ``torch.optim.AdamW`` (the same maths, other
roundings), with ``lr_ratio``, ``apply_decay_param_fun`` and group ``weight_decay``, in
dygraph and as a static program, and its argument errors."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid.optimizer import AdamW


def _numpy_adamw(p, grads, *, lr, coeff, b1=0.9, b2=0.999, eps=1e-8, decay=True):
    """Paddle's adamw op, step by step, in ``p``'s dtype: ``beta1``, ``beta2``, ``epsilon``
    and ``coeff`` are float32 attributes (their float32 values), the beta powers start at
    the betas as given."""
    dt = p.dtype.type
    m1, m2 = np.zeros_like(p), np.zeros_like(p)
    b1p, b2p = dt(b1), dt(b2)
    b1, b2, eps, coeff = (dt(np.float32(v)) for v in (b1, b2, eps, coeff))
    lr = dt(lr)
    for g in grads:
        if decay:
            p = p * (dt(1) - lr * coeff)
        m1 = b1 * m1 + (dt(1) - b1) * g
        m2 = b2 * m2 + (dt(1) - b2) * g * g
        lr_t = lr * np.sqrt(dt(1) - b2p) / (dt(1) - b1p)
        p = p - lr_t * (m1 / (np.sqrt(m2) + eps * np.sqrt(dt(1) - b2p)))
        b1p, b2p = b1p * b1, b2p * b2
    return p


def _grads(shape, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for _ in range(n)]


@pytest.mark.parametrize("dtype, rtol, atol", [(np.float32, 1e-4, 1e-5), (np.float64, 1e-13, 1e-15)])
@pytest.mark.parametrize("coeff", [0.01, 0.3, 0.0])
def test_matches_paddles_adamw_op(dtype, rtol, atol, coeff):
    p0 = np.linspace(-1, 1, 12).astype(dtype).reshape(3, 4)
    grads = _grads((3, 4), 6, dtype)
    p = torch.nn.Parameter(torch.tensor(p0))
    opt = AdamW(learning_rate=0.05, parameters=[("w", p)], weight_decay=coeff)
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    # the reference in float64 from the same inputs (float32: the kernel's roundings are not modelled)
    want = _numpy_adamw(p0.astype(np.float64), [g.astype(np.float64) for g in grads], lr=0.05, coeff=coeff)
    np.testing.assert_allclose(p.detach().numpy(), want, rtol=rtol, atol=atol)


def test_equals_torch_adamw_up_to_rounding():
    """float64 with Paddle's float32 attributes off on torch's side by giving torch the
    float32 values (the beta powers still differ: Paddle's start at the betas as given, so the
    bias corrections differ in their last digits)."""
    p0 = torch.linspace(-2, 2, 30, dtype=torch.float64).reshape(5, 6)
    a, b = torch.nn.Parameter(p0.clone()), torch.nn.Parameter(p0.clone())
    ours = AdamW(learning_rate=0.01, parameters=[a], weight_decay=0.1)
    f32 = [float(np.float32(v)) for v in (0.9, 0.999, 1e-8, 0.1)]
    theirs = torch.optim.AdamW([b], lr=0.01, betas=(f32[0], f32[1]), eps=f32[2], weight_decay=f32[3])
    for g in _grads((5, 6), 8, np.float64, seed=2):
        a.grad, b.grad = torch.tensor(g), torch.tensor(g)
        ours.step()
        theirs.step()
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_lr_ratio_decay_selection_and_group_weight_decay():
    """``apply_decay_param_fun`` sees each parameter's name; ``lr_ratio`` scales both the decay
    and the Adam step; a group's ``weight_decay`` is its own coefficient."""
    w, b, c = (torch.nn.Parameter(torch.full((3,), v)) for v in (1.0, 2.0, 3.0))
    seen = []
    opt = AdamW(
        learning_rate=0.1,
        parameters=[{"params": [("w", w), ("b", b)]}, {"params": [("c", c)], "weight_decay": 0.5}],
        weight_decay=0.2,
        lr_ratio=lambda p: 0.5 if p.name == "c" else 1.0,  # Paddle's lr_ratio reads the name
        apply_decay_param_fun=lambda name: seen.append(name) or name != "b",
    )
    grads = {"w": np.full(3, 0.3, np.float32), "b": np.full(3, -0.2, np.float32), "c": np.full(3, 0.1, np.float32)}
    for _ in range(3):
        for name, p in (("w", w), ("b", b), ("c", c)):
            p.grad = torch.tensor(grads[name])
        opt.step()
    assert set(seen) == {"w", "b", "c"}
    want = {
        "w": _numpy_adamw(np.full(3, 1.0, np.float32), [grads["w"]] * 3, lr=0.1, coeff=0.2),
        "b": _numpy_adamw(np.full(3, 2.0, np.float32), [grads["b"]] * 3, lr=0.1, coeff=0.2, decay=False),
        "c": _numpy_adamw(np.full(3, 3.0, np.float32), [grads["c"]] * 3, lr=0.05, coeff=0.5),
    }
    for name, p in (("w", w), ("b", b), ("c", c)):
        np.testing.assert_allclose(p.detach().numpy(), want[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert opt._coeff == 0.2 and opt.param_groups[1]["coeff"] == 0.5


def test_static_program_equals_dygraph():
    x = np.random.default_rng(4).standard_normal((4, 5)).astype("float32")
    with fluid.dygraph.guard():
        lin = fluid.dygraph.Linear(5, 2)
        init = {p.name: p.numpy() for p in lin.parameters()}
        opt = AdamW(learning_rate=0.05, parameters=lin.parameters(), weight_decay=0.1)
        for _ in range(3):
            loss = fluid.layers.mean(lin(fluid.dygraph.to_variable(x)))
            loss.backward()
            opt.step()
            opt.clear_grad()
        eager = {p.name: p.numpy() for p in lin.parameters()}
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        xs = fluid.data("x", [None, 5], "float32")
        lin = fluid.dygraph.Linear(5, 2)
        loss = fluid.layers.mean(lin(xs))
        AdamW(learning_rate=0.05, weight_decay=0.1).minimize(loss)
    assert "adamw" in [op.type for op in main.global_block().ops]
    scope, exe = fluid.Scope(), fluid.Executor(fluid.CPUPlace())
    exe.run(startup, scope=scope)
    for name, value in init.items():
        scope.var(name).get_tensor().set(value, fluid.CPUPlace())
    for _ in range(3):
        exe.run(main, feed={"x": x}, fetch_list=[loss], scope=scope)
    for name, value in eager.items():
        np.testing.assert_array_equal(np.array(scope.find_var(name).get_tensor()), value, err_msg=name)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"weight_decay": -0.1}, ValueError, r"weight_decay must be >= 0, got -0.1"),
        (
            {"weight_decay": True},
            TypeError,
            r"weight_decay must be a real number >= 0 or a 1-element floating-point tensor, got True",
        ),
        (
            {"weight_decay": "0.1"},
            TypeError,
            r"weight_decay must be a real number >= 0 or a 1-element floating-point tensor, got '0.1'",
        ),
        ({"lr_ratio": 0.5}, TypeError, r"lr_ratio must be a callable or None, got float"),
        ({"apply_decay_param_fun": "w"}, TypeError, r"apply_decay_param_fun must be a callable or None, got str"),
        ({"multi_precision": "yes"}, TypeError, r"multi_precision must be True or False, got .yes."),
        ({"beta1": 1.0}, ValueError, r"beta1"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        AdamW(parameters=[torch.nn.Parameter(torch.zeros(2))], **kwargs)


def test_a_bad_lr_ratio_value_changes_nothing():
    p = torch.nn.Parameter(torch.ones(3))
    opt = AdamW(learning_rate=0.1, parameters=[("w", p)], lr_ratio=lambda q: -1.0)
    p.grad = torch.ones(3)
    with pytest.raises(ValueError, match=r"lr_ratio\(w\) must be >= 0, got -1"):
        opt.step()
    assert torch.equal(p.detach(), torch.ones(3)) and not opt.state_dict()


def test_lr_ratio_reads_program_parameter_names_in_static_mode():
    """In a program, ``lr_ratio`` gets each parameter's value under its program name (a
    ratio of 0 freezes ``fc_0``: no decay, no step)."""
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.data("x", [None, 4], "float32")
        loss = fluid.layers.mean(fluid.layers.fc(fluid.layers.fc(x, 3), 1))
        names = []
        opt = AdamW(0.1, weight_decay=0.5, lr_ratio=lambda p: names.append(p.name) or float(p.name.startswith("fc_1")))
        opt.minimize(loss)
    scope, exe = fluid.Scope(), fluid.Executor(fluid.CPUPlace())
    exe.run(startup, scope=scope)
    params = [p.name for p in main.global_block().all_parameters()]
    before = {n: np.array(scope.find_var(n).get_tensor()) for n in params}
    exe.run(main, feed={"x": np.ones((2, 4), "float32")}, fetch_list=[loss], scope=scope)
    after = {n: np.array(scope.find_var(n).get_tensor()) for n in params}
    assert sorted(set(names)) == sorted(params)
    for n in params:
        assert np.array_equal(before[n], after[n]) == n.startswith("fc_0"), n


@pytest.mark.parametrize("fused", [None, False])
def test_apply_decay_param_fun_is_asked_once_per_step_before_anything_changes(fused):
    """Each parameter's answer is asked once per update, before any change: a function
    that raises for the second parameter leaves parameters and state as they were, on the
    fused kernel and on the reference kernel alike."""
    w, b = torch.nn.Parameter(torch.ones(4, 3)), torch.nn.Parameter(torch.ones(3))
    asked, fail = [], []

    def decays(name):
        asked.append(name)
        if name in fail:
            raise KeyError(name)
        return name == "w"

    opt = AdamW(learning_rate=0.1, parameters=[("w", w), ("b", b)], apply_decay_param_fun=decays, fused=fused)
    w.grad, b.grad = torch.full((4, 3), 0.5), torch.full((3,), 0.5)
    opt.step()
    assert sorted(asked) == ["b", "w"]
    before = (
        [w.detach().clone(), b.detach().clone()],
        {k: v.clone() for k, v in opt.state_dict().items() if torch.is_tensor(v)},
    )
    fail.append("b")
    with pytest.raises(KeyError):
        opt.step()
    assert torch.equal(w, before[0][0]) and torch.equal(b, before[0][1])
    for key, value in before[1].items():
        assert torch.equal(opt.state_dict()[key], value), key


def test_a_groups_weight_decay_written_by_hand_is_the_decay_coefficient():
    """torch's key, as ZeroRedundancyOptimizer and schedulers write it into param_groups:
    read as the coefficient (the same run as writing ``coeff``), never as a coupled L2."""
    runs = []
    for key in ("weight_decay", "coeff"):
        p = torch.nn.Parameter(torch.ones(4))
        opt = AdamW(learning_rate=0.1, parameters=[p], weight_decay=0.01)
        for step in range(3):
            if step:
                opt.param_groups[0][key] = 0.5
            p.grad = torch.full((4,), 0.25 * (step + 1))
            opt.step()
        runs.append(p.detach().clone())
        assert opt.param_groups[0]["coeff"] == 0.5 and "weight_decay" not in opt.param_groups[0]
    assert torch.equal(runs[0], runs[1])
    with pytest.raises(ValueError, match=r"weight_decay must be >= 0, got -1"):
        opt.param_groups[0]["weight_decay"] = -1.0
        p.grad = torch.ones(4)
        opt.step()
