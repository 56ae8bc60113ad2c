"""ZeRO stage 1 for any torchfluid optimizer: ``Optimizer(..., shard_state=True)``.

Each rank of the process group keeps optimizer state (RMSProp's ``mean_square``,
``mean_grad``, ``momentum``, ...) only for the parameters it *owns*, updates only
those, and then every rank receives every updated parameter from its owner. The
parameters themselves (and the model) stay replicated; only the state is divided.

What happens in one sharded update, in the base pipeline's order::

    validate          every (param, grad) pair, as on one process
    own_pairs         grad_reduction='none':   keep the pairs of this rank's shard
                      grad_reduction='reduce': one reduce-scatter per dtype leaves each
                      owner the average of all ranks' gradients of its shard
    learning rate     every rank advances the schedule (they stay identical)
    clip              ClipGradByGlobalNorm: squared-norm partials of each shard, summed by
                      ONE all-reduce of a float64 scalar -> the true global norm on every
                      rank; per-tensor clips (ByValue, ByNorm) need nothing
    regularize        L1/L2 on the owned pairs only
    update            the rule's reference or the fused kernel on the shard
    sync_params       one broadcast per owner (and dtype): every rank gets every parameter
                      from its owner (an all-gather in effect)

Partition (:func:`partition`): whole parameters, never slices, largest first (ties by
name) to the least-loaded rank (ties: lowest rank), never moved once made. State stays
keyed by parameter name as on one process (``<name>_mean_square_0``): a rank's
``state_dict()`` is its shard, shards merge by dict union and re-shard by filtering.
A rank holds at most ``total/N + largest tensor`` elements. docs/distributed.md gives
the reasons and the communication volume per step.

Gradient reduction (``grad_reduction``):

* ``'none'`` (default): the gradients in ``.grad`` are already averaged over ranks,
  e.g. by ``DistributedDataParallel``.
* ``'reduce'``: ``.grad`` holds each rank's LOCAL gradient (no DDP); the optimizer
  averages them in their parameter's dtype (pre-divided, as DDP does), then gives them
  back the dtype the prepare stage gave them. A parameter with a gradient on some ranks
  only gets the average with zeros from the others (DDP's ``find_unused_parameters``):
  the gradient of the mean loss over the concatenated batch. ``.grad`` is left as it
  was; row-sparse gradients are made dense for the collective.

World size 1 or no initialised process group: the sharded optimizer is the unsharded
one (no collective, no filtering). The process group is looked up at the first step or
state load, which (like every sharded step and load) must happen on every rank.

Failures: every collective runs under the process group's ``timeout``; an error of the
backend (a peer rank exited or crashed, or the timeout passed) is re-raised as a
:class:`ShardingError` naming this rank and the collective.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.distributed as dist

from .._checks import check_bool, check_int
from ..checkpoint.format import first_line
from ..clip import ClipGradByGlobalNorm

__all__ = ["GRAD_REDUCTIONS", "ShardingError", "ShardedState", "make", "partition"]

GRAD_REDUCTIONS = ("none", "reduce")


class ShardingError(RuntimeError):
    """A collective of a sharded optimizer failed, or the ranks disagree about the parameters."""


def make(opt, shard_state, grad_reduction, process_group) -> "ShardedState | None":
    """The optimizer's sharding record for its constructor arguments (None when unsharded)."""
    check_bool("shard_state", shard_state)
    if not isinstance(grad_reduction, str) or grad_reduction not in GRAD_REDUCTIONS:
        raise ValueError(f"grad_reduction must be one of {list(GRAD_REDUCTIONS)}, got {grad_reduction!r}")
    if not shard_state:
        if grad_reduction != "none" or process_group is not None:
            raise ValueError(
                f"grad_reduction and process_group apply only with shard_state=True, got "
                f"grad_reduction={grad_reduction!r}, process_group={process_group!r} with shard_state=False"
            )
        return None
    if process_group is not None and not (dist.is_available() and isinstance(process_group, dist.ProcessGroup)):
        raise ValueError(
            f"process_group must be None (the default group) or a torch.distributed ProcessGroup, "
            f"got {type(process_group).__name__}"
        )
    return ShardedState(opt, grad_reduction, process_group)


def partition(
    sizes: Sequence[tuple[str, int]],
    world_size: int,
    owners: dict[str, int] | None = None,
    loads: list[int] | None = None,
) -> dict[str, int]:
    """Owner rank of each ``(name, numel)``: largest first (ties by name), each to the
    least-loaded rank (ties: lowest rank).

    ``owners`` / ``loads`` (an earlier result and its per-rank element counts) are kept
    as they are and extended in place with the names not yet in ``owners``.
    """
    world_size = check_int("world_size", world_size, lo=1)
    owners = {} if owners is None else owners
    loads = [0] * world_size if loads is None else loads
    if len(loads) != world_size:
        raise ValueError(f"loads has {len(loads)} entries, expected world_size={world_size}")
    for name, numel in sorted((s for s in sizes if s[0] not in owners), key=lambda s: (-s[1], s[0])):
        rank = min(range(world_size), key=lambda r: (loads[r], r))
        owners[name] = rank
        loads[rank] += int(numel)
    return owners


def _syncable(p: torch.Tensor) -> bool:
    """Parameters that can change in an update (the base's ``_collect`` criteria, less the grad)."""
    return (
        p.requires_grad
        and getattr(p, "trainable", True) is not False
        and getattr(p, "stop_gradient", False) is not True
    )


class ShardedState:
    """One optimizer's ZeRO-1 bookkeeping: group, partition, and the three collectives."""

    def __init__(self, opt, grad_reduction: str, process_group):
        self._opt = opt
        self.grad_reduction = grad_reduction
        self.group = process_group
        self.world_size: int | None = None
        self.rank: int | None = None
        self.owners: dict[str, int] = {}
        self.loads: list[int] = []
        self.device: torch.device | None = None
        self._layout_key = None
        self._layout = None

    # ------------------------------------------------------------- group
    def _resolve(self) -> None:
        if self.world_size is not None:
            return
        if dist.is_available() and dist.is_initialized():
            self.world_size = dist.get_world_size(self.group)
            self.rank = dist.get_rank(self.group)
            if self.rank < 0:
                raise ShardingError("shard_state=True: this process is not a member of the given process_group")
        else:
            self.world_size, self.rank = 1, 0
        self.loads = [0] * self.world_size

    @property
    def engaged(self) -> bool:
        """True when the state is really divided (a process group of 2 or more ranks)."""
        self._resolve()
        return self.world_size > 1

    def global_rank(self, rank: int) -> int:
        """The global rank of ``rank`` of this optimizer's process group."""
        return rank if self.group is None else dist.get_global_rank(self.group, rank)

    def collective(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, group=self.group, **kwargs)
        except (RuntimeError, ValueError) as e:  # DistBackendError / DistNetworkError are RuntimeErrors
            raise ShardingError(
                f"sharded optimizer, rank {self.rank} of {self.world_size}: {what} failed; a peer rank "
                f"probably exited, crashed or timed out (the process group's timeout bounds every "
                f"wait): {type(e).__name__}: {first_line(e)}"
            ) from e

    # --------------------------------------------------------- partition
    def _ensure_partition(self) -> None:
        opt = self._opt
        new = [(name, p) for p, name in opt.param_names.items() if name not in self.owners]
        if not new:
            return
        devices = {p.device for p in opt.param_names}
        if len(devices) != 1:
            raise ShardingError(
                f"shard_state=True needs every parameter on one device per rank, got {sorted(map(str, devices))}"
            )
        self.device = devices.pop()
        partition([(name, p.numel()) for name, p in new], self.world_size, self.owners, self.loads)
        self._check_same_everywhere()

    def _check_same_everywhere(self) -> None:
        """One-time all-gather of (name, shape, dtype, owner): every rank must agree."""
        opt = self._opt
        mine = [
            (name, tuple(p.shape), str(p.dtype), self.owners[name])
            for p, name in sorted(opt.param_names.items(), key=lambda pn: pn[1])
        ]
        everyone: list = [None] * self.world_size
        self.collective(
            "checking that all ranks have the same parameters (all_gather_object)",
            dist.all_gather_object,
            everyone,
            mine,
        )
        for r, theirs in enumerate(everyone):
            if theirs != mine:
                diff = sorted(set(map(repr, mine)) ^ set(map(repr, theirs)))[:4]
                raise ShardingError(
                    f"sharded optimizer: rank {r} and rank {self.rank} have different parameters "
                    f"(name, shape, dtype, owner); first differences: {'; '.join(diff)}"
                )

    def owns(self, p: torch.Tensor) -> bool:
        """Whether this rank keeps the state of ``p`` and updates it (always, at world size 1)."""
        self._resolve()
        if self.world_size == 1:
            return True
        self._ensure_partition()
        return self.owners[self._opt.param_names[p]] == self.rank

    def _buckets(self):
        """``[(dtype, [params of rank 0, params of rank 1, ...])]``: the syncable parameters
        by dtype and owner, each list in name order (the same on every rank)."""
        opt = self._opt
        key = tuple((id(p), _syncable(p), p.dtype) for p in opt.param_names)
        if key != self._layout_key:
            by_dtype: dict[torch.dtype, list[list]] = {}
            for p, name in sorted(opt.param_names.items(), key=lambda pn: pn[1]):
                if _syncable(p):
                    segs = by_dtype.setdefault(p.dtype, [[] for _ in range(self.world_size)])
                    segs[self.owners[name]].append(p)
            self._layout = sorted(by_dtype.items(), key=lambda kv: str(kv[0]))
            self._layout_key = key
        return self._layout

    # ------------------------------------------------------ the pipeline
    def own_masters(self, state_dict, rename):
        """``state_dict`` with its ``master_weights`` limited to this rank's parameters
        (what a loaded state dict contributes to this rank; the rest is not kept)."""
        masters = state_dict.get("master_weights")
        if not isinstance(masters, Mapping) or not self.engaged:
            return state_dict
        by_name = {name: p for p, name in self._opt.param_names.items()}
        mine = {k: v for k, v in masters.items() if rename(k) not in by_name or self.owns(by_name[rename(k)])}
        return {**state_dict, "master_weights": mine}

    def own_pairs(self, pairs):
        """This rank's shard of the (prepared) pairs, with gradients averaged over the
        ranks when ``grad_reduction='reduce'``; in the optimizer's parameter order.

        ``pairs`` is None when this rank's prepare stage skips the update (a
        non-finite gradient with ``nonfinite='skip'``, a GradScaler overflow). With
        ``'reduce'`` the ranks agree inside the reduce-scatter (one extra element): if
        any rank skips, all do (the average would be non-finite), and None is returned
        on every rank (and counted in ``skipped_steps`` there by the optimizer). With ``'none'`` the
        gradients are the same on every rank (DDP), so is the decision.
        """
        self._ensure_partition()
        names = self._opt.param_names
        if self.grad_reduction == "none":
            return None if pairs is None else [(p, g) for p, g in pairs if self.owners[names[p]] == self.rank]
        skip = pairs is None
        grads = {}
        for p, g in pairs or ():
            if not _syncable(p):
                raise ValueError(
                    f"grad_reduction='reduce' cannot average the gradient of {names[p]!r}: the parameter "
                    f"does not require grad or is not trainable"
                )
            grads[p] = g
        order = {p: i for i, p in enumerate(names)}
        out, skipped = [], False
        for dtype, segs in self._buckets():
            length = max(sum(p.numel() for p in seg) + len(seg) + 1 for seg in segs)
            flat = torch.empty(self.world_size * length, dtype=dtype, device=self.device)
            for r, seg in enumerate(segs):
                offset = r * length
                for p in seg:
                    g, part = grads.get(p), flat[offset : offset + p.numel()]
                    if g is None:
                        part.zero_()
                    else:  # pre-divided, as DDP does (so the two agree bit for bit)
                        torch.div((g.to_dense() if g.is_sparse else g).reshape(-1).to(dtype), self.world_size, out=part)
                    offset += p.numel()
                flat[offset : offset + len(seg) + 1] = torch.tensor([p in grads for p in seg] + [skip], dtype=dtype)
                flat[offset + len(seg) + 1 : (r + 1) * length].zero_()
            mine = torch.empty(length, dtype=dtype, device=self.device)
            self.collective(
                f"gradient reduce-scatter ({dtype}, {length} elements per rank)",
                dist.reduce_scatter,
                mine,
                list(flat.chunk(self.world_size)),
                op=dist.ReduceOp.SUM,
            )
            seg = segs[self.rank]
            flags = mine[sum(p.numel() for p in seg) :].tolist()
            skipped = skipped or flags[len(seg)] > 0  # some rank skips this update
            offset = 0
            for i, p in enumerate(seg):
                if flags[i] > 0:  # some rank had a gradient; back in the dtype the prepare stage gave it
                    g = mine[offset : offset + p.numel()].view_as(p)
                    out.append((p, g.to(grads[p].dtype) if p in grads else g))
                offset += p.numel()
        if skipped:
            return None
        out.sort(key=lambda pg: order[pg[0]])
        return out

    def _sum_across(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self.device)
        self.collective("global-norm all-reduce", dist.all_reduce, t, op=dist.ReduceOp.SUM)
        return t

    def _across(self, clip) -> dict:
        """A global norm's keyword: its squared norm is summed over ALL ranks' shards."""
        return {"sum_across": self._sum_across} if isinstance(clip, ClipGradByGlobalNorm) else {}

    def clip_plan(self, clip, grads, need_clip):
        """``clip``'s plan (one ClipStep per gradient of the shard; ``need_clip`` one flag
        each), a global norm taken over all ranks. None when the clip has no plan."""
        return clip.plan(grads, need_clip, **self._across(clip))

    def clip(self, clip, grads, need_clip):
        """The shard's gradients clipped, a global norm taken over all ranks."""
        return clip.clip_tensors(grads, need_clip, **self._across(clip))

    @torch.no_grad()
    def sync_params(self) -> None:
        """Every syncable parameter from its owner: one broadcast per owner and dtype
        (on gloo, N broadcasts move the same bytes as one all-gather, without its
        padding, and measured faster; see docs/distributed.md)."""
        for dtype, segs in self._buckets():
            for owner, seg in enumerate(segs):
                if not seg:
                    continue
                if owner == self.rank:
                    flat = torch.cat([p.detach().reshape(-1) for p in seg])
                else:
                    flat = torch.empty(sum(p.numel() for p in seg), dtype=dtype, device=self.device)
                self.collective(
                    f"parameter broadcast from rank {owner} ({dtype}, {flat.numel()} elements)",
                    dist.broadcast,
                    flat,
                    src=self.global_rank(owner),
                )
                if owner != self.rank:
                    offset = 0
                    for p in seg:
                        p.detach().copy_(flat[offset : offset + p.numel()].view_as(p))
                        offset += p.numel()
