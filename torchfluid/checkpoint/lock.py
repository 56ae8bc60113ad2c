"""An advisory, non-blocking, exclusive lock on a file: ``fcntl.flock`` on POSIX,
``msvcrt.locking`` on Windows. The lock belongs to the open file, so it is released
when the holder closes it or its process exits (also on ``kill -9``); the file itself
stays (deleting a lock file races with a process about to take it).

The holder writes ``pid@host`` and a description into the file, so a second process
that fails to take the lock can name the first one. On a file system without locks
(``flock`` answers ENOLCK / EOPNOTSUPP / ENOSYS) the lock is skipped with a warning.
"""

from __future__ import annotations

import contextlib
import errno
import os
import warnings

from .atomic import this_host

__all__ = ["FileLock", "LockHeldError"]


class LockHeldError(RuntimeError):
    """Another open file (usually another process) holds the lock."""


_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)


def _try_lock(fd: int) -> bool | None:
    """True: locked; False: another holder; None: this file system has no locks."""
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in _UNSUPPORTED:
            return None
        raise
    return True


class FileLock:
    """``FileLock(path, what).acquire()`` takes the lock or raises :class:`LockHeldError`
    naming the holder; ``release()`` (or closing the process) gives it back."""

    def __init__(self, path: str, what: str):
        self.path, self.what = path, what
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, note: str = "") -> None:
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        locked = _try_lock(fd)
        if locked is None:
            warnings.warn(
                f"{self.path}: the file system does not support locks; {self.what} is not protected "
                "against a second writer",
                RuntimeWarning,
                stacklevel=3,
            )
        elif not locked:
            try:
                holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "another process"
            except OSError:
                holder = "another process"
            finally:
                os.close(fd)
            raise LockHeldError(
                f"{self.what} is in use by {holder} (lock file {self.path}); two writers in one folder "
                "would delete and overwrite each other's files. Wait for it to finish or use another folder"
            )
        self._fd = fd
        text = f"process {os.getpid()} on host {this_host()}{f' ({note})' if note else ''}"
        with contextlib.suppress(OSError):
            if os.name == "nt":  # pragma: no cover - the locked first byte must stay in place
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, text.encode().ljust(256)[:256])
            else:
                os.ftruncate(fd, 0)
                os.pwrite(fd, text.encode(), 0)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if os.name == "nt":  # pragma: no cover
            import msvcrt

            with contextlib.suppress(OSError):
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        os.close(fd)  # closing releases a flock

    def __del__(self):
        with contextlib.suppress(Exception):
            self.release()
