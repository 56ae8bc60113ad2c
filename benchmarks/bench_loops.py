"""Whole training steps, torchfluid next to torch, side by side in one process.

    python3 benchmarks/bench_loops.py [--rounds 15] [--threads 2] [--models linear,mlp,...]
                                      [--page "fluid dygraph,fluid static"] [--record FILE]
                                      [--optimizer rmsprop|momentum|adagrad|sgd|adam|adamw|adamax|adadelta|
                                                   torch-sgd|torch-rmsprop]
                                      [--step-only] [--reference]

Each step is zero_grad + forward + backward + step (RMSProp, momentum 0.9; --optimizer
momentum: torchfluid Momentum against torch.optim.SGD(momentum=0.9), adagrad: Adagrad
against torch.optim.Adagrad, sgd: SGD against SGD, adam: Adam against Adam, adamw: AdamW
against AdamW (weight_decay 0.01), adamax: Adamax against Adamax,
adadelta: Adadelta against Adadelta, torch-sgd: torchfluid.optim.SGD against torch.optim.SGD,
both called as SGD(params, lr, momentum=0.9, nesterov=True, weight_decay=5e-4), torch-rmsprop:
the drop-in torchfluid.optim.RMSprop against torch.optim.RMSprop; --step-only
times opt.step() alone, on fixed gradients; --reference runs torchfluid's reference
kernel, fused=False, as before the fused kernels or without numba). Models:
the page's Linear 13->1 (batch 4), MLP 784-256-256-10 (64), LeNet-5 (32), a 4-layer
transformer encoder d=256 (seq 64, batch 8), Embedding 200K x 64 + Linear (32); each
under torch.optim.RMSprop and under torchfluid.optimizer.RMSProp (the default
install's update path). Page loops: the page's example as a fluid dygraph loop and as
a static Executor loop, against the same loop in plain torch (and Paddle's dygraph
where paddle is installed). Medians of interleaved rounds (see torchfluid.bench.loops);
ratio = torchfluid / torch (below 1: torchfluid faster).

The machine it ran on, its load before and after, and the kernel thread runner are
printed with the table (``--record`` writes the whole output to a file as well).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from torchfluid.bench.loops import MODELS, OPTIMIZERS, PAGE_LOOPS, run_loops  # noqa: E402
from torchfluid.kernels import fused_cpu  # noqa: E402
from torchfluid.kernels.flat import missing  # noqa: E402


def _load() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--block-ms", type=float, default=30.0, help="time of one timed block of steps")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--page", default=",".join(PAGE_LOOPS), help="page loops ('' for none)")
    ap.add_argument(
        "--reference",
        action="store_true",
        help="models' torchfluid optimizer with fused=False (the reference kernel, as without numba)",
    )
    ap.add_argument("--optimizer", default="rmsprop", choices=OPTIMIZERS, help="the models' optimizer pair")
    ap.add_argument("--step-only", action="store_true", help="time opt.step() alone (models only)")
    ap.add_argument("--record", default=None, help="also write the output to this file")
    args = ap.parse_args()
    out = io.StringIO()

    def say(line=""):
        print(line, flush=True)
        out.write(line + "\n")

    models = [m for m in args.models.split(",") if m]
    page = [p for p in args.page.split(",") if p]
    if "paddle dygraph" in page:
        from torchfluid.bench.loops import _paddle_installed

        if not _paddle_installed():
            page.remove("paddle dygraph")
            say("paddle dygraph: not run (paddle is not installed)")
    fused = missing("cpu") or ("off: --reference" if args.reference else None)
    say(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{args.threads} threads; CPU fused kernel: {'on' if fused is None else 'off (' + fused + ')'}, "
        f"threads {'torch OpenMP team' if fused_cpu.torch_openmp() and fused_cpu._RUNNER == 'openmp' else 'pool'}"
    )
    say(
        f"models: torchfluid {args.optimizer} against its torch.optim counterpart, "
        f"{'opt.step() alone' if args.step_only else 'whole steps'}; "
        f"load average before: {_load()}; medians of {args.rounds} interleaved rounds"
    )
    t0 = time.time()
    results = run_loops(
        models,
        page,
        rounds=args.rounds,
        block_ms=args.block_ms,
        threads=args.threads,
        fused=False if args.reference else None,
        optimizer=args.optimizer,
        step_only=args.step_only,
        on_result=lambda r: print(f"  {r.case}: {r.ratio:.2f}x", flush=True),
    )
    say(f"load average after: {_load()}; {time.time() - t0:.0f} s")
    say()
    say(f"{'loop':<16}{'measured':>16}{'ms/step':>11}{'baseline':>16}{'ms/step':>11}{'ratio':>8}  per-round IQR")
    for r in results:
        lo, hi = r.ratio_spread or (float("nan"), float("nan"))
        say(
            f"{r.case:<16}{r.loop:>16}{r.ms[r.loop]:>11.4f}{r.baseline:>16}{r.ms[r.baseline]:>11.4f}"
            f"{r.ratio:>7.2f}x  {lo:.2f}-{hi:.2f}"
        )
    if args.record:
        with open(args.record, "w") as f:
            f.write(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
