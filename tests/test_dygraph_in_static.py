"""Dygraph layers called with static Variables append ops to the program and share their
parameters with it: a model built once per mode gives the same numbers in both."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid.dygraph import BatchNorm, Conv2D, Embedding, Linear, Pool2D

rng = np.random.RandomState(1)


class MLP(fluid.Layer):
    def __init__(self):
        super().__init__()
        self._fc1 = Linear(16, 8, act="relu")
        self._fc2 = Linear(8, 4)

    def forward(self, x):
        return self._fc2(self._fc1(x))


class ConvNet(fluid.Layer):
    def __init__(self):
        super().__init__()
        self._conv = Conv2D(1, 4, 3, padding=1, act="relu")
        self._bn = BatchNorm(4)
        self._pool = Pool2D(pool_size=2, pool_type="max", pool_stride=2)
        self._fc = Linear(4 * 4 * 4, 3)

    def forward(self, x):
        h = self._pool(self._bn(self._conv(x)))
        return self._fc(fluid.layers.reshape(h, [-1, 64]))


class EmbedNet(fluid.Layer):
    def __init__(self):
        super().__init__()
        self._emb = Embedding([10, 6], padding_idx=0)
        self._fc = Linear(6, 2)

    def forward(self, ids):
        return self._fc(self._emb(ids))


def _dygraph(make, batches, lr, to_input):
    with fluid.dygraph.guard():
        torch.manual_seed(5)
        model = make()
        opt = fluid.optimizer.RMSPropOptimizer(learning_rate=lr, parameter_list=model.parameters())
        init = {p.name: p.numpy() for p in model.parameters()}
        losses = []
        for b in batches:
            loss = fluid.layers.reduce_mean(model(to_input(b)))
            losses.append(loss.numpy())
            loss.backward()
            opt.minimize(loss)
            model.clear_gradients()
        final = {p.name: p.numpy() for p in model.parameters()}
    return init, losses, final


def _static(make, batches, lr, data):
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        torch.manual_seed(5)
        model = make()
        x = data()
        loss = fluid.layers.reduce_mean(model(x))
        fluid.optimizer.RMSPropOptimizer(learning_rate=lr).minimize(loss)
    names = [p.name for p in model.parameters()]
    exe = fluid.Executor(fluid.CPUPlace())
    with fluid.scope_guard(fluid.Scope()):
        init = dict(zip(names, exe.run(startup, fetch_list=names), strict=True))
        losses = []
        for b in batches:
            out = exe.run(main, feed={x.name: b}, fetch_list=[loss] + names)
            losses.append(out[0])
        final = dict(zip(names, out[1:], strict=True))
    return main, init, losses, final


CASES = [
    (
        "mlp",
        MLP,
        lambda: [rng.rand(8, 16).astype("float32") for _ in range(4)],
        lambda: fluid.layers.data(name="x", shape=[16], dtype="float32"),
        fluid.dygraph.to_variable,
    ),
    (
        "conv",
        ConvNet,
        lambda: [rng.rand(6, 1, 8, 8).astype("float32") for _ in range(4)],
        lambda: fluid.layers.data(name="x", shape=[1, 8, 8], dtype="float32"),
        fluid.dygraph.to_variable,
    ),
    (
        "embedding",
        EmbedNet,
        lambda: [rng.randint(0, 10, (7, 1)).astype("int64") for _ in range(4)],
        lambda: fluid.layers.data(name="ids", shape=[1], dtype="int64"),
        lambda b: fluid.dygraph.to_variable(b.reshape(-1)),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_same_model_same_numbers_in_both_modes(case):
    _, make, batches, data, to_input = case
    batches = batches()
    d_init, d_losses, d_final = _dygraph(make, batches, 0.05, to_input)
    main, s_init, s_losses, s_final = _static(make, batches, 0.05, data)
    assert set(s_init) == set(d_init)
    for n in d_init:
        np.testing.assert_array_equal(s_init[n], d_init[n])  # startup = the layer's own initial values
    np.testing.assert_allclose(np.ravel(s_losses), np.ravel(d_losses), rtol=2e-5, atol=1e-6)
    for n in d_final:
        np.testing.assert_allclose(s_final[n], d_final[n], rtol=2e-5, atol=1e-6)
    # the program's parameters are the layers' parameters, under the same names
    assert sorted(p.name for p in main.all_parameters()) == sorted(d_init)


def test_calling_a_layer_twice_reuses_its_parameters():
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        fc = Linear(3, 3)
        x = fluid.layers.data(name="x", shape=[3], dtype="float32")
        y = fc(fc(x))
    assert [p.name for p in main.all_parameters()] == ["linear_0.w_0", "linear_0.b_0"]
    exe = fluid.Executor()
    with fluid.scope_guard(fluid.Scope()):
        exe.run(startup)
        xv = rng.rand(2, 3).astype("float32")
        (got,) = exe.run(main, feed={"x": xv}, fetch_list=[y])
    w, b = fc.weight.detach().numpy(), fc.bias.detach().numpy()
    np.testing.assert_allclose(got, (xv @ w + b) @ w + b, rtol=1e-5)


def test_non_trainable_layer_parameter_is_not_trained():
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        fc = Linear(3, 2, param_attr=fluid.ParamAttr(trainable=False))
        x = fluid.layers.data(name="x", shape=[3], dtype="float32")
        pg = fluid.backward.append_backward(fluid.layers.mean(fc(x)))
    assert [p.name for p, _ in pg] == ["linear_0.b_0"]


# ---------------------------------------------------------------- sharing by name


def test_param_attr_name_shares_one_parameter():
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        a = fluid.layers.data(name="a", shape=[1], dtype="int64")
        b = fluid.layers.data(name="b", shape=[1], dtype="int64")
        ea = fluid.layers.embedding(a, size=[5, 2], param_attr="shared_w")
        eb = fluid.layers.embedding(b, size=[5, 2], param_attr=fluid.ParamAttr(name="shared_w"))
        loss = fluid.layers.mean(fluid.layers.elementwise_mul(ea, eb))
        pg = fluid.backward.append_backward(loss)
    assert [p.name for p in main.all_parameters()] == ["shared_w"]
    assert len([op for op in startup.global_block().ops if "shared_w" in op.output_arg_names]) == 1
    ((p, g),) = pg
    exe = fluid.Executor()
    with fluid.scope_guard(fluid.Scope()):
        exe.run(startup)
        av, bv = np.array([[1], [3]], "int64"), np.array([[3], [4]], "int64")
        w, gv = exe.run(main, feed={"a": av, "b": bv}, fetch_list=["shared_w", g])
    want = np.zeros_like(w)  # d mean(ea * eb) / dW: both lookups' contributions summed
    for i, j in zip(av.ravel(), bv.ravel(), strict=True):
        want[i] += w[j] / 4
        want[j] += w[i] / 4
    np.testing.assert_allclose(gv, want, rtol=1e-6)


@pytest.mark.parametrize(
    "second,msg",
    [
        (
            lambda x: fluid.layers.embedding(x, size=[6, 2], param_attr="shared_w"),
            r"shared by name, but this layer asks for shape \[6, 2\]",
        ),
        (lambda x: fluid.layers.embedding(x, size=[5, 2], param_attr="x"), "non-parameter variable"),
    ],
)
def test_sharing_by_name_checks_the_parameter(second, msg):
    with fluid.program_guard(fluid.Program(), fluid.Program()), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[1], dtype="int64")
        fluid.layers.embedding(x, size=[5, 2], param_attr="shared_w")
        with pytest.raises(ValueError, match=msg):
            second(x)


# ---------------------------------------------------------------- the new dygraph layers, eagerly


def test_conv2d_and_pool2d_layers_match_torch():
    import torch.nn.functional as F

    with fluid.dygraph.guard():
        conv = Conv2D(4, 6, [3, 2], stride=2, padding=1, groups=2, act="relu")
        pool = Pool2D(pool_size=2, pool_type="avg", pool_stride=1, pool_padding=1, exclusive=False)
        x = torch.randn(2, 4, 7, 7)
        got = pool(conv(fluid.dygraph.to_variable(x.numpy())))
        want = F.avg_pool2d(
            torch.relu(F.conv2d(x, conv.weight.detach(), conv.bias.detach(), 2, 1, 1, 2)),
            2,
            1,
            1,
            count_include_pad=True,
        )
        torch.testing.assert_close(torch.as_tensor(got.numpy()), want, rtol=1e-5, atol=1e-6)
        assert list(conv.weight.shape) == [6, 2, 3, 2]


def test_batchnorm_layer_train_and_eval():
    with fluid.dygraph.guard():
        bn = BatchNorm(3, momentum=0.5)
        x = torch.randn(8, 3, 2, 2) * 2 + 1
        y = bn(fluid.dygraph.to_variable(x.numpy()))
        mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)
        want = (x - mean.view(1, -1, 1, 1)) / torch.sqrt(var.view(1, -1, 1, 1) + 1e-5)
        torch.testing.assert_close(torch.as_tensor(y.numpy()), want, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(bn._mean.detach(), 0.5 * mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(bn._variance.detach(), 0.5 + 0.5 * var, rtol=1e-5, atol=1e-6)
        assert [p.name for p in bn.parameters()] == [f"batch_norm_0.{s}" for s in ("w_0", "b_0", "w_1", "w_2")]
        assert [p.requires_grad for p in bn.parameters()] == [True, True, False, False]
        bn.eval()
        y2 = bn(fluid.dygraph.to_variable(x.numpy()))
        want2 = (x - bn._mean.detach().view(1, -1, 1, 1)) / torch.sqrt(bn._variance.detach().view(1, -1, 1, 1) + 1e-5)
        torch.testing.assert_close(torch.as_tensor(y2.numpy()), want2, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(bn._mean.detach(), 0.5 * mean, rtol=1e-5, atol=1e-6)  # eval leaves them


@pytest.mark.parametrize(
    "make,msg",
    [
        (lambda: Conv2D(3, 4, 3, groups=2), "groups=2 must divide"),
        (lambda: Pool2D(pool_type="min", pool_size=2), "pool_type must be 'max' or 'avg'"),
        (lambda: Pool2D(), "give pool_size"),
        (lambda: BatchNorm(3, momentum=1.5), r"momentum must be in \[0, 1\]"),
        (lambda: Conv2D(3, 4, [3, 3, 3]), "filter_size must be an int or a list of 2 ints"),
    ],
)
def test_layer_argument_errors(make, msg):
    with fluid.dygraph.guard(), pytest.raises(ValueError, match=msg):
        make()


_BOTH_DOORS = {  # the static layer function and the dygraph layer for a [N, 3, 8, 8] input
    "conv2d": (lambda x, **kw: fluid.layers.conv2d(x, 4, 3, **kw), lambda **kw: Conv2D(3, 4, 3, **kw)),
    "pool2d": (lambda x, **kw: fluid.layers.pool2d(x, **kw), lambda **kw: Pool2D(**kw)),
    "batch_norm": (lambda x, **kw: fluid.layers.batch_norm(x, **kw), lambda **kw: BatchNorm(3, **kw)),
}


@pytest.mark.parametrize(
    "layer,kwargs,exc,msg",
    [
        ("conv2d", {"groups": 2}, ValueError, r"groups=2 must divide num_channels \(3\) and num_filters \(4\)"),
        ("conv2d", {"groups": 0}, ValueError, "groups must be an int > 0, got 0"),
        ("conv2d", {"stride": True}, TypeError, "stride must be an int or a list of 2 ints, got True"),
        ("conv2d", {"padding": [1, 1, 1]}, TypeError, r"padding must be an int or a list of 2 ints, got \[1, 1, 1\]"),
        ("conv2d", {"dilation": [1, 2.0]}, TypeError, r"dilation must be an int or a list of 2 ints, got \[1, 2.0\]"),
        ("pool2d", {"pool_size": 2, "pool_type": "min"}, ValueError, "pool_type must be 'max' or 'avg', got 'min'"),
        ("pool2d", {}, ValueError, r"give pool_size \(an int or \[h, w\]\) unless global_pooling=True"),
        ("pool2d", {"pool_size": 2, "data_format": "NHWC"}, ValueError, "data_format must be 'NCHW', got 'NHWC'"),
        ("pool2d", {"pool_size": 2, "pool_stride": "2"}, TypeError, "pool_stride must be an int or a list of 2 ints"),
        ("batch_norm", {"momentum": 1.5}, ValueError, r"momentum must be in \[0, 1\], got 1.5"),
        ("batch_norm", {"epsilon": -1e-5}, ValueError, "epsilon must be >= 0, got -1e-05"),
        ("batch_norm", {"epsilon": "0.1"}, TypeError, "epsilon must be a real number >= 0, got '0.1'"),
        ("batch_norm", {"data_layout": "NHWC"}, ValueError, "data_layout must be 'NCHW', got 'NHWC'"),
    ],
)
def test_static_and_dygraph_layers_reject_the_same_arguments(layer, kwargs, exc, msg):
    static_layer, dygraph_layer = _BOTH_DOORS[layer]
    with fluid.program_guard(fluid.Program(), fluid.Program()):
        x = fluid.data(name="x", shape=[-1, 3, 8, 8], dtype="float32")
        with pytest.raises(exc, match=msg):
            static_layer(x, **kwargs)
    with fluid.dygraph.guard(), pytest.raises(exc, match=msg):
        dygraph_layer(**kwargs)
