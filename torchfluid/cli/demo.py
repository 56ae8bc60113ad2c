"""``torchfluid demo`` (the README's first command): torchfluid's RMSProp trains two real
models, in fluid's two modes, and is shown next to ``torch.optim.RMSprop``.

1. The static-mode example of Paddle's RMSPropOptimizer page: ``fluid.layers.fc``
   regression with ``square_error_cost``, ``RMSProp(learning_rate=0.1)`` and batch size 1,
   built as a ``Program`` and run by an ``Executor`` on the UCI housing data (Paddle's
   reader: Paddle's cache when present, else the bundled copy), for several passes.
2. A dygraph classifier (``fluid.dygraph.Linear`` layers) on the bundled UCI handwritten
   digits,
   trained by torchfluid ``RMSProp`` (centered, momentum 0.9) and, from the same initial
   parameters and batches, by ``torch.optim.RMSprop`` with the same hyper-parameters.

Prints a progress bar and a per-epoch table per run; writes ``demo.png`` (loss curves),
``metrics.csv`` and ``metrics.json`` to ``--out``.
"""

from __future__ import annotations

import os
import time

from .config import ConfigError, build_config
from .outdir import claim_out
from .report import format_table, plot_panels, write_metrics
from .train import run_config

__all__ = ["add_parser", "run", "configs", "RESULTS"]

RESULTS = ("demo.png", "metrics.csv", "metrics.json")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="train the page's static example and a dygraph classifier; plot",
        description=__doc__,
    )
    p.add_argument(
        "--out", default=None, help="output folder (default: a new ./torchfluid-demo, ./torchfluid-demo-2, ... per run)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace the results already in --out")
    p.add_argument("--epochs", type=int, default=20, help="passes of each run (default 20)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(run=run)


def configs(epochs: int, seed: int, progress: bool, out: str):
    common = {"epochs": epochs, "seed": seed, "progress": progress, "out": out}
    static = build_config(
        {
            **common,
            "name": "static fc + RMSProp(0.1), Executor",
            "mode": "static",
            "data.name": "uci_housing",
            "model.kind": "linear",
            "batch_size": 1,
            "optimizer.learning_rate": 0.1,
        }
    )
    clf = {
        **common,
        "mode": "dygraph",
        "data.name": "digits",
        "model.kind": "mlp",
        "model.hidden": [32],
        "batch_size": 64,
        "optimizer.learning_rate": 0.0005,
        "optimizer.rho": 0.95,
        "optimizer.epsilon": 1e-6,
        "optimizer.momentum": 0.9,
        "optimizer.centered": True,
    }
    ours = build_config({**clf, "name": "torchfluid RMSProp", "optimizer.kind": "rmsprop"})
    theirs = build_config({**clf, "name": "torch.optim.RMSprop", "optimizer.kind": "torch.rmsprop"})
    return static, ours, theirs


def _curve(run, key):
    return [h["epoch"] for h in run.history], [h[key] for h in run.history]


def run(args) -> int:
    if args.epochs < 1:
        raise ConfigError(f"--epochs must be >= 1, got {args.epochs}")
    if not 0 <= args.seed < 2**63:
        raise ConfigError(f"--seed must be in [0, 2**63), got {args.seed}")
    out = claim_out(
        args.out or "torchfluid-demo", given=args.out is not None, overwrite=args.overwrite, results=RESULTS
    )
    t0 = time.perf_counter()
    static, ours, theirs = configs(args.epochs, args.seed, args.progress, out)
    print("== 1. the RMSPropOptimizer page's static-mode example (fit a line), several passes")
    housing = run_config(static, label=static["name"])
    print("\n== 2. a dygraph classifier: torchfluid RMSProp, then torch.optim.RMSprop from the same start")
    clf = [run_config(cfg, label=cfg["name"]) for cfg in (ours, theirs)]
    panels = [
        {
            "title": "UCI housing, static fc (the page's example)",
            "ylabel": "MSE",
            "logy": True,
            "lines": {"train": _curve(housing, "train_loss"), "test": _curve(housing, "test_loss")},
        },
        {
            "title": "digits, dygraph MLP: train loss",
            "ylabel": "cross entropy",
            "logy": True,
            "lines": {r.label: _curve(r, "train_loss") for r in clf},
        },
        {
            "title": "digits: test accuracy",
            "ylabel": "accuracy",
            "lines": {r.label: _curve(r, "test_accuracy") for r in clf},
        },
    ]
    png = plot_panels(
        panels,
        os.path.join(out, "demo.png"),
        suptitle="torchfluid demo: Paddle-exact RMSProp on PyTorch",
    )
    meta = {"command": "demo", "configs": [c.as_tree() for c in (static, ours, theirs)]}
    csv_path, json_path = write_metrics(out, [housing, *clf], meta)
    rows = []
    for r in (housing, *clf):
        first, last = r.history[0], r.history[-1]
        acc = None if last["test_accuracy"] is None else f"{100 * last['test_accuracy']:.1f}%"
        rows.append([r.label, first["train_loss"], last["train_loss"], last["test_loss"], acc])
    print("\n" + format_table(["run", "first-epoch loss", "final train loss", "final test loss", "test acc"], rows))
    print(f"\nwrote {png}, {csv_path}, {json_path} in {time.perf_counter() - t0:.1f} s")
    print("next: torchfluid train --help | torchfluid compare | torchfluid bench")
    return 0
