"""Time one training step of the page's static example (fc 13->1, square error, mean,
RMSProp lr=0.1), batch 4: torchfluid's Executor against the same step written by hand
in eager torch (autograd + the same RMSProp kernel). Both feed numpy arrays and fetch
the loss as numpy, as a training loop does. Not a test; prints a table.

    python3 benchmarks/bench_static_executor.py [--steps N] [--repeats R]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import torchfluid as fluid  # noqa: E402
from torchfluid.kernels import rmsprop_  # noqa: E402


def data(steps, batch=4, seed=0):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(steps, batch, 13)).astype("float32")
    ys = (xs @ rng.normal(size=(13, 1))).astype("float32")
    return xs, ys


def static_loop(xs, ys):
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[13], dtype="float32")
        y = fluid.layers.data(name="y", shape=[1], dtype="float32")
        y_predict = fluid.layers.fc(input=x, size=1, act=None)
        avg_cost = fluid.layers.mean(fluid.layers.square_error_cost(input=y_predict, label=y))
        fluid.optimizer.RMSProp(learning_rate=0.1).minimize(avg_cost)
    exe, scope = fluid.Executor(), fluid.Scope()
    exe.run(start, scope=scope)

    def run():
        for xb, yb in zip(xs, ys, strict=True):
            exe.run(main, feed={"x": xb, "y": yb}, fetch_list=[avg_cost], scope=scope)

    return run


def eager_loop(xs, ys):
    w = torch.nn.Parameter(torch.empty(13, 1).uniform_(-0.5, 0.5))
    b = torch.nn.Parameter(torch.zeros(1))
    state = {p: torch.zeros_like(p) for p in (w, b)}

    def run():
        for xb, yb in zip(xs, ys, strict=True):
            x, y = torch.from_numpy(xb), torch.from_numpy(yb)
            loss = ((x @ w + b - y) ** 2).mean()
            loss.backward()
            with torch.no_grad():
                for p in (w, b):
                    rmsprop_(p, p.grad, state[p], lr=0.1, rho=0.95, epsilon=1e-6)
                    p.grad = None
            loss.detach().numpy().copy()

    return run


def best_times(fns, repeats):
    """Best wall time of each loop, the loops interleaved so that load on the machine
    hits both alike."""
    for fn in fns:
        fn()  # warm up (builds the executor's plan)
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(1)
    xs, ys = data(args.steps)
    t_static, t_eager = (t / args.steps for t in best_times([static_loop(xs, ys), eager_loop(xs, ys)], args.repeats))
    print(f"torch {torch.__version__}, batch 4, {args.steps} steps, best of {args.repeats}")
    print(f"{'loop':<28}{'us/step':>10}")
    print(f"{'eager torch (hand-written)':<28}{t_eager * 1e6:>10.1f}")
    print(f"{'torchfluid Executor':<28}{t_static * 1e6:>10.1f}")
    print(f"ratio Executor / eager: {t_static / t_eager:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
