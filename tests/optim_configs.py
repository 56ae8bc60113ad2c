"""One shared table of optimizer configurations (in the style of PyTorch's OptimizerInfo).

Each :class:`OptimConfig` says how to build one optimizer -- RMSProp, SGD, Momentum, Adam or Adagrad with
its options -- the same way in every mode, what the model's two parameters carry
(ParamAttr: regularizer, need_clip, lr multiplier), whether the data holds an inf at
some step, and which exception (if any) a step is expected to raise.

Three runners train the same linear model (``x @ w + b``, mean squared error, the same
initial values and batches) on a configuration:

* :func:`run_eager`: torch ``nn.Parameter`` s, ``loss.backward()`` and ``opt.step()``;
* :func:`run_dygraph`: ``fluid.dygraph.guard()``, ``Linear``, ``to_variable``,
  ``loss.backward()`` and ``opt.minimize(loss)``;
* :func:`run_static`: a ``Program`` built with ``fluid.layers`` and ``opt.minimize(loss)``,
  run by an ``Executor``.

Each returns the final parameters (by role, ``w`` and ``b``), the accumulators by
``(role, accumulator)`` and, per step, None or the type of the exception the step raised.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

import torchfluid as fluid
from torchfluid import layers as L
from torchfluid.dygraph import Linear, guard, to_variable
from torchfluid.dygraph import learning_rate_scheduler as dy_lr
from torchfluid.initializer import NumpyArrayInitializer
from torchfluid.param_attr import ParamAttr
from torchfluid.static.optimize import accumulator_vars
from torchfluid.static.plan import OpRunError

STEPS = 6
INF_STEP = 2  # the step whose batch holds an inf (configurations with inf_data=True)
_RNG = np.random.default_rng(2026)
W0 = _RNG.normal(size=(13, 1)).astype("float32")
B0 = _RNG.normal(size=(1,)).astype("float32")
X = _RNG.normal(size=(STEPS, 4, 13)).astype("float32")
Y = (X @ _RNG.normal(size=(13, 1)) + 0.3).astype("float32")
X_INF = X.copy()
X_INF[INF_STEP, 1, 3] = np.inf

KINDS = {
    "rmsprop": "RMSProp",
    "sgd": "SGD",
    "adam": "Adam",
    "adagrad": "Adagrad",
    "momentum": "Momentum",
    "adamw": "AdamW",
    "adamax": "Adamax",
    "adadelta": "Adadelta",
    "lamb": "Lamb",
}

# fluid decays: (dygraph LearningRateDecay factory, static fluid.layers factory), the same schedule
SCHEDULES = {
    "exponential": (
        lambda: dy_lr.ExponentialDecay(0.05, 2, 0.5, staircase=True),
        lambda: L.exponential_decay(0.05, decay_steps=2, decay_rate=0.5, staircase=True),
    ),
    "piecewise": (
        lambda: dy_lr.PiecewiseDecay([2, 4], [0.05, 0.02, 0.01], begin=0),
        lambda: L.piecewise_decay([2, 4], [0.05, 0.02, 0.01]),
    ),
    "natural_exp": (
        lambda: dy_lr.NaturalExpDecay(0.05, 3, 0.3),
        lambda: L.natural_exp_decay(0.05, decay_steps=3, decay_rate=0.3),
    ),
    "inverse_time": (
        lambda: dy_lr.InverseTimeDecay(0.05, 2, 0.5),
        lambda: L.inverse_time_decay(0.05, decay_steps=2, decay_rate=0.5),
    ),
    "polynomial": (
        lambda: dy_lr.PolynomialDecay(0.05, 4, end_learning_rate=0.001),
        lambda: L.polynomial_decay(0.05, 4, end_learning_rate=0.001),
    ),
    "cosine": (lambda: dy_lr.CosineDecay(0.05, 2, 3), lambda: L.cosine_decay(0.05, 2, 3)),
    "noam": (lambda: dy_lr.NoamDecay(16, 3), lambda: L.noam_decay(16, 3)),
    # Paddle's dygraph warm-up counts from begin=1, the static one from the global step 0
    "warmup": (
        lambda: dy_lr.LinearLrWarmup(0.05, 3, 0.0, 0.05, begin=0),
        lambda: L.linear_lr_warmup(0.05, 3, 0.0, 0.05),
    ),
}


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """One optimizer configuration of the table."""

    name: str
    kind: str = "rmsprop"
    options: dict = dataclasses.field(default_factory=dict)  # constructor keyword arguments
    lr: float | str = 0.05  # a float or a SCHEDULES key
    preset: tuple | None = None  # ("torch", {library kwargs}): RMSProp.preset instead of the constructor
    w_attr: dict = dataclasses.field(default_factory=dict)  # ParamAttr options of the weight
    b_attr: dict = dataclasses.field(default_factory=dict)  # ... and of the bias
    inf_data: bool = False
    dtype: str = "float32"  # the model's (parameters' and data's) dtype
    raises: dict = dataclasses.field(default_factory=dict)  # step -> expected exception type
    # option -> its value at each step: the option is a float32 [1] tensor (static: a persistable
    # program variable) that the runner sets to values[i] before step i (made by make_tensors)
    tensor_options: dict = dataclasses.field(default_factory=dict)

    def make_tensors(self, mode: str) -> dict:
        """The tensor options' tensors for ``mode``, holding their step-0 values (static:
        variables of the program being built, initialized in its startup program)."""
        if mode == "static":
            return {
                k: L.create_global_var([1], float(v[0]), "float32", persistable=True, name=f"opt_{k}")
                for k, v in self.tensor_options.items()
            }
        make = to_variable if mode == "dygraph" else torch.from_numpy
        return {k: make(np.array([v[0]], np.float32)) for k, v in self.tensor_options.items()}

    def set_tensors(self, tensors: dict, step: int, scope=None) -> None:
        """Give each tensor option its value of ``step`` (static: in ``scope``)."""
        for k, values in self.tensor_options.items():
            value = np.array([values[step]], np.float32)
            if scope is not None:
                scope.var(tensors[k].name).get_tensor().set(value)
            else:
                with torch.no_grad():
                    tensors[k].copy_(torch.from_numpy(value))

    def build(self, mode: str, parameters=None, tensors=None):
        """The optimizer for ``mode`` ('eager', 'dygraph' or 'static'); ``tensors``: the
        tensor options' tensors (:meth:`make_tensors`)."""
        if self.preset is not None:
            library, kwargs = self.preset
            return fluid.optimizer.RMSProp.preset(library, parameters=parameters, **kwargs, **self.options)
        cls = getattr(fluid.optimizer, KINDS[self.kind])
        if isinstance(self.lr, str):
            lr = SCHEDULES[self.lr][1 if mode == "static" else 0]()
        else:
            lr = self.lr
        return cls(learning_rate=lr, parameters=parameters, **self.options, **(tensors or {}))

    def expected_outcomes(self) -> list:
        return [self.raises.get(i) for i in range(STEPS)]


def _c(name, **kw) -> OptimConfig:
    return OptimConfig(name, **kw)


def _nonfinite_raise(kind: str, **kw) -> OptimConfig:
    """``kind`` with ``nonfinite='raise'`` on the data whose step INF_STEP holds an inf."""
    return _c(
        f"{kind}_nonfinite_raise",
        kind=kind,
        options={"nonfinite": "raise"},
        inf_data=True,
        raises={INF_STEP: FloatingPointError},
        **kw,
    )


CLIPS = {
    "value": lambda: fluid.ClipGradByValue(0.05),
    "value_min_max": lambda: fluid.ClipGradByValue(0.1, min=-0.02),
    "norm": lambda: fluid.ClipGradByNorm(0.1),
    "global_norm": lambda: fluid.ClipGradByGlobalNorm(0.1),
}


def _clip(kind: str) -> dict:
    return {"grad_clip": CLIPS[kind]()}


CONFIGS: list[OptimConfig] = [
    # ---- RMSProp: Paddle's defaults and every convention
    _c("rmsprop"),
    _c("rmsprop_momentum", options={"momentum": 0.9}),
    _c("rmsprop_centered_momentum", options={"centered": True, "momentum": 0.5, "rho": 0.9, "epsilon": 1e-5}),
    _c("rmsprop_eps_outside_sqrt", options={"eps_in_sqrt": False, "epsilon": 1e-3}),
    _c("rmsprop_initial_mean_square", options={"initial_mean_square": 1.0}),
    _c("rmsprop_lr_outside_momentum", options={"lr_in_momentum": False, "momentum": 0.9}),
    _c("rmsprop_nesterov", options={"nesterov": True, "momentum": 0.9}),
    _c("rmsprop_decoupled_weight_decay", options={"decoupled_weight_decay": 0.1}, lr=0.5),
    _c("rmsprop_maximize", options={"maximize": True}),
    _c("rmsprop_maximize_momentum_clip", options=dict(maximize=True, momentum=0.9, **_clip("global_norm"))),
    _c("rmsprop_bias_correction", options={"bias_correction": True}),
    _c("rmsprop_bias_correction_centered", options={"bias_correction": True, "centered": True, "momentum": 0.9}),
    # presets: each library's own argument names
    _c("preset_paddle", preset=("paddle", {"learning_rate": 0.05})),
    _c("preset_torch", preset=("torch", {"lr": 0.01, "alpha": 0.9, "momentum": 0.5})),
    _c("preset_tf1", preset=("tf1", {"learning_rate": 0.01})),
    _c("preset_keras", preset=("keras", {"learning_rate": 0.01, "weight_decay": 0.01})),
    _c("preset_optax", preset=("optax", {"learning_rate": 0.01, "bias_correction": True})),
    _c("preset_timm", preset=("timm", {"lr": 0.01, "momentum": 0.9})),
    # non-finite gradients (an inf in the batch of step INF_STEP)
    _c("nonfinite_propagate", inf_data=True),
    _c("nonfinite_skip", options={"nonfinite": "skip", "momentum": 0.9}, inf_data=True),
    _c("nonfinite_raise", options={"nonfinite": "raise"}, inf_data=True, raises={INF_STEP: FloatingPointError}),
    _c("nonfinite_skip_finite_data", options={"nonfinite": "skip"}),
    # ... with a schedule: a skipped step does not advance it, a raising step neither
    *[
        _c(f"nonfinite_skip_schedule_{kind}", lr=kind, options={"nonfinite": "skip", "momentum": 0.9}, inf_data=True)
        for kind in SCHEDULES
    ],
    *[
        _c(
            f"nonfinite_raise_schedule_{kind}",
            lr=kind,
            options={"nonfinite": "raise"},
            inf_data=True,
            raises={INF_STEP: FloatingPointError},
        )
        for kind in ("piecewise", "noam", "warmup")
    ],
    # regularization, the parameter's own regularizer overriding the optimizer's
    _c("rmsprop_l2", options={"regularization": fluid.L2Decay(0.05)}),
    _c("rmsprop_l1", options={"regularization": fluid.L1Decay(0.05)}),
    _c("rmsprop_weight_decay_float", options={"weight_decay": 0.05}),
    _c(
        "rmsprop_param_regularizer_overrides",
        options={"regularization": fluid.L2Decay(0.05)},
        w_attr={"regularizer": fluid.L1Decay(0.02)},
    ),
    _c("rmsprop_param_regularizer_only", b_attr={"regularizer": fluid.L2Decay(0.5)}),
    # clipping: three kinds, need_clip=False
    _c("clip_value", options=_clip("value")),
    _c("clip_value_min_max", options=_clip("value_min_max")),
    _c("clip_norm", options=_clip("norm")),
    _c("clip_global_norm", options=_clip("global_norm")),
    _c("clip_global_norm_need_clip_false", options=_clip("global_norm"), b_attr={"need_clip": False}),
    _c("clip_value_need_clip_false", options=_clip("value"), w_attr={"need_clip": False}),
    _c("clip_norm_l2_momentum", options=dict(momentum=0.9, regularization=fluid.L2Decay(0.01), **_clip("norm"))),
    # learning rates: parameter multipliers, fluid decays (static: lr variables)
    _c("lr_multiplier", w_attr={"learning_rate": 0.5}, b_attr={"learning_rate": 2.0}),
    *[_c(f"schedule_{kind}", lr=kind, options={"momentum": 0.9}) for kind in SCHEDULES],
    # precision options
    _c("multi_precision", options={"multi_precision": True, "momentum": 0.9}),
    _c("state_dtype_float32", options={"state_dtype": torch.float32, "centered": True}),
    _c("state_dtype_bfloat16", options={"state_dtype": torch.bfloat16, "momentum": 0.9, "centered": True}),
    _c("float16_multi_precision", dtype="float16", options={"multi_precision": True, "momentum": 0.9, "epsilon": 1e-4}),
    _c(
        "float16_multi_precision_clip_l2",
        dtype="float16",
        options=dict(multi_precision=True, epsilon=1e-4, regularization=fluid.L2Decay(0.01), **_clip("global_norm")),
    ),
    _c("float16_state_float32", dtype="float16", options={"state_dtype": torch.float32, "epsilon": 1e-4}),
    _c("float64", dtype="float64", options={"momentum": 0.9, "centered": True}),
    # the fused kernel: forced off, required, and required where it cannot run
    _c("fused_false", options=dict(fused=False, momentum=0.9, centered=True, **_clip("global_norm"))),
    _c("fused_true", options={"fused": True, "momentum": 0.9, "regularization": fluid.L1Decay(0.01)}),
    _c(
        "fused_true_refused",
        options={"fused": True, "bias_correction": True},
        raises=dict.fromkeys(range(STEPS), ValueError),
    ),
    # ---- SGD
    _c("sgd", kind="sgd"),
    _c("sgd_l2_clip_global_norm", kind="sgd", options=dict(regularization=fluid.L2Decay(0.1), **_clip("global_norm"))),
    _c(
        "sgd_l1_lr_multiplier",
        kind="sgd",
        options={"regularization": fluid.L1Decay(0.1)},
        w_attr={"learning_rate": 0.5},
    ),
    _c("sgd_schedule", kind="sgd", lr="piecewise"),
    _c("sgd_clip_value_need_clip_false", kind="sgd", options=_clip("value"), b_attr={"need_clip": False}),
    _c("sgd_inf", kind="sgd", inf_data=True),
    _c("sgd_fused_false", kind="sgd", options={"fused": False, "regularization": fluid.L1Decay(0.1)}),
    _c("sgd_fused_true", kind="sgd", options=dict(fused=True, regularization=fluid.L2Decay(0.1), **_clip("value"))),
    # torch.optim.SGD's momentum options on SGD
    _c("sgd_momentum", kind="sgd", options={"momentum": 0.9, "weight_decay": 0.05}),
    _c("sgd_momentum_nesterov_clip", kind="sgd", options=dict(momentum=0.5, nesterov=True, **_clip("global_norm"))),
    _c("sgd_momentum_dampening", kind="sgd", lr="piecewise", options={"momentum": 0.9, "dampening": 0.25}),
    _c("sgd_momentum_fused_false", kind="sgd", options={"momentum": 0.9, "fused": False, "maximize": True}),
    _c(
        "sgd_momentum_dampening_fused_true",
        kind="sgd",
        options=dict(momentum=0.9, dampening=0.25, fused=True, regularization=fluid.L2Decay(0.1), **_clip("value")),
    ),
    # ---- Adam
    _c("adam", kind="adam", lr=0.01),
    _c("adam_betas", kind="adam", lr=0.01, options={"beta1": 0.5, "beta2": 0.9, "epsilon": 1e-6}),
    _c("adam_l2_clip_norm", kind="adam", lr=0.01, options=dict(regularization=fluid.L2Decay(0.1), **_clip("norm"))),
    _c(
        "adam_param_regularizer",
        kind="adam",
        lr=0.01,
        options={"regularization": fluid.L2Decay(0.1)},
        b_attr={"regularizer": fluid.L1Decay(0.1), "need_clip": False},
    ),
    _c("adam_schedule", kind="adam", lr="exponential"),
    _c("adam_fused_false", kind="adam", lr=0.01, options=dict(fused=False, **_clip("global_norm"))),
    _c(
        "adam_fused_true",
        kind="adam",
        lr="piecewise",
        options=dict(fused=True, beta1=0.8, regularization=fluid.L1Decay(0.01), **_clip("value")),
        b_attr={"regularizer": fluid.L2Decay(0.1)},
    ),
    _c("adam_float64", kind="adam", lr=0.01, dtype="float64", options={"epsilon": 1e-6}),
    # ... with tensor hyper-parameters (static: program variables) changed between steps
    _c(
        "adam_tensor_betas",
        kind="adam",
        lr=0.01,
        tensor_options={"beta1": [0.85, 0.85, 0.5, 0.9, 0.0, 0.7], "beta2": [0.95, 0.99, 0.95, 0.5, 0.999, 0.9]},
    ),
    _c(
        "adam_tensor_epsilon_l2_clip_schedule",
        kind="adam",
        lr="piecewise",
        options=dict(beta2=0.9, regularization=fluid.L2Decay(0.1), **_clip("global_norm")),
        tensor_options={"epsilon": [1e-8, 1e-3, 1e-3, 0.5, 1e-6, 1e-2], "beta1": [0.9] * STEPS},
    ),
    _c(
        "adam_tensor_beta_inf",
        kind="adam",
        lr=0.01,
        inf_data=True,
        tensor_options={"beta1": [0.8, 0.7, 0.6, 0.5, 0.4, 0.3]},
    ),
    _c(
        "adam_tensor_beta_out_of_range",
        kind="adam",
        lr=0.01,
        tensor_options={"beta1": [0.9, 0.9, 1.0, 0.9, -0.1, 0.9]},
        raises={2: ValueError, 4: ValueError},
    ),
    # ---- Adagrad
    _c("adagrad", kind="adagrad", lr=0.1),
    _c("adagrad_eps_initial", kind="adagrad", lr=0.1, options={"epsilon": 1e-3, "initial_accumulator_value": 0.5}),
    _c(
        "adagrad_l2_clip_global_norm",
        kind="adagrad",
        lr=0.1,
        options=dict(regularization=fluid.L2Decay(0.1), **_clip("global_norm")),
    ),
    _c(
        "adagrad_param_regularizer_clip_value",
        kind="adagrad",
        lr=0.1,
        options=dict(regularization=fluid.L2Decay(0.1), **_clip("value")),
        w_attr={"regularizer": fluid.L1Decay(0.05)},
        b_attr={"need_clip": False},
    ),
    _c("adagrad_weight_decay_float", kind="adagrad", lr=0.1, options={"weight_decay": 0.05}),
    _c("adagrad_lr_multiplier", kind="adagrad", lr=0.1, w_attr={"learning_rate": 0.5}, b_attr={"learning_rate": 2.0}),
    _c("adagrad_schedule", kind="adagrad", lr="piecewise"),
    _c("adagrad_schedule_noam", kind="adagrad", lr="noam"),
    _c("adagrad_inf", kind="adagrad", lr=0.1, inf_data=True),
    _c("adagrad_lr_decay", kind="adagrad", lr=0.1, options={"lr_decay": 0.5, "initial_accumulator_value": 0.1}),
    _c("adagrad_lr_decay_schedule_l2", kind="adagrad", lr="piecewise", options={"lr_decay": 0.1, "weight_decay": 0.05}),
    _c("adagrad_float64", kind="adagrad", lr=0.1, dtype="float64", options={"initial_accumulator_value": 0.1}),
    _c("adagrad_float16", kind="adagrad", lr=0.1, dtype="float16", options={"epsilon": 1e-4}),
    _c("adagrad_fused_false", kind="adagrad", lr=0.1, options=dict(fused=False, **_clip("global_norm"))),
    _c(
        "adagrad_fused_true",
        kind="adagrad",
        lr="exponential",
        options=dict(fused=True, initial_accumulator_value=0.1, regularization=fluid.L2Decay(0.1), **_clip("norm")),
    ),
    _c(
        "adagrad_fused_true_refused",
        kind="adagrad",
        lr=0.1,
        dtype="float16",
        options={"fused": True, "epsilon": 1e-4},
        raises=dict.fromkeys(range(STEPS), ValueError),
    ),
    # ---- Momentum
    _c("momentum", kind="momentum", lr=0.05, options={"momentum": 0.9}),
    _c("momentum_nesterov", kind="momentum", lr=0.05, options={"momentum": 0.9, "use_nesterov": True}),
    _c(
        "momentum_l2_clip_global_norm",
        kind="momentum",
        options=dict(momentum=0.9, regularization=fluid.L2Decay(0.1), **_clip("global_norm")),
    ),
    _c(
        "momentum_nesterov_param_regularizer_clip_value",
        kind="momentum",
        options=dict(momentum=0.5, use_nesterov=True, weight_decay=0.05, **_clip("value")),
        w_attr={"regularizer": fluid.L1Decay(0.05)},
        b_attr={"need_clip": False},
    ),
    _c("momentum_clip_norm", kind="momentum", options=dict(momentum=0.9, **_clip("norm"))),
    _c("momentum_lr_multiplier", kind="momentum", w_attr={"learning_rate": 0.5}, b_attr={"learning_rate": 2.0}),
    _c("momentum_schedule", kind="momentum", lr="piecewise", options={"momentum": 0.9}),
    _c("momentum_schedule_cosine_nesterov", kind="momentum", lr="cosine", options={"use_nesterov": True}),
    _c("momentum_inf", kind="momentum", inf_data=True),
    _c("momentum_float64", kind="momentum", dtype="float64", options={"momentum": 0.8, "use_nesterov": True}),
    _c("momentum_float16", kind="momentum", dtype="float16", options={"momentum": 0.9}),
    _c("momentum_float16_multi_precision", kind="momentum", dtype="float16", options={"multi_precision": True}),
    _c("momentum_fused_false", kind="momentum", options=dict(fused=False, use_nesterov=True, **_clip("global_norm"))),
    _c(
        "momentum_fused_true",
        kind="momentum",
        lr="piecewise",
        options=dict(fused=True, momentum=0.9, use_nesterov=True, regularization=fluid.L1Decay(0.01), **_clip("value")),
        b_attr={"regularizer": fluid.L2Decay(0.1)},
    ),
    _c(
        "momentum_fused_true_refused",
        kind="momentum",
        dtype="float16",
        options={"fused": True, "multi_precision": True},
        raises=dict.fromkeys(range(STEPS), ValueError),
    ),
    # ---- every optimizer: float32 master weights for float16 parameters, each non-finite policy
    _c("sgd_float16_multi_precision", kind="sgd", dtype="float16", options={"multi_precision": True}),
    _c("sgd_nonfinite_skip_schedule", kind="sgd", lr="piecewise", options={"nonfinite": "skip"}, inf_data=True),
    _nonfinite_raise("sgd"),
    _c(
        "adam_float16_multi_precision_l2_clip",
        kind="adam",
        lr=0.01,
        dtype="float16",
        options=dict(multi_precision=True, regularization=fluid.L2Decay(0.1), **_clip("global_norm")),
    ),
    _c("adam_amsgrad", kind="adam", lr=0.05, options=dict(amsgrad=True, beta2=0.9, **_clip("norm"))),
    _c(
        "adam_amsgrad_float16_multi_precision",
        kind="adam",
        lr=0.05,
        dtype="float16",
        options={"amsgrad": True, "multi_precision": True},
    ),
    _c("adam_nonfinite_skip_schedule", kind="adam", lr="exponential", options={"nonfinite": "skip"}, inf_data=True),
    _nonfinite_raise("adam", lr=0.01),
    _c("adagrad_float16_multi_precision", kind="adagrad", lr=0.1, dtype="float16", options={"multi_precision": True}),
    _c("adagrad_nonfinite_skip", kind="adagrad", lr=0.1, options={"nonfinite": "skip"}, inf_data=True),
    _c("momentum_nonfinite_skip_schedule", kind="momentum", lr="noam", options={"nonfinite": "skip"}, inf_data=True),
    _nonfinite_raise("momentum"),
    # ---- maximize (torch's option) on every optimizer: g = -g before clipping and regularization
    _c("sgd_maximize_l2", kind="sgd", options={"maximize": True, "regularization": fluid.L2Decay(0.1)}),
    _c("adam_maximize_clip_norm", kind="adam", lr=0.01, options=dict(maximize=True, **_clip("norm"))),
    _c("adagrad_maximize_fused_false", kind="adagrad", lr=0.1, options={"maximize": True, "fused": False}),
    _c("momentum_maximize_fused_true", kind="momentum", options={"maximize": True, "fused": True, "momentum": 0.9}),
    _c("adamw_maximize_schedule", kind="adamw", lr="cosine", options={"maximize": True, "weight_decay": 0.1}),
    _c("lamb_maximize", kind="lamb", lr=0.01, options={"maximize": True}),
    # ---- AdamW, Adamax, Adadelta and Lamb
    _c("adamw", kind="adamw", lr=0.01, options={"weight_decay": 0.1}),
    _c("adamw_float16_multi_precision", kind="adamw", lr=0.01, dtype="float16", options={"multi_precision": True}),
    _c("adamw_clip_schedule", kind="adamw", lr="cosine", options=dict(beta1=0.5, **_clip("norm"))),
    _c("adamw_amsgrad_schedule", kind="adamw", lr="noam", options={"amsgrad": True, "weight_decay": 0.05}),
    _c("adamw_nonfinite_skip", kind="adamw", lr=0.01, options={"nonfinite": "skip"}, inf_data=True),
    _c(
        "adamw_fused_true",
        kind="adamw",
        lr="piecewise",
        options=dict(fused=True, weight_decay=0.2, apply_decay_param_fun=lambda n: n.endswith("w_0"), **_clip("value")),
        b_attr={"regularizer": fluid.L2Decay(0.1)},
    ),
    _c("adamw_fused_false", kind="adamw", lr=0.01, options=dict(fused=False, **_clip("global_norm"))),
    _c("adamax", kind="adamax", lr=0.01, options={"beta2": 0.9}),
    _c("adamax_float16_multi_precision", kind="adamax", lr=0.01, dtype="float16", options={"multi_precision": True}),
    _c(
        "adamax_l1_clip_value",
        kind="adamax",
        lr=0.01,
        options=dict(regularization=fluid.L1Decay(0.05), **_clip("value")),
    ),
    _c(
        "adamax_fused_true",
        kind="adamax",
        lr="exponential",
        options=dict(fused=True, beta1=0.5, regularization=fluid.L2Decay(0.1), **_clip("global_norm")),
        w_attr={"regularizer": fluid.L1Decay(0.05)},
    ),
    _c("adamax_nonfinite_skip_schedule", kind="adamax", lr="warmup", options={"nonfinite": "skip"}, inf_data=True),
    _c("adadelta", kind="adadelta", lr=1.0, options={"rho": 0.9}),
    _c("adadelta_float16_multi_precision", kind="adadelta", lr=1.0, dtype="float16", options={"multi_precision": True}),
    _nonfinite_raise("adadelta", lr=1.0),
    _c(
        "adadelta_fused_true",
        kind="adadelta",
        lr="piecewise",
        options=dict(fused=True, rho=0.9, regularization=fluid.L1Decay(0.01), **_clip("value")),
        b_attr={"regularizer": fluid.L2Decay(0.1)},
    ),
    _c("lamb", kind="lamb", lr=0.01, options={"lamb_weight_decay": 0.1}),
    _c("lamb_no_decay", kind="lamb", lr=0.01, options={"lamb_weight_decay": 0.0}),
    _c("lamb_no_decay_always_adapt", kind="lamb", lr=0.01, options={"lamb_weight_decay": 0.0, "always_adapt": True}),
    _c("lamb_float16_multi_precision", kind="lamb", lr=0.01, dtype="float16", options={"multi_precision": True}),
    _c("lamb_clip_global_norm_schedule", kind="lamb", lr="piecewise", options=_clip("global_norm")),
    _c("lamb_nonfinite_skip", kind="lamb", lr=0.01, options={"nonfinite": "skip"}, inf_data=True),
]

CONFIGS_BY_NAME = {c.name: c for c in CONFIGS}
assert len(CONFIGS_BY_NAME) == len(CONFIGS), "configuration names must be unique"


# ------------------------------------------------------------------ runners


class Result(dict):
    """``{'w': tensor, 'b': tensor}`` plus ``state`` and ``outcomes``."""

    state: dict
    outcomes: list


def _outcome(call: Callable[[], object]):
    try:
        call()
    except OpRunError as e:  # the executor's context around the update's own error
        return type(e.__cause__)
    except Exception as e:  # noqa: BLE001 - the type is the result
        return type(e)
    return None


def _data(cfg: OptimConfig):
    return (X_INF if cfg.inf_data else X).astype(cfg.dtype), Y.astype(cfg.dtype)


def mark(p: torch.Tensor, attr: dict) -> None:
    """What ParamAttr gives a parameter, set on a plain torch parameter."""
    if "regularizer" in attr:
        p.regularizer = attr["regularizer"]
    if "need_clip" in attr:
        p.need_clip = attr["need_clip"]
    if "learning_rate" in attr:
        p.optimize_attr = {"learning_rate": attr["learning_rate"]}


def _result(w, b, state: dict, outcomes: list) -> Result:
    res = Result(w=w.detach().clone(), b=b.detach().clone())
    res.state = state
    res.outcomes = outcomes
    return res


def _eager_state(opt, names: dict) -> dict:
    sd = opt.state_dict()
    out = {}
    for role, pname in names.items():
        for key, value in sd.items():
            if isinstance(key, str) and key.startswith(pname + "_") and isinstance(value, torch.Tensor):
                out[(role, key[len(pname) + 1 : -2])] = value.detach().clone()
    return out


def run_eager(cfg: OptimConfig) -> Result:
    w = torch.nn.Parameter(torch.tensor(W0.astype(cfg.dtype)))
    b = torch.nn.Parameter(torch.tensor(B0.astype(cfg.dtype)))
    mark(w, cfg.w_attr)
    mark(b, cfg.b_attr)
    tensors = cfg.make_tensors("eager")
    opt = cfg.build("eager", parameters={"fc_0.b_0": b, "fc_0.w_0": w}, tensors=tensors)
    (data, ys), outcomes = _data(cfg), []
    for i in range(STEPS):
        cfg.set_tensors(tensors, i)
        pred = torch.matmul(torch.from_numpy(data[i]), w) + b
        loss = L.mean(L.square_error_cost(pred, torch.from_numpy(ys[i])))
        loss.backward()
        outcomes.append(_outcome(opt.step))
        opt.clear_grad()
    return _result(w, b, _eager_state(opt, {"w": "fc_0.w_0", "b": "fc_0.b_0"}), outcomes)


def _attr(init: np.ndarray, attr: dict, dtype: str) -> ParamAttr:
    return ParamAttr(initializer=NumpyArrayInitializer(init.astype(dtype)), **attr)


def run_dygraph(cfg: OptimConfig) -> Result:
    with guard():
        fc = Linear(
            13,
            1,
            param_attr=_attr(W0, cfg.w_attr, cfg.dtype),
            bias_attr=_attr(B0, cfg.b_attr, cfg.dtype),
            dtype=cfg.dtype,
        )
        tensors = cfg.make_tensors("dygraph")
        opt = cfg.build("dygraph", parameters=fc.parameters(), tensors=tensors)
        (data, ys), outcomes = _data(cfg), []
        for i in range(STEPS):
            cfg.set_tensors(tensors, i)
            loss = L.mean(L.square_error_cost(fc(to_variable(data[i])), to_variable(ys[i])))
            loss.backward()
            outcomes.append(_outcome(lambda loss=loss: opt.minimize(loss)))
            fc.clear_gradients()
        names = {"w": fc.weight.name, "b": fc.bias.name}
        return _result(fc.weight, fc.bias, _eager_state(opt, names), outcomes)


def run_static(cfg: OptimConfig) -> Result:
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = L.data("x", [13], dtype=cfg.dtype)
        y = L.data("y", [1], dtype=cfg.dtype)
        pred = L.fc(x, 1, param_attr=_attr(W0, cfg.w_attr, cfg.dtype), bias_attr=_attr(B0, cfg.b_attr, cfg.dtype))
        loss = L.mean(L.square_error_cost(pred, y))
        tensors = cfg.make_tensors("static")
        cfg.build("static", tensors=tensors).minimize(loss)
    scope = fluid.Scope()
    exe = fluid.Executor()
    exe.run(start, scope=scope)
    (data, ys), outcomes = _data(cfg), []
    for i in range(STEPS):
        cfg.set_tensors(tensors, i, scope)
        feed = {"x": data[i], "y": ys[i]}
        outcomes.append(_outcome(lambda feed=feed: exe.run(main, feed=feed, fetch_list=[loss], scope=scope)))

    def value(name):  # the scope's tensor itself (numpy has no bfloat16)
        return scope.value(name).detach().clone()

    roles = {"fc_0.w_0": "w", "fc_0.b_0": "b"}
    state = {
        (roles[pname], acc): value(var) for pname, accs in accumulator_vars(main).items() for acc, var in accs.items()
    }
    return _result(value("fc_0.w_0"), value("fc_0.b_0"), state, outcomes)


RUNNERS = {"eager": run_eager, "dygraph": run_dygraph, "static": run_static}


def bits(t: torch.Tensor) -> torch.Tensor:
    """``t``'s bit pattern (so NaNs compare equal to themselves)."""
    t = t.detach().contiguous()
    return t.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]) if t.is_floating_point() else t
