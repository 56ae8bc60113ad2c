"""Flat RMSProp state for a group of parameters, stepped by one fused kernel call.

How the tensors reach the kernel:

* **State** (``mean_square``, ``mean_grad``, ``momentum``) lives in flat contiguous
  buffers owned by :class:`FlatGroup`, one per kind, each parameter's slice starting
  64-byte aligned; ``group.state(i)`` gives per-parameter views (shaped like the
  parameter) for the optimizer's ``state`` / ``state_dict``. Writing into a view
  (``copy_``) writes the flat buffer.
* **Parameters and gradients** are *not* copied or re-homed: the kernel receives a
  table of their addresses (O(#params) int64), refreshed every step. Whatever
  ``.grad`` autograd produced -- a fresh tensor after ``zero_grad(set_to_none=True)``
  or a view of our flat gradient buffer -- is read in place, so no temporary
  proportional to the parameter size is ever made. Addresses, sizes, dtypes and
  devices are re-checked each step (cheap list compares; a changed address is
  validated before use), so a ``p.data = ...`` swap or ``.to()`` can never make the
  kernel touch freed memory: it raises, and the caller builds a new group.
* **Gradient clearing**: :meth:`zero_grads` points every existing ``p.grad`` at a view
  of one flat gradient buffer and clears it with one ``memset``; autograd then
  accumulates into those views in place (it only replaces an undefined ``.grad``).

The tables are those of :mod:`torchfluid.kernels.table`; CPU groups step with
:mod:`torchfluid.kernels.fused_cpu` (numba), CUDA groups with
:mod:`torchfluid.kernels.fused_triton`, each imported only where it is used.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from .._grad_mode import no_grad
from . import table
from .rmsprop import RMSPropHyper, plain_memory

__all__ = ["FastPathWarning", "FlatGroup", "RMSPropHyper", "fused_supported", "missing"]

_ALIGN = 16  # elements; 64 bytes for float32
_STATE = ("mean_square", "mean_grad", "momentum")


_MISSING: dict[str, str | None] = {}  # device type -> missing package (None: all there)


_KERNEL_DEVICES = ("cpu", "cuda")  # device types with a fused kernel


def missing(device_type: str) -> str | None:
    """The package the fused kernel of ``device_type`` needs and this install lacks
    ("numba" on CPU, "triton" on CUDA), None when it is there or when the device type
    has no fused kernel at all. Looked up once per device type, without importing it."""
    if device_type not in _MISSING:
        from importlib.util import find_spec

        if device_type == "cpu":
            from . import fused_cpu

            _MISSING[device_type] = None if fused_cpu.available() else "numba"
        elif device_type == "cuda":
            _MISSING[device_type] = None if find_spec("triton") is not None else "triton"
        else:
            _MISSING[device_type] = None
    return _MISSING[device_type]


_WARNED: set[str] = set()  # device types whose missing kernel package was reported


class FastPathWarning(RuntimeWarning):
    """The fused kernel would take these tensors, but its package is not installed."""


def fused_supported(t: torch.Tensor, *, warn: bool = False) -> bool:
    """Whether ``t`` can be stepped by a fused kernel here (dtype, layout, and the
    device's kernel package installed: numba on CPU, triton on CUDA).

    ``warn=True``: when only the package is missing, say so once per process and
    device type (a :class:`FastPathWarning` naming the package to install).
    """
    if (
        t.dtype not in table.DTYPES
        or t.layout != torch.strided
        or not t.is_contiguous()
        or t.device.type not in _KERNEL_DEVICES
    ):
        return False
    if not plain_memory(t):  # DTensor & co: their memory is not theirs to read by address
        return False
    package = missing(t.device.type)
    if package is None:
        return True
    if warn and t.device.type not in _WARNED:
        _WARNED.add(t.device.type)
        warnings.warn(
            f"torchfluid: {package} is not installed, so RMSProp updates {t.device.type} parameters with its "
            f"reference kernel (same results, one pass per operation instead of one fused pass). For the fused "
            f"kernel: pip install {package}",
            FastPathWarning,
            stacklevel=2,
        )
    return False


_NO_SUBCLASS = torch._C.DisableTorchFunctionSubclass


def _hashable(value):
    """``value`` comparable by ``==`` across steps: sequences as tuples of floats (a
    tensor is never equal to last step's, so it always rebuilds)."""
    if value is None or isinstance(value, (int, float)):
        return value
    try:
        return tuple(map(float, value)) if not isinstance(value, torch.Tensor) else object()
    except (TypeError, ValueError):
        return object()  # not a flat sequence of numbers: hyper_table says what is wrong


def _as_float(name: str, value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {value!r} is not a real number") from None


class FlatGroup:
    """Parameters of one device and dtype, their flat RMSProp state, and a fused step.

    ``centered`` allocates ``mean_grad``; ``momentum`` allocates the velocity buffer
    (needed for any momentum != 0; Paddle keeps it always). All state starts at 0.
    """

    def __init__(self, params: Sequence[torch.Tensor], *, centered: bool, momentum: bool):
        self.params = list(params)
        first = self.params[0] if self.params else torch.empty(0)
        self.device, self.dtype = first.device, first.dtype
        for i, p in enumerate(self.params):
            self._check("params", i, p, None)
        self.centered, self.has_momentum = bool(centered), bool(momentum)
        self.numel = [p.numel() for p in self.params]
        sizes = -(-np.asarray(self.numel, np.int64) // _ALIGN) * _ALIGN
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        total = int(self.offsets[-1])
        kw = dict(dtype=self.dtype, device=self.device)
        self.mean_square = torch.zeros(total, **kw)
        self.mean_grad = torch.zeros(total, **kw) if self.centered else None
        self.momentum = torch.zeros(total, **kw) if self.has_momentum else None
        self.grad_buffer: torch.Tensor | None = None
        self._views = {name: self._slices(getattr(self, name)) for name in _STATE}
        self._grad_views: list[torch.Tensor] | None = None

        self._cuda = self.device.type == "cuda"
        n = len(self.params)
        self.addr = np.zeros((n, 5), np.int64)
        for col, name in ((table.MS, "mean_square"), (table.MG, "mean_grad"), (table.MOM, "momentum")):
            if self._views[name] is not None:
                self.addr[:, col] = [v.data_ptr() for v in self._views[name]]
        self._addr_version = 0  # bumped whenever the address table changes
        self._hyper_key: tuple | None = None  # the hyper-parameters of the last step
        self._call = None  # the prepared CPU kernel call over addr / chunks / last hyper tables
        self._pptr: list[int] = [-1] * n
        self._gptr: list[int] = [-1] * n
        numel = np.asarray(self.numel, np.int64)
        if self._cuda:
            from . import fused_triton as gpu

            self._kernels = gpu
            self.chunks = table.chunk_table(numel, gpu.CHUNK)
            self._dev = {"chunks": self._to_dev(self.chunks)}
            self._sent: dict[str, np.ndarray] = {}
        else:
            from . import fused_cpu

            self._kernels = fused_cpu
            self.chunks = table.chunk_table(numel, fused_cpu.CHUNK)
        self._like = np.zeros(0, table.DTYPES.get(self.dtype, np.float32))

    # ------------------------------------------------------------------ layout
    def _slices(self, buf: torch.Tensor | None) -> list[torch.Tensor] | None:
        if buf is None:
            return None
        o = self.offsets
        return [
            buf[o[i] : o[i] + n].view(p.shape) for i, (p, n) in enumerate(zip(self.params, self.numel, strict=True))
        ]

    def _check(self, name: str, i: int, t: torch.Tensor, numel: int | None) -> None:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}[{i}]: {type(t).__name__}; allowed: a torch.Tensor")
        if t.dtype not in table.DTYPES:
            raise ValueError(
                f"{name}[{i}]: dtype {t.dtype} not supported by the fused path; allowed: torch.float32, torch.float64"
            )
        if t.device != self.device or t.dtype != self.dtype:
            raise ValueError(
                f"{name}[{i}]: {t.dtype} on {t.device}, the group holds "
                f"{self.dtype} on {self.device}; allowed: the same (rebuild "
                "the group after moving or casting parameters)"
            )
        if t.layout != torch.strided or not t.is_contiguous():
            raise ValueError(
                f"{name}[{i}]: a non-contiguous or sparse tensor (shape "
                f"{tuple(t.shape)}, strides {t.stride()}); allowed: "
                "contiguous dense tensors"
            )
        if numel is not None and t.numel() != numel:
            raise ValueError(
                f"{name}[{i}]: {t.numel()} elements, the group was built "
                f"for {numel}; allowed: {numel} (rebuild the group)"
            )

    def state(self, i: int) -> dict[str, torch.Tensor]:
        """``{'mean_square': view, ['mean_grad': view], ['momentum': view]}`` of param i."""
        return {k: v[i] for k, v in self._views.items() if v is not None}

    # --------------------------------------------------------------- per step
    def _to_dev(self, arr: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(arr)).to(self.device)

    def _bind(self, grads: Sequence[torch.Tensor | None] | None) -> None:
        """Refresh the param/grad columns of the address table, validating changes."""
        params, dt = self.params, self.dtype
        # Sizes, dtypes and layouts are re-checked every step: an address alone can be
        # reused by the allocator for a tensor of another dtype or layout.
        if [p.numel() for p in params] != self.numel or any(p.dtype != dt or not p.is_contiguous() for p in params):
            for i, p in enumerate(params):
                self._check("params", i, p, self.numel[i])
        pp = [p.data_ptr() for p in params]
        if pp != self._pptr:
            for i, p in enumerate(params):
                if pp[i] != self._pptr[i]:
                    self._check("params", i, p, self.numel[i])
            self.addr[:, table.P] = pp
            self._pptr = pp
            self._addr_version += 1
        if grads is None:
            grads = [p.grad for p in params]
        elif len(grads) != len(params):
            raise ValueError(f"grads: {len(grads)} tensors for {len(params)} params; allowed: {len(params)}")
        gp = [0 if g is None else g.data_ptr() for g in grads]
        if any(g is not None and (g.dtype != dt or not g.is_contiguous()) for g in grads):
            self._gptr = [-1] * len(params)  # validate all: one of them is wrong
        if gp != self._gptr:
            for i, g in enumerate(grads):
                if g is not None and gp[i] != self._gptr[i]:
                    self._check("grads", i, g, self.numel[i])
            self.addr[:, table.G] = gp
            self._gptr = gp
            self._addr_version += 1

    def _send(self, key: str, arr: np.ndarray, version=None) -> torch.Tensor:
        """Device copy of a small host table, re-sent only when it changed (compared by
        ``version`` when given, else by content)."""
        old = self._sent.get(key)
        if version is not None:
            if old != version:
                self._dev[key] = self._to_dev(arr)
                self._sent[key] = version
        elif old is None or not np.array_equal(old, arr):
            self._dev[key] = self._to_dev(arr)
            self._sent[key] = arr.copy()
        return self._dev[key]

    @no_grad
    def step(
        self,
        hyper: RMSPropHyper,
        *,
        grads: Sequence[torch.Tensor | None] | None = None,
        grad_scale=1.0,
        clip_min=None,
        clip_max=None,
        l2=0.0,
        l1=0.0,
    ) -> None:
        """One fused RMSProp step of every parameter with a gradient (module maths).

        ``hyper``: :func:`~torchfluid.kernels.rmsprop.rmsprop_`'s hyper-parameters as one
        record; its ``lr`` may also be one per parameter, and decoupled weight decay and
        bias correction are not fused (both must be 0). ``grads`` defaults to each
        parameter's ``.grad`` (None skips it). ``grad_scale``, ``clip_min``/``clip_max``,
        ``l2``, ``l1``: a float or one per parameter; ``grad_scale`` may also be a tensor
        (0-d or one per parameter) on the group's device, read without a host sync on CUDA.
        """
        hyper = hyper.for_dtype(self.dtype)  # Paddle's float32 attributes, for a float64 group
        lr, eps_in_sqrt, lr_in_momentum, nesterov = hyper.lr, hyper.eps_in_sqrt, hyper.lr_in_momentum, hyper.nesterov
        rho, epsilon, momentum = (_as_float(k, getattr(hyper, k)) for k in ("rho", "epsilon", "momentum"))
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"rho: {rho}; allowed: 0 <= rho <= 1")
        if not epsilon >= 0.0:
            raise ValueError(f"epsilon: {epsilon}; allowed: epsilon >= 0")
        if not momentum >= 0.0:
            raise ValueError(f"momentum: {momentum}; allowed: momentum >= 0")
        for name in ("decoupled_weight_decay", "bias_correction_step"):
            if getattr(hyper, name):
                raise ValueError(f"{name}: {getattr(hyper, name)}; allowed: 0 (the fused kernel does not apply it)")
        if momentum != 0.0 and not self.has_momentum:
            raise ValueError(
                f"momentum: {momentum} needs a velocity buffer; allowed: 0 for a group built with momentum=False"
            )
        if nesterov and not self.has_momentum:
            raise ValueError(
                "nesterov: True needs a velocity buffer; allowed: False for a group built with momentum=False"
            )
        if not self.params:
            return
        with _NO_SUBCLASS():  # tensor subclasses' Python hooks are not needed to read addresses
            self._bind(grads)
        dt = self._like.dtype
        scale_t = grad_scale if isinstance(grad_scale, torch.Tensor) else None
        if scale_t is not None and not self._cuda:
            grad_scale, scale_t = scale_t.detach().double().cpu().numpy().reshape(-1), None
            if grad_scale.size == 1:
                grad_scale = float(grad_scale[0])
        extras = (lr, 1.0 if scale_t is not None else grad_scale, clip_min, clip_max, l2, l1)
        key = tuple(map(_hashable, extras)) + (rho, epsilon, momentum, bool(eps_in_sqrt))
        flags = (self.centered, self.has_momentum, bool(lr_in_momentum), bool(nesterov))
        if key == self._hyper_key:
            hyper, sc = self._hyper, self._scalars  # the same as last step: no rebuild
        else:
            hyper = table.hyper_table(
                len(self.params),
                dt,
                lr=extras[0],
                grad_scale=extras[1],
                clip_min=clip_min,
                clip_max=clip_max,
                l2=l2,
                l1=l1,
            )
            sc = table.scalar_table(dt, rho=rho, epsilon=epsilon, momentum=momentum, eps_in_sqrt=eps_in_sqrt)
            self._hyper_key = key
            self._hyper, self._scalars = hyper, sc
            self._call = None
        if not self._cuda:
            if self._call is None or self._call_flags != flags:
                self._call = self._kernels.RMSPropCall(self.addr, self.chunks, hyper, sc, *flags)
                self._call_flags = flags
            self._call()
            return
        hyper_d = self._send("hyper", hyper)
        if scale_t is not None:
            hyper_d = hyper_d.clone()
            hyper_d[:, table.SCALE] = scale_t.detach().to(self.device, self.dtype).reshape(-1)
        self._kernels.rmsprop_table_(
            self._send("addr", self.addr, self._addr_version),
            self._dev["chunks"],
            hyper_d,
            self._send("scalars", sc),
            *flags,
        )

    # ---------------------------------------------------------------- gradients
    @torch.no_grad()
    def zero_grads(self, *, set_to_none: bool = False) -> None:
        """Clear the gradients: one memset of the flat gradient buffer.

        Gradients that are None stay None (Paddle's ``clear_gradients`` zeroes the
        existing ones: a parameter without gradient must not start getting updates);
        any other ``.grad`` not yet a view of the buffer is re-pointed at its view (not
        copied: it is being cleared). ``set_to_none=True`` drops gradients and buffer.
        """
        if set_to_none:
            for p in self.params:
                p.grad = None
            self.grad_buffer = self._grad_views = None
            return
        if self.grad_buffer is None:
            self.grad_buffer = torch.empty(int(self.offsets[-1]), dtype=self.dtype, device=self.device)
            self._grad_views = self._slices(self.grad_buffer)
        for p, v in zip(self.params, self._grad_views, strict=True):
            g = p.grad
            if g is not None and g is not v:
                p.grad = v
        self.grad_buffer.zero_()
