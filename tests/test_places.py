"""One conversion of what a user passes as a place, shared by ``fluid.Executor``, ``fluid.dygraph.guard``
and ``LoDTensor.set``: the same places are accepted and the same bad places raise the same errors."""

import re

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import framework
from torchfluid import layers as L
from torchfluid.dygraph import to_variable

GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0
TYPE_MESSAGE = "place must be a CPUPlace, CUDAPlace, CUDAPinnedPlace, torch.device or str, got {} of type {}"
STR_MESSAGE = "place must be 'cpu', 'gpu', 'gpu:N' or 'cuda:N', got {!r}"


def _gpu(index):
    """What a place on GPU ``index`` gives on this machine: the place, or the error it raises."""
    if index < GPUS:
        return fluid.CUDAPlace(index)
    if GPUS == 0:
        return RuntimeError, f"place=CUDAPlace({index}) needs CUDA, but this torch build has no usable GPU"
    return RuntimeError, f"place=CUDAPlace({index}): only {GPUS} GPU(s) are visible"


# (what is passed, the Place it stands for or (error type, exact message))
PLACES = [
    (fluid.CPUPlace(), fluid.CPUPlace()),
    (fluid.CUDAPinnedPlace(), fluid.CUDAPinnedPlace()),
    ("cpu", fluid.CPUPlace()),
    ("CPU", fluid.CPUPlace()),
    (" cpu ", fluid.CPUPlace()),
    (torch.device("cpu"), fluid.CPUPlace()),
    (fluid.CUDAPlace(0), _gpu(0)),
    ("gpu", _gpu(0)),
    ("gpu:0", _gpu(0)),
    ("GPU:1", _gpu(1)),
    ("cuda:0", _gpu(0)),
    (torch.device("cuda"), _gpu(0)),
    (torch.device("cuda", 1), _gpu(1)),
    (fluid.CUDAPlace(GPUS), _gpu(GPUS)),  # one past the last GPU (GPU 0 without CUDA)
    ("banana", (ValueError, STR_MESSAGE.format("banana"))),
    ("gpu:-1", (ValueError, STR_MESSAGE.format("gpu:-1"))),
    ("gpu:x", (ValueError, STR_MESSAGE.format("gpu:x"))),
    ("xpu:0", (ValueError, STR_MESSAGE.format("xpu:0"))),
    ("", (ValueError, STR_MESSAGE.format(""))),
    (torch.device("meta"), (ValueError, "place: torch device type 'meta' has no Paddle place (cpu or cuda)")),
    (42, (TypeError, TYPE_MESSAGE.format(42, "int"))),
    (0.0, (TypeError, TYPE_MESSAGE.format(0.0, "float"))),
    (fluid.CPUPlace, (TypeError, TYPE_MESSAGE.format(fluid.CPUPlace, "type"))),  # the class, not a place
    ([0], (TypeError, TYPE_MESSAGE.format([0], "list"))),
]
IDS = [f"{type(p).__name__}:{p!r}" for p, _ in PLACES]
USABLE = [(p, e) for p, e in PLACES if isinstance(e, framework.Place)]
BAD = [(p, e) for p, e in PLACES if not isinstance(e, framework.Place)]


@pytest.mark.parametrize("place, expected", PLACES, ids=IDS)
def test_to_place(place, expected):
    if isinstance(expected, framework.Place):
        got = framework.to_place(place)
        assert got == expected and type(got) is type(expected) and got.device == expected.device
    else:
        error, message = expected
        with pytest.raises(error, match=f"^{re.escape(message)}$"):
            framework.to_place(place)


@pytest.mark.parametrize(
    "place, expected",
    [
        ("gpu", fluid.CUDAPlace(0)),
        ("gpu:1", fluid.CUDAPlace(1)),
        ("Cuda:1", fluid.CUDAPlace(1)),
        (torch.device("cuda", 1), fluid.CUDAPlace(1)),
        (fluid.CUDAPlace(1), fluid.CUDAPlace(1)),
        ("gpu:2", (RuntimeError, "place=CUDAPlace(2): only 2 GPU(s) are visible")),
    ],
)
def test_to_place_on_gpus_as_if_two_were_visible(monkeypatch, place, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    if isinstance(expected, framework.Place):
        assert framework.to_place(place) == expected
    else:
        with pytest.raises(expected[0], match=f"^{re.escape(expected[1])}$"):
            framework.to_place(place)


def test_the_argument_name_is_in_the_message():
    with pytest.raises(ValueError, match=r"^exe_place must be 'cpu'"):
        framework.to_place("tpu", "exe_place")


def _doubled(exe):
    """Run a program with no parameters (``y = 2 x``) on ``exe`` and fetch ``y``."""
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = L.data("x", [3])
        y = L.scale(x, scale=2.0)
    (out,) = exe.run(main, feed={"x": np.arange(6, dtype="float32").reshape(2, 3)}, fetch_list=[y], scope=fluid.Scope())
    return out


@pytest.mark.parametrize("place, expected", USABLE, ids=[f"{type(p).__name__}:{p!r}" for p, _ in USABLE])
def test_executor_runs_on_every_usable_place(place, expected):
    exe = fluid.Executor(place)
    np.testing.assert_array_equal(_doubled(exe), np.arange(6, dtype="float32").reshape(2, 3) * 2)


def test_executor_without_a_place_runs_on_the_cpu():
    exe = fluid.Executor()
    assert exe.place is None
    np.testing.assert_array_equal(_doubled(exe), np.arange(6, dtype="float32").reshape(2, 3) * 2)


@pytest.mark.parametrize("place, expected", BAD, ids=[f"{type(p).__name__}:{p!r}" for p, _ in BAD])
def test_executor_refuses_a_bad_place_up_front(place, expected):
    error, message = expected
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        fluid.Executor(place)


@pytest.mark.parametrize("place, expected", USABLE, ids=[f"{type(p).__name__}:{p!r}" for p, _ in USABLE])
def test_dygraph_guard_puts_new_variables_on_the_place(place, expected):
    with fluid.dygraph.guard(place):
        assert fluid.in_dygraph_mode()
        x = to_variable(np.ones((2, 3), "float32"))
        assert x.device == expected.device
        assert x.place == (fluid.CPUPlace() if expected.device.type == "cpu" else expected)
    assert not fluid.in_dygraph_mode()


@pytest.mark.parametrize("place, expected", BAD, ids=[f"{type(p).__name__}:{p!r}" for p, _ in BAD])
def test_dygraph_guard_refuses_a_bad_place_and_changes_nothing(place, expected):
    error, message = expected
    with pytest.raises(error, match=f"^{re.escape(message)}$"), fluid.dygraph.guard(place):
        pass
    assert not fluid.in_dygraph_mode()
    with fluid.dygraph.guard():  # the expected place is still the CPU
        assert to_variable(np.ones(2, "float32")).device == torch.device("cpu")


@pytest.mark.parametrize("place, expected", PLACES, ids=IDS)
def test_lod_tensor_set_goes_through_the_same_conversion(place, expected):
    scope = fluid.Scope()
    tensor = scope.var("w").get_tensor()
    tensor.set(np.zeros(3, "float32"), fluid.CPUPlace())
    if isinstance(expected, framework.Place):
        tensor.set(np.ones(3, "float32"), place)
        assert scope.value("w").device == expected.device
        np.testing.assert_array_equal(np.array(tensor), np.ones(3, "float32"))
    else:
        error, message = expected
        with pytest.raises(error, match=f"^{re.escape(message)}$"):
            tensor.set(np.ones(3, "float32"), place)
        np.testing.assert_array_equal(np.array(tensor), np.zeros(3, "float32"))  # unchanged
