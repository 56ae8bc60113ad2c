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
"""

from __future__ import annotations

import copyreg
import importlib
import json
import numbers
import types

import numpy as np
import torch

from ..dtypes import dtype_name, torch_dtype
from .framework import Block, Parameter, Program, Variable, register_program_codec

__all__ = ["ProgramDesc", "ProgramDescError", "serialize_program", "parse_program", "FORMAT", "VERSION"]

FORMAT = "torchfluid-program"
VERSION = 1
_VAR_FIELDS = ("shape", "dtype", "persistable", "stop_gradient", "is_data", "lod_level", "type", "belong_to_optimizer")
_PARAM_FIELDS = ("trainable", "optimize_attr", "regularizer", "need_clip", "do_model_average", "initializer")


class ProgramDescError(ValueError):
    """A program that cannot be described, or a text that is not a torchfluid program."""


def _object_kinds() -> tuple:
    from ..clip import GradientClipBase
    from ..initializer import Initializer
    from ..lr.scheduler import LRScheduler
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
        return obj
    raise ProgramDescError(f"malformed value {v!r}")


def _build_var(block: Block, d: dict, program: Program) -> None:
    kw = {k: _decode(d[k], program) for k in _VAR_FIELDS}
    name = d["name"]
    if not isinstance(name, str):
        raise ProgramDescError(f"variable name must be a str, got {name!r}")
    if d["kind"] == "param":
        kw.update({k: _decode(d[k], program) for k in _PARAM_FIELDS})
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
    except json.JSONDecodeError as e:
        raise ProgramDescError(f"not a torchfluid program description (JSON expected): {e}") from None
    if not isinstance(desc, dict) or desc.get("format") != FORMAT:
        raise ProgramDescError(f"not a torchfluid program description (format {FORMAT!r} expected)")
    if desc.get("version") != VERSION:
        raise ProgramDescError(f"program description version {desc.get('version')!r}; this reads {VERSION}")
    program = Program()
    try:
        program.random_seed = int(desc["random_seed"])
        program.blocks = [Block(program, int(b["idx"]), int(b["parent_idx"])) for b in desc["blocks"]]
        if not program.blocks or [b.idx for b in program.blocks] != list(range(len(program.blocks))):
            raise ProgramDescError("blocks must be numbered 0, 1, ... in order")
        for block, b in zip(program.blocks, desc["blocks"], strict=True):
            for d in b["vars"]:
                _build_var(block, d, program)
        for block, b in zip(program.blocks, desc["blocks"], strict=True):
            for op in b["ops"]:
                attrs = {k: _decode(a, program) for k, a in op["attrs"].items()}
                block.append_op(op["type"], op["inputs"], op["outputs"], attrs, infer=False)
    except ProgramDescError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ProgramDescError(f"malformed program description: {type(e).__name__}: {e}") from None
    return program


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
