"""Atomic file writes: a crash at any point leaves either the old file or the new one.

The bytes go to a temporary file in the destination's folder, are flushed and fsync'ed,
then ``os.replace`` renames it over the destination (atomic on POSIX and Windows) and
the folder is fsync'ed so the rename itself survives a power cut. A failed write
removes its temporary file.

The temporary file is named ``.<name>.<pid>@<host>.<random>.tmp``: the writing process
and its host are in the name, so a cleaner can tell a live process's save in progress
(keep it) from the leftover of a process that died mid-save (:func:`temp_owner_alive`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
from typing import Callable, IO

__all__ = ["atomic_write", "parse_temp_name", "temp_owner_alive", "this_host"]

_TEMP = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9_-]+)\.[0-9a-f]{12}\.tmp$")


def this_host() -> str:
    """This machine's name as it appears in temporary file names (``[A-Za-z0-9_-]`` only)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname() or "localhost")[:64] or "localhost"


def parse_temp_name(name: str) -> tuple[str, int, str] | None:
    """``(target file name, pid, host)`` of a temporary file written by :func:`atomic_write`, else None."""
    m = _TEMP.match(name)
    return (m.group("target"), int(m.group("pid")), m.group("host")) if m else None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":  # pragma: no cover - no signal 0 on Windows
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        ctypes.windll.kernel32.CloseHandle(handle)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    except OverflowError:
        return False
    return True


def temp_owner_alive(pid: int, host: str) -> bool:
    """Whether the process that writes a temporary file may still be running: True for a
    live process of this host and for any process of another host (which cannot be checked)."""
    if host != this_host():
        return True
    return pid == os.getpid() or _pid_alive(pid)


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None] | bytes) -> None:
    """Write ``path`` atomically; ``write`` is the bytes or a function given the open file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}@{this_host()}.{secrets.token_hex(6)}.tmp")
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
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)
