"""The CPU kernels as ctypes callables: compiled once by numba, then loaded from disk.

:func:`kernel` returns the C entry point of one variant (``kind``, dtype, flags) of the
kernels in :mod:`torchfluid.kernels.fused_cpu_jit`. The first time a variant is needed
on a machine it is compiled (``numba.cfunc``) and its object code is written to
``$NUMBA_CACHE_DIR/torchfluid`` (else ``__pycache__`` beside this file, else
``~/.cache/torchfluid``), with a header: an identity string (the variant, a hash of the
kernel sources and of this file, numba / llvmlite / Python versions, host CPU name and
features, numba's optimisation and CPU settings), the object's SHA-256 and the symbols
it needs. A later process checks all of that, maps the object into its own llvmlite
MCJIT engine and calls it through ctypes (which releases the GIL, so the worker threads
run in parallel), without importing numba at all: a numba ``cache=True`` hit would
first import numba (~0.25 s) and initialise its CPU target (~0.45 s more). Anything
that does not match, fails to parse or needs an unresolvable symbol is recompiled and
the entry atomically replaced; a cache directory that cannot be written only means
compiling in every process.

Trust: the cache holds machine code that is run, as numba's own cache does; it lives
in the user's directories (or ``NUMBA_CACHE_DIR``), and only entries whose checksum
and identity match are loaded.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import struct
import sys
import tempfile
import threading

__all__ = ["kernel", "ORIGIN"]

_VP = ctypes.c_void_p
ARGTYPES = {  # the C signature of each kind (see fused_cpu_jit)
    "rmsprop": (_VP,),  # one int64 argument block (see fused_cpu_jit)
    "momentum": (_VP,),
    "adagrad": (_VP,),
    "sgd": (_VP,),
    "adam": (_VP,),
    "adamax": (_VP,),
    "adadelta": (_VP,),
    "sq_sums": (_VP,),
}
_HERE = os.path.dirname(os.path.abspath(__file__))
_SOURCES = ("fused_cpu_jit.py", "kernel_cache.py", "table.py")
_MAGIC = b"torchfluid-kernel-1\n"
_KERNELS: dict[tuple, object] = {}
_LOCK = threading.Lock()
_KEEP: list = []  # engines and cfuncs owning the code behind _KERNELS
ORIGIN: dict[tuple, str] = {}  # variant -> "cache" or "compiled" (tests, benchmarks)
_IDENTITY_BASE: str | None = None
_NATIVE_READY = False
_SYMBOLS_READY = False


def kernel(kind: str, dtype: str, *flags: bool):
    """The ctypes callable of one kernel variant: loaded from the cache or compiled.

    Thread-safe: the first caller of a variant obtains it under a lock, later callers
    read the finished dict entry.
    """
    key = (kind, dtype, *flags)
    fn = _KERNELS.get(key)
    if fn is None:
        with _LOCK:
            fn = _KERNELS.get(key)
            if fn is None:
                fn = _KERNELS[key] = _obtain(key)
    return fn


def _obtain(key: tuple):
    proto = ctypes.CFUNCTYPE(None, *ARGTYPES[key[0]])
    path = ident = None
    try:
        ident = _identity(key)
        path = _cache_file(key)
        address = _load(path, ident) if path else None
        if address:
            ORIGIN[key] = "cache"
            return proto(address)
    except Exception:  # a broken or foreign cache entry: compile instead
        pass
    from .fused_cpu_jit import compile_kernel

    cf = compile_kernel(*key)
    _KEEP.append(cf)
    ORIGIN[key] = "compiled"
    if path and ident:
        try:
            _save(path, ident, cf)
        except Exception:  # read-only or full cache directory: run uncached
            pass
    return proto(cf.address)


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def _identity(key: tuple) -> str:
    """Everything the object code depends on: variant, sources, versions, target."""
    global _IDENTITY_BASE
    if _IDENTITY_BASE is None:
        import llvmlite.binding as ll

        h = hashlib.sha256()
        for name in _SOURCES:
            with open(os.path.join(_HERE, name), "rb") as f:
                h.update(f.read())
        target = (ll.get_process_triple(), ll.get_host_cpu_name(), ll.get_host_cpu_features().flatten())
        env = tuple(os.environ.get(k, "") for k in ("NUMBA_OPT", "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES"))
        _IDENTITY_BASE = "|".join((h.hexdigest(), _version("numba"), _version("llvmlite"), sys.version, *target, *env))
    return "|".join(map(str, key)) + "|" + _IDENTITY_BASE


def _cache_file(key: tuple) -> str | None:
    """Where this variant's object lives: ``$NUMBA_CACHE_DIR/torchfluid`` when set,
    else ``__pycache__`` beside this file, else the user's cache directory; the first
    that holds the file, or else the first writable one."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        dirs = [os.path.join(os.environ["NUMBA_CACHE_DIR"], "torchfluid")]
    else:
        user = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        dirs = [os.path.join(_HERE, "__pycache__"), os.path.join(user, "torchfluid")]
    name = "fused_cpu-" + "-".join(map(str, key)) + ".kernel"
    for d in dirs:
        if os.path.isfile(os.path.join(d, name)):
            return os.path.join(d, name)
    for d in dirs:
        try:
            os.makedirs(d, exist_ok=True)
        except OSError:
            continue
        if os.access(d, os.W_OK):
            return os.path.join(d, name)
    return None


def _resolvable(ll, symbols) -> bool:
    """Whether every symbol is known to LLVM, registering what the process already has
    (C library functions such as ``sqrtf``), then numba's C helpers (numba_*, NRT_*;
    that imports numba, as numba does) if one is still missing."""
    global _SYMBOLS_READY
    missing = [s for s in symbols if ll.address_of_symbol(s) is None]
    process = ctypes.CDLL(None) if missing else None
    for s in missing:
        try:
            ll.add_symbol(s, ctypes.cast(getattr(process, s), ctypes.c_void_p).value)
        except AttributeError:
            pass
    if all(ll.address_of_symbol(s) is not None for s in symbols):
        return True
    if _SYMBOLS_READY:
        return False
    from numba.core.registry import cpu_target
    from numba.core.runtime import _nrt_python

    cpu_target.target_context  # noqa: B018  (creating it installs numba_*, PyExc_*)
    for name, address in _nrt_python.c_helpers.items():
        ll.add_symbol("NRT_" + name, address)  # what numba's runtime init adds
    _SYMBOLS_READY = True
    return all(ll.address_of_symbol(s) is not None for s in symbols)


def _load(path: str, ident: str) -> int | None:
    """Address of the cached kernel at ``path``, or None when absent or not ours."""
    global _NATIVE_READY
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if not data.startswith(_MAGIC):
        return None
    at = len(_MAGIC)
    (size,) = struct.unpack_from("<I", data, at)
    head = json.loads(data[at + 4 : at + 4 + size])
    obj = data[at + 4 + size :]
    if head["ident"] != ident or hashlib.sha256(obj).hexdigest() != head["sha256"]:
        return None
    import llvmlite.binding as ll

    if not _NATIVE_READY:
        ll.initialize_native_target()
        ll.initialize_native_asmprinter()
        _NATIVE_READY = True
    # An unresolved symbol would abort the process inside LLVM: check them first.
    if not _resolvable(ll, head["needs"]):
        return None
    tm = ll.Target.from_triple(ll.get_process_triple()).create_target_machine(jit=True)
    engine = ll.create_mcjit_compiler(ll.parse_assembly(""), tm)
    engine.add_object_file(ll.ObjectFileRef.from_data(obj))
    engine.finalize_object()
    address = engine.get_function_address(head["name"])
    if not address:
        return None
    _KEEP.append(engine)
    return address


def _save(path: str, ident: str, cf) -> None:
    """Write ``cf``'s object code (atomically: concurrent processes may race here)."""
    lib = cf._library
    if lib.has_dynamic_globals:  # process-specific addresses baked in: not reusable
        return
    obj = bytes(lib._get_compiled_object())
    mod = lib._final_module
    needs = sorted(
        {f.name for f in mod.functions if f.is_declaration and not f.name.startswith("llvm.")}
        | {v.name for v in mod.global_variables if v.is_declaration}
    )
    head = json.dumps(
        {"ident": ident, "name": cf.native_name, "needs": needs, "sha256": hashlib.sha256(obj).hexdigest()}
    ).encode()
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_MAGIC + struct.pack("<I", len(head)) + head + obj)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
