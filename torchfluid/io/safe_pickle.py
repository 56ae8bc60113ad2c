"""Reading Paddle's pickled state files without running code from them.

``.pdparams`` / ``.pdopt`` files are pickles (protocol 2 from ``save_dygraph``, 2-4 from
``paddle.save``) of dicts of numpy arrays. A plain ``pickle.load`` would call whatever
the file names, so :func:`load` uses an unpickler whose ``find_class`` admits only:

* numpy's array / scalar / dtype constructors (``numpy.core`` and ``numpy._core``
  spellings), restricted to numeric dtypes (bool, int, uint, float, complex);
* ``collections.OrderedDict`` and the builtins ``tuple``, ``list``, ``dict``, ``set``,
  ``frozenset``, ``complex``, ``bytes`` / ``bytearray`` (from bytes only);
* ``_codecs.encode(text, 'latin1')``, which protocol-2 pickles use for raw bytes.

Anything else raises :class:`UnsafePickleError` naming the global before it is
imported or called; persistent ids and extension codes are refused the same way.
After loading, every array and numpy scalar in the result is checked again to have a
plain numeric dtype (a dtype's pickled state could otherwise add object fields).
"""

from __future__ import annotations

import collections
import io
import os
import pickle

import numpy as np

__all__ = ["UnsafePickleError", "load", "loads"]

ALLOWED_KINDS = "biufc"


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references something other than numpy arrays and plain containers."""


def _checked_dtype(dt: np.dtype, where: str) -> np.dtype:
    if dt.kind not in ALLOWED_KINDS or dt.fields is not None or dt.subdtype is not None:
        raise UnsafePickleError(f"{where}: numpy dtype {dt!s} is not allowed (only numeric dtypes)")
    return dt


def _dtype(*args):
    return _checked_dtype(np.dtype(*args), "numpy.dtype")


def _reconstruct(subtype, shape, dtype_code):
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"only numpy.ndarray can be rebuilt, got {subtype!r}")
    return _NP_RECONSTRUCT(subtype, shape, dtype_code)


def _scalar(dtype, *data):
    if not isinstance(dtype, np.dtype):
        raise UnsafePickleError(f"numpy scalar needs a dtype, got {type(dtype).__name__}")
    _checked_dtype(dtype, "numpy scalar")
    return _NP_SCALAR(dtype, *data)


def _frombuffer(buf, dtype, shape, order):
    _checked_dtype(dtype, "numpy array")
    return _NP_FROMBUFFER(buf, dtype, shape, order)


def _latin1_encode(text, encoding="latin1"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode is allowed only for str with latin1, got {encoding!r}")
    return text.encode("latin1")


def _bytes_like(cls):
    def build(*args):
        if len(args) > 1 or (args and not isinstance(args[0], (bytes, bytearray, str))):
            raise UnsafePickleError(f"{cls.__name__}() is allowed only from bytes")
        if args and isinstance(args[0], str):  # protocol 2 from Python 2: bytes(str, 'latin1')
            return cls(args[0].encode("latin1"))
        return cls(*args)
    return build


_NP_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_NP_SCALAR = np.float32(0).__reduce__()[0]
_NP_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]

_ALLOWED: dict[tuple[str, str], object] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "bytes"): _bytes_like(bytes),
    ("builtins", "bytearray"): _bytes_like(bytearray),
}
for _pkg in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_pkg}.multiarray", "_reconstruct")] = _reconstruct
    _ALLOWED[(f"{_pkg}.multiarray", "scalar")] = _scalar
    _ALLOWED[(f"{_pkg}.numeric", "_frombuffer")] = _frombuffer
for _name in ("tuple", "list", "dict", "set", "frozenset", "complex"):
    _ALLOWED[("builtins", _name)] = getattr(__import__("builtins"), _name)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str):
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module, name):
        key = ("builtins" if module == "__builtin__" else module, name)
        if key in _ALLOWED:
            return _ALLOWED[key]
        raise UnsafePickleError(
            f"refusing to load {self._source}: it references {module}.{name}, which is not allowed "
            "(only numpy arrays, numpy dtypes/scalars and plain containers are)"
        )

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refusing to load {self._source}: it uses persistent ids")


def _check_result(obj, source: str, depth: int = 0):
    if depth > 100:
        raise UnsafePickleError(f"refusing {source}: containers nested deeper than 100 levels")
    if isinstance(obj, (np.ndarray, np.generic)):
        _checked_dtype(obj.dtype, f"{source}: array")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check_result(k, source, depth + 1)
            _check_result(v, source, depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            _check_result(v, source, depth + 1)
    return obj


def loads(data: bytes, source: str = "<bytes>"):
    """Unpickle ``data`` through the restricted unpickler.

    A zip archive (``torch.save`` / torchfluid checkpoint) is refused with a clear error,
    and so is any stream the unpickler cannot parse (named by ``source``).
    """
    if data[:4] == b"PK\x03\x04":
        raise UnsafePickleError(
            f"refusing to load {source}: it is a zip archive (a torch.save or torchfluid "
            "checkpoint), not a Paddle pickle; read it with torchfluid.load"
        )
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), source).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as e:
        raise UnsafePickleError(f"cannot load {source}: not a valid pickle ({type(e).__name__}: {e})") from None
    return _check_result(obj, source)


def load(path):
    """Unpickle the file at ``path`` through the restricted unpickler (see :func:`loads`)."""
    with open(path, "rb") as f:
        return loads(f.read(), repr(os.fspath(path)))
