"""One optimizer step of RMSProp, side by side in one process.

Methods (fp32, momentum 0.9, every parameter has a gradient):

* ``torchfluid``: ``torchfluid.optimizer.RMSProp.step`` on the reference path
  (``fused=False`` where the option exists);
* ``torchfluid fused``: the same with ``fused=True``, when this build has the fused kernel;
* ``torch``: ``torch.optim.RMSprop(foreach=False)``; ``torch foreach``: ``foreach=True``;
* ``floor``: the bytes one step must move (read p, g, ms, [mg,] mom; write p, ms, [mg,]
  mom: 28 B per element, 36 centered) divided by the memory bandwidth of an in-place
  ``torch.add_`` over two flat buffers of the same size (12 B per element), timed in the
  same round-robin as the methods.

Times are medians of ``reps`` steps measured round-robin (every method, the bandwidth
probe included, takes one step in turn), so machine noise hits each alike and every
ratio compares medians with medians. The update maths differ slightly (torch
puts eps outside the sqrt); the work per element is the same.
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import numpy as np
import torch

from ..optimizer import RMSProp

__all__ = [
    "CASES",
    "QUICK_CASES",
    "BenchResult",
    "available_methods",
    "bench_case",
    "fused_unavailable",
    "run",
    "transformer_shapes",
]

RHO, EPS, MOM, LR = 0.95, 1e-6, 0.9, 1e-3


def transformer_shapes(layers=12, d=360, ffn=1440, vocab=2000, ctx=512):
    """148 tensors, ~19.6M elements: embeddings + 12 blocks (qkv, proj, 2 MLP, 2 LN)."""
    shapes = [(vocab, d), (ctx, d)]
    for _ in range(layers):
        shapes += [(3 * d, d), (3 * d,), (d, d), (d,), (ffn, d), (ffn,), (d, ffn), (d,), (d,), (d,), (d,), (d,)]
    return shapes + [(d,), (d,)]


CASES = {
    "10M": [(10_000_000,)],
    "transformer-20M": transformer_shapes(),
    "1000x10K": [(10_000,)] * 1000,
}
QUICK_CASES = {
    "200K": [(200_000,)],
    "50x4K": [(4_000,)] * 50,
}


def _params(shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen) * 0.02) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    return params


def _torchfluid(shapes, centered, fused):
    params = _params(shapes)
    opt = RMSProp(
        LR,
        rho=RHO,
        epsilon=EPS,
        momentum=MOM,
        centered=centered,
        parameters=[(f"p{i}", p) for i, p in enumerate(params)],
        fused=fused,
    )
    return opt.step, (params, opt)


def _torch(shapes, centered, foreach):
    params = _params(shapes)
    opt = torch.optim.RMSprop(params, lr=LR, alpha=RHO, eps=EPS, momentum=MOM, centered=centered, foreach=foreach)
    return opt.step, (params, opt)


def fused_unavailable() -> str | None:
    """Why ``torchfluid fused`` cannot run here (None when it can)."""
    from ..kernels.flat import missing

    package = missing("cpu")
    if package is not None:
        return f"{package} is not installed (pip install {package})"
    try:
        step, _ = _torchfluid([(8,)], False, True)
        step()
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        return f"{type(e).__name__}: {e}"
    return None


def available_methods() -> list[str]:
    names = ["torchfluid"]
    if fused_unavailable() is None:
        names.append("torchfluid fused")
    return names + ["torch", "torch foreach"]


_BUILDERS = {
    "torchfluid": lambda shapes, c: _torchfluid(shapes, c, False),
    "torchfluid fused": lambda shapes, c: _torchfluid(shapes, c, True),
    "torch": lambda shapes, c: _torch(shapes, c, False),
    "torch foreach": lambda shapes, c: _torch(shapes, c, True),
}


def bandwidth_probe(n: int):
    """A step that moves 12 B per element of ``n``: ``a.add_(b)`` over two fp32 buffers
    (read a and b, write a); its time gives the machine's memory bandwidth."""
    a, b = torch.zeros(n), torch.ones(n)
    return lambda: a.add_(b)


@dataclasses.dataclass
class BenchResult:
    case: str
    tensors: int
    elements: int
    centered: bool
    ms: dict  # method -> median ms/step (``floor`` included)
    bandwidth_gbs: float
    unavailable: dict = dataclasses.field(default_factory=dict)  # method -> why it did not run

    def rows(self) -> list[list]:
        base = self.ms["torch"]
        c = "yes" if self.centered else "no"
        return [
            [self.case, c, m, round(v, 3), round(base / v, 2), round(v / self.ms["floor"], 2)]
            for m, v in self.ms.items()
        ] + [[self.case, c, m, f"unavailable: {why}", "", ""] for m, why in self.unavailable.items()]


def bench_case(name: str, shapes, centered: bool, reps: int, methods=None) -> BenchResult:
    """Time ``methods`` (default: every available one; ``torchfluid fused``, when it
    cannot run here, is reported in ``unavailable`` with the reason)."""
    unavailable = {}
    if methods is None:
        methods = available_methods()
        if "torchfluid fused" not in methods:
            unavailable["torchfluid fused"] = fused_unavailable()
    n = sum(int(np.prod(s)) for s in shapes)
    steps, keep = {}, []
    for m in methods:
        step, objs = _BUILDERS[m](shapes, centered)
        steps[m] = step
        keep.append(objs)
    steps["floor"] = bandwidth_probe(n)
    for _ in range(2):  # warm up: compile / load kernels, page memory in
        for s in steps.values():
            s()
    times = {m: [] for m in steps}
    for _ in range(reps):
        for m, s in steps.items():
            t0 = time.perf_counter()
            s()
            times[m].append(time.perf_counter() - t0)
    ms = {m: 1e3 * statistics.median(v) for m, v in times.items()}
    bw = 12 * n / (ms["floor"] / 1e3)
    ms["floor"] = 1e3 * n * (36 if centered else 28) / bw
    return BenchResult(name, len(shapes), n, centered, ms, bw / 1e9, unavailable)


def run(cases: dict, reps: int, centered=(False, True), methods=None, on_result=None) -> list[BenchResult]:
    results = []
    for name, shapes in cases.items():
        for c in centered:
            r = bench_case(name, shapes, c, reps, methods)
            results.append(r)
            if on_result is not None:
                on_result(r)
    return results
