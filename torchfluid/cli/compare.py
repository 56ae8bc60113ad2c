"""``torchfluid compare``: one model and data set, several optimizer settings, one plot.

Every setting starts from the same parameters and sees the same batches (same seed).
A setting replaces the base configuration's optimizer choice (``optimizer.kind``, the
preset and the kind's own options: rho, epsilon, momentum, nesterov, beta1, beta2,
initial_accumulator_value, ...) but keeps what all settings share: the learning
rate, its schedule, clipping and regularization, unless the setting sets them too.

Settings: names from :data:`MENU` (``--settings paddle,torch-preset,torch.rmsprop``),
``--setting "LABEL:key=value,key=value"`` (keys relative to ``optimizer.``), or in the
TOML file an array of tables::

    [[compare]]
    name = "torch preset"
    optimizer = { kind = "rmsprop", preset = "torch", preset_args = { alpha = 0.9 } }
"""

from __future__ import annotations

import os

from .config import ConfigError, build_config, load_toml, parse_value
from .flags import add_config_flags, given_from_args, user_given
from .outdir import claimed_out
from .report import format_table, loss_panels, plot_panels, same_curves, write_metrics
from .train import check_run, data_line, run_config

__all__ = ["add_parser", "run", "MENU", "DEFAULT_SETTINGS", "RESULTS"]

RESULTS = ("metrics.csv", "metrics.json", "compare.png")

MENU = {
    "paddle": {"kind": "rmsprop"},
    "paddle-centered": {"kind": "rmsprop", "centered": True, "momentum": 0.9},
    "torch-preset": {"kind": "rmsprop", "preset": "torch"},
    "tf1-preset": {"kind": "rmsprop", "preset": "tf1"},
    "keras-preset": {"kind": "rmsprop", "preset": "keras"},
    "optax-preset": {"kind": "rmsprop", "preset": "optax"},
    "timm-preset": {"kind": "rmsprop", "preset": "timm"},
    "torch.rmsprop": {"kind": "torch.rmsprop", "rho": 0.99, "epsilon": 1e-8},
    "adam": {"kind": "adam"},
    "torch.adam": {"kind": "torch.adam"},
    "sgd": {"kind": "sgd"},
    "torch.sgd": {"kind": "torch.sgd"},
    "momentum": {"kind": "momentum"},
    "torch.momentum": {"kind": "torch.momentum"},
    "adagrad": {"kind": "adagrad"},
    "torch.adagrad": {"kind": "torch.adagrad", "epsilon": 1e-6},
}
LABELS = {
    "paddle": "torchfluid RMSProp (Paddle defaults)",
    "paddle-centered": "torchfluid RMSProp centered, momentum 0.9",
    "torch-preset": "torchfluid RMSProp.preset('torch')",
    "torch.rmsprop": "torch.optim.RMSprop",
    "adam": "torchfluid Adam",
    "torch.adam": "torch.optim.Adam",
    "sgd": "torchfluid SGD",
    "torch.sgd": "torch.optim.SGD",
    "momentum": "torchfluid Momentum",
    "torch.momentum": "torch.optim.SGD, momentum 0.9",
    "adagrad": "torchfluid Adagrad",
    "torch.adagrad": "torch.optim.Adagrad, eps 1e-6",
}
DEFAULT_SETTINGS = "paddle,paddle-centered,torch-preset,torch.rmsprop,adam,torch.adam"
_SHARED = ("optimizer.learning_rate", "optimizer.schedule.", "optimizer.clip.", "optimizer.regularization.")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="several optimizer settings on one model, curves side by side",
        description=__doc__,
    )
    add_config_flags(
        p, defaults={"data.name": "wine", "epochs": 15, "out": "torchfluid-compare", "optimizer.learning_rate": 0.005}
    )
    p.add_argument(
        "--settings", default=None, help=f"comma-separated names from: {', '.join(MENU)} (default {DEFAULT_SETTINGS})"
    )
    p.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="LABEL:K=V,...",
        help="a custom setting, keys relative to optimizer. (repeat)",
    )
    p.set_defaults(run=run)


def _custom(text: str) -> tuple[str, dict]:
    label, sep, body = text.partition(":")
    if not sep or not label.strip():
        raise ConfigError(f"--setting {text!r}: expected LABEL:key=value,key=value")
    opts = {}
    for item in filter(None, (s.strip() for s in body.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--setting {text!r}: {item!r} is not key=value")
        opts[key.strip()] = parse_value(value.strip())
    return label.strip(), opts


def _settings(args, tree: dict) -> list[tuple[str, dict]]:
    out = []
    for i, entry in enumerate(tree.pop("compare", []) or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("optimizer", {}), dict):
            raise ConfigError(f"compare[{i}] must be a table with name and optimizer = {{...}}, got {entry!r}")
        unknown = sorted(set(entry) - {"name", "optimizer"})
        if unknown:
            raise ConfigError(f"compare[{i}]: unknown key {unknown[0]} (keys: name, optimizer)")
        out.append((str(entry.get("name", f"setting {i}")), dict(entry.get("optimizer", {}))))
    names = args.settings if args.settings is not None else (None if out or args.setting else DEFAULT_SETTINGS)
    for name in filter(None, (n.strip() for n in (names or "").split(","))):
        if name not in MENU:
            raise ConfigError(f"--settings: unknown setting {name!r}; choose from {', '.join(MENU)}")
        out.append((LABELS.get(name, name), dict(MENU[name])))
    out.extend(_custom(s) for s in args.setting)
    labels = [label for label, _ in out]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ConfigError(f"two settings are both labelled {dup[0]!r}")
    if len(out) < 1:
        raise ConfigError("compare needs at least one setting")
    return out


def _config_for(base: dict, label: str, opts: dict):
    flat = {k: v for k, v in base.items() if not k.startswith("optimizer.") or k.startswith(_SHARED)}
    for key, value in opts.items():
        if key == "preset_args" or not isinstance(value, dict):
            flat[f"optimizer.{key}"] = value
        else:
            flat.update({f"optimizer.{key}.{k}": v for k, v in value.items()})
    flat["name"] = label
    try:
        return build_config(flat)
    except ConfigError as e:
        raise ConfigError(f"setting {label!r}: {e}") from None


def run(args) -> int:
    tree = load_toml(args.config) if args.config else {}
    settings = _settings(args, tree)
    base = given_from_args(args, tree)
    configs = [_config_for(base, label, opts) for label, opts in settings]  # all checked before training
    if configs[0]["checkpoint_dir"] is not None:
        raise ConfigError(
            "checkpoint_dir applies to train: the settings of compare would share one checkpoint "
            "folder (train each setting with its own --checkpoint-dir instead)"
        )
    prepared = [check_run(cfg) for cfg in configs]
    first, data = configs[0], prepared[0]
    with claimed_out(
        first["out"], given="out" in user_given(args, tree), overwrite=first["overwrite"], results=RESULTS
    ) as out:
        runs = []
        for cfg, cfg_data in zip(configs, prepared, strict=True):
            print(f"\n== {cfg['name']}")
            runs.append(run_config(cfg, label=cfg["name"], data=cfg_data))
        regression = not data.classification
        rows = []
        overlap = same_curves(runs)
        for run_ in runs:
            h = run_.history
            note = f"same curves as {overlap[run_.label]!r}" if run_.label in overlap else ""
            rows.append(
                [
                    run_.label,
                    h[-1]["train_loss"],
                    h[-1]["test_loss"],
                    None if regression else f"{100 * max(r['test_accuracy'] for r in h):.1f}%",
                    f"{sum(r['seconds'] for r in h):.2f}s",
                    note,
                ]
            )
        print(f"\n{first['model.kind']} model on {data_line(data)}, {first['epochs']} epochs, {first['mode']} mode")
        print(format_table(["setting", "final train loss", "final test loss", "best test acc", "time", "note"], rows))
        if overlap:
            print("(identical curves are drawn on top of each other; their line styles and markers differ)")
        meta = {"command": "compare", "settings": [{"label": c["name"], "config": c.as_tree()} for c in configs]}
        csv_path, json_path = write_metrics(out, runs, meta)
        png = plot_panels(
            loss_panels(runs, regression=regression),
            os.path.join(out, "compare.png"),
            suptitle=f"{first['model.kind']} on {data.name}: optimizers compared",
        )
        print(f"wrote {csv_path}, {json_path}, {png}")
    return 0
