"""Run configuration of ``torchfluid train`` / ``compare``: one table of keys, checked once.

A configuration comes from a TOML file (``--config``), ``--set key=value`` overrides and
the convenience flags, in that order of precedence (later wins). Every key has a type,
a range or a set of allowed values and a default (:data:`KEYS`); a bad value raises
:class:`ConfigError` naming the key, the value and what is allowed, e.g.
``optimizer.rho must be in [0, 1), got 1.5``.
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
import tomllib

from .._checks import check_choice, check_number
from ..dataset.bundled import DATASETS
from ..optimizer.presets import PRESETS

__all__ = [
    "ConfigError",
    "Config",
    "KEYS",
    "load_toml",
    "parse_value",
    "build_config",
    "OPTIMIZERS",
    "SCHEDULES",
    "epsilon_of",
    "momentum_of",
]


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range."""


MAX_WIDTH = 65536  # widths, embedding size and bins: a model must fit in memory
RMSPROP_KINDS = ("rmsprop", "torch.rmsprop")
ADAM_KINDS = ("adam", "torch.adam")
MOMENTUM_KINDS = ("momentum", "torch.momentum")
ADAGRAD_KINDS = ("adagrad", "torch.adagrad")
OPTIMIZERS = (
    "rmsprop",
    "sgd",
    "momentum",
    "adam",
    "adagrad",
    "torch.rmsprop",
    "torch.sgd",
    "torch.momentum",
    "torch.adam",
    "torch.adagrad",
)
# optimizer.epsilon and optimizer.momentum when not given: each library's own default
_EPSILON_DEFAULTS = {"rmsprop": 1e-6, "adagrad": 1e-6, "torch.adagrad": 1e-10}  # others: 1e-8
_MOMENTUM_DEFAULTS = {"momentum": 0.9, "torch.momentum": 0.9}  # others: 0


def epsilon_of(cfg) -> float:
    """``optimizer.epsilon``, or the default of ``optimizer.kind`` when not set."""
    eps = cfg["optimizer.epsilon"]
    return _EPSILON_DEFAULTS.get(cfg["optimizer.kind"], 1e-8) if eps is None else eps


def momentum_of(cfg) -> float:
    """``optimizer.momentum``, or the default of ``optimizer.kind`` when not set."""
    mu = cfg["optimizer.momentum"]
    return _MOMENTUM_DEFAULTS.get(cfg["optimizer.kind"], 0.0) if mu is None else mu


SCHEDULES = ("constant", "exponential", "natural_exp", "inverse_time", "polynomial", "piecewise", "cosine", "warmup")
_TF_ONLY = ("rmsprop",)  # torchfluid's RMSProp options torch.optim.RMSprop does not have


@dataclasses.dataclass(frozen=True)
class Key:
    """One configuration key: its type and what it allows."""

    path: str
    type: str  # int | float | bool | str | list_int | list_float | table
    default: object = None
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple = ()
    optional: bool = False  # None allowed
    kinds: tuple = ()  # optimizer kinds it applies to (empty: all)
    help: str = ""


KEYS: dict[str, Key] = {
    k.path: k
    for k in [
        Key("epochs", "int", 10, lo=1, help="passes over the training rows"),
        Key("batch_size", "int", 32, lo=1),
        Key("seed", "int", 0, lo=0, hi=2**63 - 1, help="parameter init, shuffling and the train/test split"),
        Key(
            "mode",
            "str",
            "dygraph",
            choices=("dygraph", "static"),
            help="dygraph: fluid.dygraph Layers; static: a fluid Program run by an Executor",
        ),
        Key(
            "precision",
            "str",
            "float32",
            choices=("float32", "bfloat16", "float16"),
            help="parameter dtype (dygraph only)",
        ),
        Key(
            "threads",
            "int",
            1,
            lo=0,
            hi=1024,
            help="torch CPU threads while training (0: torch's default); 1 is fastest for small models",
        ),
        Key("name", "str", None, optional=True, help="label of the run in tables and plots"),
        Key(
            "out",
            "str",
            "torchfluid-run",
            help="folder for metrics.csv, metrics.json, loss.png (not given: a new "
            "folder per run, torchfluid-run, torchfluid-run-2, ...)",
        ),
        Key(
            "overwrite",
            "bool",
            False,
            help="replace the results in an existing out folder and another run's checkpoints in checkpoint_dir",
        ),
        Key("checkpoint_dir", "str", None, optional=True),
        Key("checkpoint_every", "int", 1, lo=1, hi=1_000_000),
        Key("checkpoint_keep", "int", 2, lo=1, hi=1_000_000),
        Key("resume", "bool", False, help="continue from the newest checkpoint in checkpoint_dir"),
        Key(
            "resume_anyway",
            "bool",
            False,
            help="resume even when the checkpoint was written with another configuration",
        ),
        Key("progress", "bool", True, help="show a progress bar (on a terminal)"),
        Key("data.name", "str", "iris", choices=tuple(DATASETS)),
        Key("data.path", "str", None, optional=True, help="a CSV file with a header row (instead of data.name)"),
        Key("data.target", "str", None, optional=True, help="the CSV's target column"),
        Key("data.task", "str", "auto", choices=("auto", "regression", "classification")),
        Key("data.test_fraction", "float", 0.2, lo=0.0, hi=1.0, lo_open=True, hi_open=True),
        Key("model.kind", "str", "mlp", choices=("linear", "mlp", "embedding")),
        Key("model.hidden", "list_int", [32], lo=1, hi=MAX_WIDTH, help="hidden layer widths (mlp, embedding)"),
        Key("model.activation", "str", "relu", choices=("relu", "tanh", "sigmoid")),
        Key("model.embedding_dim", "int", 16, lo=1, hi=MAX_WIDTH),
        Key("model.bins", "int", 16, lo=2, hi=MAX_WIDTH, help="embedding: each feature is cut into this many bins"),
        Key("model.sparse", "bool", False, help="embedding: sparse (row) gradients, dygraph only"),
        Key("optimizer.kind", "str", "rmsprop", choices=OPTIMIZERS),
        Key("optimizer.learning_rate", "float", 0.01, lo=0.0, lo_open=True),
        Key(
            "optimizer.preset",
            "str",
            None,
            optional=True,
            choices=tuple(PRESETS),
            kinds=_TF_ONLY,
            help="a library's RMSProp (RMSProp.preset); its own arguments go in optimizer.preset_args",
        ),
        Key("optimizer.preset_args", "table", {}, kinds=_TF_ONLY),
        Key("optimizer.rho", "float", 0.95, lo=0.0, hi=1.0, hi_open=True, kinds=RMSPROP_KINDS),
        Key(
            "optimizer.epsilon",
            "float",
            None,
            optional=True,
            lo=0.0,
            lo_open=True,
            kinds=RMSPROP_KINDS + ADAM_KINDS + ADAGRAD_KINDS,
            help="default: 1e-6 (rmsprop, adagrad), 1e-10 (torch.adagrad), 1e-8 (the others)",
        ),
        Key(
            "optimizer.momentum",
            "float",
            None,
            optional=True,
            lo=0.0,
            kinds=RMSPROP_KINDS + ("torch.sgd",) + MOMENTUM_KINDS,
            help="default: 0.9 (momentum, torch.momentum), 0 (the others)",
        ),
        Key("optimizer.centered", "bool", False, kinds=RMSPROP_KINDS),
        Key("optimizer.eps_in_sqrt", "bool", True, kinds=_TF_ONLY),
        Key("optimizer.initial_mean_square", "float", 0.0, lo=0.0, kinds=_TF_ONLY),
        Key("optimizer.lr_in_momentum", "bool", True, kinds=_TF_ONLY),
        Key(
            "optimizer.nesterov",
            "bool",
            False,
            kinds=_TF_ONLY + MOMENTUM_KINDS,
            help="Nesterov momentum (momentum: use_nesterov; torch.momentum: nesterov)",
        ),
        Key("optimizer.decoupled_weight_decay", "float", 0.0, lo=0.0, kinds=_TF_ONLY),
        Key("optimizer.bias_correction", "bool", False, kinds=_TF_ONLY),
        Key("optimizer.lazy_mode", "bool", False, kinds=_TF_ONLY),
        Key("optimizer.multi_precision", "bool", False, kinds=_TF_ONLY),
        Key("optimizer.state_dtype", "str", None, optional=True, choices=("float32", "bfloat16"), kinds=_TF_ONLY),
        Key("optimizer.nonfinite", "str", "propagate", choices=("propagate", "skip", "raise"), kinds=_TF_ONLY),
        Key("optimizer.beta1", "float", 0.9, lo=0.0, hi=1.0, hi_open=True, kinds=ADAM_KINDS),
        Key("optimizer.beta2", "float", 0.999, lo=0.0, hi=1.0, hi_open=True, kinds=ADAM_KINDS),
        Key(
            "optimizer.initial_accumulator_value",
            "float",
            0.0,
            lo=0.0,
            kinds=ADAGRAD_KINDS,
            help="the starting value of Adagrad's sum of squared gradients",
        ),
        Key("optimizer.regularization.kind", "str", "none", choices=("none", "l1", "l2")),
        Key("optimizer.regularization.coeff", "float", 1e-4, lo=0.0),
        Key("optimizer.clip.kind", "str", "none", choices=("none", "value", "norm", "global_norm")),
        Key("optimizer.clip.value", "float", 1.0, lo=0.0, lo_open=True),
        Key("optimizer.schedule.kind", "str", "constant", choices=SCHEDULES),
        Key("optimizer.schedule.decay_steps", "int", 100, lo=1, hi=2**53),
        Key("optimizer.schedule.decay_rate", "float", 0.5, lo=0.0, lo_open=True),
        Key("optimizer.schedule.staircase", "bool", False),
        Key("optimizer.schedule.end_learning_rate", "float", 1e-4, lo=0.0),
        Key("optimizer.schedule.power", "float", 1.0, lo=0.0, lo_open=True),
        Key("optimizer.schedule.boundaries", "list_int", [], lo=1, hi=2**53),
        Key("optimizer.schedule.values", "list_float", [], lo=0.0),
        Key("optimizer.schedule.warmup_steps", "int", 10, lo=1, hi=2**53),
        Key("optimizer.schedule.start_lr", "float", 0.0, lo=0.0),
    ]
}
WITH_PRESET = (
    "optimizer.preset",
    "optimizer.preset_args",
    "optimizer.multi_precision",
    "optimizer.state_dtype",
    "optimizer.nonfinite",
)  # the preset itself and the torchfluid extras every preset takes
_TABLES = {k for k, v in KEYS.items() if v.type == "table"}
_SECTIONS = {p.rsplit(".", 1)[0] for p in KEYS if "." in p}


MAX_TOML_BYTES = 1 << 20


def parse_value(text: str):
    """A ``--set`` value: TOML syntax (``0.9``, ``true``, ``[64, 64]``, ``"x"``), else the text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def load_toml(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TOML_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"--config {path!r}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"--config {path!r}: is a folder, not a TOML file") from None
    except OSError as e:
        raise ConfigError(f"--config {path!r}: cannot be read: {e.strerror or e}") from None
    if len(data) > MAX_TOML_BYTES:
        raise ConfigError(f"--config {path!r}: larger than {MAX_TOML_BYTES} bytes; not a configuration file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"--config {path!r}: not UTF-8 text (byte {e.start}: {data[e.start : e.start + 1]!r}); TOML files are UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--config {path!r}: not valid TOML: {e}") from None
    except RecursionError:
        raise ConfigError(f"--config {path!r}: not valid TOML: nested too deeply") from None


def _unknown(path: str) -> ConfigError:
    section = path.rsplit(".", 1)[0] if "." in path else ""
    siblings = sorted(k for k in KEYS if (k.rsplit(".", 1)[0] if "." in k else "") == section)
    close = difflib.get_close_matches(path, list(KEYS), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return ConfigError(
        f"unknown key {path}{hint} (keys{' of [' + section + ']' if section else ''}: {', '.join(siblings)})"
    )


def flatten(tree: dict, prefix: str = "") -> dict:
    """``{"optimizer": {"rho": 0.9}}`` -> ``{"optimizer.rho": 0.9}`` (tables kept whole)."""
    flat = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if path in _TABLES:
            flat[path] = value
        elif isinstance(value, dict):
            if path not in _SECTIONS:
                raise (
                    _unknown(path)
                    if path not in KEYS
                    else ConfigError(f"{path} must be a {KEYS[path].type}, got a table")
                )
            flat.update(flatten(value, path + "."))
        elif path in KEYS:
            flat[path] = value
        else:
            raise _unknown(path)
    return flat


def _check(key: Key, value):
    name = key.path
    if value is None:
        if key.optional:
            return None
        raise ConfigError(f"{name} must be set")
    t = key.type
    try:
        if t == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{name} must be true or false, got {value!r}")
            return value
        if t in ("int", "float"):
            if t == "int" and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
            v = check_number(name, value, lo=key.lo, hi=key.hi, lo_open=key.lo_open, hi_open=key.hi_open)
            return int(value) if t == "int" else v  # (an int through float would lose digits above 2**53)
        if t == "str":
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
            return check_choice(name, value, key.choices) if key.choices else value
        if t in ("list_int", "list_float"):
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{name} must be a list, got {value!r}")
            if len(value) > 1000:
                raise ConfigError(f"{name} must have at most 1000 elements, got {len(value)}")
            return [_check(Key(f"{name}[{i}]", t[5:], lo=key.lo, hi=key.hi), v) for i, v in enumerate(value)]
        if t == "table":
            if not isinstance(value, dict):
                raise ConfigError(f"{name} must be a table of key = value, got {value!r}")
            return dict(value)
    except ValueError as e:  # check_number's and check_choice's messages already name the key
        raise ConfigError(str(e)) from None
    raise AssertionError(t)


class Config:
    """Checked values by dotted key (``cfg["optimizer.rho"]``); ``given`` = keys the user set."""

    def __init__(self, values: dict, given: set):
        self.values, self.given = values, given

    def __getitem__(self, path: str):
        return self.values[path]

    def section(self, prefix: str) -> dict:
        return {k[len(prefix) + 1 :]: v for k, v in self.values.items() if k.startswith(prefix + ".")}

    def as_tree(self) -> dict:
        tree: dict = {}
        for path, value in self.values.items():
            *parents, leaf = path.split(".")
            node = tree
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        return tree


def build_config(flat: dict) -> Config:
    """Check every given key, fill defaults, check the combinations."""
    for path in flat:
        if path not in KEYS:
            raise _unknown(path)
    values = {path: _check(key, flat[path]) if path in flat else key.default for path, key in KEYS.items()}
    values = {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v) for k, v in values.items()}
    cfg = Config(values, set(flat))
    _check_combinations(cfg)
    return cfg


def _check_combinations(cfg: Config) -> None:
    kind, mode = cfg["optimizer.kind"], cfg["mode"]
    for path in sorted(cfg.given):
        key = KEYS[path]
        if key.kinds and kind not in key.kinds:
            raise ConfigError(f"{path} applies to optimizer.kind {' or '.join(map(repr, key.kinds))}, not {kind!r}")
    if cfg["optimizer.preset"] is not None:
        mixed = sorted(p for p in cfg.given if "rmsprop" in KEYS[p].kinds and p not in WITH_PRESET)
        if mixed:
            args = ", ".join(PRESETS[cfg["optimizer.preset"]].args)
            raise ConfigError(
                f"{mixed[0]} cannot be combined with optimizer.preset={cfg['optimizer.preset']!r}: give the "
                f"library's own arguments in optimizer.preset_args ({args})"
            )
    elif "optimizer.preset_args" in cfg.given:
        raise ConfigError("optimizer.preset_args needs optimizer.preset")
    if mode == "static":
        for path, bad, why in (
            ("optimizer.kind", kind.startswith("torch."), "a torch.optim optimizer"),
            ("precision", cfg["precision"] != "float32", "a low-precision model"),
            ("model.sparse", cfg["model.sparse"], "sparse gradients"),
        ):
            if bad:
                raise ConfigError(
                    f"{path}={cfg[path]!r} needs mode='dygraph' ({why} runs eagerly only), got mode='static'"
                )
    if kind.startswith("torch.") and cfg["optimizer.regularization.kind"] == "l1":
        raise ConfigError(
            f"optimizer.regularization.kind='l1' is not available with optimizer.kind={kind!r} "
            "(torch.optim has only L2 weight decay)"
        )
    if cfg["precision"] == "float16" and kind in ("torch.rmsprop", "torch.adam", "torch.adagrad"):
        eps = epsilon_of(cfg)
        if eps < 6.1e-5:
            raise ConfigError(
                f"optimizer.epsilon={eps:g} is below float16's smallest normal number 6.1e-05: "
                f"{kind} keeps float16 state for float16 parameters, where it would underflow "
                "to 0; set optimizer.epsilon >= 6.1e-05 or use precision 'bfloat16' or 'float32'"
            )
    if cfg["resume_anyway"] and not cfg["resume"]:
        raise ConfigError("resume_anyway = true needs resume = true")
    if cfg["resume"] and cfg["checkpoint_dir"] is None:
        raise ConfigError("resume = true needs checkpoint_dir")
    if cfg["data.path"] is not None:
        if "data.name" in cfg.given:
            raise ConfigError("set data.name (a bundled set) or data.path (a CSV file), not both")
        if cfg["data.target"] is None:
            raise ConfigError(f"data.path={cfg['data.path']!r} needs data.target (the target column)")
    elif "data.target" in cfg.given:
        raise ConfigError("data.target applies to a CSV given by data.path")
    if "model.sparse" in cfg.given and cfg["model.kind"] != "embedding":
        raise ConfigError(f"model.sparse applies to model.kind='embedding', got {cfg['model.kind']!r}")
    if cfg["optimizer.lazy_mode"] and not cfg["model.sparse"]:
        raise ConfigError("optimizer.lazy_mode = true needs model.sparse = true (it only affects sparse gradients)")
    s = cfg.section("optimizer.schedule")
    if s["kind"] == "piecewise":
        b, v = s["boundaries"], s["values"]
        if not b:
            raise ConfigError(
                "optimizer.schedule.boundaries must list at least one step for schedule 'piecewise', got []"
            )
        if len(v) != len(b) + 1:
            raise ConfigError(
                f"optimizer.schedule.values must have len(boundaries) + 1 = {len(b) + 1} "
                f"elements for schedule 'piecewise', got {v!r} (boundaries {b!r})"
            )
        if any(x >= y for x, y in zip(b, b[1:], strict=False)):
            raise ConfigError(f"optimizer.schedule.boundaries must be increasing, got {b!r}")
