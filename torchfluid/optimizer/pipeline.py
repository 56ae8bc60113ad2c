"""The one update function: every path that changes parameters calls :func:`run_update`.

Eager ``step()``, fluid dygraph ``minimize()`` / ``apply_gradients()`` (through
:class:`~torchfluid.optimizer.base.Optimizer`) and the static optimize op (through
:mod:`torchfluid.static.optimize`) hand it the same three things:

* an :class:`UpdateConfig`: a frozen record of what the optimizer was built with (the
  update rule and its default hyper-parameters, clip, regularizer, precision options,
  fused-kernel choice, learning rate). It never holds the optimizer object;
* the step's :class:`Item` s: for each parameter with a gradient, its name, tensors,
  hyper-parameters (its param group), lr multiplier, regularizer and ``need_clip``;
* an :class:`UpdateRuntime`: where the state records, master weights, rounding
  generators and fused flat buffers of these parameters live.

It runs, in Paddle's order::

    prepare       GradScaler overflow (found_inf) -> skip; non-finite policy ('skip' -> skip,
                  'raise' -> FloatingPointError); unscale by grad_scale; float32 gradients
                  for multi-precision parameters; maximize: g = -g
    shard         (ZeRO-1 only) this rank's parameters, gradients averaged if asked
    tensor hparams  each hyper-parameter the rule lets be a tensor (``rule.tensor_hparams``,
                  Adam's ``beta1``, ``beta2``, ``epsilon``) that holds a 1-element tensor is
                  read now and checked by ``rule.check_hparams``: its value at this update
                  (a program's optimize op puts the scope's tensor there at each run)
    clip plan     one ClipStep per gradient (need_clip=False: none), planned over all of them
    regularize    the item's regularizer (the parameter's own, else the optimizer's); every
                  gradient for the reference kernel (complex ones always) is clipped and
                  regularized here, before anything changes (a clip or regularizer that
                  fails, e.g. on a complex gradient, leaves parameters, state and schedule
                  as they were); the fused path folds them into its kernel
    learning rate ``before_update()`` (a fluid decay advances here, never on a skipped step);
                  the stochastic-rounding counter advances too (``Precision.begin_update``)
    kernel        the fused multi-tensor kernel where eligible, the rule's reference
                  kernel otherwise (on a multi-precision parameter's float32 master weight,
                  which the parameter then copies, rounded to its dtype);
                  lr = hparams['lr'] * hparams['lr_mult'] * item.lr_mult;
                  the kernels get the tensor hyper-parameters' values as floats, a new state
                  record is made from the group's own entries (the rule may start it
                  differently for a tensor, as Adam's beta powers); the items of a group
                  with such a tensor take the reference kernel (the fused path keeps its
                  flat buffers per group, and the values read are a new mapping each update)

A skipped step changes nothing (state, parameters, schedule) and returns False.
"""

from __future__ import annotations

import dataclasses
import numbers
import types
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch

from .._grad_mode import hyper_parameter_now, no_grad, recorded_update, recording
from ..clip import ClipStep, GradientClipBase
from .fold import NO_PREP, GradPrep
from .state import adopt_torch_entries, state_record, torch_entry_names

__all__ = ["Item", "UpdateConfig", "UpdateRuntime", "item_lr", "run_update", "prepare", "read_tensor_hparams"]


class Item(NamedTuple):
    """One parameter's part of an update."""

    name: str
    param: torch.Tensor
    grad: torch.Tensor
    hparams: Mapping  # the param group: 'lr', 'lr_mult' and the rule's hyper-parameters
    lr_mult: float = 1.0  # the parameter's own multiplier (ParamAttr learning_rate)
    reg: Any = None  # the regularizer applied to its gradient (None: none)
    need_clip: bool = True


@dataclasses.dataclass(frozen=True, eq=False)
class UpdateConfig:
    """What an optimizer was configured with, frozen (built by ``Optimizer.update_config()``).

    ``rule``: the update rule (accumulators, state init, reference kernel, fused
    eligibility), itself a frozen record. ``hparams``: the default hyper-parameters
    (``lr``, ``lr_mult`` and the rule's), read-only. ``learning_rate``: the float, the
    schedule object or the program variable the optimizer was given.
    """

    rule: Any
    hparams: Mapping
    learning_rate: Any = 0.0
    clip: GradientClipBase | None = None
    regularization: Any = None
    nonfinite: str = "propagate"
    multi_precision: bool = False
    state_dtype: torch.dtype | None = None
    fused: bool | None = False
    name: str | None = None
    parameter_list: tuple | None = None
    differentiable: bool = False

    def __post_init__(self):
        object.__setattr__(self, "hparams", types.MappingProxyType(dict(self.hparams)))


class UpdateRuntime:
    """The mutable side of updates: state records by parameter, master weights and
    rounding generators (``precision``), the fused path's flat buffers (``fused``), and
    ``on_new_state(name, record)`` called when a record is created (loads pending values)."""

    def __init__(
        self, precision, fused=None, state: dict | None = None, on_new_state: Callable[[str, dict], None] | None = None
    ):
        self.precision = precision
        self.fused = fused
        self.state = {} if state is None else state
        self.on_new_state = on_new_state

    def state_for(self, rule, item: Item) -> dict:
        """The state record of ``item.param`` (created by the rule on its first update)."""
        p = item.param
        state = self.state.get(p)
        if not state:
            state = state_record(rule, rule.new_state(p, item.hparams, self.precision.state_dtype_for(p.dtype)))
            if self.on_new_state is not None:
                self.on_new_state(item.name, state)
            self.state[p] = state
        return state

    def complete_records(self, rule, items) -> None:
        """Make the items' records ready for the reference kernel, before any kernel runs.
        A record the kernel cannot take (written into ``optimizer.state`` by hand) raises,
        with nothing changed: an entry that is no tensor, or a parameter-shaped one (all but
        the rule's ``scalar_records`` and ``step``) of another shape. A record the rule keeps
        for the group's options but the entry lacks (the group switched RMSProp's
        ``centered`` on, or the entry was deleted) starts fresh, at the rule's start value
        (an ``optional_records`` one at its value there), as on the fused path."""
        scalars = {"step", *getattr(rule, "scalar_records", ())}
        optional = getattr(rule, "optional_records", {})
        for item in items:
            state = self.state.get(item.param)
            if not state:
                continue  # a parameter's first update: state_for makes its record
            missing = [acc for acc in rule.accumulators(item.hparams) if acc not in state]
            if missing:
                dtype = self.precision.state_dtype_for(item.param.dtype)
                fresh = rule.new_state(item.param, item.hparams, dtype)
                for acc in missing:
                    state[acc] = torch.full_like(fresh[acc], optional[acc]) if acc in optional else fresh[acc]
            for acc, t in state.items():
                if not isinstance(t, torch.Tensor):
                    raise ValueError(
                        f"optimizer state {acc!r} of parameter {item.name!r} is a {type(t).__name__}; allowed: "
                        "a tensor; nothing was updated"
                    )
                if acc not in scalars and t.shape != item.param.shape:
                    raise ValueError(
                        f"optimizer state {acc!r} of parameter {item.name!r} has shape {list(t.shape)}, but the "
                        f"parameter has shape {list(item.param.shape)}; nothing was updated (a resized parameter "
                        "needs fresh state: del optimizer.state[param])"
                    )

    def adopt_torch_entries(self, rule, items) -> None:
        """Read the entries of ``items``' records written under torch.optim's names as the
        rule's (:func:`~torchfluid.optimizer.state.adopt_torch_entries`), all before any
        update: a bad one (a ``step`` that is no count) raises with nothing changed."""
        names = torch_entry_names(rule)
        for item in items:
            state = self.state.get(item.param)
            if state and not names.isdisjoint(state):
                adopt_torch_entries(state, rule, item.hparams)


def item_lr(hparams: Mapping, lr_mult: float) -> float | torch.Tensor:
    """A parameter's learning rate this step: its group's ``lr`` times the group's and its
    own multipliers (every path computes it here, so they round alike). A multiplier
    other than 1 is rounded to float32 first: Paddle applies it with its ``scale`` op,
    whose attribute is a float32 (``lr * float32(m)``, exact for a float64 lr). A tensor
    ``lr`` that requires grad stays a tensor in a recorded (``differentiable``) update, so
    that autograd differentiates the update with respect to it, as torch's."""
    lr = hyper_parameter_now(hparams["lr"])
    lr = lr if isinstance(lr, torch.Tensor) else float(lr)
    return lr * _float32_attr(hparams["lr_mult"]) * _float32_attr(lr_mult)


def _float32_attr(m) -> float:
    m = float(m)
    return m if m == 1.0 else float(np.float32(m))


def prepare(items: list[Item], precision, *, found_inf=None, grad_scale=None) -> list[Item] | None:
    """The prepare stage: the items with their gradients ready to clip, or None to skip.

    Never modifies the given gradient tensors."""
    if found_inf is None and grad_scale is None and precision.passes_gradients_through():
        grads = [it.grad for it in items]  # nothing to skip, check, unscale or widen
    else:
        pairs = precision.prepare(
            [(it.param, it.grad) for it in items], [it.name for it in items], found_inf=found_inf, grad_scale=grad_scale
        )
        if pairs is None:
            return None
        grads = [g for _, g in pairs]
    out = []
    for it, g in zip(items, grads, strict=True):
        if it.hparams.get("maximize", False):
            g = torch.neg(g)
        out.append(it if g is it.grad else it._replace(grad=g))
    return out


def read_tensor_hparams(rule, items: list[Item]) -> dict[int, dict]:
    """For each of the items' hyper-parameter mappings in which one of ``rule.tensor_hparams``
    holds a tensor: ``id(mapping)`` -> a copy of its entries with each such tensor replaced
    by its value now, checked by ``rule.check_hparams``. In a recorded (``differentiable``)
    update a tensor that requires grad and that the rule's kernel differentiates
    (``rule.differentiable_hparams``) is kept instead, as a 0-d tensor, once its value is checked.

    Raises (before anything changes) for a tensor of more than one element or not floating
    point, a value ``check_hparams`` refuses, or an entry that is neither a number nor a
    tensor (a program's Variable, which only that program's optimize op reads)."""
    names = getattr(rule, "tensor_hparams", ())
    out: dict[int, dict] = {}
    if not names:
        return out
    for it in items:
        hp = it.hparams
        if id(hp) in out:
            continue
        live = {n: hp[n] for n in names if not isinstance(hp[n], numbers.Real)}
        if not live:
            continue
        values = {}
        for n, v in live.items():
            if not isinstance(v, torch.Tensor):
                raise TypeError(
                    f"{n} is a {type(v).__name__}, which this update cannot read: a program's variable is read by "
                    "its optimize op when an Executor runs the program; eager updates need a real number or a "
                    "1-element floating-point tensor"
                )
            if v.numel() != 1 or not v.is_floating_point():
                raise ValueError(
                    f"{n} must be a 1-element floating-point tensor, got a {v.dtype} tensor of shape {list(v.shape)}"
                )
            values[n] = float(v.detach().reshape(-1)[0])
        try:
            checked = rule.check_hparams(values)
        except ValueError as e:
            raise ValueError(f"{e} (the value its tensor holds at this update); nothing was updated") from None
        if recording():  # torch's differentiable hyper-parameters: autograd differentiates the update by them
            differentiable = getattr(rule, "differentiable_hparams", ())
            checked.update({n: v.reshape(()) for n, v in live.items() if n in differentiable and v.requires_grad})
        out[id(hp)] = {**hp, **checked}
    return out


def _own(shard, items: list[Item] | None) -> list[Item] | None:
    """This rank's items (ZeRO-1), gradients averaged over the ranks when asked."""
    by_param = {} if items is None else {it.param: it for it in items}
    pairs = shard.own_pairs(None if items is None else [(it.param, it.grad) for it in items])
    if pairs is None:
        return None
    return [by_param[p]._replace(grad=g) for p, g in pairs]


def clip_plan(clip: GradientClipBase | None, items: list[Item], shard=None) -> tuple[list[Item], list[ClipStep]]:
    """``(items, one ClipStep per item)``: the clip's plan, over all ranks' shards under
    sharding; a clip without a plan clips the gradients here (every step is then a no-op)."""
    if clip is None or (not items and shard is None):
        return items, [ClipStep()] * len(items)
    grads, need = [it.grad for it in items], [it.need_clip for it in items]
    if clip.plannable():
        steps = shard.clip_plan(clip, grads, need) if shard is not None else clip.plan(grads, need)
        return items, steps
    grads = shard.clip(clip, grads, need) if shard is not None else clip.clip_tensors(grads, need)
    return [it._replace(grad=g) for it, g in zip(items, grads, strict=True)], [ClipStep()] * len(items)


@no_grad
def run_update(
    config: UpdateConfig,
    items: list[Item],
    runtime: UpdateRuntime,
    *,
    found_inf=None,
    grad_scale=None,
    shard=None,
    before_update: Callable[[], None] | None = None,
) -> bool:
    """One update of ``items`` (module docstring); False when the step was skipped. With
    ``config.differentiable`` (torch's ``differentiable=True``) autograd records it, from the
    prepare stage to the kernels' writes, which update the parameters themselves (not their
    ``.data``), on the reference kernels."""
    with recorded_update(config.differentiable):
        return _run_update(config, items, runtime, found_inf, grad_scale, shard, before_update)


def _run_update(config, items, runtime, found_inf, grad_scale, shard, before_update) -> bool:
    prepared = prepare(items, runtime.precision, found_inf=found_inf, grad_scale=grad_scale)
    if shard is not None:
        prepared = _own(shard, prepared)
    if prepared is None:
        return False
    rule = config.rule
    read = read_tensor_hparams(rule, prepared)
    adjust = getattr(rule, "adjust_items", None)  # a rule's own per-parameter inputs, checked before any change
    if adjust is not None:
        prepared = adjust(prepared)
    try:  # the clip plan and, for the reference kernel, every clipped and regularized gradient: before any change
        prepared, steps = clip_plan(config.clip, prepared, shard)
        preps = [
            NO_PREP if it.reg is None and step.is_noop() else GradPrep(step, it.reg)
            for it, step in zip(prepared, steps, strict=True)
        ]
        fused = None if config.differentiable else runtime.fused  # a fused kernel is not recorded
        eager = [fused is None or it.param.is_complex() for it in prepared]  # never on a fused kernel
        prepared = [
            it._replace(grad=prep.apply(it.param, it.grad)) if now and prep is not NO_PREP else it
            for it, prep, now in zip(prepared, preps, eager, strict=True)
        ]
        preps = [NO_PREP if now else prep for prep, now in zip(preps, eager, strict=True)]
    except (RuntimeError, NotImplementedError) as e:
        complex_names = [it.name for it in prepared if it.param.is_complex()]
        if not complex_names:
            raise
        raise ValueError(
            f"complex parameters {complex_names}: the gradient clip or a regularizer cannot handle complex "
            f"gradients ({str(e).splitlines()[0]}); nothing was updated. Give them need_clip=False and no "
            "L1 regularizer, or optimize torch.view_as_real(p) instead"
        ) from e
    runtime.adopt_torch_entries(rule, prepared)  # records written under torch.optim's names
    if before_update is not None:
        before_update()
    runtime.precision.begin_update()
    work = [(it, item_lr(it.hparams, it.lr_mult), prep) for it, prep in zip(prepared, preps, strict=True)]
    live = []  # items whose hyper-parameters were read from tensors: the reference kernel, with the values read
    if read:  # state records from the group's own entries, then the kernels get the values read
        for it, _, _ in work:
            runtime.state_for(rule, it)
        live = [(it._replace(hparams=read[id(it.hparams)]), lr, p) for it, lr, p in work if id(it.hparams) in read]
        work = [entry for entry in work if id(entry[0].hparams) not in read]
    if fused is not None:  # the records of what it leaves to the reference kernel are checked before its kernels
        check = lambda rest: runtime.complete_records(rule, [e[0] for e in (*rest, *live)])  # noqa: E731
        work = fused.update(work, runtime, rule, None if shard is None else shard.owns, before_kernels=check)
    else:
        runtime.complete_records(rule, [e[0] for e in (*work, *live)])
    for it, lr, prep in (*work, *live):
        master = runtime.precision.master(it.param, it.name)  # the kernel updates it, then the parameter copies it
        state = runtime.state_for(rule, it)
        target = it.param if config.differentiable else it.param.data  # recorded, or outside autograd
        rule.update(
            target if master is None else master,
            prep.apply(it.param, it.grad),
            state,
            lr=lr,
            hparams=it.hparams,
            precision=runtime.precision,
            name=it.name,
        )
        if not state:  # a rule without records here (SGD): no entry, as torch keeps none
            runtime.state.pop(it.param, None)
        if master is not None:
            it.param.data.copy_(master)
    if shard is not None:
        shard.sync_params()
    return True
