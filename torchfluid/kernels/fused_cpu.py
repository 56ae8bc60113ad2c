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
torch's on the same cores. Numba compiles each (dtype, centered, velocity) variant when
first used and caches it on disk (``cache=True``); ``fastmath`` is off for the update
so that IEEE rounding matches the reference. The squared-norm helper accumulates in
float64 with re-association allowed (a reduction; its order differs from torch's).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numba
from llvmlite import ir as llvmir
import numpy as np
import torch
from numba import njit, types
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
def _pointer(typingctx, address, like):
    """``(T*) address`` where ``T`` is ``like``'s dtype (an int64 address -> CPointer)."""
    ptr_t = types.CPointer(like.dtype)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(ptr_t))

    return ptr_t(address, like), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """IEEE fused multiply-add ``a * b + c`` with one rounding (llvm.fma)."""

    def codegen(context, builder, signature, args):
        ty = args[0].type
        fnty = llvmir.FunctionType(ty, [ty, ty, ty])
        fn = builder.module.declare_intrinsic("llvm.fma", [ty], fnty)
        return builder.call(fn, args)

    return a(a, b, c), codegen


@njit(cache=True, inline="always", error_model="numpy")
def _view(address, lo, hi, like):
    """Elements ``lo:hi`` of the array at ``address`` (a fresh view starting at 0)."""
    return numba.carray(_pointer(address + lo * like.itemsize, like), (hi - lo,))


@njit(cache=True, inline="always", error_model="numpy")
def _chunk(p, g, ms, mg, mom, h, sc, lim, nest):
    """Update every element of the views; ``mg``/``mom`` typed None prune their branches."""
    lr, scale, cmin, cmax, l2, l1 = h[LR], h[SCALE], h[LO], h[HI], h[L2], h[L1]
    rho, rho1, e_in, e_out, beta = sc[0], sc[1], sc[2], sc[3], sc[4]
    zero = sc[5]
    one = sc[6]
    for j in range(p.shape[0]):
        pj = p[j]
        gj = g[j] * scale
        gj = cmin if gj < cmin else (cmax if gj > cmax else gj)
        gj = gj + l2 * pj if l2 != zero else gj
        sgn = one if pj > zero else (-one if pj < zero else zero)
        gj = gj + l1 * sgn if l1 != zero else gj
        msj = _fma(rho1 * gj, gj, ms[j] * rho)
        ms[j] = msj
        if mg is not None:
            mgj = _fma(gj, rho1, mg[j] * rho)
            mg[j] = mgj
            var = msj - mgj * mgj
            var = zero if var < zero else var
        else:
            var = msj
        u = gj / (np.sqrt(var + e_in) + e_out)
        if mom is not None:
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


@intrinsic
def _next(typingctx, counter):
    """Atomically ``counter[0] += 1`` and return the old value (work distribution)."""

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        one = llvmir.Constant(llvmir.IntType(64), 1)
        return builder.atomic_rmw("add", ary.data, one, "monotonic")

    return types.int64(counter), codegen


@njit(nogil=True, cache=True, fastmath=False, error_model="numpy")
def _rmsprop_kernel(addr, chunks, counter, hyper, scalars, mg_tag, mom_tag, lim, nest):
    # mg_tag / mom_tag are None or any array (centered / velocity kept): numba prunes
    # the ``is None`` branches at compile time, so each (dtype, centered, velocity)
    # variant is one straight vectorized loop, compiled when first used. lim / nest
    # (lr_in_momentum / nesterov) are loop-invariant booleans LLVM turns into selects.
    # Threads take chunks from a shared atomic counter until none is left.
    while True:
        c = _next(counter)
        if c >= chunks.shape[0]:
            break
        t, lo, hi = chunks[c, 0], chunks[c, 1], chunks[c, 2]
        if addr[t, G] == 0:
            continue
        p = _view(addr[t, P], lo, hi, hyper)
        g = _view(addr[t, G], lo, hi, hyper)
        ms = _view(addr[t, MS], lo, hi, hyper)
        h = hyper[t]
        if mg_tag is not None:
            mg = _view(addr[t, MG], lo, hi, hyper)
            if mom_tag is not None:
                mom = _view(addr[t, MOM], lo, hi, hyper)
                _chunk(p, g, ms, mg, mom, h, scalars, lim, nest)
            else:
                _chunk(p, g, ms, mg, None, h, scalars, lim, nest)
        else:
            if mom_tag is not None:
                mom = _view(addr[t, MOM], lo, hi, hyper)
                _chunk(p, g, ms, None, mom, h, scalars, lim, nest)
            else:
                _chunk(p, g, ms, None, None, h, scalars, lim, nest)


@njit(nogil=True, cache=True, fastmath={"reassoc", "nsz", "contract"}, error_model="numpy")
def _sq_sums_kernel(addr, col, chunks, counter, like, out):
    while True:
        c = _next(counter)
        if c >= chunks.shape[0]:
            break
        t, lo, hi = chunks[c, 0], chunks[c, 1], chunks[c, 2]
        acc = 0.0
        if addr[t, col] != 0:
            x = _view(addr[t, col], lo, hi, like)
            for j in range(x.shape[0]):
                v = np.float64(x[j])
                acc += v * v
        out[c] = acc


@njit(nogil=True, cache=True, error_model="numpy")
def _zero_kernel(addr, col, chunks, counter, like):
    while True:
        c = _next(counter)
        if c >= chunks.shape[0]:
            break
        t, lo, hi = chunks[c, 0], chunks[c, 1], chunks[c, 2]
        if addr[t, col] != 0:
            x = _view(addr[t, col], lo, hi, like)
            for j in range(x.shape[0]):
                x[j] = 0


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
    counter = np.zeros(1, np.int64)
    tags = (hyper if centered else None, hyper if has_moment else None)
    lim, nest = bool(lr_in_momentum), bool(nesterov)
    parallel(lambda: _rmsprop_kernel(addr, chunks, counter, hyper, scalars, *tags, lim, nest),
             workers(chunks) if threads is None else threads)


@njit(cache=True)
def _segment_sums(chunks, part, n):
    out = np.zeros(n, np.float64)
    for c in range(chunks.shape[0]):
        out[chunks[c, 0]] += part[c]
    return out


def sq_norms_table(addr: np.ndarray, col: int, chunks: np.ndarray,
                   like: np.ndarray) -> np.ndarray:
    """Per-tensor ``sum(x*x)`` (float64) of column ``col`` of an address table, one pass.

    ``like``: any array of the tensors' dtype. Deterministic: per-chunk partial sums
    (whichever thread computed them) are added in chunk order.
    """
    part = np.empty(chunks.shape[0], np.float64)
    counter = np.zeros(1, np.int64)
    parallel(lambda: _sq_sums_kernel(addr, col, chunks, counter, like, part), workers(chunks))
    return _segment_sums(chunks, part, addr.shape[0])


def zero_table_(addr: np.ndarray, col: int, chunks: np.ndarray, like: np.ndarray) -> None:
    """Write zeros over column ``col`` of an address table (one parallel pass)."""
    counter = np.zeros(1, np.int64)
    parallel(lambda: _zero_kernel(addr, col, chunks, counter, like), workers(chunks))


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
