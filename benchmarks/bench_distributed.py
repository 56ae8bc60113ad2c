"""Data-parallel scaling of torchfluid RMSProp on CPU (gloo): step time and optimizer
state memory per rank for 1 and 2 ranks, and the communication volume per step.

    python3 benchmarks/bench_distributed.py [--hidden 1024] [--layers 4] [--batch 64] [--steps 20]

Every rank runs one intra-op thread; the global batch is fixed and split over the
ranks (strong scaling). Configurations:

  1 rank   unsharded           the baseline
  2 ranks  DDP                 DDP all-reduce + full RMSProp state on every rank
  2 ranks  DDP + shard_state   DDP all-reduce, state / 2, parameter all-gather
  2 ranks  shard_state reduce  no DDP: gradient reduce-scatter + parameter all-gather, state / 2

"comm/step" is the data each rank sends per step on paper (ring algorithms), for P
parameters of 4 bytes and N ranks: all-reduce 2(N-1)/N*P, reduce-scatter and
all-gather (N-1)/N*P each (docs/distributed.md).
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONFIGS = [  # (label, world size, DDP?, optimizer kwargs)
    ("unsharded", 1, False, {}),
    ("DDP", 2, True, {}),
    ("DDP + shard_state", 2, True, {"shard_state": True}),
    ("shard_state reduce", 2, False, {"shard_state": True, "grad_reduction": "reduce"}),
]


def _model(hidden: int, layers: int):
    import torch

    torch.manual_seed(0)
    mods = []
    for _ in range(layers):
        mods += [torch.nn.Linear(hidden, hidden), torch.nn.Tanh()]
    return torch.nn.Sequential(*mods[:-1])


def _worker(rank, world, port, args, ddp, kwargs, queue):
    import torch
    import torch.distributed as dist

    from torchfluid.distributed import state_nbytes
    from torchfluid.optimizer import RMSProp

    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60))
    model = _model(args.hidden, args.layers)
    net = torch.nn.parallel.DistributedDataParallel(model) if ddp else model
    opt = RMSProp(0.001, momentum=0.9, centered=True, parameters=model.named_parameters(), **kwargs)
    g = torch.Generator().manual_seed(rank)
    part = args.batch // world
    x, y = torch.randn(part, args.hidden, generator=g), torch.randn(part, args.hidden, generator=g)
    step_times, opt_times = [], []
    for i in range(args.warmup + args.steps):
        if world > 1:
            dist.barrier()
        t0 = time.perf_counter()
        opt.clear_grad(set_to_zero=False)
        torch.nn.functional.mse_loss(net(x), y).backward()
        t1 = time.perf_counter()
        opt.step()
        t2 = time.perf_counter()
        if i >= args.warmup:
            step_times.append(t2 - t0)
            opt_times.append(t2 - t1)
    numel = sum(p.numel() for p in model.parameters())
    queue.put(
        (
            rank,
            {
                "step": sorted(step_times)[len(step_times) // 2],
                "opt": sorted(opt_times)[len(opt_times) // 2],
                "state": state_nbytes(opt),
                "numel": numel,
            },
        )
    )
    del net, model, opt  # DDP must be gone before its group (a gloo teardown deadlock otherwise)
    if world > 1:
        dist.destroy_process_group()


def _comm_bytes(label: str, world: int, numel: int) -> float:
    p = 4.0 * numel
    if world == 1:
        return 0.0
    ring = (world - 1) / world * p
    return {"DDP": 2 * ring, "DDP + shard_state": 3 * ring, "shard_state reduce": 2 * ring}[label]


def run(args) -> list[dict]:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "torch.distributed", "torch._dynamo", "torchfluid"])
    rows = []
    for label, world, ddp, kwargs in CONFIGS:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        queue = ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(r, world, port, args, ddp, kwargs, queue)) for r in range(world)]
        for p in procs:
            p.start()
        results = dict(queue.get(timeout=600) for _ in procs)
        for p in procs:
            p.join(60)
            if p.exitcode != 0:
                raise RuntimeError(f"{label}: a rank exited with {p.exitcode}")
        r0 = results[0]
        rows.append(
            {
                "config": label,
                "ranks": world,
                "step_ms": 1e3 * max(r["step"] for r in results.values()),
                "opt_ms": 1e3 * max(r["opt"] for r in results.values()),
                "state_mb": max(r["state"] for r in results.values()) / 2**20,
                "comm_mb": _comm_bytes(label, world, r0["numel"]) / 2**20,
                "numel": r0["numel"],
            }
        )
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args(argv)
    rows = run(args)
    print(
        f"model: {args.layers} x Linear({args.hidden}, {args.hidden}) = {rows[0]['numel'] / 1e6:.2f} M params, "
        f"global batch {args.batch}, centered RMSProp + momentum, 1 thread per rank, "
        f"{os.cpu_count()} CPU cores (median of {args.steps} steps)"
    )
    print(
        f"{'config':<20} {'ranks':>5} {'step ms':>9} {'opt.step ms':>12} {'state MiB/rank':>15} "
        f"{'comm MiB/step/rank':>19}"
    )
    for r in rows:
        print(
            f"{r['config']:<20} {r['ranks']:>5} {r['step_ms']:>9.1f} {r['opt_ms']:>12.1f} {r['state_mb']:>15.1f} "
            f"{r['comm_mb']:>19.1f}"
        )


if __name__ == "__main__":
    main()
