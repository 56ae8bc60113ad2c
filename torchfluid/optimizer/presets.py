"""``RMSProp.preset(name, parameters=..., **kwargs)``: every library's RMSProp, exactly.

Each preset takes the library's OWN argument names and defaults and returns a plain
torchfluid ``RMSPropOptimizer`` (``set_lr``, ``state_dict``, param groups all work)
whose trajectory is that library's (checked against real runs in tests/test_presets.py).
The translation, with ``den`` the denominator and ``ms`` the mean square:

=========  ====================================================================================
preset     library -> torchfluid
=========  ====================================================================================
paddle     ``paddle.optimizer.RMSProp``: the native defaults (rho=0.95, epsilon=1e-6,
           eps inside the sqrt, ms from 0, lr inside the velocity)
torch      ``torch.optim.RMSprop`` (2.13): ``alpha -> rho``, ``eps -> epsilon`` OUTSIDE the
           sqrt, lr OUTSIDE the buffer (``lr_in_momentum=False``), ``weight_decay`` coupled
           (``L2Decay``, after the ``maximize`` sign flip)
tf1        ``tf.compat.v1.train.RMSPropOptimizer``: ``decay -> rho``, ms starts at 1.0, eps
           inside the sqrt, lr inside the momentum slot
keras      ``keras.optimizers.RMSprop`` (Keras 3): eps inside the sqrt, lr inside the
           momentum, ``weight_decay`` decoupled (``p -= lr*wd*p`` before the update);
           ``clipnorm`` -> ``ClipGradByNorm``, ``global_clipnorm`` -> ``ClipGradByGlobalNorm``,
           ``clipvalue`` -> ``ClipGradByValue(v, -v)`` (same maths as Keras; at most one may
           be set, as in Keras; a value <= 0 means no clipping, as in Keras)
optax      ``optax.rmsprop`` (0.2.8): ``decay -> rho``, ``initial_scale ->
           initial_mean_square``, ``eps_in_sqrt``, ``momentum=None`` -> 0, ``nesterov`` (only
           with momentum, as optax), ``bias_correction``; the trace holds lr
timm       ``timm.optim.RMSpropTF``: ms starts at 1.0, eps inside the sqrt,
           ``lr_in_momentum``, ``weight_decay`` coupled or (``decoupled_decay=True``)
           ``p *= 1 - lr*wd``
=========  ====================================================================================

Every preset also accepts torchfluid's ``name`` (state-key prefix), ``multi_precision``,
``state_dtype`` and ``nonfinite``. A library argument that only changes speed
(torch/timm ``foreach``, TF ``use_locking``) is accepted and ignored; one that would
change the maths in a way torchfluid does not implement (Keras ``use_ema``, timm
``caution``, torch ``capturable``...) is accepted only at its default. Anything else
raises ``TypeError`` listing the preset's arguments.

For torch and timm, param-group dicts may use the library's names (``alpha``, ``eps``);
they are translated per group. A per-group ``weight_decay`` is refused (torchfluid's
coupled weight decay is optimizer-wide or per parameter).

State names map as follows (``<acc>`` in ``state_dict()`` keys ``<param>_<acc>_0``):
torch/timm ``square_avg``/``grad_avg``/``momentum_buffer`` -> ``mean_square``/
``mean_grad``/``momentum``; TF1 ``rms``/``mg``/``momentum`` -> the same three; Keras
``velocity``/``average_gradient``/``momentum``; optax ``nu``/``mu``, ``trace`` =
``-momentum`` (optax stores the negated step) and ``count`` = ``step``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from .._checks import check_bool, check_number
from ..clip import ClipGradByGlobalNorm, ClipGradByNorm, ClipGradByValue
from ..regularizer import L2Decay
from .params import is_group_list
from .state import TORCH_GROUP_KEYS, rename_group_keys

__all__ = ["PRESETS", "Preset", "build_preset", "preset_options"]

REQUIRED = object()
_EXTRAS = {"name": None, "multi_precision": False, "state_dtype": None, "nonfinite": "propagate"}
# check_number bounds, checked under the library's argument name
_NONNEG = {"lo": 0.0}
_POSITIVE = {"lo": 0.0, "lo_open": True}
_DECAY = {"lo": 0.0, "hi": 1.0, "hi_open": True}


@dataclasses.dataclass(frozen=True)
class Preset:
    """One library's RMSProp: its arguments with defaults, and the translation.

    :meth:`translate` range-checks the arguments named in ``checks`` (under the library's
    name), passes every argument on under its ``rename`` (its own name where none),
    adds ``const`` and finally what ``special`` returns: ``special`` takes the arguments
    that do not map one to one out of the dict it is given.
    """

    library: str
    args: Mapping[str, object]  # library argument -> default (REQUIRED: none)
    rename: Mapping[str, str] = dataclasses.field(default_factory=dict)  # library argument -> ours
    checks: Mapping[str, Mapping] = dataclasses.field(default_factory=dict)  # library argument -> bounds
    const: Mapping[str, object] = dataclasses.field(default_factory=dict)  # our fixed options
    special: Callable[[dict], dict] | None = None
    ignored: tuple[str, ...] = ()  # accepted, no effect on the maths
    fixed: Mapping[str, object] = dataclasses.field(default_factory=dict)  # only this value
    group_keys: Mapping[str, str] = dataclasses.field(default_factory=dict)  # group key renames

    def allowed(self) -> list[str]:
        return list(self.args) + list(self.ignored) + list(self.fixed) + list(_EXTRAS)

    def translate(self, args: Mapping) -> dict:
        """The library's arguments (every one of :attr:`args`) -> RMSPropOptimizer kwargs."""
        for key, bounds in self.checks.items():
            check_number(key, args[key], **bounds)
        rest = dict(args)
        extra = self.special(rest) if self.special is not None else {}
        return {**{self.rename.get(k, k): v for k, v in rest.items()}, **self.const, **extra}


def _l2(coeff):
    """The other libraries' coupled weight decay: their float64 parameters use ``coeff`` as given."""
    return L2Decay(coeff, float32_attrs=False) if coeff else None


def _torch(a):
    return {"weight_decay": _l2(a.pop("weight_decay"))}


def _keras_clip(a):
    given = {k: v for k in ("clipnorm", "clipvalue", "global_clipnorm") if (v := a.pop(k)) is not None}
    if len(given) > 1:
        raise ValueError(
            "only one of clipnorm, clipvalue and global_clipnorm can be set (as in Keras), got "
            + ", ".join(f"{k}={v!r}" for k, v in given.items())
        )
    if not given:
        return None
    ((key, value),) = given.items()
    value = check_number(key, value)
    if value <= 0:  # Keras: `if self.clipnorm and self.clipnorm > 0`, else no clipping
        return None
    if key == "clipvalue":
        return ClipGradByValue(value, -value, float32_attrs=False)
    return (ClipGradByNorm if key == "clipnorm" else ClipGradByGlobalNorm)(value)


def _keras(a):
    wd = a.pop("weight_decay")
    decoupled = 0.0 if wd is None else check_number("weight_decay", wd, lo=0.0)
    return {"decoupled_weight_decay": decoupled, "grad_clip": _keras_clip(a)}


def _optax(a):
    momentum = a.pop("momentum")
    momentum = 0.0 if momentum is None else check_number("momentum", momentum, lo=0.0)
    nesterov = check_bool("nesterov", a.pop("nesterov")) and momentum != 0  # optax: no trace, no nesterov
    return {"momentum": momentum, "nesterov": nesterov}


def _timm(a):
    wd = check_number("weight_decay", a.pop("weight_decay"), lo=0.0)
    decoupled = check_bool("decoupled_decay", a.pop("decoupled_decay"))
    return {"weight_decay": None if decoupled else _l2(wd), "decoupled_weight_decay": wd if decoupled else 0.0}


_TORCH_NAMES = dict(lr="learning_rate", **TORCH_GROUP_KEYS)


PRESETS: dict[str, Preset] = {
    "paddle": Preset(
        "paddle.optimizer.RMSProp",
        {
            "learning_rate": REQUIRED,
            "rho": 0.95,
            "epsilon": 1e-6,
            "momentum": 0.0,
            "centered": False,
            "weight_decay": None,
            "grad_clip": None,
        },
    ),
    "torch": Preset(
        "torch.optim.RMSprop",
        {
            "lr": 0.01,
            "alpha": 0.99,
            "eps": 1e-8,
            "weight_decay": 0.0,
            "momentum": 0.0,
            "centered": False,
            "maximize": False,
        },
        rename=_TORCH_NAMES,
        checks={"lr": _NONNEG, "eps": _POSITIVE, "alpha": _DECAY, "weight_decay": _NONNEG},
        const={"eps_in_sqrt": False, "lr_in_momentum": False, "float32_attrs": False},
        special=_torch,
        ignored=("foreach",),
        fixed={"capturable": False, "differentiable": False},
        group_keys=TORCH_GROUP_KEYS,
    ),
    "tf1": Preset(
        "tf.compat.v1.train.RMSPropOptimizer",
        {"learning_rate": REQUIRED, "decay": 0.9, "momentum": 0.0, "epsilon": 1e-10, "centered": False},
        rename={"decay": "rho"},
        checks={"decay": _DECAY},
        const={"initial_mean_square": 1.0, "float32_attrs": False},
        ignored=("use_locking",),
    ),
    "keras": Preset(
        "keras.optimizers.RMSprop",
        {
            "learning_rate": 0.001,
            "rho": 0.9,
            "momentum": 0.0,
            "epsilon": 1e-7,
            "centered": False,
            "weight_decay": None,
            "clipnorm": None,
            "clipvalue": None,
            "global_clipnorm": None,
        },
        special=_keras,
        const={"float32_attrs": False},
        fixed={
            "use_ema": False,
            "ema_momentum": 0.99,
            "ema_overwrite_frequency": None,
            "loss_scale_factor": None,
            "gradient_accumulation_steps": None,
        },
    ),
    "optax": Preset(
        "optax.rmsprop",
        {
            "learning_rate": REQUIRED,
            "decay": 0.9,
            "eps": 1e-8,
            "initial_scale": 0.0,
            "eps_in_sqrt": True,
            "centered": False,
            "momentum": None,
            "nesterov": False,
            "bias_correction": False,
        },
        rename={"decay": "rho", "eps": "epsilon", "initial_scale": "initial_mean_square"},
        checks={"decay": _DECAY, "eps": _POSITIVE, "initial_scale": _NONNEG},
        special=_optax,
        const={"float32_attrs": False},
    ),
    "timm": Preset(
        "timm.optim.RMSpropTF",
        {
            "lr": 0.01,
            "alpha": 0.9,
            "eps": 1e-10,
            "weight_decay": 0.0,
            "momentum": 0.0,
            "centered": False,
            "decoupled_decay": False,
            "lr_in_momentum": True,
        },
        rename=_TORCH_NAMES,
        checks={"lr": _NONNEG, "alpha": _DECAY, "eps": _POSITIVE},
        const={"initial_mean_square": 1.0, "float32_attrs": False},
        special=_timm,
        ignored=("foreach",),
        fixed={"caution": False, "corrected_weight_decay": False},
        group_keys=TORCH_GROUP_KEYS,
    ),
}


def _translate_groups(preset: Preset, name: str, parameters):
    """torch/timm-style group dicts: rename the library's per-group keys to ours."""
    if not is_group_list(parameters):
        return parameters
    out = []
    for i, group in enumerate(parameters):
        group = rename_group_keys(group, preset.group_keys, f"parameters[{i}]")
        if name in ("torch", "timm") and group.get("nesterov"):
            raise ValueError(f"parameters[{i}]['nesterov']: {preset.library} has no nesterov option")
        out.append(group)
    return out


def build_preset(cls, name: str, parameters, kwargs: dict):
    """``cls`` (RMSPropOptimizer) configured as library ``name``; see the module docstring."""
    options = preset_options(name, kwargs)
    return cls(parameters=_translate_groups(PRESETS[name], name, parameters), **options)


def preset_options(name: str, kwargs: dict) -> dict:
    """The ``RMSPropOptimizer`` keyword arguments (less ``parameters``) of library ``name``
    called with its own arguments ``kwargs``; raises as :func:`build_preset`."""
    preset = PRESETS.get(name) if isinstance(name, str) else None
    if preset is None:
        raise ValueError(f"unknown RMSProp preset {name!r}; choose one of {', '.join(map(repr, PRESETS))}")
    unknown = [k for k in kwargs if k not in preset.allowed()]
    if unknown:
        raise TypeError(
            f"RMSProp.preset({name!r}) got unexpected argument(s) {', '.join(map(repr, unknown))}; "
            f"{preset.library} takes: {', '.join(preset.args)}"
            + (f" (accepted and ignored: {', '.join(preset.ignored)})" if preset.ignored else "")
            + f"; torchfluid adds: {', '.join(_EXTRAS)}"
        )
    for key, only in preset.fixed.items():
        if key in kwargs and kwargs[key] != only:
            raise ValueError(
                f"RMSProp.preset({name!r}): {key}={kwargs[key]!r} is not supported "
                f"(only the default {key}={only!r}, which does not change the maths)"
            )
    args = {k: kwargs.get(k, default) for k, default in preset.args.items()}
    missing = [k for k, v in args.items() if v is REQUIRED]
    if missing:
        raise TypeError(f"RMSProp.preset({name!r}) needs {', '.join(missing)} ({preset.library} has no default)")
    options = preset.translate(args)
    options.update({k: kwargs.get(k, default) for k, default in _EXTRAS.items()})
    return options
