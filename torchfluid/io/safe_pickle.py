"""Reading Paddle's pickled state files without running code from them.

``.pdparams`` / ``.pdopt`` files are pickles (protocol 2 from ``save_dygraph``, 2-4 from
``paddle.save``) of dicts of numpy arrays. A plain ``pickle.load`` would call whatever
the file names, so :func:`load` uses an unpickler whose ``find_class`` admits only:

* numpy's array / scalar / dtype constructors (``numpy.core`` and ``numpy._core``
  spellings), restricted to plain numeric dtypes (bool, int, uint, float, complex; no
  fields, no sub-arrays, no metadata);
* ``collections.OrderedDict`` and the builtins ``tuple``, ``list``, ``dict``, ``set``,
  ``frozenset``, ``complex``, ``bytes`` / ``bytearray`` (from bytes only);
* ``_codecs.encode(text, 'latin1')``, which protocol-2 pickles use for raw bytes.

Anything else raises :class:`UnsafePickleError` naming the global before it is
imported or called; persistent ids and extension codes are refused the same way.
Every admitted name is a checking wrapper, never the class itself (so ``NEWOBJ`` cannot
reach ``numpy.ndarray.__new__``). ``BUILD`` is allowed only on numpy arrays and dtypes,
with the state checked first: a dtype's state must be the canonical one of a plain
dtype (its flags cannot be forged), an array's raw bytes must match its shape and dtype.

Memory stays bounded by the file: arrays and containers that an admitted call would
allocate are charged against a budget of ``16 * len(file) + 1 MiB`` bytes *before*
they are allocated (``numpy.ndarray((2**31,), 'f8')`` in a 60-byte file is refused, it
allocates nothing). After loading, every array and numpy scalar in the result is checked
again (each object once, so shared references cannot blow up the walk).

:class:`UnsafePickleError` is both a ``pickle.UnpicklingError`` and a
:class:`torchfluid.checkpoint.CheckpointError`: every unreadable file raises it.
"""

from __future__ import annotations

import collections
import io
import math
import numbers
import os
import pickle

import numpy as np

from ..checkpoint.format import CheckpointError, read_bytes

__all__ = ["UnsafePickleError", "load", "loads"]

ALLOWED_KINDS = "biufc"
_PER_ITEM = 64  # bytes charged per element of a container built by a call


class UnsafePickleError(pickle.UnpicklingError, CheckpointError):
    """A pickle that is unsafe or unreadable.

    It references something other than numpy arrays and plain containers, or it
    cannot be read within its size budget."""


def _checked_dtype(dt, where: str) -> np.dtype:
    if not isinstance(dt, np.dtype):
        raise UnsafePickleError(f"{where}: expected a numpy dtype, got {type(dt).__name__}")
    if dt.kind not in ALLOWED_KINDS or dt.fields is not None or dt.subdtype is not None or dt.metadata:
        raise UnsafePickleError(f"{where}: numpy dtype {dt!s} is not allowed (only numeric dtypes)")
    if type(dt) is not type(np.dtype(dt.str)) or dt.isnative != np.dtype(dt.str).isnative:
        raise UnsafePickleError(f"{where}: numpy dtype {dt!s} is not a plain dtype")
    return dt


def _canonical_dtype_state(dt: np.dtype, byteorder) -> tuple:
    fresh = dt if byteorder in ("=", "|") else dt.newbyteorder(byteorder)
    return fresh.__reduce__()[2]


def _shape(shape, where: str) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),)
    if (
        not isinstance(shape, tuple)
        or len(shape) > 64
        or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and 0 <= d for d in shape)
    ):
        raise UnsafePickleError(f"{where}: shape must be a tuple of at most 64 sizes >= 0, got {shape!r}"[:300])
    return tuple(int(d) for d in shape)


_NP_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_NP_SCALAR = np.float32(0).__reduce__()[0]
_NP_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]


class _Ndarray:
    """The name ``numpy.ndarray``: a marker for ``_reconstruct`` and a size-checked constructor."""

    def __init__(self, unpickler):
        self.unpickler = unpickler

    def __call__(self, shape, dtype=float):
        dt = _checked_dtype(_dtype_of(dtype, "numpy.ndarray"), "numpy.ndarray")
        shape = _shape(shape, "numpy.ndarray")
        self.unpickler.charge(math.prod(shape) * dt.itemsize, f"numpy.ndarray({shape}, {dt})")
        return np.zeros(shape, dt)


def _dtype_of(code, where):
    if isinstance(code, np.dtype):
        return code
    if not isinstance(code, (str, bytes)) or len(code) > 16:
        raise UnsafePickleError(f"{where}: dtype must be a numpy dtype or a short type code, got {code!r}"[:300])
    try:
        return np.dtype(code.decode("latin1") if isinstance(code, bytes) else code)
    except (TypeError, ValueError) as e:
        raise UnsafePickleError(f"{where}: bad dtype {code!r}: {e}") from None


class _RestrictedUnpickler(pickle._Unpickler):
    """Pure-Python unpickler (its ``BUILD`` can be checked) with the allow-list and budget."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, source: str, size: int):
        super().__init__(file, encoding="latin1")
        self._source = source
        self._budget = 16 * size + (1 << 20)
        self._ndarray = _Ndarray(self)
        sized = self._sized
        self._allowed: dict[tuple[str, str], object] = {
            ("numpy", "ndarray"): self._ndarray,
            ("numpy", "dtype"): self._dtype,
            ("collections", "OrderedDict"): sized(collections.OrderedDict),
            ("_codecs", "encode"): self._latin1_encode,
            ("builtins", "bytes"): self._bytes_like(bytes),
            ("builtins", "bytearray"): self._bytes_like(bytearray),
            ("builtins", "complex"): self._complex,
        }
        for pkg in ("numpy.core", "numpy._core"):
            self._allowed[(f"{pkg}.multiarray", "_reconstruct")] = self._reconstruct
            self._allowed[(f"{pkg}.multiarray", "scalar")] = self._scalar
            self._allowed[(f"{pkg}.numeric", "_frombuffer")] = self._frombuffer
        for cls in (tuple, list, dict, set, frozenset):
            self._allowed[("builtins", cls.__name__)] = sized(cls)

    # -- memory ---------------------------------------------------------------------------
    def charge(self, nbytes: int, what: str) -> None:
        if nbytes > self._budget:
            raise UnsafePickleError(
                f"refusing to load {self._source}: {what} would allocate {nbytes} bytes, more than the "
                f"file can hold (a pickle may allocate at most 16x its size + 1 MiB)"[:400]
            )
        self._budget -= nbytes

    # -- admitted callables ---------------------------------------------------------------
    def _sized(self, cls):
        def build(*args):
            if len(args) > 1:
                raise UnsafePickleError(f"{cls.__name__}() takes at most one argument here, got {len(args)}")
            if args:
                if not hasattr(args[0], "__len__"):
                    raise UnsafePickleError(
                        f"{cls.__name__}() is allowed only from a sized container, got {type(args[0]).__name__}"
                    )
                self.charge(_PER_ITEM * len(args[0]), f"{cls.__name__}() of {len(args[0])} items")
            return cls(*args)

        build.__name__ = cls.__name__
        return build

    def _complex(self, *args):
        if (
            len(args) > 2
            or not all(isinstance(a, (numbers.Real, str)) and not isinstance(a, bool) for a in args)
            or any(isinstance(a, str) and len(a) > 64 for a in args)
        ):
            raise UnsafePickleError("complex() is allowed only from numbers or a short string")
        return complex(*args)

    def _dtype(self, *args):
        if not 1 <= len(args) <= 3 or not all(isinstance(a, (bool, int)) and a in (0, 1) for a in args[1:]):
            raise UnsafePickleError(f"numpy.dtype: expected (code, align, copy), got {len(args)} arguments")
        dt = _checked_dtype(_dtype_of(args[0], "numpy.dtype"), "numpy.dtype")
        return np.dtype(dt, False, True)  # always a copy: BUILD must never touch numpy's shared dtype objects

    def _reconstruct(self, subtype, shape, dtype_code):
        if subtype is not self._ndarray:
            raise UnsafePickleError(f"only numpy.ndarray can be rebuilt, got {subtype!r}"[:300])
        dt = _checked_dtype(_dtype_of(dtype_code, "numpy array"), "numpy array")
        shape = _shape(shape, "numpy array")
        self.charge(math.prod(shape) * dt.itemsize, f"a numpy array of shape {shape}")
        return _NP_RECONSTRUCT(np.ndarray, shape, dt)

    def _scalar(self, dtype, *data):
        if not isinstance(dtype, np.dtype):
            raise UnsafePickleError(f"numpy scalar needs a dtype, got {type(dtype).__name__}")
        _checked_dtype(dtype, "numpy scalar")
        if len(data) != 1 or not isinstance(data[0], (bytes, str)) or len(data[0]) != dtype.itemsize:
            raise UnsafePickleError(f"numpy scalar of {dtype} needs {dtype.itemsize} raw bytes")
        return _NP_SCALAR(dtype, *data)

    def _frombuffer(self, buf, dtype, shape, order):
        _checked_dtype(dtype, "numpy array")
        if not isinstance(buf, (bytes, bytearray)):
            raise UnsafePickleError(f"numpy array buffer must be bytes, got {type(buf).__name__}")
        shape = _shape(shape, "numpy array")
        if math.prod(shape) * dtype.itemsize != len(buf) or order not in ("C", "F"):
            raise UnsafePickleError(
                f"numpy array of shape {shape} and dtype {dtype} does not match its {len(buf)} bytes of data"
            )
        return _NP_FROMBUFFER(buf, dtype, shape, order)

    def _latin1_encode(self, text, encoding="latin1"):
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise UnsafePickleError(f"_codecs.encode is allowed only for str with latin1, got {encoding!r}"[:300])
        self.charge(len(text), "_codecs.encode")
        return text.encode("latin1")

    def _bytes_like(self, cls):
        def build(*args):
            if len(args) > 2 or (args and not isinstance(args[0], (bytes, bytearray, str))):
                raise UnsafePickleError(f"{cls.__name__}() is allowed only from bytes")
            if args:
                self.charge(len(args[0]), f"{cls.__name__}()")
            if args and isinstance(args[0], str):  # protocol 2 from Python 2: bytes(str, 'latin1')
                return cls(args[0].encode("latin1"))
            return cls(*args[:1])

        return build

    # -- the unpickler's hooks ------------------------------------------------------------
    def find_class(self, module, name):
        key = ("builtins" if module == "__builtin__" else module, name)
        if key in self._allowed:
            return self._allowed[key]
        raise UnsafePickleError(
            f"refusing to load {self._source}: it references {module}.{name}, which is not allowed "
            "(only numpy arrays, numpy dtypes/scalars and plain containers are)"[:600]
        )

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refusing to load {self._source}: it uses persistent ids")

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, np.dtype):
            ok = (
                isinstance(state, tuple)
                and len(state) == 8
                and state[1] in ("<", ">", "=", "|")
                and state == _canonical_dtype_state(inst, state[1])
            )
            if not ok:
                raise UnsafePickleError(
                    f"refusing to load {self._source}: numpy dtype {inst} has a non-standard pickled state {state!r}"[
                        :400
                    ]
                )
            inst.__setstate__(state)
            _checked_dtype(inst, "numpy.dtype")
        elif type(inst) is np.ndarray:
            if isinstance(state, tuple) and len(state) == 5 and state[0] == 1:
                state = state[1:]
            if not (isinstance(state, tuple) and len(state) == 4):
                raise UnsafePickleError(f"refusing to load {self._source}: malformed numpy array state")
            shape, dtype, fortran, data = state
            shape = _shape(shape, "numpy array")
            _checked_dtype(dtype, "numpy array")
            if (
                not isinstance(fortran, bool)
                or not isinstance(data, (bytes, str))
                or len(data) != math.prod(shape) * dtype.itemsize
            ):
                raise UnsafePickleError(
                    f"refusing to load {self._source}: numpy array of shape {shape} and "
                    f"dtype {dtype} does not match its data"
                )
            self.charge(len(data), f"a numpy array of shape {shape}")
            inst.__setstate__((1, shape, dtype, fortran, data))
        else:
            raise UnsafePickleError(
                f"refusing to load {self._source}: it sets the state of a "
                f"{type(inst).__name__} (only numpy arrays and dtypes are allowed)"
            )

    dispatch[pickle.BUILD[0]] = load_build


def _check_result(obj, source: str):
    seen: set[int] = set()
    todo = [(obj, 0)]
    while todo:
        item, depth = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if depth > 100:
            raise UnsafePickleError(f"refusing {source}: containers nested deeper than 100 levels")
        if isinstance(item, (np.ndarray, np.generic)):
            _checked_dtype(item.dtype, f"{source}: array")
        elif isinstance(item, dict):
            todo.extend((x, depth + 1) for kv in item.items() for x in kv)
        elif isinstance(item, (list, tuple, set, frozenset)):
            todo.extend((x, depth + 1) for x in item)
    return obj


def loads(data: bytes, source: str = "<bytes>"):
    """Unpickle ``data`` through the restricted unpickler.

    A zip archive (``torch.save`` / torchfluid checkpoint) is refused with a clear error,
    and so is any stream the unpickler cannot parse (named by ``source``).
    """
    data = bytes(data)
    if data[:4] == b"PK\x03\x04":
        raise UnsafePickleError(
            f"refusing to load {source}: it is a zip archive (a torch.save or torchfluid "
            "checkpoint), not a Paddle pickle; read it with torchfluid.load"
        )
    if not data:
        raise UnsafePickleError(f"cannot load {source}: the file is empty")
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), source, len(data)).load()
    except UnsafePickleError:
        raise
    except MemoryError:
        raise UnsafePickleError(f"cannot load {source}: it asks for more memory than is available") from None
    except Exception as e:  # anything the reader trips over: not a valid pickle
        text = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        raise UnsafePickleError(f"cannot load {source}: not a valid pickle ({type(e).__name__}: {text})") from None
    return _check_result(obj, source)


def load(path):
    """Unpickle the file at ``path`` through the restricted unpickler (see :func:`loads`)."""
    path = os.fspath(path)
    return loads(read_bytes(path, UnsafePickleError, f"cannot load {path!r}"), repr(path))
