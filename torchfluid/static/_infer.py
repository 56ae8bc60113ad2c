"""Build-time helpers for ops: where the user built them, and their output shapes.

Shapes are inferred by running the op's forward on ``meta`` tensors (no memory, no
maths). The unknown batch dim ``-1`` travels as a large prime ``_BATCH``; an output dim
that is a multiple of it is unknown again (``-1``).
"""

from __future__ import annotations

import inspect
import linecache
import os
import sys

import torch

from ..dtypes import dtype_name, torch_dtype
from ..ops import get_op
from ..ops.registry import UNKNOWN_DIM, is_unknown_dim

__all__ = ["callsite", "infer_outputs", "FRAMEWORK_ATTRS", "op_attrs", "OpBuildError", "describe_inputs"]

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_BATCH = UNKNOWN_DIM
FRAMEWORK_ATTRS = frozenset({"op_role", "op_role_var", "op_namescope", "op_device"})


class OpBuildError(ValueError):
    """An op could not be added to a program (bad input shapes, dtypes or attrs)."""


def callsite():
    """``(filename, lineno, source line)`` of the first frame outside torchfluid."""
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PKG_DIR):
        f = f.f_back
    if f is None:
        return None
    fname, line = f.f_code.co_filename, f.f_lineno
    return fname, line, linecache.getline(fname, line).strip()


def forward_attrs(opdef) -> list[str] | None:
    """The attribute names op ``opdef``'s forward takes: its parameters after the ones taking
    the input slots; None when it takes any (``**kwargs``)."""
    params = inspect.signature(opdef.forward).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    named = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    return named[len(opdef.inputs) :]


def op_attrs(op) -> dict:
    """The attrs the op's forward takes (framework bookkeeping removed)."""
    return {k: v for k, v in op.attrs.items() if k not in FRAMEWORK_ATTRS}


def _meta(var):
    if var.shape is None:
        raise OpBuildError(f"variable {var.name!r} has an unknown shape")
    shape = [_BATCH if d < 0 else d for d in var.shape]
    return torch.empty(shape, dtype=torch_dtype(var.dtype), device="meta")


def describe_inputs(op, env=None) -> str:
    """``slot=name: dtype[shape]`` for each input of ``op``: of its value in ``env`` (a run's
    environment; ``missing`` when absent), or of its program variable when ``env`` is None."""
    parts = []
    for slot, names in op.inputs.items():
        for n in names:
            if env is None:
                v = op.block._find_var_recursive(n)
                desc = f"{v.dtype}{list(v.shape) if v.shape is not None else '?'}"
            else:
                t = env.get(n)
                desc = f"{str(t.dtype).replace('torch.', '')}{list(t.shape)}" if hasattr(t, "shape") else "missing"
            parts.append(f"{slot}={n}: {desc}")
    return ", ".join(parts)


def infer_outputs(op) -> None:
    """Set shape/dtype of ``op``'s output variables that have no shape yet."""
    block = op.block
    out_vars = {n: block._find_var_recursive(n) for n in op.output_arg_names}
    if all(v.shape is not None for v in out_vars.values()):
        return
    opdef = get_op(op.type)
    args = []
    try:
        for slot in opdef.inputs:
            names = op.inputs.get(slot, [])
            vs = [block._find_var_recursive(n) for n in names]
            if slot in opdef.list_slots:
                args.append([_meta(v) for v in vs])
            else:
                args.append(_meta(vs[0]) if vs else None)
        fn = opdef.infer or opdef.forward
        res = fn(*args, **op_attrs(op))
    except Exception as e:  # noqa: BLE001 - re-raised with the op's context
        raise OpBuildError(
            f"op {op.type} built at {op.where()} cannot take inputs ({describe_inputs(op)}) "
            f"with attrs {op_attrs(op)!r}: {e}"
        ) from e
    results = (res,) if len(opdef.outputs) == 1 else tuple(res)
    for slot, value in zip(opdef.outputs, results, strict=True):
        names = op.outputs.get(slot, [])
        values = value if isinstance(value, (list, tuple)) else [value]
        for n, t in zip(names, values, strict=True):
            v = out_vars[n]
            if v.shape is None and isinstance(t, torch.Tensor):
                v.shape = tuple(-1 if is_unknown_dim(d) else int(d) for d in t.shape)
                v.dtype = dtype_name(t.dtype)
