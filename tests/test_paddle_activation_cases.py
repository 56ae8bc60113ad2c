"""The activation ops against the cases of Paddle's own operator tests.

Paddle checks each activation op with ``OpTest`` (fluid 1.x ``test_activation_op.py``,
``test_softmax_op.py``, ``test_sign_op.py``): a random input of a fixed shape and range, moved
off the op's kinks (``x[|x - k| < 0.005] = k + 0.02``: the numeric gradient, a central
difference with step 0.005, is wrong within a step of a kink); ``check_output`` compares the
forward with a numpy formula (``atol=1e-5``); ``check_grad`` compares the gradient of
``mean(Out)`` built by the grad op with the numeric gradient, with Paddle's relative error
(``|a - n| / max(|n|, 1 if |n| < 1e-3)``) at most ``max_relative_error`` (0.005 unless the test
says otherwise). The same cases run here through a static Program (``append_backward`` and the
Executor) and through dygraph, against numpy references written from Paddle's formulas, with
Paddle's tolerances; the gradient is also compared with Paddle's grad functor (its formula in
numpy) tightly, and at the kinks themselves, where Paddle's grad functors pick a side.
"""

import inspect
import math

import numpy as np
import pytest

import torchfluid as fluid
from torchfluid import layers as L
from torchfluid.dygraph import to_variable
from torchfluid.layers.helper import apply_op
from torchfluid.static import append_backward

# ----------------------------------------------------------------------------- numpy references
_erf = np.frompyfunc(math.erf, 1, 1)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def erf(x):
    return _erf(x).astype(np.float64)


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_gelu(x):
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def np_gelu_grad(x):  # Paddle's GeluGradFunctor: Phi(x) + x * phi(x)
    return 0.5 * (1.0 + erf(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def np_gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3)))


def np_gelu_tanh_grad(x):
    t = np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3))
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * x * x)


def np_elu(alpha):
    return lambda x: np.maximum(x, 0) + np.minimum(alpha * (np.exp(x) - 1.0), 0)  # Paddle's fluid forward


def np_softmax(axis):
    def f(x):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    return f


def np_softmax_vjp(axis):
    """The gradient of ``mean(softmax(x))`` (not elementwise): ``s * (g - sum(g * s))``, ``g = 1/N``."""

    def f(x):
        s = np_softmax(axis)(x)
        g = np.full_like(s, 1.0 / s.size)
        return s * (g - (g * s).sum(axis=axis, keepdims=True))

    return f


class Case:
    """One of Paddle's OpTest cases: the layer call, the input (dtype, shape, uniform range, kinks
    moved off as Paddle does), the numpy forward, the derivative (elementwise, or the gradient of
    ``mean(out)`` when ``grad_of_mean``) and Paddle's ``max_relative_error``."""

    def __init__(self, name, call, dtype, shape, low, high, ref, dref, mre=0.005, kinks=(), grad_of_mean=False):
        self.name, self.call, self.dtype, self.shape = name, call, dtype, shape
        self.low, self.high, self.ref, self.dref, self.mre = low, high, ref, dref, mre
        self.kinks, self.grad_of_mean = kinks, grad_of_mean

    def input(self, seed):
        x = np.random.default_rng(seed).uniform(self.low, self.high, self.shape).astype(self.dtype)
        for kink, moved in self.kinks:  # Paddle's "the same reason as TestAbs"
            x[np.abs(x - kink) < 0.005] = moved
        return x


def _sign(x):
    return apply_op("sign", {"X": x})


F32, F64 = "float32", "float64"
CASES = [
    # op, layer, dtype, shape, range, numpy forward, derivative, max_relative_error, kinks
    Case("exp", L.exp, F64, [11, 17], 0.1, 1, np.exp, np.exp),
    Case("sigmoid", L.sigmoid, F32, [11, 17], -1, 1, np_sigmoid, lambda x: np_sigmoid(x) * (1 - np_sigmoid(x)), 0.01),
    Case("tanh", L.tanh, F32, [11, 17], 0.1, 1, np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    Case("sqrt", L.sqrt, F64, [11, 17], 0.1, 1, np.sqrt, lambda x: 0.5 / np.sqrt(x)),
    Case("abs", L.abs, F64, [4, 25], -1, 1, np.abs, np.sign, kinks=[(0.0, 0.02)]),
    Case("relu", L.relu, F64, [11, 17], -1, 1, lambda x: np.maximum(x, 0), lambda x: (x > 0) * 1.0, kinks=[(0, 0.02)]),
    Case(
        "leaky_relu",
        L.leaky_relu,  # Paddle's default alpha 0.02 (the test passes no attribute)
        F64,
        [11, 17],
        -1,
        1,
        lambda x: np.maximum(x, 0.02 * x),
        lambda x: np.where(x >= 0, 1.0, 0.02),
        kinks=[(0.0, 0.02)],
    ),
    Case("gelu", L.gelu, F64, [11, 17], -1, 1, np_gelu, np_gelu_grad),
    Case("gelu", lambda x: L.gelu(x, approximate=True), F64, [11, 17], -1, 1, np_gelu_tanh, np_gelu_tanh_grad),
    Case(
        "relu6",
        lambda x: L.relu6(x, threshold=6.0),
        F64,
        [10, 12],
        -1,
        10,
        lambda x: np.minimum(np.maximum(x, 0), 6.0),
        lambda x: ((x > 0) & (x < 6.0)) * 1.0,
        kinks=[(0.0, 0.02), (6.0, 6.02)],
    ),
    Case(
        "elu", lambda x: L.elu(x, alpha=1.0), F64, [10, 12], -3, 3, np_elu(1.0), lambda x: np.where(x > 0, 1, np.exp(x))
    ),
    Case("log", L.log, F64, [11, 17], 0.1, 1, np.log, lambda x: 1 / x),
    Case("square", L.square, F64, [11, 17], 0.1, 1, np.square, lambda x: 2 * x, 0.007),
    Case("softplus", L.softplus, F64, [11, 17], -1, 1, lambda x: np.log(1 + np.exp(x)), np_sigmoid),
    Case(
        "softsign", L.softsign, F64, [11, 17], -1, 1, lambda x: x / (1 + np.abs(x)), lambda x: 1 / (1 + np.abs(x)) ** 2
    ),
    Case("sign", _sign, F64, [10, 10], -10, 10, np.sign, np.zeros_like, kinks=[(0.0, 0.02)]),
    Case("sin", L.sin, F64, [11, 17], -3, 3, np.sin, np.cos),
    Case("cos", L.cos, F64, [11, 17], -3, 3, np.cos, lambda x: -np.sin(x)),
    Case("softmax", L.softmax, F32, [10, 10], 0.1, 1, np_softmax(-1), np_softmax_vjp(-1), 0.01, grad_of_mean=True),
    Case("softmax", L.softmax, F32, [2, 3, 4, 5], 0.1, 1, np_softmax(-1), np_softmax_vjp(-1), 0.01, grad_of_mean=True),
    *(
        Case(
            "softmax",
            lambda x, a=axis: L.softmax(x, axis=a),
            F64,
            [2, 3, 4, 5],
            -1,
            1,
            np_softmax(axis),
            np_softmax_vjp(axis),
            0.01,
            grad_of_mean=True,
        )
        for axis in (0, 1, 2, 3)
    ),
    # attributes beyond the defaults: Paddle 2.x's TestLeakyReluAlpha1-3 (alpha 2, -0.01, -2); elu and relu6
    # with other attributes (Paddle's elu test with alpha -0.2 is 2.x only: fluid 1.x's forward is relu there)
    *(
        Case(
            "leaky_relu",
            lambda x, a=alpha: L.leaky_relu(x, alpha=a),
            F64,
            [11, 17],
            -1,
            1,
            lambda x, a=alpha: np.where(x >= 0, x, a * x),
            lambda x, a=alpha: np.where(x >= 0, 1.0, a),
            kinks=[(0.0, 0.02)],
        )
        for alpha in (2.0, -0.01, -2.0)
    ),
    Case(
        "elu",
        lambda x: L.elu(x, alpha=0.5),
        F64,
        [10, 12],
        -3,
        3,
        np_elu(0.5),
        lambda x: np.where(x > 0, 1, 0.5 * np.exp(x)),
        kinks=[(0.0, 0.02)],  # differentiable at 0 only for alpha = 1
    ),
    Case(
        "relu6",
        lambda x: L.relu6(x, threshold=2.5),
        F64,
        [10, 12],
        -1,
        4,
        lambda x: np.clip(x, 0, 2.5),
        lambda x: ((x > 0) & (x < 2.5)) * 1.0,
        kinks=[(0.0, 0.02), (2.5, 2.52)],
    ),
]
IDS = [f"{c.name}-{i}" for i, c in enumerate(CASES)]


# ----------------------------------------------------------------------------- Paddle's checks
def numeric_grad_of_mean(f, x, delta=0.005):
    """Central differences of ``mean(f(x))`` with Paddle's step, one element at a time, in float64."""
    x = x.astype(np.float64)
    grad = np.empty_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + delta
        hi = f(x).mean()
        flat[i] = keep - delta
        lo = f(x).mean()
        flat[i] = keep
        gflat[i] = (hi - lo) / (2 * delta)
    return grad


def max_relative_error(analytic, numeric):
    """Paddle's ``check_grad`` measure: ``|a - n| / |n|``, with ``|n|`` below 1e-3 counted as 1."""
    scale = np.abs(numeric)
    scale[scale < 1e-3] = 1.0
    return float(np.max(np.abs(analytic - numeric) / scale))


def run_static(call, x):
    """``out = call(x)``, ``append_backward(mean(out))``: (out, x@GRAD, the program's op types)."""
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        xv = fluid.data("x", list(x.shape), str(x.dtype))
        xv.stop_gradient = False
        out = call(xv)
        append_backward(L.mean(out))
    exe = fluid.Executor(fluid.CPUPlace())
    got, dx = exe.run(main, feed={"x": x}, fetch_list=[out, "x@GRAD"], scope=fluid.Scope())
    return got, dx, [op.type for op in main.global_block().ops]


def run_dygraph(call, x):
    """Dygraph: ``out = call(x)``, ``mean(out).backward()``: (out, dX)."""
    with fluid.dygraph.guard():
        xt = to_variable(x)
        xt.stop_gradient = False
        out = call(xt)
        L.mean(out).backward()
        return out.numpy(), xt.gradient()


def _expected_grad(case, x):
    x64 = x.astype(np.float64)
    return case.dref(x64) if case.grad_of_mean else case.dref(x64) / x.size


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_static_program_passes_paddles_check_output_and_check_grad(case):
    x = case.input(seed=2020)
    out, dx, types = run_static(case.call, x)
    assert types[0] == case.name and case.name + "_grad" in types
    assert out.dtype == x.dtype and dx.dtype == x.dtype and out.shape == x.shape == dx.shape
    np.testing.assert_allclose(out, case.ref(x.astype(np.float64)), rtol=1e-5, atol=1e-5)  # check_output
    numeric = numeric_grad_of_mean(case.ref, x)
    assert max_relative_error(dx, numeric) <= case.mre  # check_grad
    tol = 1e-5 if x.dtype == np.float32 else 1e-12  # the grad functor's formula itself
    np.testing.assert_allclose(dx, _expected_grad(case, x), rtol=tol, atol=tol * 1e-2)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_dygraph_passes_the_same_checks_and_equals_the_static_program(case):
    x = case.input(seed=2021)
    out, dx = run_dygraph(case.call, x)
    s_out, s_dx, _ = run_static(case.call, x)
    np.testing.assert_array_equal(out, s_out)  # one forward function in both modes
    tol = 1e-6 if x.dtype == np.float32 else 1e-13  # autograd of the forward vs the grad rule
    np.testing.assert_allclose(dx, s_dx, rtol=tol, atol=tol * 1e-2)
    np.testing.assert_allclose(out, case.ref(x.astype(np.float64)), rtol=1e-5, atol=1e-5)
    assert max_relative_error(dx, numeric_grad_of_mean(case.ref, x)) <= case.mre


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("case", [c for c in CASES if c.dtype == F64 and not c.grad_of_mean], ids=lambda c: c.name)
def test_float32_input_runs_in_float32_with_paddles_fp32_tolerances(case, dtype):
    """Paddle's older tests ran these ops in float32 too; the result stays in the input's dtype."""
    x = case.input(seed=7).astype(dtype)
    out, dx, _ = run_static(case.call, x)
    assert out.dtype == np.dtype(dtype) and dx.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out, case.ref(x.astype(np.float64)), rtol=1e-5, atol=1e-5)
    assert max_relative_error(dx, numeric_grad_of_mean(case.ref, x)) <= max(case.mre, 0.005)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float16_passes_paddles_fp16_checks(case):
    """Paddle's fp16 variants (``create_test_act_fp16_class``): the output within ``atol=1e-3`` (float16
    rounds at 2**-11 relative); Paddle bounds the fp16 gradient's relative error by 0.8, we by 0.01."""
    x = case.input(seed=5).astype(np.float16)
    out, dx, _ = run_static(case.call, x)
    d_out, d_dx = run_dygraph(case.call, x)
    assert out.dtype == dx.dtype == np.float16
    np.testing.assert_array_equal(out, d_out)
    np.testing.assert_allclose(out, case.ref(x.astype(np.float64)), rtol=1e-5, atol=1e-3)
    numeric = numeric_grad_of_mean(case.ref, x)
    for grad in (dx, d_dx):
        assert max_relative_error(grad.astype(np.float64), numeric) <= 0.01


@pytest.mark.parametrize(
    "name,ref",
    [
        ("tanh", np.tanh),
        ("sqrt", np.sqrt),
        ("exp", np.exp),
        ("log", np.log),
        ("abs", np.abs),
        ("square", np.square),
        ("sigmoid", np_sigmoid),
    ],
)
def test_dygraph_float64_value_equals_numpy_exactly(name, ref):
    """Paddle's ``TestParameter.test_dygraph``: ``op([0.1])`` in float64 equals numpy's value exactly."""
    x = np.array([0.1])
    with fluid.dygraph.guard():
        got = getattr(L, name)(to_variable(x)).numpy()
    assert got.dtype == np.float64 and got[0] == ref(x)[0]


# ----------------------------------------------------------------------------- the kinks themselves
# Points Paddle's tests move away from; there the gradient is the side Paddle's grad functor picks:
# relu / relu6 from Out (``out > 0``, ``out < threshold``), leaky_relu ``x >= 0``, elu ``x > 0`` else
# ``alpha * exp(x)`` (so alpha at 0), abs ``sign(x)``, sign 0.
KINK_X = np.array([[-6.0, -1.0, -0.0, 0.0, 1.0, 2.5, 6.0, 7.0]])
KINKS = [
    ("relu", L.relu, [0, 0, 0, 0, 1, 1, 1, 1]),
    ("relu6", L.relu6, [0, 0, 0, 0, 1, 1, 0, 0]),
    ("relu6", lambda x: L.relu6(x, threshold=2.5), [0, 0, 0, 0, 1, 0, 0, 0]),
    ("leaky_relu", L.leaky_relu, [0.02, 0.02, 1, 1, 1, 1, 1, 1]),
    ("leaky_relu", lambda x: L.leaky_relu(x, alpha=-2.0), [-2, -2, 1, 1, 1, 1, 1, 1]),
    ("elu", L.elu, [math.exp(-6), math.exp(-1), 1, 1, 1, 1, 1, 1]),
    ("elu", lambda x: L.elu(x, alpha=0.5), [0.5 * math.exp(-6), 0.5 * math.exp(-1), 0.5, 0.5, 1, 1, 1, 1]),
    ("elu", lambda x: L.elu(x, alpha=0), [0, 0, 0, 0, 1, 1, 1, 1]),
    ("abs", L.abs, [-1, -1, 0, 0, 1, 1, 1, 1]),
    ("sign", _sign, [0, 0, 0, 0, 0, 0, 0, 0]),
    ("softsign", L.softsign, [1 / 49, 1 / 4, 1, 1, 1 / 4, 1 / 3.5**2, 1 / 49, 1 / 64]),
    ("gelu", L.gelu, list(np_gelu_grad(KINK_X[0]))),
]


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("name,call,want", KINKS, ids=[f"{k[0]}-{i}" for i, k in enumerate(KINKS)])
def test_gradient_at_the_kinks_is_paddles_choice_in_both_modes(name, call, want, dtype):
    x = KINK_X.astype(dtype)
    want = np.array([want], dtype=np.float64) / x.size  # the gradient of mean(out)
    tol = 1e-6 if dtype == F32 else 1e-14
    s_out, s_dx, types = run_static(call, x)
    d_out, d_dx = run_dygraph(call, x)
    assert types[0] == name
    np.testing.assert_array_equal(s_out, d_out)
    for dx in (s_dx, d_dx):
        np.testing.assert_allclose(dx, want, rtol=tol, atol=tol * 1e-3)


# ----------------------------------------------------------------------------- large inputs
BIG_X = np.array([[-1000.0, -100.0, -30.0, 30.0, 100.0, 1000.0]])
BIG = [  # (layer, numpy forward, derivative), each finite where exp(|x|) overflows float32 and float64
    (L.elu, np_elu(1.0), lambda x: np.where(x > 0, 1.0, np.exp(x))),
    (L.softplus, lambda x: np.logaddexp(x, 0), lambda x: np.exp(-np.logaddexp(0, -x))),
    (L.sigmoid, lambda x: np.exp(-np.logaddexp(0, -x)), lambda x: np.exp(-np.logaddexp(0, -x) - np.logaddexp(0, x))),
    (L.tanh, np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    (L.softsign, lambda x: x / (1 + np.abs(x)), lambda x: 1 / (1 + np.abs(x)) ** 2),
    (L.gelu, np_gelu, np_gelu_grad),
    (lambda x: L.gelu(x, approximate=True), np_gelu_tanh, np_gelu_tanh_grad),
]


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("call,ref,dref", BIG, ids=["elu", "softplus", "sigmoid", "tanh", "softsign", "gelu", "gelu_t"])
def test_large_inputs_give_finite_outputs_and_gradients_in_both_modes(call, ref, dref, dtype):
    x = BIG_X.astype(dtype)
    with np.errstate(over="ignore"):
        want, dwant = ref(BIG_X), dref(BIG_X) / x.size
    s_out, s_dx, _ = run_static(call, x)
    d_out, d_dx = run_dygraph(call, x)
    for out, dx in ((s_out, s_dx), (d_out, d_dx)):
        assert np.isfinite(out).all() and np.isfinite(dx).all()
        np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(dx, dwant, rtol=1e-5, atol=1e-12)


# ----------------------------------------------------------------------------- fluid 1.x signatures
FLUID_1X_SIGNATURES = {
    "relu": "(x, name=None)",
    "sigmoid": "(x, name=None)",
    "tanh": "(x, name=None)",
    "exp": "(x, name=None)",
    "abs": "(x, name=None)",
    "square": "(x, name=None)",
    "sqrt": "(x, name=None)",
    "log": "(x, name=None)",
    "softplus": "(x, name=None)",
    "softsign": "(x, name=None)",
    "sin": "(x, name=None)",
    "cos": "(x, name=None)",
    "relu6": "(x, threshold=6.0, name=None)",
    "leaky_relu": "(x, alpha=0.02, name=None)",
    "elu": "(x, alpha=1.0, name=None)",
    "gelu": "(x, approximate=False)",
    "softmax": "(input, use_cudnn=False, name=None, axis=-1)",
}


@pytest.mark.parametrize("name,signature", sorted(FLUID_1X_SIGNATURES.items()))
def test_layer_signature_is_fluid_1x(name, signature):
    assert str(inspect.signature(getattr(L, name))) == signature


# ----------------------------------------------------------------------------- Paddle's error checks
# Paddle's TestXxxOpError: an integer input is refused (abs, exp and square accept int32/int64);
# float16 is accepted. Nothing is added to the program.
REFUSE_INT = [
    *("relu", "sigmoid", "tanh", "sqrt", "log", "softplus", "softsign", "sin", "cos"),
    *("relu6", "leaky_relu", "elu", "gelu"),
]


@pytest.mark.parametrize("dtype", ["int32", "int64"])
@pytest.mark.parametrize("name", REFUSE_INT)
def test_integer_input_is_refused_and_the_program_is_unchanged(name, dtype):
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()):
        x = fluid.data("x", [12, 10], dtype)
        with pytest.raises(TypeError, match=f"{name}: x must have one of the dtypes float16, .*float64; got {dtype}"):
            getattr(L, name)(x)
    assert main.global_block().ops == []


@pytest.mark.parametrize("name", REFUSE_INT)
def test_integer_tensor_is_refused_in_dygraph_mode_too(name):
    with fluid.dygraph.guard():
        x = to_variable(np.array([[1, -2, 3]], dtype="int64"))
        with pytest.raises(TypeError, match=f"{name}: x must have one of the dtypes .*; got int64"):
            getattr(L, name)(x)


@pytest.mark.parametrize("name", REFUSE_INT + ["abs", "exp", "square"])
def test_float16_input_builds(name):
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()):
        out = getattr(L, name)(fluid.data("x", [12, 10], "float16"))
    assert out.dtype == "float16" and main.global_block().ops[-1].type == name


@pytest.mark.parametrize("name", ["abs", "square"])
def test_abs_and_square_take_integers_as_paddle_does(name):
    x = np.array([[-3, 0, 2]], dtype="int64")
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()):
        out = getattr(L, name)(fluid.data("x", [1, 3], "int64"))
    (got,) = fluid.Executor(fluid.CPUPlace()).run(main, feed={"x": x}, fetch_list=[out], scope=fluid.Scope())
    np.testing.assert_array_equal(got, np.abs(x) if name == "abs" else x * x)


@pytest.mark.parametrize("alpha", [-0.2, -1, float("nan"), float("inf")])
def test_negative_or_non_finite_elu_alpha_is_refused(alpha):
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()):
        x = fluid.data("x", [-1, 3], "float32")
        with pytest.raises(ValueError) as err:
            L.elu(x, alpha=alpha)
    # the message ends with the op's check (it starts with the op and the line that built it)
    assert str(err.value).endswith(f"elu: alpha must be >= 0, got {alpha!r}")
    assert main.global_block().ops == []
