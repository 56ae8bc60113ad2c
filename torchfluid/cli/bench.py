"""``torchfluid bench``: the cost of one RMSProp step, torchfluid next to torch.optim.

See :mod:`torchfluid.bench.core` for what is measured and how. Prints a table
(ms/step, torch's time over each method's, each method over the memory-bandwidth
floor) and writes ``bench.png`` and ``bench.json``.

``--loops`` times whole training steps instead (zero_grad + forward + backward + step;
see :mod:`torchfluid.bench.loops`): five models under torch.optim.RMSprop and under
torchfluid's RMSProp, and the page's example as fluid dygraph and static loops against
plain torch; prints the ratios side by side and writes ``loops.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os

import torch

from .config import ConfigError
from .outdir import claim_out
from .report import format_table, plot_panels

__all__ = ["add_parser", "run", "RESULTS"]

RESULTS = ("bench.json", "bench.png")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="RMSProp step time: torchfluid vs torch.optim.RMSprop vs a bandwidth floor",
        description=__doc__,
    )
    p.add_argument("--quick", action="store_true", help="small sizes and few repetitions (seconds)")
    p.add_argument("--reps", type=int, default=None, help="timed steps per method (default 10, --quick 5)")
    p.add_argument("--cases", default=None, help="comma-separated case names (default: all of the size class)")
    p.add_argument("--centered", choices=("both", "no", "yes"), default="both")
    p.add_argument(
        "--out",
        default=None,
        help="output folder (default: a new ./torchfluid-bench, ./torchfluid-bench-2, ... per run)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace the results already in --out")
    p.add_argument(
        "--loops",
        action="store_true",
        help="whole training steps (zero_grad+forward+backward+step) of five models and the page's "
        "fluid loops, torchfluid / torch; --cases picks models and page loops by name",
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads for --loops (default 2)")
    p.set_defaults(run=run)


def run_loops(args) -> int:
    from ..bench.loops import MODELS, PAGE_LOOPS, run_loops as time_loops

    rounds = args.reps if args.reps is not None else (3 if args.quick else 15)
    if rounds < 1:
        raise ConfigError(f"--reps must be >= 1, got {rounds}")
    if not 1 <= args.threads <= 1024:
        raise ConfigError(f"--threads must be in [1, 1024], got {args.threads}")
    if args.cases:
        names = [c.strip() for c in args.cases.split(",")]
        bad = [n for n in names if n not in MODELS and n not in PAGE_LOOPS]
        if bad:
            raise ConfigError(f"--cases: unknown loop {bad[0]!r}; choose from {', '.join([*MODELS, *PAGE_LOOPS])}")
        models, page = [n for n in names if n in MODELS], [n for n in names if n in PAGE_LOOPS]
    else:
        models, page = (["linear", "mlp"], None) if args.quick else (None, None)
    out = claim_out(
        args.out or "torchfluid-bench", given=args.out is not None, overwrite=args.overwrite, results=("loops.json",)
    )
    print(
        f"torch {torch.__version__}, {args.threads} threads; whole training steps, medians of {rounds} "
        "interleaved rounds; ratio = torchfluid time / baseline time (below 1: torchfluid faster)"
    )

    def show(r):
        print(
            f"  {r.case}: {r.loop} {r.ms[r.loop]:.3f} ms/step, {r.baseline} {r.ms[r.baseline]:.3f} ms/step, "
            f"{r.ratio:.2f}x",
            flush=True,
        )

    results = time_loops(models, page, rounds=rounds, threads=args.threads, on_result=show)
    print()
    print(
        format_table(
            ["loop", "measured", "baseline", "ms/step", "baseline ms/step", "ratio"],
            [
                [r.case, r.loop, r.baseline, round(r.ms[r.loop], 4), round(r.ms[r.baseline], 4), f"{r.ratio:.2f}x"]
                for r in results
            ],
        )
    )
    json_path = os.path.join(out, "loops.json")
    with open(json_path, "w") as f:
        json.dump(
            {
                "torch": torch.__version__,
                "threads": args.threads,
                "rounds": rounds,
                "results": [dict(dataclasses.asdict(r), ratio=r.ratio) for r in results],
            },
            f,
            indent=2,
        )
    print(f"\nwrote {json_path}")
    return 0


def run(args) -> int:
    if args.loops:
        return run_loops(args)
    from ..bench import CASES, QUICK_CASES, available_methods, fused_unavailable
    from ..bench import run as run_bench

    table = QUICK_CASES if args.quick else CASES
    reps = args.reps if args.reps is not None else (5 if args.quick else 10)
    if reps < 1:
        raise ConfigError(f"--reps must be >= 1, got {reps}")
    names = [c.strip() for c in args.cases.split(",")] if args.cases else list(table)
    every = {**CASES, **QUICK_CASES}
    bad = [n for n in names if n not in every]
    if bad:
        raise ConfigError(f"--cases: unknown case {bad[0]!r}; choose from {', '.join(every)}")
    if reps > 100_000:
        raise ConfigError(f"--reps must be <= 100000, got {reps}")
    out = claim_out(
        args.out or "torchfluid-bench", given=args.out is not None, overwrite=args.overwrite, results=RESULTS
    )
    centered = {"both": (False, True), "no": (False,), "yes": (True,)}[args.centered]
    methods = available_methods()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; methods: {', '.join(methods)}; "
        f"{reps} timed steps each, medians"
    )
    why = fused_unavailable() if "torchfluid fused" not in methods else None
    if why:
        print(f"torchfluid fused: unavailable ({why})")
    headers = ["case", "centered", "method", "ms/step", "torch / this", "this / floor"]

    def show(r):
        print(
            f"\n{r.case}: {r.tensors} tensors, {r.elements / 1e6:.2f}M fp32; floor at "
            f"{r.bandwidth_gbs:.1f} GB/s (in-place add, same run)"
        )
        print(format_table(headers, r.rows()))

    results = run_bench({n: every[n] for n in names}, reps, centered, None, on_result=show)
    from ..bench import memory_rows

    mem_case = names[0]
    memory = memory_rows(every[mem_case])
    print(f"\noptimizer memory, centered RMSProp with momentum, {mem_case} (MiB):")
    print(
        format_table(
            ["configuration", "params", "state", "master weights", "vs fp32 state"],
            [[r[0], f"{r[1]:.1f}", f"{r[2]:.1f}", f"{r[3]:.1f}", f"{r[4]:.2f}x"] for r in memory],
        )
    )
    json_path = os.path.join(out, "bench.json")
    with open(json_path, "w") as f:
        json.dump(
            {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "reps": reps,
                "results": [dataclasses.asdict(r) for r in results],
                "memory": {"case": mem_case, "rows": memory},
            },
            f,
            indent=2,
        )
    panels = [
        {"title": f"{r.case}{' centered' if r.centered else ''}", "xlabel": "ms per step", "bars": dict(r.ms)}
        for r in results
    ]
    png = plot_panels(
        panels,
        os.path.join(out, "bench.png"),
        ncols=min(len(panels), 2),
        suptitle="RMSProp step time (lower is better)",
    )
    print(f"\nwrote {json_path}, {png}")
    return 0
