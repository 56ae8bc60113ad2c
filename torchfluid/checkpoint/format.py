"""``torchfluid.save`` / ``torchfluid.load``: one safe checkpoint format for both modes.

Format (version 1): a ``torch.save`` zip holding ``{"format": "torchfluid-checkpoint",
"version": 1, "sha256": hex, "payload": uint8 tensor}`` where ``payload`` is itself a
``torch.save`` of the user's object. Both levels are read back ONLY with
``torch.load(weights_only=True)``, which admits tensors, numbers, strings and plain
containers and never executes code from the file; the SHA-256 of the payload catches
truncation and bit rot with a clear error. Writes are atomic
(:func:`torchfluid.checkpoint.atomic.atomic_write`).

Reading is bounded: before ``torch.load`` sees an archive, every record's declared size
is checked against the bytes actually present (``torch.save`` stores records
uncompressed, so a compressed record, a record larger than the file or records that
add up to more than the file are refused). A file can therefore not make the loader
allocate more than a small multiple of its own size (no zip bombs), and every
unreadable file raises :class:`CheckpointError`.

What can be saved: nested dicts / lists / tuples of tensors, numpy arrays (stored as
tensors), Python numbers, strings, bools and None — every state dict torchfluid produces.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import zipfile

import numpy as np
import torch

from .atomic import atomic_write

__all__ = ["save", "load", "to_bytes", "from_bytes", "CheckpointError", "FORMAT", "VERSION"]

FORMAT = "torchfluid-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: names the file and what is wrong."""


def _plain(obj, where="obj"):
    """Numpy arrays -> tensors; reject anything weights_only could not read back."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, torch.Tensor) and type(obj) not in (torch.Tensor, torch.nn.Parameter):
        return obj.detach().as_subclass(torch.Tensor)  # e.g. a dygraph VarBase: weights_only reads plain tensors
    if isinstance(obj, (torch.Tensor, int, float, str, bool, bytes)) or obj is None:
        return obj
    if isinstance(obj, dict):
        return {k: _plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise TypeError(
        f"{where} is a {type(obj).__name__}; a checkpoint holds only tensors, numpy arrays, "
        f"numbers, strings, None and dict/list/tuple of those"
    )


def to_bytes(obj) -> bytes:
    """The file's bytes for ``obj`` (what :func:`save` writes)."""
    inner = io.BytesIO()
    torch.save(_plain(obj), inner)
    payload = inner.getvalue()
    outer = io.BytesIO()
    torch.save(
        {
            "format": FORMAT,
            "version": VERSION,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8),
        },
        outer,
    )
    return outer.getvalue()


def save(obj, path: str | os.PathLike) -> None:
    """Write ``obj`` (a state dict or nested containers of tensors) to ``path`` atomically."""
    atomic_write(path, to_bytes(obj))


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name when the message is empty)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _check_archive(data: bytes, path, what) -> None:
    """Refuse an archive whose records declare more bytes than the file holds."""
    if not data:
        raise CheckpointError(f"{path}: {what} is empty")
    if not data.startswith(b"PK\x03\x04"):
        raise CheckpointError(f"{path}: {what} is not a torch.save archive (not a zip; nothing was unpickled)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError, OverflowError) as e:
        raise CheckpointError(f"{path}: {what} is truncated or corrupted: {first_line(e)}") from None
    except NotImplementedError as e:  # a zip feature torch.save never writes (zipfile: "zip file version 11.0")
        raise CheckpointError(f"{path}: {what} is not a torch.save archive: {first_line(e)}") from None
    total = 0
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
            raise CheckpointError(
                f"{path}: {what} has a compressed record {info.filename!r} "
                "(torch.save stores records uncompressed); refused"
            )
        if info.header_offset + info.file_size > len(data):
            raise CheckpointError(
                f"{path}: {what} is truncated or corrupted: record {info.filename!r} "
                f"declares {info.file_size} bytes past the end of the file"
            )
        total += info.file_size
    if total > len(data):
        raise CheckpointError(
            f"{path}: {what} is corrupted: its records declare {total} bytes, "
            f"more than the {len(data)} bytes of the file"
        )


def _safe_torch_load(data: bytes, path, map_location, what):
    _check_archive(data, path, what)
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path}: refused to load {what}: it holds objects other than tensors and plain "
            f"containers (loading it could execute code): {first_line(e)}"
        ) from None
    except MemoryError:
        raise CheckpointError(f"{path}: {what} is corrupted: it asks for more memory than is available") from None
    except Exception as e:  # anything the reader trips over is a damaged file, never a crash of the caller
        raise CheckpointError(
            f"{path}: {what} is truncated or corrupted: {type(e).__name__}: {first_line(e)}"
        ) from None


def read_bytes(path: str, error: type[Exception], prefix: str) -> bytes:
    """The whole file at ``path``. A missing file raises ``FileNotFoundError``; any other
    ``OSError`` (a directory, no permission, an I/O error) raises
    ``error(f"{prefix}: {type}: {strerror}")``."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise
    except OSError as e:
        raise error(f"{prefix}: {type(e).__name__}: {e.strerror or e}") from None


def load(path: str | os.PathLike, map_location=None):
    """Read a file written by :func:`save`, never executing code from it.

    Raises ``FileNotFoundError`` for a missing file and :class:`CheckpointError` (a
    ValueError) naming the file for a truncated, corrupted, unsafe, foreign or
    wrong-version one.
    """
    path = os.fspath(path)
    return from_bytes(read_bytes(path, CheckpointError, f"{path}: cannot be read"), path, map_location)


def from_bytes(data: bytes, path="<bytes>", map_location=None):
    """Read the bytes of a file written by :func:`save` (:func:`to_bytes`' output), never executing
    code from them; ``path`` names them in errors (:class:`CheckpointError`, as :func:`load`)."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"{path}: a torchfluid checkpoint's bytes expected, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise CheckpointError(f"{path}: empty file (a torchfluid checkpoint was expected)")
    if not data.startswith(b"PK\x03\x04"):
        raise CheckpointError(f"{path}: not a torchfluid checkpoint (not a zip archive; nothing was unpickled)")
    outer = _safe_torch_load(data, path, "cpu", "the checkpoint")
    if not isinstance(outer, dict) or outer.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a torchfluid checkpoint (no '{FORMAT}' header)")
    if outer.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {outer.get('version')!r} is not supported "
            f"(this torchfluid reads version {VERSION})"
        )
    payload = outer.get("payload")
    if not isinstance(payload, torch.Tensor) or payload.dtype != torch.uint8:
        raise CheckpointError(f"{path}: checkpoint payload is missing or malformed")
    if payload.dim() != 1 or not payload.is_contiguous():
        raise CheckpointError(f"{path}: checkpoint payload is malformed (shape {list(payload.shape)})")
    raw = payload.numpy().tobytes()
    if hashlib.sha256(raw).hexdigest() != outer.get("sha256"):
        raise CheckpointError(f"{path}: checksum mismatch: the file is corrupted")
    return _safe_torch_load(raw, path, map_location, "the checkpoint payload")
