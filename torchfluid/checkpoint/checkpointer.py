"""``Checkpointer``: save every N steps, keep the last K, resume from the newest valid one.

A checkpoint holds the step, the model's and optimizer's state dicts, an optional LR
scheduler's, the RNG states (torch, numpy, python) and user extras, in the safe format
of :mod:`torchfluid.checkpoint.format`. Resuming restores all of them, so on CPU a
resumed run is bit-identical to an uninterrupted one. Files that are truncated or
corrupted (a crash mid-save cannot produce one, but a disk can) are skipped with a
warning, and stale temporary files of interrupted saves are removed.
"""

from __future__ import annotations

import copy
import os
import re
import warnings

from .format import CheckpointError, load, save
from .rng import get_rng_state, set_rng_state

__all__ = ["Checkpointer", "load_into"]

_NAME = re.compile(r"^(?P<prefix>.+)-(?P<step>\d{8,})\.tfckpt$")


def load_into(obj, state):
    """model / optimizer / scheduler: the object's own loader (torch or fluid names)."""
    for method in ("set_state_dict", "load_state_dict", "set_dict"):
        fn = getattr(obj, method, None)
        if callable(fn):
            return fn(state)
    raise TypeError(f"{type(obj).__name__} has no set_state_dict/load_state_dict")


class Checkpointer:
    """Periodic, rotating, resumable checkpoints in ``dirname``.

    Args:
        dirname: folder of the checkpoints (created when needed).
        every: save when ``step % every == 0`` (``save(..., force=True)`` always saves).
        keep: how many of the newest checkpoints to keep (>= 1).
        prefix: file names are ``<prefix>-<step:08d>.tfckpt``.
    """

    def __init__(self, dirname: str | os.PathLike, every: int = 1, keep: int = 3, prefix: str = "ckpt"):
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be an int >= 1, got {every!r}")
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
            raise ValueError(f"keep must be an int >= 1, got {keep!r}")
        if not isinstance(prefix, str) or not prefix or "/" in prefix:
            raise ValueError(f"prefix must be a non-empty file-name prefix, got {prefix!r}")
        self.dirname = os.fspath(dirname)
        self.every, self.keep, self.prefix = every, keep, prefix

    def path_for(self, step: int) -> str:
        return os.path.join(self.dirname, f"{self.prefix}-{step:08d}.tfckpt")

    def checkpoints(self) -> list[tuple[int, str]]:
        """``(step, path)`` of every checkpoint file present, oldest first."""
        if not os.path.isdir(self.dirname):
            return []
        found = []
        for name in os.listdir(self.dirname):
            m = _NAME.match(name)
            if m and m.group("prefix") == self.prefix:
                found.append((int(m.group("step")), os.path.join(self.dirname, name)))
        return sorted(found)

    def save(self, step: int, *, model=None, optimizer=None, scheduler=None, extra=None,
             force: bool = False) -> str | None:
        """Save if ``step`` is due (or ``force``); returns the path written or None."""
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError(f"step must be an int >= 0, got {step!r}")
        if not force and step % self.every:
            return None
        state = {"step": step, "rng": get_rng_state(), "extra": extra}
        for key, obj in (("model", model), ("optimizer", optimizer), ("scheduler", scheduler)):
            if obj is not None:
                state[key] = obj.state_dict()
        path = self.path_for(step)
        save(state, path)
        for _, old in self.checkpoints()[: -self.keep]:
            os.remove(old)
        self._remove_stale_temporaries()
        return path

    def _remove_stale_temporaries(self) -> None:
        for name in os.listdir(self.dirname):
            if name.startswith(f".{self.prefix}-") and name.endswith(".tmp"):
                try:
                    os.remove(os.path.join(self.dirname, name))
                except FileNotFoundError:
                    pass

    def latest(self, map_location=None) -> dict | None:
        """The newest checkpoint that loads cleanly (damaged ones are skipped with a warning)."""
        for step, path in reversed(self.checkpoints()):
            try:
                return load(path, map_location=map_location)
            except CheckpointError as e:
                warnings.warn(f"skipping damaged checkpoint: {e}", RuntimeWarning, stacklevel=2)
        return None

    def resume(self, *, model=None, optimizer=None, scheduler=None, map_location=None,
               restore_rng: bool = True) -> dict | None:
        """Restore the newest valid checkpoint into the given objects; returns its contents
        (``state['step']`` is the step to continue after) or None when there is none.

        All-or-nothing: if any part fails to load, the objects already restored are put
        back as they were and the error is raised.
        """
        if not os.path.isdir(self.dirname):
            return None
        self._remove_stale_temporaries()
        state = self.latest(map_location)
        if state is None:
            return None
        targets = [(k, o) for k, o in (("model", model), ("optimizer", optimizer), ("scheduler", scheduler))
                   if o is not None]
        for key, _ in targets:
            if key not in state:
                raise CheckpointError(f"{self.path_for(state['step'])}: has no {key} state to restore")
        backups = []
        try:
            for key, obj in targets:
                backups.append((obj, copy.deepcopy(obj.state_dict())))
                load_into(obj, state[key])
        except BaseException:
            for obj, backup in reversed(backups):
                load_into(obj, backup)
            raise
        if restore_rng:
            set_rng_state(state["rng"])
        return state

