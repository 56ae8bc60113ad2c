"""Every activation a layer's ``act`` accepts works in static programs as in dygraph mode.

For each name of ``torchfluid.ops.ACTIVATIONS``, ``fluid.layers.fc(act=...)`` and a dygraph
``Linear(act=...)`` called on a static Variable build a program whose Executor output equals
the eager (dygraph) forward bit for bit, and whose ``append_backward`` gradients equal torch
autograd of an independent definition of the activation (``torch.nn.functional``) and the
eager layer's own autograd gradients; one ``minimize`` step moves the parameters by the RMSProp step
of those gradients. Layer functions with attributes, and bad ``act`` names, are checked too.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import torchfluid as fluid
from torchfluid import layers as L
from torchfluid.dygraph import Linear, to_variable
from torchfluid.initializer import NumpyArrayInitializer
from torchfluid.ops import ACTIVATIONS
from torchfluid.static import append_backward

# independent definitions (Paddle's defaults: leaky_relu alpha 0.02, elu alpha 1, exact gelu)
REFERENCE = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda z: torch.softmax(z, dim=-1),
    "relu6": F.relu6,
    "leaky_relu": lambda z: F.leaky_relu(z, 0.02),
    "elu": lambda z: F.elu(z, 1.0),
    "gelu": lambda z: F.gelu(z, approximate="none"),
    "softplus": lambda z: F.softplus(z, beta=1.0, threshold=50.0),
    "softsign": F.softsign,
    "exp": torch.exp,
    "abs": torch.abs,
    "square": torch.square,
    "sqrt": torch.sqrt,
}

RNG = np.random.default_rng(7)
X = RNG.normal(size=(5, 3)) * 3  # pre-activations spread over about [-12, 12]: relu6 saturates
W = RNG.normal(size=(3, 4))
B = RNG.normal(size=4)
C = RNG.normal(size=(5, 4))  # loss weights, so that every output's gradient differs (softmax too)


def _data(act):
    """(x, w, b): positive for sqrt, whose input must stay positive."""
    return (np.abs(X), np.abs(W), np.abs(B) + 0.1) if act == "sqrt" else (X, W, B)


def _reference(act, x, w, b):
    """(out, {"x": dX, "w": dW, "b": dB}) from torch autograd of the reference definition."""
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out = REFERENCE[act](xt @ wt + bt)
    (out * torch.from_numpy(C)).mean().backward()
    return out.detach().numpy(), {"x": xt.grad.numpy(), "w": wt.grad.numpy(), "b": bt.grad.numpy()}


def _fc(x, act, w, b):
    return L.fc(x, 4, act=act, param_attr=NumpyArrayInitializer(w), bias_attr=NumpyArrayInitializer(b))


def _linear(act, w, b):
    return Linear(
        3, 4, param_attr=NumpyArrayInitializer(w), bias_attr=NumpyArrayInitializer(b), act=act, dtype="float64"
    )


def _run_static(build, x):
    """Build ``out = build(x_var)`` and ``loss = mean(out * c)``, append the backward, run it:
    (out, {"x": dX, param name: grad...}, the op types of the program)."""
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        xv = fluid.data("x", [-1, 3], "float64")
        xv.stop_gradient = False
        cv = fluid.data("c", [-1, 4], "float64")
        out = build(xv)
        loss = L.mean(L.elementwise_mul(out, cv))
        pg = append_backward(loss)
    scope, exe = fluid.Scope(), fluid.Executor(fluid.CPUPlace())
    exe.run(start, scope=scope)
    fetch = [out, main.global_block().var("x@GRAD")] + [g for _, g in pg]
    got = exe.run(main, feed={"x": x, "c": C}, fetch_list=fetch, scope=scope)
    grads = {"x": got[1], **{p.name: g for (p, _), g in zip(pg, got[2:], strict=True)}}
    return got[0], grads, [op.type for op in main.global_block().ops]


def _eager(call, x):
    """Dygraph: ``out = call(x)``, then autograd of the same loss: (out, dX)."""
    with fluid.dygraph.guard():
        xt = to_variable(x)
        xt.stop_gradient = False
        out = call(xt)
        (out * torch.from_numpy(C)).mean().backward()
        return out.detach().numpy(), xt.grad.numpy()


def test_the_table_covers_every_activation():
    assert sorted(REFERENCE) == sorted(ACTIVATIONS)


def _check(act, out, grads, types, w_name, b_name, eager_out, eager_dx):
    x, w, b = _data(act)
    assert act in types and act + "_grad" in types
    ref_out, ref = _reference(act, x, w, b)
    np.testing.assert_array_equal(out, eager_out)  # one forward function in both modes
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads["x"], eager_dx, rtol=1e-12, atol=1e-15)
    for got, want in ((grads["x"], ref["x"]), (grads[w_name], ref["w"]), (grads[b_name], ref["b"])):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_fc_act_static_equals_eager_and_autograd(act):
    x, w, b = _data(act)
    out, grads, types = _run_static(lambda xv: _fc(xv, act, w, b), x)
    eager_out, eager_dx = _eager(lambda xt: _fc(xt, act, w, b), x)
    _check(act, out, grads, types, "fc_0.w_0", "fc_0.b_0", eager_out, eager_dx)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_dygraph_linear_act_on_static_variable_equals_eager_and_autograd(act):
    x, w, b = _data(act)
    lin = _linear(act, w, b)
    out, grads, types = _run_static(lin, x)
    eager_out, eager_dx = _eager(lin, x)
    _check(act, out, grads, types, lin.weight.name, lin.bias.name, eager_out, eager_dx)
    ref = _reference(act, x, w, b)[1]
    np.testing.assert_allclose(lin.weight.grad.numpy(), ref["w"], rtol=1e-10, atol=1e-13)  # eager autograd
    np.testing.assert_allclose(lin.bias.grad.numpy(), ref["b"], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_fc_act_minimize_takes_the_rmsprop_step_of_the_reference_gradient(act):
    x, w, b = _data(act)
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        out = _fc(fluid.data("x", [-1, 3], "float64"), act, w, b)
        loss = L.mean(L.elementwise_mul(out, fluid.data("c", [-1, 4], "float64")))
        fluid.optimizer.RMSProp(0.1, rho=0.9, epsilon=1e-6).minimize(loss)
    scope, exe = fluid.Scope(), fluid.Executor(fluid.CPUPlace())
    exe.run(start, scope=scope)
    exe.run(main, feed={"x": x, "c": C}, scope=scope)
    ref = _reference(act, x, w, b)[1]
    for name, p0, g in (("fc_0.w_0", w, ref["w"]), ("fc_0.b_0", b, ref["b"])):
        rho, eps = float(np.float32(0.9)), float(np.float32(1e-6))  # Paddle's float32 attributes
        ms = (1 - rho) * g * g  # Paddle's first step from mean_square = 0, momentum 0
        want = p0 - 0.1 * g / np.sqrt(ms + eps)
        np.testing.assert_allclose(np.array(scope.find_var(name).get_tensor()), want, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- layer functions with attributes
Z = np.linspace(-8.0, 8.0, 33).reshape(3, 11)  # hits 0 exactly (a kink of relu6, leaky_relu, elu)


def _np_gelu_tanh(z):
    return 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)))


# (layer call, numpy reference of the forward, reference dOut -> dX at every point of Z, Paddle's kink rules included)
ATTR_LAYERS = [
    ("relu6", lambda z: L.relu6(z), lambda z: np.clip(z, 0, 6), lambda z: ((z > 0) & (z < 6)) * 1.0),
    (
        "relu6",
        lambda z: L.relu6(z, threshold=2.5),
        lambda z: np.clip(z, 0, 2.5),
        lambda z: ((z > 0) & (z < 2.5)) * 1.0,
    ),
    (
        "leaky_relu",
        lambda z: L.leaky_relu(z),
        lambda z: np.where(z >= 0, z, 0.02 * z),
        lambda z: np.where(z >= 0, 1, 0.02),
    ),
    (
        "leaky_relu",
        lambda z: L.leaky_relu(z, alpha=0.3),
        lambda z: np.where(z >= 0, z, 0.3 * z),
        lambda z: np.where(z >= 0, 1, 0.3),
    ),
    (
        "elu",
        lambda z: L.elu(z),
        lambda z: np.where(z > 0, z, np.expm1(z)),
        lambda z: np.where(z > 0, 1, np.exp(z)),  # Paddle: alpha * exp(x) for x <= 0
    ),
    (
        "elu",
        lambda z: L.elu(z, alpha=0.5),
        lambda z: np.where(z > 0, z, 0.5 * np.expm1(z)),
        lambda z: np.where(z > 0, 1, 0.5 * np.exp(z)),
    ),
    (
        "gelu",
        lambda z: L.gelu(z),
        lambda z: F.gelu(torch.from_numpy(z)).numpy(),
        lambda z: (
            0.5 * (1 + torch.erf(torch.from_numpy(z) / np.sqrt(2))).numpy()
            + z * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
        ),
    ),
    (
        "gelu",
        lambda z: L.gelu(z, approximate=True),
        _np_gelu_tanh,
        None,  # gradient: autograd of the numpy-equivalent torch formula below
    ),
    ("softplus", lambda z: L.softplus(z), lambda z: np.logaddexp(z, 0), lambda z: 1 / (1 + np.exp(-z))),
    ("softsign", lambda z: L.softsign(z), lambda z: z / (1 + np.abs(z)), lambda z: 1 / (1 + np.abs(z)) ** 2),
]


@pytest.mark.parametrize("case", ATTR_LAYERS, ids=[f"{c[0]}-{i}" for i, c in enumerate(ATTR_LAYERS)])
def test_activation_layer_static_equals_eager_and_reference(case):
    op_type, call, ref_fwd, ref_dx = case
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        zv = fluid.data("z", [-1, 11], "float64")
        zv.stop_gradient = False
        out = call(zv)
        append_backward(L.reduce_sum(out))
    assert [op.type for op in main.global_block().ops][:1] == [op_type]
    got, dz = fluid.Executor().run(main, feed={"z": Z}, fetch_list=[out, "z@GRAD"], scope=fluid.Scope())
    zt = torch.from_numpy(Z).requires_grad_()
    eager = call(zt)
    eager.sum().backward()
    np.testing.assert_array_equal(got, eager.detach().numpy())
    np.testing.assert_allclose(dz, zt.grad.numpy(), rtol=1e-12, atol=1e-14)  # grad rule = autograd, kinks too
    np.testing.assert_allclose(got, ref_fwd(Z), rtol=1e-12, atol=1e-14)
    if ref_dx is None:
        zr = torch.from_numpy(Z).requires_grad_()
        (0.5 * zr * (1 + torch.tanh(np.sqrt(2 / np.pi) * (zr + 0.044715 * zr**3)))).sum().backward()
        want = zr.grad.numpy()
    else:
        want = ref_dx(Z)
    np.testing.assert_allclose(dz, want, rtol=1e-12, atol=1e-14)


def test_layer_attributes_are_the_ops_attributes():
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()):
        z = fluid.data("z", [-1, 3], "float32")
        L.relu6(z, threshold=3)
        L.leaky_relu(z, alpha=0.1)
        L.elu(z, alpha=2)
        L.gelu(z, approximate=True)
    attrs = [(op.type, {k: v for k, v in op.attrs.items() if k != "op_role"}) for op in main.global_block().ops]
    assert attrs == [
        ("relu6", {"threshold": 3.0}),
        ("leaky_relu", {"alpha": 0.1}),
        ("elu", {"alpha": 2.0}),
        ("gelu", {"approximate": True}),
    ]


# ----------------------------------------------------------------------------- bad input
# attributes the activation ops check (in both modes: the op's forward checks them)
_BAD_ATTRS = [
    (lambda x: L.leaky_relu(x, alpha="a"), ValueError, "leaky_relu: alpha must be a real number, got 'a'"),
    (lambda x: L.leaky_relu(x, alpha=float("nan")), ValueError, "leaky_relu: alpha must be a finite number, got nan"),
    (lambda x: L.relu6(x, threshold=float("inf")), ValueError, "relu6: threshold must be > 0, got inf"),
    (lambda x: L.relu6(x, threshold=True), ValueError, "relu6: threshold must be a real number > 0, got True"),
    (lambda x: L.elu(x, alpha=-0.5), ValueError, "elu: alpha must be >= 0, got -0.5"),
    (lambda x: L.gelu(x, approximate="yes"), ValueError, "gelu: approximate must be True or False, got 'yes'"),
]


@pytest.mark.parametrize("build,error,match", _BAD_ATTRS)
def test_bad_activation_attribute_raises_in_dygraph_mode_too(build, error, match):
    with fluid.dygraph.guard():
        x = fluid.dygraph.to_variable(np.array([[-1.0, 0.0, 7.0]], "float32"))
        with pytest.raises(error, match=match):
            build(x)


@pytest.mark.parametrize(
    "build,error,match",
    [
        (lambda x: L.fc(x, 2, act="swishy"), ValueError, "act must be None or one of .*'gelu'.*got 'swishy'"),
        (lambda x: L.fc(x, 2, act="mul"), ValueError, "act must be None or one of .*got 'mul'"),
        (lambda x: L.fc(x, 2, act=3), TypeError, "act=3: expected an activation name"),
        (lambda x: L.elementwise_add(x, x, act="Relu"), ValueError, "got 'Relu'"),
        (lambda x: L.scale(x, 2.0, act="swish"), ValueError, "got 'swish'"),
        (lambda x: L.reshape(x, [0, 3], act="swish"), ValueError, "got 'swish'"),
        (lambda x: L.relu6(x, threshold=0.0), ValueError, "relu6: threshold must be > 0, got 0.0"),
        (lambda x: L.elu(x, alpha=-1.0), ValueError, "elu: alpha must be >= 0, got -1.0"),
        *_BAD_ATTRS,
    ],
)
def test_bad_activation_raises_and_leaves_the_program_unchanged(build, error, match):
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start):
        x = fluid.data("x", [-1, 3], "float32")
        with pytest.raises(error, match=match):
            build(x)
    assert main.global_block().ops == [] and start.global_block().ops == []
    assert [v.name for v in main.global_block().all_parameters()] == []


@pytest.mark.parametrize("act", ["swishy", "mul", 3, "RELU"])
def test_dygraph_layer_with_an_unknown_act_raises_the_same_error(act):
    with pytest.raises(ValueError, match=f"act must be None or one of .*got {act!r}"):
        Linear(3, 2, act=act)


def test_layers_sign_in_both_modes_equals_numpy_and_passes_no_gradient():
    x_np = np.array([[-2.5, 0.0, 3.0], [1e-30, -0.0, -7.0]], "float32")
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start):
        x = fluid.data("x", [-1, 3], "float32")
        x.stop_gradient = False
        y = L.sign(x)
        append_backward(L.reduce_sum(L.elementwise_mul(x, y)))
    exe = fluid.Executor(fluid.CPUPlace())
    exe.run(start)
    out, grad = exe.run(main, feed={"x": x_np}, fetch_list=[y, "x@GRAD"])
    np.testing.assert_array_equal(out, np.sign(x_np))
    np.testing.assert_array_equal(grad, np.sign(x_np))  # d(x * sign(x))/dx = sign(x): sign itself passes 0
    with fluid.dygraph.guard():
        np.testing.assert_array_equal(L.sign(to_variable(x_np)).numpy(), np.sign(x_np))
    with pytest.raises(TypeError, match="sign: x must have one of the dtypes"):
        L.sign(np.array([1, -1], "int64"))
