"""The fused update path: the optimizer's items through flat-group kernels.

Every rule with a fused kernel (RMSProp: CPU and CUDA; Momentum, Adagrad, SGD, Adam: CPU) says
through its ``fused_*`` members which parameters qualify (``fused_eligible``), which
flat layout a group needs (``fused_layout``, ``fused_group``), how a fresh record
starts (``fused_initial``) and how one kernel call is made (``fused_step``); this module
keeps the flat groups and the state records in step with them, the same for every rule.

The pipeline (validation, precision, clipping, regularization, learning rates) is the
optimizer's own; only the final update changes: the ``(param, grad, group, lr, prep)``
items of one parameter group, device and dtype go to one fused kernel call instead of
one reference-kernel call per parameter, their clip steps and L2/L1 terms (``prep``,
see :mod:`torchfluid.optimizer.fold`) folded into the kernel's pass over the gradient
rather than materialised as new gradient tensors. What the fused kernel cannot express (sparse
gradients, master weights, state in another dtype, decoupled decay, bias correction,
non-contiguous tensors, devices without a kernel) takes the reference kernel, on the
same state tensors.

State stays where the optimizer keeps it: ``opt.state[p]`` holds *views* of the
group's flat buffers. Every step checks (by identity) that those records are still the
views; a record replaced meanwhile (``set_state_dict``, ``opt.to()``, a new parameter,
a group switching RMSProp's ``centered``/``momentum``) is copied into the flat buffers first, and
a group whose parameter set, device or dtype changed gets a rebuilt flat layout.
"""

from __future__ import annotations

import operator
import sys

from collections.abc import Mapping
from types import MappingProxyType

import torch

from .._checks import check_bool
from ..kernels.table import NO_FOLD
from .fold import NO_PREP, GradPrep, kernel_extras
from .state import TORCH_STEP_OPTIONS, state_record

__all__ = ["FlatRule", "FusedUpdate", "TorchEpsilonRule", "count_update", "fused_path", "plain_float_param"]

_EMPTY: dict = {}
_FLOATS = (torch.float32, torch.float64)


_UNTRACED: dict = {}


def _untraced(fn):
    """``fn``, hidden from ``torch.compile`` once torch's compiler is loaded (a compiled
    ``step()`` then runs the fused path as it is, outside the graph): the kernels read
    tensors by address and their tables are numpy arrays updated in place, neither of
    which a traced (fake) tensor or dynamo's numpy tracing can stand for. Without
    ``torch._dynamo`` imported nothing can be tracing, and ``fn`` is called directly
    (importing the compiler only for this would cost seconds)."""
    if "torch._dynamo" not in sys.modules:
        return fn
    hidden = _UNTRACED.get(fn)
    if hidden is None:
        hidden = _UNTRACED[fn] = sys.modules["torch._dynamo"].disable(fn)
    return hidden


def fused_path(fused: bool | None) -> FusedUpdate | None:
    """The update path an optimizer's ``fused`` option asks for: None (the default) a
    fused path that falls back to the reference kernel where it cannot run, True one
    that refuses to, False none (the reference kernel always)."""
    if fused is not None:
        check_bool("fused", fused)
    return None if fused is False else FusedUpdate(required=fused is True)


def plain_float_param(param: torch.Tensor, precision) -> bool:
    """The eligibility every rule's fused kernel shares: a float32/float64 parameter
    without a master weight, its state in its own dtype."""
    return param.dtype in _FLOATS and not precision.has_master(param) and precision.state_dtype in (None, param.dtype)


class FlatRule:
    """The fused members a rule whose kernel is one flat-group class of
    :mod:`torchfluid.kernels.flat` (named by ``flat_class``) shares: CPU only, plain
    float32/float64 parameters (:func:`plain_float_param`), one layout, fresh records at 0.
    A rule overrides what differs and adds its ``fused_step``."""

    fused_devices = ("cpu",)
    flat_class = ""
    accumulator_names: tuple = ()  # the records each parameter keeps, whatever its hyper-parameters
    compatible_accumulators: tuple = ()  # records a state dict may carry that this rule drops
    # a group option (torch's Adagrad lr_decay, SGD dampening) that, while not 0, keeps a 0-d
    # float32 ``step`` count per parameter (torch's) and takes the reference kernel, unless the
    # rule's flat group keeps the counts too (Adagrad's overrides fused_eligible)
    step_count_option = ""

    def accumulators(self, hparams) -> list[str]:
        if self.step_count_option and hparams[self.step_count_option] != 0:
            return [*self.accumulator_names, "step"]
        return list(self.accumulator_names)

    def fused_eligible(self, param: torch.Tensor, hparams, precision) -> bool:
        counted = self.step_count_option and hparams[self.step_count_option] != 0
        return plain_float_param(param, precision) and not counted

    @staticmethod
    def fused_layout(hparams) -> tuple:
        return ()

    def fused_group(self, params, layout: tuple):
        return getattr(_flat(), self.flat_class)(params)

    scalar_records: tuple = ()  # accumulators of shape [1] (Adam's beta powers); the others are param-shaped
    fused_step_names = False  # True: fused_step also gets names=, each member's name (None: no gradient)
    # the reference kernel of a rule that keeps this class's update: kernel(p, g, *records, lr=, **hyper),
    # the records in accumulator order, the hyper-parameters as {kernel keyword: group key}
    kernel = None
    kernel_hparams: Mapping = MappingProxyType({})
    kernel_options: Mapping = MappingProxyType({})  # the rule's own keywords for its kernel (LAMB's always_adapt)

    def update(self, param, grad, state, *, lr: float, hparams, precision, name: str) -> None:
        """:attr:`kernel` on one parameter (a row-sparse gradient made dense: every row moves;
        a complex parameter as its real view, as torch: two real coordinates, its scalar
        records real)."""
        records = [state[acc] for acc in self.accumulators(hparams)]
        hyper = {key: hparams[group_key] for key, group_key in self.kernel_hparams.items()}
        hyper.update(self.kernel_options)
        target, grad = param, grad.to_dense() if grad.is_sparse else grad
        if target.is_complex():
            target, grad = torch.view_as_real(target), torch.view_as_real(grad)
            records = [torch.view_as_real(t) if t.is_complex() else t for t in records]
        type(self).kernel(target, grad, *records, lr=lr, **hyper)

    @staticmethod
    def fused_initial(acc: str, hparams) -> float:
        """Where a fresh record ``acc`` starts (in :meth:`new_state` and in a flat buffer)."""
        return 0.0

    def new_state(self, p: torch.Tensor, hparams, dtype: torch.dtype) -> dict:
        """Fresh records of ``p``, each at :meth:`fused_initial`, in ``p``'s dtype (float32 for
        float16/bfloat16 parameters; a complex parameter's scalar records are real)."""
        if p.is_complex():
            dt, scalar_dt = p.dtype, p.real.dtype
        else:
            dt = scalar_dt = p.dtype if p.dtype in _FLOATS else torch.float32
        out = {}
        for acc in self.accumulators(hparams):
            if acc == "step" and self.step_count_option:  # updates counted from 0, as torch's
                out[acc] = torch.zeros((), dtype=torch.float32, device=p.device)
                continue
            start = self.fused_initial(acc, hparams)
            if acc in self.scalar_records:
                out[acc] = torch.full([1], start, dtype=scalar_dt, device=p.device)
            else:
                out[acc] = torch.full_like(p, start, dtype=dt)
                if out[acc].is_complex():  # both parts start there (a real view's coordinates), as torch
                    torch.view_as_real(out[acc]).fill_(start)
        return out


def count_update(state: dict, device: torch.device, *, started: bool = False) -> float:
    """One more update in ``state['step']``, the 0-d float32 count of a rule's
    ``step_count_option``; returns the count before it. A record without one (the option was
    switched on in its group) starts at 1 if ``started`` (the parameter has updated before
    in a way the count should know), else at 0."""
    step = state.get("step")
    if step is None:
        step = state["step"] = torch.full((), 1.0 if started else 0.0, dtype=torch.float32, device=device)
    before = float(step)
    step += 1
    return before


class TorchEpsilonRule(FlatRule):
    """A :class:`FlatRule` with torch's conventions that Adagrad, Adamax and Adadelta share:
    torch's ``eps`` read as ``epsilon``, torch's ``capturable``/``differentiable`` refused
    unless False, complex parameters updated as their real views (as torch)."""

    torch_group_keys = MappingProxyType({"eps": "epsilon"})  # torch's name, read as this rule's
    torch_neutral_options = TORCH_STEP_OPTIONS
    supports_complex = True


def _layout_current(fg) -> bool:
    """Whether every parameter of flat group ``fg`` still has the device, dtype, size and
    layout the group was built for (else its next step rebuilds it)."""
    return all(
        p.device == fg.device and p.dtype == fg.dtype and p.numel() == n and p.is_contiguous()
        for p, n in zip(fg.params, fg.numel, strict=True)
    )


def _flat():
    """torchfluid.kernels.flat, imported on first use (it imports numpy's table helpers;
    the kernels themselves load on their first call)."""
    from ..kernels import flat

    return flat


def _records_current(state, records) -> bool:
    """Whether every ``(param, ((acc, view), ...))`` of ``records`` still has its views
    as ``state[param][acc]``, and nothing else (nothing replaced them or was added since the
    last sync)."""
    for p, views in records:
        st = state.get(p, _EMPTY)
        if len(st) != len(views):
            return False
        for acc, view in views:
            if st.get(acc) is not view:
                return False
    return True


class FusedUpdate:
    """The fused update path of one optimizer or static optimize op (``required``:
    fused=True). Holds the flat groups; the state records, the rule and the precision
    options come with each :meth:`update` call."""

    def __init__(self, *, required: bool):
        self.required = required
        self.flat: dict = {}  # (group key, device, dtype) -> kernels.flat.FlatGroup
        self._synced: dict[tuple, tuple] = {}
        self._layout: dict[tuple, tuple] = {}  # key -> (group params seen, flags, index)
        self._last = None  # (params, buckets) of the last update when it can be replayed, see replay

    # -------------------------------------------------------------- eligibility
    def _param_ok(self, p: torch.Tensor, hparams, rule, precision, owns) -> bool:
        """Whether ``p`` belongs in a flat group (checked when a layout is built; the
        layout is re-checked before every step, :func:`_layout_current`). Where only the
        kernel's package is missing, fused=None says so once (a FastPathWarning)."""
        if owns is not None and not owns(p):
            return False  # ZeRO-1: another rank keeps its state; no flat buffer here
        return rule.fused_eligible(p, hparams, precision) and _flat().fused_supported(
            p, warn=not self.required, devices=rule.fused_devices
        )

    @staticmethod
    def _grad_ok(p, g) -> bool:
        """A dense contiguous gradient of the parameter's dtype (the pipeline has already
        checked that it is a tensor on the parameter's device)."""
        return g.layout == torch.strided and g.dtype == p.dtype and g.is_contiguous()

    # ------------------------------------------------------------------ layout
    def _group_for(self, key, members, hparams, rule, precision, owns):
        """The flat group of ``key`` and its ``id(param) -> index`` map, rebuilt when the
        group's parameter list or the rule's layout flags (RMSProp: centered, momentum)
        changed, or when one of its parameters moved, was cast, resized or made
        non-contiguous."""
        _, device, dtype = key
        flags = rule.fused_layout(hparams)
        cached = self._layout.get(key)
        if (
            cached is not None
            and cached[1] == flags
            and len(cached[0]) == len(members)
            and all(map(operator.is_, cached[0], members))
            and _layout_current(self.flat[key])
        ):
            return self.flat[key], cached[2]
        params = [
            q
            for q in members
            if q.device == device and q.dtype == dtype and self._param_ok(q, hparams, rule, precision, owns)
        ]
        fg = self.flat[key] = rule.fused_group(params, flags)
        index = {id(p): i for i, p in enumerate(params)}
        self._layout[key] = (list(members), flags, index)
        self._synced.pop(key, None)
        return fg, index

    def _sync_state(self, key, fg, hparams, rule, runtime, taken) -> None:
        """Make ``runtime.state[p]`` the flat views, copying in whatever replaced them.

        Records exist only for parameters updated at least once (as on the reference
        path): ``taken`` (this step's ``(item, lr, prep)`` entries) are this step's; the
        others keep what they had, if anything.
        """
        state = runtime.state
        synced = self._synced.get(key)
        if synced is not None:
            records, have = synced
            if all(id(e[0].param) in have for e in taken) and _records_current(state, records):
                return
        names = {id(e[0].param): e[0].name for e in taken}
        accs = rule.accumulators(hparams)
        optional = getattr(rule, "optional_records", {})
        stepped_ids = set(names)
        records, have = [], set()
        with torch.no_grad():
            for i, p in enumerate(fg.params):
                st = state.get(p) or {}
                if not st and id(p) not in stepped_ids:
                    continue  # never updated: no record yet
                views = fg.state(i)
                for acc in accs:
                    view, old = views[acc], st.get(acc)
                    if old is view:
                        pass
                    elif old is not None:
                        if not isinstance(old, torch.Tensor):
                            raise ValueError(
                                f"optimizer state {acc!r} of parameter {names.get(id(p), '?')!r} is a "
                                f"{type(old).__name__}; allowed: a tensor"
                            )
                        if old.shape != view.shape:
                            raise ValueError(
                                f"optimizer state {acc!r} of parameter {names.get(id(p), '?')!r} has "
                                f"shape {list(old.shape)}, but the parameter has shape {list(p.shape)}; "
                                "a resized parameter needs fresh state (del optimizer.state[param])"
                            )
                        view.copy_(old.detach().to(device=view.device, dtype=view.dtype))
                    elif st and acc in optional:  # a record without it (a count switched on later)
                        view.fill_(optional[acc])
                    else:
                        view.fill_(rule.fused_initial(acc, hparams))
                record = state_record(rule, {acc: views[acc] for acc in accs})
                if record:  # a layout without records (SGD) makes no entry, as torch keeps none
                    if not st and runtime.on_new_state is not None:
                        runtime.on_new_state(names[id(p)], record)
                    state[p] = record
                records.append((p, tuple((acc, views[acc]) for acc in accs)))
                have.add(id(p))
        self._synced[key] = (records, have)

    # ------------------------------------------------------------------ update
    def update(self, work, runtime, rule, owns=None, before_kernels=None) -> list:
        """Run the fused kernel on what it can take of ``work`` (``(item, lr, prep)``
        triples, :mod:`torchfluid.optimizer.pipeline`); return the triples left over.

        ``owns(param)``: whether this process keeps the parameter's state (ZeRO-1).
        ``before_kernels(left_over)``: called before any kernel runs (it may raise)."""
        return _untraced(FusedUpdate._update)(self, work, runtime, rule, owns, before_kernels)

    def _update(self, work, runtime, rule, owns, before_kernels=None) -> list:
        self._last = None
        rest, buckets = [], {}
        precision = runtime.precision
        for entry in work:
            it, lr, prep = entry
            p, g = it.param, it.grad
            fits = p.dtype in _FLOATS and self._grad_ok(p, g)
            if not (fits and (prep is NO_PREP or prep.foldable())):
                entry = (it._replace(grad=prep.apply(p, g)), lr, NO_PREP)  # what the reference path gets
                fits = p.dtype in _FLOATS and self._grad_ok(p, entry[0].grad)
            if fits:
                buckets.setdefault((id(it.hparams), p.device, p.dtype), []).append(entry)
            else:
                rest.append(entry)
        planned = []
        for key, bucket in buckets.items():
            first = bucket[0][0]
            hparams = first.hparams
            if not rule.fused_eligible(first.param, hparams, precision):  # group options
                rest.extend(bucket)
                continue
            members = hparams.get("params") or [e[0].param for e in bucket]
            fg, index = self._group_for(key, members, hparams, rule, precision, owns)
            taken = [e for e in bucket if id(e[0].param) in index]
            rest.extend(e for e in bucket if id(e[0].param) not in index)
            if taken:
                planned.append((key, fg, index, hparams, taken))
        if rest and self.required:  # before any kernel runs: nothing has changed
            it = rest[0][0]
            if it.param.device.type not in rule.fused_devices:
                raise ValueError(
                    f"fused=True: parameter {it.name!r} is on {it.param.device.type}, where this optimizer has no "
                    f"fused kernel; allowed: parameters on {' or '.join(rule.fused_devices)}, or fused=None to "
                    "fall back to the reference kernel"
                )
            package = _flat().missing(it.param.device.type)
            if package is not None:
                raise ValueError(
                    f"fused=True: parameter {it.name!r} is on {it.param.device.type}, whose fused kernel "
                    f"needs {package}, which is not installed; allowed: pip install {package}, or "
                    "fused=None to fall back to the reference kernel"
                )
            raise ValueError(
                f"fused=True: parameter {it.name!r} ({it.param.dtype} on "
                f"{it.param.device}, gradient {'sparse' if it.grad.is_sparse else it.grad.dtype}) cannot take "
                "the fused kernel; allowed: dense contiguous float32/float64 parameters and "
                "gradients of the same dtype, without master weights, decoupled decay or "
                "bias correction (or use fused=None to fall back automatically)"
            )
        if before_kernels is not None:
            before_kernels(rest)
        for key, fg, _, hparams, taken in planned:  # every group's records first: a bad one raises, nothing changed
            self._sync_state(key, fg, hparams, rule, runtime, taken)
        for _, fg, index, hparams, taken in planned:
            self._step(fg, index, hparams, rule, taken)
        if not rest and owns is None and all(e[2] is NO_PREP or e[2].clip.is_noop() for e in work):
            position = {id(e[0].param): i for i, e in enumerate(work)}
            self._last = (
                rule,
                tuple(e[0].param for e in work),
                tuple(
                    (key, fg, index, hparams, [position[id(e[0].param)] for e in taken])
                    for key, fg, index, hparams, taken in planned
                ),
            )
        return rest

    def replay(self, params, grads, lrs, regs, runtime, before_kernel) -> bool:
        """Update ``params`` (with ``grads``, learning rates ``lrs`` and regularizers
        ``regs``, each None or an ``L2Decay``/``L1Decay`` to fold in) as the last
        :meth:`update` did, when it took every parameter into its flat groups with no clip
        to fold and the caller has found nothing else changed since (the same
        configuration, unedited groups, plain gradients).

        Returns False, having changed nothing, unless ``params`` are that update's
        parameters in the same order, every gradient is dense, contiguous and of its
        parameter's dtype, every flat group still has its members and layout, and the
        state records are still the flat buffers' views. Otherwise it calls
        ``before_kernel()`` and runs the same kernel calls :meth:`update` would make.
        """
        return _untraced(FusedUpdate._replay)(self, params, grads, lrs, regs, runtime, before_kernel)

    def _replay(self, params, grads, lrs, regs, runtime, before_kernel) -> bool:
        last = self._last
        if last is None or len(params) != len(last[1]) or not all(map(operator.is_, params, last[1])):
            return False
        if not all(map(self._grad_ok, params, grads)):
            return False
        state = runtime.state
        rule = last[0]
        for key, fg, _index, hparams, positions in last[2]:
            members, layout = hparams.get("params"), self._layout.get(key)
            if (
                self.flat.get(key) is not fg
                or layout is None
                or members is None
                or len(members) != len(layout[0])
                or not all(map(operator.is_, members, layout[0]))
                or not _layout_current(fg)
            ):
                return False
            synced = self._synced.get(key)
            if synced is None or not all(id(params[i]) in synced[1] for i in positions):
                return False
            if not _records_current(state, synced[0]):
                return False
        before_kernel()
        folded = any(r is not None for r in regs)
        for _key, fg, index, hparams, positions in last[2]:
            n = len(fg.params)
            grads_in, lrs_in, preps = [None] * n, [0.0] * n, [None] * n
            for i in positions:
                j = index[id(params[i])]
                grads_in[j], lrs_in[j] = grads[i], lrs[i]
                preps[j] = NO_PREP if regs[i] is None else GradPrep(reg=regs[i])
            fold = kernel_extras(preps, fg.device, fg.dtype) if folded else NO_FOLD
            rule.fused_step(fg, hparams, grads_in, lrs_in, fold)
        return True

    def _step(self, fg, index, hparams, rule, taken) -> None:
        grads = [None] * len(fg.params)
        lrs = [0.0] * len(fg.params)
        preps = [None] * len(fg.params)
        for it, lr, prep in taken:
            i = index[id(it.param)]
            grads[i], lrs[i], preps[i] = it.grad, lr, prep
        extra = {}
        if getattr(rule, "fused_step_names", False):  # the rule reads its members' names (AdamW)
            extra["names"] = [None] * len(fg.params)
            for it, _, _ in taken:
                extra["names"][index[id(it.param)]] = it.name
        rule.fused_step(fg, hparams, grads, lrs, kernel_extras(preps, fg.device, fg.dtype), **extra)

    # --------------------------------------------------------------- gradients
    def zero_grads(self) -> set:
        """Clear the gradients of every flat group (one memset each); return their params.

        A group whose parameters moved, changed dtype or size since its last step is
        dropped here (its next step rebuilds it) rather than handed foreign gradients.
        """
        done = set()
        for key, fg in list(self.flat.items()):
            if not _layout_current(fg):
                del self.flat[key]
                self._synced.pop(key, None)
                self._layout.pop(key, None)
                continue
            fg.zero_grads()
            done.update(fg.params)
        return done
