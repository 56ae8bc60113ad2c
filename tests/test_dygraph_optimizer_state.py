"""A fluid dygraph optimizer's state as Paddle's dygraph hands it out: ``state_dict()``
values are Variables named by their key over the optimizer's own storage, a saved
``LR_Scheduler`` entry is left unused by a constant-lr optimizer, and Paddle's private
hyper-parameter attributes (``adam._beta1``) read the constructor's values."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid.dygraph import Linear, guard, to_variable

X = np.arange(8, dtype="float32").reshape(4, 2) / 8


def _trained(make_opt, steps=3):
    lin = Linear(2, 3)
    opt = make_opt(lin.parameters())
    for _ in range(steps):
        loss = fluid.layers.reduce_mean(lin(to_variable(X)))
        loss.backward()
        opt.minimize(loss)
        lin.clear_gradients()
    return lin, opt


OPTIMIZERS = {
    "rmsprop": lambda ps: fluid.optimizer.RMSProp(0.1, momentum=0.5, centered=True, parameter_list=ps),
    "adam": lambda ps: fluid.optimizer.Adam(fluid.layers.piecewise_decay([2], [0.1, 0.01]), parameter_list=ps),
    "momentum": lambda ps: fluid.optimizer.Momentum(0.1, 0.9, parameter_list=ps),
    "adagrad": lambda ps: fluid.optimizer.Adagrad(0.1, parameter_list=ps),
}


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_state_values_are_named_variables_over_the_state(kind):
    with guard():
        _, opt = _trained(OPTIMIZERS[kind])
        sd = opt.state_dict()
        tensors = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
        assert tensors and all(isinstance(v, fluid.core.VarBase) and v.name == k for k, v in tensors.items())
        key, value = next(iter(tensors.items()))
        assert np.any(value.numpy() != 0)
        value.value().get_tensor().set(np.zeros_like(value.numpy()), fluid.CPUPlace())  # writes the state
        assert not np.any(opt.state_dict()[key].numpy())


def test_plain_torch_parameters_keep_plain_tensors():
    p = torch.nn.Parameter(torch.ones(3))
    opt = fluid.optimizer.RMSProp(0.1, parameter_list=[p])
    p.grad = torch.ones(3)
    opt.step()
    assert all(type(v) is torch.Tensor for v in opt.state_dict().values())


def test_saved_schedule_entry_is_unused_by_a_constant_lr_optimizer(tmp_path):
    with guard():
        lin, opt = _trained(OPTIMIZERS["adam"])
        fluid.save_dygraph(opt.state_dict(), str(tmp_path / "opt"))
        _, loaded = fluid.load_dygraph(str(tmp_path / "opt"))
        assert "LR_Scheduler" in loaded
        plain = fluid.optimizer.Adam(0.5, parameter_list=lin.parameters())
        report = plain.set_dict(loaded)
        assert report.ok and len(report.ignored) == 1
        assert plain.current_step_lr() == 0.5
        want = {k: v.numpy() for k, v in opt.state_dict().items() if isinstance(v, torch.Tensor)}
        got = {k: v.numpy() for k, v in plain.state_dict().items() if isinstance(v, torch.Tensor)}
        assert want.keys() == got.keys() and all(np.array_equal(want[k], got[k]) for k in want)


@pytest.mark.parametrize(
    "make, attrs",
    [
        (
            lambda ps: fluid.optimizer.Adam(0.1, beta1=0.8, beta2=0.99, epsilon=1e-7, parameter_list=ps),
            {"_beta1": 0.8, "_beta2": 0.99, "_epsilon": 1e-7},
        ),
        (
            lambda ps: fluid.optimizer.RMSProp(
                0.1, rho=0.9, epsilon=1e-5, momentum=0.3, centered=True, parameter_list=ps
            ),
            {"_rho": 0.9, "_epsilon": 1e-5, "_momentum": 0.3, "_centered": True},
        ),
        (
            lambda ps: fluid.optimizer.Momentum(0.1, 0.7, use_nesterov=True, parameter_list=ps),
            {"_momentum": 0.7, "_use_nesterov": True},
        ),
        (
            lambda ps: fluid.optimizer.Adagrad(0.1, epsilon=1e-4, initial_accumulator_value=0.2, parameter_list=ps),
            {"_epsilon": 1e-4, "_initial_accumulator_value": 0.2},
        ),
    ],
)
def test_paddle_private_hyper_parameter_attributes(make, attrs):
    opt = make([torch.nn.Parameter(torch.zeros(2))])
    assert {k: getattr(opt, k) for k in attrs} == attrs
    with pytest.raises(AttributeError, match="_beta3"):
        _ = opt._beta3


def test_registries_find_a_subclass_and_refuse_a_non_class():
    from torchfluid._registry import ByType
    from torchfluid.optimizer.state import STATE_VIEWS

    reg = ByType("param_type")
    reg.register(torch.Tensor, "tensor")
    reg.register(torch.nn.Parameter, "param")
    reg.register(np.ndarray, "tensor")
    assert reg.lookup(torch.nn.Parameter(torch.ones(1))) == "param"
    assert reg.lookup(torch.ones(1)) == "tensor" and reg.lookup(3) is None
    assert reg.values() == ["tensor", "param"]
    with pytest.raises(TypeError, match="param_type must be a class, got str"):
        STATE_VIEWS.register("ParamBase", lambda key, t: t)
