"""Training loops of ``torchfluid train``: dygraph (eager ``fluid.dygraph`` Layers) and
static (a ``Program`` run by an ``Executor``), with per-epoch metrics and checkpoints.

Both loops visit the training rows in the same order: epoch ``e`` uses the permutation
drawn from ``numpy.random.default_rng([seed, e])``, so a resumed run sees the batches an
uninterrupted one would. Checkpoints (``checkpoint_dir``) are written by
:class:`torchfluid.checkpoint.Checkpointer` at the end of every ``checkpoint_every``-th
epoch and hold the model (or, in static mode, every persistable variable of the scope:
parameters, accumulators, the learning-rate counter), the optimizer, the RNG states and
the metrics so far, and the run's configuration: ``resume`` refuses a checkpoint written
with another configuration (the keys that differ are listed) unless ``resume_anyway``.
Without ``resume``, a ``checkpoint_dir`` holding another run's checkpoints is refused
unless ``overwrite`` (see :class:`~torchfluid.checkpoint.Checkpointer`).

A train or test loss that is not finite stops the run with :class:`TrainingError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time

import numpy as np
import torch

from .. import framework
from ..checkpoint import CheckpointError, Checkpointer, CheckpointFolderError
from ..dygraph import guard
from ..static import executor as static_executor
from ..static.framework import Program, program_guard
from ..static.scope import Scope, scope_guard
from ..unique_name import guard as name_guard
from .config import Config, ConfigError, momentum_of
from .data import Prepared
from .models import ModelSpec, Net, build_static, loss_of
from .optim import TorchStepper, build_optimizer, learning_rate, make_optimizer

__all__ = ["Reporter", "train", "RunResult", "TrainingError", "MAX_PARAMETERS", "RESUME_FREE_KEYS"]

MAX_PARAMETERS = 50_000_000
# keys that may change between a run and its resumption
RESUME_FREE_KEYS = (
    "epochs",
    "progress",
    "out",
    "overwrite",
    "name",
    "resume",
    "resume_anyway",
    "checkpoint_dir",
    "checkpoint_every",
    "checkpoint_keep",
    "threads",
)


class TrainingError(RuntimeError):
    """The run cannot go on (a loss that is not finite)."""


class Reporter:
    """What a loop tells the outside: override to show progress (see ``report.py``)."""

    def start(self, label: str, total_steps: int, done_steps: int) -> None: ...

    def step(self, loss: float) -> None: ...

    def epoch(self, record: dict) -> None: ...

    def close(self) -> None: ...


@dataclasses.dataclass
class RunResult:
    label: str
    history: list[dict]
    resumed_from: int = 0


class _ModelState:
    """A dygraph Layer's plain-tensor state for checkpoints (``state_dict(keep_vars=False)``)."""

    def __init__(self, model):
        self.model = model

    def state_dict(self):
        return {k: v.detach().clone() for k, v in self.model.state_dict(keep_vars=False).items()}

    def set_state_dict(self, sd):
        self.model.load_state_dict(sd)


class _ScopeState:
    """The persistable variables of a static program in a scope, for checkpoints."""

    def __init__(self, program: Program, scope: Scope):
        self.names = sorted(v.name for v in program.list_vars() if v.persistable and not v.is_data)
        self.scope = scope

    def state_dict(self):
        return {n: self.scope.value(n).detach().clone() for n in self.names if self.scope.value(n) is not None}

    def set_state_dict(self, sd):
        missing = sorted(set(self.names) - set(sd))
        extra = sorted(set(sd) - set(self.names))
        bad = [
            n
            for n in self.names
            if n in sd and self.scope.value(n) is not None and tuple(sd[n].shape) != tuple(self.scope.value(n).shape)
        ]
        if missing or extra or bad:
            raise ValueError(
                f"checkpoint does not fit this program: missing {missing}, unexpected {extra}, other shape {bad}"
            )
        for n in self.names:
            self.scope.set_value(n, sd[n].clone())


def check_checkpoint_dir(cfg: Config) -> None:
    """Refuse, before anything is written, a ``checkpoint_dir`` that is a file or holds
    another run's checkpoints (without ``resume`` or ``overwrite``)."""
    if cfg["checkpoint_dir"] is not None:
        if os.path.lexists(cfg["checkpoint_dir"]) and not os.path.isdir(cfg["checkpoint_dir"]):
            raise ConfigError(f"checkpoint_dir {cfg['checkpoint_dir']!r} exists and is not a folder")
        ckpt = _checkpointer(cfg)
        if cfg["resume"]:
            _check_resumable(cfg, ckpt)


def _checkpointer(cfg: Config):
    if cfg["checkpoint_dir"] is None:
        return None
    ckpt = Checkpointer(
        cfg["checkpoint_dir"], every=cfg["checkpoint_every"], keep=cfg["checkpoint_keep"], overwrite=cfg["overwrite"]
    )
    if not cfg["resume"] and not cfg["overwrite"]:
        steps = sorted(s for s, _ in ckpt.checkpoints())
        if steps:
            raise ConfigError(
                f"checkpoint_dir {cfg['checkpoint_dir']!r} holds checkpoints of another run "
                f"(epochs {steps[0]}..{steps[-1]}); pass --resume to continue it or --overwrite "
                "to replace them"
            )
    return ckpt


def config_fingerprint(cfg: Config) -> dict:
    """The configuration a checkpoint must match to be resumed (plain values)."""
    values = {k: v for k, v in cfg.values.items() if k not in RESUME_FREE_KEYS}
    # the momentum the run uses (its default depends on optimizer.kind), as a number: 0.0 for the
    # kinds whose default has always been 0, so their earlier checkpoints still match
    values["optimizer.momentum"] = momentum_of(cfg)
    return values


def config_diff(saved: dict, now: dict) -> list[str]:
    return [
        f"{k}: {saved.get(k, '<unset>')!r} -> {now.get(k, '<unset>')!r}"
        for k in sorted(set(saved) | set(now))
        if saved.get(k, "<unset>") != now.get(k, "<unset>")
    ]


def _check_resumable(cfg, ckpt):
    """The newest checkpoint (None: nothing to resume) after checking it was written by
    ``train`` with this configuration (unless ``resume_anyway``)."""
    found = ckpt.latest()
    if found is None:
        return None
    extra = found.get("extra")
    if not isinstance(extra, dict) or not isinstance(extra.get("history"), list):
        raise ConfigError(
            f"checkpoint_dir {cfg['checkpoint_dir']!r}: the newest checkpoint was not written by torchfluid train"
        )
    saved = extra.get("config")
    if isinstance(saved, dict) and not cfg["resume_anyway"]:
        diff = config_diff(saved, config_fingerprint(cfg))
        if diff:
            raise ConfigError(
                f"--resume: the checkpoint in {cfg['checkpoint_dir']!r} was written with another "
                f"configuration ({'; '.join(diff)}); resume with the same settings or pass "
                "--resume-anyway"
            )
    return found


def _resume(cfg, ckpt, model_state, optimizer):
    if ckpt is None or not cfg["resume"]:
        return 0, []
    try:
        if _check_resumable(cfg, ckpt) is None:
            return 0, []
        state = ckpt.resume(model=model_state, optimizer=optimizer)
    except CheckpointFolderError as e:
        raise ConfigError(f"checkpoint_dir: {e}") from None
    except (ValueError, TypeError, KeyError, RuntimeError, IndexError) as e:
        if isinstance(e, (ConfigError, CheckpointError)):
            raise
        detail = " ".join(str(e).split())
        raise ConfigError(
            f"--resume: the checkpoint in {cfg['checkpoint_dir']!r} does not fit this model and "
            f"optimizer: {type(e).__name__}: {detail[:400]}"
        ) from None
    if state is None:
        return 0, []
    return state["step"], list(state["extra"]["history"])


def _save(ckpt, cfg, step, model_state, optimizer, history) -> None:
    try:
        ckpt.save(
            step,
            model=model_state,
            optimizer=optimizer,
            extra={"history": history, "config": config_fingerprint(cfg)},
            force=step == cfg["epochs"],
        )
    except CheckpointFolderError as e:
        raise ConfigError(f"checkpoint_dir: {e}") from None


def _finite(value: float, what: str, epoch: int, label: str) -> float:
    if not math.isfinite(value):
        raise TrainingError(
            f"{label}: {what} became {value} in epoch {epoch} (lower "
            "optimizer.learning_rate, add optimizer.clip, or check the data)"
        )
    return value


def parameter_count(spec: ModelSpec) -> int:
    widths = spec.widths()
    n = sum(a * b + b for a, b in zip(widths, widths[1:], strict=False))
    return n + (spec.vocab * spec.embedding_dim if spec.kind == "embedding" else 0)


def check_model_size(spec: ModelSpec) -> None:
    n = parameter_count(spec)
    if n > MAX_PARAMETERS:
        raise ConfigError(
            f"the model would have {n:,} parameters (model.hidden={list(spec.hidden)}, "
            f"{spec.num_features} features"
            + (f", vocabulary {spec.vocab} x embedding_dim {spec.embedding_dim}" if spec.kind == "embedding" else "")
            + f"); at most {MAX_PARAMETERS:,} are allowed"
        )


def train(cfg: Config, data: Prepared, reporter: Reporter | None = None, label: str = "run") -> RunResult:
    """Train as configured; returns the per-epoch history."""
    reporter = reporter or Reporter()
    spec = ModelSpec.of(cfg, data)
    check_model_size(spec)
    run = _train_static if cfg["mode"] == "static" else _train_dygraph
    threads = torch.get_num_threads()
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    try:
        return run(cfg, data, spec, reporter, label)
    finally:
        torch.set_num_threads(threads)
        reporter.close()


def _steps_per_epoch(cfg, data) -> int:
    return -(-len(data.x_train) // cfg["batch_size"])


def _loop(cfg, data, spec, reporter, label, state, optimizer, train_step, evaluate, lr_now) -> RunResult:
    """The epochs of either mode: ``train_step(rows)`` runs one batch and returns its loss,
    ``evaluate()`` gives ``(test outputs, test loss)``, ``lr_now()`` the rate of the last
    step; ``state`` and ``optimizer`` are what checkpoints hold (``optimizer`` None in
    static mode, where the scope's variables hold its state)."""
    with _checkpointer(cfg) or contextlib.nullcontext() as ckpt:
        start, history = _resume(cfg, ckpt, state, optimizer)
        steps = _steps_per_epoch(cfg, data)
        reporter.start(label, cfg["epochs"] * steps, start * steps)
        for epoch in range(start, cfg["epochs"]):
            t0, total = time.perf_counter(), 0.0
            order = np.random.default_rng([cfg["seed"], epoch]).permutation(len(data.x_train))
            for i in range(0, len(order), cfg["batch_size"]):
                idx = order[i : i + cfg["batch_size"]]
                value = _finite(train_step(idx), "the train loss", epoch + 1, label)
                total += value * len(idx)
                reporter.step(value)
            out, test_loss = evaluate()
            acc = float((out.argmax(axis=1) == data.y_test.reshape(-1)).mean()) if spec.classification else None
            record = {
                "epoch": epoch + 1,
                "train_loss": total / len(data.x_train),
                "test_loss": _finite(test_loss, "the test loss", epoch + 1, label),
                "test_accuracy": acc,
                "lr": lr_now(),
                "seconds": time.perf_counter() - t0,
            }
            history.append(record)
            reporter.epoch(record)
            if ckpt is not None:
                _save(ckpt, cfg, epoch + 1, state, optimizer, history)
    return RunResult(label, history, start)


def _train_dygraph(cfg, data, spec, reporter, label) -> RunResult:
    dtype = getattr(torch, cfg["precision"])
    with guard():
        torch.manual_seed(cfg["seed"])
        model = Net(spec)
        if dtype != torch.float32:
            model.to(dtype)
        opt = build_optimizer(cfg, learning_rate(cfg, _steps_per_epoch(cfg, data)), model.parameters())
        x_tr, y_tr = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
        x_te, y_te = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
        if x_tr.is_floating_point():
            x_tr, x_te = x_tr.to(dtype), x_te.to(dtype)

        def train_step(idx):
            index = torch.from_numpy(idx)
            loss = loss_of(model(x_tr[index]), y_tr[index], spec.classification)
            value = float(loss.detach())
            if math.isfinite(value):  # a loss that is not finite stops the run before any update
                loss.backward()
                if isinstance(opt, TorchStepper):
                    opt.step()
                    opt.zero_grad()
                else:
                    opt.minimize(loss)
                    model.clear_gradients()
            return value

        def evaluate():
            model.eval()
            with torch.no_grad():
                out = model(x_te)
                test_loss = float(loss_of(out, y_te, spec.classification))
            model.train()
            return out.float().numpy(), test_loss

        def lr_now():
            return opt.current_lr() if isinstance(opt, TorchStepper) else float(opt.current_step_lr())

        return _loop(cfg, data, spec, reporter, label, _ModelState(model), opt, train_step, evaluate, lr_now)


def _feed(x, y, idx):
    xb = x[idx]
    return {"x": xb[..., None] if xb.dtype == np.int64 else xb, "y": y[idx]}


def _first(value) -> float:
    return float(np.asarray(value).reshape(-1)[0])


def _train_static(cfg, data, spec, reporter, label) -> RunResult:
    main, startup, scope = Program(), Program(), Scope()
    with program_guard(main, startup), name_guard():
        x, y, out, loss = build_static(spec)
        test_program = main.clone(for_test=True)
        lr = learning_rate(cfg, _steps_per_epoch(cfg, data))
        make_optimizer(cfg, lr).minimize(loss)
    exe = static_executor.Executor(framework.CPUPlace())
    fetch = [loss] + ([lr] if not isinstance(lr, float) else [])
    test_feed = _feed(data.x_test, data.y_test, np.arange(len(data.x_test)))
    last_lr = [lr if isinstance(lr, float) else float("nan")]  # the rate the last step fetched

    def train_step(idx):
        got = exe.run(main, feed=_feed(data.x_train, data.y_train, idx), fetch_list=fetch)
        if len(got) > 1:
            last_lr[0] = _first(got[1])
        return _first(got[0])

    def evaluate():
        out_v, loss_v = exe.run(test_program, feed=test_feed, fetch_list=[out, loss])
        return np.asarray(out_v), _first(loss_v)

    with scope_guard(scope):
        torch.manual_seed(cfg["seed"])
        exe.run(startup)
        state = _ScopeState(main, scope)
        return _loop(cfg, data, spec, reporter, label, state, None, train_step, evaluate, lambda: last_lr[0])
