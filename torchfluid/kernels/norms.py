"""Squared L2 norms of many tensors at once: the reduction behind gradient clipping.

``squared_norms(tensors)[i] = sum(tensors[i] ** 2)``, accumulated in float64, as one
float64 tensor on the first tensor's device. Squares of float16/bfloat16/float32
values are exact in float64, so the only rounding is in the additions (relative error
about ``n * 2**-53`` for ``n`` elements, far below a float32 ulp); Paddle accumulates in
float32 (error up to ``n * 2**-24``), torch's ``clip_grad_norm_`` in the gradients'
dtype. How each tensor is reduced:

* **CPU, dense contiguous float32/float64, numba installed**: every such tensor in ONE
  multi-threaded pass (:func:`torchfluid.kernels.fused_cpu.sq_norms`), read in place,
  nothing allocated in proportion to their size. Per-chunk partial sums are added in
  chunk order, so the result does not depend on the thread count.
* **Anything else** (CUDA, float16/bfloat16, non-contiguous, numba missing):
  ``torch._foreach_norm(..., dtype=float64)`` squared: one multi-tensor launch per
  device on CUDA, per-tensor reductions on CPU.

Both are deterministic for a given machine; they may differ from each other in the
last float64 bit (the additions are ordered differently).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["squared_norms"]

_NUMBA_DTYPES = (torch.float32, torch.float64)
_fused_cpu = None  # torchfluid.kernels.fused_cpu once looked up; False if numba is missing


def _numba_kernels():
    """The numba kernels module, or False when numba is not installed."""
    global _fused_cpu
    if _fused_cpu is None:
        from . import fused_cpu

        _fused_cpu = fused_cpu if fused_cpu.available() else False
    return _fused_cpu


@torch.no_grad()
def squared_norms(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-tensor ``sum(x*x)``, float64, shape ``[len(tensors)]``, on ``tensors[0]``'s
    device (CPU when empty). Dense tensors only (pass a sparse tensor's values)."""
    kernels = _numba_kernels()
    by_route: dict = {}  # float dtype (numba) or device (torch) -> tensor indices
    for i, t in enumerate(tensors):
        if not isinstance(t, torch.Tensor) or t.layout != torch.strided:
            what = f"a {t.layout} tensor" if isinstance(t, torch.Tensor) else type(t).__name__
            raise TypeError(f"tensors[{i}]: {what}; allowed: dense torch.Tensors")
        # cheap attributes first: this loop is per tensor and per step
        numba = kernels and t.is_cpu and t.dtype in _NUMBA_DTYPES and t.is_contiguous()
        by_route.setdefault(t.dtype if numba else t.device, []).append(i)
    device = tensors[0].device if tensors else torch.device("cpu")
    out = None
    for route, idx in by_route.items():
        ts = [tensors[i] for i in idx] if len(idx) < len(tensors) else list(tensors)
        if isinstance(route, torch.dtype):  # validated above: read them in place
            sq = torch.from_numpy(kernels.sq_norms(ts, validate=False))
        else:
            sq = torch.stack(torch._foreach_norm(ts, 2, dtype=torch.float64)).square_()
        if len(idx) == len(tensors):
            return sq.to(device)
        if out is None:
            out = torch.zeros(len(tensors), dtype=torch.float64, device=device)
        out[torch.tensor(idx, device=device)] = sq.to(device)
    return torch.zeros(0, dtype=torch.float64) if out is None else out
