"""The optimizer API as Paddle's own tests use it (fluid keywords and attributes)."""

import pytest
import torch

import torchfluid as fluid
from torchfluid.regularizer import L1Decay, L1DecayRegularizer, L2Decay, L2DecayRegularizer


@pytest.mark.parametrize("cls,coeff,term", [
    (L2Decay, 0.5, lambda p: 0.5 * p), (L2DecayRegularizer, 0.25, lambda p: 0.25 * p),
    (L1Decay, 0.1, lambda p: 0.1 * torch.sign(p)), (L1DecayRegularizer, 2.0, lambda p: 2.0 * torch.sign(p)),
])
def test_regularization_coeff_keyword(cls, coeff, term):
    reg = cls(regularization_coeff=coeff)
    assert reg.coeff == coeff and reg == cls(coeff)
    p, g = torch.tensor([-2.0, 0.0, 3.0]), torch.tensor([1.0, 1.0, 1.0])
    torch.testing.assert_close(reg(p, g), g + term(p))


@pytest.mark.parametrize("kwargs,exc,msg", [
    ({"coeff": 0.1, "regularization_coeff": 0.2}, TypeError, "not both"),
    ({"regularization_coeff": -1.0}, ValueError, "regularization_coeff"),
])
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
