"""Program random seeds: with ``random_seed`` set, every initializer whose own seed is 0 draws
from a fresh generator seeded with it (Paddle's per-op seed), in static and dygraph mode."""

import math

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import framework
from torchfluid import initializer as I
from torchfluid.static.framework import Program


@pytest.fixture(autouse=True)
def _unseeded():
    yield
    Program().global_seed(0)
    fluid.default_main_program().random_seed = 0
    fluid.default_startup_program().random_seed = 0


def _xavier_reference(shape, seed):
    """Xavier uniform [in, out] drawn by torch from a generator seeded with ``seed``."""
    limit = math.sqrt(6.0 / (shape[0] + shape[1]))
    g = torch.Generator().manual_seed(seed)
    return torch.empty(shape, dtype=torch.float32).uniform_(-limit, limit, generator=g).numpy()


def _static_fc_weights(seed, param_attrs=(None, None)):
    main, startup = Program(), Program()
    main.random_seed = startup.random_seed = seed
    with fluid.program_guard(main, startup):
        x = fluid.layers.data(name="x", shape=[3], dtype="float32")
        for a in param_attrs:
            fluid.layers.fc(x, 4, param_attr=a, bias_attr=False)
    names = [p.name for p in main.all_parameters()]
    assert len(names) == len(param_attrs)
    exe = fluid.Executor(fluid.CPUPlace())
    scope = fluid.Scope()
    with fluid.scope_guard(scope):
        exe.run(startup)
        return [np.array(scope.find_var(n).get_tensor()) for n in names]


# (seed, program random_seed): the same seed gives the same values as the reference draw
@pytest.mark.parametrize("seed", [1, 90, 2**31 - 1])
def test_static_seeded_parameters_are_the_reference_draw(seed):
    w1, w2 = _static_fc_weights(seed)
    np.testing.assert_array_equal(w1, _xavier_reference([3, 4], seed))
    np.testing.assert_array_equal(w2, _xavier_reference([3, 4], seed))


def test_static_unseeded_parameters_differ():
    torch.manual_seed(0)
    w1, w2 = _static_fc_weights(0)
    assert not np.array_equal(w1, w2)


def test_initializer_seed_wins_over_program_seed():
    attr = fluid.ParamAttr(initializer=I.Xavier(seed=7))
    w1, w2 = _static_fc_weights(5, (attr, None))
    np.testing.assert_array_equal(w1, _xavier_reference([3, 4], 7))
    np.testing.assert_array_equal(w2, _xavier_reference([3, 4], 5))


@pytest.mark.parametrize("seed", [1, 33])
def test_dygraph_layers_read_the_main_program_seed(seed):
    with fluid.dygraph.guard():
        framework.manual_program_seed(seed)
        a, b = fluid.dygraph.Linear(3, 4), fluid.dygraph.Linear(3, 4)
        np.testing.assert_array_equal(a.weight.numpy(), _xavier_reference([3, 4], seed))
        np.testing.assert_array_equal(b.weight.numpy(), a.weight.numpy())
        np.testing.assert_array_equal(a.bias.numpy(), np.zeros(4, np.float32))
    # the same seed gives static parameters the same start
    np.testing.assert_array_equal(_static_fc_weights(seed)[0], _xavier_reference([3, 4], seed))


def test_dygraph_unseeded_layers_differ():
    with fluid.dygraph.guard():
        a, b = fluid.dygraph.Linear(3, 4), fluid.dygraph.Linear(3, 4)
        assert not np.array_equal(a.weight.numpy(), b.weight.numpy())


def test_manual_program_seed_sets_defaults_and_new_programs():
    framework.manual_program_seed(12)
    assert fluid.default_main_program().random_seed == 12
    assert fluid.default_startup_program().random_seed == 12
    assert Program().random_seed == 12
    Program().global_seed(0)
    assert Program().random_seed == 0


@pytest.mark.parametrize("bad,err", [(-1, ValueError), (1.5, TypeError), (True, TypeError), ("3", TypeError)])
def test_manual_program_seed_rejects_bad_seeds(bad, err):
    with pytest.raises(err, match="seed must be an int >= 0"):
        framework.manual_program_seed(bad)
    assert fluid.default_main_program().random_seed == 0
    with pytest.raises(err, match="seed must be an int >= 0"):
        Program().global_seed(bad)
    assert Program().random_seed == 0
