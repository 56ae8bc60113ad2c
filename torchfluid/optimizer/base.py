"""The optimizer layer: a real ``torch.optim.Optimizer`` with Paddle's fluid API.

Every update goes through :func:`torchfluid.optimizer.pipeline.run_update` (prepare, clip,
regularize, kernel, in Paddle's order), the same for ``step()``, ``minimize()`` and
``apply_gradients()``. This class collects and validates the ``(param, grad)`` pairs,
turns them into the pipeline's items (names, param groups, lr multipliers, regularizers,
``need_clip``), advances the learning-rate schedule and counts skipped steps.

Subclasses pass an :class:`UpdateParts` (update rule, group defaults, precision,
optional fused path) and forward the shared keyword arguments to it; state records are
keyed by stable parameter names (see :mod:`torchfluid.optimizer.state`).

Front doors. A package whose records stand for tensors elsewhere (the static
``Program`` IR: a loss ``Variable``, ``Parameter`` s, a learning-rate variable)
registers itself with :func:`register_front_door`; ``minimize``, ``backward``,
``apply_gradients``, ``apply_optimize`` and ``append_regularization_ops`` called with
such records hand the frozen :meth:`Optimizer.update_config` to it, and a learning
rate that is such a record is kept as the configuration's ``learning_rate``. This
module never imports those packages and knows nothing of programs.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import numbers
import operator
import types
from collections.abc import Mapping

import numpy as np
import torch

from .._checks import ArgumentTypeError, check_bool, check_number
from .._registry import ByType
from .._grad_mode import closure_loss, no_grad
from ..clip import GradientClipBase, need_clip
from ..distributed import sharding as _sharding
from ..dtypes import torch_dtype
from ..lr import schedules
from ..lr.scheduler import LRScheduler
from ..regularizer import L2Decay, as_regularizer, check_coefficient
from .fold import foldable_regularizer
from .pipeline import Item, UpdateConfig, UpdateRuntime, item_lr, run_update
from .precision import LOW_PRECISION, Precision
from .params import fluid_name, is_group_list, refuse_single_tensor, split_named
from .state import LoadReport, StateCodec, group_hparams, refuse_torch_options, rename_group_keys, sync_group_pairs

# Tensor subclasses (fluid's Variables) route every attribute read and op through a
# Python hook; the optimizer reads and writes plain tensor data, so its per-step work
# runs without it.
_PLAIN_DISPATCH = torch._C.DisableTorchFunctionSubclass

__all__ = ["Optimizer", "UpdateParts", "register_front_door", "is_front_door_record"]

_FRONT_DOORS = ByType("record_type")


def _shape(obj) -> list | str:
    shape = getattr(obj, "shape", None)
    return list(shape) if shape is not None else "(none)"


def register_front_door(record_type: type, door) -> None:
    """Route the fluid API calls made with ``record_type`` instances to ``door``.

    ``door`` provides ``minimize(config, loss, startup_program, parameter_list,
    no_grad_set)``, ``backward(loss, startup_program, parameter_list, no_grad_set,
    callbacks)``, ``apply_gradients(config, params_grads)``, ``apply_optimize(config,
    loss, startup_program, params_grads)`` and ``append_regularization_ops(params_grads,
    regularization)``; ``config`` is the optimizer's :meth:`Optimizer.update_config`.
    """
    _FRONT_DOORS.register(record_type, door)


_front_door = _FRONT_DOORS.lookup  # the door registered for an object's class (or a base class), else None


def is_front_door_record(obj) -> bool:
    """Whether ``obj`` is a record of a registered front door (a program's ``Variable``):
    a value that package reads when it runs, never the optimizer."""
    return _front_door(obj) is not None


def _one_of(name_a: str, a, name_b: str, b):
    if a is not None and b is not None:
        raise ValueError(f"pass only one of {name_a} and {name_b} (they mean the same), got both")
    return a if a is not None else b


@dataclasses.dataclass(frozen=True)
class UpdateParts:
    """What a subclass hands :class:`Optimizer`: its update rule (accumulators, state
    init, reference kernel; see ``RMSPropRule``), its groups' hyper-parameter defaults,
    its :class:`~torchfluid.optimizer.precision.Precision` (None: plain, nonfinite
    gradients propagate) and its fused update path (None: none; only a rule with a fused
    path has ``fused_eligible``)."""

    rule: object
    defaults: Mapping = dataclasses.field(default_factory=dict)
    precision: Precision | None = None
    fused: object = None


class Optimizer(torch.optim.Optimizer):
    """Base of torchfluid's optimizers: Paddle fluid's Optimizer API on a torch.optim.Optimizer."""

    @property
    def _step_supports_amp_scaling(self) -> bool:
        """What ``torch.amp.GradScaler.step`` asks: True while a gradient is float16 or bfloat16
        (which GradScaler's own ``unscale_`` refuses, or would leave rounded to that precision):
        GradScaler then hands step() its scale and inf flag (``grad_scale`` / ``found_inf``) and
        the pipeline's prepare stage skips the step (counted in ``skipped_steps``) or unscales,
        into float32 for master weights. With float32/float64 gradients GradScaler unscales
        ``.grad`` and, after an overflow, does not call step() at all, as for torch.optim's own
        optimizers: frameworks that tell a skipped step by step() not being called
        (accelerate's ``step_was_skipped``) see it."""
        return any(
            p.grad is not None and p.grad.dtype in LOW_PRECISION for group in self.param_groups for p in group["params"]
        )

    def __init_subclass__(cls, fluid_attributes: tuple = (), **kwargs):
        """``fluid_attributes``: the hyper-parameters Paddle's optimizer keeps as private
        attributes, which Paddle's own tests and user code read (``adam._beta1``,
        ``rmsprop._rho``): ``_<key>`` reads the value given at construction."""
        super().__init_subclass__(**kwargs)
        for key in fluid_attributes:
            setattr(cls, f"_{key}", property(lambda self, key=key: self.defaults[key], doc=f"Paddle's ``_{key}``."))

    def __init__(
        self,
        learning_rate,
        parameter_list=None,
        regularization=None,
        grad_clip=None,
        name=None,
        *,
        parameters=None,
        weight_decay=None,
        shard_state: bool = False,
        grad_reduction: str = "none",
        process_group=None,
        multi_precision: bool = False,
        nonfinite: str = "propagate",
        maximize: bool = False,
        differentiable: bool = False,
        parts: UpdateParts,
    ):
        """The shared arguments (fluid's five, then Paddle 2.x's ``parameters`` and
        ``weight_decay``, then torchfluid's keywords): ``multi_precision`` keeps float32
        master weights and state for float16/bfloat16 parameters and ``nonfinite`` picks
        what a step does with a NaN/inf gradient (:mod:`torchfluid.optimizer.precision`);
        a subclass with more precision options passes its own ``parts.precision``.
        ``maximize`` (torch's option, also per param group): ``g = -g`` before clipping and
        regularization, for every rule (a subclass may keep it among its own defaults).
        ``differentiable`` (torch's): ``step()`` is recorded by autograd, on the reference
        kernels (the same numbers, bit for bit), so the new parameters and state are
        differentiable functions of the old ones and of the gradients; the parameters are
        then non-leaf tensors, as torch requires for in-place updates under autograd
        (hyper-parameter tensors and a gradient clip's scale are read as constants).
        Refused with ``fused=True``, ``multi_precision``, ``shard_state`` and in static mode."""
        params = _one_of("parameter_list", parameter_list, "parameters", parameters)
        self._paddle2_api = parameters is not None  # 2.x spelling: set_lr takes numbers only
        if not isinstance(parts, UpdateParts):
            raise TypeError(f"{type(self).__name__}: an Optimizer subclass must pass its UpdateParts (parts=...)")
        rule, defaults = parts.rule, parts.defaults
        self._rule = rule
        if parts.precision is None:
            self._precision = Precision(multi_precision=multi_precision, state_dtype=None, nonfinite=nonfinite)
        elif multi_precision or nonfinite != "propagate":
            raise TypeError(f"{type(self).__name__}: pass multi_precision/nonfinite in parts.precision, not both")
        else:
            self._precision = parts.precision
        self._differentiable = check_bool("differentiable", differentiable)
        self._fused = parts.fused
        if differentiable:
            _check_differentiable(self, multi_precision=self._precision.multi_precision, shard_state=shard_state)
            self._fused = None  # a fused kernel writes raw memory, which autograd cannot record
        self.skipped_steps = 0
        # distributed (ZeRO-1): None unless shard_state=True; see torchfluid.distributed
        self._sharding = _sharding.make(self, shard_state, grad_reduction, process_group)
        # a learning rate held by a front door's records (a program's lr variable)
        self._lr_record = learning_rate if _front_door(learning_rate) is not None else None
        if self._lr_record is not None:
            learning_rate = 0.0
        reg = _one_of("regularization", regularization, "weight_decay", weight_decay)
        self._schedule = schedules.as_schedule(learning_rate)
        if self._schedule is None:
            base_lr = check_lr("learning_rate", learning_rate)
        else:
            base_lr = schedules.peek(self._schedule)
        self.regularization = as_regularizer(reg, "weight_decay" if weight_decay is not None else "regularization")
        if grad_clip is not None and not isinstance(grad_clip, GradientClipBase):
            raise TypeError(
                f"grad_clip must be None or a ClipGradByValue/ClipGradByNorm/ClipGradByGlobalNorm, "
                f"got {type(grad_clip).__name__}"
            )
        self._grad_clip = grad_clip
        if name is not None and not isinstance(name, str):
            raise ValueError(f"name must be None or a str, got {name!r}")
        self._name = name
        self._names: dict[torch.Tensor, str] = {}
        self._generated_names: set[str] = set()  # param_<k>: no name was given, nor a layer's
        self._index_cache = None  # see _param_index
        self._config_cache = None  # see update_config
        self._plain_config = None  # the configuration of the last step that _replay may repeat
        self._codec = StateCodec(self, rule=rule, precision=self._precision, check_group=self._check_group)
        self._runtime = UpdateRuntime(self._precision, self._fused, on_new_state=self._codec.apply_pending)
        self._last_lr: float | None = None
        self._record_params = None
        self._constructing = True
        group_defaults = {"lr": base_lr, "lr_mult": 1.0, "maximize": check_bool("maximize", maximize)}
        super().__init__([{"params": []}], {**group_defaults, **dict(defaults or {})})
        self._constructing = False
        if params is not None:
            refuse_single_tensor(params)
            if is_group_list(params):
                for group in params:
                    self.add_param_group(group)
            elif not self._keep_record_list(params):
                self.add_param_group({"params": params})
            # an empty flat list is refused (as torch does); param-group dicts may all be empty (torch keeps
            # them: ZeroRedundancyOptimizer gives a rank whose shard has no parameters its empty groups)
            flat = not is_group_list(params)
            if flat and self._record_params is None and not any(g["params"] for g in self.param_groups):
                raise ValueError(
                    f"{type(self).__name__} got an empty parameter list: there is nothing to optimize "
                    "(pass parameters=None in static mode, where minimize() finds them)"
                )
        self._checked_hparams = [group_hparams(g) for g in self.param_groups]

    # ------------------------------------------------------------------ params
    def _keep_record_list(self, params) -> bool:
        """A list of front-door records or names (a program's parameters) is kept for the
        configuration (``update_config().parameter_list``) instead of becoming a group."""
        if (
            isinstance(params, (list, tuple))
            and params
            and all(isinstance(p, str) or _front_door(p) is not None for p in params)
        ):
            self._record_params = list(params)
            return True
        return False

    def add_param_group(self, param_group: Mapping) -> None:
        """Add a group: ``{'params': ..., 'lr': absolute lr, 'learning_rate': Paddle multiplier, ...}``.

        ``params`` takes every form the constructor takes, and a single tensor (as torch's).
        Hyper-parameters not given
        fall back to the optimizer's defaults and are range-checked. torch's names of the
        rule's options (its ``torch_group_keys``: RMSprop's ``alpha``/``eps``, Adagrad's
        ``eps``, SGD's ``nesterov``) are read as the rule's own. A group's ``weight_decay``
        (a float >= 0) is a coupled ``L2Decay`` of its parameters, as in Paddle 2.x and torch:
        it replaces the optimizer's regularization for that group, and a parameter's own
        ``regularizer`` still comes first (AdamW: the group's decay coefficient).
        """
        if not isinstance(param_group, Mapping):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        group = rename_group_keys(param_group, getattr(self._rule, "torch_group_keys", {}), "param_group")
        if "params" not in group:
            raise ValueError("param_group must have a 'params' entry")
        params = group["params"]  # a single tensor in a group is a list of one, as in torch
        named = split_named([params] if isinstance(params, torch.Tensor) else params, "param_group['params']")
        if not named and self._constructing:
            return
        given_names = group.pop("param_names", None)
        if given_names is not None:
            if len(given_names) != len(named):
                raise ValueError(f"param_group['param_names'] has {len(given_names)} names for {len(named)} params")
            named = [(n, p) for n, (_, p) in zip(given_names, named, strict=True)]
        if "learning_rate" in group:
            group["lr_mult"] = check_number("param_group['learning_rate']", group.pop("learning_rate"), lo=0.0)
        existing = {p for g in self.param_groups for p in g["params"]}
        seen: set[torch.Tensor] = set()
        taken = set(self._names.values())
        generated = set()
        names = []
        for i, (given, p) in enumerate(named):
            if p in seen:
                raise ValueError(f"parameter {i} (shape {list(p.shape)}) appears twice in the parameter list")
            if p in existing:
                raise ValueError(f"parameter {i} (shape {list(p.shape)}) is already in another parameter group")
            if not p.is_leaf and not self._differentiable:
                raise ValueError(
                    f"parameter {i} is not a leaf tensor; only leaves can be optimized (or any tensor, "
                    "with differentiable=True)"
                )
            if p.is_complex() and not getattr(self._rule, "supports_complex", False):
                raise ValueError(
                    f"parameter {i} has complex dtype {p.dtype}: {type(self).__name__} updates real "
                    "floating-point parameters only (optimize torch.view_as_real(p) instead)"
                )
            if not (p.is_floating_point() or p.is_complex()):
                raise ValueError(f"parameter {i} must be a floating-point tensor, got dtype {p.dtype}")
            seen.add(p)
            k = len(self._names) + i  # param_<k>: its position in this optimizer, skipping taken names
            while f"param_{k}" in taken:
                k += 1
            name = given or fluid_name(p) or f"param_{k}"
            if name in taken:
                raise ValueError(f"two parameters share the name {name!r}; names key the optimizer state")
            taken.add(name)
            names.append(name)
            if not (given or fluid_name(p)):
                generated.add(name)
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        group["params"] = [p for _, p in named]
        aliases, add = self.torch_group_aliases()  # torch's betas: what the group gives wins
        sync_group_pairs(group, aliases, self.defaults, add=add, where="param_group")
        self._check_group(group)
        for name, (_, p) in zip(names, named, strict=True):
            self._names[p] = name
        self._generated_names |= generated
        group["param_names"] = names
        self.param_groups.append(group)
        self._codec.group_added(group)

    # whether every param group holds torch's pair keys of the rule (the Adam family's betas, kept
    # equal to beta1/beta2: torch.optim's classes), or only where written (see sync_group_pairs)
    keeps_torch_pairs = False

    def torch_group_aliases(self) -> tuple[dict, tuple]:
        """torch's keys for this optimizer's group options, ``{torch's key: (options)}`` (the
        rule's ``torch_group_keys``, one option each, and ``torch_group_pairs``: the Adam
        family's ``betas``), and those every group holds (the pairs, where
        :attr:`keeps_torch_pairs`); :func:`~torchfluid.optimizer.state.sync_group_pairs`
        keeps them equal."""
        rule = self._rule
        pairs = dict(getattr(rule, "torch_group_pairs", {}))
        aliases = {theirs: (ours,) for theirs, ours in getattr(rule, "torch_group_keys", {}).items()}
        aliases.update(pairs)
        return aliases, tuple(pairs) if self.keeps_torch_pairs else ()

    # a subclass's numeric group options and their check_number bounds, checked at construction
    # and in every group (see checked_options)
    option_bounds: Mapping = types.MappingProxyType({})

    @classmethod
    def checked_options(cls, values: Mapping) -> dict:
        """``values`` of :attr:`option_bounds`' options, each range-checked, as floats: the
        constructor's defaults and every group are checked here (a subclass whose options
        are not all numbers in ranges overrides it, returning them normalised)."""
        return {key: check_number(key, values[key], **bounds) for key, bounds in cls.option_bounds.items()}

    def _check_group(self, group: dict) -> None:
        """Range-check a group; a torch option the rule lacks (``torch_neutral_options``) must
        be at its neutral value (torch's names of the rule's own options are kept equal to them
        before this check: :meth:`torch_group_aliases`)."""
        check_lr("lr", group["lr"])
        check_number("lr_mult", group["lr_mult"], lo=0.0)
        check_bool("maximize", group["maximize"])
        if group.get("weight_decay") is not None:
            check_coefficient("weight_decay", group["weight_decay"])
        self.checked_options(group)
        refuse_torch_options(group, "the param group", getattr(self._rule, "torch_neutral_options", {}))

    def _check_edited_groups(self) -> bool:
        """Hyper-parameters written into ``param_groups`` since the last check are checked
        as the constructor checks them (before anything changes). Returns whether any
        group was new or edited."""
        checked = self._checked_hparams
        edited = False
        for i, g in enumerate(self.param_groups):
            if i < len(checked) and len(g) == len(checked[i]) + 2 and _unchanged(checked[i], g):
                continue  # every value as checked
            edited = True
            # synced and checked on a copy, written back whole only once it passes: a refused
            # value (torch's key included) leaves the options as they were, so writing a good
            # value over the bad one afterwards is all it takes
            trial = dict(g)
            written = {}
            try:
                previous = checked[i] if i < len(checked) else None
                aliases, add = self.torch_group_aliases()  # a scheduler's betas, ZeRO's eps, or ours written
                written = sync_group_pairs(trial, aliases, previous, add=add, where="the param group")
                self._check_group(trial)
            except (TypeError, ValueError) as e:
                note = "".join(f" (set by {alias}={value!r})" for alias, value in written.items())
                raise type(e)(f"param_groups[{i}]: {e}{note}") from None
            for key in [key for key in g if key not in trial]:
                del g[key]
            g.update(trial)
            hp = group_hparams(g)
            if i < len(checked):
                checked[i] = hp
            else:
                checked.append(hp)
        return edited

    @property
    def param_names(self) -> Mapping:
        """``{param: name}`` of every managed parameter, in the optimizer's order (read-only)."""
        return types.MappingProxyType(self._names)

    def rename_params(self, names: Mapping[str, str]) -> None:
        """Give parameters new names (the names their state is keyed by): ``{old: new}``.
        The new names must be strings, unique, and not another parameter's; nothing changes
        otherwise. ZeRO-1 (``shard_state``) assigns parameters to ranks by name: refused there."""
        if self._sharding is not None:
            raise ValueError("rename_params: shard_state=True assigns parameters to ranks by name; allowed: none")
        by_name = {name: p for p, name in self._names.items()}
        unknown = [old for old in names if old not in by_name]
        if unknown:
            raise ValueError(f"rename_params: no parameter is named {unknown[0]!r}; allowed: {sorted(by_name)}")
        kept = set(by_name) - set(names)
        new = list(names.values())
        bad = [n for n in new if not isinstance(n, str) or not n or n in kept or new.count(n) > 1]
        if bad:
            raise ValueError(f"rename_params: new name {bad[0]!r} is not a unique non-empty str; names key the state")
        for old, name in names.items():
            self._names[by_name[old]] = name
        self._generated_names -= set(names)
        for group in self.param_groups:
            group["param_names"] = [names.get(n, n) for n in group["param_names"]]
        self._index_cache = self._plain_config = None  # both hold the names

    @property
    def generated_names(self) -> frozenset:
        """The names this optimizer made up (``param_<k>``: the parameter came without a name
        and from no fluid layer); torch's layout leaves them out, as torch leaves out the
        names of an optimizer built from unnamed parameters."""
        return frozenset(self._generated_names)

    def _param_index(self) -> dict:
        """``{id(param): (name, group)}`` of the managed parameters in ``param_groups``,
        rebuilt when a group, a group's ``params`` list or its length changed since the
        last call (the cache keeps those objects alive, so their ids stay theirs)."""
        key = tuple((g, g["params"], len(g["params"])) for g in self.param_groups)
        cached = self._index_cache
        if cached is None or len(cached[0]) != len(key) or not all(map(_same_group, cached[0], key)):
            names = self._names
            index = {id(p): (names[p], g) for g in self.param_groups for p in g["params"]}
            self._index_cache = cached = (key, index)
        return cached[1]

    # -------------------------------------------------------- learning rate
    def _lr_value_for_update(self) -> float | None:
        """The schedule's lr for this update (fluid decays advance here), or None for a float lr."""
        if self._schedule is None:
            return None
        value = schedules.take(self._schedule)
        self._last_lr = value
        for g in self.param_groups:
            g["lr"] = value
        return value

    def current_step_lr(self) -> float:
        """The learning rate of the current step (Paddle dygraph ``current_step_lr``).

        With a fluid ``LearningRateDecay`` this is the lr the last update used (its value
        at ``step_num`` before the first update); with a 2.x ``LRScheduler`` its current
        value; otherwise the (first group's) float lr.
        """
        if self._schedule is not None:
            if self._last_lr is not None and schedules.is_fluid_decay(self._schedule):
                return self._last_lr
            return schedules.peek(self._schedule)
        if self._lr_record is not None:
            raise TypeError(
                f"learning_rate is a {type(self._lr_record).__name__} (a program's learning-rate variable "
                f"{getattr(self._lr_record, 'name', '')!r}): its value at each step lives in the scope the program "
                "runs in; fetch it (exe.run(program, fetch_list=[lr_var])) or read the scope's variable"
            )
        if self.param_groups:
            return float(self.param_groups[0]["lr"])
        return float(self.defaults["lr"])

    def get_lr(self) -> float:
        """Paddle 2.x name: the current learning rate (see :meth:`current_step_lr`)."""
        return self.current_step_lr()

    @property
    def _learning_rate(self):
        """Paddle's attribute: the attached schedule (fluid decay or 2.x ``LRScheduler``),
        else the learning-rate record (a program variable), else the float lr."""
        if self._schedule is not None:
            return self._schedule
        return self._lr_record if self._lr_record is not None else float(self.defaults["lr"])

    def _global_learning_rate(self, program=None):
        """Paddle's method: the learning-rate record (a program variable) of the update this
        optimizer appended to ``program`` (for a front-door ``minimize``; ``program`` None:
        the door's default); else, with ``program`` None, a 1-element float32 tensor of
        :meth:`current_step_lr` (a copy: writing it changes nothing); else None."""
        config = self.update_config()
        for door in _FRONT_DOORS.values():
            find = getattr(door, "learning_rate_var", None)
            record = find(config, program) if find is not None else None
            if record is not None:
                return record
        if program is not None:
            return None
        return torch.tensor([self.current_step_lr()], dtype=torch.float32)

    def get_opti_var_name_list(self) -> list:
        """Paddle's method: the names of the optimizer's state variables: those of its eager
        state (``<param>_<acc>_0``, the tensor keys of ``state_dict()``; none before the first
        update), then those of the updates it appended to the default main program."""
        names = [k for k, v in self._codec.state_dict().items() if isinstance(v, torch.Tensor)]
        config = self.update_config()
        for door in _FRONT_DOORS.values():
            find = getattr(door, "state_var_names", None)
            if find is not None:
                names += [n for n in find(config, None) if n not in names]
        return names

    @property
    def _accumulators(self) -> Mapping:
        """Paddle's attribute, read-only: ``{accumulator: {parameter name: state}}`` (the
        accumulator prefixed ``<name>_`` when the optimizer has a ``name``, as Paddle keys
        it): the eager state tensors (none before the first update), then the accumulator
        records of the updates this optimizer appended to programs (a front door's
        ``accumulator_records``: the programs' variables)."""
        prefix = f"{self._name}_" if self._name else ""
        out: dict[str, dict] = {}
        for g in self.param_groups:
            for p in g["params"]:
                for acc, t in (self.state.get(p) or {}).items():
                    if isinstance(t, torch.Tensor):
                        out.setdefault(prefix + acc, {})[self._names[p]] = t
        config = self.update_config()
        for door in _FRONT_DOORS.values():
            find = getattr(door, "accumulator_records", None)
            for acc, records in (find(config, None) if find is not None else {}).items():
                out.setdefault(prefix + acc, {}).update(records)
        return types.MappingProxyType({acc: types.MappingProxyType(v) for acc, v in out.items()})

    @property
    def _dtype(self):
        """Paddle's attribute: the dtype the optimizer infers from its parameters, that of the
        first one (a ``torch.dtype``, as a variable's ``dtype`` is), or None without parameters."""
        params = self._parameter_list
        return torch_dtype(params[0].dtype) if params else None

    @property
    def _parameter_list(self) -> list:
        """Paddle's attribute: the parameters being optimized, in order."""
        if self._record_params is not None:
            return list(self._record_params)
        return [p for g in self.param_groups for p in g["params"]]

    def set_lr_scheduler(self, scheduler) -> None:
        """Attach a 2.x ``LRScheduler`` (Paddle 2.x): from now on the lr is ``scheduler()``,
        advanced by the user's ``scheduler.step()``."""
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(f"set_lr_scheduler needs a paddle.optimizer.lr.LRScheduler, got {type(scheduler).__name__}")
        self._schedule = scheduler
        value = schedules.peek(scheduler)
        self.defaults["lr"] = value
        for g in self.param_groups:
            g["lr"] = value

    def set_lr(self, value) -> None:
        """Set the learning rate of every group by hand (a float or, with fluid's
        ``parameter_list=`` spelling, a 1-element tensor; Paddle 2.x, ``parameters=``,
        takes numbers only and raises TypeError for a tensor: Paddle 2.0 final's contract,
        which reversed 2.0-rc's, where ``paddle.optimizer``'s ``set_lr`` took a [1] tensor
        and refused an int).

        Raises RuntimeError when a learning-rate schedule is attached (as Paddle does), and
        when updates this optimizer appended elsewhere read the rate from a variable of
        their own (a front door's ``learning_rate_holders``: a static program's
        learning-rate variable, which the new rate would not reach; Paddle's ``set_lr`` is
        dygraph-only).
        """
        if self._paddle2_api and not (isinstance(value, numbers.Real) and not isinstance(value, bool)):
            raise TypeError(f"set_lr needs a float (Paddle 2.x optimizers take no tensor), got {type(value).__name__}")
        if self._schedule is not None:
            raise RuntimeError(
                f"set_lr cannot be used while a learning-rate schedule "
                f"({type(self._schedule).__name__}) is attached: the two would conflict"
            )
        holders = self._learning_rate_holders()
        if holders:
            raise RuntimeError(
                f"set_lr cannot change the learning rate of the updates this optimizer appended: they read it from "
                f"{'; '.join(holders)}, which the new value would not reach (Paddle's set_lr is dygraph-only); give "
                "learning_rate a fluid.layers decay, or a variable (fluid.layers.create_global_var) whose value you "
                "set in the scope"
            )
        if isinstance(value, (torch.Tensor, np.ndarray)):
            t = torch.as_tensor(value)
            if t.numel() != 1:
                raise ValueError(f"set_lr needs a float or a 1-element tensor, got a tensor of shape {list(t.shape)}")
            # the shortest decimal that rounds to the same value in the tensor's dtype:
            # a float32 0.7 gives 0.7 (what Paddle prints), not 0.699999988079071
            first = t.detach().cpu().reshape(-1)[:1]
            first = first if first.dtype == torch.float64 else first.to(torch.float32)
            value = float(str(first.numpy()[0]))
        elif not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise TypeError(f"set_lr needs a float or a 1-element tensor, got {type(value).__name__}")
        value = check_number("learning_rate", value, lo=0.0)
        self.defaults["lr"] = value
        for g in self.param_groups:
            g["lr"] = value

    # ------------------------------------------------------------ pipeline
    def _collect(self, parameter_list=None, no_grad_set=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(param, grad) for every trainable managed parameter that has a gradient."""
        wanted = None
        if parameter_list is not None:
            wanted = set()
            known = set(self._names.values())
            for i, item in enumerate(parameter_list):
                name = item if isinstance(item, str) else self._names.get(item)
                if name not in known:
                    what = repr(item) if isinstance(item, str) else f"a {type(item).__name__} of shape {_shape(item)}"
                    raise ValueError(
                        f"parameter_list[{i}] is {what}, which this optimizer does not manage: an eager update "
                        "changes the parameters the optimizer was built with (parameter_list= / parameters=) only"
                    )
                wanted.add(name)
        excluded = set()
        for item in no_grad_set or ():
            excluded.add(item if isinstance(item, str) else self._names.get(item, id(item)))
        names = self._names if wanted is not None or excluded else None
        pairs = []
        with _PLAIN_DISPATCH():  # attribute reads without tensor subclasses' Python hook
            for g in self.param_groups:
                for p in g["params"]:
                    grad = p.grad
                    if (
                        grad is None
                        or not p.requires_grad
                        or getattr(p, "trainable", True) is False
                        or getattr(p, "stop_gradient", False) is True
                    ):
                        continue
                    if names is not None:
                        name = names[p]
                        if (wanted is not None and name not in wanted) or name in excluded:
                            continue
                    pairs.append((p, grad))
        return pairs

    def _validate(self, params_grads) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Check every pair before anything changes; drop pairs whose grad is None."""
        out = []
        for i, pair in enumerate(params_grads):
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise TypeError(f"params_grads[{i}] must be a (param, grad) pair, got {type(pair).__name__}")
            p, g = pair
            if g is None:
                continue
            name = self._names.get(p) if isinstance(p, torch.Tensor) else None
            if name is None:
                raise ValueError(f"params_grads[{i}]: the parameter is not managed by this optimizer")
            if not isinstance(g, torch.Tensor):
                raise TypeError(f"gradient of {name!r} must be a tensor, got {type(g).__name__}")
            _check_grad(name, p, g, from_attr=False)
            out.append((p, g))
        return out

    def update_config(self) -> UpdateConfig:
        """The frozen configuration of this optimizer's updates (rule, default
        hyper-parameters, learning rate, clip, regularizer, precision and fused options);
        what a static optimize op carries instead of the optimizer."""
        prec = self._precision
        fused = False if self._fused is None else getattr(self, "fused", None)
        defaults, records = self.defaults, self._record_params
        inputs = (
            self._rule, self._lr_record, self._schedule, self._grad_clip, self.regularization, prec.nonfinite,
            prec.multi_precision, prec.state_dtype, fused, self._name, records is None, *(records or ()), *defaults,
            *defaults.values(),
        )  # fmt: skip
        cached = self._config_cache
        if cached is not None and len(cached[0]) == len(inputs) and all(map(operator.is_, cached[0], inputs)):
            return cached[1]  # built from the same objects (the cache keeps them alive, so no id is reused)
        record_params = None if records is None else tuple(records)
        lr = (
            self._lr_record
            if self._lr_record is not None
            else (self._schedule if self._schedule is not None else float(self.defaults["lr"]))
        )
        config = UpdateConfig(
            rule=self._rule,
            hparams=self.defaults,
            learning_rate=lr,
            clip=self._grad_clip,
            regularization=self.regularization,
            nonfinite=prec.nonfinite,
            multi_precision=prec.multi_precision,
            state_dtype=prec.state_dtype,
            fused=fused,
            name=self._name,
            parameter_list=record_params,
            differentiable=self._differentiable,
        )
        self._config_cache = (inputs, config)
        return config

    @property
    def grad_clip(self) -> GradientClipBase | None:
        """The gradient clip given at construction (None: no clipping)."""
        return self._grad_clip

    @property
    def name(self) -> str | None:
        """The ``name`` given at construction: the prefix of this optimizer's state keys."""
        return self._name

    @property
    def lr_schedule(self):
        """The learning-rate schedule given as ``learning_rate`` (None for a float)."""
        return self._schedule

    @property
    def sharding(self):
        """The ZeRO-1 record (:class:`torchfluid.distributed.sharding.ShardedState`) when
        ``shard_state=True``, else None."""
        return self._sharding

    def parse_state_key(self, key: str) -> tuple[str, str] | None:
        """A state-dict key -> ``(parameter name, accumulator)``, None if it is not an accumulator key."""
        return self._codec.parse(key)

    @property
    def multi_precision(self) -> bool:
        """Whether float16/bfloat16 parameters keep float32 master weights and state."""
        return self._precision.multi_precision

    @property
    def state_dtype(self) -> torch.dtype | None:
        """The accumulators' dtype (None: Paddle's, from each parameter's dtype)."""
        return self._precision.state_dtype

    @property
    def nonfinite(self) -> str:
        """What a step does with a NaN/inf gradient: 'propagate', 'skip' or 'raise'."""
        return self._precision.nonfinite

    def master_weights(self) -> dict:
        """``{param: float32 master}`` of the multi-precision parameters updated so far."""
        return dict(self._precision.masters)

    @torch.compiler.disable
    @no_grad
    def _run_pipeline(self, params_grads, *, from_grad_attrs: bool = False) -> None:
        """The update: the pairs as pipeline items through :func:`run_update`.
        ``from_grad_attrs``: the pairs are managed parameters and their ``.grad``, which
        torch keeps in the parameter's shape, dtype and device (it refuses any other
        assignment), so :meth:`_validate` has nothing left to check.

        Never traced by ``torch.compile``: a compiled training step breaks the graph here
        and runs the update eagerly on real tensors (the fused kernels read raw memory,
        and the pipeline keeps Python-side state), so compiled and eager training agree
        bit for bit."""
        if self._lr_record is not None:
            raise TypeError(
                f"learning_rate is a {type(self._lr_record).__name__} (a program's learning-rate variable): it "
                "drives updates only in a program run by an Executor; eager updates need a float or a schedule"
            )
        with _PLAIN_DISPATCH():  # the update reads and writes tensors; subclass hooks add nothing
            pairs = _check_grad_attrs(params_grads, self._names) if from_grad_attrs else self._validate(params_grads)
            # a step with no gradient changes nothing and checks nothing, as torch's (a scheduler may
            # write values no update takes): the next step that updates checks what was written
            edited = self._check_edited_groups() if pairs else False
            config = self.update_config()
            index = self._param_index()
            self._runtime.state = self.state
            if from_grad_attrs and not edited and config is self._plain_config and self._replay(pairs, index):
                return
            group_reg = {id(g): _group_regularizer(g, self.regularization) for g in self.param_groups}
            items = []
            for p, g in pairs:
                name, group = index[id(p)]
                reg = getattr(p, "regularizer", None) or group_reg[id(group)]
                items.append(Item(name, p, g, group, _param_lr_mult(p), reg, need_clip(p)))
            shard = self._sharding if self._sharding is not None and self._sharding.engaged else None
            plain = self._fused is not None and shard is None and self._plain_step_inputs(config)
            grad_scale = getattr(self, "grad_scale", None)
            done = run_update(
                config,
                items,
                self._runtime,
                found_inf=getattr(self, "found_inf", None),
                grad_scale=grad_scale,
                shard=shard,
                before_update=self._lr_value_for_update,
            )
            if done and from_grad_attrs and grad_scale is not None:
                _unscale_in_place([g for _, g in pairs], grad_scale)
            plain = (
                plain
                and done
                and all(foldable_regularizer(it.reg) and not it.hparams.get("maximize", False) for it in items)
            )
            self._plain_config = config if plain else None
        if not done:
            self.skipped_steps += 1

    def _plain_step_inputs(self, config) -> bool:
        """Whether this step's update needs nothing but the kernel: no GradScaler input,
        no schedule, no clip, gradients passed through as they are (see :meth:`_replay`)."""
        return (
            getattr(self, "found_inf", None) is None
            and getattr(self, "grad_scale", None) is None
            and self._schedule is None
            and config.clip is None
            and self._precision.passes_gradients_through()
        )

    def _replay(self, pairs, index) -> bool:
        """The update of a step like the last one, which :func:`run_update` found plain
        (no GradScaler input, schedule, clip or maximize; no regularizer but an exact
        ``L2Decay``/``L1Decay``, which the kernel folds in; every parameter on the fused
        kernel) with the same configuration and unedited groups: the fused path repeats its
        kernel calls with this step's gradients, learning rates and regularizers
        (:meth:`FusedUpdate.replay`), which are exactly what the pipeline would hand it.
        False, with nothing changed, where anything differs."""
        if (self._sharding is not None and self._sharding.engaged) or not self._plain_step_inputs(self._plain_config):
            return False
        if getattr(self._rule, "adjust_items", None) is not None:  # per-parameter inputs of the rule's own
            return False
        per_group = {}  # id(group) -> (its regularizer, its parameters' lr without their own multiplier)
        lrs, regs = [], []
        for p, _ in pairs:
            group = index[id(p)][1]
            shared = per_group.get(id(group))
            if shared is None:
                group_reg = _group_regularizer(group, self.regularization)
                if not foldable_regularizer(group_reg):
                    return False
                shared = per_group[id(group)] = (group_reg, item_lr(group, 1.0))
            reg = getattr(p, "regularizer", None)
            if reg is not None and not foldable_regularizer(reg):
                return False
            regs.append(shared[0] if reg is None else reg)
            mult = _param_lr_mult(p)
            lrs.append(shared[1] if mult == 1.0 else item_lr(group, mult))
        params, grads = [p for p, _ in pairs], [g for _, g in pairs]
        return self._fused.replay(params, grads, lrs, regs, self._runtime, self._precision.begin_update)

    # ------------------------------------------------------- torch API
    @no_grad
    def step(self, closure=None):
        """torch API: one update from the gradients in ``.grad`` (``closure`` re-evaluates the loss)."""
        loss = closure_loss(closure)
        self._run_pipeline(self._collect(), from_grad_attrs=True)
        return loss

    def state_dict(self) -> dict:
        """Paddle-style keys: ``<param>_<accumulator>_0`` -> tensor, plus ``LR_Scheduler``
        when a schedule is attached and ``param_groups`` (hyper-parameters by group).
        torch's state-dict hooks run around it (``register_state_dict_pre_hook`` /
        ``register_state_dict_post_hook``), as in ``torch.optim.Optimizer.state_dict``."""
        return self.paddle_state_dict()

    def paddle_state_dict(self) -> dict:
        """Paddle's layout (see :meth:`state_dict`), whatever ``state_dict()`` returns."""
        self._refuse_program_state("state_dict")
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)
        out = self._codec.state_dict()
        for post_hook in self._optimizer_state_dict_post_hooks.values():
            result = post_hook(self, out)
            if result is not None:
                out = result
        return out

    def _load_with_hooks(self, state_dict, *, strict: bool, key_map) -> LoadReport:
        """torch's load hooks around :meth:`StateCodec.load`: pre-hooks may return a new
        state dict (the caller's is never modified); post-hooks run after a load."""
        self._refuse_program_state("set_state_dict")
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = pre_hook(self, state_dict)
            if result is not None:
                state_dict = result
        report = self._codec.load(state_dict, strict=strict, key_map=key_map)
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)
        return report

    # hook dictionaries are dropped from copies and pickles, as torch.optim.Optimizer does
    _UNCOPIED = (
        "_optimizer_step_pre_hooks",
        "_optimizer_step_post_hooks",
        "_optimizer_state_dict_pre_hooks",
        "_optimizer_state_dict_post_hooks",
        "_optimizer_load_state_dict_pre_hooks",
        "_optimizer_load_state_dict_post_hooks",
    )

    def __getstate__(self) -> dict:
        """Everything but the hooks (``copy.deepcopy`` and ``pickle`` keep names, options,
        precision state and counters; torch's own ``__getstate__`` keeps only
        ``defaults``, ``state`` and ``param_groups``)."""
        state = {k: v for k, v in self.__dict__.items() if k not in self._UNCOPIED}
        state["_config_cache"] = state["_index_cache"] = state["_plain_config"] = None  # caches of its own values
        fused = state.get("_fused")
        if fused is not None:  # its flat buffers are a cache: the copy builds its own
            state["_fused"] = type(fused)(required=fused.required)
            state["_runtime"] = copy.copy(self._runtime)
            state["_runtime"].fused = state["_fused"]
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)  # torch: restores the attributes, new hook dicts, step patching
        self._codec.bind(self, self._check_group)  # the codec refers to its optimizer weakly

    def set_state_dict(self, state_dict: Mapping, strict: bool = True, key_map=None) -> LoadReport:
        """Load a state dict; checks every key, shape and dtype before changing anything.

        ``strict=True`` raises one ValueError listing missing, unexpected and mismatched
        keys; ``strict=False`` loads what matches and returns the report. ``key_map``
        (a dict or a callable) renames parameter names found in the file.
        """
        return self._load_with_hooks(state_dict, strict=strict, key_map=key_map)

    set_dict = set_state_dict

    def torch_state_dict(self) -> dict:
        """The same state in torch.optim's positional layout (``state`` by index, with
        ``param_names`` in each group); ``set_state_dict``/``load_state_dict`` read both."""
        self._refuse_program_state("state_dict")
        return self._codec.torch_style()

    def _learning_rate_holders(self) -> list[str]:
        """Where the updates front doors appended read this optimizer's learning rate (a
        front door's ``learning_rate_holders``: a static program's variable), one line each."""
        config = self.update_config()
        return [
            h for door in _FRONT_DOORS.values() for h in getattr(door, "learning_rate_holders", lambda _: [])(config)
        ]

    def _refuse_program_state(self, method: str) -> None:
        """An optimizer without parameters of its own whose updates a front door appended
        elsewhere (a static program: ``learning_rate_holders``) keeps its state there, not
        here: its state dict would be empty and a loaded one would reach nothing."""
        if self.param_groups:
            return
        holders = self._learning_rate_holders()
        if holders:
            raise RuntimeError(
                f"{method}: this optimizer's updates run in a program (they read {'; '.join(holders)}), whose "
                "persistable variables in the scope hold its state (<param>_<accumulator>_0): save and load them "
                "with fluid.io.save_persistables / load_persistables or fluid.save / fluid.load (Paddle's "
                f"optimizer {method} is dygraph-only)"
            )

    @torch.no_grad()
    def to(self, device=None, dtype=None) -> "Optimizer":
        """Move every state tensor to ``device`` and/or cast floating ones to ``dtype``;
        master weights move too but stay float32."""

        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype if (dtype is not None and t.is_floating_point()) else None)

        for st in self.state.values():
            for acc in list(st):
                if isinstance(st[acc], torch.Tensor):
                    st[acc] = move(st[acc])
        self._codec.pending = {k: move(v) for k, v in self._codec.pending.items()}
        prec = self._precision
        prec.masters = {p: m.to(device=device) for p, m in prec.masters.items()}
        prec.pending_masters = {k: m.to(device=device) for k, m in prec.pending_masters.items()}
        return self

    def load_state_dict(self, state_dict: Mapping) -> None:  # torch API (Lightning resume)
        """torch API: :meth:`set_state_dict` with ``strict=True`` (either layout)."""
        self._load_with_hooks(state_dict, strict=True, key_map=None)

    # ------------------------------------------------------- fluid API
    def backward(self, loss, startup_program=None, parameter_list=None, no_grad_set=None, callbacks=None):
        """Eager: the gradients are those already computed by ``loss.backward()`` (backward
        is never run twice); returns ``[(param, grad)]``. A front-door loss (a program
        ``Variable``): its door appends the grad ops."""
        door = _front_door(loss)
        if door is not None:
            return door.backward(loss, startup_program, self._records(parameter_list), no_grad_set, callbacks)
        self._check_manages_parameters("backward")
        return self._collect(parameter_list, no_grad_set)

    def _check_manages_parameters(self, method: str) -> None:
        """An eager loss updates the managed parameters: refuse one for an optimizer that has none."""
        if not self.param_groups:
            raise ValueError(
                f"{method}(loss) of an eager loss: this optimizer manages no parameters (built without "
                "parameter_list= / parameters=, which dygraph mode requires, as in Paddle); a static program's "
                "loss is a Variable built under fluid.program_guard"
            )

    def apply_gradients(self, params_grads):
        """Clip, regularize and update the given pairs (sorted by parameter name, as Paddle)."""
        door = _front_door(params_grads[0][0]) if params_grads else None
        if door is not None:
            return door.apply_gradients(self.update_config(), params_grads)
        pairs = [pg for pg in params_grads if pg[1] is not None] if params_grads else []
        pairs.sort(key=lambda pg: self._names.get(pg[0], ""))
        self._run_pipeline(pairs)
        return []

    def apply_optimize(self, loss, startup_program, params_grads):
        """Second half of ``minimize``: apply the update for ``params_grads``."""
        door = _front_door(loss)
        if door is not None:
            return door.apply_optimize(self.update_config(), loss, startup_program, params_grads)
        return self.apply_gradients(params_grads)

    def minimize(self, loss, startup_program=None, parameter_list=None, no_grad_set=None):
        """``backward`` then ``apply_optimize``; returns ``(optimize_ops, params_grads)``
        (``optimize_ops`` is empty in eager mode; the appended ops for a program loss)."""
        door = _front_door(loss)
        if door is not None:
            return door.minimize(
                self.update_config(), loss, startup_program, self._records(parameter_list), no_grad_set
            )
        self._check_manages_parameters("minimize")
        params_grads = self._collect(parameter_list, no_grad_set)  # what backward() returns
        index = self._param_index()  # managed parameters only: _collect took them from param_groups
        pairs = sorted(params_grads, key=lambda pg: index[id(pg[0])][0])  # by name, as apply_gradients
        self._run_pipeline(pairs, from_grad_attrs=True)  # managed parameters and their .grad
        return [], params_grads

    def append_regularization_ops(self, parameters_and_grads, regularization=None):
        """Return the pairs with regularized gradients: a parameter's own ``regularizer``
        if set, else ``regularization`` (the global one); grads that are None pass through."""
        regularization = as_regularizer(regularization)
        door = _front_door(parameters_and_grads[0][0]) if parameters_and_grads else None
        if door is not None:
            return door.append_regularization_ops(parameters_and_grads, regularization)
        out = []
        with torch.no_grad():
            for p, g in parameters_and_grads:
                reg = getattr(p, "regularizer", None) or regularization
                out.append((p, g if g is None or reg is None else reg(p, g)))
        return out

    def _records(self, parameter_list):
        """The parameter list for a front door: the given one, else the one kept at construction."""
        return parameter_list if parameter_list is not None else self._record_params

    def clear_grad(self, set_to_zero: bool = True) -> None:
        """Zero every managed gradient in place (``set_to_zero=False``: set them to None);
        on the fused path each flat group's gradients are one buffer, cleared by one memset."""
        done = self._fused.zero_grads() if set_to_zero and self._fused is not None else ()
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None or p in done:
                    continue
                if set_to_zero:
                    if p.grad.is_sparse:
                        p.grad = torch.zeros_like(p)
                    else:
                        p.grad.detach_().zero_()
                else:
                    p.grad = None

    def clear_gradients(self) -> None:
        """Paddle fluid name: zero every managed gradient (they stay allocated)."""
        self.clear_grad(set_to_zero=True)

    def __repr__(self) -> str:
        hp = {k: v for k, v in self.defaults.items() if k != "lr_mult"}
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in hp.items())})"


def _unscale_in_place(grads, grad_scale) -> None:
    """``.grad`` divided by the loss scale a ``torch.amp.GradScaler`` handed the step, once
    the step used it: torch leaves unscaled gradients after ``scaler.step(opt)`` (its
    fused optimizers write them back; the others were unscaled by ``scaler.unscale_``), so
    gradient norms logged after the step read the same. The factor is the one the update
    applied (the scale's float32 reciprocal); a skipped step (overflow) leaves them as
    they are, as torch's fused optimizers do."""
    inv = float(torch.as_tensor(grad_scale).double().reciprocal().float())
    dense: dict[tuple, list] = {}
    for g in grads:
        if g.layout is torch.strided:
            dense.setdefault((g.device, g.dtype), []).append(g)
        else:
            g.mul_(inv)
    for group in dense.values():
        torch._foreach_mul_(group, inv)


def check_lr(name: str, value) -> float | torch.Tensor:
    """A learning rate: a real number >= 0 (returned as a float) or, as ``torch.optim`` takes
    it, a 1-element floating-point tensor holding one, returned as it is: each update reads
    its value then, so a tensor changed in place (torch's LR schedulers ``fill_`` it) is
    followed; one that requires grad is differentiated in a ``differentiable`` update."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or not value.is_floating_point():
            raise ValueError(
                f"{name} as a tensor must have 1 element of a floating-point dtype (Tensor lr must be 1-element), "
                f"got shape {list(value.shape)} and dtype {value.dtype}"
            )
        check_number(name, float(value.detach()), lo=0.0)
        return value
    return check_number(name, value, lo=0.0)


def check_sparse_grad(name: str, p: torch.Tensor, g: torch.Tensor) -> None:
    """A sparse gradient must be a COO tensor of the parameter's shape whose indices all
    lie inside it (torch does not check them; a bad index would corrupt memory in
    ``coalesce`` or be dropped silently)."""
    if g.layout is not torch.sparse_coo:
        raise ValueError(
            f"gradient of {name!r} has layout {g.layout}; only dense (strided) and sparse COO gradients are accepted"
        )
    if tuple(g.shape) != tuple(p.shape):
        raise ValueError(
            f"gradient of {name!r} has shape {list(g.shape)}, expected the parameter's shape {list(p.shape)}"
        )
    if not g.is_floating_point():
        raise ValueError(f"gradient of {name!r} must be floating point, got dtype {g.dtype}")
    idx = g._indices()
    if idx.numel():
        lo = idx.amin(dim=1).tolist()
        hi = idx.amax(dim=1).tolist()
        for d, (a, b) in enumerate(zip(lo, hi, strict=True)):
            if a < 0 or b >= p.shape[d]:
                bad = a if a < 0 else b
                raise ValueError(
                    f"sparse gradient of {name!r} has index {bad} in dimension {d}, outside "
                    f"[0, {p.shape[d]}) of the parameter's shape {list(p.shape)}; nothing was updated"
                )


def _unchanged(checked: dict, group: dict) -> bool:
    """Whether ``group`` holds every value of ``checked`` (compared in C: identity, then ==).
    A value whose == is no single truth value (an array or tensor of several elements
    written into the group) counts as changed, so it is checked and refused."""
    try:
        return checked.items() <= group.items()
    except (ValueError, RuntimeError, TypeError):
        return False


def _same_group(a: tuple, b: tuple) -> bool:
    """Two ``(group, params list, length)`` keys of :meth:`Optimizer._param_index` match."""
    return a[0] is b[0] and a[1] is b[1] and a[2] == b[2]


def _check_grad(name: str, p: torch.Tensor, g: torch.Tensor, *, from_attr: bool) -> None:
    """Raise ``ValueError`` unless ``g`` is a gradient for ``p``: a floating-point tensor of
    its shape on its device (a sparse one as :func:`check_sparse_grad` checks it).
    ``from_attr``: ``g`` is ``p.grad``, which must also have the parameter's dtype."""
    done = "; nothing was updated" if from_attr else ""
    if g.layout is not torch.strided:
        check_sparse_grad(name, p, g)
    elif tuple(g.shape) != tuple(p.shape):
        raise ValueError(
            f"gradient of {name!r} has shape {list(g.shape)}, expected the parameter's shape {list(p.shape)}{done}"
        )
    elif from_attr and g.dtype != p.dtype:
        raise ValueError(f"gradient of {name!r} has dtype {g.dtype}, expected the parameter's dtype {p.dtype}{done}")
    elif not g.is_floating_point():
        raise ValueError(f"gradient of {name!r} must be floating point, got dtype {g.dtype}")
    if g.device != p.device:
        raise ValueError(f"gradient of {name!r} is on {g.device}, but the parameter is on {p.device}")


def _check_grad_attrs(pairs, names):
    """``.grad`` as torch keeps it can still be replaced behind torch's back
    (``p.grad.data = ...``): check shape, dtype, device and layout of every gradient,
    a few attribute reads each, before anything changes."""
    for p, g in pairs:
        if not (g.layout is torch.strided and g.shape == p.shape and g.dtype == p.dtype and g.device == p.device):
            _check_grad(names[p], p, g, from_attr=True)
    return pairs


def checked_tensor_hparams(rule, group: Mapping, allowed: Mapping[str, str], *, variables: bool = True) -> dict:
    """A group's ``rule.tensor_hparams`` (the options torch lets be tensors, which its LR
    schedulers write): a number checked by ``rule.check_hparams`` and returned as a float; a
    1-element floating-point tensor (or, with ``variables``, a program's variable) returned
    as it is, its value read and checked at each update. ``allowed[name]``: the range, for
    the error text."""
    out = {}
    for name in rule.tensor_hparams:
        value = group[name]
        if isinstance(value, torch.Tensor):
            if value.numel() != 1 or not value.is_floating_point():
                raise ValueError(
                    f"{name} must be a real number or a 1-element floating-point tensor, got a "
                    f"{value.dtype} tensor of shape {list(value.shape)}"
                )
            out[name] = value
        elif variables and is_front_door_record(value):
            out[name] = value  # a program's variable: its optimize op reads it
        elif isinstance(value, numbers.Real) or value is None:
            out.update(rule.check_hparams({name: value}))
        else:
            raise ArgumentTypeError(
                f"{name} must be a real number {allowed[name]} or a 1-element floating-point tensor, "
                f"got {value!r} of type {type(value).__name__}"
            )
    return out


def _check_differentiable(opt, *, multi_precision: bool, shard_state: bool) -> None:
    """``differentiable=True`` works on the reference kernels of one process's own parameters."""
    name = type(opt).__name__
    if getattr(opt, "fused", None) is True:
        raise ValueError(f"{name}: `fused` does not support `differentiable`; allowed: fused=None or False")
    if multi_precision:
        raise ValueError(f"{name}: differentiable=True with multi_precision=True; allowed: one of them")
    if shard_state:
        raise ValueError(f"{name}: differentiable=True with shard_state=True; allowed: one of them")


def _group_regularizer(group: Mapping, regularization):
    """The regularizer of a param group's parameters (before each parameter's own): the
    group's ``weight_decay`` (Paddle 2.x: a float is a coupled ``L2Decay``, 0 none) where
    the group sets one, else the optimizer's ``regularization``."""
    wd = group.get("weight_decay")
    if wd is None:
        return regularization
    if isinstance(wd, torch.Tensor):  # torch's tensor weight_decay: its value read at each update
        return L2Decay(wd)
    return _l2_decay(float(wd)) if wd else None


@functools.lru_cache(maxsize=64)
def _l2_decay(coeff: float) -> L2Decay:
    """One ``L2Decay`` per coefficient, so a group's regularizer is the same object every step."""
    return L2Decay(coeff)


def _param_lr_mult(p) -> float:
    """The parameter's ``optimize_attr['learning_rate']`` (ParamAttr), 1.0 when absent."""
    attr = getattr(p, "optimize_attr", None)
    if attr is not None and isinstance(attr, Mapping):
        return float(attr.get("learning_rate", 1.0))
    return 1.0
