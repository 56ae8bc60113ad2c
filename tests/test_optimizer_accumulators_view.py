"""``optimizer._accumulators``: Paddle's ``{accumulator: {parameter name: state}}`` as a
read-only view, of the eager state and of the accumulator variables of the programs the
optimizer was minimized into (built by the static front door, never stored)."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import layers as L
from torchfluid.static.optimize import accumulator_vars

KINDS = [
    # (class name, options, the accumulators Paddle keeps)
    ("SGD", {}, []),
    ("Momentum", {"momentum": 0.9}, ["velocity"]),
    ("Adam", {}, ["moment1", "moment2", "beta1_pow_acc", "beta2_pow_acc"]),
    ("Adagrad", {}, ["moment"]),
    ("RMSProp", {"momentum": 0.5, "centered": True}, ["momentum", "mean_square", "mean_grad"]),
]


@pytest.mark.parametrize("name", [None, "opt"])
@pytest.mark.parametrize("kind,options,accs", KINDS)
def test_eager_view_is_the_state(kind, options, accs, name):
    w, b = torch.nn.Parameter(torch.ones(3, 2)), torch.nn.Parameter(torch.zeros(2))
    opt = getattr(fluid.optimizer, kind)(0.1, parameters={"w": w, "b": b}, name=name, **options)
    assert len(opt._accumulators) == 0  # no state before the first update
    w.grad, b.grad = torch.ones(3, 2), torch.ones(2)
    opt.step()
    view = opt._accumulators
    prefix = f"{name}_" if name else ""
    assert sorted(view) == sorted(prefix + a for a in accs)
    sd = opt.state_dict()
    for acc in accs:
        assert sorted(view[prefix + acc]) == ["b", "w"]
        for pname in ("w", "b"):
            assert view[prefix + acc][pname] is sd[f"{prefix}{pname}_{acc}_0"]  # the state itself, not a copy
    with pytest.raises(TypeError):
        view["x"] = {}
    if accs:
        with pytest.raises(TypeError):
            view[prefix + accs[0]]["w"] = torch.zeros(1)


@pytest.mark.parametrize("kind,options,accs", KINDS)
def test_static_view_is_the_programs_variables(kind, options, accs):
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        loss = L.mean(L.fc(L.data("x", [2], dtype="float32"), 1))
        opt = getattr(fluid.optimizer, kind)(0.1, **options)
        assert len(opt._accumulators) == 0
        opt.minimize(loss)
        view = opt._accumulators
        other = getattr(fluid.optimizer, kind)(0.1, **options)
        assert len(other._accumulators) == 0  # another optimizer's ops are not its own
    assert sorted(view) == sorted(accs)
    outside = opt._accumulators  # another default main program now: the view still finds main's
    assert {a: dict(v) for a, v in outside.items()} == {a: dict(v) for a, v in view.items()}
    names = accumulator_vars(main)
    for acc in accs:
        for pname, var in view[acc].items():
            assert var.name == names[pname][acc] and var.block.program is main
    if not accs:  # nothing to run
        return
    scope = fluid.Scope()
    exe = fluid.Executor()
    exe.run(start, scope=scope)
    exe.run(main, feed={"x": np.ones((2, 2), np.float32)}, scope=scope)
    var = view[accs[0]]["fc_0.w_0"]
    assert np.array(scope.find_var(var.name).get_tensor()).shape == tuple(var.shape)
