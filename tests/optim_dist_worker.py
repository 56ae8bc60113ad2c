"""One rank of tests/test_optim_distributed.py (gloo on 127.0.0.1, 2 ranks, CPU).

Every rank trains on the same full batch, so the averaged gradients equal one process's:
the single-process reference (``reference``) is a plain run of the same optimizer.
Scenarios, in one job:

* ``fsdp``: FSDP2 ``fully_shard`` (DTensor parameters), torchfluid optimizers, STEPS steps;
* ``dcp``: after STEPS steps, ``get_optimizer_state_dict`` + ``dcp.save``; MORE steps; then a
  fresh sharded model and optimizer ``dcp.load`` + ``set_optimizer_state_dict`` and MORE
  steps: both continuations must be bit-identical;
* ``zero``: ``ZeroRedundancyOptimizer(optimizer_class=torchfluid.optim.RMSProp)`` and
  ``AdamW`` (called with torch's keywords) with gradients all-reduced by hand, STEPS steps;
  AdamW again with its groups' ``betas`` changed halfway (ZeRO syncs them into its local optimizer).

Rank 0 writes the full parameters of each scenario to ``OUT/result.pt``.
"""

import datetime
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torchfluid.optim as O  # noqa: E402

STEPS, MORE = 4, 3
OPTIMIZERS = {  # name -> (class, kwargs): torchfluid's maths and torch's drop-in
    "RMSProp": (O.RMSProp, {"lr": 0.01, "momentum": 0.9, "centered": True}),
    "RMSprop": (O.RMSprop, {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.01}),
    "AdamW": (O.AdamW, {"lr": 0.01, "betas": (0.9, 0.95), "eps": 1e-6, "weight_decay": 0.1, "amsgrad": True}),
}
NEW_BETAS = (0.8, 0.9)  # written into param_groups halfway (as OneCycleLR writes them)


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


def batch(step: int):
    g = torch.Generator().manual_seed(100 + step)
    return torch.randn(8, 6, generator=g), torch.randn(8, 3, generator=g)


def train(model, opt, start: int, n: int, reduce=None) -> None:
    for step in range(start, start + n):
        x, y = batch(step)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        if reduce is not None:
            reduce(model)
        opt.step()


def full(model) -> list[torch.Tensor]:
    return [(p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone() for p in model.parameters()]


def train_new_betas(model, opt, reduce=None) -> None:
    """STEPS steps, ``betas`` set to NEW_BETAS in every param group halfway."""
    train(model, opt, 0, STEPS // 2, reduce)
    for group in opt.param_groups:
        group["betas"] = NEW_BETAS
    train(model, opt, STEPS // 2, STEPS - STEPS // 2, reduce)


def reference(name: str, n: int, new_betas: bool = False) -> list[torch.Tensor]:
    cls, kwargs = OPTIMIZERS[name]
    model = make_model()
    opt = cls(model.parameters(), **kwargs)
    if new_betas:
        train_new_betas(model, opt)
    else:
        train(model, opt, 0, n)
    return full(model)


def _sharded(name):
    from torch.distributed.fsdp import fully_shard

    cls, kwargs = OPTIMIZERS[name]
    model = make_model()
    for layer in (model[0], model[2]):
        fully_shard(layer)
    fully_shard(model)
    return model, cls(model.parameters(), **kwargs)


def main(out: str) -> None:
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )
    from torch.distributed.optim import ZeroRedundancyOptimizer

    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=30))
    rank = dist.get_rank()
    result = {}
    for name in OPTIMIZERS:
        model, opt = _sharded(name)
        assert type(next(model.parameters())).__name__ == "DTensor"
        train(model, opt, 0, STEPS)
        result[f"fsdp/{name}"] = full(model)
        # DCP: save, continue; load into a fresh sharded pair, continue the same way
        ckpt = os.path.join(out, f"dcp-{name}")
        dcp.save(
            {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, opt)}, checkpoint_id=ckpt
        )
        train(model, opt, STEPS, MORE)
        result[f"dcp-continued/{name}"] = full(model)
        model2, opt2 = _sharded(name)
        sd = {"model": get_model_state_dict(model2), "optim": get_optimizer_state_dict(model2, opt2)}
        dcp.load(sd, checkpoint_id=ckpt)
        set_model_state_dict(model2, sd["model"])
        set_optimizer_state_dict(model2, opt2, sd["optim"])
        train(model2, opt2, STEPS, MORE)
        result[f"dcp-resumed/{name}"] = full(model2)

    def all_reduce(model):
        for p in model.parameters():
            dist.all_reduce(p.grad)
            p.grad /= dist.get_world_size()

    for name in ("RMSProp", "AdamW"):
        cls, kwargs = OPTIMIZERS[name]
        model = make_model()
        zero = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=cls, **kwargs)
        train(model, zero, 0, STEPS, reduce=all_reduce)
        result[f"zero/{name}"] = full(model)
        zero.consolidate_state_dict(to=0)
        if rank == 0:
            result[f"zero-state-keys/{name}"] = sorted(zero.state_dict()["state"][0])
    # ZeRO copies its groups' keys (torch's betas and eps too) into the local optimizer's every step
    model = make_model()
    cls, kwargs = OPTIMIZERS["AdamW"]
    train_new_betas(model, ZeroRedundancyOptimizer(model.parameters(), optimizer_class=cls, **kwargs), all_reduce)
    result["zero-new-betas/AdamW"] = full(model)
    if rank == 0:
        torch.save(result, os.path.join(out, "result.pt"))
    dist.barrier()
    dist.destroy_process_group()


def entry(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    main(out)
