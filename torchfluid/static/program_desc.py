"""Whole-program descriptions as JSON text: ``program.desc.serialize_to_string()`` and
``Program.parse_from_string(text)`` (Paddle's names; Paddle's text is protobuf bytes,
ours is a UTF-8 JSON ``str``; ``parse_from_string`` takes ``str`` or ``bytes``).

Layout::

    {"format": "torchfluid-program", "version": 1, "random_seed": int,
     "blocks": [{"idx", "parent_idx",
                 "vars": [{"kind": "var" | "param", <constructor arguments>}],
                 "ops": [{"type", "inputs", "outputs", "attrs"}]}]}

Values are JSON with tagged objects for what JSON lacks, each a one-key object:
``{"__tuple__": [...]}``, ``{"__dict__": [[k, v], ...]}``, ``{"__mapping__": ...}`` (a
read-only mapping), ``{"__dtype__": "float32"}``, ``{"__var__": name}`` (a variable of the
same program), ``{"__array__": {"dtype", "shape", "data"}}`` (a numpy array or torch tensor,
``"tensor": true`` for the latter) and ``{"__object__": "module:Class", "state": ...}``.

Loading runs no code from the text: an ``__object__`` must name a class of torchfluid's
that is one of the program-attribute kinds (initializers, regularizers, gradient clips,
lr schedulers, the optimize op's section, update config and rules); it is created with
``cls.__new__`` and given its state as ``copy``/``pickle`` do, and its state is plain
values and such objects again. Anything else is a :class:`ProgramDescError`, on saving
(naming the op and attribute) or loading.

A restored object is then checked as it was made, so a bad value is a ProgramDescError
naming the object and the field at load time, not a failure when the program runs: a
gradient clip's numbers as its constructor checks them; an initializer, regularizer or lr
scheduler is built again by its own constructor from the arguments its state holds, and
every field must be what that constructor makes (an lr scheduler's step state goes through
its ``set_state_dict``); an optimizer configuration (``UpdateConfig``) must be what its
rule's optimizer, constructed from its hyper-parameters and options, makes; an optimize
section's per-parameter fields match its parameters and its rule's accumulators. Ops hold
objects of the kinds their forward takes; an ``lr_schedule`` op's ``schedule`` names a fluid
decay's formula and its ``params`` are what that decay's constructor accepts and keeps;
a parameter's regularizer, initializer, clip and ``optimize_attr`` are of their kinds.

Loading checks the text as it builds a new Program, which is returned only when all of it
is valid: ``random_seed`` an int in [0, 2**63 - 1]; blocks numbered 0, 1, ... with block
0's parent -1 and every other block's parent an earlier block; variable names unique per
block, shapes null or ints in [-1, 2**63 - 1], flags bools (:func:`check_var_fields`);
each op of a registered type, with its own slot names, each naming described variables,
every required input slot given (as when a program appends the op), and the attributes
its signature gives a bool, int or float default of that type (:func:`check_op_fields`;
:mod:`torchfluid.io.inference` checks its files the same way). JSON nested too deeply or
numbers too large are a ProgramDescError too.
"""

from __future__ import annotations

import contextlib
import copy
import copyreg
import functools
import importlib
import inspect
import io
import json
import math
import numbers
import types
from collections.abc import Mapping

import numpy as np
import torch

from .._checks import check_number, shown
from ..dtypes import dtype_name, torch_dtype
from ..ops import get_op
from ._infer import FRAMEWORK_ATTRS, forward_attrs
from .framework import Block, Parameter, Program, Variable, register_program_codec

__all__ = [
    "ProgramDesc",
    "ProgramDescError",
    "serialize_program",
    "parse_program",
    "check_var_fields",
    "check_op_fields",
    "FORMAT",
    "VERSION",
]

FORMAT = "torchfluid-program"
VERSION = 1
_VAR_FIELDS = ("shape", "dtype", "persistable", "stop_gradient", "is_data", "lod_level", "type", "belong_to_optimizer")
_PARAM_FIELDS = ("trainable", "optimize_attr", "regularizer", "need_clip", "do_model_average", "initializer")
_VAR_FLAGS = ("persistable", "stop_gradient", "is_data", "belong_to_optimizer", "need_check_feed")


class ProgramDescError(ValueError):
    """A program that cannot be described, or a text that is not a torchfluid program."""


def _object_kinds() -> tuple:
    from ..clip import GradientClipBase
    from ..initializer import Initializer
    from ..lr.scheduler import LRScheduler
    from ..optimizer.adadelta import AdadeltaRule
    from ..optimizer.adagrad import AdagradRule
    from ..optimizer.adam import AdamRule
    from ..optimizer.adamax import AdamaxRule
    from ..optimizer.lamb import LambRule
    from ..optimizer.momentum import MomentumRule
    from ..optimizer.pipeline import UpdateConfig
    from ..optimizer.rmsprop import RMSPropRule
    from ..optimizer.sgd import SGDRule
    from ..regularizer import WeightDecayRegularizer
    from .optimize import OptimizeSection

    return (
        Initializer,
        WeightDecayRegularizer,
        GradientClipBase,
        LRScheduler,
        OptimizeSection,
        UpdateConfig,
        RMSPropRule,
        SGDRule,
        AdamRule,
        AdagradRule,
        MomentumRule,
        AdamaxRule,
        AdadeltaRule,
        LambRule,
    )


# ------------------------------------------------------------------------- encode
JSON_SCALARS = (type(None), bool, str, numbers.Real)


def json_scalar(v):
    """A :data:`JSON_SCALARS` value as JSON's own type: ``None``, ``bool`` and ``str`` as
    they are, any other integral number as ``int``, any other real number as ``float``."""
    if v is None or isinstance(v, (bool, str)):
        return v
    return int(v) if isinstance(v, numbers.Integral) else float(v)


def _encode(v, where: str):
    if isinstance(v, JSON_SCALARS):
        return json_scalar(v)
    if isinstance(v, list):
        return [_encode(x, where) for x in v]
    if isinstance(v, tuple):
        return {"__tuple__": [_encode(x, where) for x in v]}
    if isinstance(v, (dict, types.MappingProxyType)):
        tag = "__dict__" if isinstance(v, dict) else "__mapping__"
        return {tag: [[_encode(k, where), _encode(x, where)] for k, x in v.items()]}
    if isinstance(v, torch.dtype):
        return {"__dtype__": dtype_name(v)}
    if isinstance(v, Variable):
        return {"__var__": v.name}
    if isinstance(v, (np.ndarray, torch.Tensor)):
        is_tensor = isinstance(v, torch.Tensor)
        a = v.detach().cpu().numpy() if is_tensor else v
        if a.dtype.kind not in "biuf":
            raise ProgramDescError(f"{where}: an array of dtype {a.dtype} cannot be described")
        return {
            "__array__": {
                "dtype": str(a.dtype),
                "shape": list(a.shape),
                "data": a.reshape(-1).tolist(),
                "tensor": is_tensor,
            }
        }
    if isinstance(v, _object_kinds()):
        reduced = v.__reduce_ex__(2)
        if (
            reduced[0] is not copyreg.__newobj__
            or tuple(reduced[1]) != (type(v),)
            or len(reduced) > 3
            and any(x is not None for x in reduced[3:])
        ):
            raise ProgramDescError(f"{where}: a {type(v).__name__} does not reduce to its class and state")
        cls = type(v)
        return {
            "__object__": f"{cls.__module__}:{cls.__qualname__}",
            "state": _encode(reduced[2] if len(reduced) > 2 else None, f"{where} ({cls.__name__})"),
        }
    raise ProgramDescError(
        f"{where} is a {type(v).__module__}.{type(v).__qualname__}; a program description holds plain values, "
        "arrays, dtypes, variables and torchfluid's initializers, regularizers, clips, lr schedulers and "
        "optimizer records"
    )


def _describe_var(v: Variable) -> dict:
    fields = {"name": v.name, **{k: getattr(v, k) for k in _VAR_FIELDS}, "need_check_feed": v.need_check_feed}
    kind = "var"
    if isinstance(v, Parameter):
        kind = "param"
        fields.update({k: getattr(v, k) for k in _PARAM_FIELDS})
        clip = getattr(v, "gradient_clip_attr", None)
        if clip is not None:
            fields["gradient_clip_attr"] = clip
    return {"kind": kind, **{k: _encode(x, f"variable {v.name!r} field {k!r}") for k, x in fields.items()}}


def serialize_program(program: Program) -> str:
    """The JSON text of ``program`` (every block, variable and op)."""
    blocks = []
    for b in program.blocks:
        ops = [
            {
                "type": op.type,
                "inputs": op.inputs,
                "outputs": op.outputs,
                "attrs": {
                    k: _encode(a, f"op {op.type} (built at {op.where()}) attribute {k!r}") for k, a in op.attrs.items()
                },
            }
            for op in b.ops
        ]
        blocks.append(
            {"idx": b.idx, "parent_idx": b.parent_idx, "vars": [_describe_var(v) for v in b.vars.values()], "ops": ops}
        )
    return json.dumps(
        {"format": FORMAT, "version": VERSION, "random_seed": program.random_seed, "blocks": blocks}, sort_keys=True
    )


# ------------------------------------------------------------------------- decode
def _class(path: str):
    module, _, qualname = path.partition(":")
    if module != "torchfluid" and not module.startswith("torchfluid."):
        raise ProgramDescError(f"object class {path!r} is not torchfluid's")
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        raise ProgramDescError(f"object class {path!r} does not exist") from None
    if not isinstance(obj, type) or not issubclass(obj, _object_kinds()):
        raise ProgramDescError(f"object class {path!r} is not a program-attribute kind")
    return obj


def _decode(v, program: Program):
    if v is None or isinstance(v, (bool, str, int, float)):
        return v
    if isinstance(v, list):
        return [_decode(x, program) for x in v]
    if not isinstance(v, dict) or len(v) not in (1, 2):
        raise ProgramDescError(f"malformed value {v!r}")
    if "__tuple__" in v:
        return tuple(_decode(x, program) for x in v["__tuple__"])
    if "__dict__" in v or "__mapping__" in v:
        d = {_decode(k, program): _decode(x, program) for k, x in v.get("__dict__", v.get("__mapping__"))}
        return d if "__dict__" in v else types.MappingProxyType(d)
    if "__dtype__" in v:
        return torch_dtype(v["__dtype__"])
    if "__var__" in v:
        var = program.global_block()._find_var_recursive(v["__var__"])
        if var is None:
            raise ProgramDescError(f"variable {v['__var__']!r} is referred to but not described")
        return var
    if "__array__" in v:
        a = v["__array__"]
        dt = np.dtype(a["dtype"])
        if dt.kind not in "biuf":
            raise ProgramDescError(f"array dtype {a['dtype']!r} is not numeric")
        if not isinstance(a["shape"], list) or not all(_is_int(s) and s >= 0 for s in a["shape"]):
            raise ProgramDescError(f"array shape {a['shape']!r}; allowed: a list of ints >= 0")
        arr = np.asarray(a["data"], dtype=dt).reshape([int(s) for s in a["shape"]])
        return torch.from_numpy(arr.copy()) if a.get("tensor") else arr
    if "__object__" in v:
        cls = _class(v["__object__"])
        obj = cls.__new__(cls)
        state = _decode(v.get("state"), program)
        if hasattr(obj, "__setstate__"):
            obj.__setstate__(state)
        elif isinstance(state, dict):
            obj.__dict__.update(state)
        elif state is not None:
            raise ProgramDescError(f"object {v['__object__']!r}: state must be a dict, got {type(state).__name__}")
        _check_object(v["__object__"], obj)
        return obj
    raise ProgramDescError(f"malformed value {v!r}")


_MAX_DIM = 2**63 - 1


@functools.cache
def _parameters(fn) -> types.MappingProxyType:
    """``inspect.signature(fn).parameters``, worked out once per function."""
    return inspect.signature(fn).parameters


def check_var_fields(name, fields: dict, flags, where: str) -> None:
    """Raise ProgramDescError unless a described variable's ``name`` is a str, ``fields["shape"]``
    is None or a list/tuple of ints (not bools) in [-1, 2**63 - 1] (-1: any size), each of
    ``flags`` in ``fields`` is a bool and, where given, ``lod_level`` an int >= 0 and ``type``
    a str."""
    if not isinstance(name, str):
        raise ProgramDescError(f"{where}: variable name must be a str, got {name!r}")
    shape = fields["shape"]
    if shape is not None and (
        not isinstance(shape, (list, tuple)) or not all(_is_int(s) and -1 <= s <= _MAX_DIM for s in shape)
    ):
        raise ProgramDescError(
            f"{where}: variable {name!r} has shape {shape!r}; allowed: null or a list of ints in [-1, 2**63 - 1]"
        )
    for flag in flags:
        if flag in fields and not isinstance(fields[flag], bool):
            raise ProgramDescError(
                f"{where}: variable {name!r} field {flag!r} must be true or false, got {fields[flag]!r}"
            )
    if "lod_level" in fields and not (_is_int(fields["lod_level"]) and fields["lod_level"] >= 0):
        raise ProgramDescError(
            f"{where}: variable {name!r} field 'lod_level' is {shown(fields['lod_level'])}; allowed: an int >= 0"
        )
    if "type" in fields and not isinstance(fields["type"], str):
        raise ProgramDescError(f"{where}: variable {name!r} field 'type' must be a str, got {shown(fields['type'])}")


_ATTR_KINDS = {bool: "true or false", int: "an int", float: "a number"}


def _attr_type_ok(default, value) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return _is_int(value)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


def check_op_fields(op_type, inputs, outputs, attrs, has_var, where: str) -> None:
    """Raise ProgramDescError unless a described op is well formed: ``op_type`` a registered op
    type; ``inputs``/``outputs`` dicts from the op's own slot names to lists of names of
    variables ``has_var`` knows (``@EMPTY@`` standing for none), every required input slot
    given and one name in each single-variable slot (:meth:`~torchfluid.ops.OpDef.check_slots`);
    ``attrs`` a dict of the attributes the op's forward takes (and the framework's ``op_role``,
    ...), those with a bool, int or float default in its signature of that type (an int for a
    float)."""
    if not isinstance(op_type, str):
        raise ProgramDescError(f"{where}: op type must be a str, got {op_type!r}")
    try:
        opdef = get_op(op_type)
    except KeyError:
        raise ProgramDescError(f"{where}: unknown op type {op_type!r}") from None
    for kind, slots, allowed in (("input", inputs, opdef.inputs), ("output", outputs, opdef.outputs)):
        if not isinstance(slots, dict):
            raise ProgramDescError(f"{where}: op {op_type} {kind}s must be an object slot -> names, got {slots!r}")
        for slot, names in slots.items():
            if slot not in allowed:
                raise ProgramDescError(
                    f"{where}: op {op_type} has no {kind} slot {slot!r}; allowed: {', '.join(allowed) or 'none'}"
                )
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ProgramDescError(f"{where}: op {op_type} {kind} {slot} must be a list of names, got {names!r}")
            missing = next((n for n in names if n != "@EMPTY@" and not has_var(n)), None)
            if missing is not None:
                raise ProgramDescError(
                    f"{where}: op {op_type} {kind} {slot} names variable {missing!r}, which is not described"
                )
    if not isinstance(attrs, dict):
        raise ProgramDescError(f"{where}: op {op_type} attrs must be an object, got {attrs!r}")
    allowed = forward_attrs(opdef)
    unknown = [] if allowed is None else [k for k in attrs if k not in allowed and k not in FRAMEWORK_ATTRS]
    if unknown:
        raise ProgramDescError(
            f"{where}: op {op_type} has no attribute {unknown[0]!r}; allowed: {', '.join(allowed) or 'none'}"
        )
    for name, p in _parameters(opdef.forward).items():
        if name in attrs and p.kind is inspect.Parameter.KEYWORD_ONLY and not _attr_type_ok(p.default, attrs[name]):
            raise ProgramDescError(
                f"{where}: op {op_type} attribute {name!r} is {attrs[name]!r}; allowed: "
                f"{_ATTR_KINDS[type(p.default)]} like its default {p.default!r}"
            )
    needed = [n for n, p in _parameters(opdef.forward).items() if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    missing = [n for n in needed if n not in attrs]
    if missing:
        raise ProgramDescError(
            f"{where}: op {op_type} needs attribute {missing[0]!r}; given: {', '.join(attrs) or 'none'}"
        )
    try:  # every required input given, one variable in each single-variable slot
        opdef.check_slots(inputs, outputs, attrs)
    except ValueError as e:
        raise ProgramDescError(f"{where}: {e}") from None


# A restored object is re-checked as it was made: a constructor-made object (initializer,
# regularizer, lr scheduler) is built again by its constructor from the arguments its state
# holds, each under the argument's name, the name with a leading "_", a scheduler's
# formula_names entry, or here (argument -> state field, or (field, index) into a tuple field):
_ARG_FIELDS = {
    "seed": "_seed_value",
    "loc": "_mean",
    "scale": "_std_dev",
    "value": "_value_array",
    "diag_num": ("_diag", 0),
    "diag_step": ("_diag", 1),
    "diag_val": ("_diag", 2),
}
_SCHEDULE_EXTRA = frozenset({"keys", "_var_name"})  # a scheduler's fields set after its constructor


def _fail(path: str, e: Exception):
    return ProgramDescError(f"object {path!r}: {type(e).__name__}: {e}")


def _state_arg(state: dict, cls, arg: str):
    """``(field, value)`` of constructor argument ``arg`` in ``state`` (``field`` a name, or
    ``"name[i]"`` for an item of a tuple field), or ``(None, None)``."""
    renamed = getattr(cls, "formula_names", {})
    for field in (arg, "_" + arg, renamed.get(arg), _ARG_FIELDS.get(arg)):
        if isinstance(field, tuple):
            value = state.get(field[0])
            if isinstance(value, tuple) and len(value) > field[1]:
                return f"{field[0]}[{field[1]}]", value[field[1]]
        elif field is not None and field in state:
            return field, state[field]
    return None, None


def _same(a, b) -> bool:
    """Whether restored value ``a`` is the value ``b`` a constructor made (equal numbers,
    sequences and arrays; objects of one class with the same fields; a bool only a bool;
    a variable only itself: both name a record of the program being restored)."""
    if isinstance(a, Variable) or isinstance(b, Variable):
        return a is b
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(b, (list, tuple)):
        return isinstance(a, (list, tuple)) and len(a) == len(b) and all(map(_same, a, b))
    if hasattr(b, "__dict__") and not isinstance(b, type):
        return (
            type(a) is type(b)
            and vars(a).keys() == vars(b).keys()
            and all(_same(vars(a)[k], vars(b)[k]) for k in vars(b))
        )
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _check_made_object(path: str, obj) -> None:
    """Rebuild ``obj`` with its constructor from its own state: every field the constructor
    makes must be in the state and equal what it makes (an lr scheduler's step state --
    ``last_epoch``, ``last_lr``, ... -- is checked by its ``set_state_dict`` instead); no
    other field may be there. ``obj`` then holds the values as the constructor made them."""
    from ..lr.scheduler import LRScheduler

    cls, state = type(obj), vars(obj)
    kwargs, renamed = {}, []
    for arg, p in _parameters(cls.__init__).items():
        field, value = _state_arg(state, cls, arg)
        if field is not None and arg != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            kwargs[arg] = value
            renamed += [f"{arg}={field}"] if field != arg else []
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # a verbose scheduler prints from its constructor
            fresh = cls(**copy.deepcopy(kwargs))  # a copy: a scheduler may step a scheduler it wraps
    except (TypeError, ValueError, OverflowError, ZeroDivisionError) as e:
        fields = f" (its constructor's arguments from fields {', '.join(renamed)})" if renamed else ""
        raise ProgramDescError(f"{_fail(path, e)}{fields}") from None
    made = dict(vars(fresh))
    saved = copy.deepcopy(fresh).state_dict() if isinstance(obj, LRScheduler) else {}  # (sets fields)
    extra = _SCHEDULE_EXTRA if isinstance(obj, LRScheduler) else frozenset()
    for field, value in made.items():
        if field not in state:
            raise ProgramDescError(f"object {path!r}: field {field!r} is missing")
        if field not in saved and not _same(state[field], value):
            raise ProgramDescError(
                f"object {path!r}: field {field!r} is {shown(state[field])}; its constructor makes {value!r} "
                "from the object's arguments"
            )
    unknown = sorted(set(state) - set(made) - extra)
    if unknown:
        raise ProgramDescError(f"object {path!r}: unknown field {unknown[0]!r}; allowed: {', '.join(sorted(made))}")
    if isinstance(obj, LRScheduler):
        if not isinstance(state.get("_var_name", ""), str):
            raise ProgramDescError(f"object {path!r}: field '_var_name' must be a str, got {state['_var_name']!r}")
        try:
            copy.deepcopy(fresh).set_state_dict({k: state[k] if k in state else v for k, v in saved.items()})
        except (KeyError, RuntimeError, TypeError, ValueError) as e:
            raise _fail(path, e) from None
    obj.__dict__.update({k: v for k, v in made.items() if k not in saved})


def _optimizers() -> dict:
    from ..optimizer.adadelta import AdadeltaOptimizer, AdadeltaRule
    from ..optimizer.adagrad import AdagradOptimizer, AdagradRule
    from ..optimizer.adam import AdamOptimizer, AdamRule, AdamW, AdamWRule
    from ..optimizer.adamax import AdamaxOptimizer, AdamaxRule
    from ..optimizer.lamb import LambOptimizer, LambRule
    from ..optimizer.momentum import MomentumOptimizer, MomentumRule
    from ..optimizer.rmsprop import RMSPropOptimizer, RMSPropRule
    from ..optimizer.sgd import SGDOptimizer, SGDRule

    return {
        RMSPropRule: RMSPropOptimizer,
        SGDRule: SGDOptimizer,
        AdamRule: AdamOptimizer,
        AdamWRule: AdamW,
        AdamaxRule: AdamaxOptimizer,
        AdadeltaRule: AdadeltaOptimizer,
        LambRule: LambOptimizer,
        AdagradRule: AdagradOptimizer,
        MomentumRule: MomentumOptimizer,
    }


def _check_update_config(path: str, config) -> None:
    """An optimizer's frozen configuration: the optimizer of its rule, constructed from its
    hyper-parameters, options, clip and regularization, must make the same configuration."""
    from ..clip import GradientClipBase
    from ..lr.scheduler import LRScheduler

    opt_cls = _optimizers().get(type(config.rule))
    if opt_cls is None:
        raise ProgramDescError(f"object {path!r}: field 'rule' is a {type(config.rule).__name__}, not an update rule")
    if not isinstance(config.hparams, Mapping) or not isinstance(config.hparams.get("lr"), numbers.Real):
        raise ProgramDescError(f"object {path!r}: field 'hparams' must map 'lr' to a number, got {config.hparams!r}")
    if config.clip is not None and not isinstance(config.clip, GradientClipBase):
        raise ProgramDescError(f"object {path!r}: field 'clip' must be a gradient clip or None, got {config.clip!r}")
    params = _parameters(opt_cls.__init__)
    takes_options = any(q.kind is inspect.Parameter.VAR_KEYWORD for q in params.values())  # Optimizer's keywords
    kwargs = {
        k: v
        for k, v in config.hparams.items()
        if (k in params or (takes_options and k == "maximize")) and k != "learning_rate"
    }
    kwargs.update({k: getattr(config, k) for k in ("multi_precision", "nonfinite") if k in params or takes_options})
    if "state_dtype" in params:
        kwargs["state_dtype"] = config.state_dtype
    if "fused" in params:
        kwargs["fused"] = config.fused
    for key in ("lazy_mode", "amsgrad", "lr_ratio", "apply_decay_param_fun", "exclude_from_weight_decay_fn"):
        if key in params:
            kwargs[key] = getattr(config.rule, key, None)
    if "regularization" in params:
        kwargs["regularization"] = config.regularization
    if "coeff" in config.hparams and "weight_decay" in params:  # AdamW: its decay coefficient
        kwargs["weight_decay"] = config.hparams["coeff"]
    try:
        made = opt_cls(config.hparams["lr"], grad_clip=config.clip, **kwargs).update_config()
    except (TypeError, ValueError, RuntimeError) as e:
        raise _fail(path, e) from None
    for key in sorted(set(made.hparams) | set(config.hparams)):
        if key not in made.hparams or key not in config.hparams:
            what = "unknown" if key in config.hparams else "missing"
            raise ProgramDescError(
                f"object {path!r}: hparams has {what} key {key!r}; {opt_cls.__name__}'s are {', '.join(made.hparams)}"
            )
        if not _same(config.hparams[key], made.hparams[key]):
            raise ProgramDescError(
                f"object {path!r}: hparams[{key!r}] is {shown(config.hparams[key])}; "
                f"{opt_cls.__name__} makes {made.hparams[key]!r}"
            )
    for field in ("rule", "nonfinite", "multi_precision", "state_dtype", "fused"):
        if getattr(made, field) != getattr(config, field):
            raise ProgramDescError(
                f"object {path!r}: field {field!r} is {getattr(config, field)!r}; "
                f"{opt_cls.__name__} makes {getattr(made, field)!r}"
            )
    lr = config.learning_rate
    if not (isinstance(lr, (LRScheduler, Variable)) or _same(lr, config.hparams["lr"])):
        raise ProgramDescError(
            f"object {path!r}: field 'learning_rate' is {shown(lr)}; allowed: hparams['lr'] "
            f"({config.hparams['lr']!r}), an lr scheduler or a variable"
        )
    if not (config.name is None or isinstance(config.name, str)):
        raise ProgramDescError(f"object {path!r}: field 'name' must be a str or None, got {config.name!r}")
    names = config.parameter_list
    if not (names is None or isinstance(names, tuple) and all(isinstance(n, str) for n in names)):
        raise ProgramDescError(f"object {path!r}: field 'parameter_list' must be None or names, got {names!r}")


def _check_section(path: str, section) -> None:
    """An optimize op's section: its configuration, and per parameter a name, an lr
    multiplier (a number >= 0), a regularizer or None and a need_clip flag; the accumulators
    its rule keeps; master weight indices and schedule counter steps."""
    from ..optimizer.pipeline import UpdateConfig
    from ..regularizer import WeightDecayRegularizer

    def fail(field, value, allowed):
        return ProgramDescError(f"object {path!r}: field {field!r} is {shown(value)}; allowed: {allowed}")

    config = section.config
    if not isinstance(config, UpdateConfig):
        raise fail("config", config, "an UpdateConfig")
    names = section.names
    if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise fail("names", names, "a tuple of distinct parameter names")
    n = len(names)
    per_param = (
        ("lr_mults", lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 <= v < math.inf),
        ("regularizers", lambda v: v is None or isinstance(v, WeightDecayRegularizer)),
        ("need_clip", lambda v: isinstance(v, bool)),
    )
    for field, ok in per_param:
        value = getattr(section, field)
        if not isinstance(value, tuple) or len(value) != n or not all(map(ok, value)):
            what = {"lr_mults": "finite numbers >= 0", "regularizers": "regularizers or None", "need_clip": "bools"}
            raise fail(field, value, f"a tuple of {n} {what[field]}, one per parameter")
    accumulators = tuple(config.rule.accumulators(config.hparams))
    if section.accumulators != accumulators:
        raise fail("accumulators", section.accumulators, f"{accumulators!r}, the accumulators its rule keeps")
    index = section.master_index
    if (
        not isinstance(index, tuple)
        or not all(_is_int(i) and 0 <= i < n for i in index)
        or list(index) != sorted(set(index))
    ):
        raise fail("master_index", index, f"a tuple of increasing parameter indices in [0, {n})")
    steps = section.counter_steps
    if not isinstance(steps, tuple) or not all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in steps
    ):
        raise fail("counter_steps", steps, "a tuple of finite numbers")
    hyper, allowed = section.hyper_names, getattr(config.rule, "tensor_hparams", ())
    if not isinstance(hyper, tuple) or len(set(hyper)) != len(hyper) or not all(h in allowed for h in hyper):
        raise fail("hyper_names", hyper, f"a tuple of distinct names among {allowed!r}")


def _check_object(path: str, obj) -> None:
    """A restored object is checked as it was made: a gradient clip's numbers as its
    constructor checks them; an initializer, regularizer or lr scheduler rebuilt by its
    constructor (:func:`_check_made_object`); an optimizer configuration rebuilt by its
    optimizer; an optimize section's fields."""
    from ..clip import GradientClipBase
    from ..initializer import Initializer
    from ..lr.scheduler import LRScheduler
    from ..optimizer.pipeline import UpdateConfig
    from ..regularizer import WeightDecayRegularizer
    from .clip import check_clip
    from .optimize import OptimizeSection

    try:
        if isinstance(obj, GradientClipBase):
            check_clip(obj)
        elif isinstance(obj, (Initializer, WeightDecayRegularizer, LRScheduler)):
            _check_made_object(path, obj)
        elif isinstance(obj, UpdateConfig):
            _check_update_config(path, obj)
        elif isinstance(obj, OptimizeSection):
            _check_section(path, obj)
    except ProgramDescError:
        raise
    except (AttributeError, TypeError, ValueError) as e:
        raise _fail(path, e) from None


def _check_param_fields(name: str, fields: dict, where: str) -> None:
    """A described parameter's objects are of their kinds: ``regularizer`` a regularizer or
    None, ``initializer`` an initializer or None, ``gradient_clip_attr`` a gradient clip or
    None, ``do_model_average`` a bool or None, ``optimize_attr`` a dict whose
    ``learning_rate`` (the parameter's lr multiplier) is a finite number >= 0."""
    from ..clip import GradientClipBase
    from ..initializer import Initializer
    from ..regularizer import WeightDecayRegularizer

    kinds = (
        ("regularizer", WeightDecayRegularizer, "a regularizer (L1Decay, L2Decay)"),
        ("initializer", Initializer, "an initializer"),
        ("gradient_clip_attr", GradientClipBase, "a gradient clip"),
        ("do_model_average", bool, "true or false"),
    )
    for field, kind, what in kinds:
        value = fields.get(field)
        if value is not None and not isinstance(value, kind):
            raise ProgramDescError(
                f"{where}: parameter {name!r} field {field!r} is {shown(value)}; allowed: {what} or null"
            )
    attr = fields["optimize_attr"]
    if not isinstance(attr, dict):
        raise ProgramDescError(f"{where}: parameter {name!r} field 'optimize_attr' must be a dict, got {shown(attr)}")
    try:
        check_number(f"parameter {name!r} optimize_attr['learning_rate']", attr.get("learning_rate", 1.0), lo=0.0)
    except (TypeError, ValueError) as e:
        raise ProgramDescError(f"{where}: {e}") from None


@functools.cache
def _attr_kinds() -> dict:
    """(op type, attribute) -> what the attribute must hold: the objects ops take as attributes."""
    from ..clip import GradientClipBase
    from ..initializer import Initializer
    from ..regularizer import WeightDecayRegularizer
    from .optimize import OPTIMIZE_OP_TYPES, OptimizeSection

    return {
        ("initializer", "initializer"): (Initializer, "an initializer"),
        ("regularization", "regularizer"): (WeightDecayRegularizer, "a regularizer (L1Decay, L2Decay)"),
        ("clip_gradients", "clip"): (GradientClipBase, "a gradient clip"),
        ("copy_layer_parameter", "source"): (torch.Tensor, "a tensor"),
        **{(t, "section"): (OptimizeSection, "an OptimizeSection") for t in OPTIMIZE_OP_TYPES},
    }


@functools.cache
def _fluid_decays() -> dict:
    """formula name -> the fluid decay class computing it from its constructor's arguments
    (what ``fluid.layers.*_decay`` put in an ``lr_schedule`` op)."""
    from ..lr import fluid as decays
    from ..lr.formulas import keyword_names

    out = {}
    for cls in vars(decays).values():
        if isinstance(cls, type) and issubclass(cls, decays.LearningRateDecay) and cls.formula is not None:
            if set(keyword_names(cls.formula)) <= set(_parameters(cls.__init__)):
                out[cls.formula.__name__] = cls
    return out


def _check_lr_schedule(inputs: dict, attrs: dict, where: str) -> None:
    """An ``lr_schedule`` op's ``schedule`` names a fluid decay's formula and ``params`` are
    that formula's arguments (less ``learning_rate`` when the LearningRate input feeds it),
    as the decay's constructor checks and keeps them; ``dtype`` as that constructor takes it."""
    from ..lr.formulas import keyword_names

    decays = _fluid_decays()
    schedule, params = attrs.get("schedule"), attrs.get("params")
    cls = decays.get(schedule) if isinstance(schedule, str) else None
    if cls is None:
        raise ProgramDescError(
            f"{where}: op lr_schedule attribute 'schedule' is {shown(schedule)}; allowed: {', '.join(sorted(decays))}"
        )
    fed = bool(inputs.get("LearningRate"))
    expected = [k for k in keyword_names(cls.formula) if not (fed and k == "learning_rate")]
    if not isinstance(params, dict) or sorted(params) != sorted(expected):
        raise ProgramDescError(
            f"{where}: op lr_schedule attribute 'params' is {shown(params)}; allowed: a dict of {cls.__name__}'s "
            f"{', '.join(expected)}"
        )
    kwargs = {**params, **({"learning_rate": 0.0} if fed else {}), "dtype": attrs.get("dtype", "float32")}
    if "begin" in _parameters(cls.__init__):
        kwargs["begin"] = 0
    try:
        made = cls(**kwargs).formula_params()
    except (TypeError, ValueError, OverflowError, ZeroDivisionError) as e:
        raise ProgramDescError(f"{where}: op lr_schedule ({cls.__name__}): {type(e).__name__}: {e}") from None
    for k in expected:
        if not _same(params[k], made[k]):
            raise ProgramDescError(
                f"{where}: op lr_schedule params[{k!r}] is {shown(params[k])}; {cls.__name__} makes {made[k]!r}"
            )


def _check_op_objects(op_type: str, inputs: dict, attrs: dict, where: str) -> None:
    """The objects a described op holds are of the kinds its forward takes; an
    ``lr_schedule`` op's decay settings as :func:`_check_lr_schedule` checks them."""
    for (kind_op, name), (kind, what) in _attr_kinds().items():
        if kind_op == op_type and name in attrs and not isinstance(attrs[name], kind):
            raise ProgramDescError(f"{where}: op {op_type} attribute {name!r} is {shown(attrs[name])}; allowed: {what}")
    if op_type == "lr_schedule":
        _check_lr_schedule(inputs, attrs, where)
    section = attrs.get("section")
    if (op_type, "section") in _attr_kinds() and section is not None:
        _check_section_slots(op_type, inputs, section, where)


def _check_section_slots(op_type: str, inputs: dict, section, where: str) -> None:
    """An optimize op's slots hold what its section describes: ``Param`` its parameters by
    name, one ``Grad`` each, ``State`` their accumulators, ``MasterParam`` one per master
    index, ``Counter`` one per counter step and ``HyperParam`` the variables its
    configuration holds as the hyper-parameters ``hyper_names``, in that order."""
    n = len(section.names)
    sizes = {
        "Grad": n,
        "State": n * len(section.accumulators),
        "MasterParam": len(section.master_index),
        "Counter": len(section.counter_steps),
    }
    if list(inputs.get("Param", [])) != list(section.names):
        raise ProgramDescError(
            f"{where}: op {op_type} input Param is {inputs.get('Param')!r}; allowed: its section's parameters "
            f"{list(section.names)!r}"
        )
    hparams = section.config.hparams
    held = [hparams[k].name if isinstance(hparams.get(k), Variable) else None for k in section.hyper_names]
    if list(inputs.get("HyperParam", [])) != held:
        raise ProgramDescError(
            f"{where}: op {op_type} input HyperParam is {inputs.get('HyperParam', [])!r}; allowed: the variables "
            f"its section's configuration holds as {list(section.hyper_names)!r}, {held!r}"
        )
    for slot, size in sizes.items():
        if len(inputs.get(slot, [])) != size:
            raise ProgramDescError(
                f"{where}: op {op_type} input {slot} names {len(inputs.get(slot, []))} variables; its section "
                f"describes {size}"
            )


def _build_var(block: Block, d: dict, program: Program) -> None:
    kw = {k: _decode(d[k], program) for k in _VAR_FIELDS}
    kw["need_check_feed"] = _decode(d.get("need_check_feed", False), program)  # absent from older texts
    name = d["name"]
    check_var_fields(name, kw, _VAR_FLAGS, f"block {block.idx}")
    if name in block.vars:
        raise ProgramDescError(f"block {block.idx}: variable {name!r} is described twice")
    if d["kind"] == "param":
        kw.update({k: _decode(d[k], program) for k in _PARAM_FIELDS})
        check_var_fields(name, kw, ("trainable", "need_clip"), f"block {block.idx}")
        if "gradient_clip_attr" in d:
            kw["gradient_clip_attr"] = _decode(d["gradient_clip_attr"], program)
        _check_param_fields(name, kw, f"block {block.idx}")
        clip = kw.pop("gradient_clip_attr", None)
        v = Parameter(block, name, **kw)
        if "gradient_clip_attr" in d:
            v.gradient_clip_attr = clip
    elif d["kind"] == "var":
        v = Variable(block, name, **kw)
    else:
        raise ProgramDescError(f"variable {name!r}: kind must be 'var' or 'param', got {d['kind']!r}")
    block.vars[name] = v


def parse_program(text) -> Program:
    """The Program described by ``text`` (from :func:`serialize_program`; ``str`` or UTF-8 ``bytes``)."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProgramDescError(f"not a torchfluid program description (UTF-8 JSON expected): {e}") from None
    if not isinstance(text, str):
        raise TypeError(f"parse_from_string: expected str or bytes, got {type(text).__name__}")
    try:
        desc = json.loads(text)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, an int of too many digits, too deep
        raise ProgramDescError(f"not a torchfluid program description (JSON expected): {e}") from None
    if not isinstance(desc, dict) or desc.get("format") != FORMAT:
        raise ProgramDescError(f"not a torchfluid program description (format {FORMAT!r} expected)")
    if desc.get("version") != VERSION:
        raise ProgramDescError(f"program description version {desc.get('version')!r}; this reads {VERSION}")
    program = Program()
    try:
        seed = desc["random_seed"]
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= _MAX_DIM:
            raise ProgramDescError(f"random_seed is {shown(seed)}; allowed: an int in [0, 2**63 - 1]")
        program.random_seed = seed
        program.blocks = [Block(program, b["idx"], b["parent_idx"]) for b in desc["blocks"]]
        for i, b in enumerate(program.blocks):
            parent_ok = b.parent_idx == -1 if i == 0 else _is_int(b.parent_idx) and 0 <= b.parent_idx < i
            if not _is_int(b.idx) or b.idx != i or not parent_ok:
                raise ProgramDescError(
                    f"block {i} has idx {b.idx!r} and parent_idx {b.parent_idx!r}; allowed: blocks numbered 0, "
                    "1, ... in order, block 0 with parent -1 and every other block's parent an earlier block"
                )
        if not program.blocks:
            raise ProgramDescError("a program description needs at least block 0")
        for block, b in zip(program.blocks, desc["blocks"], strict=True):
            for d in b["vars"]:
                _build_var(block, d, program)
        for block, b in zip(program.blocks, desc["blocks"], strict=True):
            for i, op in enumerate(b["ops"]):
                attrs = op["attrs"]
                if isinstance(attrs, dict):  # anything else is refused by check_op_fields
                    attrs = {k: _decode(a, program) for k, a in attrs.items()}
                where = f"block {block.idx} op {i}"
                has_var = lambda n, block=block: block._find_var_recursive(n) is not None  # noqa: E731
                check_op_fields(op["type"], op["inputs"], op["outputs"], attrs, has_var, where)
                _check_op_objects(op["type"], op["inputs"], attrs, where)
                block.append_op(op["type"], op["inputs"], op["outputs"], attrs, infer=False)
    except ProgramDescError:
        raise
    except RecursionError:
        raise ProgramDescError("malformed program description: values nested too deeply") from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise ProgramDescError(f"malformed program description: {type(e).__name__}: {e}") from None
    return program


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class ProgramDesc:
    """``program.desc``: Paddle's program-description handle; ``serialize_to_string()``
    returns the JSON text (see the module docstring)."""

    def __init__(self, program: Program):
        self._program = program

    def serialize_to_string(self) -> str:
        return serialize_program(self._program)

    def num_blocks(self) -> int:
        return self._program.num_blocks


register_program_codec(ProgramDesc, parse_program)
