"""``torchfluid train``: train one model as configured; write metrics and a plot."""

from __future__ import annotations

import os

import torch

from ..unique_name import guard as name_guard
from . import engine
from .data import prepare
from .flags import add_config_flags, config_from_args
from .models import ModelSpec
from .optim import build_optimizer, describe
from .outdir import claimed_out
from .report import ProgressReporter, loss_panels, plot_panels, write_metrics

__all__ = ["add_parser", "run", "run_config", "RESULTS"]

RESULTS = ("metrics.csv", "metrics.json", "loss.png")

EPILOG = """examples:
  torchfluid train --data wine --model mlp --optimizer rmsprop --centered --momentum 0.9
  torchfluid train --data uci_housing --model linear --mode static --lr 0.1 --batch-size 1
  torchfluid train --data digits --model embedding --set model.sparse=true --preset torch --preset-arg alpha=0.9
  torchfluid train --config run.toml --checkpoint-dir ckpt --resume
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model with torchfluid's optimizers (config file or flags)",
        description=__doc__.splitlines()[0].replace("``", "") + " Every key: torchfluid/cli/config.py (KEYS).",
        epilog=EPILOG,
    )
    add_config_flags(p)
    p.set_defaults(run=run)


def data_line(data) -> str:
    return (
        f"{data.name}: {len(data.x_train)} train / {len(data.x_test)} test rows, {data.num_features} features, "
        f"{data.task}{f' ({data.num_outputs} classes)' if data.classification else ''}"
    )


def check_run(cfg):
    """Everything that can be refused before training: data, model size, the optimizer's
    arguments (built over one stand-in parameter), checkpoint folder; returns the prepared data."""
    data = prepare(cfg)
    engine.check_model_size(ModelSpec.of(cfg, data))
    with name_guard():
        build_optimizer(cfg, cfg["optimizer.learning_rate"], [torch.nn.Parameter(torch.zeros(1))])
    engine.check_checkpoint_dir(cfg)
    return data


def run_config(cfg, label: str | None = None, stream=None, data=None) -> engine.RunResult:
    """Train ``cfg``, printing a header and the per-epoch table; write nothing."""
    data = prepare(cfg) if data is None else data
    label = label or cfg["name"] or describe(cfg)
    print(f"{cfg['model.kind']} model, {cfg['mode']} mode, {describe(cfg)}", file=stream, flush=True)
    print(f"data {data_line(data)}", file=stream, flush=True)
    return engine.train(cfg, data, ProgressReporter(cfg["progress"], stream=stream), label)


def run(args) -> int:
    cfg = config_from_args(args)
    data = check_run(cfg)
    with claimed_out(cfg["out"], given="out" in cfg.given, overwrite=cfg["overwrite"], results=RESULTS) as out:
        result = run_config(cfg, data=data)
        if result.resumed_from:
            print(f"(resumed after epoch {result.resumed_from} from {cfg['checkpoint_dir']})")
        csv_path, json_path = write_metrics(out, [result], {"command": "train", "config": cfg.as_tree()})
        last = result.history[-1]
        png = plot_panels(
            loss_panels([result], regression=last["test_accuracy"] is None),
            os.path.join(out, "loss.png"),
            suptitle=result.label,
        )
        acc = "" if last["test_accuracy"] is None else f", test accuracy {100 * last['test_accuracy']:.1f}%"
        print(f"final: train loss {last['train_loss']:.4g}, test loss {last['test_loss']:.4g}{acc}")
        print(f"wrote {csv_path}, {json_path}, {png}")
    return 0
