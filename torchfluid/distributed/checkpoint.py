"""Checkpoints of data-parallel runs: one file per rank, resumable at any world size.

A sharded optimizer's ``state_dict()`` holds only its rank's shard, keyed by parameter
name (``<name>_mean_square_0``, ...), so the shards of a run are disjoint dicts: merging
them is a dict union (:func:`merge_shards`) and re-sharding on load is filtering (each
rank keeps the entries it owns). Files use the safe format of
:mod:`torchfluid.checkpoint` (``weights_only`` loading, SHA-256, atomic writes).

:class:`ShardedCheckpointer` layout::

    <dirname>/<prefix>-<step:08d>/rank-<r:05d>-of-<N:05d>.tfckpt

Every rank writes its own file: ``step``, ``rank``, ``world_size``, its RNG states and,
when the optimizer is sharded, its optimizer shard; rank 0 adds the model (replicated,
so written once; a ``DistributedDataParallel`` is unwrapped to its ``module`` so the
keys do not depend on the wrapper), the scheduler, the extras and, for an unsharded
optimizer, the optimizer's full state. A checkpoint is *complete* when all N files are
there; as each file is written atomically, a crash during a save leaves an incomplete
folder that resume skips. No barrier is needed (see :meth:`ShardedCheckpointer.save`).
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from collections.abc import Mapping, Sequence

import torch
import torch.distributed as dist

from .._checks import check_int
from ..checkpoint.checkpointer import restore_all
from ..checkpoint.format import CheckpointError, load, save
from ..checkpoint.rng import get_rng_state, set_rng_state
from .sharding import ShardingError

__all__ = ["ShardedCheckpointer", "merge_shards", "consolidated_state_dict", "state_nbytes"]

_RESERVED = ("LR_Scheduler", "param_groups", "master_weights", "stochastic_rounding")
_FOLDER = re.compile(r"^(?P<prefix>.+)-(?P<step>\d{8,})$")
_FILE = re.compile(r"^rank-(?P<rank>\d{5})-of-(?P<world>\d{5})\.tfckpt$")


def state_nbytes(optimizer) -> int:
    """Bytes of the optimizer state this process holds (its shard when sharded): the
    accumulators and, with ``multi_precision``, the float32 master weights."""
    tensors = [t for st in optimizer.state.values() for t in st.values() if isinstance(t, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors + list(optimizer.master_weights().values()))


def _sharded(optimizer) -> bool:
    shard = optimizer.sharding
    return shard is not None and shard.engaged


def merge_shards(shards: Sequence[Mapping]) -> dict:
    """One optimizer state dict from the ``state_dict()`` of every rank of a sharded run
    (what the unsharded optimizer's ``state_dict()`` would have been).

    Accumulator entries are united; a key found in two shards is an error (shards of one
    run are disjoint). ``param_groups``, ``LR_Scheduler`` and ``stochastic_rounding`` must
    be equal in every shard that has them (every rank runs the same schedule and counts the
    same updates); ``master_weights`` dicts are united.
    """
    if isinstance(shards, Mapping) or not isinstance(shards, Sequence) or not shards:
        raise ValueError(f"shards must be a non-empty list of state dicts, got {shards!r:.80}")
    out: dict = {}
    where: dict[str, int] = {}
    shared: dict[str, tuple[int, object]] = {}
    masters: dict = {}
    for i, sd in enumerate(shards):
        if not isinstance(sd, Mapping):
            raise TypeError(f"shards[{i}] must be a state dict, got {type(sd).__name__}")
        for key, value in sd.items():
            if key == "master_weights":
                for name, t in dict(value).items():
                    if name in masters:
                        raise ValueError(f"master_weights[{name!r}] is in more than one shard (shards[{i}] too)")
                    masters[name] = t
            elif key in _RESERVED:
                if key in shared and not _equal(shared[key][1], value):
                    raise ValueError(
                        f"shards[{shared[key][0]}] and shards[{i}] disagree about {key!r}; "
                        f"they are not shards of one run at one step"
                    )
                shared.setdefault(key, (i, value))
            else:
                if key in out:
                    raise ValueError(
                        f"state key {key!r} is in shards[{where[key]}] and shards[{i}]; shards of one run "
                        f"are disjoint (were the files of two runs or two steps mixed?)"
                    )
                out[key], where[key] = value, i
    for key, (_, value) in shared.items():
        out[key] = value
    if masters:
        out["master_weights"] = masters
    return out


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a.cpu(), b.cpu())
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def consolidated_state_dict(optimizer, dst: int = 0) -> dict | None:
    """The full optimizer state dict on rank ``dst`` (None on the other ranks): a
    collective (every rank must call it) gathering every shard. Unsharded or world size
    1: the optimizer's own ``state_dict()`` on every rank."""
    if not _sharded(optimizer):
        return optimizer.state_dict()
    shard = optimizer.sharding
    if not isinstance(dst, int) or isinstance(dst, bool) or not 0 <= dst < shard.world_size:
        raise ValueError(f"dst must be a rank in [0, {shard.world_size}), got {dst!r}")
    own = {k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in optimizer.state_dict().items()}
    gathered = [None] * shard.world_size if shard.rank == dst else None
    shard.collective(
        "gathering the optimizer shards (gather_object)", dist.gather_object, own, gathered, dst=shard.global_rank(dst)
    )
    return merge_shards(gathered) if shard.rank == dst else None


def _own_entries(optimizer, sd: Mapping) -> dict:
    """Drop the accumulator entries of parameters another rank owns (memory: a rank
    never holds more than one file plus its own shard). Everything else is kept, so the
    strict load still reports unknown keys."""
    if not _sharded(optimizer):
        return dict(sd)
    shard = optimizer.sharding
    by_name = {name: p for p, name in optimizer.param_names.items()}
    sd = shard.own_masters(sd, lambda name: name)
    out = {}
    for key, value in sd.items():
        parsed = optimizer.parse_state_key(key) if isinstance(key, str) and key not in _RESERVED else None
        if parsed is not None and parsed[0] in by_name and not shard.owns(by_name[parsed[0]]):
            continue
        out[key] = value
    return out


def _unwrap(model):
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


class ShardedCheckpointer:
    """Per-rank checkpoints every N steps, the last K kept, resumable at any world size.

    Args:
        dirname: folder of the checkpoints (shared by all ranks: every rank reads every
            rank's file on resume).
        every: save when ``step % every == 0`` (``save(..., force=True)`` always saves).
        keep: how many complete checkpoints to keep (>= 1).
        prefix: step folders are ``<prefix>-<step:08d>``.
        process_group: the group whose ranks write files (default: the default group;
            without an initialised group: rank 0 of 1).
    """

    def __init__(
        self, dirname: str | os.PathLike, every: int = 1, keep: int = 3, prefix: str = "ckpt", process_group=None
    ):
        every = check_int("every", every, lo=1)
        keep = check_int("keep", keep, lo=1)
        if not isinstance(prefix, str) or not prefix or "/" in prefix or os.sep in prefix:
            raise ValueError(f"prefix must be a non-empty file-name prefix, got {prefix!r}")
        self.dirname = os.fspath(dirname)
        self.every, self.keep, self.prefix = every, keep, prefix
        self.group = process_group

    # ------------------------------------------------------------ layout
    def _rank_world(self) -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(self.group), dist.get_world_size(self.group)
        return 0, 1

    def folder_for(self, step: int) -> str:
        return os.path.join(self.dirname, f"{self.prefix}-{step:08d}")

    def path_for(self, step: int, rank: int, world_size: int) -> str:
        return os.path.join(self.folder_for(step), f"rank-{rank:05d}-of-{world_size:05d}.tfckpt")

    def _scan(self) -> list[tuple[int, str, int | None]]:
        """``(step, folder, world size if complete else None)`` of every step folder, oldest first."""
        if not os.path.isdir(self.dirname):
            return []
        found = []
        for name in os.listdir(self.dirname):
            m = _FOLDER.match(name)
            folder = os.path.join(self.dirname, name)
            if not (m and m.group("prefix") == self.prefix and os.path.isdir(folder)):
                continue
            files: dict[int, set[int]] = {}
            for f in os.listdir(folder):
                fm = _FILE.match(f)
                if fm:
                    files.setdefault(int(fm.group("world")), set()).add(int(fm.group("rank")))
            complete = [w for w, ranks in files.items() if ranks == set(range(w))]
            found.append((int(m.group("step")), folder, max(complete) if complete else None))
        return sorted(found)

    def checkpoints(self) -> list[tuple[int, str, int]]:
        """``(step, folder, world size)`` of every COMPLETE checkpoint, oldest first."""
        return [(s, f, w) for s, f, w in self._scan() if w is not None]

    def _complete(self, step: int | None) -> list[tuple[int, str, int]]:
        """The complete checkpoints (only ``step``'s, which must exist, when a step is given)."""
        found = [c for c in self.checkpoints() if step is None or c[0] == step]
        if step is not None and not found:
            raise CheckpointError(f"{self.dirname}: no complete checkpoint of step {step}")
        return found

    # -------------------------------------------------------------- save
    def save(
        self, step: int, *, model=None, optimizer=None, scheduler=None, extra=None, force: bool = False
    ) -> str | None:
        """Write this rank's file for ``step`` if due (or ``force``); returns its path or None.

        Every rank must call it (each writes its own file). After writing, each rank
        removes the folders older than the newest ``keep`` complete checkpoints: the
        rank that completes a checkpoint (writes last) always sees it complete, so no
        barrier is needed and exactly ``keep`` complete checkpoints remain.
        """
        step = check_int("step", step, lo=0)
        if not force and step % self.every:
            return None
        rank, world = self._rank_world()
        state = {"step": step, "rank": rank, "world_size": world, "rng": get_rng_state()}
        if optimizer is not None and (rank == 0 or _sharded(optimizer)):
            state["optimizer"] = optimizer.state_dict()
        if rank == 0:
            state["extra"] = extra
            if model is not None:
                state["model"] = _unwrap(model).state_dict()
            if scheduler is not None:
                state["scheduler"] = scheduler.state_dict()
        path = self.path_for(step, rank, world)
        save(state, path)
        self._rotate()
        return path

    def _rotate(self) -> None:
        complete = self.checkpoints()
        if len(complete) <= self.keep:
            return
        oldest_kept = complete[-self.keep][0]
        for step, folder, _ in self._scan():
            if step < oldest_kept:
                shutil.rmtree(folder, ignore_errors=True)

    # ------------------------------------------------------------ resume
    def _load_folder(self, step: int, folder: str, world: int, map_location) -> list[dict]:
        return [load(self.path_for(step, r, world), map_location=map_location) for r in range(world)]

    def _agree(self, step) -> None:
        rank, world = self._rank_world()
        if world == 1:
            return
        everyone: list = [None] * world
        try:
            dist.all_gather_object(everyone, step, group=self.group)
        except RuntimeError as e:
            raise ShardingError(f"rank {rank}: agreeing on the checkpoint to resume failed: {e}") from e
        if len(set(everyone)) != 1:
            raise CheckpointError(
                f"{self.dirname}: the ranks would resume from different steps {everyone} "
                f"(is the folder shared by all ranks?)"
            )

    def resume(
        self,
        *,
        model=None,
        optimizer=None,
        scheduler=None,
        step: int | None = None,
        map_location=None,
        restore_rng: bool = True,
    ) -> dict | None:
        """Restore the newest complete checkpoint (or the one of ``step``) into the given
        objects, whatever world size wrote it; returns ``{'step', 'extra', 'world_size'
        (of the run that saved it), 'rng_restored'}`` or None when there is none.

        The optimizer gets the merged shards, filtered to what this rank owns (an
        unsharded optimizer gets all of it). RNG states are restored only when the
        world size is the one that saved (rank r gets rank r's); at another world size
        each rank keeps its RNG (data order is then the caller's business). Damaged
        checkpoints are skipped with a warning. All-or-nothing: if any part fails to
        load, the objects restored so far are put back and the error is raised. Every
        rank must call it (the ranks check they resume the same step).
        """
        candidates = self._complete(step)
        files = None
        for s, folder, world in reversed(candidates):
            try:
                files = self._load_folder(s, folder, world, map_location)
                break
            except CheckpointError as e:
                if step is not None:
                    raise
                warnings.warn(f"skipping damaged checkpoint: {e}", RuntimeWarning, stacklevel=2)
        self._agree(None if files is None else files[0]["step"])
        if files is None:
            return None
        head = files[0]
        targets = [
            ("model", _unwrap(model), head.get("model")),
            ("scheduler", scheduler, head.get("scheduler")),
        ]
        for key, obj, value in targets:
            if obj is not None and value is None:
                raise CheckpointError(f"{self.folder_for(head['step'])}: has no {key} state to restore")
        opt_state = None
        if optimizer is not None:
            parts = [_own_entries(optimizer, f["optimizer"]) for f in files if "optimizer" in f]
            if not parts:
                raise CheckpointError(f"{self.folder_for(head['step'])}: has no optimizer state to restore")
            opt_state = merge_shards(parts)
        targets.append(("optimizer", optimizer, opt_state))
        restore_all((obj, value) for _, obj, value in targets if obj is not None)
        rank, world = self._rank_world()
        rng_restored = bool(restore_rng and world == head["world_size"])
        if rng_restored:
            set_rng_state(files[rank]["rng"])
        return {
            "step": head["step"],
            "extra": head.get("extra"),
            "world_size": head["world_size"],
            "rng_restored": rng_restored,
        }

    # ------------------------------------------------------------ export
    def export_consolidated(self, path: str | os.PathLike, step: int | None = None) -> dict:
        """Merge the newest complete checkpoint (or ``step``'s) into ONE file at ``path``,
        in :class:`torchfluid.checkpoint.Checkpointer`'s format (``step``, ``model``,
        ``optimizer`` with every shard, ``scheduler``, ``extra``, rank 0's ``rng``): for
        inference or a one-process resume (name it ``Checkpointer(d).path_for(step)`` to
        let ``Checkpointer.resume`` find it). Runs in one process; returns what it wrote.
        """
        candidates = self._complete(step)
        if not candidates:
            raise CheckpointError(f"{self.dirname}: no complete checkpoint")
        s, folder, world = candidates[-1]
        files = self._load_folder(s, folder, world, "cpu")
        head = files[0]
        out = {"step": head["step"], "rng": head["rng"], "extra": head.get("extra")}
        for key in ("model", "scheduler"):
            if key in head:
                out[key] = head[key]
        parts = [f["optimizer"] for f in files if "optimizer" in f]
        if parts:
            out["optimizer"] = merge_shards(parts)
        save(out, path)
        return out
