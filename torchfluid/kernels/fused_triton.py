"""Single-pass multi-tensor RMSProp on CUDA (Triton): one launch per group and step.

Same contract and the same maths as :mod:`torchfluid.kernels.fused_cpu` (see its module
doc for the per-element formula), over the tables of :mod:`torchfluid.kernels.table`:
an ``int64`` address table (param, grad, mean_square,
mean_grad, moment per tensor), a chunk table of ``(tensor, start, stop)`` rows with
chunks of :data:`CHUNK` elements (one Triton program per chunk, ``ITERS`` blocks of
``BLOCK`` elements each), a per-tensor
hyper-parameter table (lr, scale, clip_min, clip_max, l2, l1) and the scalars
(rho, 1 - rho, eps inside, eps outside, momentum, 0, 1), all device tensors.

Rounding follows the reference kernel's torch ops: with ``paddle`` (Paddle's convention)
the averages' products rounded, then the sums, as Paddle's CPU kernel; otherwise an explicit
``fma`` where torch's ``addcmul_`` and ``add_(alpha=)`` contract; with ``lr_in_momentum``
the step is ``(lr * g) / den``, else ``(g / den) * lr``; IEEE ``sqrt_rn``/``div_rn`` (torch
builds without fast math) and ``enable_fp_fusion=False`` so that no other multiply-add is
contracted.

On CPU tensors the kernels run under ``TRITON_INTERPRET=1`` (set before importing
triton), which is how the test-suite checks them without a GPU.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

__all__ = ["BLOCK", "CHUNK", "rmsprop_table_"]


def _config() -> tuple[int, int, int]:
    """(BLOCK, ITERS, WARPS) of the update kernel; ``TORCHFLUID_TRITON_CONFIG="4096,2,8"``
    overrides (tuning: ``benchmarks/bench_rmsprop.py --device cuda --sweep``)."""
    raw = os.environ.get("TORCHFLUID_TRITON_CONFIG", "")
    if not raw:
        return 1024, 1, 4  # measured best on an H100: 95% of copy bandwidth
    try:
        block, iters, warps = (int(x) for x in raw.split(","))
    except ValueError:
        raise ValueError(
            f"TORCHFLUID_TRITON_CONFIG: {raw!r}; allowed: 'BLOCK,ITERS,WARPS' with powers of two, e.g. '4096,2,8'"
        ) from None
    return block, iters, warps


BLOCK, ITERS, WARPS = _config()
CHUNK = BLOCK * ITERS  # elements per program (one chunk-table row)


@triton.jit
def _rmsprop_kernel(
    addr_ptr,
    chunk_ptr,
    hyper_ptr,
    sc_ptr,
    CENTERED: tl.constexpr,
    HAS_MOM: tl.constexpr,
    LR_IN_MOM: tl.constexpr,
    NESTEROV: tl.constexpr,
    PADDLE: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK: tl.constexpr,
    ITERS: tl.constexpr,
):
    c = tl.program_id(0).to(tl.int64)
    t = tl.load(chunk_ptr + c * 3)
    lo = tl.load(chunk_ptr + c * 3 + 1)
    hi = tl.load(chunk_ptr + c * 3 + 2)
    g_addr = tl.load(addr_ptr + t * 5 + 1)
    if g_addr != 0:
        pty = hyper_ptr.dtype
        p_ptr = tl.load(addr_ptr + t * 5).to(pty)
        g_ptr = g_addr.to(pty)
        ms_ptr = tl.load(addr_ptr + t * 5 + 2).to(pty)
        mg_ptr = ms_ptr
        mom_ptr = ms_ptr
        if CENTERED:
            mg_ptr = tl.load(addr_ptr + t * 5 + 3).to(pty)
        if HAS_MOM:
            mom_ptr = tl.load(addr_ptr + t * 5 + 4).to(pty)
        lr = tl.load(hyper_ptr + t * 6)
        scale = tl.load(hyper_ptr + t * 6 + 1)
        cmin = tl.load(hyper_ptr + t * 6 + 2)
        cmax = tl.load(hyper_ptr + t * 6 + 3)
        l2 = tl.load(hyper_ptr + t * 6 + 4)
        l1 = tl.load(hyper_ptr + t * 6 + 5)
        rho = tl.load(sc_ptr)
        rho1 = tl.load(sc_ptr + 1)
        e_in = tl.load(sc_ptr + 2)
        e_out = tl.load(sc_ptr + 3)
        beta = tl.load(sc_ptr + 4)
        zero = tl.load(sc_ptr + 5)
        one = tl.load(sc_ptr + 6)
        for k in tl.static_range(ITERS):
            offs = lo + k * BLOCK + tl.arange(0, BLOCK)
            mask = offs < hi
            p = tl.load(p_ptr + offs, mask=mask, other=0)
            g = tl.load(g_ptr + offs, mask=mask, other=0) * scale
            g = tl.where(g < cmin, cmin, tl.where(g > cmax, cmax, g))
            if l2 != zero:
                g = g + l2 * p
            if l1 != zero:
                g = g + l1 * tl.where(p > zero, one, tl.where(p < zero, -one, zero))
            if PADDLE:  # Paddle's CPU kernel: products rounded, then the sums
                ms = (rho1 * g) * g + tl.load(ms_ptr + offs, mask=mask, other=0) * rho
            else:
                ms = tl.fma(rho1 * g, g, tl.load(ms_ptr + offs, mask=mask, other=0) * rho)
            tl.store(ms_ptr + offs, ms, mask=mask)
            if CENTERED:
                if PADDLE:
                    mg = g * rho1 + tl.load(mg_ptr + offs, mask=mask, other=0) * rho
                else:
                    mg = tl.fma(g, rho1, tl.load(mg_ptr + offs, mask=mask, other=0) * rho)
                tl.store(mg_ptr + offs, mg, mask=mask)
                var = ms - mg * mg
                var = tl.where(var < zero, zero, var)
            else:
                var = ms
            num = g * lr if LR_IN_MOM else g  # Paddle's (lr * g) / den; torch's (g / den) * lr
            if FP64:  # float64 sqrt and division are IEEE round-to-nearest already
                u = num / (tl.sqrt(var + e_in) + e_out)
            else:
                u = tl.div_rn(num, tl.sqrt_rn(var + e_in) + e_out)
            if HAS_MOM:
                m = tl.load(mom_ptr + offs, mask=mask, other=0) * beta
                if LR_IN_MOM:
                    ul = u
                    m = m + ul
                    if NESTEROV:
                        upd = tl.fma(m, beta, ul)
                    else:
                        upd = m
                else:
                    m = m + u
                    if NESTEROV:
                        upd = tl.fma(m, beta, u) * lr
                    else:
                        upd = m * lr
                tl.store(mom_ptr + offs, m, mask=mask)
            elif LR_IN_MOM:
                upd = u
            else:
                upd = u * lr
            tl.store(p_ptr + offs, p - upd, mask=mask)


def rmsprop_table_(
    addr: torch.Tensor,
    chunks: torch.Tensor,
    hyper: torch.Tensor,
    scalars: torch.Tensor,
    centered: bool,
    has_moment: bool,
    lr_in_momentum: bool,
    nesterov: bool,
    *,
    paddle: bool = False,
) -> None:
    """One RMSProp step over every chunk (tables of :mod:`torchfluid.kernels.table`).

    ``chunks`` must be cut with :data:`CHUNK`-element chunks; ``hyper`` and ``scalars``
    are in the tensors' dtype and on their device, as are ``addr`` and ``chunks``;
    ``paddle``: Paddle's roundings of the averages (the module doc).
    """
    if chunks.shape[0] == 0:
        return
    _rmsprop_kernel[(chunks.shape[0],)](
        addr,
        chunks,
        hyper,
        scalars,
        CENTERED=bool(centered),
        HAS_MOM=bool(has_moment),
        LR_IN_MOM=bool(lr_in_momentum),
        NESTEROV=bool(nesterov),
        PADDLE=bool(paddle),
        FP64=hyper.dtype == torch.float64,
        BLOCK=BLOCK,
        ITERS=ITERS,
        num_warps=WARPS,
        enable_fp_fusion=False,
    )
