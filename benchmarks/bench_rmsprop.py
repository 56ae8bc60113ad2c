"""RMSProp step cost, side by side in one process (issue 5).

    python3 benchmarks/bench_rmsprop.py [--reps 20] [--compile] [--cases 10M,20M,1000x10K]

Compared per case (fp32, momentum 0.9), centered and not:
  fused      torchfluid FlatGroup.step (numba on CPU / Triton on CUDA), grads via .grad
  reference  torchfluid's reference kernel, one call per tensor
  torch      torch.optim.RMSprop(foreach=False), and foreach=True
  compiled   torch.compile'd torch.optim.RMSprop step (``--compile``; compile time apart)
  floor      a stream kernel moving the same bytes (read p, g, ms, [mg,] mom; write p,
             ms, [mg,] mom: 28 / 36 bytes per element) over flat buffers, same threads

Times are medians of ``--reps`` steps, measured round-robin so that machine noise hits
every method alike. "cold" is the first fused step of a fresh process with an empty
numba cache, "warm" with the cache filled (subprocesses). "extra MiB" is the peak
resident memory a step adds (Linux VmHWM after resetting it), 0 = no temporaries.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from numba import njit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from torchfluid.kernels import fused_cpu  # noqa: E402
from torchfluid.kernels.flat import FlatGroup  # noqa: E402
from torchfluid.kernels.rmsprop import rmsprop_  # noqa: E402

RHO, EPS, MOM, LR = 0.95, 1e-6, 0.9, 1e-3


def transformer_shapes(layers=12, d=360, ffn=1440, vocab=2000, ctx=512):
    """148 tensors, ~19.6M elements: embeddings + 12 blocks (qkv, proj, 2 MLP, 2 LN)."""
    shapes = [(vocab, d), (ctx, d)]
    for _ in range(layers):
        shapes += [(3 * d, d), (3 * d,), (d, d), (d,), (ffn, d), (ffn,), (d, ffn), (d,),
                   (d,), (d,), (d,), (d,)]
    return shapes + [(d,), (d,)]


CASES = {
    "10M": [(10_000_000,)],
    "20M": transformer_shapes(),
    "1000x10K": [(10_000,)] * 1000,
}


# ------------------------------------------------------------------------ floor
@njit(nogil=True, cache=True, error_model="numpy")
def _stream4(p, g, ms, mom):
    for j in range(p.shape[0]):
        x = g[j]
        p[j] += x
        ms[j] += x
        mom[j] += x


@njit(nogil=True, cache=True, error_model="numpy")
def _stream5(p, g, ms, mg, mom):
    for j in range(p.shape[0]):
        x = g[j]
        p[j] += x
        ms[j] += x
        mg[j] += x
        mom[j] += x


def floor_step(n: int, centered: bool):
    """Same bytes, same in-place pattern, same thread split as the fused kernel."""
    bufs = [torch.zeros(n) for _ in range(5 if centered else 4)]
    arrs = [b.numpy() for b in bufs]
    chunks = fused_cpu.chunk_table(np.array([n]))
    ranges = fused_cpu.split_chunks(chunks)
    kern = _stream5 if centered else _stream4

    def step():
        def call(r0, r1):
            lo, hi = int(chunks[r0, 1]), int(chunks[r1 - 1, 2])
            kern(*[a[lo:hi] for a in arrs])

        fused_cpu._parallel(call, ranges)

    return step, bufs


# ---------------------------------------------------------------------- methods
def make_params(shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen) * 0.02) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    return params


def fused_method(shapes, centered):
    params = make_params(shapes)
    group = FlatGroup(params, centered=centered, momentum=True)
    step = lambda: group.step(lr=LR, rho=RHO, epsilon=EPS, momentum=MOM)  # noqa: E731
    return step, (params, group)


def reference_method(shapes, centered):
    params = make_params(shapes)
    ms = [torch.zeros_like(p) for p in params]
    mg = [torch.zeros_like(p) for p in params] if centered else [None] * len(params)
    mom = [torch.zeros_like(p) for p in params]

    def step():
        for p, a, b, c in zip(params, ms, mg, mom):
            rmsprop_(p.data, p.grad, a, b, c, lr=LR, rho=RHO, epsilon=EPS, momentum=MOM)

    return step, (params, ms, mg, mom)


def torch_method(shapes, centered, foreach):
    params = make_params(shapes)
    opt = torch.optim.RMSprop(params, lr=LR, alpha=RHO, eps=EPS, momentum=MOM,
                              centered=centered, foreach=foreach)
    return opt.step, (params, opt)


def compiled_method(shapes, centered):
    params = make_params(shapes)
    opt = torch.optim.RMSprop(params, lr=torch.tensor(LR), alpha=RHO, eps=EPS,
                              momentum=MOM, centered=centered, foreach=True)

    @torch.compile(fullgraph=False)
    def step():
        opt.step()

    t0 = time.perf_counter()
    step()
    return step, (params, opt), time.perf_counter() - t0


# ----------------------------------------------------------------------- memory
def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def peak_extra_mib(step) -> float | None:
    """Peak resident memory added by one step (VmHWM after a reset), MiB."""
    try:
        gc.collect()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status("VmRSS")
        step()
        return max(0, _status("VmHWM") - before) / 2**20
    except OSError:
        return None


# ------------------------------------------------------------------------ runs
def first_step_seconds(shapes_key: str, centered: bool, cache_dir: str) -> float:
    code = (
        "import sys, time, torch; sys.path.insert(0, %r)\n"
        "from torchfluid.kernels.flat import FlatGroup\n"
        "ps = [torch.nn.Parameter(torch.zeros(1000)) for _ in range(3)]\n"
        "for p in ps: p.grad = torch.ones(1000)\n"
        "g = FlatGroup(ps, centered=%r, momentum=True)\n"
        "t = time.perf_counter(); g.step(lr=1e-3, rho=0.95, epsilon=1e-6, momentum=0.9)\n"
        "print(time.perf_counter() - t)\n"
    ) % (os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."), centered)
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def bench_case(name, shapes, centered, reps, compile_):
    n = sum(int(np.prod(s)) for s in shapes)
    builders = {
        "fused": lambda: fused_method(shapes, centered),
        "reference": lambda: reference_method(shapes, centered),
        "torch": lambda: torch_method(shapes, centered, False),
        "torch foreach": lambda: torch_method(shapes, centered, True),
        "floor": lambda: floor_step(n, centered),
    }
    steps, keep, compile_s = {}, {}, None
    for key, build in builders.items():
        steps[key], keep[key] = build()
    if compile_:
        steps["compiled"], keep["compiled"], compile_s = compiled_method(shapes, centered)
    for s in steps.values():  # warm up (load kernels, page in) every method
        s()
    mem = {k: peak_extra_mib(s) for k, s in steps.items()}
    times = {k: [] for k in steps}
    for _ in range(reps):
        for k, s in steps.items():
            t0 = time.perf_counter()
            s()
            times[k].append(time.perf_counter() - t0)
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    bytes_per = 36 if centered else 28
    print(f"\n{name}: {len(shapes)} tensors, {n / 1e6:.1f}M fp32, centered={centered}; "
          f"floor {ms['floor']:.2f} ms = {n * bytes_per / ms['floor'] / 1e6:.1f} GB/s")
    print(f"  {'method':<14}{'ms/step':>9}{'x floor':>9}{'torch/x':>9}{'foreach/x':>10}"
          f"{'extra MiB':>11}")
    for k in steps:
        extra = "n/a" if mem[k] is None else f"{mem[k]:.1f}"
        print(f"  {k:<14}{ms[k]:>9.2f}{ms[k] / ms['floor']:>9.2f}"
              f"{ms['torch'] / ms[k]:>9.2f}{ms['torch foreach'] / ms[k]:>10.2f}{extra:>11}")
    if compile_s is not None:
        print(f"  (torch.compile first call incl. compile: {compile_s:.1f} s)")
    del steps, keep
    gc.collect()
    return ms


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--compile", action="store_true", help="also torch.compile'd step")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--no-first-step", action="store_true")
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"fused kernel threads {fused_cpu.num_threads()}")
    if not args.no_first_step:
        with tempfile.TemporaryDirectory() as cache:
            for centered in (False, True):
                cold = first_step_seconds("10M", centered, cache)
                warm = first_step_seconds("10M", centered, cache)
                print(f"first fused step (centered={centered}): cold cache {cold:.2f} s, "
                      f"warm cache {warm:.2f} s")
    for name in args.cases.split(","):
        for centered in (False, True):
            bench_case(name, CASES[name], centered, args.reps, args.compile)


if __name__ == "__main__":
    main()
