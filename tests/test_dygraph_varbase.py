"""The dygraph Variable (VarBase / ParamBase), to_variable, places, mode flags, unique_name."""

import copy
import pickle

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import framework, unique_name
from torchfluid.dygraph import ParamBase, VarBase, to_variable


def var(array, stop_gradient=True):
    v = to_variable(np.asarray(array))
    v.stop_gradient = stop_gradient
    return v


# ----------------------------------------------------------------------------- methods table
# (expression over a Variable x = [[1, 2, 3], [4, 5, 6]] (float32), expected, independent reference)
X = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
METHOD_CASES = [
    ("shape", lambda x: x.shape, [2, 3]),
    ("shape is a list", lambda x: type(x.shape).__mro__[1], list),
    ("shape equals tuple", lambda x: x.shape == (2, 3), True),
    ("shape equals torch.Size", lambda x: x.shape == torch.Size([2, 3]), True),
    ("shape hashes like tuple", lambda x: hash(x.shape) == hash((2, 3)), True),
    ("dtype", lambda x: x.dtype, torch.float32),
    ("dtype name", lambda x: framework.dtype_name(x.dtype), "float32"),
    ("numpy", lambda x: x.numpy().tolist(), X.tolist()),
    ("numpy is a copy", lambda x: np.shares_memory(x.numpy(), x.numpy()), False),
    ("stop_gradient default", lambda x: x.stop_gradient, True),
    ("requires_grad mirrors", lambda x: x.requires_grad, False),
    ("persistable default", lambda x: x.persistable, False),
    ("place", lambda x: x.place, fluid.CPUPlace()),
    ("gradient none", lambda x: x.gradient(), None),
    ("add", lambda x: (x + 1).numpy().tolist(), (X + 1).tolist()),
    ("radd", lambda x: (1 + x).numpy().tolist(), (1 + X).tolist()),
    ("sub", lambda x: (x - x * 2).numpy().tolist(), (X - X * 2).tolist()),
    ("rsub", lambda x: (10 - x).numpy().tolist(), (10 - X).tolist()),
    ("div", lambda x: (x / 4).numpy().tolist(), (X / 4).tolist()),
    ("pow", lambda x: (x**2).numpy().tolist(), (X**2).tolist()),
    ("neg", lambda x: (-x).numpy().tolist(), (-X).tolist()),
    ("matmul", lambda x: (x @ x.t()).numpy().tolist(), (X @ X.T).tolist()),
    ("compare", lambda x: (x > 2).numpy().tolist(), (X > 2).tolist()),
    ("result type", lambda x: type(x * 2), VarBase),
    ("torch fn keeps type", lambda x: type(torch.tanh(x)), VarBase),
    ("indexing keeps type", lambda x: type(x[0]), VarBase),
    ("tuple results", lambda x: type(torch.max(x, 1).values), VarBase),
    ("astype", lambda x: x.astype("int64").dtype, torch.int64),
    ("detach type", lambda x: type(x.detach()), VarBase),
    ("detach stops gradient", lambda x: x.detach().stop_gradient, True),
    ("format 0-d", lambda x: "{:.1f}".format(x.sum()), "21.0"),
    ("len", lambda x: len(x), 2),
]


@pytest.mark.parametrize("label,expr,expected", METHOD_CASES, ids=[c[0] for c in METHOD_CASES])
def test_variable_methods(label, expr, expected):
    assert expr(to_variable(X.copy())) == expected


def test_backward_non_scalar_seeds_ones_and_accumulates():
    w = var([[1.0, 2.0], [3.0, 4.0]], stop_gradient=False)
    x = to_variable(np.array([[1.0, 1.0], [2.0, 3.0]]))
    out = x @ w  # d(sum of all outputs)/dw = x^T @ ones
    out.backward()
    expected = np.array([[1.0, 1.0], [2.0, 3.0]]).T @ np.ones((2, 2))
    np.testing.assert_array_equal(w.gradient(), expected)
    (x @ w).backward()
    np.testing.assert_array_equal(w.gradient(), 2 * expected)
    w.clear_gradient()
    np.testing.assert_array_equal(w.gradient(), np.zeros((2, 2)))
    assert w.grad is not None  # kept as zeros, as Paddle does
    w.clear_gradient(set_to_zero=False)
    assert w.gradient() is None


@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
def test_backward_of_a_one_element_loss_seeds_one(shape):
    w = var([[1.0, 2.0], [3.0, 4.0]], stop_gradient=False)
    x = to_variable(np.array([[1.0, -1.0], [2.0, 3.0]]))
    ((x @ w) * (x @ w)).sum().reshape(shape).backward()  # d/dw sum((xw)^2) = 2 x^T (x w)
    xn, wn = np.array([[1.0, -1.0], [2.0, 3.0]]), np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(w.gradient(), 2 * xn.T @ (xn @ wn), rtol=1e-6)
    ((x @ w) * (x @ w)).sum().reshape(shape).backward(retain_graph=True)  # accumulates
    np.testing.assert_allclose(w.gradient(), 4 * xn.T @ (xn @ wn), rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_loss_backward_equals_torch_autograd_and_keeps_its_graph_rules(dtype):
    """A one-element loss runs autograd's engine directly: the gradients are torch's
    ``backward()``'s bit for bit, a second backward needs ``retain_graph`` as in torch, and
    a complex loss takes torch's own path (and its error)."""
    w = ParamBase(torch.linspace(-1, 2, 6, dtype=dtype).reshape(2, 3))
    loss = (w * w).sin().mean()
    loss.backward(retain_graph=True)
    ours = w.grad.clone()
    w.clear_gradient(set_to_zero=False)
    torch.Tensor.backward(loss)
    assert torch.equal(ours, w.grad)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()
    w.clear_gradient(set_to_zero=False)
    w.sum().reshape(1).backward()  # a one-element view
    assert torch.equal(w.grad, torch.ones_like(w.grad))
    z = ParamBase(torch.ones(1, dtype=torch.complex64))
    with pytest.raises(RuntimeError, match="real scalar outputs"):
        (z * 2).backward()


def test_backward_with_grad_tensor_and_errors():
    w = var([1.0, 2.0, 3.0], stop_gradient=False)
    (w * w).backward(to_variable(np.array([1.0, 0.0, 2.0])))
    np.testing.assert_array_equal(w.gradient(), [2.0, 0.0, 12.0])
    with pytest.raises(ValueError, match=r"grad_tensor has shape \[2\].*shape \[3\]"):
        (w * w).backward(to_variable(np.array([1.0, 0.0])))


def test_backward_of_a_stop_gradient_loss_does_nothing_as_in_paddle():
    # Paddle's dygraph engine skips a loss with stop_gradient=True (no grad node); torch would raise
    w = var([1.0, 2.0], stop_gradient=False)
    (w * w).sum().backward()
    x = var([0.5])
    loss = fluid.layers.sin(x)
    assert loss.stop_gradient is True
    loss.backward()
    (x * 2).backward(to_variable(np.array([1.0])))
    assert x.gradient() is None
    np.testing.assert_array_equal(w.gradient(), [2.0, 4.0])  # nothing else touched
    with pytest.raises(RuntimeError, match="does not require grad"):  # a torch-style call keeps torch's rule
        loss.backward(gradient=torch.ones(1))


def test_torch_style_backward_takes_gradient_by_keyword():
    w = var([1.0, 2.0], stop_gradient=False)
    (w * w).backward(gradient=torch.tensor([1.0, 3.0], dtype=torch.float64), retain_graph=True, create_graph=False)
    np.testing.assert_array_equal(w.gradient(), [2.0, 12.0])
    with pytest.raises(TypeError, match="both grad_tensor and gradient"):
        (w * w).backward(torch.ones(2), gradient=torch.ones(2), create_graph=False)


def test_stop_gradient_on_intermediate_cuts_the_graph():
    w = var([1.0, 2.0], stop_gradient=False)
    y = w * 3
    assert y.stop_gradient is False
    y.stop_gradient = True
    z = y * w
    z.backward()
    np.testing.assert_array_equal(w.gradient(), [3.0, 6.0])  # only the direct path


def test_set_value_and_errors():
    v = var(np.zeros((2, 2), np.float32))
    v.set_value(np.ones((2, 2), np.float32))
    np.testing.assert_array_equal(v.numpy(), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"shape \[3\] does not match \[2, 2\]"):
        v.set_value(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="dtype float64 does not match float32"):
        v.set_value(np.ones((2, 2)))
    with pytest.raises(TypeError, match="numpy array or Tensor"):
        v.set_value([1, 2])


def test_name_and_repr():
    v = to_variable(np.ones(2, np.float32), name="my_var")
    assert v.name == "my_var"
    anon = to_variable(np.ones(2, np.float32))
    assert anon.name.startswith("generated_tensor_") and anon.name == anon.name
    assert repr(v).startswith("Tensor(shape=[2], dtype=float32, place=CPUPlace, stop_gradient=True,")
    with pytest.raises(TypeError, match="non-empty str"):
        v.name = 3


# ----------------------------------------------------------------------------- to_variable
def test_to_variable_sharing_and_dtype():
    a = np.ones((2, 2), np.float32)
    shared = to_variable(a)
    copied = to_variable(a, zero_copy=False)
    a[0, 0] = -1
    assert shared.numpy()[0, 0] == -1 and copied.numpy()[0, 0] == 1
    assert to_variable([[0.1, 1.2], [2.2, 3.1]]).dtype == torch.float64
    assert to_variable(((0.1, 1.2), (2.2, 3.1)), dtype="int32").numpy().tolist() == [[0, 1], [2, 3]]
    assert to_variable(np.array([2 + 1j, 2])).dtype == torch.complex128
    t = torch.arange(3)
    wrapped = to_variable(t)
    assert isinstance(wrapped, VarBase) and wrapped.data_ptr() == t.data_ptr()
    assert to_variable(wrapped) is wrapped


@pytest.mark.parametrize(
    "value,kwargs,error,match",
    [
        (3.0, {}, TypeError, "must be list, tuple, numpy.ndarray or Tensor, but received float"),
        (np.array(["a"]), {}, TypeError, "must be numeric"),
        ([1.0], {"dtype": "float128"}, TypeError, "dtype must be one of"),
        ([1.0], {"name": 5}, TypeError, "name must be a str or None"),
    ],
)
def test_to_variable_bad_input(value, kwargs, error, match):
    with pytest.raises(error, match=match):
        to_variable(value, **kwargs)


# ----------------------------------------------------------------------------- ParamBase
def test_parambase_is_parameter_with_paddle_attributes():
    p = fluid.Linear(2, 3).weight
    assert isinstance(p, torch.nn.Parameter) and isinstance(p, VarBase)
    assert p.stop_gradient is False and p.trainable is True and p.persistable is True
    assert p.optimize_attr == {"learning_rate": 1.0} and p.need_clip is True and p.regularizer is None
    assert type(p * 2) is VarBase  # results are never parameters
    p.trainable = False
    assert p.stop_gradient is True and p.requires_grad is False
    clone = copy.deepcopy(p)
    assert type(clone) is ParamBase and clone.name == p.name + "_deepcopy"
    assert torch.equal(clone, p) and clone.data_ptr() != p.data_ptr()
    restored = pickle.loads(pickle.dumps(p))
    assert type(restored) is ParamBase and restored.name == p.name and torch.equal(restored, p)
    assert repr(p).startswith("Parameter containing:\nTensor(shape=[2, 3]")


def test_sparse_gradient_reported_as_values_and_rows():
    emb = fluid.dygraph.Embedding([6, 2], is_sparse=True)
    emb(to_variable(np.array([4, 1, 4]))).sum().backward()
    values, rows = emb.weight.gradient()
    assert rows.tolist() == [4, 1, 4] and values.tolist() == [[1.0, 1.0]] * 3
    emb.weight.clear_gradient()  # no rows left: reads as None, as Paddle's cleared SelectedRows gradient
    assert emb.weight.gradient() is None and emb.weight.grad is not None and emb.weight.grad._nnz() == 0


# ----------------------------------------------------------------------------- places, modes, names
@pytest.mark.parametrize(
    "place,device,text",
    [
        (fluid.CPUPlace(), torch.device("cpu"), "CPUPlace"),
        (fluid.CUDAPlace(1), torch.device("cuda", 1), "CUDAPlace(1)"),
        (fluid.CUDAPinnedPlace(), torch.device("cpu"), "CUDAPinnedPlace"),
    ],
)
def test_places(place, device, text):  # the conversions to a place: tests/test_places.py
    assert place.device == device and repr(place) == text


@pytest.mark.parametrize(
    "arg,error,match",
    [
        (-1, ValueError, "id must be an int >= 0, got -1"),
        ("0", ValueError, "id must be an int >= 0"),
    ],
)
def test_cuda_place_bad_id(arg, error, match):
    with pytest.raises(error, match=match):
        fluid.CUDAPlace(arg)


def test_guard_on_a_gpu_place_that_is_not_there_raises_and_changes_nothing():
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    match = r"CUDAPlace\(\d+\): only \d+ GPU\(s\) are visible" if count else r"CUDAPlace\(0\) needs CUDA"
    with pytest.raises(RuntimeError, match=match), fluid.dygraph.guard(fluid.CUDAPlace(count)):
        pass
    assert not fluid.in_dygraph_mode() and framework._current_expected_place() == fluid.CPUPlace()


def test_guard_sets_mode_restarts_names_and_restores():
    assert not fluid.in_dygraph_mode()
    unique_name.generate("linear")
    with fluid.dygraph.guard():
        assert fluid.in_dygraph_mode() and fluid.dygraph.enabled()
        assert fluid.Linear(2, 2).weight.name == "linear_0.w_0"
        with fluid.dygraph.guard(fluid.CPUPlace()):
            assert fluid.Linear(2, 2).full_name() == "linear_0"
        assert fluid.Linear(2, 2).full_name() == "linear_1"
    assert not fluid.in_dygraph_mode()
    fluid.enable_dygraph()
    try:
        assert fluid.in_dygraph_mode() and fluid.in_dynamic_mode()
    finally:
        fluid.disable_dygraph()
    assert not fluid.in_dygraph_mode()
    fluid.disable_static()
    fluid.enable_static()
    assert not fluid.in_dygraph_mode()


def test_unique_name_api():
    with unique_name.guard():
        assert [unique_name.generate("fc") for _ in range(2)] == ["fc_0", "fc_1"]
        with unique_name.guard("pre_"):
            assert unique_name.generate("fc") == "pre_fc_0"
        assert unique_name.generate("fc") == "fc_2"
        old = unique_name.switch()
        assert unique_name.generate("fc") == "fc_0"
        unique_name.switch(old)
        assert unique_name.generate("fc") == "fc_3"


def test_copy_pickle_and_inplace_on_plain_tensors():
    v = to_variable(np.ones(3, np.float32), name="vv")
    v.stop_gradient = False
    (v * 2).sum().backward()
    c = copy.deepcopy(v)
    assert type(c) is VarBase and c.name == "vv" and c.data_ptr() != v.data_ptr()
    assert c.requires_grad and c.gradient().tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(v * 2)
    p = pickle.loads(pickle.dumps(v.detach()))
    assert type(p) is VarBase and p.tolist() == [1.0, 1.0, 1.0]
    plain = torch.zeros(3)
    out = plain.add_(v.detach())  # an in-place op on a plain tensor leaves it plain
    assert out is plain and type(plain) is torch.Tensor
    assert type(torch.cat([v, plain])) is VarBase
