"""``Checkpointer``: save every N steps, keep the last K, resume from the newest valid one.

A checkpoint holds the step, the run id, the model's and optimizer's state dicts, an
optional LR scheduler's, the RNG states (torch, numpy, python) and user extras, in the
safe format of :mod:`torchfluid.checkpoint.format`. Resuming restores all of them, so on
CPU a resumed run is bit-identical to an uninterrupted one. Files that are truncated,
corrupted or unreadable (a crash mid-save cannot produce one, but a disk can) are
skipped with a warning; so is a directory named like a checkpoint.

Rules of a checkpoint folder (per file-name prefix; ``ckpt`` and ``ckpt-b`` are two
independent sets of files in one folder):

* **One writer.** ``save()`` and ``resume()`` take an advisory lock on
  ``.<prefix>.lock`` (``fcntl.flock``; ``msvcrt.locking`` on Windows) and hold it until
  :meth:`Checkpointer.close` (or the process ends, ``kill -9`` included). A second
  process (or a second ``Checkpointer`` object) on the same folder and prefix fails
  fast with :class:`CheckpointFolderError` naming the process that holds it.
  :meth:`Checkpointer.latest` only reads and takes no lock.
* **One run.** Every checkpoint and the folder's index ``<prefix>-index.json`` carry
  the run id. A fresh ``Checkpointer`` refuses (``CheckpointFolderError``) to save into
  a folder holding another run's checkpoints, unless it resumed that run first
  (:meth:`~Checkpointer.resume` adopts the run id of what it restored) or was built
  with ``overwrite=True`` (the other run's checkpoints of this prefix are deleted).
* **Newest is kept.** The index lists the steps in the order they were saved; "newest"
  means saved last (a checkpoint written after the index was last updated counts as
  newer than every indexed one). Rotation keeps the ``keep`` newest and never deletes
  the save just written, whatever its step number.
* **Temporaries.** A save in progress is a temporary ``.<file>.<pid>@<host>.<rand>.tmp``
  (:func:`~torchfluid.checkpoint.atomic.atomic_write`). Only temporaries of this prefix
  whose process is gone (same host, pid not running) are removed; another host's are
  left alone.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import uuid
import warnings

from .._checks import check_bool, check_int
from .atomic import atomic_write, parse_temp_name, temp_owner_alive
from .format import CheckpointError, load, save
from .lock import FileLock, LockHeldError
from .rng import get_rng_state, set_rng_state

__all__ = ["Checkpointer", "CheckpointFolderError", "load_into", "restore_all"]

_NAME = re.compile(r"^(?P<prefix>.+)-(?P<step>\d{8,})\.tfckpt$")
_OLD_TEMP = re.compile(r"^\.(?P<target>.+)\.[0-9a-f]{12}\.tmp$")  # before pid@host was in the name
INDEX_FORMAT = "torchfluid-checkpoint-index"


class CheckpointFolderError(RuntimeError):
    """The folder is being written by another process, or holds another run's checkpoints."""


def load_into(obj, state):
    """model / optimizer / scheduler: the object's own loader (torch or fluid names)."""
    for method in ("set_state_dict", "load_state_dict", "set_dict"):
        fn = getattr(obj, method, None)
        if callable(fn):
            return fn(state)
    raise TypeError(f"{type(obj).__name__} has no set_state_dict/load_state_dict")


def restore_all(pairs) -> None:
    """:func:`load_into` each ``(obj, state)``, all or nothing: if one fails, the objects
    already loaded get their previous state back and the error is raised."""
    backups = []
    try:
        for obj, state in pairs:
            backups.append((obj, copy.deepcopy(obj.state_dict())))
            load_into(obj, state)
    except BaseException:
        for obj, backup in reversed(backups):
            load_into(obj, backup)
        raise


class _RNG:
    """The process's random number generators as an object :func:`restore_all` loads."""

    state_dict = staticmethod(get_rng_state)

    def __init__(self, where: str):
        self.where = where

    def load_state_dict(self, state) -> None:
        try:
            set_rng_state(state)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
            raise CheckpointError(f"{self.where}: malformed RNG state: {e}") from None


class Checkpointer:
    """Periodic, rotating, resumable checkpoints in ``dirname`` (rules: module docstring).

    Args:
        dirname: folder of the checkpoints (created when needed).
        every: save when ``step % every == 0`` (``save(..., force=True)`` always saves).
        keep: how many of the newest checkpoints to keep (>= 1).
        prefix: file names are ``<prefix>-<step:08d>.tfckpt``.
        run_id: this run's id (default: a new random one); a folder whose index has the
            same id is this run's and is written without ``resume()``.
        overwrite: a fresh run may delete another run's checkpoints of this prefix
            (default False: it refuses to save into such a folder).
    """

    def __init__(
        self,
        dirname: str | os.PathLike,
        every: int = 1,
        keep: int = 3,
        prefix: str = "ckpt",
        *,
        run_id: str | None = None,
        overwrite: bool = False,
    ):
        every = check_int("every", every, lo=1)
        keep = check_int("keep", keep, lo=1)
        if not isinstance(prefix, str) or not prefix or "/" in prefix or "\\" in prefix or prefix.startswith("."):
            raise ValueError(f"prefix must be a non-empty file-name prefix (no '/', no leading '.'), got {prefix!r}")
        if run_id is not None and (not isinstance(run_id, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", run_id)):
            raise ValueError(f"run_id must be 1 to 64 characters of [A-Za-z0-9_.-], got {run_id!r}")
        check_bool("overwrite", overwrite)
        self.dirname = os.fspath(dirname)
        self.every, self.keep, self.prefix = every, keep, prefix
        self.run_id = run_id or uuid.uuid4().hex
        self.overwrite = overwrite
        self._joined = False  # may write into the folder (resumed it, or checked it holds no other run)
        self._lock = FileLock(
            os.path.join(self.dirname, f".{prefix}.lock"), f"checkpoint folder {self.dirname!r} (prefix {prefix!r})"
        )

    # -- files -------------------------------------------------------------------------
    def path_for(self, step: int) -> str:
        return os.path.join(self.dirname, f"{self.prefix}-{step:08d}.tfckpt")

    @property
    def index_path(self) -> str:
        return os.path.join(self.dirname, f"{self.prefix}-index.json")

    def _read_index(self) -> dict | None:
        try:
            with open(self.index_path, "rb") as f:
                index = json.loads(f.read(1 << 20).decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            warnings.warn(f"ignoring unreadable checkpoint index {self.index_path}: {e}", RuntimeWarning, stacklevel=3)
            return None
        ok = (
            isinstance(index, dict)
            and index.get("format") == INDEX_FORMAT
            and isinstance(index.get("run_id"), str)
            and isinstance(index.get("saves"), list)
            and all(isinstance(s, int) and not isinstance(s, bool) for s in index["saves"])
        )
        if not ok:
            warnings.warn(f"ignoring malformed checkpoint index {self.index_path}", RuntimeWarning, stacklevel=3)
            return None
        return index

    def checkpoints(self) -> list[tuple[int, str]]:
        """``(step, path)`` of every checkpoint file present, oldest save first (see the
        module docstring: index order, then files the index does not list, by step)."""
        try:
            entries = list(os.scandir(self.dirname))
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = {}
        for entry in entries:
            m = _NAME.match(entry.name)
            if not m or m.group("prefix") != self.prefix:
                continue
            try:
                is_file = entry.is_file()
            except OSError:
                is_file = False
            if not is_file:
                warnings.warn(
                    f"skipping {entry.path}: named like a checkpoint but not a file", RuntimeWarning, stacklevel=2
                )
                continue
            found[int(m.group("step"))] = entry.path
        index = self._read_index()
        order = [] if index is None else list(dict.fromkeys(s for s in index["saves"] if s in found))
        listed = set(order)
        order += sorted(s for s in found if s not in listed)
        return [(s, found[s]) for s in order]

    def _remove_stale_temporaries(self) -> None:
        """Remove temporaries of this prefix whose writer is gone (called with the lock held)."""
        try:
            names = os.listdir(self.dirname)
        except FileNotFoundError:
            return
        index_name = os.path.basename(self.index_path)
        for name in names:
            parsed = parse_temp_name(name)
            if parsed is not None:
                target, pid, host = parsed
                stale = not temp_owner_alive(pid, host)
            else:
                old = _OLD_TEMP.match(name)
                if old is None:
                    continue
                target, stale = old.group("target"), True  # no owner recorded; the lock says no writer is active
            m = _NAME.match(target)
            ours = (m is not None and m.group("prefix") == self.prefix) or target == index_name
            if ours and stale:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(self.dirname, name))

    # -- the folder's owner --------------------------------------------------------------
    def _acquire(self) -> None:
        if self._lock.held:
            return
        os.makedirs(self.dirname, exist_ok=True)
        try:
            self._lock.acquire(note=f"run {self.run_id}")
        except LockHeldError as e:
            raise CheckpointFolderError(str(e)) from None

    def _join(self) -> None:
        """Check (once) that the folder holds no other run's checkpoints; with
        ``overwrite=True`` delete them."""
        if self._joined:
            return
        existing = self.checkpoints()
        index = self._read_index()
        if existing and (index is None or index["run_id"] != self.run_id):
            other = "an unknown run" if index is None else f"run {index['run_id']}"
            steps = sorted(s for s, _ in existing)
            if not self.overwrite:
                raise CheckpointFolderError(
                    f"{self.dirname!r} holds {len(existing)} checkpoint(s) of {other} (prefix {self.prefix!r}, "
                    f"steps {steps[0]}..{steps[-1]}); call resume() to continue that run, pass overwrite=True "
                    "to delete them, or use another folder or prefix"
                )
            for _, path in existing:
                os.remove(path)
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.index_path)
        self._joined = True

    def close(self) -> None:
        """Release the folder's lock (another process may then write there)."""
        self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- save / load -----------------------------------------------------------------------
    def save(
        self, step: int, *, model=None, optimizer=None, scheduler=None, extra=None, force: bool = False
    ) -> str | None:
        """Save if ``step`` is due (or ``force``); returns the path written or None."""
        step = check_int("step", step, lo=0)
        if not force and step % self.every:
            return None
        self._acquire()
        self._join()
        state = {"step": step, "run_id": self.run_id, "rng": get_rng_state(), "extra": extra}
        for key, obj in (("model", model), ("optimizer", optimizer), ("scheduler", scheduler)):
            if obj is not None:
                state[key] = obj.state_dict()
        path = self.path_for(step)
        save(state, path)
        order = [s for s, _ in self.checkpoints() if s != step] + [step]
        for old_step, old in self.checkpoints():
            if old_step != step and old_step not in order[-self.keep :]:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(old)
        index = {"format": INDEX_FORMAT, "version": 1, "prefix": self.prefix, "run_id": self.run_id}
        atomic_write(self.index_path, json.dumps({**index, "saves": order[-self.keep :]}).encode())
        self._remove_stale_temporaries()
        return path

    def latest(self, map_location=None) -> dict | None:
        """The newest checkpoint that loads cleanly (damaged or unreadable ones are skipped
        with a warning). Only reads: takes no lock."""
        for _, path in reversed(self.checkpoints()):
            try:
                state = load(path, map_location=map_location)
            except FileNotFoundError:  # rotated away by the writer meanwhile
                continue
            except CheckpointError as e:
                warnings.warn(f"skipping damaged checkpoint: {e}", RuntimeWarning, stacklevel=2)
                continue
            step = state.get("step") if isinstance(state, dict) else None
            if not isinstance(step, int) or isinstance(step, bool) or not isinstance(state.get("rng"), dict):
                warnings.warn(
                    f"skipping damaged checkpoint: {path}: not a Checkpointer checkpoint (no step/rng)",
                    RuntimeWarning,
                    stacklevel=2,
                )
                continue
            return state
        return None

    def resume(
        self, *, model=None, optimizer=None, scheduler=None, map_location=None, restore_rng: bool = True
    ) -> dict | None:
        """Restore the newest valid checkpoint into the given objects; returns its contents
        (``state['step']`` is the step to continue after) or None when there is none.

        Takes the folder's lock and continues the run found there (its run id becomes
        this Checkpointer's). All-or-nothing: if any part fails to load, the objects
        already restored (and the RNG states) are put back as they were and the error is raised.
        """
        if not os.path.isdir(self.dirname):
            return None
        self._acquire()
        self._remove_stale_temporaries()
        state = self.latest(map_location)
        if state is None:
            self._joined = True
            return None
        objects = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
        targets = [(key, obj) for key, obj in objects.items() if obj is not None]
        for key, _ in targets:
            if key not in state:
                raise CheckpointError(f"{self.path_for(state['step'])}: has no {key} state to restore")
        pairs = [(obj, state[key]) for key, obj in targets]
        if restore_rng:
            pairs.append((_RNG(self.path_for(state["step"])), state["rng"]))
        restore_all(pairs)
        run_id = state.get("run_id")
        if isinstance(run_id, str) and run_id:
            self.run_id = run_id
        else:  # written before run ids: continue under the folder index's id, if any
            index = self._read_index()
            if index is not None:
                self.run_id = index["run_id"]
        self._joined = True
        return state
