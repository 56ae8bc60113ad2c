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

Loading checks the text as it builds a new Program, which is returned only when all of it
is valid: ``random_seed`` an int in [0, 2**63 - 1]; blocks numbered 0, 1, ... with block
0's parent -1 and every other block's parent an earlier block; variable names unique per
block, shapes null or ints in [-1, 2**63 - 1], flags bools (:func:`check_var_fields`);
each op of a registered type, with its own slot names, each naming described variables,
and the attributes its signature gives a bool, int or float default of that type
(:func:`check_op_fields`; :mod:`torchfluid.io.inference` checks its files the same way).
JSON nested too deeply or numbers too large are a ProgramDescError too.
"""

from __future__ import annotations

import copyreg
import importlib
import inspect
import json
import numbers
import types

import numpy as np
import torch

from .._checks import shown
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
_VAR_FLAGS = ("persistable", "stop_gradient", "is_data", "belong_to_optimizer")


class ProgramDescError(ValueError):
    """A program that cannot be described, or a text that is not a torchfluid program."""


def _object_kinds() -> tuple:
    from ..clip import GradientClipBase
    from ..initializer import Initializer
    from ..lr.scheduler import LRScheduler
    from ..optimizer.adagrad import AdagradRule
    from ..optimizer.adam import AdamRule
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
    fields = {"name": v.name, **{k: getattr(v, k) for k in _VAR_FIELDS}}
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


def check_var_fields(name, fields: dict, flags, where: str) -> None:
    """Raise ProgramDescError unless a described variable's ``name`` is a str, ``fields["shape"]``
    is None or a list/tuple of ints (not bools) in [-1, 2**63 - 1] (-1: any size) and each of
    ``flags`` in ``fields`` is a bool."""
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
    variables ``has_var`` knows (``@EMPTY@`` standing for none); ``attrs`` a dict of the
    attributes the op's forward takes (and the framework's ``op_role``, ...), those with a
    bool, int or float default in its signature of that type (an int for a float)."""
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
    for name, p in inspect.signature(opdef.forward).parameters.items():
        if name in attrs and p.kind is inspect.Parameter.KEYWORD_ONLY and not _attr_type_ok(p.default, attrs[name]):
            raise ProgramDescError(
                f"{where}: op {op_type} attribute {name!r} is {attrs[name]!r}; allowed: "
                f"{_ATTR_KINDS[type(p.default)]} like its default {p.default!r}"
            )


def _check_object(path: str, obj) -> None:
    """A restored gradient clip's numbers are checked as its constructor checks them."""
    from ..clip import GradientClipBase
    from .clip import check_clip

    if isinstance(obj, GradientClipBase):
        try:
            check_clip(obj)
        except (AttributeError, TypeError, ValueError) as e:
            raise ProgramDescError(f"object {path!r}: {type(e).__name__}: {e}") from None


def _build_var(block: Block, d: dict, program: Program) -> None:
    kw = {k: _decode(d[k], program) for k in _VAR_FIELDS}
    name = d["name"]
    check_var_fields(name, kw, _VAR_FLAGS, f"block {block.idx}")
    if name in block.vars:
        raise ProgramDescError(f"block {block.idx}: variable {name!r} is described twice")
    if d["kind"] == "param":
        kw.update({k: _decode(d[k], program) for k in _PARAM_FIELDS})
        check_var_fields(name, kw, ("trainable", "need_clip"), f"block {block.idx}")
        v = Parameter(block, name, **kw)
        if "gradient_clip_attr" in d:
            v.gradient_clip_attr = _decode(d["gradient_clip_attr"], program)
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
