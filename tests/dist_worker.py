"""One rank of the distributed tests (gloo on 127.0.0.1). Started by tests/test_distributed.py
(or unchanged by ``torchrun``): RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT come from the
environment. The model, data and optimizer configurations are defined here so the test
can train the single-process references with exactly the same definitions.

Modes:
  equiv OUT CKDIR TOTAL  DDP / sharded / global-norm-clip scenarios, 20 steps each
                         (writes OUT/equiv-rank<r>.pt), then the uninterrupted
                         checkpointed reference run: mode ckpt CKDIR TOTAL OUT/ckpt.pt -1
  ckpt DIR TOTAL OUT K   sharded training with a checkpoint every step, resuming from the
                         newest complete one; rank 1 SIGKILLs itself after the update of
                         step K (K = -1: never); rank 0 writes OUT
  stall DIR TOTAL OUT K  the same, but rank 1 hangs (sleeps) instead of dying
  exec SCRIPT CWD        run SCRIPT (which initialises the process group itself) in CWD
TF_DIST_TIMEOUT: the process group's timeout in seconds (default 20).
"""

import datetime
import os
import signal
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from torchfluid.clip import ClipGradByGlobalNorm  # noqa: E402
from torchfluid.optimizer import Adam, AdamW, RMSProp  # noqa: E402
from torchfluid.optimizer.lr import StepDecay  # noqa: E402
from torchfluid.regularizer import L1Decay, L2Decay  # noqa: E402

BATCH = 16
STEPS = 20
NAN_STEP = 3  # config 'skip': the second half of this step's batch (rank 1's slice) has NaN targets


def make_model(dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """The same initial weights in every process."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 12), torch.nn.Tanh(), torch.nn.Linear(12, 12), torch.nn.Tanh(), torch.nn.Linear(12, 3)
    ).to(dtype)
    model[2].weight.need_clip = False  # not clipped, not in the global norm
    model[0].bias.regularizer = L1Decay(1e-2)  # its own regularizer instead of the global L2
    return model


def batch(step: int, world: int = 1, rank: int = 0, nan_step: int | None = None):
    """Step ``step``'s global batch (BATCH rows), or rank ``rank``'s slice of it."""
    g = torch.Generator().manual_seed(1000 + step)
    x, y = torch.randn(BATCH, 6, generator=g), torch.randn(BATCH, 3, generator=g)
    if step == nan_step:
        y[BATCH // 2 :] = float("nan")
    part = BATCH // world
    return x[rank * part : (rank + 1) * part], y[rank * part : (rank + 1) * part]


def make_optimizer(config: str, model: torch.nn.Module, **dist_kwargs):
    """``plain``: centered RMSProp with momentum. ``full``: the same plus an LR schedule,
    global-norm clipping (with a need_clip=False parameter), L2 + a per-parameter L1,
    and a parameter group with an lr multiplier. ``adam``: Adam with clipping and L2.
    ``skip``: ``plain`` with ``nonfinite='skip'``. ``mp``: ``plain`` with float32 master
    weights (for a bfloat16 model); ``mp_adamw``: AdamW with them, global-norm clipping and
    one undecayed parameter. Returns (optimizer, scheduler or None)."""
    named = list(model.named_parameters())
    if config == "skip":
        return RMSProp(0.01, momentum=0.9, centered=True, parameters=named, nonfinite="skip", **dist_kwargs), None
    if config == "mp":
        return RMSProp(0.01, momentum=0.9, centered=True, parameters=named, multi_precision=True, **dist_kwargs), None
    if config == "mp_adamw":
        return AdamW(
            0.01,
            parameters=named,
            weight_decay=0.05,
            apply_decay_param_fun=lambda name: name != "0.bias",
            grad_clip=ClipGradByGlobalNorm(0.5),
            multi_precision=True,
            **dist_kwargs,
        ), None
    if config == "plain":
        return RMSProp(0.01, momentum=0.9, centered=True, parameters=named, **dist_kwargs), None
    if config == "full":
        sched = StepDecay(learning_rate=0.02, step_size=5, gamma=0.5)
        groups = [
            {"params": [(n, p) for n, p in named if not n.startswith("4.")]},
            {"params": [(n, p) for n, p in named if n.startswith("4.")], "learning_rate": 2.0},
        ]
        opt = RMSProp(
            sched,
            rho=0.9,
            momentum=0.9,
            centered=True,
            parameters=groups,
            grad_clip=ClipGradByGlobalNorm(0.5),
            regularization=L2Decay(1e-3),
            **dist_kwargs,
        )
        return opt, sched
    if config == "adam":
        return Adam(
            0.01, parameters=named, grad_clip=ClipGradByGlobalNorm(0.5), regularization=L2Decay(1e-3), **dist_kwargs
        ), None
    raise ValueError(f"unknown config {config!r}")


def train_step(model, opt, sched, step: int, world: int = 1, rank: int = 0, nan_step: int | None = None) -> None:
    x, y = batch(step, world, rank, nan_step)
    dtype = next(model.parameters()).dtype
    opt.clear_grad(set_to_zero=False)
    torch.nn.functional.mse_loss(model(x.to(dtype)), y.to(dtype)).backward()
    opt.step()
    if sched is not None:
        sched.step()


def global_norm_of(opt):
    clip = opt.grad_clip
    return None if clip is None or clip.last_global_norm is None else float(clip.last_global_norm)


def run(config: str, *, ddp: bool, world: int = 1, rank: int = 0, steps: int = STEPS, **dist_kwargs):
    """Train ``steps`` steps; returns (final parameters, optimizer, global norms per step)."""
    model = make_model(torch.bfloat16 if config.startswith("mp") else torch.float32)
    net = torch.nn.parallel.DistributedDataParallel(model) if ddp else model
    opt, sched = make_optimizer(config, model, **dist_kwargs)
    norms = []
    for step in range(steps):
        train_step(net, opt, sched, step, world, rank, NAN_STEP if config == "skip" else None)
        norms.append(global_norm_of(opt))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, opt, norms


def run_dygraph(*, ddp: bool, world: int = 1, rank: int = 0, steps: int = STEPS, **dist_kwargs) -> dict:
    """Fluid dygraph: two ``fluid.dygraph.Linear`` layers in a ``Layer``, centered RMSProp
    with momentum through ``minimize``; returns the final parameters by fluid name."""
    import torchfluid as fluid

    class MLP(fluid.dygraph.Layer):
        def __init__(self):
            super().__init__()
            self.fc1 = fluid.dygraph.Linear(6, 12, act="tanh")
            self.fc2 = fluid.dygraph.Linear(12, 3)

        def forward(self, x):
            return self.fc2(self.fc1(x))

    with fluid.dygraph.guard(), fluid.unique_name.guard():
        torch.manual_seed(0)
        model = MLP()
        net = torch.nn.parallel.DistributedDataParallel(model) if ddp else model
        opt = fluid.optimizer.RMSPropOptimizer(
            0.01, momentum=0.9, centered=True, parameter_list=model.parameters(), **dist_kwargs
        )
        for step in range(steps):
            x, y = batch(step, world, rank)
            pred = net(fluid.dygraph.to_variable(x.numpy()))
            loss = fluid.layers.mean(fluid.layers.square_error_cost(pred, fluid.dygraph.to_variable(y.numpy())))
            loss.backward()
            opt.minimize(loss)
            model.clear_gradients()
        return {p.name: p.detach().clone().as_subclass(torch.Tensor) for p in model.parameters()}


SCENARIOS = {  # name: (config, DDP?, optimizer kwargs)
    "ddp": ("plain", True, {}),
    "ddp_sharded": ("plain", True, {"shard_state": True}),
    "sharded_reduce": ("plain", False, {"shard_state": True, "grad_reduction": "reduce"}),
    "full_ddp": ("full", True, {}),
    "full_ddp_sharded": ("full", True, {"shard_state": True}),
    "full_sharded_reduce": ("full", False, {"shard_state": True, "grad_reduction": "reduce"}),
    "adam_sharded_reduce": ("adam", False, {"shard_state": True, "grad_reduction": "reduce"}),
    "skip_sharded_reduce": ("skip", False, {"shard_state": True, "grad_reduction": "reduce"}),
    "mp_ddp": ("mp", True, {}),
    "mp_sharded_reduce": ("mp", False, {"shard_state": True, "grad_reduction": "reduce"}),
    "mp_adamw_ddp": ("mp_adamw", True, {}),
    "mp_adamw_sharded_reduce": ("mp_adamw", False, {"shard_state": True, "grad_reduction": "reduce"}),
}


def mode_equiv(out: str, rank: int, world: int) -> None:
    from torchfluid.distributed import consolidated_state_dict, state_nbytes

    results = {}
    for name, (config, ddp, kwargs) in SCENARIOS.items():
        params, opt, norms = run(config, ddp=ddp, world=world, rank=rank, **kwargs)
        results[name] = {
            "params": params,
            "norms": norms,
            "state_nbytes": state_nbytes(opt),
            "state_keys": sorted(
                k for k in opt.state_dict() if k not in ("param_groups", "LR_Scheduler", "master_weights")
            ),
            "masters": sorted(opt.state_dict().get("master_weights", {})),
            "skipped_steps": getattr(opt, "skipped_steps", 0),
        }
        if name == "full_sharded_reduce":
            results[name]["consolidated"] = consolidated_state_dict(opt, dst=0)
    results["dygraph_ddp"] = {"params": run_dygraph(ddp=True, world=world, rank=rank)}
    results["dygraph_sharded_reduce"] = {
        "params": run_dygraph(ddp=False, world=world, rank=rank, shard_state=True, grad_reduction="reduce")
    }
    torch.save(results, os.path.join(out, f"equiv-rank{rank}.pt"))


def mode_ckpt(ckdir: str, total: int, out: str, crash_step: int, rank: int, world: int, stall: bool = False) -> None:
    from torchfluid.distributed import ShardedCheckpointer

    model = make_model()
    opt, sched = make_optimizer("full", model, shard_state=True, grad_reduction="reduce")
    ck = ShardedCheckpointer(ckdir, every=1, keep=20)
    info = ck.resume(model=model, optimizer=opt)
    start = info["step"] if info else 0
    for step in range(start, total):
        train_step(model, opt, sched, step, world, rank)
        if step + 1 == crash_step and rank == 1:
            if stall:
                time.sleep(3600)  # alive but never joins the next collective
            os.kill(os.getpid(), signal.SIGKILL)
        ck.save(step + 1, model=model, optimizer=opt)
    if rank == 0:
        torch.save({"params": model.state_dict(), "start": start}, out)


def main(argv) -> None:
    import torch.distributed as dist

    if argv[0] == "exec":  # a user script (docs/distributed.md) that starts its own process group
        import runpy

        os.chdir(argv[2])
        runpy.run_path(argv[1], run_name="__main__")
        return
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    timeout = datetime.timedelta(seconds=float(os.environ.get("TF_DIST_TIMEOUT", "20")))
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timeout)
    try:
        if argv[0] == "equiv":
            mode_equiv(argv[1], rank, world)
            mode_ckpt(argv[2], int(argv[3]), os.path.join(argv[1], "ckpt.pt"), -1, rank, world)
        elif argv[0] in ("ckpt", "stall"):
            mode_ckpt(argv[1], int(argv[2]), argv[3], int(argv[4]), rank, world, stall=argv[0] == "stall")
        else:
            raise SystemExit(f"unknown mode {argv[0]!r}")
    finally:
        dist.destroy_process_group()


def entry(argv, rank: int, world: int, port: int, log: str, timeout: float) -> None:
    """``main`` in a process forked by the test (torch already imported): the same
    environment torchrun would set, stdout and stderr into ``log``."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    import faulthandler

    faulthandler.enable()
    faulthandler.dump_traceback_later(45)  # a hang leaves every thread's stack in the log
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        TF_DIST_TIMEOUT=str(timeout),
    )
    torch.set_num_threads(1)
    main([str(a) for a in argv])


if __name__ == "__main__":
    main(sys.argv[1:])
