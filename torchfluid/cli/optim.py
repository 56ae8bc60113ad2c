"""Optimizers of a run from its configuration, the same code in dygraph and static mode.

torchfluid's ``RMSProp`` / ``SGD`` / ``Momentum`` / ``Adam`` / ``Adagrad`` take a fluid learning-rate decay from
``fluid.layers.*_decay`` (a dygraph decay object in dygraph mode, a ``Variable`` of the
program in static mode), fluid regularizers and gradient clips. The ``torch.*`` kinds
are ``torch.optim`` baselines (``torch.momentum`` is ``torch.optim.SGD`` with ``momentum`` and
``nesterov``, ``torch.adagrad`` is ``torch.optim.Adagrad`` with ``lr_decay=0``); their rate
follows the same decay, set into ``param_groups`` before every step (:class:`TorchStepper`).
"""

from __future__ import annotations

import torch

from .. import clip as C
from .. import layers, regularizer
from ..optimizer import SGD, Adagrad, Adam, Momentum, RMSProp
from ..optimizer.presets import PRESETS, preset_options
from .config import KEYS, WITH_PRESET, Config, ConfigError, epsilon_of, momentum_of

__all__ = ["learning_rate", "make_optimizer", "build_optimizer", "TorchStepper", "describe"]


def learning_rate(cfg: Config, steps_per_epoch: int):
    """The float rate, or a fluid decay of it (``fluid.layers.*_decay``; call in the mode's context)."""
    s, lr = cfg.section("optimizer.schedule"), cfg["optimizer.learning_rate"]
    decay = (s["decay_steps"], s["decay_rate"], s["staircase"])
    return {
        "constant": lambda: lr,
        "exponential": lambda: layers.exponential_decay(lr, *decay),
        "natural_exp": lambda: layers.natural_exp_decay(lr, *decay),
        "inverse_time": lambda: layers.inverse_time_decay(lr, *decay),
        "polynomial": lambda: layers.polynomial_decay(lr, s["decay_steps"], s["end_learning_rate"], s["power"]),
        "piecewise": lambda: layers.piecewise_decay(s["boundaries"], s["values"]),
        "cosine": lambda: layers.cosine_decay(lr, steps_per_epoch, cfg["epochs"]),
        "warmup": lambda: layers.linear_lr_warmup(lr, s["warmup_steps"], s["start_lr"], lr),
    }[s["kind"]]()


def _regularization(cfg: Config):
    r = cfg.section("optimizer.regularization")
    cls = {"l1": regularizer.L1Decay, "l2": regularizer.L2Decay}.get(r["kind"])
    return cls(r["coeff"]) if cls else None


def _clip(cfg: Config):
    c = cfg.section("optimizer.clip")
    v = c["value"]
    return {
        "none": lambda: None,
        "value": lambda: C.ClipGradByValue(v, -v),
        "norm": lambda: C.ClipGradByNorm(v),
        "global_norm": lambda: C.ClipGradByGlobalNorm(v),
    }[c["kind"]]()


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
# the RMSProp arguments taken as they are from the [optimizer] keys of the same names: every key of an
# RMSProp kind but epsilon and momentum (their defaults depend on the kind) and the preset keys and extras
_RMSPROP_KEYS = tuple(
    path.removeprefix("optimizer.")
    for path, key in KEYS.items()
    if "rmsprop" in key.kinds and path not in (*WITH_PRESET, "optimizer.epsilon", "optimizer.momentum")
)


def _rmsprop_options(cfg: Config, lr) -> dict:
    o = cfg.section("optimizer")
    multi = o["multi_precision"]
    if cfg["precision"] == "float16" and not {"optimizer.multi_precision", "optimizer.state_dtype"} & cfg.given:
        multi = True  # float16 state cannot hold epsilon or small squares: float32 master weights and state
    extras = {"multi_precision": multi, "state_dtype": _DTYPES.get(o["state_dtype"]), "nonfinite": o["nonfinite"]}
    reg, clip = _regularization(cfg), _clip(cfg)
    if o["preset"] is None:
        return dict(
            learning_rate=lr,
            epsilon=epsilon_of(cfg),
            momentum=momentum_of(cfg),
            regularization=reg,
            grad_clip=clip,
            **{key: o[key] for key in _RMSPROP_KEYS},
            **extras,
        )
    name, args = o["preset"], dict(o["preset_args"])
    lr_arg = "lr" if "lr" in PRESETS[name].args else "learning_rate"
    if lr_arg in args and "optimizer.learning_rate" in cfg.given:
        raise ConfigError(f"optimizer.learning_rate and optimizer.preset_args.{lr_arg} both set the rate; keep one")
    args.setdefault(lr_arg, cfg["optimizer.learning_rate"])
    for key, value in extras.items():
        args.setdefault(key, value)
    try:
        options = preset_options(name, args)
    except (TypeError, ValueError) as e:
        msg = str(e)
        first = msg.split(" ", 1)[0]
        raise ConfigError(
            f"optimizer.preset_args.{msg}" if first in args else f"optimizer.preset_args ({name!r}): {msg}"
        ) from None
    if not isinstance(lr, float):
        if args[lr_arg] != cfg["optimizer.learning_rate"]:
            raise ConfigError(
                f"optimizer.schedule.kind={cfg['optimizer.schedule.kind']!r} starts from "
                f"optimizer.learning_rate; set the rate there, not in preset_args.{lr_arg}"
            )
        options["learning_rate"] = lr
    for key, ours, theirs, both in (
        ("regularization", reg, "weight_decay", "optimizer.regularization and the preset's own weight_decay"),
        ("grad_clip", clip, "grad_clip", "optimizer.clip and the preset's own clipping"),
    ):
        if ours is not None:
            if options.get(theirs) is not None:
                raise ConfigError(f"{both} are both set; keep one")
            options[key] = ours
    return options


def make_optimizer(cfg: Config, lr, parameters=None):
    """torchfluid's optimizer of ``optimizer.kind`` (``parameters`` None in static mode); an
    argument the optimizer refuses is a :class:`ConfigError` with the optimizer's message."""
    kind, o = cfg["optimizer.kind"], cfg.section("optimizer")
    kw = {} if parameters is None else {"parameter_list": parameters}
    try:
        if kind == "rmsprop":
            return RMSProp(**_rmsprop_options(cfg, lr), **kw)
        common = dict(regularization=_regularization(cfg), grad_clip=_clip(cfg), **kw)
        if kind == "sgd":
            return SGD(lr, **common)
        if kind == "momentum":
            return Momentum(lr, momentum=momentum_of(cfg), use_nesterov=o["nesterov"], **common)
        if kind == "adam":
            return Adam(lr, beta1=o["beta1"], beta2=o["beta2"], epsilon=epsilon_of(cfg), **common)
        if kind == "adagrad":
            return Adagrad(
                lr, epsilon=epsilon_of(cfg), initial_accumulator_value=o["initial_accumulator_value"], **common
            )
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        raise ConfigError(f"optimizer ({describe(cfg)}): {e}") from None
    raise AssertionError(kind)


def build_optimizer(cfg: Config, lr, parameters):
    """The dygraph optimizer of ``optimizer.kind``: a :class:`TorchStepper` for the ``torch.*``
    kinds, else :func:`make_optimizer`'s."""
    if cfg["optimizer.kind"].startswith("torch."):
        return TorchStepper(cfg, parameters, lr)
    return make_optimizer(cfg, lr, parameters)


class TorchStepper:
    """A ``torch.optim`` baseline with torchfluid's decay and clipping applied around it."""

    def __init__(self, cfg: Config, parameters, lr):
        o = cfg.section("optimizer")
        reg = o["regularization.kind"]  # l1 is refused by the config check
        wd = o["regularization.coeff"] if reg == "l2" else 0.0
        self.params = list(parameters)
        self.schedule = None if isinstance(lr, float) else lr
        lr0 = lr if self.schedule is None else self.schedule.current_lr()
        eps, mu = epsilon_of(cfg), momentum_of(cfg)
        cls, kw = {
            "torch.rmsprop": (
                torch.optim.RMSprop,
                {"alpha": o["rho"], "eps": eps, "momentum": mu, "centered": o["centered"]},
            ),
            "torch.adam": (torch.optim.Adam, {"betas": (o["beta1"], o["beta2"]), "eps": eps}),
            "torch.sgd": (torch.optim.SGD, {"momentum": mu}),
            "torch.momentum": (torch.optim.SGD, {"momentum": mu, "nesterov": o["nesterov"]}),
            "torch.adagrad": (
                torch.optim.Adagrad,
                {"lr_decay": 0.0, "eps": eps, "initial_accumulator_value": o["initial_accumulator_value"]},
            ),
        }[o["kind"]]
        try:
            self.opt = cls(self.params, lr=lr0, weight_decay=wd, **kw)
        except ValueError as e:  # e.g. torch.optim.SGD: nesterov needs a momentum
            raise ConfigError(f"optimizer ({describe(cfg)}): {e}") from None
        self.clip = _clip(cfg)

    def step(self) -> None:
        if self.schedule is not None:
            rate = self.schedule()
            for g in self.opt.param_groups:
                g["lr"] = rate
        if self.clip is not None:
            with_grad = [p for p in self.params if p.grad is not None]
            clipped = self.clip.clip_tensors([p.grad for p in with_grad], [True] * len(with_grad))
            for p, g in zip(with_grad, clipped, strict=False):
                p.grad = g
        self.opt.step()

    def zero_grad(self) -> None:
        self.opt.zero_grad()

    def current_lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def state_dict(self) -> dict:
        sd = {"optimizer": self.opt.state_dict()}
        if self.schedule is not None:
            sd["schedule"] = self.schedule.state_dict()
        return sd

    def load_state_dict(self, sd: dict) -> None:
        """Load :meth:`state_dict`'s dict; a dict of a torchfluid optimizer or of another
        ``torch.optim`` class (other param-group options) is refused with a ValueError."""
        if not isinstance(sd, dict) or "optimizer" not in sd:
            raise ValueError(
                f"the optimizer state holds no torch.optim state (keys: {', '.join(map(str, sd))}); "
                f"{type(self.opt).__name__} cannot continue a torchfluid optimizer's state"
            )
        mine = set(self.opt.param_groups[0]) - {"params"}
        for group in sd["optimizer"].get("param_groups", []):
            theirs = set(group) - {"params"}
            if theirs != mine:
                raise ValueError(
                    f"the optimizer state is another torch.optim optimizer's (param-group options "
                    f"{', '.join(sorted(theirs))}); {type(self.opt).__name__} has {', '.join(sorted(mine))}"
                )
        self.opt.load_state_dict(sd["optimizer"])
        if self.schedule is not None:
            self.schedule.set_state_dict(sd["schedule"])


def describe(cfg: Config) -> str:
    """A short label, e.g. ``rmsprop(lr=0.01, centered, momentum=0.9, schedule=cosine, l2=0.0001)``."""
    o = cfg.section("optimizer")
    parts = [f"lr={o['learning_rate']:g}"]
    if o["preset"]:
        parts.insert(0, f"preset={o['preset']}")
        parts += [f"{k}={v}" for k, v in o["preset_args"].items()]
    for key in sorted(cfg.given):
        short = key[len("optimizer.") :] if key.startswith("optimizer.") else None
        if short and "." not in short and short not in ("kind", "learning_rate", "preset", "preset_args"):
            v = cfg[key]
            parts.append(short if v is True else f"{short}={v:g}" if isinstance(v, float) else f"{short}={v}")
    if o["schedule.kind"] != "constant":
        parts.append(f"schedule={o['schedule.kind']}")
    if o["clip.kind"] != "none":
        parts.append(f"clip={o['clip.kind']}:{o['clip.value']:g}")
    if o["regularization.kind"] != "none":
        parts.append(f"{o['regularization.kind']}={o['regularization.coeff']:g}")
    return f"{o['kind']}({', '.join(parts)})"
