"""Command-line flags of ``train`` and ``compare`` -> configuration keys.

Precedence: the ``--config`` TOML file, then the named flags, then ``--set key=value``.
"""

from __future__ import annotations

import argparse
import os

from ..dataset.bundled import DATASETS
from .config import KEYS, OPTIMIZERS, SCHEDULES, ConfigError, build_config, flatten, load_toml, parse_value

__all__ = ["add_config_flags", "config_from_args", "given_from_args", "user_given"]

# flag -> (dest key, argparse kwargs); a dest starting with "_" is translated in _translate
_FLAGS = [
    ("--data", "_data", {"metavar": "NAME|CSV", "help": f"a bundled set ({', '.join(DATASETS)}) or a CSV path"}),
    ("--target", "data.target", {"metavar": "COLUMN", "help": "the CSV's target column"}),
    ("--task", "data.task", {"choices": KEYS["data.task"].choices}),
    ("--model", "model.kind", {"choices": KEYS["model.kind"].choices}),
    ("--hidden", "_hidden", {"metavar": "W[,W...]", "help": "hidden widths, e.g. 64,64 ('' for none)"}),
    ("--optimizer", "optimizer.kind", {"choices": OPTIMIZERS}),
    (
        "--preset",
        "optimizer.preset",
        {"metavar": "LIB", "help": "RMSProp.preset: paddle, torch, tf1, keras, optax, timm"},
    ),
    ("--preset-arg", "_preset_arg", {"metavar": "K=V", "action": "append", "help": "a preset's own argument (repeat)"}),
    ("--lr", "optimizer.learning_rate", {"type": float}),
    ("--rho", "optimizer.rho", {"type": float}),
    ("--epsilon", "optimizer.epsilon", {"type": float}),
    ("--momentum", "optimizer.momentum", {"type": float}),
    ("--centered", "optimizer.centered", {"action": "store_const", "const": True}),
    ("--nesterov", "optimizer.nesterov", {"action": "store_const", "const": True}),
    ("--l1", "_l1", {"type": float, "metavar": "COEFF", "help": "L1Decay regularization"}),
    ("--l2", "_l2", {"type": float, "metavar": "COEFF", "help": "L2Decay regularization"}),
    ("--clip", "_clip", {"metavar": "KIND:VALUE", "help": "value:1.0, norm:1.0 or global_norm:1.0"}),
    ("--schedule", "optimizer.schedule.kind", {"choices": SCHEDULES}),
    ("--multi-precision", "optimizer.multi_precision", {"action": "store_const", "const": True}),
    ("--precision", "precision", {"choices": KEYS["precision"].choices}),
    ("--epochs", "epochs", {"type": int}),
    ("--batch-size", "batch_size", {"type": int}),
    ("--seed", "seed", {"type": int}),
    ("--mode", "mode", {"choices": KEYS["mode"].choices}),
    ("--out", "out", {"metavar": "DIR"}),
    ("--checkpoint-dir", "checkpoint_dir", {"metavar": "DIR"}),
    ("--resume", "resume", {"action": "store_const", "const": True, "help": "continue from the newest checkpoint"}),
    (
        "--resume-anyway",
        "_resume_anyway",
        {"action": "store_const", "const": True, "help": "--resume even if the checkpoint's configuration differs"},
    ),
    (
        "--overwrite",
        "overwrite",
        {
            "action": "store_const",
            "const": True,
            "help": "replace an existing --out's results and another run's checkpoints",
        },
    ),
    ("--no-progress", "progress", {"action": "store_const", "const": False, "help": "no progress bar"}),
]


def add_config_flags(p: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    p.add_argument("--config", metavar="FILE.toml", help="a TOML file of configuration keys")
    p.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="set_",
        help="any configuration key, value in TOML syntax, e.g. optimizer.rho=0.9 (repeat)",
    )
    for flag, dest, kw in _FLAGS:
        kw = dict(kw)
        kw.setdefault("help", f"sets {dest}")
        if "type" in kw:
            kw.setdefault("metavar", dest.rsplit(".", 1)[-1].upper())
        p.add_argument(flag, dest=dest.replace(".", "__"), default=argparse.SUPPRESS, **kw)
    p.set_defaults(config_defaults=defaults or {})


def _key_value(text: str, flag: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{flag} {text!r}: expected KEY=VALUE")
    return key.strip(), parse_value(value.strip())


def _translate(dest: str, value, flat: dict) -> None:
    if dest == "_data":
        if value not in DATASETS and not (os.sep in value or value.endswith(".csv") or os.path.exists(value)):
            raise ConfigError(f"--data {value!r}: neither a bundled data set ({', '.join(DATASETS)}) nor a CSV file")
        flat["data.name" if value in DATASETS else "data.path"] = value
    elif dest == "_hidden":
        try:
            flat["model.hidden"] = [int(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"--hidden {value!r}: expected comma-separated integers, e.g. 64,64") from None
    elif dest == "_preset_arg":
        flat["optimizer.preset_args"] = dict(_key_value(v, "--preset-arg") for v in value)
    elif dest == "_resume_anyway":
        flat["resume"] = flat["resume_anyway"] = True
    elif dest in ("_l1", "_l2"):
        flat["optimizer.regularization.kind"] = dest[1:]
        flat["optimizer.regularization.coeff"] = value
    elif dest == "_clip":
        kind, sep, v = value.partition(":")
        if not sep:
            raise ConfigError(f"--clip {value!r}: expected KIND:VALUE, e.g. global_norm:1.0")
        flat["optimizer.clip.kind"] = kind
        flat["optimizer.clip.value"] = parse_value(v)
    else:
        flat[dest] = value


def given_from_args(args: argparse.Namespace, extra_tree: dict | None = None) -> dict:
    """The flat ``{key: value}`` the user gave (file, flags, --set) over the command's
    defaults, not yet checked."""
    user = user_given(args, extra_tree)
    defaults = dict(args.config_defaults)
    if "data.path" in user:  # a CSV replaces the command's default data set
        defaults.pop("data.name", None)
    return {**defaults, **user}


def user_given(args: argparse.Namespace, extra_tree: dict | None = None) -> dict:
    """The flat ``{key: value}`` of the file, flags and --set only (no command defaults)."""
    user = flatten(extra_tree) if extra_tree else {}
    for _flag, dest, _ in _FLAGS:
        attr = dest.replace(".", "__")
        if hasattr(args, attr):
            _translate(dest, getattr(args, attr), user)
    for item in args.set_:
        key, value = _key_value(item, "--set")
        user[key] = value
    return user


def config_from_args(args: argparse.Namespace, tree: dict | None = None):
    """The checked :class:`Config` of ``args`` (``tree``: an already loaded TOML)."""
    if tree is None and args.config:
        tree = load_toml(args.config)
    return build_config(given_from_args(args, tree))
