"""Whole training steps, torchfluid next to torch, side by side in one process.

A step is what a training loop runs: ``zero_grad`` + forward + backward + ``step``.
Two tables:

* **models** (:data:`MODELS`), each trained by ``torch.optim.RMSprop`` and by
  ``torchfluid.optimizer.RMSProp`` (momentum 0.9, the default install's update path),
  from the same initial weights and batches; the ratio is torchfluid time / torch time
  (below 1: torchfluid faster). ``optimizer=`` trains them with another pair instead
  (:data:`OPTIMIZERS`: torchfluid Momentum / Adagrad / SGD / Adam against
  ``torch.optim.SGD(momentum=0.9)`` / ``Adagrad`` / ``SGD`` / ``Adam``;
  ``torch-rmsprop``: the drop-in ``torchfluid.optim.RMSprop`` against
  ``torch.optim.RMSprop``, the same maths), and
  ``step_only=True`` times ``opt.step()`` alone.

  ========== =====================================================================
  linear     the page's model: Linear 13->1, batch 4, square error
  mlp        MLP 784-256-256-10 (ReLU), batch 64, cross entropy
  lenet      LeNet-5 (conv 6@5x5, pool, conv 16@5x5, pool, 120, 84, 10), batch 32, 28x28
  transformer  4 encoder layers, d=256, 4 heads, ffn 1024, seq 64, batch 8
  embedding  Embedding 200K x 64 (12.8M parameters, 8 rows per example looked up and
             averaged) + Linear 64->1, batch 32; dense gradients on both sides
             (``torch.optim.RMSprop`` takes no sparse ones)
  ========== =====================================================================

* **page** (:data:`PAGE_LOOPS`): the page's example (Linear 13->1, batch 4, RMSProp
  lr=0.1) written as a fluid dygraph loop (``to_variable``, ``minimize``,
  ``clear_gradients``) and as a static ``Program`` run by an ``Executor`` (feed numpy,
  fetch the loss as numpy), each against the same loop in plain torch (the static one
  against plain torch that also fetches the loss), and against Paddle's own dygraph
  loop where ``paddle`` is installed.

How it is timed: every loop is built and warmed up first; then ``rounds`` rounds, in
each of which every loop in turn runs ``k`` steps back to back (``k`` chosen so that a
block takes ~``block_ms``; the fluid dygraph loop runs its block inside one
``dygraph.guard()``, as the page's loop does); a loop's time is the median over rounds
of its per-step time. Interleaving makes load from other processes hit every loop
alike.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import gc
import itertools
import statistics
import time

import numpy as np
import torch

__all__ = ["MODELS", "OPTIMIZERS", "PAGE_LOOPS", "LoopResult", "run_loops"]

LR, RHO, EPS, MOM = 1e-3, 0.95, 1e-6, 0.9


# ---------------------------------------------------------------------------- models
class _LeNet5(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 6, 5, padding=2)
        self.c2 = torch.nn.Conv2d(6, 16, 5)
        self.f1, self.f2, self.f3 = torch.nn.Linear(400, 120), torch.nn.Linear(120, 84), torch.nn.Linear(84, 10)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)
        x = torch.nn.functional.max_pool2d(torch.relu(self.c2(x)), 2).flatten(1)
        return self.f3(torch.relu(self.f2(torch.relu(self.f1(x)))))


class _EmbeddingModel(torch.nn.Module):
    def __init__(self, rows=200_000, dim=64):
        super().__init__()
        self.emb = torch.nn.Embedding(rows, dim)
        self.out = torch.nn.Linear(dim, 1)

    def forward(self, ids):
        return self.out(self.emb(ids).mean(1))


_mse, _xent = torch.nn.functional.mse_loss, torch.nn.functional.cross_entropy


def _linear(gen):
    return torch.nn.Linear(13, 1), (torch.randn(4, 13, generator=gen), torch.randn(4, 1, generator=gen)), _mse


def _mlp(gen):
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
    )
    return model, (torch.randn(64, 784, generator=gen), torch.randint(0, 10, (64,), generator=gen)), _xent


def _lenet(gen):
    return _LeNet5(), (torch.randn(32, 1, 28, 28, generator=gen), torch.randint(0, 10, (32,), generator=gen)), _xent


def _transformer(gen):
    layer = torch.nn.TransformerEncoderLayer(256, 4, dim_feedforward=1024, dropout=0.0, batch_first=True)
    model = torch.nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)
    return model, (torch.randn(8, 64, 256, generator=gen), torch.randn(8, 64, 256, generator=gen)), _mse


def _embedding(gen):
    ids = torch.randint(0, 200_000, (32, 8), generator=gen)
    return _EmbeddingModel(), (ids, torch.randn(32, 1, generator=gen)), _mse


MODELS = {"linear": _linear, "mlp": _mlp, "lenet": _lenet, "transformer": _transformer, "embedding": _embedding}


def _optimizer_pairs() -> dict:
    """optimizer name -> (torch.optim factory, torchfluid.optimizer factory), the same
    maths with each library's defaults where they agree (torch's single-tensor CPU path
    is what ``torch.optim`` runs on CPU by default)."""
    from .. import optim
    from .. import optimizer as fo

    return {
        "rmsprop": (
            lambda ps: torch.optim.RMSprop(ps, lr=LR, alpha=RHO, eps=EPS, momentum=MOM),
            lambda nps, fused: fo.RMSProp(LR, rho=RHO, epsilon=EPS, momentum=MOM, parameters=nps, fused=fused),
        ),
        "momentum": (
            lambda ps: torch.optim.SGD(ps, lr=LR, momentum=MOM),
            lambda nps, fused: fo.Momentum(LR, momentum=MOM, parameters=nps, fused=fused),
        ),
        "adagrad": (
            lambda ps: torch.optim.Adagrad(ps, lr=LR, eps=EPS),
            lambda nps, fused: fo.Adagrad(LR, epsilon=EPS, parameters=nps, fused=fused),
        ),
        "sgd": (
            lambda ps: torch.optim.SGD(ps, lr=LR),
            lambda nps, fused: fo.SGD(LR, parameters=nps, fused=fused),
        ),
        "adam": (
            lambda ps: torch.optim.Adam(ps, lr=LR),
            lambda nps, fused: fo.Adam(LR, parameters=nps, fused=fused),
        ),
        "adamw": (
            lambda ps: torch.optim.AdamW(ps, lr=LR, weight_decay=0.01),
            lambda nps, fused: fo.AdamW(LR, parameters=nps, weight_decay=0.01, fused=fused),
        ),
        "adamax": (
            lambda ps: torch.optim.Adamax(ps, lr=LR),
            lambda nps, fused: fo.Adamax(LR, parameters=nps, fused=fused),
        ),
        "adadelta": (
            lambda ps: torch.optim.Adadelta(ps, lr=LR, rho=RHO, eps=EPS),
            lambda nps, fused: fo.Adadelta(LR, rho=RHO, epsilon=EPS, parameters=nps, fused=fused),
        ),
        # torch's most common call, on torchfluid.optim.SGD (torch's momentum options and layout)
        "torch-sgd": (
            lambda ps: torch.optim.SGD(ps, lr=LR, momentum=MOM, nesterov=True, weight_decay=5e-4),
            lambda nps, fused: optim.SGD(nps, lr=LR, momentum=MOM, nesterov=True, weight_decay=5e-4, fused=fused),
        ),
        # the drop-in: torch's RMSprop maths and layout (eps outside the sqrt), on torchfluid's
        # kernels; it has no fused option (its fused kernel runs wherever it applies)
        "torch-rmsprop": (
            lambda ps: torch.optim.RMSprop(ps, lr=LR, alpha=RHO, eps=EPS, momentum=MOM),
            lambda nps, fused: optim.RMSprop(nps, lr=LR, alpha=RHO, eps=EPS, momentum=MOM),
        ),
    }


OPTIMIZERS = (
    "rmsprop",
    "momentum",
    "adagrad",
    "sgd",
    "adam",
    "adamw",
    "adamax",
    "adadelta",
    "torch-sgd",
    "torch-rmsprop",
)


def _model_loops(name: str, fused: bool | None = None, optimizer: str = "rmsprop", step_only: bool = False) -> dict:
    """``{"torch": steps, "torchfluid": steps}`` for model ``name``, same weights and batch
    (``fused``: the torchfluid optimizer's option; False times the reference kernel, as an
    install without numba runs it). ``optimizer``: one of :data:`OPTIMIZERS` (torch's
    counterpart: RMSprop, SGD with momentum, Adagrad, SGD, Adam, AdamW, Adamax, Adadelta; torch-sgd:
    ``torchfluid.optim.SGD`` and torch's SGD with momentum 0.9, Nesterov and weight decay). ``step_only``:
    each
    step is ``opt.step()`` alone, on the gradients of one backward pass made first."""
    pairs = _optimizer_pairs()
    if optimizer not in pairs:
        raise ValueError(f"unknown optimizer {optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
    make_torch, make_fluid = pairs[optimizer]
    torch.manual_seed(0)
    model, (x, y), loss_fn = MODELS[name](torch.Generator().manual_seed(0))
    twin = copy.deepcopy(model)
    t_opt = make_torch(model.parameters())
    f_opt = make_fluid(list(twin.named_parameters()), fused)

    def loop(m, opt):
        if step_only:
            opt.zero_grad()
            loss_fn(m(x), y).backward()
            return opt.step

        def step():
            opt.zero_grad()
            loss_fn(m(x), y).backward()
            opt.step()

        return step

    return {
        "torch": _repeat(loop(model, t_opt), model, t_opt),
        "torchfluid": _repeat(loop(twin, f_opt), twin, f_opt),
    }


def _repeat(step, model=None, optimizer=None):
    """``steps(k)``: ``k`` calls of ``step`` (``steps.model`` / ``steps.optimizer``: the
    model it trains and its optimizer, if any)."""

    def steps(k):
        for _ in range(k):
            step()

    steps.model, steps.optimizer = model, optimizer
    return steps


# ----------------------------------------------------------------- the page's example
def _page_batches(steps=64, batch=4, seed=0):
    """``next_batch()``: ``steps`` batches of regression data for the page's model (13
    features), round and round."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(steps, batch, 13)).astype("float32")
    ys = (xs @ rng.normal(size=(13, 1))).astype("float32")
    return functools.partial(next, itertools.cycle(zip(xs, ys, strict=True)))


def _fluid_dygraph_loop():
    import torchfluid as fluid

    next_batch = _page_batches()
    with fluid.dygraph.guard():
        fc = fluid.dygraph.Linear(13, 1)
        opt = fluid.optimizer.RMSPropOptimizer(learning_rate=0.1, parameter_list=fc.parameters())

    def steps(k):
        with fluid.dygraph.guard():  # as in the page: one guard around the training loop
            for _ in range(k):
                xb, yb = next_batch()
                x, y = fluid.dygraph.to_variable(xb), fluid.dygraph.to_variable(yb)
                loss = fluid.layers.mean(fluid.layers.square_error_cost(fc(x), y))
                loss.backward()
                opt.minimize(loss)
                fc.clear_gradients()

    return steps


def _fluid_static_loop():
    import torchfluid as fluid

    next_batch = _page_batches()
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[13], dtype="float32")
        y = fluid.layers.data(name="y", shape=[1], dtype="float32")
        y_predict = fluid.layers.fc(input=x, size=1, act=None)
        avg_cost = fluid.layers.mean(fluid.layers.square_error_cost(input=y_predict, label=y))
        fluid.optimizer.RMSProp(learning_rate=0.1).minimize(avg_cost)
    exe, scope = fluid.Executor(fluid.CPUPlace()), fluid.Scope()
    exe.run(start, scope=scope)

    def step():
        xb, yb = next_batch()
        exe.run(main, feed={"x": xb, "y": yb}, fetch_list=[avg_cost], scope=scope)

    return _repeat(step)


def _torch_page_loop(fetch: bool):
    next_batch = _page_batches()
    torch.manual_seed(0)
    fc = torch.nn.Linear(13, 1)
    opt = torch.optim.RMSprop(fc.parameters(), lr=0.1, alpha=RHO, eps=EPS)

    def step():
        xb, yb = next_batch()
        x, y = torch.from_numpy(xb), torch.from_numpy(yb)
        loss = torch.mean((fc(x) - y) ** 2)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if fetch:
            loss.detach().numpy().copy()

    return _repeat(step)


def _paddle_dygraph_loop():
    import paddle  # only where installed

    next_batch = _page_batches()
    paddle.disable_static()
    fc = paddle.nn.Linear(13, 1)
    opt = paddle.optimizer.RMSProp(learning_rate=0.1, parameters=fc.parameters())

    def step():
        xb, yb = next_batch()
        loss = paddle.mean((fc(paddle.to_tensor(xb)) - paddle.to_tensor(yb)) ** 2)
        loss.backward()
        opt.step()
        opt.clear_grad()

    return _repeat(step)


def _paddle_installed() -> bool:
    from importlib.util import find_spec

    return find_spec("paddle") is not None


PAGE_LOOPS = {  # comparison -> (loop, baseline)
    "fluid dygraph": ("fluid dygraph", "torch"),
    "fluid static": ("fluid static", "torch + fetch"),
    "paddle dygraph": ("paddle dygraph", "torch"),
}
_PAGE_BUILDERS = {
    "fluid dygraph": _fluid_dygraph_loop,
    "fluid static": _fluid_static_loop,
    "torch": lambda: _torch_page_loop(False),
    "torch + fetch": lambda: _torch_page_loop(True),
    "paddle dygraph": _paddle_dygraph_loop,
}


# ---------------------------------------------------------------------------- timing
@dataclasses.dataclass
class LoopResult:
    table: str  # "models" or "page"
    case: str  # model name or the page loop compared
    ms: dict  # loop -> median ms per step
    baseline: str  # the loop the ratio divides by
    loop: str  # the loop measured against it
    per_round: dict = dataclasses.field(default_factory=dict)  # loop -> ms per step in each round

    @property
    def ratio(self) -> float:
        return self.ms[self.loop] / self.ms[self.baseline]

    @property
    def ratio_spread(self) -> tuple[float, float] | None:
        """The lower and upper quartiles of the per-round ratios (a round times both loops
        one after the other, so the load of the moment hits both), None without rounds."""
        a, b = self.per_round.get(self.loop), self.per_round.get(self.baseline)
        if not a or not b:
            return None
        ratios = sorted(x / y for x, y in zip(a, b, strict=True))
        if len(ratios) < 2:
            return ratios[0], ratios[0]
        q = statistics.quantiles(ratios, n=4, method="inclusive")
        return q[0], q[2]


def _time(loops: dict, rounds: int, block_ms: float, per_round: dict | None = None) -> dict:
    """Median per-step milliseconds of each loop (``steps(k)`` runs ``k`` steps),
    interleaved round-robin; ``per_round`` (a dict) receives each loop's per-step
    milliseconds of every round."""
    gc.collect()  # the garbage of earlier loops is not collected (a long pause) inside these
    blocks = {}
    for name, steps in loops.items():  # warm up (kernel loading, plans, allocator), then size a block
        steps(3)
        k, one = 1, float("inf")
        while k <= 256:  # doubling runs to a quarter block; the fastest step sizes the block
            t0 = time.perf_counter()
            steps(k)
            one = min(one, max((time.perf_counter() - t0) / k, 1e-6))
            if 2 * k * one >= block_ms / 4e3:
                break
            k *= 2
        blocks[name] = max(1, min(500, int(block_ms / 1e3 / one)))
    per_step = {name: [] for name in loops}
    for _ in range(rounds):
        for name, steps in loops.items():
            k = blocks[name]
            t0 = time.perf_counter()
            steps(k)
            per_step[name].append((time.perf_counter() - t0) / k)
    if per_round is not None:
        per_round.update({name: [1e3 * t for t in v] for name, v in per_step.items()})
    return {name: 1e3 * statistics.median(v) for name, v in per_step.items()}


def run_loops(
    models=None,
    page=None,
    *,
    rounds: int = 15,
    block_ms: float = 30.0,
    threads: int | None = 2,
    fused: bool | None = None,
    optimizer: str = "rmsprop",
    step_only: bool = False,
    on_result=None,
) -> list[LoopResult]:
    """Time the model loops (``models``: names from :data:`MODELS`, default all) and the
    page's loops (``page``: names from :data:`PAGE_LOOPS`, default all that can run
    here; Paddle's only where installed). ``threads``: torch's intra-op thread count for
    the run (None: leave it); ``fused``: the models' torchfluid optimizer option;
    ``optimizer``: which pair the models train with (:data:`OPTIMIZERS`); ``step_only``:
    time ``opt.step()`` alone instead of the whole step (models only)."""
    if threads is not None:
        torch.set_num_threads(threads)
    models = list(MODELS) if models is None else list(models)
    if page is None:
        page = [p for p in PAGE_LOOPS if p != "paddle dygraph" or _paddle_installed()]
    bad = [m for m in models if m not in MODELS] + [p for p in page if p not in PAGE_LOOPS]
    if bad:
        raise ValueError(f"unknown loop {bad[0]!r}; allowed: {', '.join([*MODELS, *PAGE_LOOPS])}")
    results = []
    for name in models:
        loops, per_round = _model_loops(name, fused, optimizer, step_only), {}
        ms = _time(loops, rounds, block_ms, per_round)
        r = LoopResult("models", name, ms, "torch", "torchfluid", per_round)
        results.append(r)
        if on_result is not None:
            on_result(r)
    if page:
        needed = sorted({n for p in page for n in PAGE_LOOPS[p]})
        per_round = {}
        ms = _time({n: _PAGE_BUILDERS[n]() for n in needed}, rounds, block_ms, per_round)
        for p in page:
            loop, base = PAGE_LOOPS[p]
            r = LoopResult("page", p, ms, base, loop, per_round)
            results.append(r)
            if on_result is not None:
                on_result(r)
    return results
