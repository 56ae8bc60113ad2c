"""Layer API, Linear, Embedding (fluid and 2.x spellings) and ParamAttr, against numpy references."""

import warnings

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import nn as nn2
from torchfluid.dygraph import Embedding, Layer, Linear, ParamBase, VarBase, guard, to_variable
from torchfluid.initializer import Constant, NumpyArrayInitializer
from torchfluid.param_attr import ParamAttr


class TwoLayer(Layer):
    def __init__(self):
        super().__init__()
        self.fc1 = Linear(3, 4, act="relu")
        self.fc2 = Linear(4, 2, bias_attr=False)

    def forward(self, x):
        return self.fc2(self.fc1(x))


def test_layer_structure_names_and_state_dict():
    with guard():
        net = TwoLayer()
        assert net.full_name() == "two_layer_0"
        assert [p.name for p in net.parameters()] == ["linear_0.w_0", "linear_0.b_0", "linear_1.w_0"]
        assert isinstance(net.parameters(), list) and isinstance(net.sublayers(), list)
        assert [n for n, _ in net.named_parameters()] == ["fc1.weight", "fc1.bias", "fc2.weight"]
        assert [n for n, _ in net.named_parameters(prefix="m")][0] == "m.fc1.weight"
        assert net.parameters(include_sublayers=False) == []
        assert net.sublayers() == [net.fc1, net.fc2]
        assert [n for n, _ in net.named_sublayers(include_self=True)] == ["", "fc1", "fc2"]
        sd = net.state_dict()
        assert list(sd) == ["fc1.weight", "fc1.bias", "fc2.weight"]
        assert sd["fc1.weight"] is net.fc1.weight  # the parameters themselves
        assert type(net.state_dict(keep_vars=False)["fc1.weight"]) is torch.Tensor
        assert list(net.fc1.state_dict(structured_name_prefix="a.")) == ["a.weight", "a.bias"]
        assert list(net.state_dict(include_sublayers=False)) == []
        net.eval()
        assert not net.fc1.training
        net.train()
        assert net.fc2.training


def test_set_state_dict_numpy_round_trip_and_by_name():
    with guard():
        src, dst = TwoLayer(), TwoLayer()
        arrays = {k: v.numpy() for k, v in src.state_dict().items()}
        dst.set_dict(arrays)
        for k, v in dst.state_dict().items():
            np.testing.assert_array_equal(v.numpy(), arrays[k])
        by_name = {v.name: np.full(v.shape, 7.0, np.float32) for v in dst.parameters()}
        dst.load_dict(by_name, use_structured_name=False)
        assert all((p.numpy() == 7.0).all() for p in dst.parameters())


def test_set_state_dict_warns_and_skips_missing_or_misshapen_and_rejects_dtype():
    with guard():
        net = TwoLayer()
        before = {k: v.numpy() for k, v in net.state_dict().items()}
        partial = {"fc1.weight": np.ones((3, 4), np.float32), "fc1.bias": np.ones(7, np.float32)}
        with pytest.warns(UserWarning) as record:
            net.set_state_dict(partial)
        messages = [str(r.message) for r in record]
        assert any("fc2.weight is not found" in m for m in messages)
        assert any("receives a shape [7], but the expected shape is [4]" in m for m in messages)
        np.testing.assert_array_equal(net.fc1.weight.numpy(), np.ones((3, 4)))
        np.testing.assert_array_equal(net.fc1.bias.numpy(), before["fc1.bias"])
        bad = {k: v.astype(np.float64) for k, v in before.items()}
        bad["fc1.weight"] = before["fc1.weight"]
        with pytest.raises(ValueError, match="'fc1.bias' has dtype float64, but fc1.bias is float32"):
            net.set_state_dict(bad)
        np.testing.assert_array_equal(net.fc1.weight.numpy(), np.ones((3, 4)))  # nothing changed


def test_create_and_add_parameter_and_sublayer():
    with guard():
        layer = Layer("my_layer")
        assert layer.full_name() == "my_layer_0"
        w = layer.create_parameter([2, 3])
        b = layer.create_parameter([3], is_bias=True)
        assert (w.name, b.name) == ("my_layer_0.w_0", "my_layer_0.b_0")
        assert layer.create_parameter([3], attr=False) is None
        assert layer.add_parameter("w", w) is w and layer.parameters() == [w]
        lin = Linear(2, 2)
        assert layer.add_sublayer("lin", lin) is lin and layer.sublayers() == [lin]
        with pytest.raises(ValueError, match=r"parameter name \[my_layer_0.w_0\] is already used"):
            layer.create_parameter([1], attr=ParamAttr(name="my_layer_0.w_0"))


@pytest.mark.parametrize(
    "name,param,error,match",
    [
        ("a.b", None, KeyError, "can not contain '.'"),
        ("", None, KeyError, "can not be empty"),
        (3, None, TypeError, "should be a string, but received int"),
        ("x", torch.ones(2), TypeError, "should be a Parameter, but received Tensor"),
        ("training", None, KeyError, "'training' already exists"),
    ],
)
def test_add_parameter_bad_input(name, param, error, match):
    with pytest.raises(error, match=match):
        Layer().add_parameter(name, param)


# ----------------------------------------------------------------------------- Linear
@pytest.mark.parametrize(
    "act,ref",
    [
        (None, lambda z: z),
        ("relu", lambda z: np.maximum(z, 0)),
        ("sigmoid", lambda z: 1 / (1 + np.exp(-z))),
        ("tanh", np.tanh),
        ("softmax", lambda z: np.exp(z) / np.exp(z).sum(-1, keepdims=True)),
    ],
)
def test_linear_forward_matches_numpy(act, ref):
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(5, 3)), rng.normal(size=3)
    x = rng.normal(size=(4, 5))
    lin = Linear(
        5, 3, param_attr=NumpyArrayInitializer(w), bias_attr=NumpyArrayInitializer(b), act=act, dtype="float64"
    )
    np.testing.assert_allclose(lin(to_variable(x)).numpy(), ref(x @ w + b), rtol=1e-12, atol=1e-12)


def test_linear_is_matmul_then_add_bitwise():
    lin = Linear(7, 5)
    x = to_variable(np.random.default_rng(1).normal(size=(3, 7)).astype(np.float32))
    with torch.no_grad():
        ref = torch.matmul(x.as_subclass(torch.Tensor), lin.weight.as_subclass(torch.Tensor)) + lin.bias
    assert torch.equal(lin(x), ref)


def test_linear_default_init_is_xavier_uniform_over_in_out_and_zero_bias():
    lin = Linear(300, 100)
    assert lin.weight.shape == [300, 100] and lin.bias.shape == [100]
    limit = np.sqrt(6.0 / (300 + 100))
    w = lin.weight.numpy()
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.98 * limit
    assert abs(w.var() - limit**2 / 3) < 0.03 * limit**2 / 3  # U(-a, a) variance a^2/3
    assert (lin.bias.numpy() == 0).all()


def test_param_attr_reaches_the_parameter():
    reg = _l2(0.1)
    lin = Linear(
        2,
        3,
        param_attr=ParamAttr(name="W", learning_rate=0.5, regularizer=reg, need_clip=False, initializer=Constant(2.0)),
        bias_attr=ParamAttr(trainable=False),
    )
    w, b = lin.weight, lin.bias
    assert (w.name, w._fluid_name, w.optimize_attr, w.regularizer, w.need_clip) == (
        "W",
        "W",
        {"learning_rate": 0.5},
        reg,
        False,
    )
    assert (w.numpy() == 2.0).all() and w.trainable and not w.stop_gradient
    assert b.trainable is False and b.stop_gradient is True and not b.requires_grad
    assert Linear(2, 2, param_attr="named_w").weight.name == "named_w"
    assert Linear(2, 2, param_attr=Constant(3.0)).weight.numpy().tolist() == [[3.0, 3.0]] * 2


def _l2(coeff):
    try:
        from torchfluid.regularizer import L2Decay
    except ImportError:
        return None
    return L2Decay(coeff)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"name": 3}, TypeError, "name must be a str or None, got int"),
        ({"name": ""}, ValueError, "name must not be empty"),
        ({"initializer": "xavier"}, TypeError, "initializer must be a torchfluid.initializer.Initializer"),
        ({"learning_rate": -1.0}, ValueError, "learning_rate must be >= 0, got -1.0"),
        ({"learning_rate": None}, ValueError, "learning_rate must be >= 0, got None"),
        ({"trainable": 1}, TypeError, "trainable must be True or False, got 1"),
        ({"need_clip": "no"}, TypeError, "need_clip must be True or False"),
    ],
)
def test_param_attr_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        ParamAttr(**kwargs)


@pytest.mark.parametrize(
    "make,error,match",
    [
        (lambda: Linear(0, 3), ValueError, "input_dim must be an int > 0, got 0"),
        (lambda: Linear(3, 2.5), ValueError, "output_dim must be an int > 0, got 2.5"),
        (lambda: Linear(3, 2, act="swishy"), ValueError, "act must be None or one of"),
        (lambda: Linear(3, 2, dtype="float128"), TypeError, "dtype must be one of"),
        (lambda: Linear(3, 2, param_attr=3.5), TypeError, "parameter attribute must be None, bool, str"),
        (lambda: Embedding(10), ValueError, "size must be a list of two ints"),
        (lambda: Embedding([10, 0]), ValueError, r"size\[1\] must be an int > 0, got 0"),
        (lambda: Embedding([10, 3], padding_idx=10), ValueError, r"padding_idx must be within \[-10, 10\), got 10"),
        (lambda: Embedding([10, 3], is_distributed=True), ValueError, "is_distributed=True"),
        (lambda: nn2.Embedding(-1, 3), ValueError, "num_embeddings must be an int > 0, got -1"),
    ],
)
def test_layer_constructor_bad_input(make, error, match):
    with pytest.raises(error, match=match):
        make()


# ----------------------------------------------------------------------------- Embedding
IDS = np.array([[3, 1, 3], [0, 3, 4]])


def _table(rows=6, width=4, dtype=np.float64):
    return np.arange(rows * width, dtype=dtype).reshape(rows, width) / 10.0


def test_embedding_dense_forward_and_gradient_vs_numpy():
    table = _table()
    emb = Embedding([6, 4], param_attr=NumpyArrayInitializer(table), dtype="float64")
    out = emb(to_variable(IDS))
    assert isinstance(out, VarBase) and out.shape == [2, 3, 4]
    np.testing.assert_array_equal(out.numpy(), table[IDS])
    upstream = np.random.default_rng(0).normal(size=(2, 3, 4))
    out.backward(to_variable(upstream))
    ref = np.zeros_like(table)
    np.add.at(ref, IDS.reshape(-1), upstream.reshape(-1, 4))
    np.testing.assert_allclose(emb.weight.gradient(), ref, rtol=0, atol=1e-15)


def test_embedding_padding_dense_zero_output_and_zero_row_gradient():
    table = _table()
    emb = Embedding([6, 4], padding_idx=3, param_attr=NumpyArrayInitializer(table), dtype="float64")
    out = emb(to_variable(IDS))
    ref = table[IDS]
    ref[IDS == 3] = 0.0
    np.testing.assert_array_equal(out.numpy(), ref)
    out.backward()
    grad = emb.weight.gradient()
    assert (grad[3] == 0).all() and grad[1].tolist() == [1.0] * 4 and grad[0].tolist() == [1.0] * 4


def test_embedding_sparse_gradient_rows_in_order_padding_rows_kept_as_paddle():
    table = _table()
    for padding in (None, -3):  # -3 -> row 3
        emb = Embedding(
            [6, 4], is_sparse=True, padding_idx=padding, param_attr=NumpyArrayInitializer(table), dtype="float64"
        )
        out = emb(to_variable(IDS))
        upstream = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
        out.backward(to_variable(upstream))
        assert emb.weight.grad.is_sparse
        values, rows = emb.weight.gradient()
        assert rows.tolist() == IDS.reshape(-1).tolist()  # one row per id, in order, not merged
        np.testing.assert_array_equal(values, upstream.reshape(-1, 4))  # padding rows too (Paddle's kernel)
        if padding is not None:
            assert (out.numpy()[IDS == 3] == 0).all()


def test_embedding_sparse_dense_equivalence_without_padding():
    table = _table(dtype=np.float32)
    dense = Embedding([6, 4], param_attr=NumpyArrayInitializer(table))
    sparse = Embedding([6, 4], is_sparse=True, param_attr=NumpyArrayInitializer(table))
    for layer in (dense, sparse):
        (layer(to_variable(IDS)) * 2).sum().backward()
    assert torch.equal(sparse.weight.grad.to_dense(), dense.weight.grad)


def test_embedding_rejects_float_ids():
    with pytest.raises(TypeError, match="int64 or int32 ids, got dtype torch.float32"):
        Embedding([5, 2])(to_variable(np.array([1.0], np.float32)))


def test_nn_2x_spellings():
    with guard():
        lin = nn2.Linear(4, 2, weight_attr=ParamAttr(name="w2"), bias_attr=False)
        emb = nn2.Embedding(5, 3, padding_idx=1, sparse=True)
        assert lin.weight.name == "w2" and lin.bias is None and lin.weight.shape == [4, 2]
        assert emb.weight.name == "embedding_0.w_0" and emb._is_sparse
        assert (emb.weight.numpy()[1] == 0).all() and (emb.weight.numpy()[0] != 0).any()
        assert isinstance(lin, Layer) and isinstance(emb.weight, ParamBase)
        assert fluid.dygraph.nn.Linear is Linear and fluid.Linear is Linear


def test_clear_gradients_and_torch_interop():
    net = TwoLayer()
    plain = torch.nn.Sequential(net, torch.nn.Tanh())
    plain(to_variable(np.ones((2, 3), np.float32))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.clear_gradients()
    assert all((p.gradient() == 0).all() for p in net.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.to(torch.float64)
    assert net.fc1.weight.dtype == torch.float64 and isinstance(net.fc1.weight, ParamBase)
