"""Optimizer state records keyed by stable parameter names, and their (de)serialisation.

Keys follow Paddle: ``<param name>_<accumulator>_0`` (``<optimizer name>_`` in front when
the optimizer was given a ``name``), e.g. ``linear_0.w_0_mean_square_0``. A state dict
also carries ``LR_Scheduler`` (the schedule's own state) when a schedule is attached,
and ``param_groups`` (each group's hyper-parameters and parameter names) once they differ
from the values the groups were created with (``set_lr``, a torch LR scheduler, ...), so
that an optimizer that never stepped has an empty state dict, as in Paddle.

Loading matches by name, never by position, and is all-or-nothing: every key, shape and
dtype is checked first; with ``strict=True`` any problem raises one ``ValueError``
listing all of them and nothing changes. After a load the state is exactly what the
file holds: a parameter without entries starts fresh (zeros) at its next update; a
parameter with entries must have every record its optimizer keeps (entries the rule only
tolerates, as RMSProp with ``momentum=0`` tolerates a ``momentum``, are checked, then
dropped, and do not stand in for them). In torch's layout a ``state`` entry that no group
lists is an unexpected key.
Entries for parameters the optimizer does not know yet (static mode before
``minimize``) are kept and applied when those accumulators are created.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import numbers
import weakref
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import torch

from .._registry import ByType

__all__ = [
    "LoadReport",
    "StateCodec",
    "group_hparams",
    "TORCH_ACCUMULATORS",
    "TORCH_BETAS",
    "TORCH_GROUP_KEYS",
    "rename_group_keys",
    "optimizer_option_keys",
    "STATE_VIEWS",
]

# How ``state_dict()`` hands out the accumulators of a parameter class (or of a subclass):
# ``view(key, tensor)``, an object over the same storage (a write through it changes the
# optimizer's state), e.g. the dygraph facade's named Variable; others get the tensor itself.
STATE_VIEWS = ByType("param_type")

# not accumulators: the schedule's state, group hyper-parameters, fp32 master weights, the
# stochastic-rounding draw counter, and
# the name table Paddle's save_dygraph leaves in a loaded optimizer dict
_RESERVED = ("LR_Scheduler", "param_groups", "master_weights", "stochastic_rounding", "StructuredToParameterName@@")


# torch.optim.RMSprop's names -> torchfluid's (its state entries and group keys)
TORCH_ACCUMULATORS = MappingProxyType(
    {"square_avg": "mean_square", "grad_avg": "mean_grad", "momentum_buffer": "momentum"}
)
TORCH_GROUP_KEYS = MappingProxyType({"alpha": "rho", "eps": "epsilon"})
# per-parameter entries a torch.optim class keeps none of (torch.optim.SGD counts no steps)
_TORCH_UNCOUNTED = {"torch.optim.SGD": ("step",)}


@functools.cache
def torch_class_defaults(path: str) -> Mapping | None:
    """The group keys of torch.optim class ``path`` (``"torch.optim.Adam"``) with their
    defaults, in its order; None for a class outside torch.optim (Lamb's is timm's)."""
    module, _, name = path.rpartition(".")
    cls = getattr(torch.optim, name, None) if module == "torch.optim" else None
    if cls is None:
        return None
    params = inspect.signature(cls.__init__).parameters.values()
    return MappingProxyType({a.name: a.default for a in params if a.name not in ("self", "params")})


@functools.cache
def optimizer_option_keys() -> frozenset[str]:
    """The group keys that configure an optimizer: every keyword option of the optimizers of
    ``torch.optim`` and of ``torchfluid.optimizer``, and ``lr_mult``.

    A saved param group's key outside this set is no optimizer's option: a learning-rate
    scheduler's (``initial_lr``, ``max_lr``, ``min_lr``, ``base_momentum``, ``max_momentum``,
    ``swa_lr``) or the user's own. torch keeps such keys on load, and so do torchfluid's
    optimizers (a scheduler rebuilt with ``last_epoch`` needs its ``initial_lr``); an option
    the loading optimizer does not have is dropped."""
    from .. import optimizer as fluid_optimizer  # the package that imports this module

    keys = {"lr", "lr_mult", "params", "param_names"}
    for module in (torch.optim, fluid_optimizer):
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer):
                for name, arg in inspect.signature(obj.__init__).parameters.items():
                    if arg.kind in (arg.POSITIONAL_OR_KEYWORD, arg.KEYWORD_ONLY):
                        keys.add(name)
    keys -= {"self"}
    return frozenset(keys)


def rename_group_keys(group: Mapping, renames: Mapping[str, str], where: str) -> dict:
    """``group`` as a new dict with its keys renamed by ``renames`` (theirs -> ours);
    ``ValueError`` if it sets a key under both names."""
    group = dict(group)
    for theirs, ours in renames.items():
        if theirs in group:
            if ours in group:
                raise ValueError(f"{where} sets both {theirs!r} and {ours!r}; they mean the same")
            group[ours] = group.pop(theirs)
    return group


def real_value(v) -> float | None:
    """``v`` as a float where it is a real number or a one-element real tensor, else None."""
    if isinstance(v, torch.Tensor):
        if v.numel() != 1 or v.is_complex() or v.dtype == torch.bool or v.is_meta:
            return None
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return None
    return float(v)


def torch_step_tensor(count: float) -> torch.Tensor:
    """A torch.optim ``step`` record: the count as a 0-d tensor of torch's scalar dtype."""
    return torch.tensor(float(count), dtype=torch.get_default_dtype())


def torch_counts(rule) -> bool:
    """Whether the rule's torch.optim namesake keeps a per-parameter ``step`` count."""
    return torch_class_defaults(getattr(rule, "torch_class", "")) is not None and "step" not in _TORCH_UNCOUNTED.get(
        rule.torch_class, ()
    )


def torch_entry_names(rule) -> frozenset[str]:
    """The entries of a state record that the rule's torch.optim namesake writes and the
    rule reads otherwise: torch's names of its records, and torch's ``step`` (the source of
    Adam's powers; kept only where the rule counts too). :func:`adopt_torch_entries` reads them."""
    return _torch_entry_names(type(rule))


@functools.cache
def _torch_entry_names(rule_type: type) -> frozenset[str]:
    names = set(getattr(rule_type, "torch_accumulators", {}).values()) | set(
        getattr(rule_type, "torch_entries_read", ())
    )
    return frozenset(names | {"step"}) if torch_counts(rule_type) else frozenset(names)


class TorchNamedRecord(dict):
    """A parameter's state record (the rule's names) that also answers to torch.optim's
    name of an entry the rule keeps under another (``record["exp_avg"]`` is Adam's
    ``moment1``, ``record["momentum_buffer"]`` SGD's ``velocity``): reading only, as
    ``record[name]``; its keys, ``in``, ``get`` and iteration are the rule's. An entry
    written under torch's name is read as the rule's at the next update
    (:func:`adopt_torch_entries`)."""

    torch_names: dict[str, str] = {}  # torch's name -> the rule's (a plain dict: records are pickled and copied)

    def __missing__(self, key):
        ours = self.torch_names.get(key)
        if ours is not None and dict.__contains__(self, ours):
            return dict.__getitem__(self, ours)
        raise KeyError(key)


def state_record(rule, entries: Mapping) -> dict:
    """A state record of ``rule`` holding ``entries``: a :class:`TorchNamedRecord` where the
    rule keeps entries under other names than torch.optim's, else a dict."""
    names = _torch_names_read(type(rule))
    if not names:
        return dict(entries)
    record = TorchNamedRecord(entries)
    record.torch_names = names
    return record


@functools.cache
def _torch_names_read(rule_type: type) -> dict[str, str]:
    return {theirs: ours for ours, theirs in getattr(rule_type, "torch_accumulators", {}).items()}


def _merge(entry: dict, changes: Mapping) -> None:
    """``entry`` updated in place by a rule hook's ``changes`` (a value None drops that entry)."""
    for k, v in changes.items():
        if v is None:
            entry.pop(k, None)
        else:
            entry[k] = v


def adopt_torch_entries(record: dict, rule, hparams: Mapping) -> None:
    """Read, in place, the entries of a state record written under torch.optim's names
    (``optimizer.state[p]["exp_avg"] = t``, as torch's own code and tests write them) as
    the rule's records: each renamed to the rule's name, the same tensor (torch's name wins
    where both are there: it is the one written last); records derived from torch's (the
    rule's ``records_from_torch``: Adam's beta powers from ``step``, RMSProp's velocity
    from ``momentum_buffer``), and the ``step`` dropped where the rule keeps no count for
    ``hparams``."""
    for ours, theirs in getattr(rule, "torch_accumulators", {}).items():
        if theirs in record:
            record[ours] = record.pop(theirs)
    derive = getattr(rule, "records_from_torch", None)
    if derive is not None:
        _merge(record, derive(record, hparams))
    if "step" in record and torch_counts(rule) and "step" not in rule.accumulators(hparams):
        del record["step"]


# torch's pair key of the Adam family's two group options (a rule's ``torch_group_pairs``)
TORCH_BETAS = MappingProxyType({"betas": ("beta1", "beta2")})


def sync_group_pairs(group: dict, aliases: Mapping, previous: Mapping | None, *, add=(), where: str) -> dict:
    """Keep torch's keys for a rule's group options (``aliases``: torch's key -> the options it
    stands for: the Adam family's ``betas`` -> ``("beta1", "beta2")``, a pair; ``eps`` ->
    ``("epsilon",)``, one option, its value the option's) equal to those options, in place.
    Against ``previous`` (the group as last checked; None: nothing known): torch's key written
    since then sets the options (what torch's schedulers, ``OneCycleLR`` and ``CyclicLR`` with
    ``cycle_momentum``, and ``ZeroRedundancyOptimizer``'s group sync write), options written
    make torch's key follow, and both written with other values is a ValueError. A group
    without torch's key gets it for the keys in ``add`` (torchfluid.optim's classes hold
    torch's ``betas``, as torch's groups do). Returns ``{torch's key: its value}`` of those
    that set the options (so a check of the options can name what was written)."""
    written = {}
    for alias, parts in aliases.items():
        if not all(p in group for p in parts):
            continue
        single = len(parts) == 1
        now = group[parts[0]] if single else tuple(group[p] for p in parts)
        if alias not in group:
            if alias in add:
                group[alias] = now
            continue
        value = group[alias]
        if not single:
            if not isinstance(value, (tuple, list)) or len(value) != len(parts):
                raise ValueError(f"{where} has {alias}={value!r}; allowed: a pair ({', '.join(parts)})")
            value = tuple(value)
        if _same_values(value, now):
            continue
        before = previous or {}
        if _same_values(before.get(alias), value):  # the options were written: torch's key follows
            group[alias] = now
            continue
        values = (value,) if single else value
        clash = [  # an option written too, to another value than torch's key gives it
            f"{p}={group[p]!r}"
            for p, theirs in zip(parts, values, strict=True)
            if previous is not None
            and p in before
            and not _same_values(before[p], group[p])
            and not _same_values(group[p], theirs)
        ]
        if clash:
            raise ValueError(f"{where} sets {alias}={value!r} and {', '.join(clash)}; they mean the same: set one")
        group.update(zip(parts, values, strict=True))
        written[alias] = group[alias]
    return written


def _same_values(a, b) -> bool:
    """Whether two hyper-parameter values (numbers, tensors by identity, tuples of those) are the same."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same_values(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return a is b
    return isinstance(a, tuple) == isinstance(b, tuple) and a == b


# torch's step options an update rule has no maths for, accepted only at their neutral value
# (the torch_neutral_options of the Adam family)
TORCH_STEP_OPTIONS = MappingProxyType(
    {
        "capturable": (False, "torchfluid's step runs eagerly, never inside a CUDA graph"),
    }
)


def refuse_torch_options(group: Mapping, where: str, neutral: Mapping[str, tuple[object, str]]) -> None:
    """``ValueError`` if ``group`` sets a torch option of ``neutral`` (name -> (its neutral
    value, why only that one is allowed)) to anything else: maths the rule does not have."""
    for key, (allowed, why) in neutral.items():
        value = group.get(key, allowed)
        if value is not False and value != allowed:
            raise ValueError(f"{where} has {key}={value!r}; allowed: {allowed!r} ({why})")


@dataclasses.dataclass
class LoadReport:
    """What a ``set_state_dict`` call found: keys missing, unexpected, mismatched."""

    missing: list[str] = dataclasses.field(default_factory=list)
    unexpected: list[str] = dataclasses.field(default_factory=list)
    mismatched: list[str] = dataclasses.field(default_factory=list)
    # entries that matched but were not loaded because their parameter's state is incomplete
    # (with strict=False a parameter's records load together or not at all)
    dropped: list[str] = dataclasses.field(default_factory=list)
    # entries read and left unused, as Paddle leaves them (not a mismatch): an ``LR_Scheduler``
    # given to an optimizer with a constant learning rate
    ignored: list[str] = dataclasses.field(default_factory=list)
    # what would make the state dict load, where the report can tell (not a mismatch itself)
    hint: str = ""

    def _lists(self) -> list[tuple[str, list[str]]]:
        return [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in ("ignored", "hint")]

    @property
    def ok(self) -> bool:
        return not any(items for _, items in self._lists())

    def message(self) -> str:
        parts = [f"{label} ({len(items)}): " + "; ".join(items) for label, items in self._lists() if items]
        message = "state_dict does not match this optimizer; nothing was loaded. " + " | ".join(parts)
        return f"{message}. {self.hint}" if self.hint else message


def renamed_parameters_hint(saved: list[str], ours: list[str]) -> str:
    """The hint for a state dict whose parameter names are none of this optimizer's
    (``saved``: the names its records carry, in order; ``ours``: the optimizer's)."""
    hint = (
        f"Its records belong to parameters named {saved}, this optimizer's are named {ours}: layers take "
        "their parameters' names from the order they are built in the process (linear_0, linear_1, ...), so a "
        "model built after another gets other names; build it under fluid.unique_name.guard(), as the saving "
        "run did, or give the names' map"
    )
    if len(saved) == len(ours):
        pairs = ", ".join(f"{a!r}: {b!r}" for a, b in zip(saved, ours, strict=True))
        hint += f", e.g. set_state_dict(state_dict, key_map={{{pairs}}}) if they correspond in this order"
    return hint


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _as_tensor(value):
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    return None


class StateCodec:
    """Reads and writes one optimizer's state by name. Holds no tensors of its own
    except entries loaded before their parameters were known (``pending``).

    ``opt``: the optimizer, read through its public API only (``param_groups``,
    ``state``, ``defaults``, ``param_names``, ``name``, ``lr_schedule``, ``sharding``);
    ``rule``: its update rule (accumulator names and initial state); ``precision``: its
    :class:`~torchfluid.optimizer.precision.Precision` (state dtypes, master weights);
    ``check_group(group)``: raises ``ValueError``/``TypeError`` for bad hyper-parameters.
    Call :meth:`group_added` for each param group as it is added."""

    def __init__(self, opt, *, rule, precision, check_group):
        self.rule = rule
        self.precision = precision
        self.pending: dict[str, torch.Tensor] = {}
        self.adopted: dict[str, str] = {}
        self.initial_hparams: list[dict] = []  # each group's hyper-parameters when added
        self.bind(opt, check_group)

    # The optimizer holds this codec; the codec holds the optimizer (and its bound
    # check_group) weakly, so that an optimizer is freed as soon as it is unreferenced, with
    # no reference cycle left for the garbage collector (as torch's optimizers are).
    def bind(self, opt, check_group) -> None:
        """Attach to ``opt`` (again after a copy or unpickling: the optimizer rebinds)."""
        self._opt = weakref.ref(opt)
        self._check_group = weakref.WeakMethod(check_group) if inspect.ismethod(check_group) else check_group

    @property
    def opt(self):
        opt = self._opt() if self._opt is not None else None
        if opt is None:
            raise RuntimeError("this state codec's optimizer no longer exists")
        return opt

    def check_group(self, group) -> None:
        check = self._check_group() if isinstance(self._check_group, weakref.WeakMethod) else self._check_group
        check(group)

    def __getstate__(self) -> dict:
        """Everything but the weak references (a copy is rebound by its optimizer)."""
        state = dict(self.__dict__)
        state["_opt"] = state["_check_group"] = None
        return state

    # ---------------------------------------------------------------- groups
    def group_added(self, group: Mapping) -> None:
        """Remember ``group``'s hyper-parameters as they are when it is added."""
        self.initial_hparams.append(group_hparams(group))

    def hparams_changed(self) -> bool:
        """Whether any group's hyper-parameters differ from when it was added (set_lr, a
        torch LR scheduler, ...): only then does ``state_dict`` need ``param_groups``."""
        return any(
            group_hparams(g) != initial for g, initial in zip(self.opt.param_groups, self.initial_hparams, strict=True)
        )

    def accumulator_names(self, group: Mapping | None = None) -> list[str]:
        """The accumulators the rule keeps for ``group`` (the optimizer's defaults when None)."""
        return list(self.rule.accumulators(self.opt.defaults if group is None else group))

    def new_state(self, p: torch.Tensor, group: Mapping) -> dict:
        """The initial state record of ``p`` in ``group`` (``p`` may be a meta tensor)."""
        return self.rule.new_state(p, group, self.precision.state_dtype_for(p.dtype))

    def extra_state_dict(self) -> dict:
        """Entries besides the accumulators: ``master_weights``, ``stochastic_rounding``."""
        return {**self.precision.master_state_dict(self.opt.param_names), **self.precision.rounding_state_dict()}

    # ------------------------------------------------------------------ keys
    def key(self, param_name: str, acc: str) -> str:
        base = f"{param_name}_{acc}_0"
        return f"{self.opt.name}_{base}" if self.opt.name else base

    def _all_acc_names(self) -> list[str]:
        names = self.accumulator_names() + list(self.rule.compatible_accumulators)
        for g in self.opt.param_groups:
            names += [a for a in self.accumulator_names(g) if a not in names]
        return sorted(set(names), key=len, reverse=True)

    def parse(self, key: str) -> tuple[str, str] | None:
        """``key`` -> ``(param name, accumulator)``, or None if it is not an accumulator key."""
        prefix = f"{self.opt.name}_" if self.opt.name else ""
        if not key.startswith(prefix):
            return None
        body = key[len(prefix) :]
        for acc in self._all_acc_names():
            suffix = f"_{acc}_0"
            if body.endswith(suffix) and len(body) > len(suffix):
                return body[: -len(suffix)], acc
        return None

    # ----------------------------------------------------------------- write
    def state_dict(self) -> dict:
        opt = self.opt
        out: dict = {}
        for group in opt.param_groups:
            for p in group["params"]:
                view = STATE_VIEWS.lookup(p)
                for acc, t in (opt.state.get(p) or {}).items():
                    key = self.key(opt.param_names[p], acc)
                    out[key] = t if view is None else view(key, t)
        out.update(self.pending)
        if opt.lr_schedule is not None:
            out["LR_Scheduler"] = opt.lr_schedule.state_dict()
        if self.hparams_changed():
            out["param_groups"] = [
                {k: (list(v) if k == "param_names" else v) for k, v in g.items() if k != "params"}
                for g in opt.param_groups
            ]
        out.update(self.extra_state_dict())
        return out

    def torch_style(self) -> dict:
        """torch.optim's layout: ``{'state': {index: {entry: tensor}}, 'param_groups': [...]}``
        with ``param_names`` in each group, so it can be matched back by name (plus the
        optimizer's extra entries, e.g. ``master_weights``). Where the rule has a torch.optim
        namesake (``torch_class``), the dict is also one that class loads and steps on from:
        the records torch keeps stand under torch's names (``torch_accumulators``: Adam's
        ``moment1`` is ``exp_avg``, RMSProp's ``mean_square`` ``square_avg``), each entry has
        torch's ``step`` where torch counts (a count the rule keeps, or the one its
        ``torch_records`` gives: Adam's from its beta powers; else 0), the entries torch keeps
        otherwise computed by ``torch_records`` (RMSProp's ``momentum_buffer``), and each group
        torch's keys (:meth:`_torch_group_keys`). Records torch has none of (Adam's beta
        powers) keep their own names; torch ignores them, and a load here keeps their bits."""
        out = torch.optim.Optimizer.state_dict(self.opt)
        generated = self.opt.generated_names
        for group in out["param_groups"]:  # made-up names are left out, as torch has none for such params
            if generated and group.get("param_names") and generated.issuperset(group["param_names"]):
                del group["param_names"]
        renames = self._torch_accumulators()
        defaults = torch_class_defaults(getattr(self.rule, "torch_class", ""))
        counts = torch_counts(self.rule)
        to_torch = getattr(self.rule, "torch_records", None)  # torch's entries the rule computes (Adam's step)
        state = dict(out["state"])
        for group, hparams in zip(out["param_groups"], self.opt.param_groups, strict=True):
            for index in group["params"]:
                entry = state.get(index)
                if not isinstance(entry, Mapping):
                    continue
                renamed = {renames.get(k, k): v for k, v in entry.items()}
                if to_torch is not None:
                    _merge(renamed, to_torch(entry, hparams))
                if counts and "step" not in renamed:  # a rule whose maths keeps no count
                    renamed = {"step": torch_step_tensor(0), **renamed}
                state[index] = renamed
            if defaults is not None:
                group.update(self._torch_group_keys(group, defaults))
        out["state"] = state
        out.update(self.extra_state_dict())
        return out

    def _torch_group_keys(self, group: Mapping, defaults: Mapping) -> dict:
        """The keys of the rule's torch.optim namesake that ``group`` lacks: its options under
        torch's names (``eps``, RMSprop's ``alpha``, SGD's ``nesterov``, the ``betas`` pair,
        AdamW's ``weight_decay``), Adam's ``amsgrad`` as the rule's, the coupled L2 coefficient
        as ``weight_decay`` (the group's own, else the optimizer's ``L2Decay``; 0 for none or
        an ``L1Decay``, which torch has no key for), and the rest at torch's defaults."""
        rule = self.rule
        aliases = {**getattr(rule, "torch_group_keys", {}), **getattr(rule, "torch_group_keys_read", {})}
        pairs = getattr(rule, "torch_group_pairs", {})
        out = {}
        for key, default in defaults.items():
            if key in group:
                continue
            if key in pairs and all(p in group for p in pairs[key]):
                out[key] = tuple(group[p] for p in pairs[key])
            elif key in aliases and aliases[key] in group:
                out[key] = group[aliases[key]]
            elif key == "weight_decay":
                out[key] = self._optimizer_l2()
            else:
                out[key] = getattr(rule, key, default) if key == "amsgrad" else default
        return out

    def _optimizer_l2(self) -> float:
        """The coefficient of the optimizer's coupled L2 regularization (0 for none or another kind)."""
        from ..regularizer import L2Decay

        reg = self.opt.regularization
        return reg.coeff if isinstance(reg, L2Decay) else 0.0

    def _torch_accumulators(self) -> Mapping[str, str]:
        """The rule's ``{accumulator: torch.optim's name for it}`` (empty when it keeps its own names)."""
        return getattr(self.rule, "torch_accumulators", {})

    def from_torch_style(self, sd: Mapping) -> dict:
        """Convert torch.optim's positional layout to name keys, using each group's
        ``param_names`` (or this optimizer's names, by position, when absent).
        The rule's torch.optim namesake's entries and group keys are read as the rule's
        (``torch_accumulators``: Adagrad's ``sum``, Adam's ``exp_avg``, Momentum's
        ``momentum_buffer``; ``torch_group_keys``: ``eps``, RMSprop's ``alpha``, SGD's
        ``nesterov``); records torch keeps none of, or keeps otherwise, come from the
        rule's ``records_from_torch(entry, hparams)`` (Adam's beta powers from torch's
        ``step``, RMSProp's velocity from ``momentum_buffer``); the ``step`` itself is
        dropped unless this optimizer keeps one."""
        opt = self.opt
        out: dict = {}
        groups = sd["param_groups"]
        if not isinstance(groups, (list, tuple)):
            raise ValueError(f"torch-style state_dict: param_groups must be a list, got {type(groups).__name__}")
        ours = [n for g in opt.param_groups for n in g["param_names"]]
        from_torch = {theirs: acc for acc, theirs in self._torch_accumulators().items()}
        derive = getattr(self.rule, "records_from_torch", None)  # records torch keeps none of (Adam's powers)
        converted = []  # each group's hyper-parameters in this optimizer's spelling
        state = sd["state"]
        position = 0
        placed = set()  # the state indices some group lists
        for i, group in enumerate(groups):
            if not isinstance(group, Mapping) or not isinstance(group.get("params"), (list, tuple)):
                if not isinstance(group, Mapping):
                    what = f"a {type(group).__name__}"
                elif "params" in group:
                    what = f"params of type {type(group['params']).__name__}"
                else:
                    what = "no 'params'"
                raise ValueError(
                    f"torch-style state_dict: param_groups[{i}] must be a dict with a 'params' list of state "
                    f"indices, got {what}"
                )
            indices = list(group["params"])
            placed.update(indices)
            names = group.get("param_names")
            if names is None:
                names = ours[position : position + len(indices)]
                if len(names) != len(indices):
                    raise ValueError(
                        f"torch-style state_dict: group {i} has {len(indices)} params without names, "
                        f"but this optimizer has only {len(ours) - position} left to match by position"
                    )
            mine = ours[position : position + len(indices)]
            made_up = len(names) == len(mine) == len(indices) and self.opt.generated_names.issuperset(mine)
            if names != mine and made_up:  # this optimizer's parameters have no names: by position, as torch
                self.adopted.update(zip(mine, names, strict=True))  # and theirs become these, once loaded
                names = mine
                groups = [*groups[:i], {**group, "param_names": mine}, *groups[i + 1 :]]
            position += len(indices)
            if len(names) != len(indices):
                raise ValueError(
                    f"torch-style state_dict: param_groups[{i}] has {len(indices)} params and {len(names)} param_names"
                )
            converted.append(self._group_from_torch(groups[i]))
            hparams = {**(opt.param_groups[i] if i < len(opt.param_groups) else opt.defaults), **converted[i]}
            for index, name in zip(indices, names, strict=True):
                entry = {from_torch.get(acc, acc): t for acc, t in state.get(index, {}).items()}
                if derive is not None:
                    _merge(entry, derive(entry, hparams))
                for acc, t in entry.items():
                    if acc == "step" and "step" not in self._all_acc_names():
                        continue  # torch.optim.RMSprop's step count: not part of this maths
                    out[self.key(name, acc)] = t
        for index in state:
            if index not in placed:  # an entry no group claims: reported as an unexpected key (strict refuses it)
                out[f"state[{index!r}] (in no param group)"] = None
        out["param_groups"] = converted
        for key in ("LR_Scheduler", "master_weights", "stochastic_rounding"):
            if key in sd:
                out[key] = sd[key]
        return out

    def _group_from_torch(self, group: Mapping) -> dict:
        """A torch-layout group's hyper-parameters in this optimizer's spelling: torch's
        RMSprop keys renamed (``alpha`` -> ``rho``, ``eps`` -> ``epsilon``) and the rule's
        (``torch_group_keys``: ``nesterov`` -> ``use_nesterov`` for Momentum); options this
        optimizer's groups do not have (``foreach``, ``capturable``, ...) dropped, keys that are
        no optimizer's option (a scheduler's ``initial_lr``, ...) kept as torch keeps them. A group
        setting one of the rule's ``torch_neutral_options`` to another value than its neutral
        one is a ValueError (Momentum: torch.optim.SGD's ``dampening``). The Adam family
        reads torch's ``betas`` pair as ``beta1`` and ``beta2``; a ``weight_decay`` other than 0
        is kept as the group's coupled L2 (0, torch's default, is dropped: the optimizer's
        regularization stays), except where the rule reads it as its own option (AdamW's ``coeff``)."""
        where = "torch-style state_dict: a param group"
        refuse_torch_options(group, where, getattr(self.rule, "torch_neutral_options", {}))
        known = set(self.opt.defaults) | {"param_names"}
        renames = {
            **TORCH_GROUP_KEYS,
            **getattr(self.rule, "torch_group_keys", {}),
            **getattr(self.rule, "torch_group_keys_read", {}),  # AdamW: torch's weight_decay is its coeff
        }
        wd = group.get("weight_decay")  # torch's coupled L2 of the group: the group's own here too,
        if wd and renames.get("weight_decay") not in known and not _same_values(wd, self._optimizer_l2()):
            known.add("weight_decay")  # unless it is 0 (none) or the optimizer's own L2 (as written)
        out = {}
        options = optimizer_option_keys()
        if "betas" in group and {"beta1", "beta2"} <= known:  # the Adam family's pair, as beta1 and beta2
            betas = group["betas"]
            if not isinstance(betas, (tuple, list)) or len(betas) != 2:
                raise ValueError(f"{where} has betas {betas!r}; allowed: a pair (beta1, beta2)")
            group = {**group, "beta1": betas[0], "beta2": betas[1]}  # torch's pair, as torch last wrote it
        theirs = [k for k in group if renames.get(k) in known]  # read last: torch's key wins over ours
        for k in [*(k for k in group if k not in theirs), *theirs]:
            name = renames[k] if k in theirs else k
            if name in known or (name not in options and isinstance(name, str)):
                out[name] = group[k]
        return out

    def apply_pending(self, param_name: str, state: dict) -> None:
        loaded = set()
        for acc, t in state.items():
            value = self.pending.pop(self.key(param_name, acc), None)
            if value is not None:
                t.copy_(value.to(device=t.device, dtype=t.dtype))
                loaded.add(acc)
        if loaded:  # a record a checkpoint may lack takes the rule's value for that case
            for acc, value in self.optional_records.items():
                if acc in state and acc not in loaded:
                    state[acc].fill_(value)

    @property
    def optional_records(self) -> Mapping:
        """``{accumulator: value}``: records a checkpoint may lack (torch.optim.SGD keeps no
        step count) and the value one takes then (the rule's ``optional_records``)."""
        return getattr(self.rule, "optional_records", {})

    # ------------------------------------------------------------------ read
    def load(self, state_dict: Mapping, *, strict: bool, key_map) -> "LoadReport":
        opt = self.opt
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        self.adopted = {}  # {made-up name: the state dict's name} of a load by position
        if isinstance(state_dict.get("state"), Mapping) and "param_groups" in state_dict:
            state_dict = self.from_torch_style(state_dict)
        rename = _renamer(key_map)
        report = LoadReport()
        groups = {p: g for g in opt.param_groups for p in g["params"]}
        specs = {}  # key -> (param, acc, required, meta tensor)
        optional = self.optional_records
        metas = {}
        for p, name in opt.param_names.items():
            group = groups[p]
            meta = metas[p] = self.new_state(torch.empty_like(p, device="meta"), group)
            for acc in self.rule.compatible_accumulators:
                if acc not in meta:
                    specs[self.key(name, acc)] = (p, acc, False, torch.empty_like(p, device="meta"))
            for acc, t in meta.items():
                specs[self.key(name, acc)] = (p, acc, acc not in optional, t)
        plan: dict[torch.Tensor, dict[str, torch.Tensor]] = {}
        pending: dict[str, torch.Tensor] = {}
        bad_keys: set[str] = set()  # spec keys whose entry is unusable: their parameter's state is incomplete
        shard = opt.sharding  # ZeRO-1: entries of other ranks' shards are checked, not kept
        for key, value in state_dict.items():
            if key in _RESERVED:
                continue
            parsed = self.parse(key) if isinstance(key, str) else None
            if parsed is None:
                report.unexpected.append(repr(key))
                continue
            new_key = self.key(rename(parsed[0]), parsed[1])
            tensor = _as_tensor(value)
            if tensor is None and _is_number(value) and new_key in specs and specs[new_key][3].dim() == 0:
                tensor = torch.tensor(value, dtype=specs[new_key][3].dtype)  # torch's step saved as a number
            if tensor is None:
                report.mismatched.append(f"{key}: expected a tensor or numpy array, got {type(value).__name__}")
                if new_key in specs:
                    bad_keys.add(new_key)
                continue
            if new_key not in specs:
                if not opt.param_names:
                    pending[new_key] = tensor.clone()
                else:
                    report.unexpected.append(key)
                continue
            p, acc, required, meta = specs[new_key]
            if tensor.layout is not torch.strided:
                report.mismatched.append(
                    f"{key}: expected a dense tensor, got layout {str(tensor.layout).replace('torch.', '')}"
                )
                bad_keys.add(new_key)
                continue
            if tuple(tensor.shape) != tuple(meta.shape) or tensor.dtype != meta.dtype:
                report.mismatched.append(
                    f"{key}: expected shape {list(meta.shape)} {str(meta.dtype).replace('torch.', '')}, "
                    f"got shape {list(tensor.shape)} {str(tensor.dtype).replace('torch.', '')}"
                )
                bad_keys.add(new_key)
                continue
            if shard is None or shard.owns(p):
                entries = plan.setdefault(p, {})  # a parameter with any entry must have all its records
                if required or acc in optional:
                    entries[acc] = (key, tensor)
        for p in {specs[k][0] for k in bad_keys}:
            if shard is None or shard.owns(p):
                plan.setdefault(p, {})  # a parameter with a mismatched entry is incomplete
        complete = {}
        for p, accs in plan.items():  # a parameter's records load together or not at all
            own = [(key, acc) for key, (q, acc, required, _) in specs.items() if q is p and required]
            missing = [key for key, acc in own if acc not in accs and key not in bad_keys]
            report.missing.extend(missing)
            if not missing and not any(key in bad_keys for key, _ in own):
                complete[p] = {acc: t for acc, (_, t) in accs.items()}
            else:
                report.dropped.extend(
                    f"{key} (the state of {opt.param_names[p]!r} is incomplete)" for key, _ in accs.values()
                )
        sched_state = state_dict.get("LR_Scheduler")
        if sched_state is not None and opt.lr_schedule is None:
            report.ignored.append("LR_Scheduler (this optimizer has a constant learning rate)")
        group_updates = self._check_groups(state_dict.get("param_groups"), rename, report)
        if report.ignored:  # the saved groups' lr is the ignored schedule's value: keep this optimizer's
            group_updates = [(group, {k: v for k, v in values.items() if k != "lr"}) for group, values in group_updates]
        extra = state_dict if shard is None else shard.own_masters(state_dict, rename)  # ZeRO-1: own masters
        apply_masters = self.precision.check_master_load(opt.param_names, extra, rename, report, list(complete))
        apply_rounding = self.precision.check_rounding_load(state_dict.get("stochastic_rounding"), report)
        if report.unexpected and not plan and opt.param_names:
            saved = list(dict.fromkeys(p[0] for k in state_dict if isinstance(k, str) and (p := self.parse(k))))
            if saved and not {rename(n) for n in saved} & set(opt.param_names.values()):
                report.hint = renamed_parameters_hint(saved, list(opt.param_names.values()))
        if strict and not report.ok:
            raise ValueError(report.message())
        # ---- everything checked: copy first (a failing copy changes nothing), then apply
        # (the schedule first: it validates its own keys)
        new_state = {
            p: state_record(self.rule, {acc: t.to(device=p.device).clone() for acc, t in accs.items()})
            for p, accs in complete.items()
        }
        for p, record in new_state.items():  # an optional record the checkpoint lacks: the rule's value for that
            for acc, value in optional.items():
                if acc in metas[p] and acc not in record:
                    record[acc] = torch.full_like(metas[p][acc], value, device=p.device)
        if sched_state is not None and opt.lr_schedule is not None:
            opt.lr_schedule.set_state_dict(sched_state)
        aliases, add = opt.torch_group_aliases()
        for group, values in group_updates:
            before = dict(group)
            group.update(values)
            sync_group_pairs(group, aliases, before, add=add, where="a group")
        opt.state.clear()
        opt.state.update(new_state)
        self.pending = pending
        apply_masters()
        apply_rounding()
        if self.adopted and opt.sharding is None:  # loaded by position: the names of the state dict, as torch
            opt.rename_params(self.adopted)
        return report

    def _check_groups(self, saved, rename, report: LoadReport) -> list:
        opt = self.opt
        if saved is None:
            return []
        if not isinstance(saved, (list, tuple)) or len(saved) != len(opt.param_groups):
            n = len(saved) if isinstance(saved, (list, tuple)) else type(saved).__name__
            report.mismatched.append(f"param_groups: expected {len(opt.param_groups)} groups, got {n}")
            return []
        updates = []
        for i, (group, entry) in enumerate(zip(opt.param_groups, saved, strict=True)):
            if not isinstance(entry, Mapping):
                report.mismatched.append(f"param_groups[{i}]: expected a dict, got {type(entry).__name__}")
                continue
            names = [rename(n) for n in entry.get("param_names", group["param_names"])]
            if set(names) != set(group["param_names"]):
                report.mismatched.append(
                    f"param_groups[{i}]: parameter names {names} do not match {list(group['param_names'])}"
                )
                continue
            values = group_hparams(entry)
            try:
                self.check_group({**group, **values})
            except (TypeError, ValueError) as e:
                report.mismatched.append(f"param_groups[{i}]: {e}")
                continue
            updates.append((group, values))
        return updates


def group_hparams(group: Mapping) -> dict:
    """A param group's hyper-parameters: every entry but ``params`` and ``param_names``; a
    tensor (torch's tensor ``lr``) as a copy of its value now, so that a later in-place
    change to it counts as a change."""
    return {
        k: (v.detach().clone() if isinstance(v, torch.Tensor) else v)
        for k, v in group.items()
        if k not in ("params", "param_names")
    }


def _renamer(key_map):
    if key_map is None:
        return lambda name: name
    if callable(key_map):
        return key_map
    if isinstance(key_map, Mapping):
        return lambda name: key_map.get(name, name)
    raise TypeError(f"key_map must be None, a dict or a callable, got {type(key_map).__name__}")
