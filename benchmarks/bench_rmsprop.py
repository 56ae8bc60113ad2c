"""RMSProp step cost, side by side in one process.

    python3 benchmarks/bench_rmsprop.py [--reps 20] [--compile] [--cases 10M,20M,1000x10K]
                                        [--device cpu|cuda]

Compared per case (fp32, momentum 0.9), centered and not:
  fused      torchfluid FlatGroup.step (numba on CPU / Triton on CUDA), grads via .grad
  optimizer  torchfluid RMSProp(...).step() end to end (fused path, pipeline included)
  +clip      the same after clipping by global norm 1.0: torchfluid's grad_clip (one-pass
             norm, scale folded into the update) vs torch's clip_grad_norm_ + step
  reference  torchfluid's reference kernel, one call per tensor
  torch      torch.optim.RMSprop(foreach=False), and foreach=True
  compiled   torch.compile'd torch.optim.RMSprop step (``--compile``; compile time apart)
  floor      CPU: a stream kernel moving the same bytes (read p, g, ms, [mg,] mom; write
             p, ms, [mg,] mom: 28 / 36 bytes per element) over flat buffers, same
             threads. CUDA: a device-to-device copy of the same number of bytes.

CPU times are medians of ``--reps`` steps, measured round-robin so that machine noise
hits every method alike, each step after a 20 ms pause (torch's OpenMP workers spin for
a while after each parallel op and would slow whichever step came next); "fused after
op" times the fused step right after a torch op instead, as in a training loop right
after backward. CUDA times are means over ``--reps`` steps between CUDA events. "cold"
is the first ``RMSProp.step()`` of a fresh process (after ``import torchfluid.optimizer``;
lazy imports and kernel loading count) with an empty kernel cache, "warm" with the cache
filled (subprocesses). "extra MiB" is the peak memory a step
adds (CPU: Linux VmHWM after resetting it; CUDA: peak allocated), 0 = no temporaries.
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
from torchfluid.kernels import fused_cpu, fused_cpu_jit, table  # noqa: E402
from torchfluid.kernels.flat import FlatGroup, RMSPropHyper  # noqa: E402
from torchfluid.kernels.rmsprop import rmsprop_  # noqa: E402

from torchfluid.bench.core import EPS, LR, MOM, RHO, transformer_shapes  # noqa: E402

CASES = {
    "10M": [(10_000_000,)],
    "20M": transformer_shapes(),
    "1000x10K": [(10_000,)] * 1000,
    "100M": [(100_000_000,)],  # GPU-sized (not in the default list)
}
DEFAULT_CASES = "10M,20M,1000x10K"


# ------------------------------------------------------------------------ floor
@njit(nogil=True, cache=True, error_model="numpy")
def _add3(x, p, ms, mom):
    for j in range(x.shape[0]):  # from 0: no wraparound checks, so it vectorizes
        v = x[j]
        p[j] += v
        ms[j] += v
        mom[j] += v


@njit(nogil=True, cache=True, error_model="numpy")
def _add4(x, p, ms, mg, mom):
    for j in range(x.shape[0]):
        v = x[j]
        p[j] += v
        ms[j] += v
        mg[j] += v
        mom[j] += v


@njit(nogil=True, cache=True, error_model="numpy")
def _stream(p, g, ms, mg, mom, chunk, counter):
    """Read g and p, ms, [mg,] mom; write p, ms, [mg,] mom (x += g), chunk by chunk,
    threads sharing the chunks through the same atomic counter as the fused kernel."""
    n = p.shape[0]
    while True:
        lo = fused_cpu_jit._next(counter) * chunk
        if lo >= n:
            break
        hi = min(lo + chunk, n)
        if mg.shape[0]:
            _add4(g[lo:hi], p[lo:hi], ms[lo:hi], mg[lo:hi], mom[lo:hi])
        else:
            _add3(g[lo:hi], p[lo:hi], ms[lo:hi], mom[lo:hi])


def floor_step(n: int, centered: bool):
    """Same bytes, same in-place pattern and same thread scheme as the fused kernel."""
    bufs = [torch.zeros(n if k != 3 or centered else 0) for k in range(5)]
    p, g, ms, mg, mom = (b.numpy() for b in bufs)
    threads = fused_cpu.workers(table.chunk_table(np.array([n]), fused_cpu.CHUNK))

    def step():
        counter = np.zeros(1, np.int64)
        fused_cpu.parallel(lambda: _stream(p, g, ms, mg, mom, fused_cpu.CHUNK, counter), threads)

    return step, bufs


# ---------------------------------------------------------------------- methods
DEVICE = "cpu"


def make_params(shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter((torch.randn(s, generator=gen) * 0.02).to(DEVICE)) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen).to(DEVICE)
    return params


def copy_floor(n: int, centered: bool):
    """CUDA floor: a device copy moving the same bytes (read + write) as one step."""
    k = n * (36 if centered else 28) // 8
    a = torch.empty(k, device=DEVICE)
    b = torch.empty_like(a)
    return (lambda: b.copy_(a)), (a, b)


def optimizer_method(shapes, centered, clip=False):
    from torchfluid.clip import ClipGradByGlobalNorm
    from torchfluid.optimizer import RMSProp

    params = make_params(shapes)
    opt = RMSProp(
        LR,
        rho=RHO,
        epsilon=EPS,
        momentum=MOM,
        centered=centered,
        parameters=params,
        grad_clip=ClipGradByGlobalNorm(1.0) if clip else None,
    )
    return opt.step, (params, opt)


def torch_clip_method(shapes, centered):
    """torch's usual loop: ``clip_grad_norm_`` (in place, foreach where torch picks it),
    then ``RMSprop.step``."""
    params = make_params(shapes)
    opt = torch.optim.RMSprop(params, lr=LR, alpha=RHO, eps=EPS, momentum=MOM, centered=centered)

    def step():
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    return step, (params, opt)


def fused_method(shapes, centered):
    params = make_params(shapes)
    group = FlatGroup(params, centered=centered, momentum=True)
    step = lambda: group.step(RMSPropHyper(lr=LR, rho=RHO, epsilon=EPS, momentum=MOM))  # noqa: E731
    return step, (params, group)


def reference_method(shapes, centered):
    params = make_params(shapes)
    ms = [torch.zeros_like(p) for p in params]
    mg = [torch.zeros_like(p) for p in params] if centered else [None] * len(params)
    mom = [torch.zeros_like(p) for p in params]
    scratch = torch.empty(max(p.numel() for p in params))  # reused, as RMSProp's rule does

    def step():
        for p, a, b, c in zip(params, ms, mg, mom, strict=True):
            rmsprop_(p.data, p.grad, a, b, c, lr=LR, rho=RHO, epsilon=EPS, momentum=MOM, scratch=scratch)

    return step, (params, ms, mg, mom)


def torch_method(shapes, centered, foreach):
    params = make_params(shapes)
    opt = torch.optim.RMSprop(params, lr=LR, alpha=RHO, eps=EPS, momentum=MOM, centered=centered, foreach=foreach)
    return opt.step, (params, opt)


def compiled_method(shapes, centered):
    params = make_params(shapes)
    opt = torch.optim.RMSprop(
        params, lr=torch.tensor(LR), alpha=RHO, eps=EPS, momentum=MOM, centered=centered, foreach=True
    )

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
    """Peak memory added by one step (CPU: VmHWM after a reset; CUDA: allocator), MiB."""
    if DEVICE == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
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
        "from torchfluid.optimizer import RMSProp\n"
        "ps = [torch.nn.Parameter(torch.zeros(1000)) for _ in range(3)]\n"
        "for p in ps: p.grad = torch.ones(1000)\n"
        "opt = RMSProp(1e-3, parameters=ps, centered=%r, momentum=0.9)\n"
        "t = time.perf_counter(); opt.step()\n"
        "print(time.perf_counter() - t)\n"
    ) % (os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."), centered)
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def bench_case(name, shapes, centered, reps, compile_):
    n = sum(int(np.prod(s)) for s in shapes)
    builders = {
        "fused": lambda: fused_method(shapes, centered),
        "reference": lambda: reference_method(shapes, centered),
        "torch": lambda: torch_method(shapes, centered, False),
        "torch foreach": lambda: torch_method(shapes, centered, True),
        "optimizer": lambda: optimizer_method(shapes, centered),
        "torch+clip": lambda: torch_clip_method(shapes, centered),
        "optimizer+clip": lambda: optimizer_method(shapes, centered, clip=True),
        "floor": lambda: (copy_floor if DEVICE == "cuda" else floor_step)(n, centered),
    }
    steps, keep, compile_s = {}, {}, None
    for key, build in builders.items():
        steps[key], keep[key] = build()
    if DEVICE == "cpu":
        steps["fused after op"] = steps["fused"]
    if compile_:
        steps["compiled"], keep["compiled"], compile_s = compiled_method(shapes, centered)
    for s in steps.values():  # warm up (load kernels, page in) every method
        s()
    mem = {k: peak_extra_mib(s) for k, s in steps.items()}
    if DEVICE == "cuda":
        ms = {}
        for k, s in steps.items():
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            for _ in range(reps):
                s()
            end.record()
            torch.cuda.synchronize()
            ms[k] = start.elapsed_time(end) / reps
    else:
        times = {k: [] for k in steps}
        a, b = torch.randn(4_000_000), torch.empty(4_000_000)
        for _ in range(reps):
            for k, s in steps.items():
                if k.endswith("after op"):
                    torch.add(a, 1.0, out=b)  # a torch op, as backward leaves one behind
                else:
                    time.sleep(0.02)  # idle: no OpenMP worker still spinning
                t0 = time.perf_counter()
                s()
                times[k].append(time.perf_counter() - t0)
        ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    bytes_per = 36 if centered else 28
    print(
        f"\n{name}: {len(shapes)} tensors, {n / 1e6:.1f}M fp32, centered={centered}; "
        f"floor {ms['floor']:.3f} ms = {n * bytes_per / ms['floor'] / 1e6:.1f} GB/s; "
        f"fused moves {n * bytes_per / ms['fused'] / 1e6:.1f} GB/s"
    )
    print(f"  {'method':<14}{'ms/step':>9}{'x floor':>9}{'torch/x':>9}{'foreach/x':>10}{'extra MiB':>11}")
    for k in steps:
        extra = "n/a" if mem[k] is None else f"{mem[k]:.1f}"
        print(
            f"  {k:<14}{ms[k]:>9.3f}{ms[k] / ms['floor']:>9.2f}"
            f"{ms['torch'] / ms[k]:>9.2f}{ms['torch foreach'] / ms[k]:>10.2f}{extra:>11}"
        )
    if compile_s is not None:
        print(f"  (torch.compile first call incl. compile: {compile_s:.1f} s)")
    del steps, keep
    gc.collect()
    return ms


SWEEP = [
    (1024, 1, 4),
    (2048, 1, 4),
    (2048, 1, 8),
    (4096, 1, 4),
    (4096, 1, 8),
    (8192, 1, 8),
    (8192, 1, 16),
    (1024, 4, 4),
    (2048, 2, 8),
    (2048, 4, 8),
    (4096, 2, 8),
    (4096, 4, 16),
]


def sweep(reps: int) -> str:
    """Time the raw Triton kernel (tables prepared) per (BLOCK, ITERS, WARPS); print the
    best configuration last, as 'BLOCK,ITERS,WARPS'."""
    from torchfluid.kernels import fused_triton as ft

    results = {}
    for n in (10_000_000, 100_000_000):
        for centered in (False, True):
            bufs = [torch.randn(n, device="cuda") for _ in range(5)]
            bufs[2].abs_()
            addr = np.array([[b.data_ptr() for b in bufs]], np.int64)
            hyper = table.hyper_table(1, np.float32, lr=LR)
            sc = table.scalar_table(np.float32, rho=RHO, epsilon=EPS, momentum=MOM, eps_in_sqrt=True)
            dev = [torch.from_numpy(a).cuda() for a in (addr, hyper, sc)]
            floor = copy_floor(n, centered)[0]
            for cfg in [None, *SWEEP]:
                if cfg is None:
                    step = floor
                else:
                    ft.BLOCK, ft.ITERS, ft.WARPS = cfg
                    ch = torch.from_numpy(table.chunk_table(np.array([n]), cfg[0] * cfg[1]))
                    ch = ch.cuda()

                    def step(ch=ch, dev=dev, centered=centered):
                        ft.rmsprop_table_(dev[0], ch, dev[1], dev[2], centered, True, True, False)

                step()
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(True)
                torch.cuda.synchronize()
                start.record()
                for _ in range(reps):
                    step()
                end.record()
                torch.cuda.synchronize()
                results.setdefault(cfg, []).append(start.elapsed_time(end) / reps)
            del bufs
    base = results.pop(None)
    print("raw kernel ms (10M, 10M centered, 100M, 100M centered); copy floor", ", ".join(f"{x:.3f}" for x in base))
    for cfg, ms in results.items():
        rel = [b / m for b, m in zip(base, ms, strict=True)]
        print(
            f"  {cfg}: "
            + ", ".join(f"{m:.3f}" for m in ms)
            + "  = "
            + ", ".join(f"{r:.0%}" for r in rel)
            + " of copy bandwidth"
        )
    best = max(results, key=lambda c: sum(b / m for b, m in zip(base, results[c], strict=True)))
    ps = make_params([(1000,)] * 3)
    fg = FlatGroup(ps, centered=False, momentum=True)
    fg.step(RMSPropHyper(lr=LR, rho=RHO, epsilon=EPS, momentum=MOM))
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(200):
        fg.step(RMSPropHyper(lr=LR, rho=RHO, epsilon=EPS, momentum=MOM))
    host = (time.perf_counter() - t0) / 200
    print(f"host time of one FlatGroup.step call (3 tensors): {host * 1e6:.0f} us")
    return ",".join(str(x) for x in best)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--compile", action="store_true", help="also torch.compile'd step")
    ap.add_argument("--cases", default=DEFAULT_CASES)
    ap.add_argument("--no-first-step", action="store_true")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--sweep", action="store_true", help="CUDA: tune the Triton kernel")
    args = ap.parse_args(argv)
    global DEVICE
    DEVICE = args.device
    if args.sweep:
        DEVICE = "cuda"
        print(sweep(args.reps))
        return
    if DEVICE == "cuda":
        print(f"device: {torch.cuda.get_device_name()}")
        args.no_first_step = True  # Triton compiles in-process; see the first-call line
        ps = make_params([(1000,)] * 3)
        t0 = time.perf_counter()
        FlatGroup(ps, centered=False, momentum=True).step(RMSPropHyper(lr=LR, rho=RHO, epsilon=EPS, momentum=MOM))
        torch.cuda.synchronize()
        print(f"first fused step (Triton compile or cache load): {time.perf_counter() - t0:.2f} s")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, fused kernel threads {fused_cpu.num_threads()}"
    )
    if not args.no_first_step:
        with tempfile.TemporaryDirectory() as cache:
            for centered in (False, True):
                cold = first_step_seconds("10M", centered, cache)
                warm = first_step_seconds("10M", centered, cache)
                print(f"first fused step (centered={centered}): cold cache {cold:.2f} s, warm cache {warm:.2f} s")
    for name in args.cases.split(","):
        for centered in (False, True):
            bench_case(name, CASES[name], centered, args.reps, args.compile)


if __name__ == "__main__":
    main()
