"""Single-pass multi-tensor RMSProp (and Momentum, Adagrad, SGD, Adam) on CPU (numba): every
tensor of a group in one call.

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

The same tables drive four more kernels (:class:`TableCall` kinds ``momentum``,
``adagrad``, ``sgd``, ``adam``; columns MS and MG hold their state), each after the same
gradient pre-processing and with its reference kernel's roundings in order
(:mod:`~torchfluid.kernels.momentum`, :mod:`~torchfluid.kernels.adagrad`,
:mod:`~torchfluid.kernels.sgd`, :mod:`~torchfluid.kernels.adam`):

.. code-block:: text

    momentum:  v = v * mu + g;  p = p - v * lr   (nesterov: p = p - (v * mu + g) * lr)
    adagrad:   m = m + g * g;   p = p - (g * lr) / (sqrt(m) + eps)
    sgd:       p = fma(g, -lr, p)                 (= torch's p.sub_(g, alpha=lr))
    adam:      m1 = fma(g, 1 - b1, m1 * b1);  m2 = fma((1 - b2) * g, g, m2 * b2)
               p = p - (m1 / (sqrt(m2) + eps_t)) * lr_t     (lr_t, eps_t: per tensor)
    (1 - b1, 1 - b2 and Adamax's, Adadelta's 1 - beta / 1 - rho are computed in the dtype,
    lr_t = lr * (sqrt(1 - b2_pow) / (1 - b1_pow)), eps_t = sqrt(1 - b2_pow) * eps)

The fused multiply-adds are where torch's CPU kernels use them (``addcmul_`` and
``add_(x, alpha=a)`` compute ``fma``), so on CPU the fused path reproduces the
reference bit for bit; terms with ``l2``/``l1`` equal to 0 are skipped exactly.

How tensors reach the kernel: by address. Parameters, gradients and state are any
contiguous CPU tensors of one dtype (float32 or float64); a table of their addresses
(``int64``, one row per tensor: param, grad, mean_square, mean_grad, moment) and a
table of fixed-size chunks (tensor index, start, stop) are built in O(#tensors) (the
layout of :mod:`torchfluid.kernels.table`). Nothing proportional to the parameter size
is allocated. A zero gradient address skips that tensor.

Threads: sharing the cores with torch. Each kernel's C entry point has the type of an
OpenMP outlined function, ``void (*)(void *)``, taking one block of arguments, and
every thread running it takes chunks from a shared atomic counter until none is left.
Groups under ``_SERIAL_BELOW`` elements (64K) run on the calling thread alone. Larger
ones run on **torch's own OpenMP team**: ``GOMP_parallel`` of the runtime torch loaded
(:func:`torch_openmp`), with torch's intra-op thread count. Right after a backward pass
torch's OpenMP workers are still spinning, waiting for the next parallel op; handing
them the kernel puts them to work at once, where threads of our own had to compete
with them for the same cores (on 2 cores an MLP's whole training step was measured 2.1x
slower than with ``torch.optim.RMSprop`` for that reason; ``benchmarks/bench_loops.py``).
Where that runtime is not found (no OpenMP torch, Windows) a small thread pool
runs it, as it does with ``TORCHFLUID_CPU_THREADS=pool``. Not ``@njit(parallel=True)``:
numba's OpenMP layer links a second runtime (its own team spinning beside torch's) and
the parfor pipeline doubles the cold compile.

``fastmath`` is off for the update so that IEEE rounding matches the reference. The
squared-norm helper accumulates in float64 with re-association allowed (a reduction;
its order differs from torch's).

Compilation and caching: each kernel is a C callback (``numba.cfunc``, sources in
:mod:`torchfluid.kernels.fused_cpu_jit`) over raw pointers, one per (dtype, centered,
velocity) variant, compiled when first used. The variant switches are closure
constants that numba prunes before typing, so one small function is compiled; the
kernels share one chunk loop and supply their per-element maths as ``inline="always"``
helpers, inlined before typing into the same machine code as a loop written out (the
inlining costs compile time: about 0.03 s more per variant than the written-out loops,
0.29 s instead of 0.26 s on a 2-core CPU; no ``carray`` overloads are compiled). Its
object code is kept on disk and later processes load it without importing numba
(:mod:`torchfluid.kernels.kernel_cache`): a numba ``cache=True`` hit would first import
numba (~0.25 s) and initialise its CPU target (~0.45 s of registry imports, scipy.linalg
among them). This module itself
imports neither numba nor llvmlite. The first ``RMSProp.step()`` of a fresh process
(3 x 1000 float32, ``first_step_seconds`` in the benchmark, 2-core CPU): about 1.0 s
with an empty cache (numba import and start-up ~0.7 s, compile ~0.3 s), 0.11 s with it
filled; the earlier ``@njit(cache=True)`` kernels took 1.6-3.4 s and 0.5-0.7 s on the
same machine.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .kernel_cache import kernel as _kernel  # compiled once, then loaded without numba
from .table import DTYPES, LR, MG, MOM, MS, P, SCALE, G, chunk_table, hyper_table, scalar_table

__all__ = [
    "CHUNK",
    "RMSPropCall",
    "TableCall",
    "available",
    "rmsprop_table_",
    "RMSPropTensors",
    "sq_norms_table",
    "sq_norms",
]

CHUNK = 1 << 15  # elements per work item: 128 KiB of fp32 per stream, L2-friendly
_FLOAT_NAMES = ("float32", "float64")


_AVAILABLE: bool | None = None


def available() -> bool:
    """Whether the kernels can run here: numba (which compiles them) and llvmlite are
    installed. Checked without importing numba, which takes ~0.25 s and is only needed
    when a kernel is not in the disk cache yet."""
    global _AVAILABLE
    if _AVAILABLE is None:
        from importlib.util import find_spec

        _AVAILABLE = find_spec("numba") is not None and find_spec("llvmlite") is not None
    return _AVAILABLE


# --------------------------------------------------------------------------- threads
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0  # its worker count
_SERIAL_BELOW = 1 << 16  # elements: smaller groups run on the calling thread alone


def num_threads() -> int:
    """Threads a kernel call uses at most: torch's intra-op thread count."""
    return max(1, torch.get_num_threads())


def workers(chunks: np.ndarray) -> int:
    """Threads worth starting for a chunk table (1 below ``_SERIAL_BELOW`` elements)."""
    return _workers(chunks.shape[0], int((chunks[:, 2] - chunks[:, 1]).sum()))


def _workers(n_chunks: int, elements: int) -> int:
    if n_chunks < 2 or elements < _SERIAL_BELOW:
        return 1
    return min(num_threads(), n_chunks)


def parallel(call, n: int) -> None:
    """Run ``call()`` on ``n`` threads: the calling thread and ``n - 1`` pool threads.

    The kernels share the work through an atomic chunk counter, so a thread slowed by
    a neighbour simply takes fewer chunks: static halves would make the whole step
    wait for it.
    """
    global _POOL, _POOL_SIZE
    if n <= 1:
        call()
        return
    if _POOL is None or _POOL_SIZE < n - 1:
        _POOL, _POOL_SIZE = ThreadPoolExecutor(n - 1, thread_name_prefix="torchfluid"), n - 1
    futures = [_POOL.submit(call) for _ in range(n - 1)]
    call()
    for f in futures:
        f.result()


_GOMP: list = []  # [GOMP_parallel or None], looked up once


def torch_openmp():
    """``GOMP_parallel`` of the OpenMP runtime torch itself loaded (its libgomp, or an
    LLVM libomp, which exports the same entry), or None (no such runtime found in this
    process: Windows, macOS builds without OpenMP, torch built with another pool)."""
    if not _GOMP:
        fn = None
        try:
            import ctypes
            import re

            with open("/proc/self/maps") as f:
                paths = sorted(set(re.findall(r"(/\S*/lib(?:g|i)?omp[^/\s]*\.so[^/\s]*)", f.read())))
            torch_dir = os.path.dirname(torch.__file__)
            paths.sort(key=lambda path: not path.startswith(torch_dir))  # torch's own first
            for path in paths:
                lib = ctypes.CDLL(path)  # already loaded: the same runtime and thread team
                if hasattr(lib, "GOMP_parallel"):
                    fn = lib.GOMP_parallel
                    fn.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint)
                    fn.restype = None
                    break
        except OSError:
            fn = None
        _GOMP.append(fn)
    return _GOMP[0]


def run(kernel, block: np.ndarray | int, n: int) -> None:
    """Run ``kernel(block)`` (a ``void (*)(int64 *)`` C entry point, see
    :mod:`torchfluid.kernels.fused_cpu_jit`) on ``n`` threads; ``block``: the int64
    argument array, or its address.

    With ``n > 1`` the threads are torch's own OpenMP team (``GOMP_parallel``): right
    after a backward pass its workers are still spinning, waiting for torch's next
    parallel op, and take the kernel's chunks at once instead of competing with other
    threads for the cores. Where torch's runtime is not found, the calling thread and
    ``n - 1`` pool threads run it.
    """
    address = block if isinstance(block, int) else block.ctypes.data
    if n <= 1:
        kernel(address)
        return
    gomp = torch_openmp() if _RUNNER == "openmp" else None
    if gomp is not None:
        gomp(_entry(kernel), address, n, 0)
    else:
        parallel(lambda: kernel(address), n)


_ENTRIES: dict = {}


def _entry(fn) -> int:
    """The C address behind a ctypes function object (kernels live for the process)."""
    address = _ENTRIES.get(id(fn))
    if address is None:
        import ctypes

        address = _ENTRIES[id(fn)] = ctypes.cast(fn, ctypes.c_void_p).value
    return address


_RUNNER = os.environ.get("TORCHFLUID_CPU_THREADS", "openmp")  # "openmp" or "pool" (benchmarks compare them)


def rmsprop_table_(
    addr: np.ndarray,
    chunks: np.ndarray,
    hyper: np.ndarray,
    scalars: np.ndarray,
    centered: bool,
    has_moment: bool,
    lr_in_momentum: bool,
    nesterov: bool,
    threads: int | None = None,
    paddle: bool = False,
) -> None:
    """One RMSProp step over every chunk of an address table (see the module doc).

    ``addr``: int64 (n, 5) addresses (param, grad, mean_square, mean_grad, moment);
    ``chunks``: int64 (k, 3) rows (tensor, start, stop); ``hyper``: (n, 6) per-tensor
    (lr, scale, clip_min, clip_max, l2, l1) in the tensors' dtype; ``scalars``: (rho,
    1 - rho, eps inside, eps outside, momentum, 0, 1) in the tensors' dtype; ``threads``:
    how many (default :func:`workers`); ``paddle``: Paddle's roundings of the averages
    (products then sums; ``scalars`` then hold Paddle's ``1 - rho``), else torch's. Columns
    not used (mean_grad unless ``centered``, moment unless ``has_moment``) are never read.
    """
    RMSPropCall(addr, chunks, hyper, scalars, centered, has_moment, lr_in_momentum, nesterov, threads, paddle)()


class RMSPropTensors:
    """:func:`rmsprop_table_` over separate tensors (each its own memory, not a flat group)
    of fixed sizes ``numels`` and one float32/float64 ``dtype``: the tables are built once;
    each call writes the tensors' current addresses and the hyper-parameters into them and
    runs the kernel (a step costs the kernel plus O(#tensors) writes).

    ``centered`` / ``has_moment``: whether calls pass ``mean_grads`` / ``moments``;
    ``lr_in_momentum``: Paddle's velocity (lr inside) or torch's (lr outside). The caller
    guarantees contiguous CPU tensors of ``dtype`` with the given sizes, and state tensors
    that alias nothing else.
    """

    def __init__(
        self, numels: Sequence[int], dtype: torch.dtype, *, centered: bool, has_moment: bool, lr_in_momentum: bool
    ):
        self.numels = tuple(int(n) for n in numels)
        self.dtype = dtype
        self.centered, self.has_moment = bool(centered), bool(has_moment)
        n, np_dtype = len(self.numels), DTYPES[dtype]
        self._addr = np.zeros((n, 5), np.int64)
        self._hyper = hyper_table(n, np_dtype, lr=0.0)
        self._scalars = scalar_table(np_dtype, rho=0.0, epsilon=0.0, momentum=0.0, eps_in_sqrt=True)
        chunks = chunk_table(np.array(self.numels, np.int64), CHUNK)
        self._call = RMSPropCall(
            self._addr, chunks, self._hyper, self._scalars, self.centered, self.has_moment, lr_in_momentum, False
        )

    def __call__(
        self,
        params: Sequence[torch.Tensor],
        grads: Sequence[torch.Tensor],
        mean_squares: Sequence[torch.Tensor],
        mean_grads: Sequence[torch.Tensor] | None,
        moments: Sequence[torch.Tensor] | None,
        *,
        lr: float,
        rho: float,
        epsilon: float,
        momentum: float,
        eps_in_sqrt: bool,
        grad_scale: float = 1.0,
    ) -> None:
        """One step: ``p``, ``mean_square`` (and ``mean_grad``, ``moment``) updated in place
        from ``grad * grad_scale``, as :func:`~torchfluid.kernels.rmsprop.rmsprop_`."""
        if (mean_grads is not None) != self.centered or (moments is not None) != self.has_moment:
            raise ValueError(
                f"mean_grads/moments: given {mean_grads is not None}/{moments is not None}; allowed: "
                f"{self.centered}/{self.has_moment}, as this call's tables were built"
            )
        if not self.numels:
            return
        addr = self._addr
        for col, tensors in ((P, params), (G, grads), (MS, mean_squares), (MG, mean_grads), (MOM, moments)):
            if tensors is not None:
                addr[:, col] = [t.data_ptr() for t in tensors]
        self._hyper[:, LR] = lr
        self._hyper[:, SCALE] = grad_scale
        self._scalars[:] = scalar_table(
            self._scalars.dtype, rho=rho, epsilon=epsilon, momentum=momentum, eps_in_sqrt=eps_in_sqrt
        )
        self._call()


class TableCall:
    """One kernel (``kind``: rmsprop, momentum, adagrad, sgd, adam, adamax or adadelta of
    :mod:`torchfluid.kernels.fused_cpu_jit`) over address / chunk / hyper / scalar
    tables, with the tables checked and the arguments resolved once.

    ``variant``: the compile-time switches of the kind (rmsprop: centered, velocity; adam:
    decoupled, amsgrad);
    ``flags``: its runtime switches (rmsprop: lr_in_momentum, nesterov; momentum:
    nesterov), at most two. ``scalars``: the kind's scalar row (at least ``n_scalars``
    values, in the hyper table's dtype). ``aux``: ``aux_width`` more values per tensor, in
    that dtype (adam: ``eps_t``; decoupled adam: ``eps_t, decay``), read in place like the
    tables.

    Calling it runs the step over the tables' *current* contents: a caller that keeps
    the same arrays and rewrites them in place (new addresses each step, say) repeats
    the call for the cost of the kernel alone. The arrays must stay alive and keep
    their shapes; a new array needs a new call object.
    """

    def __init__(
        self,
        kind: str,
        addr,
        chunks,
        hyper,
        scalars,
        *,
        variant: tuple = (),
        flags: tuple = (),
        n_scalars: int = 1,
        aux: np.ndarray | None = None,
        aux_width: int = 1,
        threads: int | None = None,
    ):
        addr, chunks = _rows(addr, 5), _rows(chunks, 3)
        hyper = _rows(hyper, 6, hyper.dtype)
        if hyper.dtype.name not in _FLOAT_NAMES or hyper.shape[0] != addr.shape[0]:
            raise ValueError(
                f"hyper: {hyper.dtype} {hyper.shape}; allowed: float32 or float64 of shape ({addr.shape[0]}, 6)"
            )
        scalars = np.ascontiguousarray(scalars, hyper.dtype)
        if scalars.size < n_scalars:
            raise ValueError(f"scalars: {scalars.size} values; allowed: {n_scalars}")
        if len(flags) > 2:
            raise ValueError(f"flags: {len(flags)} values; allowed: at most 2")
        if aux is not None:
            aux = np.ascontiguousarray(aux, hyper.dtype)
            if aux.shape != (addr.shape[0] * aux_width,):
                raise ValueError(
                    f"aux: shape {aux.shape}; allowed: ({addr.shape[0] * aux_width},), {aux_width} value(s) per tensor"
                )
        self.kernel = _kernel(kind, hyper.dtype.name, *map(bool, variant))
        self.counter = np.zeros(1, np.int64)
        runtime = [int(bool(f)) for f in flags] + [0] * (2 - len(flags))
        self.block = np.array(
            [
                addr.ctypes.data,
                chunks.ctypes.data,
                chunks.shape[0],
                self.counter.ctypes.data,
                hyper.ctypes.data,
                scalars.ctypes.data,
                *runtime,
                0 if aux is None else aux.ctypes.data,
            ],
            np.int64,
        )
        self._address = self.block.ctypes.data  # the block's address, read once
        self.tables = (addr, chunks, hyper, scalars, aux)  # kept alive: the kernel reads them
        self.threads = threads  # None: by size and torch's thread count at each call
        self._size = (chunks.shape[0], int((chunks[:, 2] - chunks[:, 1]).sum()))

    def __call__(self) -> None:
        self.counter[0] = 0
        n = _workers(*self._size) if self.threads is None else self.threads
        run(self.kernel, self._address, n)


class RMSPropCall(TableCall):
    """:func:`rmsprop_table_` as a :class:`TableCall` (the rmsprop kind's arguments;
    ``paddle``: Paddle's roundings of the averages, see the kernel)."""

    def __init__(
        self,
        addr,
        chunks,
        hyper,
        scalars,
        centered,
        has_moment,
        lr_in_momentum,
        nesterov,
        threads: int | None = None,
        paddle: bool = False,
    ):
        super().__init__(
            "rmsprop",
            addr,
            chunks,
            hyper,
            scalars,
            variant=(centered, has_moment, paddle),
            flags=(lr_in_momentum, nesterov),
            n_scalars=7,
            threads=threads,
        )


def _rows(table: np.ndarray, width: int, dtype=np.int64) -> np.ndarray:
    """``table`` as a C-contiguous ``(n, width)`` array of ``dtype`` (no copy if it is)."""
    table = np.ascontiguousarray(table, dtype)
    if table.ndim != 2 or table.shape[1] != width:
        raise ValueError(f"table of shape {table.shape}; allowed: (n, {width})")
    return table


def sq_norms_table(addr: np.ndarray, col: int, chunks: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Per-tensor ``sum(x*x)`` (float64) of column ``col`` of an address table, one pass.

    ``like``: any array of the tensors' dtype. Deterministic: per-chunk partial sums
    (whichever thread computed them) are added in chunk order.
    """
    addr, chunks = _rows(addr, 5), _rows(chunks, 3)
    kernel = _kernel("sq_sums", _dtype_name(like))
    part = np.empty(chunks.shape[0], np.float64)
    counter = np.zeros(1, np.int64)
    block = np.array(
        [addr.ctypes.data, int(col), chunks.ctypes.data, chunks.shape[0], counter.ctypes.data, part.ctypes.data],
        np.int64,
    )
    run(kernel, block, workers(chunks))
    # chunk sums added per tensor in chunk order (bincount adds in input order); float64
    # even without chunks (every tensor empty), where numpy's bincount gives integers
    return np.bincount(chunks[:, 0], weights=part, minlength=addr.shape[0]).astype(np.float64, copy=False)


def _dtype_name(like: np.ndarray) -> str:
    name = np.asarray(like).dtype.name
    if name not in _FLOAT_NAMES:
        raise ValueError(f"like: dtype {name}; allowed: float32, float64")
    return name


def _require_cpu(name: str, t: torch.Tensor | None) -> None:
    if t is not None and t.device.type != "cpu":
        raise ValueError(
            f"{name}[0]: device {t.device} not supported by the numba kernel; "
            "allowed: cpu (CUDA tensors take torchfluid.kernels.fused_triton)"
        )


def _column(name: str, tensors, *, validate: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Address table with ``tensors`` in column G (None -> 0), numels, dtype sample.

    ``validate=False`` skips the per-tensor checks, for callers that have already made
    sure every tensor is a contiguous CPU float32/float64 tensor of one dtype.
    """
    present = [t for t in tensors if t is not None]
    dtype = present[0].dtype if present else torch.float32
    if validate:
        _require_cpu(name, present[0] if present else None)
        if dtype not in DTYPES:
            raise ValueError(f"{name}: dtype {dtype} not supported; allowed: float32, float64")
        for i, t in enumerate(tensors):
            if t is None:
                continue
            if t.device.type != "cpu" or t.dtype != dtype:
                raise ValueError(f"{name}[{i}]: {t.dtype} on {t.device}; allowed: {dtype} on cpu (as {name}[0])")
            if not t.is_contiguous():
                raise ValueError(
                    f"{name}[{i}]: strides {t.stride()} for shape {tuple(t.shape)} "
                    "are not contiguous; allowed: contiguous tensors"
                )
    addr = np.zeros((len(tensors), 5), np.int64)
    addr[:, G] = [0 if t is None else t.data_ptr() for t in tensors]
    numel = np.fromiter((0 if t is None else t.numel() for t in tensors), np.int64, len(tensors))
    return addr, numel, np.zeros(0, DTYPES[dtype])


def sq_norms(tensors: Sequence[torch.Tensor | None], *, validate: bool = True) -> np.ndarray:
    """Per-tensor ``sum(x*x)`` as float64, in one parallel pass (None counts 0).

    ``validate=False``: the caller guarantees contiguous CPU tensors of one float dtype
    (see :func:`torchfluid.kernels.norms.squared_norms`, which routes them here).
    """
    addr, numel, like = _column("tensors", tensors, validate=validate)
    return sq_norms_table(addr, G, chunk_table(numel, CHUNK), like)
