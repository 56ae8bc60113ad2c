"""Atomic file writes: a crash at any point leaves either the old file or the new one.

The bytes go to a temporary file in the destination's folder, are flushed and fsync'ed,
then ``os.replace`` renames it over the destination (atomic on POSIX and Windows) and
the folder is fsync'ed so the rename itself survives a power cut. A failed write
removes its temporary file.
"""

from __future__ import annotations

import os
import secrets
from typing import Callable, IO

__all__ = ["atomic_write"]


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None] | bytes) -> None:
    """Write ``path`` atomically; ``write`` is the bytes or a function given the open file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # usual permissions (umask applies)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(write, (bytes, bytearray, memoryview)):
                f.write(write)
            else:
                write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(folder)
