"""The same dygraph model trained eagerly and as a static program (a fluid.Layer called on
static Variables) gives the same losses, gradients and parameters: a table of small models
(conv / batch_norm / pool / linear heads, SGD and Momentum), Paddle's own dygraph-vs-static
check on whole models. Also Paddle's helper API those models use: ``LayerHelper(..., act=)``
and its ``append_activation``, ``fluid.layer_helper``, ``core.grad_var_suffix``,
``VarBase._grad_ivar`` and the dygraph layers exported at the top of ``fluid``."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import nn
from torchfluid.layer_helper import LayerHelper

SEED = 7
RNG = np.random.RandomState(3)
IMG = RNG.rand(3, 4, 2, 9, 9).astype("float32")  # 3 batches of 4 images, 2 channels, 9 x 9
LBL = RNG.randint(0, 5, (3, 4, 1)).astype("int64")


class ConvBN(fluid.dygraph.Layer):
    def __init__(self, cin, cout, k, act="relu", stride=1):
        super().__init__()
        self.conv = fluid.Conv2D(cin, cout, k, stride=stride, padding=(k - 1) // 2, bias_attr=False)
        self.bn = fluid.BatchNorm(cout, act=act)

    def forward(self, x):
        return self.bn(self.conv(x))


class Residual(fluid.dygraph.Layer):
    """conv-bn-relu, conv-bn, plus the input, then relu through LayerHelper (as Paddle's ResNet)."""

    def __init__(self, c):
        super().__init__()
        self.a = ConvBN(c, c, 3)
        self.b = ConvBN(c, c, 1, act=None)

    def forward(self, x):
        y = fluid.layers.elementwise_add(x, self.b(self.a(x)))
        return LayerHelper(self.full_name(), act="relu").append_activation(y)


class Stem(fluid.dygraph.Layer):
    def __init__(self, first, second):
        super().__init__()
        self.first, self.second = first, second

    def forward(self, x):
        return self.second(self.first(x))


class Net(fluid.dygraph.Layer):
    def __init__(self, body, pool, flat):
        super().__init__()
        self.body = body
        self.pool = pool
        self.flat = flat
        self.fc = fluid.Linear(flat, 5, act="softmax")

    def forward(self, x):
        y = self.pool(self.body(x))
        return self.fc(fluid.layers.reshape(y, [-1, self.flat]))


def _nets():
    return {
        "conv-bn-maxpool": lambda: Net(ConvBN(2, 3, 3), fluid.Pool2D(3, "max", 2, 1), 3 * 5 * 5),
        "residual-avgpool": lambda: Net(
            Stem(ConvBN(2, 4, 3, stride=2), Residual(4)), fluid.Pool2D(global_pooling=True), 4
        ),
        "bn-no-act": lambda: Net(ConvBN(2, 2, 1, act=None), fluid.Pool2D(2, "avg", 2), 2 * 4 * 4),
        "2x-conv2d-batchnorm2d": lambda: Net(
            Stem(nn.Conv2D(2, 3, 3, padding=1), nn.BatchNorm2D(3, momentum=0.8)),
            fluid.Pool2D(3, "max", 2, 1),
            3 * 5 * 5,
        ),
    }


OPTIMIZERS = {
    "sgd": lambda params: fluid.optimizer.SGD(0.1, parameter_list=params),
    "momentum": lambda params: fluid.optimizer.Momentum(0.05, 0.9, parameter_list=params),
}


def _dygraph(make_net, make_opt):
    with fluid.dygraph.guard():
        fluid.default_main_program().random_seed = SEED
        net = make_net()
        opt = make_opt(net.parameters())
        init = {p.name: p.numpy() for p in net.parameters()}
        losses, grads = [], []
        for x, y in zip(IMG, LBL, strict=True):
            loss = fluid.layers.mean(
                fluid.layers.cross_entropy(net(fluid.dygraph.to_variable(x)), fluid.dygraph.to_variable(y))
            )
            loss.backward()
            losses.append(loss.numpy())
            grads.append(
                {p.name: np.array(p._grad_ivar().value().get_tensor()) for p in net.parameters() if p.trainable}
            )
            opt.minimize(loss)
            net.clear_gradients()
        return init, losses, grads, {p.name: p.numpy() for p in net.parameters()}


def _static(make_net, make_opt):
    main, startup = fluid.Program(), fluid.Program()
    main.random_seed = SEED
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        net = make_net()
        img = fluid.data("img", [None, 2, 9, 9], "float32")
        lbl = fluid.data("lbl", [None, 1], "int64")
        loss = fluid.layers.mean(fluid.layers.cross_entropy(net(img), lbl))
        make_opt(None).minimize(loss)
    names = [p.name for p in net.parameters()]
    gnames = [p.name + fluid.core.grad_var_suffix() for p in net.parameters() if p.trainable]
    exe, scope = fluid.Executor(fluid.CPUPlace()), fluid.Scope()
    init = dict(zip(names, exe.run(startup, fetch_list=names, scope=scope), strict=True))
    losses, grads = [], []
    for x, y in zip(IMG, LBL, strict=True):
        out = exe.run(main, feed={"img": x, "lbl": y}, fetch_list=[loss, *gnames, *names], scope=scope)
        losses.append(out[0])
        grads.append(dict(zip([g[: -len("@GRAD")] for g in gnames], out[1 : 1 + len(gnames)], strict=True)))
        params = dict(zip(names, out[1 + len(gnames) :], strict=True))
    return init, losses, grads, params


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("net", sorted(_nets()))
def test_static_training_equals_dygraph_bit_for_bit(net, opt):
    make_net, make_opt = _nets()[net], OPTIMIZERS[opt]
    d_init, d_losses, d_grads, d_params = _dygraph(make_net, make_opt)
    s_init, s_losses, s_grads, s_params = _static(make_net, make_opt)
    assert sorted(d_init) == sorted(s_init) and any("batch_norm" in n for n in d_init)
    for name, value in s_init.items():
        np.testing.assert_array_equal(value, d_init[name], err_msg=name)
    np.testing.assert_array_equal(np.concatenate(s_losses), np.concatenate(d_losses))
    for step, (sg, dg) in enumerate(zip(s_grads, d_grads, strict=True)):
        assert sorted(sg) == sorted(dg)
        for name in sg:
            np.testing.assert_array_equal(sg[name], dg[name], err_msg=f"step {step}: {name}@GRAD")
    for name, value in s_params.items():  # the moving statistics included
        np.testing.assert_array_equal(value, d_params[name], err_msg=name)


X = np.linspace(-2, 2, 12, dtype="float32").reshape(3, 4)

# (helper keyword arguments, append_activation's act argument (None: not given), numpy reference)
ACTIVATIONS = [
    ({"act": "relu"}, None, lambda a: np.maximum(a, 0)),
    ({"act": "tanh"}, None, np.tanh),
    ({}, None, lambda a: a),  # no act anywhere: the input itself
    ({"act": None}, None, lambda a: a),
    ({"act": "relu"}, "sigmoid", lambda a: 1 / (1 + np.exp(-a))),  # an explicit act wins
    ({"act": {"type": "leaky_relu", "alpha": 0.5}}, None, lambda a: np.where(a >= 0, a, 0.5 * a)),
    ({"act": {"type": "relu6", "threshold": 1.0, "use_cudnn": False}}, None, lambda a: np.clip(a, 0, 1)),
]


@pytest.mark.parametrize("kwargs,act,ref", ACTIVATIONS)
def test_layer_helper_append_activation_in_both_modes(kwargs, act, ref):
    def run(x):
        helper = LayerHelper("my_layer", **kwargs)
        assert helper.kwargs["act"] == kwargs.get("act") if "act" in kwargs else "act" not in helper.kwargs
        return helper.append_activation(x) if act is None else helper.append_activation(x, act)

    with fluid.dygraph.guard():
        np.testing.assert_allclose(run(fluid.dygraph.to_variable(X)).numpy(), ref(X), rtol=1e-6)
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        out = run(fluid.data("x", [3, 4], "float32"))
    (got,) = fluid.Executor().run(main, feed={"x": X}, fetch_list=[out], scope=fluid.Scope())
    np.testing.assert_allclose(got, ref(X), rtol=1e-6)


@pytest.mark.parametrize(
    "act,error,match",
    [
        ({"alpha": 0.5}, ValueError, "needs its op name under 'type'"),
        ("swish_it", ValueError, "act must be None or one of"),
        (3, TypeError, "expected an activation name"),
    ],
)
def test_layer_helper_refuses_a_bad_act(act, error, match):
    with fluid.dygraph.guard(), pytest.raises(error, match=match):
        LayerHelper("my_layer", act=act).append_activation(fluid.dygraph.to_variable(X))


def test_fluid_exports_and_grad_ivar():
    assert (fluid.Conv2D, fluid.Pool2D, fluid.BatchNorm, fluid.Embedding, fluid.Linear) == (
        fluid.dygraph.Conv2D,
        fluid.dygraph.Pool2D,
        fluid.dygraph.BatchNorm,
        fluid.dygraph.Embedding,
        fluid.dygraph.Linear,
    )
    assert fluid.core.grad_var_suffix() == "@GRAD"
    with fluid.dygraph.guard():
        lin = fluid.Linear(4, 2)
        assert lin.weight._grad_ivar() is None  # no gradient yet
        fluid.layers.mean(lin(fluid.dygraph.to_variable(X))).backward()
        g = lin.weight._grad_ivar()
        assert isinstance(g, fluid.core.VarBase) and g.name == lin.weight.name + "@GRAD"
        want = np.repeat(X.mean(0, keepdims=True).T / 2, 2, axis=1)  # d mean(x @ w + b) / dw
        np.testing.assert_allclose(np.array(g.value().get_tensor()), want, rtol=1e-6)
        g.value().get_tensor().set(np.zeros((4, 2), "float32"))  # writes the gradient itself
        np.testing.assert_array_equal(lin.weight.gradient(), np.zeros((4, 2), "float32"))
        assert isinstance(lin.weight.grad, torch.Tensor)


class TinyLSTM(fluid.dygraph.Layer):
    """Paddle's PtbModel in small: embedding, an LSTM step unrolled with slice / concat / matmul /
    split / sigmoid / tanh, the steps stacked and transposed (a non-contiguous batch) into a
    matmul projection, softmax_with_cross_entropy, reduce_mean over the batch, reduce_sum."""

    def __init__(self, vocab=20, hidden=4, steps=3, sparse=False):
        super().__init__()
        self.h, self.steps = hidden, steps
        uni = fluid.initializer.UniformInitializer(low=-0.5, high=0.5)
        self.emb = fluid.Embedding([vocab, hidden], is_sparse=sparse, param_attr=fluid.ParamAttr(initializer=uni))
        self.w = self.create_parameter([2 * hidden, 4 * hidden], default_initializer=uni)
        self.b = self.create_parameter([4 * hidden], default_initializer=uni)
        self.out_w = self.create_parameter([hidden, vocab], default_initializer=uni)
        self.out_b = self.create_parameter([vocab], default_initializer=uni)

    def forward(self, ids, label, h0):
        L = fluid.layers
        x = L.reshape(self.emb(ids), [-1, self.steps, self.h])
        h = c = L.reshape(h0, [-1, self.h])
        outs = []
        for t in range(self.steps):
            xt = L.reshape(L.slice(x, axes=[1], starts=[t], ends=[t + 1]), [-1, self.h])
            gates = L.elementwise_add(L.matmul(L.concat([xt, h], 1), self.w), self.b)
            i, j, f, o = L.split(gates, 4, dim=-1)
            c = c * L.sigmoid(f) + L.sigmoid(i) * L.tanh(j)
            h = L.tanh(c) * L.sigmoid(o)
            outs.append(L.reshape(h, [1, -1, self.h]))
        seq = L.transpose(L.concat(outs, 0), perm=[1, 0, 2])  # [batch, steps, hidden], not contiguous
        logits = L.reshape(L.elementwise_add(L.matmul(seq, self.out_w), self.out_b), [-1, self.out_w.shape[1]])
        loss = L.reshape(L.softmax_with_cross_entropy(logits=logits, label=label), [-1, self.steps])
        return L.reduce_sum(L.reduce_mean(loss, dim=[0]))


IDS = np.random.RandomState(5).randint(0, 20, (4, 3)).astype("int64")
NEXT = np.random.RandomState(6).randint(0, 20, (12, 1)).astype("int64")
H0 = np.zeros((4, 4), "float32")


@pytest.mark.parametrize("sparse", [False, True])
def test_lstm_language_model_trains_bit_for_bit_alike(sparse):
    steps = 4
    with fluid.dygraph.guard():
        fluid.default_main_program().random_seed = SEED
        net = TinyLSTM(sparse=sparse)
        opt = fluid.optimizer.SGD(0.5, parameter_list=net.parameters())
        d_losses = []
        for _ in range(steps):
            loss = net(*(fluid.dygraph.to_variable(a) for a in (IDS, NEXT, H0)))
            loss.backward()
            opt.minimize(loss)
            net.clear_gradients()
            d_losses.append(loss.numpy())
        d_params = {p.name: p.numpy() for p in net.parameters()}
    main, startup = fluid.Program(), fluid.Program()
    main.random_seed = SEED
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        net = TinyLSTM(sparse=sparse)
        ids, nxt = fluid.data("ids", [None, 3], "int64"), fluid.data("next", [None, 1], "int64")
        loss = net(ids, nxt, fluid.data("h0", [None, 4], "float32"))
        fluid.optimizer.SGD(0.5).minimize(loss)
    exe, scope = fluid.Executor(), fluid.Scope()
    exe.run(startup, scope=scope)
    names = [p.name for p in net.parameters()]
    for step in range(steps):
        out = exe.run(main, feed={"ids": IDS, "next": NEXT, "h0": H0}, fetch_list=[loss, *names], scope=scope)
        np.testing.assert_array_equal(out[0], d_losses[step], err_msg=f"loss of step {step}")
    for name, value in zip(names, out[1:], strict=True):
        np.testing.assert_array_equal(value, d_params[name], err_msg=name)


# (x shape, x permutation applied before the product (a non-contiguous operand), y shape)
MATMUL_LAYOUTS = [
    ((3, 4, 5), (1, 0, 2), (5, 6)),
    ((2, 3, 4, 5), (0, 2, 1, 3), (5, 2)),
    ((3, 4, 5), (1, 0, 2), (5,)),
    ((4, 5), (1, 0), (3, 4, 2)),
]


@pytest.mark.parametrize("xshape,perm,yshape", MATMUL_LAYOUTS)
def test_matmul_computes_the_same_bits_with_and_without_autograd(xshape, perm, yshape):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(xshape, generator=g).permute(*perm)
    y = torch.randn(yshape, generator=g)
    matmul = fluid.ops.get_op("matmul").forward
    plain = matmul(x, y)  # a program runs ops without autograd
    with torch.enable_grad():
        tracked = matmul(x.clone().requires_grad_(True), y.clone().requires_grad_(True))
    assert torch.equal(plain, tracked.detach())
    torch.testing.assert_close(plain, torch.matmul(x.double(), y.double()).float(), rtol=1e-5, atol=1e-5)


def test_square_error_cost_and_mean_equal_their_static_ops_bit_for_bit():
    """The page's loss, ``mean(square_error_cost(fc(x), y))``, and its gradients: dygraph
    (the layers' eager path) equals the program's ops."""
    rng = np.random.RandomState(11)
    x, y = rng.rand(4, 13).astype("float32"), rng.rand(4, 1).astype("float32")
    with fluid.dygraph.guard():
        fc = fluid.dygraph.Linear(13, 1)
        loss = fluid.layers.mean(
            fluid.layers.square_error_cost(fc(fluid.dygraph.to_variable(x)), fluid.dygraph.to_variable(y))
        )
        loss.backward()
        weights = {p.name: p.numpy() for p in fc.parameters()}
        d_grads = {p.name: p.gradient() for p in fc.parameters()}
        d_loss = loss.numpy()
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        xs, ys = fluid.data("x", [None, 13], "float32"), fluid.data("y", [None, 1], "float32")
        pred = fluid.layers.fc(xs, 1)
        s_loss = fluid.layers.mean(fluid.layers.square_error_cost(pred, ys))
        params = [p.name for p in main.global_block().all_parameters()]
        grads = fluid.backward.append_backward(s_loss)
    scope, exe = fluid.Scope(), fluid.Executor(fluid.CPUPlace())
    exe.run(startup, scope=scope)
    w_name, b_name = sorted(params, key=lambda n: n.endswith("b_0"))
    scope.var(w_name).get_tensor().set(weights["linear_0.w_0"], fluid.CPUPlace())
    scope.var(b_name).get_tensor().set(weights["linear_0.b_0"], fluid.CPUPlace())
    out = exe.run(main, feed={"x": x, "y": y}, fetch_list=[s_loss] + [g for _, g in grads], scope=scope)
    np.testing.assert_array_equal(out[0], d_loss)
    got = {p.name: g for (p, _), g in zip(grads, out[1:], strict=True)}
    np.testing.assert_array_equal(got[w_name], d_grads["linear_0.w_0"])
    np.testing.assert_array_equal(got[b_name], d_grads["linear_0.b_0"])
