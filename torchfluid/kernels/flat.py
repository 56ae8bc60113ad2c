"""Flat optimizer state for a group of parameters, stepped by one fused kernel call.

:class:`FlatGroup` holds RMSProp's state (CPU and CUDA); :class:`FlatMomentum`,
:class:`FlatAdagrad`, :class:`FlatSGD` and :class:`FlatAdam` those of the other rules
(CPU). They share the layout, address binding and gradient clearing described here.

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

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from .._grad_mode import no_grad
from . import table
from .attrs import one_minus, paddle_attrs
from .table import NO_FOLD, GradFold
from .rmsprop import RMSPropHyper, plain_memory

__all__ = [
    "FastPathWarning",
    "FlatAdagrad",
    "FlatAdam",
    "FlatAdamax",
    "FlatAdadelta",
    "FlatGroup",
    "FlatMomentum",
    "FlatSGD",
    "GradFold",
    "NO_FOLD",
    "RMSPropHyper",
    "fused_supported",
    "missing",
]

_ALIGN = 16  # elements; 64 bytes for float32


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


def fused_supported(t: torch.Tensor, *, warn: bool = False, devices: Sequence[str] = _KERNEL_DEVICES) -> bool:
    """Whether ``t`` can be stepped by a fused kernel here (dtype, layout, and the
    device's kernel package installed: numba on CPU, triton on CUDA). ``devices``: the
    device types the rule's kernel exists for (RMSProp: cpu and cuda; Momentum, Adagrad,
    SGD and Adam: cpu).

    ``warn=True``: when only the package is missing, say so once per process and
    device type (a :class:`FastPathWarning` naming the package to install).
    """
    if (
        t.dtype not in table.DTYPES
        or t.layout != torch.strided
        or not t.is_contiguous()
        or t.device.type not in devices
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
            f"torchfluid: {package} is not installed, so its optimizers update {t.device.type} parameters with "
            f"their reference kernels (same results, one pass per operation instead of one fused pass). For the fused "
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


def _decay_coefficients(decay, n: int) -> list[float]:
    """``decay`` as ``n`` finite floats >= 0 (one per parameter); ValueError otherwise."""
    values = [_as_float(f"decay[{i}]", v) for i, v in enumerate(decay)]
    if len(values) != n:
        raise ValueError(f"decay: {len(values)} values for {n} params; allowed: {n}")
    for i, v in enumerate(values):
        if not 0.0 <= v < float("inf"):
            raise ValueError(f"decay[{i}]: {v}; allowed: a finite coefficient >= 0")
    return values


class _FlatTable:
    """Parameters of one device and dtype, flat state buffers with per-parameter views,
    the address / chunk tables of :mod:`torchfluid.kernels.table`, and gradient clearing;
    a subclass names its buffers (and their address-table columns) and runs its kernel
    through :meth:`_prepare` / :meth:`_run_cpu`."""

    DEVICES: tuple = ("cpu",)  # device types the subclass's kernel runs on

    def __init__(self, params: Sequence[torch.Tensor], buffers: dict[str, int | None], init: dict | None = None):
        """``buffers``: state name -> its address-table column (None: not kept); ``init``:
        a start value per name (default 0)."""
        self.params = list(params)
        first = self.params[0] if self.params else torch.empty(0)
        self.device, self.dtype = first.device, first.dtype
        if self.params and self.device.type not in self.DEVICES:
            raise ValueError(
                f"params[0]: on {self.device}, where {type(self).__name__} has no kernel; "
                f"allowed: {', '.join(self.DEVICES)}"
            )
        for i, p in enumerate(self.params):
            self._check("params", i, p, None)
        self.numel = [p.numel() for p in self.params]
        sizes = -(-np.asarray(self.numel, np.int64) // _ALIGN) * _ALIGN
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        total = int(self.offsets[-1])
        kw = {"dtype": self.dtype, "device": self.device}
        init = init or {}
        self.buffers = {
            name: None if col is None else torch.full((total,), float(init.get(name, 0.0)), **kw)
            for name, col in buffers.items()
        }
        self.grad_buffer: torch.Tensor | None = None
        self._views = {name: self._slices(buf) for name, buf in self.buffers.items()}
        self._grad_views: list[torch.Tensor] | None = None

        self._cuda = self.device.type == "cuda"
        n = len(self.params)
        self.addr = np.zeros((n, 5), np.int64)
        for name, col in buffers.items():
            if col is not None:
                self.addr[:, col] = [v.data_ptr() for v in self._views[name]]
        self._addr_version = 0  # bumped whenever the address table changes
        self._hyper_key: tuple | None = None  # the hyper-parameters of the last step
        self._call = None  # the prepared CPU kernel call over addr / chunks / last hyper tables
        self._call_flags = None
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

    def _keep_counts(self, keep: bool) -> None:
        """``steps``: with ``keep``, each member's update count (torch's ``step``: 0-d float32
        views of one buffer, state ``step``); None otherwise."""
        self.steps = None
        if keep:
            self.steps = torch.zeros(len(self.params), dtype=torch.float32, device=self.device)
            self._views["step"] = [self.steps[i] for i in range(len(self.params))]

    def _count(self, grads) -> tuple[list, np.ndarray]:
        """Count one update for each member with a gradient; return the gradients and the
        counts before."""
        given = [p.grad for p in self.params] if grads is None else list(grads)
        counts = self.steps.numpy()
        before = counts.copy()
        counts[[i for i, g in enumerate(given) if g is not None]] += 1
        return given, before

    def state(self, i: int) -> dict[str, torch.Tensor]:
        """``{name: view}`` of param i, for every state buffer kept (RMSProp:
        ``mean_square`` [, ``mean_grad``] [, ``momentum``]; Momentum: ``velocity``;
        Adagrad: ``moment``)."""
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

    def _prepare(self, grads, lr, fold: GradFold, scalars: tuple):
        """Bind this step's tensors and return ``(hyper table, scalar row, grad-scale
        tensor or None)``: the tables of the last step when nothing changed (then the
        prepared call is kept), else new ones. ``fold``: the gradient terms of the hyper
        table; ``scalars``: the kind's scalar row as floats (rounded to the dtype here). A
        tensor ``fold.grad_scale`` is read on CPU; on CUDA it is returned to be written
        into the device's hyper table."""
        if not isinstance(fold, GradFold):
            raise TypeError(f"fold: {type(fold).__name__}; allowed: a GradFold (default: nothing folded)")
        if self.params:
            with _NO_SUBCLASS():  # tensor subclasses' Python hooks are not needed to read addresses
                self._bind(grads)
        dt = self._like.dtype
        grad_scale = fold.grad_scale
        scale_t = grad_scale if isinstance(grad_scale, torch.Tensor) else None
        if scale_t is not None and not self._cuda:
            grad_scale, scale_t = scale_t.detach().double().cpu().numpy().reshape(-1), None
            if grad_scale.size == 1:
                grad_scale = float(grad_scale[0])
        if scale_t is not None:
            grad_scale = 1.0  # written into the device's hyper table by the caller
        extras = (lr, grad_scale, fold.clip_min, fold.clip_max, fold.l2, fold.l1)
        key = tuple(map(_hashable, extras)) + tuple(scalars)
        if key != self._hyper_key:
            if grad_scale is not fold.grad_scale:
                fold = dataclasses.replace(fold, grad_scale=grad_scale)
            self._hyper = table.hyper_table(len(self.params), dt, lr=lr, fold=fold)
            self._scalars = np.array(scalars, dt)
            self._hyper_key = key
            self._call = None
        return self._hyper, self._scalars, scale_t

    def _run_cpu(
        self, kind: str, *, variant: tuple = (), flags: tuple = (), aux: np.ndarray | None = None, aux_width: int = 1
    ) -> None:
        """Run CPU kernel ``kind`` over the tables :meth:`_prepare` left (the call object
        is kept while tables, variant and flags stay the same; ``aux``, ``aux_width``
        values per tensor that the caller keeps and rewrites in place, is read at each call)."""
        what = (kind, variant, flags)
        if self._call is None or self._call_flags != what:
            self._call = self._kernels.TableCall(
                kind,
                self.addr,
                self.chunks,
                self._hyper,
                self._scalars,
                variant=variant,
                flags=flags,
                aux=aux,
                aux_width=aux_width,
            )
            self._call_flags = what
        self._call()

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


class FlatGroup(_FlatTable):
    """Parameters of one device and dtype, their flat RMSProp state, and a fused step.

    ``centered`` allocates ``mean_grad``; ``momentum`` allocates the velocity buffer
    (needed for any momentum != 0; Paddle keeps it always). All state starts at 0.
    """

    DEVICES = ("cpu", "cuda")

    def __init__(self, params: Sequence[torch.Tensor], *, centered: bool, momentum: bool):
        self.centered, self.has_momentum = bool(centered), bool(momentum)
        super().__init__(
            params,
            {
                "mean_square": table.MS,
                "mean_grad": table.MG if self.centered else None,
                "momentum": table.MOM if self.has_momentum else None,
            },
        )
        self.mean_square = self.buffers["mean_square"]
        self.mean_grad = self.buffers["mean_grad"]
        self.momentum = self.buffers["momentum"]

    @no_grad
    def step(
        self,
        hyper: RMSPropHyper,
        *,
        grads: Sequence[torch.Tensor | None] | None = None,
        fold: GradFold = NO_FOLD,
    ) -> None:
        """One fused RMSProp step of every parameter with a gradient (module maths).

        ``hyper``: :func:`~torchfluid.kernels.rmsprop.rmsprop_`'s hyper-parameters as one
        record; its ``lr`` may also be one per parameter, and decoupled weight decay and
        bias correction are not fused (both must be 0). ``grads`` defaults to each
        parameter's ``.grad`` (None skips it). ``fold``: the gradient's scale, value clip
        and L2/L1 terms (:class:`~torchfluid.kernels.table.GradFold`: each a float or one
        per parameter; its ``grad_scale`` may also be a tensor, 0-d or one per parameter, on
        the group's device, read without a host sync on CUDA).
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
        paddle = bool(hyper.float32_attrs)  # Paddle's roundings of the averages (see the kernels)
        flags = (self.centered, self.has_momentum, bool(lr_in_momentum), bool(nesterov))
        (rho1,) = one_minus(self.dtype, rho) if paddle else (1.0 - rho,)
        sc = (rho, rho1, *((epsilon, 0.0) if eps_in_sqrt else (0.0, epsilon)), momentum, 0.0, 1.0)
        hyper, sc, scale_t = self._prepare(grads, lr, fold, sc)
        if not self._cuda:
            self._run_cpu("rmsprop", variant=(*flags[:2], paddle), flags=flags[2:])
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
            paddle=paddle,
        )


class FlatMomentum(_FlatTable):
    """Parameters of one CPU dtype, their flat Momentum ``velocity`` (starting at 0) and
    a fused step: :func:`~torchfluid.kernels.momentum.momentum_` per element, its
    roundings in the same order (``velocity * mu`` rounded, then ``+ g``; the update
    ``velocity * lr`` or, with ``use_nesterov``, ``(velocity * mu + g) * lr``), with
    the gradient's clip and L2/L1 terms folded in as for RMSProp (module doc of
    :mod:`torchfluid.kernels.fused_cpu`). ``mu`` is rounded to float32 first (Paddle's
    attribute), then to the dtype; ``lr`` to the dtype."""

    def __init__(self, params: Sequence[torch.Tensor], *, step_count: bool = False):
        super().__init__(params, {"velocity": table.MS})
        self._keep_counts(step_count)  # torch SGD's dampening

    @no_grad
    def step(
        self,
        *,
        lr,
        mu: float,
        use_nesterov: bool = False,
        dampening: float = 0.0,
        grads: Sequence[torch.Tensor | None] | None = None,
        fold: GradFold = NO_FOLD,
    ) -> None:
        """One fused Momentum step of every parameter with a gradient. ``lr``: a float or
        one per parameter; ``dampening`` (torch.optim.SGD's; a group built with
        ``step_count``): ``velocity * mu + (1 - dampening) * g``, except at a member's first
        update (count 0), which is undamped, as
        :class:`~torchfluid.optimizer.sgd.SGDRule`'s reference path; the other keywords as
        :meth:`FlatGroup.step`'s."""
        mu, dampening = _as_float("mu", mu), _as_float("dampening", dampening)
        if not (mu >= 0.0 and np.isfinite(mu)):
            raise ValueError(f"mu: {mu}; allowed: a finite mu >= 0")
        if not np.isfinite(dampening) or (dampening and (self.steps is None or use_nesterov)):
            raise ValueError(
                f"dampening: {dampening}; allowed: a finite number (not 0 needs step_count=True and no Nesterov)"
            )
        if not self.params:
            return
        (mu,) = paddle_attrs(self.dtype, mu)  # as momentum_
        flags = (bool(use_nesterov),)
        if not dampening:
            self._prepare(grads, lr, fold, (mu, 1.0, 0.0, 1.0))
            self._run_cpu("momentum", flags=flags)
            return
        given, before = self._count(grads)
        first = [g is not None and before[i] == 0 for i, g in enumerate(given)]
        for undamped in (True, False):  # first updates (the velocity becomes g), then the others
            part = [g if (g is not None and first[i] == undamped) else None for i, g in enumerate(given)]
            if any(g is not None for g in part):
                self._prepare(part, lr, fold, (mu, 1.0 if undamped else 1.0 - dampening, 0.0, 1.0))
                self._run_cpu("momentum", flags=flags)


class FlatAdagrad(_FlatTable):
    """Parameters of one CPU dtype, their flat Adagrad ``moment`` (starting at
    ``initial_accumulator_value``) and a fused step:
    :func:`~torchfluid.kernels.adagrad.adagrad_` per element (``moment + g * g``, the
    product rounded first; ``(lr * g) / (sqrt(moment) + epsilon)`` with a correctly
    rounded square root), the gradient's clip and L2/L1 terms folded in."""

    def __init__(
        self, params: Sequence[torch.Tensor], *, initial_accumulator_value: float = 0.0, step_count: bool = False
    ):
        super().__init__(params, {"moment": table.MS}, {"moment": initial_accumulator_value})
        self._keep_counts(step_count)  # torch's lr_decay

    @no_grad
    def step(
        self,
        *,
        lr,
        epsilon: float,
        lr_decay: float = 0.0,
        grads: Sequence[torch.Tensor | None] | None = None,
        fold: GradFold = NO_FOLD,
    ) -> None:
        """One fused Adagrad step of every parameter with a gradient. ``lr``: a float or
        one per parameter; ``lr_decay`` (torch's; a group built with ``step_count``): each
        stepped parameter's count goes up by one and its rate is ``lr / (1 + (step - 1) *
        lr_decay)``, as :class:`~torchfluid.optimizer.adagrad.AdagradRule`'s reference
        path computes it; the other keywords as :meth:`FlatGroup.step`'s."""
        (epsilon,) = paddle_attrs(self.dtype, _as_float("epsilon", epsilon))  # as adagrad_
        if not epsilon >= 0.0:
            raise ValueError(f"epsilon: {epsilon}; allowed: epsilon >= 0")
        lr_decay = _as_float("lr_decay", lr_decay)
        if not (lr_decay >= 0.0 and np.isfinite(lr_decay)) or (lr_decay and self.steps is None):
            raise ValueError(f"lr_decay: {lr_decay}; allowed: a finite lr_decay >= 0 (> 0 needs step_count=True)")
        if not self.params:
            return
        if lr_decay:
            self._count(grads)
            counts = self.steps.numpy()
            lr = np.broadcast_to(np.asarray(lr, np.float64), counts.shape) / (
                1 + (counts.astype(np.float64) - 1) * lr_decay
            )
            lr = lr.tolist()
        self._prepare(grads, lr, fold, (epsilon, 0.0, 1.0))
        self._run_cpu("adagrad")


class FlatSGD(_FlatTable):
    """Parameters of one CPU dtype (no state) and a fused SGD step: ``p = p - lr * g``
    with one rounding, as :func:`~torchfluid.kernels.sgd.sgd_` (torch's ``sub_(g,
    alpha=lr)`` is a fused multiply-add on CPU), the gradient's clip and L2/L1 terms
    folded in."""

    def __init__(self, params: Sequence[torch.Tensor]):
        super().__init__(params, {})

    @no_grad
    def step(
        self,
        *,
        lr,
        grads: Sequence[torch.Tensor | None] | None = None,
        fold: GradFold = NO_FOLD,
    ) -> None:
        """One fused SGD step of every parameter with a gradient (keywords as
        :meth:`FlatMomentum.step`'s)."""
        if not self.params:
            return
        self._prepare(grads, lr, fold, (0.0, 1.0))
        self._run_cpu("sgd")


class _FlatPowers(_FlatTable):
    """A flat table whose parameters also keep Paddle's beta powers (``beta1_pow_acc`` [,
    ``beta2_pow_acc``]: shape ``[1]``, starting at their beta, views of one buffer of a
    value per parameter), stepped with ``beta1``, ``beta2`` and ``epsilon`` (Paddle's float32
    attributes, checked before anything changes). A step runs :meth:`_kernel_step`, then
    multiplies the powers of the parameters that had a gradient by their beta."""

    EPS_OPEN = False  # epsilon must be > 0 (else >= 0)

    def __init__(self, params: Sequence[torch.Tensor], buffers: dict, powers: dict[str, float]):
        super().__init__(params, buffers)
        n, kw = len(self.params), {"dtype": self.dtype, "device": self.device}
        self.powers = {name: torch.full((n,), float(start), **kw) for name, start in powers.items()}
        for name, buf in self.powers.items():
            self._views[f"{name}_pow_acc"] = [buf[i : i + 1] for i in range(n)]

    @no_grad
    def step(
        self,
        *,
        lr,
        beta1: float,
        beta2: float,
        epsilon: float,
        grads: Sequence[torch.Tensor | None] | None = None,
        fold: GradFold = NO_FOLD,
        **variant,
    ) -> None:
        """One fused step of every parameter with a gradient. ``lr``: a float or one per
        parameter (the base rate; the kernel's rate is derived per parameter from the
        powers); ``variant``: the subclass's own keywords; the others as
        :meth:`FlatGroup.step`'s."""
        beta1, beta2, epsilon = (_as_float(k, v) for k, v in (("beta1", beta1), ("beta2", beta2), ("epsilon", epsilon)))
        beta1, beta2, epsilon = paddle_attrs(self.dtype, beta1, beta2, epsilon)  # as the reference kernels
        for name, value in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name}: {value}; allowed: 0 <= {name} < 1")
        if not (epsilon > 0.0 if self.EPS_OPEN else epsilon >= 0.0):
            raise ValueError(f"epsilon: {epsilon}; allowed: epsilon {'>' if self.EPS_OPEN else '>='} 0")
        variant = self._checked_variant(**variant)
        if not self.params:
            return
        dt = self._like.dtype
        base = np.broadcast_to(np.asarray(lr, np.float64).astype(dt), (len(self.params),))
        self._kernel_step(grads, lr, fold, base, beta1, beta2, epsilon, **variant)
        given = [p.grad for p in self.params] if grads is None else grads
        every = all(g is not None for g in given)  # empty tensors too
        stepped = slice(None) if every else np.fromiter((g is not None for g in given), bool, len(self.params))
        for name, buf in self.powers.items():
            buf.numpy()[stepped] *= dt.type(beta1 if name == "beta1" else beta2)

    def _checked_variant(self, **variant) -> dict:
        if variant:
            raise TypeError(f"{type(self).__name__}.step got unexpected keywords {sorted(variant)}")
        return {}


class FlatAdam(_FlatPowers):
    """Parameters of one CPU dtype, their flat Adam state and a fused step:
    :func:`~torchfluid.kernels.adam.adam_` per element, its roundings in the same order.

    ``moment1`` / ``moment2`` (param-shaped views, starting at 0) live in two flat
    buffers, the powers as :class:`_FlatPowers` keeps them. Each step computes every
    parameter's ``lr_t`` and ``eps_t`` from its powers (as the reference kernel does, in the
    dtype, with a correctly rounded square root) and runs the kernel. ``amsgrad``: a third
    flat buffer, ``moment2_max`` (AMSGrad's running maximum of ``moment2``, starting at 0),
    takes ``moment2``'s place in the denominator. ``step(..., decay=)``: None, or AdamW's
    decoupled weight-decay coefficient of each parameter (0: none), which first makes it
    ``p - (lr * coeff) * p`` in the dtype (``coeff`` a float32 attribute, as
    :class:`~torchfluid.optimizer.adam.AdamWRule`)."""

    def __init__(
        self, params: Sequence[torch.Tensor], *, beta1: float = 0.9, beta2: float = 0.999, amsgrad: bool = False
    ):
        self.amsgrad = bool(amsgrad)
        buffers = {"moment1": table.MS, "moment2": table.MG}
        if self.amsgrad:
            buffers["moment2_max"] = table.MOM
        super().__init__(params, buffers, {"beta1": beta1, "beta2": beta2})
        n = len(self.params)
        self._eps_t = np.zeros(n, self._like.dtype)
        self._eps_decay = np.zeros(2 * n, self._like.dtype)  # (eps_t, decay) pairs of the decoupled kernel

    def _checked_variant(self, decay: Sequence[float] | None = None) -> dict:
        return {"coeffs": None if decay is None else _decay_coefficients(decay, len(self.params))}

    def _kernel_step(self, grads, lr, fold, base, beta1, beta2, epsilon, coeffs) -> None:
        b1c, b2c = one_minus(self.dtype, beta1, beta2)  # as adam_
        hyper, _, _ = self._prepare(grads, lr, fold, (beta1, b1c, beta2, b2c, 0.0, 1.0))
        dt = self._like.dtype
        one = dt.type(1.0)
        b1p, b2p = self.powers["beta1"].numpy(), self.powers["beta2"].numpy()
        correction = np.sqrt(one - b2p)  # numpy's sqrt is correctly rounded
        hyper[:, table.LR] = base * (correction / (one - b1p))  # lr_t, rounded as correction.div(...).mul_(lr)
        self._eps_t[:] = correction * dt.type(epsilon)
        if coeffs is None:
            self._run_cpu("adam", variant=(False, self.amsgrad), aux=self._eps_t)
        else:  # (eps_t, lr * coeff) per tensor, rounded as the reference's tensor ops
            coeffs = np.array(paddle_attrs(self.dtype, *coeffs), np.float64).astype(dt)
            self._eps_decay[0::2] = self._eps_t
            self._eps_decay[1::2] = base * coeffs
            self._run_cpu("adam", variant=(True, self.amsgrad), aux=self._eps_decay, aux_width=2)


class FlatAdamax(_FlatPowers):
    """Parameters of one CPU dtype, their flat Adamax state and a fused step:
    :func:`~torchfluid.kernels.adamax.adamax_` per element, its roundings in the same
    order. ``moment`` / ``inf_norm`` (param-shaped views, from 0) live in two flat buffers,
    ``beta1_pow_acc`` as :class:`_FlatPowers` keeps it; each step computes every
    parameter's ``lr / (1 - beta1_pow)`` in the dtype and runs the kernel (``epsilon`` > 0)."""

    EPS_OPEN = True

    def __init__(self, params: Sequence[torch.Tensor], *, beta1: float = 0.9):
        super().__init__(params, {"moment": table.MS, "inf_norm": table.MG}, {"beta1": beta1})

    def _kernel_step(self, grads, lr, fold, base, beta1, beta2, epsilon) -> None:
        (b1c,) = one_minus(self.dtype, beta1)  # as adamax_
        hyper, _, _ = self._prepare(grads, lr, fold, (beta1, b1c, beta2, epsilon, 0.0, 1.0))
        dt = self._like.dtype
        hyper[:, table.LR] = base / (dt.type(1.0) - self.powers["beta1"].numpy())  # lr_t, as the reference rounds
        self._run_cpu("adamax")


class FlatAdadelta(_FlatTable):
    """Parameters of one CPU dtype, their flat Adadelta state (``_avg_squared_grad`` /
    ``_avg_squared_update``, param-shaped views from 0, Paddle's names) and a fused step:
    :func:`~torchfluid.kernels.adadelta.adadelta_` per element, its roundings in the same
    order (a correctly rounded square root)."""

    def __init__(self, params: Sequence[torch.Tensor]):
        super().__init__(params, {"_avg_squared_grad": table.MS, "_avg_squared_update": table.MG})

    @no_grad
    def step(
        self,
        *,
        lr,
        rho: float,
        epsilon: float,
        grads: Sequence[torch.Tensor | None] | None = None,
        fold: GradFold = NO_FOLD,
    ) -> None:
        """One fused Adadelta step of every parameter with a gradient (``0 <= rho <= 1``,
        ``epsilon >= 0``, Paddle's float32 attributes); the other keywords as
        :meth:`FlatGroup.step`'s."""
        rho, epsilon = paddle_attrs(self.dtype, _as_float("rho", rho), _as_float("epsilon", epsilon))
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"rho: {rho}; allowed: 0 <= rho <= 1")
        if not epsilon >= 0.0:
            raise ValueError(f"epsilon: {epsilon}; allowed: epsilon >= 0")
        if self.params:
            self._prepare(grads, lr, fold, (rho, *one_minus(self.dtype, rho), epsilon, 0.0, 1.0))  # as adadelta_
            self._run_cpu("adadelta")
