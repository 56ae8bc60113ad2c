"""Whole training loops against real Paddle's losses: the optimizer cases of PaddleTest's
``framework/api/optimizer`` suite (Paddle's own API tests), rebuilt here.

Each case trains a float64 model made with ``set_default_dtype('float64')`` and constant
initial values (weights 0.5, biases 0.33) on one fixed input (numpy's ``random`` after
``seed(33)``, shape ``[1, 1, 10]``) for 10 steps of ``loss = mean(model(x))``, backward,
``step()``, ``clear_grad()``; the losses are those real Paddle printed. The models:
``linear`` is Linear(10, 2); ``mlp`` is Linear(10, 20) then Linear(20, 2) (so its gradients
depend on the weights). PaddleTest compares with ``rtol=1e-5``; float64 leaves no reason
for more than rounding noise, so these cases hold to ``rtol=1e-12``.

Every case also runs as a fluid static program (the same layers called on a static
Variable, ``minimize``, ``Executor.run``), which must give the same losses.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import framework
from torchfluid import nn as nn2
from torchfluid.initializer import Constant

from .test_one_step_numpy import rmsprop_numpy

RTOL, ATOL = 1e-12, 1e-14

# name -> (model, optimizer class name, optimizer arguments, Paddle's 10 losses)
CASES = {
    "rmsprop": (
        "linear",
        "RMSProp",
        {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-06, "momentum": 0.0, "centered": False},
        [
            2.6125570230480717, 2.587681377682089, 2.569863466410184, 2.5551302890912857, 2.542210734049388,
            2.530511471542003, 2.519700051053436, 2.509568526409088, 2.4999768246556466, 2.4908254116504214,
        ],
    ),
    "sgd": (
        "linear",
        "SGD",
        {"learning_rate": 0.001},
        [
            2.6125570230480717, 2.6106062484608996, 2.608655473873728, 2.6067046992865555, 2.604753924699384,
            2.6028031501122113, 2.6008523755250392, 2.598901600937867, 2.596950826350695, 2.595000051763523,
        ],
    ),
    "momentum": (
        "linear",
        "Momentum",
        {"learning_rate": 0.001, "momentum": 0.9, "use_nesterov": False},
        [
            2.6125570230480717, 2.6106062484608996, 2.6068997767917828, 2.6016131777907745, 2.5949044642287373,
            2.58691584759568, 2.57777531822922, 2.5675980674301604, 2.55648776736648, 2.5445377229868855,
        ],
    ),
    "adagrad": (
        "linear",
        "Adagrad",
        {"learning_rate": 0.001, "epsilon": 1.0e-6, "initial_accumulator_value": 0.0},
        [
            2.6125570230480717, 2.6069919310016734, 2.6030568121214954, 2.5998437993621866, 2.5970612478391,
            2.5945724575771516, 2.592300512948242, 2.5901971006934144, 2.5882295385033647, 2.5863745029324328,
        ],
    ),
    "adam": (
        "linear",
        "Adam",
        {"learning_rate": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-08},
        [
            2.6125570230480717, 2.6069918720704797, 2.601426739712486, 2.5958616135601766, 2.590296490510068,
            2.5847313693207723, 2.579166249371597, 2.573601130307867, 2.5680360119079126, 2.5624708940239613,
        ],
    ),
    "adamw": (
        "linear",
        "AdamW",
        {"learning_rate": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-08, "weight_decay": 0.01},
        [
            2.6125570230480717, 2.6069657465008333, 2.601374544485957, 2.5957834045887838, 2.59019232370521,
            2.5846013005932567, 2.5790103346316533, 2.5734194254651532, 2.5678285728715196, 2.562237776702413,
        ],
    ),
    "adamax": (
        "linear",
        "Adamax",
        {"learning_rate": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-08},
        [
            2.6125570230480717, 2.606991907675149, 2.6014267930005563, 2.595861678557881, 2.590296564230524,
            2.5847314499718492, 2.5791663357585426, 2.5736012215772877, 2.568036107419764, 2.5624709932804293,
        ],
    ),
    "adadelta": (
        "linear",
        "Adadelta",
        {"learning_rate": 0.001, "epsilon": 1.0e-6, "rho": 0.95, "weight_decay": 0.01},
        [
            2.6125570230480717, 2.6125321429832447, 2.6125069460652783, 2.6124815347999717, 2.6124559599406045,
            2.6124302517130675, 2.6124044301398666, 2.6123785094395275, 2.612352500216587, 2.612326410673878,
        ],
    ),
    "lamb": (
        "linear",
        "Lamb",
        {"learning_rate": 0.001, "lamb_weight_decay": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-06},
        [
            2.6125570230480717, 2.6099444421328157, 2.6073344737985504, 2.6047271154326452, 2.6021223644251172,
            2.599520218168603, 2.5969206740583504, 2.59432372949221, 2.591729381870638, 2.589137628596689,
        ],
    ),
    # two parameter groups: the second with its own weight_decay and a learning-rate multiplier
    "sgd_param_groups": (
        "mlp",
        "SGD",
        {"learning_rate": 0.01, "weight_decay": 0.01, "groups": [{}, {"weight_decay": 0.001, "learning_rate": 0.1}]},
        [
            26.45557023048071, 26.189615890352265, 25.925730483606507, 25.66389296221932, 25.404082443027733,
            25.14627820606084, 24.89045969288372, 24.636606504954457, 24.384698401993962, 24.134715300368555,
        ],
    ),
}  # fmt: skip


def _input() -> np.ndarray:
    return np.random.RandomState(33).random_sample((1, 1, 10))


@pytest.fixture
def float64_default():
    before = framework.get_default_dtype()
    framework.set_default_dtype("float64")
    yield
    framework.set_default_dtype(before)


def _layers(model: str) -> list:
    sizes = {"linear": [10, 2], "mlp": [10, 20, 2]}[model]
    return [
        nn2.Linear(i, o, weight_attr=Constant(value=0.5), bias_attr=Constant(value=0.33))
        for i, o in zip(sizes, sizes[1:], strict=False)
    ]


def _forward(layers, x):
    for layer in layers:
        x = layer(x)
    return x


def _optimizer(kind: str, args: dict, layers, static: bool):
    args = dict(args)
    groups = args.pop("groups", None)
    if static:
        return getattr(fluid.optimizer, kind)(**args)
    if groups is None:
        params = [p for layer in layers for p in layer.parameters()]
    else:
        params = [{"params": layer.parameters(), **g} for layer, g in zip(layers, groups, strict=True)]
    return getattr(fluid.optimizer, kind)(parameters=params, **args)


def _train(layers, opt, x) -> list:
    """PaddleTest's Runner: 10 steps of ``mean(model(x))``, backward, step, clear_grad."""
    losses = []
    for _ in range(10):
        loss = fluid.layers.mean(_forward(layers, x))
        loss.backward()
        opt.step()
        opt.clear_grad()
        losses.append(float(loss.numpy().item()))
    return losses


def _dygraph_losses(model, kind, args):
    with fluid.dygraph.guard():
        layers = _layers(model)
        return _train(layers, _optimizer(kind, args, layers, static=False), fluid.dygraph.to_variable(_input()))


def _static_losses(model, kind, args):
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.data(name="x", shape=[1, 1, 10], dtype="float64")
        layers = _layers(model)
        loss = fluid.layers.mean(_forward(layers, x))
        _optimizer(kind, args, layers, static=True).minimize(loss)
    exe, scope = fluid.Executor(fluid.CPUPlace()), fluid.Scope()
    exe.run(startup, scope=scope)
    for layer in layers:  # the constant initial values, into the program's parameters
        for p in layer.parameters():
            scope.var(p.name).get_tensor().set(p.detach().numpy(), fluid.CPUPlace())
    return [float(exe.run(main, feed={"x": _input()}, fetch_list=[loss], scope=scope)[0].item()) for _ in range(10)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_dygraph_loop_matches_paddle(name, float64_default):
    model, kind, args, expected = CASES[name]
    np.testing.assert_allclose(_dygraph_losses(model, kind, args), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", sorted(n for n, case in CASES.items() if "groups" not in case[2]))
def test_static_loop_matches_paddle(name, float64_default):
    model, kind, args, expected = CASES[name]
    np.testing.assert_allclose(_static_losses(model, kind, args), expected, rtol=RTOL, atol=ATOL)


def test_default_dtype_is_the_2x_layers_parameter_dtype(float64_default):
    assert framework.get_default_dtype() == "float64"
    with fluid.dygraph.guard():
        layer = nn2.Linear(3, 2)
        emb = nn2.Embedding(4, 3)
        fluid_layer = fluid.dygraph.Linear(3, 2)  # fluid layers keep their own dtype argument
    assert layer.weight.dtype == layer.bias.dtype == emb.weight.dtype == torch.float64
    assert fluid_layer.weight.dtype == torch.float32


@pytest.mark.parametrize("bad", ["int32", "bfloat16", "banana", None, True, 3])
def test_set_default_dtype_refuses_what_paddle_refuses(bad):
    before = framework.get_default_dtype()
    with pytest.raises(TypeError, match=r"set_default_dtype: d must be one of float16, float32, float64, got"):
        framework.set_default_dtype(bad)
    assert framework.get_default_dtype() == before


# ------------------------------------------------------------ Paddle's float32 attributes
def _f32(v: float) -> float:
    return float(np.float32(v))


def _numpy_rmsprop(p, grads, *, lr, rho, eps, momentum, l2):
    """Paddle's RMSProp in float64 numpy, with L2 decay, the hyper-parameters as given."""
    ms = mg = mom = np.zeros_like(p)
    for g in grads:
        p, ms, mg, mom = rmsprop_numpy(
            p, g + l2 * p, ms, mg, mom, lr=lr, rho=rho, eps=eps, momentum=momentum, centered=False
        )
    return p


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize("float32_attrs", [True, False])
def test_float64_update_rounds_paddle_attributes_to_float32(fused, float32_attrs):
    rng = np.random.default_rng(0)
    p0, grads = rng.normal(size=(4, 3)), [rng.normal(size=(4, 3)) for _ in range(4)]
    hp = {"rho": 0.9, "eps": 1e-6, "momentum": 0.7, "l2": 0.01}
    used = {k: _f32(v) for k, v in hp.items()} if float32_attrs else hp
    expected = _numpy_rmsprop(p0, grads, lr=0.01, **used)
    p = torch.nn.Parameter(torch.tensor(p0))
    opt = fluid.optimizer.RMSProp(
        learning_rate=0.01,
        rho=hp["rho"],
        epsilon=hp["eps"],
        momentum=hp["momentum"],
        parameters=[("w", p)],
        weight_decay=fluid.regularizer.L2Decay(hp["l2"], float32_attrs=float32_attrs),
        float32_attrs=float32_attrs,
        fused=fused,
    )
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("fused", [None, False])
def test_float32_updates_round_as_paddles_cpu_kernel(fused, centered):
    """float32 with Paddle's attributes takes Paddle's kernel expressions as written
    (``rmsprop_kernel_impl.h``): ``1 - rho`` in float32, ``rho * ms + ((1 - rho) * g) * g``
    and ``rho * mg + (1 - rho) * g`` (products rounded, then the sums),
    ``momentum * mom + (lr * g) / sqrt(var + eps)``; numpy float32 here, bit for bit
    (square roots correctly rounded; Paddle's own vectorised CPU square root is Eigen's
    approximation and differs from it in the last bit for a few elements)."""
    f = np.float32
    rng = np.random.default_rng(1)
    p0, grads = rng.normal(size=(7, 5)).astype(f), [rng.normal(size=(7, 5)).astype(f) for _ in range(4)]
    rho, eps, mu, lr = f(0.95), f(1e-6), f(0.9), f(0.01)
    p, ms, mg, mom = p0.copy(), np.zeros_like(p0), np.zeros_like(p0), np.zeros_like(p0)
    for g in grads:
        ms = rho * ms + ((f(1) - rho) * g) * g
        mg = rho * mg + (f(1) - rho) * g
        var = (ms - mg * mg) + eps if centered else ms + eps
        mom = mu * mom + (lr * g) / np.sqrt(var)
        p = p - mom
    t = torch.nn.Parameter(torch.tensor(p0))
    opt = fluid.optimizer.RMSProp(
        learning_rate=0.01, rho=0.95, momentum=0.9, centered=centered, parameters=[("w", t)], fused=fused
    )
    for g in grads:
        t.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_array_equal(t.detach().numpy(), p)
    np.testing.assert_array_equal(opt.state_dict()["w_mean_square_0"].numpy(), ms)


@pytest.mark.parametrize(
    "reg, dtype, expected",
    [
        (fluid.regularizer.L2Decay(0.1), torch.float64, _f32(0.1)),
        (fluid.regularizer.L1Decay(0.1), torch.float64, _f32(0.1)),
        (fluid.regularizer.L2Decay(0.1, float32_attrs=False), torch.float64, 0.1),
        (fluid.regularizer.L2Decay(0.1), torch.float32, 0.1),
    ],
)
def test_regularizer_coefficient_for_a_dtype(reg, dtype, expected):
    assert reg.coeff_for(dtype) == expected
    p = torch.full((2,), 3.0, dtype=dtype)
    sign = 1.0 if isinstance(reg, fluid.regularizer.L1Decay) else 3.0
    assert torch.equal(reg(p, torch.zeros_like(p)), torch.full((2,), sign, dtype=dtype) * expected)


def test_only_the_paddle_preset_rounds_attributes():
    from torchfluid.optimizer.presets import PRESETS

    for name in PRESETS:
        p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
        kwargs = {"learning_rate": 0.1} if "learning_rate" in PRESETS[name].args else {}
        opt = fluid.optimizer.RMSProp.preset(name, [("w", p)], **kwargs)
        assert opt.param_groups[0]["float32_attrs"] is (name == "paddle"), name


# a bound whose float32 value differs from it (0.1 rounds up), so the clamp moves gradients
_CLIP = 0.1
_GRAD64 = np.array([0.1, 0.10000000149011612, 0.1000000014, 0.2, -0.1000000014, -0.3])


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize("float32_attrs", [True, False])
def test_clip_by_value_bounds_are_float32_attributes_for_float64_gradients(fused, float32_attrs):
    """Paddle's ``clip`` op reads ``min``/``max`` as float32 attributes: a float64 gradient
    is clamped to ``float64(float32(0.1))``; ``float32_attrs=False`` clamps to 0.1 itself.
    The clipped gradient is checked through an SGD step (lr 1, from zero)."""
    bound = _f32(_CLIP) if float32_attrs else _CLIP
    p = torch.nn.Parameter(torch.zeros(6, dtype=torch.float64))
    clip = fluid.clip.ClipGradByValue(_CLIP, float32_attrs=float32_attrs)
    opt = fluid.optimizer.SGD(learning_rate=1.0, parameters=[("w", p)], grad_clip=clip, fused=fused)
    p.grad = torch.tensor(_GRAD64)
    opt.step()
    np.testing.assert_array_equal(-p.detach().numpy(), np.clip(_GRAD64, -bound, bound))
    assert _f32(_CLIP) != _CLIP and np.abs(p.detach().numpy()).max() == bound


def test_clip_op_and_float32_gradients_use_the_attribute_as_paddle():
    from torchfluid.ops import get_op

    clip = get_op("clip").forward
    x64 = torch.tensor(_GRAD64)
    assert torch.equal(clip(x64, min=-_CLIP, max=_CLIP), torch.clamp(x64, -_f32(_CLIP), _f32(_CLIP)))
    x32 = x64.float()  # float32 gradients: torch rounds the bound the same way
    assert torch.equal(clip(x32, min=-_CLIP, max=_CLIP), torch.clamp(x32, -_CLIP, _CLIP))
    assert repr(fluid.clip.ClipGradByValue(0.5, float32_attrs=False)).endswith("float32_attrs=False)")


def test_float32_attrs_is_checked():
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(TypeError, match="float32_attrs"):
        fluid.optimizer.RMSProp(learning_rate=0.1, parameters=[p], float32_attrs="yes")
    with pytest.raises(TypeError, match="float32_attrs"):
        fluid.regularizer.L2Decay(0.1, float32_attrs=1)


# ------------------------------------------------------------ the conv2d model
# PaddleTest's Conv2DNet: Conv2D(3, 10, 3) -> BatchNorm2D(10) -> Conv2D(10, 2, 3) -> BatchNorm2D(2)
# (2.x paddle.nn, float64, filters 0.5, biases 0.33), fed the image draw that follows the
# [1, 1, 10] one, trained by Adagrad; the losses real Paddle printed
CONV2D_ADAGRAD = [
    1.2335811384723961e-17, -0.000999998000003974, -0.0017071037811919815, -0.0022844533837157333,
    -0.0027844528837161855, -0.0032316660792165194, -0.0036399140363473667, -0.004017878223642499,
    -0.004371431364235956, -0.0047047644753471785,
]  # fmt: skip


def test_conv2d_batch_norm_model_matches_paddle(float64_default):
    rng = np.random.RandomState(33)
    rng.random_sample((1, 1, 10))
    image = rng.random_sample((1, 3, 16, 16))
    with fluid.dygraph.guard():
        attrs = {"weight_attr": Constant(value=0.5), "bias_attr": Constant(value=0.33)}
        layers = [
            nn2.Conv2D(3, 10, 3, **attrs),
            nn2.BatchNorm2D(10, momentum=0.9, epsilon=1e-05),
            nn2.Conv2D(10, 2, 3, **attrs),
            nn2.BatchNorm2D(2, momentum=0.9, epsilon=1e-05),
        ]
        params = [p for layer in layers for p in layer.parameters()]  # the moving statistics too, as PaddleTest
        opt = fluid.optimizer.Adagrad(learning_rate=0.001, epsilon=1.0e-6, parameters=params)
        losses = _train(layers, opt, fluid.dygraph.to_variable(image))
    np.testing.assert_allclose(losses, CONV2D_ADAGRAD, rtol=RTOL, atol=ATOL)
