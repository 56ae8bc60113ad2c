"""Output folders of the commands: never overwrite a previous run's results silently.

* ``--out`` given: the folder is used if it is new or holds none of the command's result
  files; results already there are replaced only with ``--overwrite``.
* ``--out`` not given: each run gets its own folder, the default name or, when that one
  already holds results, the first free ``<name>-2``, ``<name>-3``, ...

A path that exists and is not a folder is refused. Checks run before any training, so
a long run cannot fail at its end for a folder it was never allowed to write.
"""

from __future__ import annotations

import contextlib
import os

from .config import ConfigError

__all__ = ["claim_out", "claimed_out", "check_checkpoint_dir"]


def _results_in(folder: str, results: tuple[str, ...]) -> list[str]:
    return [name for name in results if os.path.lexists(os.path.join(folder, name))]


def _usable(folder: str, key: str) -> None:
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise ConfigError(f"{key} {folder!r} exists and is not a folder")


def claim_out(folder: str, *, given: bool, overwrite: bool, results: tuple[str, ...], key: str = "out") -> str:
    """The folder this run writes its ``results`` to (created); see the module docstring."""
    folder = os.path.expanduser(folder)
    if given:
        _usable(folder, key)
        found = _results_in(folder, results) if os.path.isdir(folder) else []
        if found and not overwrite:
            raise ConfigError(
                f"{key} {folder!r} already holds the results of a run ({', '.join(found)}); pass "
                "--overwrite to replace them or choose another folder"
            )
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"{key} {folder!r}: cannot create the folder: {e.strerror or e}") from None
        return folder
    for n in range(1, 10_000):
        candidate = folder if n == 1 else f"{folder}-{n}"
        if os.path.lexists(candidate) and (not os.path.isdir(candidate) or _results_in(candidate, results)):
            continue
        try:
            os.makedirs(candidate, exist_ok=os.path.isdir(candidate))
        except FileExistsError:  # another run took it just now
            continue
        except OSError as e:
            raise ConfigError(f"{key} {candidate!r}: cannot create the folder: {e.strerror or e}") from None
        return candidate
    raise ConfigError(f"{key}: {folder!r}-2 ... -9999 all hold results; pass --out")


def check_checkpoint_dir(folder: str | None) -> None:
    if folder is not None:
        _usable(os.path.expanduser(folder), "checkpoint_dir")


@contextlib.contextmanager
def claimed_out(folder: str, *, given: bool, overwrite: bool, results: tuple[str, ...], key: str = "out"):
    """:func:`claim_out` for a ``with`` block: a folder it created is removed again if the
    block fails and left it empty."""
    existed = given and os.path.isdir(os.path.expanduser(folder))
    path = claim_out(folder, given=given, overwrite=overwrite, results=results, key=key)
    try:
        yield path
    except BaseException:
        if not existed:
            try:
                os.rmdir(path)  # only when empty
            except OSError:
                pass
        raise
