"""Mixed and low precision for RMSProp: master weights, state dtype, non-finite gradients.

Three independent options (all optimizer-wide, set at construction):

``multi_precision=True`` (Paddle's name)
    Every float16 / bfloat16 parameter gets a float32 *master weight* and float32 state.
    Each update runs on the master (gradients are widened to float32 first, before
    clipping and regularization), and the parameter is then rewritten from it
    (``param.copy_(master)``, round to nearest). Float32/float64 parameters are
    untouched by the option. ``state_dict()['master_weights']`` maps parameter names to
    the float32 masters (Paddle 2.x's layout); loading restores them. A parameter
    changed by hand after the first update is overwritten by its master at the next
    update (as in Paddle): load the optimizer state along with the model's.

``state_dtype=torch.bfloat16``
    The accumulators (``mean_square``, ``mean_grad``, ``momentum``) are stored in
    bfloat16, halving their memory against float32. Each update widens them to float32,
    runs the float32 kernel, and stores them back with *stochastic rounding*: a value
    ``x`` between two neighbouring bfloat16 values ``a < x < b`` is stored as ``b`` with
    probability ``(x - a) / (b - a)``, so the stored state is unbiased (``E[stored] = x``)
    and each store errs by less than one bfloat16 ulp (relative error ``< 2**-7``).
    Rounding to nearest instead would stall the averages: ``ms`` moves by
    ``(1 - rho) * (g**2 - ms)`` per step, which rounds away whenever it is below half a
    bfloat16 ulp (``2**-9 .. 2**-8`` of ``ms``); with ``rho = 0.99`` a round-to-nearest
    ``ms`` stops 20-39% short of a constant ``g**2`` (tests/test_precision.py). The random
    bits are counter-based: the ``k``-th applied update (k = 0, 1, ...) draws them from a
    per-device ``torch.Generator`` seeded with ``k``, so the whole generator state is the
    integer ``rounding_step``. It is saved with the state
    (``state_dict()['stochastic_rounding'] = {'step': k}``; in a program, the persistable
    variable ``stochastic_rounding_step_N``), so a run resumed from a checkpoint continues
    bit for bit as the uninterrupted run. Skipped steps draw nothing and do not count.
    ``state_dtype=torch.float32`` stores float32 state for any parameter dtype.

Denominators are always computed in at least float32 (see
:func:`torchfluid.kernels.rmsprop.rmsprop_`). An ``epsilon`` below the smallest normal
number of a float16/bfloat16 state dtype (float16: 6.1e-05) raises ``ValueError`` at
construction: it would be stored as a subnormal or as 0, and the float16 ``ms`` it
guards flushes to 0 at the same scale (optax#1784's NaNs).

``nonfinite='propagate'|'skip'|'raise'``
    What a step does when a gradient holds NaN or +-inf, decided on the raw gradients
    before anything changes (state, parameters, learning-rate schedule):

    * ``'propagate'`` (default; Paddle's and torch.optim's behaviour, and free: no
      extra pass over the gradients): the non-finite values flow into the state and
      the parameters.
    * ``'skip'``: the whole step is skipped, parameters and state stay bit-identical,
      and ``opt.skipped_steps`` counts it.
    * ``'raise'``: ``FloatingPointError`` naming the parameters, nothing changed.

``torch.amp.GradScaler``: while a gradient is float16 or bfloat16 the optimizer declares
``_step_supports_amp_scaling``, so ``scaler.step(opt)`` hands it the loss scale and the inf
flag instead of unscaling ``.grad`` itself (which GradScaler refuses for float16 gradients).
With float32/float64 gradients it does not: GradScaler unscales ``.grad`` and skips an
overflowed step without calling step(), as for torch.optim's optimizers (frameworks such as
accelerate tell a skipped step by that). A step handed a scaled overflow is skipped (counted
in ``skipped_steps``, nothing changed);
otherwise the gradients are divided by the scale (into float32 for multi-precision
parameters) BEFORE clipping, exactly as ``scaler.unscale_`` would. Calling
``scaler.unscale_(opt)`` first also works (float32 gradients only, a GradScaler rule).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import torch

from .._checks import check_bool, check_choice

__all__ = [
    "LOW_PRECISION",
    "NONFINITE_POLICIES",
    "STATE_DTYPES",
    "Precision",
    "check_epsilon_for_state",
    "optimizer_memory_bytes",
    "stochastic_round_",
]

LOW_PRECISION = (torch.float16, torch.bfloat16)
NONFINITE_POLICIES = ("propagate", "skip", "raise")
STATE_DTYPES = (None, torch.float32, torch.bfloat16)
_SR_SEED = 0


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def check_epsilon_for_state(epsilon: float, dtype: torch.dtype, why: str) -> None:
    """Raise ``ValueError`` if ``epsilon`` is below the smallest normal number of a
    float16/bfloat16 state ``dtype`` (it would be stored as a subnormal or as 0)."""
    if dtype not in LOW_PRECISION:
        return
    tiny = torch.finfo(dtype).tiny
    if epsilon < tiny:
        raise ValueError(
            f"epsilon={epsilon:g} is not representable in the {_dtype_name(dtype)} optimizer state "
            f"({why}): its smallest normal number is {tiny:.3g}, and values below it flush to 0 or lose "
            f"precision, so the denominator can reach 0. Use multi_precision=True (float32 state), "
            f"state_dtype=torch.float32, or epsilon >= {tiny:.3g}"
        )


@torch.no_grad()
def stochastic_round_(dst: torch.Tensor, src: torch.Tensor, generator: torch.Generator | None = None) -> None:
    """Store float32 ``src`` into bfloat16 ``dst`` with unbiased stochastic rounding.

    Adds uniform random bits below bfloat16's last mantissa bit of the float32 pattern,
    then truncates: a value is rounded away from zero with probability equal to the
    dropped fraction of an ulp. Exact bfloat16 values, 0, +-inf and NaN are unchanged.
    """
    if dst.dtype != torch.bfloat16 or src.dtype != torch.float32:
        raise TypeError(f"stochastic_round_ stores float32 into bfloat16, got {src.dtype} -> {dst.dtype}")
    src = src.contiguous()
    noise = torch.randint(0, 1 << 16, src.shape, dtype=torch.int32, device=src.device, generator=generator)
    bits = src.view(torch.int32).add(noise).bitwise_and_(-65536)  # keep the top 16 bits
    rounded = bits.view(torch.float32)
    rounded = torch.where(torch.isfinite(src), rounded, src)
    dst.copy_(rounded)  # exact: the low 16 bits are zero


class Precision:
    """The precision options of one optimizer, its master weights and rounding generators."""

    def __init__(self, *, multi_precision: bool, state_dtype, nonfinite: str):
        self.multi_precision = check_bool("multi_precision", multi_precision)
        self.state_dtype = check_choice("state_dtype", state_dtype, STATE_DTYPES)
        self.nonfinite = check_choice("nonfinite", nonfinite, NONFINITE_POLICIES)
        self.masters: dict[torch.Tensor, torch.Tensor] = {}
        self.pending_masters: dict[str, torch.Tensor] = {}
        self.rounding_step = 0  # applied updates so far (stochastic rounding's generator state)
        self._generators: dict[torch.device, torch.Generator] = {}
        self._seed = _SR_SEED << 32  # the current update's seed
        self._seeded: set[torch.device] = set()  # generators seeded for the current update

    # ----------------------------------------------------------------- dtypes
    def passes_gradients_through(self) -> bool:
        """Whether :meth:`prepare` returns the pairs unchanged whenever no GradScaler is
        involved (no non-finite policy, no multi-precision widening)."""
        return self.nonfinite == "propagate" and not self.multi_precision

    def has_master(self, param: torch.Tensor) -> bool:
        return self.multi_precision and param.dtype in LOW_PRECISION

    def state_dtype_for(self, param_dtype: torch.dtype) -> torch.dtype:
        """Accumulator dtype: ``state_dtype`` if set, float32 for multi-precision
        float16/bfloat16 parameters, else the parameter's dtype (Paddle)."""
        if self.state_dtype is not None:
            return self.state_dtype
        if self.multi_precision and param_dtype in LOW_PRECISION:
            return torch.float32
        return param_dtype

    def check_epsilon(self, epsilon: float, params) -> None:
        for p in params:
            dt = self.state_dtype_for(p.dtype)
            if dt in LOW_PRECISION:
                why = (
                    f"state_dtype=torch.{_dtype_name(dt)}"
                    if self.state_dtype is not None
                    else f"{_dtype_name(p.dtype)} parameters without multi_precision"
                )
                check_epsilon_for_state(epsilon, dt, why)

    # ------------------------------------------------------------- gradients
    def prepare(self, pairs, names, *, found_inf=None, grad_scale=None):
        """AMP overflow skip, the non-finite policy, unscaling and float32 widening.

        ``names``: one per pair (for error messages); ``found_inf`` / ``grad_scale``: what
        a ``torch.amp.GradScaler`` handed the step (None: no scaler). Returns the new
        ``(param, grad)`` pairs, or None when the step is to be skipped. Never modifies
        the given gradients.
        """
        if found_inf is not None and bool(torch.as_tensor(found_inf).ne(0).any()):
            return None
        if self.nonfinite != "propagate" and pairs:
            bad = _nonfinite_names(pairs, names)
            if bad:
                if self.nonfinite == "skip":
                    return None
                raise FloatingPointError(
                    f"non-finite gradient (NaN or inf) for {', '.join(bad)}; nothing was changed "
                    f"(nonfinite='raise'; 'skip' skips such steps, 'propagate' applies them)"
                )
        if grad_scale is None and not self.multi_precision:
            return pairs  # nothing to unscale or widen
        inv = None if grad_scale is None else torch.as_tensor(grad_scale).double().reciprocal().float()
        out = []
        for p, g in pairs:
            if self.has_master(p) and g.dtype != torch.float32:
                g = g.float()
            if inv is not None:
                g = g * inv.to(device=g.device, dtype=g.dtype)
            out.append((p, g))
        return out

    # --------------------------------------------------------- master weights
    def master(self, param: torch.Tensor, name: str) -> torch.Tensor | None:
        """The float32 master of a multi-precision parameter (created from it on first use)."""
        if not self.has_master(param):
            return None
        m = self.masters.get(param)
        if m is None:
            pending = self.pending_masters.pop(name, None)
            m = (
                pending.to(device=param.device, dtype=torch.float32).clone()
                if pending is not None
                else param.detach().float().clone(memory_format=torch.preserve_format)
            )
            self.masters[param] = m
        return m

    def master_state_dict(self, names: dict) -> dict:
        out = {names[p]: m for p, m in self.masters.items()}
        out.update(self.pending_masters)
        return {"master_weights": out} if out else {}

    def check_master_load(self, param_names: Mapping, state_dict, rename, report, loaded_params):
        """Check ``state_dict['master_weights']`` against the optimizer's ``{param: name}``;
        return a function that applies it."""
        saved = state_dict.get("master_weights")
        by_name = {n: p for p, n in param_names.items()}
        new: dict[torch.Tensor, torch.Tensor] = {}
        pending: dict[str, torch.Tensor] = {}
        if saved is not None and not isinstance(saved, dict):
            report.mismatched.append(f"master_weights: expected a dict of name -> tensor, got {type(saved).__name__}")
            saved = None
        for key, value in (saved or {}).items():
            name = rename(key)
            p = by_name.get(name)
            tensor = (
                value.detach()
                if isinstance(value, torch.Tensor)
                else (torch.as_tensor(value) if hasattr(value, "__array__") else None)
            )
            if tensor is None:
                report.mismatched.append(f"master_weights[{key!r}]: expected a tensor, got {type(value).__name__}")
            elif p is None and not param_names:
                pending[name] = tensor.clone()
            elif p is None or not self.has_master(p):
                why = (
                    "no such parameter"
                    if p is None
                    else (
                        f"the parameter is {_dtype_name(p.dtype)}"
                        + ("" if self.multi_precision else " and multi_precision is off")
                    )
                )
                report.unexpected.append(f"master_weights[{key!r}] ({why})")
            elif tuple(tensor.shape) != tuple(p.shape) or tensor.dtype != torch.float32:
                report.mismatched.append(
                    f"master_weights[{key!r}]: expected shape {list(p.shape)} float32, "
                    f"got shape {list(tensor.shape)} {_dtype_name(tensor.dtype)}"
                )
            else:
                new[p] = tensor
        for p in loaded_params:
            if self.has_master(p) and p not in new:
                report.missing.append(f"master_weights[{param_names[p]!r}]")

        def apply():
            self.masters = {p: t.to(device=p.device).clone() for p, t in new.items()}
            self.pending_masters = pending

        return apply

    # ------------------------------------------------------------------ state
    def widen(self, tensors):
        """float32 working copies of bfloat16 ``state_dtype`` accumulators (others as is)."""
        if self.state_dtype is not torch.bfloat16:
            return list(tensors)
        return [None if t is None else t.float() for t in tensors]

    def store(self, tensors, wide) -> None:
        """Write working copies back with stochastic rounding (no-op for in-place tensors)."""
        for t, w in zip(tensors, wide, strict=True):
            if t is not None and w is not t:
                stochastic_round_(t, w, self._generator(t.device))

    @property
    def stochastic_rounding(self) -> bool:
        """Whether updates store state with stochastic rounding (``state_dtype=torch.bfloat16``)."""
        return self.state_dtype is torch.bfloat16

    def begin_update(self) -> None:
        """Start an applied update: its rounding bits come from generators seeded with
        ``rounding_step``, which then advances (no-op without stochastic rounding)."""
        if not self.stochastic_rounding:
            return
        self._seed = (_SR_SEED << 32) | self.rounding_step
        self._seeded = set()
        self.rounding_step += 1

    def _generator(self, device: torch.device) -> torch.Generator:
        gen = self._generators.get(device)
        if gen is None:
            gen = self._generators[device] = torch.Generator(device=device)
        if device not in self._seeded:
            gen.manual_seed(self._seed)
            self._seeded.add(device)
        return gen

    def rounding_state_dict(self) -> dict:
        """``{'stochastic_rounding': {'step': rounding_step}}`` once an update has rounded
        (an optimizer that never stepped saves nothing), else ``{}``."""
        if not self.stochastic_rounding or self.rounding_step == 0:
            return {}
        return {"stochastic_rounding": {"step": self.rounding_step}}

    def check_rounding_load(self, saved, report):
        """Check a state dict's ``stochastic_rounding`` entry (None: absent) into ``report``;
        return a function that applies it (absent: the count starts again from 0, as the
        state of a never-stepped optimizer)."""
        step = 0
        if saved is not None:
            value = saved.get("step") if isinstance(saved, Mapping) else None
            if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
                value = int(value.item())
            if not self.stochastic_rounding:
                report.unexpected.append("stochastic_rounding (this optimizer's state is not bfloat16)")
            elif not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
                report.mismatched.append(f"stochastic_rounding: expected {{'step': int >= 0}}, got {saved!r}"[:300])
            else:
                step = int(value)

        def apply():
            self.rounding_step = step

        return apply


def _nonfinite_names(pairs, names) -> list[str]:
    values = [g.coalesce().values() if g.is_sparse else g for _, g in pairs]
    flags = torch.stack([torch.isfinite(v).all().to(values[0].device) for v in values])
    if bool(flags.all()):
        return []
    out = []
    for name, v, ok in zip(names, values, flags.tolist(), strict=True):
        if not ok:
            n = int((~torch.isfinite(v)).sum())
            out.append(f"{name!r} ({n} of {v.numel()} elements)")
    return out


def optimizer_memory_bytes(opt) -> dict[str, int]:
    """Bytes held by an optimizer: ``{'state': accumulators, 'master_weights': masters}``."""
    state = sum(
        t.numel() * t.element_size() for s in opt.state.values() for t in s.values() if isinstance(t, torch.Tensor)
    )
    masters = sum(m.numel() * m.element_size() for m in opt.master_weights().values())
    return {"state": state, "master_weights": masters}
