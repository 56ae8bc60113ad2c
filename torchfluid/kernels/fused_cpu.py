"""Single-pass multi-tensor RMSProp on CPU (numba): every tensor of a group in one call.

The maths is the reference kernel's (:func:`torchfluid.kernels.rmsprop.rmsprop_`), op
for op and rounding for rounding, with Paddle's gradient pre-processing folded into the
same pass. Per element of tensor ``i`` (all arithmetic in the tensors' dtype):

.. code-block:: text

    g   = grad * scale[i]                                  (global-norm clip scale)
    g   = clip_min[i] if g < clip_min[i] else
          clip_max[i] if g > clip_max[i] else g            (clip by value; NaN stays)
    g   = g + l2[i] * p                                    (L2Decay, after clipping)
    g   = g + l1[i] * sign(p)                              (L1Decay, after clipping)
    ms  = fma((1 - rho) * g, g, rho * ms)                  (= torch addcmul_)
    mg  = fma(g, 1 - rho, rho * mg)                        (centered; = torch add_ alpha)
    var = max(ms - mg * mg, 0)  if centered  else  ms      (NaN propagates)
    den = sqrt(var + eps) if eps_in_sqrt else sqrt(var) + eps
    u   = g / den
    lr_in_momentum:   mom = momentum * mom + lr[i] * u
                      upd = mom   or (nesterov)  fma(mom, momentum, lr[i] * u)
    else:             mom = momentum * mom + u
                      upd = lr[i] * (mom   or (nesterov)  fma(mom, momentum, u))
    no velocity:      upd = lr[i] * u
    p   = p - upd

The fused multiply-adds are where torch's CPU kernels use them (``addcmul_`` and
``add_(x, alpha=a)`` compute ``fma``), so on CPU the fused path reproduces the
reference bit for bit; terms with ``l2``/``l1`` equal to 0 are skipped exactly.

How tensors reach the kernel: by address. Parameters, gradients and state are any
contiguous CPU tensors of one dtype (float32 or float64); a table of their addresses
(``int64``, one row per tensor: param, grad, mean_square, mean_grad, moment) and a
table of fixed-size chunks (tensor index, start, stop) are built in O(#tensors); up to
torch's intra-op thread count of threads each run a ``nogil`` numba kernel that takes
chunks from a shared atomic counter until none is left. Nothing proportional to the
parameter size is allocated. A zero gradient address skips that tensor.

Why threads and not ``@njit(parallel=True)``: the same speed, half the cold compile
time (the parfor pipeline doubled it), and no second OpenMP runtime spinning next to
torch's on the same cores. ``fastmath`` is off for the update so that IEEE rounding
matches the reference. The squared-norm helper accumulates in float64 with
re-association allowed (a reduction; its order differs from torch's).

Compilation and caching: each kernel is a C callback (``numba.cfunc``) over raw
pointers, one per (dtype, centered, velocity) variant, compiled when first used. The
variant switches are closure constants that numba prunes before typing, so one small
function is compiled (``inline="always"`` helpers, whose IR copies tripled the cold
compile, and ``carray`` overloads compiled alongside are gone). Its object code goes to
``$NUMBA_CACHE_DIR/torchfluid`` (else ``__pycache__`` here, else ``~/.cache/torchfluid``)
with a key (this file's hash, numba/llvmlite/Python versions, host CPU and features),
a checksum and the symbols it needs; a later process maps it into its own llvmlite MCJIT
engine and calls it through ctypes, which releases the GIL. A numba ``cache=True`` hit
would first initialise numba's CPU target (~0.45 s of registry imports, scipy.linalg
among them): the reason for the own cache. A mismatched or damaged entry is recompiled
and replaced. First fused step (3 x 1000 float32, ``first_step_seconds``, 2-core CPU,
medians of 5): 0.9-1.2 s with an empty cache (~0.45 s numba start-up + ~0.4 s compile),
0.01 s with it filled; the ``@njit(cache=True)`` kernels took 1.6-3.4 s and 0.5-0.7 s
on the same machine.
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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import llvmlite
import numba
import numpy as np
import torch
from llvmlite import ir as llvmir
from numba import types
from numba.core.extending import intrinsic

__all__ = [
    "CHUNK",
    "chunk_table",
    "address_table",
    "hyper_table",
    "rmsprop_table_",
    "sq_norms_table",
    "zero_table_",
    "rmsprop_multi_",
    "sq_norms",
    "zero_",
]

CHUNK = 1 << 15  # elements per work item: 128 KiB of fp32 per stream, L2-friendly
_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
# Columns of the address table and of the per-tensor hyper-parameter table.
P, G, MS, MG, MOM = range(5)
LR, SCALE, LO, HI, L2, L1 = range(6)


@intrinsic
def _at(typingctx, address, lo, dtype):
    """``(T*) address + lo``: element ``lo`` of the ``T`` array at an int64 address
    (``dtype``: the numba type ``T``, a compile-time constant)."""
    ptr_t = types.CPointer(dtype.instance_type)

    def codegen(context, builder, signature, args):
        base = builder.inttoptr(args[0], context.get_value_type(ptr_t))
        return builder.gep(base, [args[1]])

    return ptr_t(address, lo, dtype), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """IEEE fused multiply-add ``a * b + c`` with one rounding (llvm.fma)."""

    def codegen(context, builder, signature, args):
        ty = args[0].type
        fnty = llvmir.FunctionType(ty, [ty, ty, ty])
        fn = builder.module.declare_intrinsic("llvm.fma", [ty], fnty)
        return builder.call(fn, args)

    return a(a, b, c), codegen


@intrinsic
def _take(typingctx, counter):
    """Atomically ``counter[0] += 1`` through an ``int64*`` and return the old value."""

    def codegen(context, builder, signature, args):
        one = llvmir.Constant(llvmir.IntType(64), 1)
        return builder.atomic_rmw("add", args[0], one, "monotonic")

    return types.int64(counter), codegen


@intrinsic
def _next(typingctx, counter):
    """:func:`_take` on an int64 array's first element (for jitted callers)."""

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        one = llvmir.Constant(llvmir.IntType(64), 1)
        return builder.atomic_rmw("add", ary.data, one, "monotonic")

    return types.int64(counter), codegen


# Kernels are C callbacks (``numba.cfunc``) over raw pointers: tables are row-major
# int64 / dtype buffers, each variant's switches are closure constants (numba prunes
# their dead branches before typing), and the chunk loop of every thread takes chunks
# from a shared atomic counter until none is left.
_I64P = types.CPointer(types.int64)
_NB = {"float32": types.float32, "float64": types.float64}


def _rmsprop_kernel(dtype: str, centered: bool, velocity: bool):
    """Python source, signature and options of one (dtype, centered, velocity) variant.

    lim / nest (lr_in_momentum / nesterov) stay runtime booleans: loop-invariant, LLVM
    turns them into selects in the one vectorized loop.
    """
    DT, CENTERED, VELOCITY = _NB[dtype], bool(centered), bool(velocity)

    def rmsprop(addr, chunks, k, counter, hyper, sc, lim, nest):
        rho, rho1, e_in, e_out, beta = sc[0], sc[1], sc[2], sc[3], sc[4]
        zero = sc[5]
        one = sc[6]
        while True:
            c = _take(counter)
            if c >= k:
                break
            t, lo, hi = chunks[3 * c], chunks[3 * c + 1], chunks[3 * c + 2]
            a = 5 * t
            if addr[a + G] == 0:
                continue
            p = _at(addr[a + P], lo, DT)
            g = _at(addr[a + G], lo, DT)
            ms = _at(addr[a + MS], lo, DT)
            if CENTERED:
                mg = _at(addr[a + MG], lo, DT)
            if VELOCITY:
                mom = _at(addr[a + MOM], lo, DT)
            h = 6 * t
            lr, scale, cmin, cmax = hyper[h + LR], hyper[h + SCALE], hyper[h + LO], hyper[h + HI]
            l2, l1 = hyper[h + L2], hyper[h + L1]
            for j in range(hi - lo):
                pj = p[j]
                gj = g[j] * scale
                gj = cmin if gj < cmin else (cmax if gj > cmax else gj)
                gj = gj + l2 * pj if l2 != zero else gj
                sgn = one if pj > zero else (-one if pj < zero else zero)
                gj = gj + l1 * sgn if l1 != zero else gj
                msj = _fma(rho1 * gj, gj, ms[j] * rho)
                ms[j] = msj
                if CENTERED:
                    mgj = _fma(gj, rho1, mg[j] * rho)
                    mg[j] = mgj
                    var = msj - mgj * mgj
                    var = zero if var < zero else var
                else:
                    var = msj
                u = gj / (np.sqrt(var + e_in) + e_out)
                if VELOCITY:
                    if lim:  # lr inside the velocity (Paddle)
                        ul = u * lr
                        m = mom[j] * beta + ul
                        mom[j] = m
                        upd = _fma(m, beta, ul) if nest else m
                    else:
                        m = mom[j] * beta + u
                        mom[j] = m
                        upd = (_fma(m, beta, u) if nest else m) * lr
                else:
                    upd = u * lr
                p[j] = pj - upd

    fp = types.CPointer(DT)
    sig = types.void(_I64P, _I64P, types.int64, _I64P, fp, fp, types.boolean, types.boolean)
    return rmsprop, sig, dict(fastmath=False, error_model="numpy")


def _sq_sums_kernel(dtype: str):
    """Per-chunk float64 ``sum(x*x)`` of column ``col`` (re-association allowed)."""
    DT = _NB[dtype]

    def sq_sums(addr, col, chunks, k, counter, out):
        while True:
            c = _take(counter)
            if c >= k:
                break
            t, lo, hi = chunks[3 * c], chunks[3 * c + 1], chunks[3 * c + 2]
            acc = 0.0
            if addr[5 * t + col] != 0:
                x = _at(addr[5 * t + col], lo, DT)
                for j in range(hi - lo):
                    v = np.float64(x[j])
                    acc += v * v
            out[c] = acc

    sig = types.void(_I64P, types.int64, _I64P, types.int64, _I64P,
                     types.CPointer(types.float64))
    return sq_sums, sig, dict(fastmath={"reassoc", "nsz", "contract"}, error_model="numpy")


def _zero_kernel(dtype: str):
    """Zeros over column ``col`` of the address table, chunk by chunk."""
    DT = _NB[dtype]

    def zero(addr, col, chunks, k, counter):
        while True:
            c = _take(counter)
            if c >= k:
                break
            t, lo, hi = chunks[3 * c], chunks[3 * c + 1], chunks[3 * c + 2]
            if addr[5 * t + col] != 0:
                x = _at(addr[5 * t + col], lo, DT)
                for j in range(hi - lo):
                    x[j] = 0

    sig = types.void(_I64P, types.int64, _I64P, types.int64, _I64P)
    return zero, sig, dict(error_model="numpy")


_VP, _I64, _BOOL = ctypes.c_void_p, ctypes.c_int64, ctypes.c_bool
_KINDS = {  # builder, C argument types
    "rmsprop": (_rmsprop_kernel, (_VP, _VP, _I64, _VP, _VP, _VP, _BOOL, _BOOL)),
    "sq_sums": (_sq_sums_kernel, (_VP, _I64, _VP, _I64, _VP, _VP)),
    "zero": (_zero_kernel, (_VP, _I64, _VP, _I64, _VP)),
}


# ---------------------------------------------------------------------- kernel cache
# Each variant is compiled on first use and its object code kept on disk; a later
# process maps that object into its own small MCJIT engine (llvmlite) and calls it
# through ctypes, which releases the GIL. That skips numba's per-process target
# initialization (~0.3-0.5 s of registry imports, scipy.linalg among them) that even
# a numba ``cache=True`` hit pays before its first call.
_CACHE_MAGIC = b"torchfluid-kernel-1\n"
_KERNELS: dict[tuple, object] = {}
_KERNELS_LOCK = threading.Lock()
_KEEP: list = []  # engines and cfuncs owning the code behind _KERNELS
_ORIGIN: dict[tuple, str] = {}  # variant -> "cache" or "compiled" (for tests and benchmarks)
_SOURCE_HASH: str | None = None
_SYMBOLS_READY = False


def _kernel(kind: str, dtype: str, *flags: bool):
    """The ctypes callable of one kernel variant: loaded from the cache or compiled.

    Thread-safe: the first caller of a variant obtains it under a lock, later callers
    read the finished dict entry.
    """
    key = (kind, dtype, *flags)
    fn = _KERNELS.get(key)
    if fn is None:
        with _KERNELS_LOCK:
            fn = _KERNELS.get(key)
            if fn is None:
                fn = _KERNELS[key] = _obtain(key)
    return fn


def _obtain(key: tuple):
    builder, argtypes = _KINDS[key[0]]
    proto = ctypes.CFUNCTYPE(None, *argtypes)
    path = ident = None
    try:
        ident = _identity(key)
        path = _cache_file(key)
        address = _load(path, ident) if path else None
        if address:
            _ORIGIN[key] = "cache"
            return proto(address)
    except Exception:  # a broken or foreign cache entry: compile instead
        pass
    pyfunc, sig, options = builder(*key[1:])
    cf = numba.cfunc(sig, nopython=True, **options)(pyfunc)
    _KEEP.append(cf)
    _ORIGIN[key] = "compiled"
    if path and ident:
        try:
            _save(path, ident, cf)
        except Exception:  # read-only or full cache directory: run uncached
            pass
    return proto(cf.address)


def _identity(key: tuple) -> str:
    """Everything the object code depends on: variant, sources, versions, target."""
    global _SOURCE_HASH
    from numba.core import config
    from numba.core.registry import cpu_target

    if _SOURCE_HASH is None:
        with open(__file__, "rb") as f:
            _SOURCE_HASH = hashlib.sha256(f.read()).hexdigest()
    magic = cpu_target.target_context.codegen().magic_tuple()  # triple, cpu, features
    parts = (*map(str, key), _SOURCE_HASH, numba.__version__, llvmlite.__version__,
             sys.version, *map(str, magic), str(config.OPT))
    return "|".join(parts)


def _cache_file(key: tuple) -> str | None:
    """Where this variant's object lives: ``$NUMBA_CACHE_DIR/torchfluid`` when set,
    else ``__pycache__`` beside this file, else the user's cache directory; the first
    that holds the file, or else the first writable one."""
    from numba.core import config

    if config.CACHE_DIR:
        dirs = [os.path.join(config.CACHE_DIR, "torchfluid")]
    else:
        user = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                ".cache")
        dirs = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__"),
                os.path.join(user, "torchfluid")]
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


def _install_symbols() -> None:
    """Make the C helpers a numba object may reference resolvable (as numba does)."""
    global _SYMBOLS_READY
    if _SYMBOLS_READY:
        return
    import llvmlite.binding as ll
    from numba.core.registry import cpu_target
    from numba.core.runtime import _nrt_python

    cpu_target.target_context  # noqa: B018  (creating it installs numba_*, PyExc_*)
    for name, address in _nrt_python.c_helpers.items():
        ll.add_symbol("NRT_" + name, address)  # what numba's runtime init adds
    _SYMBOLS_READY = True


def _load(path: str, ident: str) -> int | None:
    """Address of the cached kernel at ``path``, or None when absent or not ours."""
    import llvmlite.binding as ll

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if not data.startswith(_CACHE_MAGIC):
        return None
    at = len(_CACHE_MAGIC)
    (size,) = struct.unpack_from("<I", data, at)
    head = json.loads(data[at + 4:at + 4 + size])
    obj = data[at + 4 + size:]
    if head["ident"] != ident or hashlib.sha256(obj).hexdigest() != head["sha256"]:
        return None
    _install_symbols()
    # An unresolved symbol would abort the process inside LLVM: check them first.
    if any(ll.address_of_symbol(s) is None for s in head["needs"]):
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
    needs = sorted({f.name for f in mod.functions
                    if f.is_declaration and not f.name.startswith("llvm.")}
                   | {v.name for v in mod.global_variables if v.is_declaration})
    head = json.dumps({"ident": ident, "name": cf.native_name, "needs": needs,
                       "sha256": hashlib.sha256(obj).hexdigest()}).encode()
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_CACHE_MAGIC + struct.pack("<I", len(head)) + head + obj)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- threads
_POOL: ThreadPoolExecutor | None = None
_SERIAL_BELOW = 1 << 16  # elements: smaller groups run on the calling thread alone


def num_threads() -> int:
    """Threads a kernel call uses at most: torch's intra-op thread count."""
    return max(1, torch.get_num_threads())


def workers(chunks: np.ndarray) -> int:
    """Threads worth starting for a chunk table (1 below ``_SERIAL_BELOW`` elements)."""
    if chunks.shape[0] < 2 or int((chunks[:, 2] - chunks[:, 1]).sum()) < _SERIAL_BELOW:
        return 1
    return min(num_threads(), chunks.shape[0])


def parallel(call, n: int) -> None:
    """Run ``call()`` on ``n`` threads: the calling thread and ``n - 1`` pool threads.

    The kernels share the work through an atomic chunk counter, so a thread slowed by
    a neighbour (torch's OpenMP workers still spinning after the backward pass, say)
    simply takes fewer chunks: static halves would make the whole step wait for it.
    """
    global _POOL
    if n <= 1:
        call()
        return
    if _POOL is None or _POOL._max_workers < n - 1:
        _POOL = ThreadPoolExecutor(n - 1, thread_name_prefix="torchfluid")
    futures = [_POOL.submit(call) for _ in range(n - 1)]
    call()
    for f in futures:
        f.result()


def rmsprop_table_(addr: np.ndarray, chunks: np.ndarray, hyper: np.ndarray,
                   scalars: np.ndarray, centered: bool, has_moment: bool,
                   lr_in_momentum: bool, nesterov: bool, threads: int | None = None) -> None:
    """One RMSProp step over every chunk of an address table (see the module doc).

    ``addr``: int64 (n, 5) addresses (param, grad, mean_square, mean_grad, moment);
    ``chunks``: int64 (k, 3) rows (tensor, start, stop); ``hyper``: (n, 6) per-tensor
    (lr, scale, clip_min, clip_max, l2, l1) in the tensors' dtype; ``scalars``: (rho,
    1 - rho, eps inside, eps outside, momentum, 0, 1) in the tensors' dtype; ``threads``:
    how many (default :func:`workers`). Columns not used (mean_grad unless
    ``centered``, moment unless ``has_moment``) are never read.
    """
    addr, chunks = _rows(addr, 5), _rows(chunks, 3)
    hyper = _rows(hyper, 6, hyper.dtype)
    if hyper.dtype.name not in _NB or hyper.shape[0] != addr.shape[0]:
        raise ValueError(f"hyper: {hyper.dtype} {hyper.shape}; allowed: float32 or float64 "
                         f"of shape ({addr.shape[0]}, 6)")
    scalars = np.ascontiguousarray(scalars, hyper.dtype)
    if scalars.size < 7:
        raise ValueError(f"scalars: {scalars.size} values; allowed: 7")
    kernel = _kernel("rmsprop", hyper.dtype.name, bool(centered), bool(has_moment))
    counter = np.zeros(1, np.int64)
    args = (addr.ctypes.data, chunks.ctypes.data, chunks.shape[0], counter.ctypes.data,
            hyper.ctypes.data, scalars.ctypes.data, bool(lr_in_momentum), bool(nesterov))
    parallel(lambda: kernel(*args), workers(chunks) if threads is None else threads)


def _rows(table: np.ndarray, width: int, dtype=np.int64) -> np.ndarray:
    """``table`` as a C-contiguous ``(n, width)`` array of ``dtype`` (no copy if it is)."""
    table = np.ascontiguousarray(table, dtype)
    if table.ndim != 2 or table.shape[1] != width:
        raise ValueError(f"table of shape {table.shape}; allowed: (n, {width})")
    return table


def sq_norms_table(addr: np.ndarray, col: int, chunks: np.ndarray,
                   like: np.ndarray) -> np.ndarray:
    """Per-tensor ``sum(x*x)`` (float64) of column ``col`` of an address table, one pass.

    ``like``: any array of the tensors' dtype. Deterministic: per-chunk partial sums
    (whichever thread computed them) are added in chunk order.
    """
    addr, chunks = _rows(addr, 5), _rows(chunks, 3)
    kernel = _kernel("sq_sums", _dtype_name(like))
    part = np.empty(chunks.shape[0], np.float64)
    counter = np.zeros(1, np.int64)
    args = (addr.ctypes.data, int(col), chunks.ctypes.data, chunks.shape[0],
            counter.ctypes.data, part.ctypes.data)
    parallel(lambda: kernel(*args), workers(chunks))
    # chunk sums added per tensor in chunk order (bincount adds in input order)
    return np.bincount(chunks[:, 0], weights=part, minlength=addr.shape[0])


def zero_table_(addr: np.ndarray, col: int, chunks: np.ndarray, like: np.ndarray) -> None:
    """Write zeros over column ``col`` of an address table (one parallel pass)."""
    addr, chunks = _rows(addr, 5), _rows(chunks, 3)
    kernel = _kernel("zero", _dtype_name(like))
    counter = np.zeros(1, np.int64)
    args = (addr.ctypes.data, int(col), chunks.ctypes.data, chunks.shape[0],
            counter.ctypes.data)
    parallel(lambda: kernel(*args), workers(chunks))


def _dtype_name(like: np.ndarray) -> str:
    name = np.asarray(like).dtype.name
    if name not in _NB:
        raise ValueError(f"like: dtype {name}; allowed: float32, float64")
    return name


# ----------------------------------------------------------------------------- tables
def chunk_table(numel: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
    """``(k, 3)`` int64 rows ``(tensor, start, stop)`` cutting each tensor in ``chunk``s."""
    numel = np.asarray(numel, np.int64)
    per = -(-numel // chunk)  # ceil; 0-size tensors get no chunk
    t = np.repeat(np.arange(numel.size, dtype=np.int64), per)
    first = np.repeat(np.cumsum(per) - per, per)
    start = (np.arange(t.size, dtype=np.int64) - first) * chunk
    stop = np.minimum(start + chunk, numel[t])
    return np.ascontiguousarray(np.stack([t, start, stop], axis=1))


def _check(name: str, i: int, t: torch.Tensor, dtype: torch.dtype, n: int | None,
           device: torch.device) -> None:
    if t.device != device:
        raise ValueError(f"{name}[{i}]: device {t.device} differs from params' {device}; "
                         f"allowed: {device}")
    if t.dtype != dtype:
        raise ValueError(f"{name}[{i}]: dtype {t.dtype} differs from params' {dtype}; "
                         f"allowed: {dtype}")
    if not t.is_contiguous():
        raise ValueError(f"{name}[{i}]: strides {t.stride()} for shape {tuple(t.shape)} "
                         "are not contiguous; allowed: contiguous tensors")
    if n is not None and t.numel() != n:
        raise ValueError(f"{name}[{i}]: {t.numel()} elements, param has {n}; allowed: {n}")


def address_table(params, grads, mean_squares, mean_grads=None, moments=None) -> np.ndarray:
    """Validate the lists and return their ``(n, 5)`` int64 address table.

    ``grads[i]`` may be None (the tensor is skipped); every tensor must be a
    contiguous tensor of ``params[0]``'s dtype (float32 or float64) and device with
    ``params[i]``'s number of elements.
    """
    n = len(params)
    lists = {"grads": grads, "mean_squares": mean_squares,
             "mean_grads": mean_grads, "moments": moments}
    for name, lst in lists.items():
        if lst is not None and len(lst) != n:
            raise ValueError(f"{name}: {len(lst)} tensors for {n} params; allowed: {n}")
    dtype = params[0].dtype if n else torch.float32
    device = params[0].device if n else torch.device("cpu")
    if dtype not in _DTYPES:
        raise ValueError(f"params[0]: dtype {dtype} not supported; allowed: float32, float64")
    addr = np.zeros((n, 5), np.int64)
    for i, p in enumerate(params):
        _check("params", i, p, dtype, None, device)
        k = p.numel()
        addr[i, P] = p.data_ptr()
        for col, name in ((G, "grads"), (MS, "mean_squares"), (MG, "mean_grads"),
                          (MOM, "moments")):
            lst = lists[name]
            if lst is None or lst[i] is None:
                if name == "mean_squares" or (name != "grads" and lst is not None):
                    raise ValueError(f"{name}[{i}]: None; allowed: a tensor")
                continue
            _check(name, i, lst[i], dtype, k, device)
            addr[i, col] = lst[i].data_ptr()
    return addr


def hyper_table(n: int, dtype, *, lr, grad_scale=1.0, clip_min=None, clip_max=None,
                l2=0.0, l1=0.0) -> np.ndarray:
    """``(n, 6)`` per-tensor (lr, scale, clip_min, clip_max, l2, l1) in ``dtype``.

    Each may be a float (all tensors) or a sequence of ``n`` floats; values are
    rounded from float64 to ``dtype`` exactly as torch rounds Python scalars.
    """
    out = np.empty((n, 6), np.float64)
    cols = (("lr", lr, None), ("grad_scale", grad_scale, 1.0),
            ("clip_min", clip_min, -np.inf), ("clip_max", clip_max, np.inf),
            ("l2", l2, 0.0), ("l1", l1, 0.0))
    for j, (name, value, default) in enumerate(cols):
        if value is None:
            if default is None:
                raise ValueError(f"{name}: None; allowed: a float or {n} floats")
            value = default
        elif not isinstance(value, (int, float)):
            value = np.asarray(value, np.float64)
            if value.shape != (n,):
                raise ValueError(f"{name}: shape {value.shape}; allowed: a float or {n} floats")
        out[:, j] = value
    return out.astype(dtype)


def scalar_table(dtype, *, rho: float, epsilon: float, momentum: float,
                 eps_in_sqrt: bool) -> np.ndarray:
    """(rho, 1 - rho, eps inside sqrt, eps outside sqrt, momentum, 0, 1) in ``dtype``."""
    e_in, e_out = (epsilon, 0.0) if eps_in_sqrt else (0.0, epsilon)
    return np.array([rho, 1.0 - rho, e_in, e_out, momentum, 0.0, 1.0], dtype)


# ----------------------------------------------------------------------- tensor API
@torch.no_grad()
def rmsprop_multi_(
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor | None],
    mean_squares: Sequence[torch.Tensor],
    mean_grads: Sequence[torch.Tensor] | None = None,
    moments: Sequence[torch.Tensor] | None = None,
    *,
    lr: float | Sequence[float],
    rho: float,
    epsilon: float,
    momentum: float = 0.0,
    eps_in_sqrt: bool = True,
    lr_in_momentum: bool = True,
    nesterov: bool = False,
    grad_scale: float | Sequence[float] = 1.0,
    clip_min: float | Sequence[float] | None = None,
    clip_max: float | Sequence[float] | None = None,
    l2: float | Sequence[float] = 0.0,
    l1: float | Sequence[float] = 0.0,
) -> None:
    """:func:`rmsprop_` on every ``(param, grad, state...)`` at once, in one pass.

    Same contract as the reference kernel per tensor (``mean_grads`` given iff
    centered, ``moments`` given iff a velocity is kept), plus the folded-in gradient
    pre-processing of the module doc; ``lr``, ``grad_scale``, ``clip_min/max``,
    ``l2`` and ``l1`` are floats or per-tensor sequences. Tensors whose grad is None
    are skipped.
    """
    if not params:
        return
    _require_cpu("params", params[0])
    addr = address_table(params, grads, mean_squares, mean_grads, moments)
    numel = np.array([p.numel() for p in params], np.int64)
    dt = _DTYPES[params[0].dtype]
    hyper = hyper_table(len(params), dt, lr=lr, grad_scale=grad_scale, clip_min=clip_min,
                        clip_max=clip_max, l2=l2, l1=l1)
    sc = scalar_table(dt, rho=rho, epsilon=epsilon, momentum=momentum,
                      eps_in_sqrt=eps_in_sqrt)
    rmsprop_table_(addr, chunk_table(numel), hyper, sc, mean_grads is not None,
                   moments is not None, bool(lr_in_momentum), bool(nesterov))


def _require_cpu(name: str, t: torch.Tensor | None) -> None:
    if t is not None and t.device.type != "cpu":
        raise ValueError(f"{name}[0]: device {t.device} not supported by the numba kernel; "
                         "allowed: cpu (CUDA tensors take torchfluid.kernels.fused_triton)")


def _column(name: str, tensors) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Address table with ``tensors`` in column G (None -> 0), numels, dtype sample."""
    present = [t for t in tensors if t is not None]
    dtype = present[0].dtype if present else torch.float32
    _require_cpu(name, present[0] if present else None)
    if dtype not in _DTYPES:
        raise ValueError(f"{name}: dtype {dtype} not supported; allowed: float32, float64")
    addr = np.zeros((len(tensors), 5), np.int64)
    numel = np.zeros(len(tensors), np.int64)
    for i, t in enumerate(tensors):
        if t is not None:
            _check(name, i, t, dtype, None, torch.device("cpu"))
            addr[i, G], numel[i] = t.data_ptr(), t.numel()
    return addr, numel, np.zeros(0, _DTYPES[dtype])


def sq_norms(tensors: Sequence[torch.Tensor | None]) -> np.ndarray:
    """Per-tensor ``sum(x*x)`` as float64, in one parallel pass (None counts 0)."""
    addr, numel, like = _column("tensors", tensors)
    return sq_norms_table(addr, G, chunk_table(numel), like)


@torch.no_grad()
def zero_(tensors: Sequence[torch.Tensor | None]) -> None:
    """Fill every tensor with zeros in one parallel pass (None entries are skipped)."""
    addr, numel, like = _column("tensors", tensors)
    zero_table_(addr, G, chunk_table(numel), like)
