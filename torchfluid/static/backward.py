"""Reverse mode over the static IR: ``append_backward`` (``fluid.backward``).

For each forward op on the path to the loss, in reverse, append its grad op
``<type>_grad`` (the grad rule of :mod:`torchfluid.ops`). The gradient of variable
``x`` is ``x@GRAD``; when several ops contribute to it, each writes
``x@GRAD@RENAME@block0@k`` and a ``sum`` op adds them into ``x@GRAD`` before the first
use. Variables with ``stop_gradient=True`` (data, non-trainable parameters), those in
``no_grad_set`` and non-float variables get no gradient.
"""

from __future__ import annotations

import math
from collections import defaultdict

from ..dtypes import is_float_dtype
from ..ops import GRAD_SUFFIX, get_op
from ._infer import op_attrs
from .framework import OpRole, Parameter, Variable, names_of

__all__ = ["append_backward", "EMPTY_VAR_NAME"]

EMPTY_VAR_NAME = "@EMPTY@"


def _check_loss(loss):
    if not isinstance(loss, Variable):
        raise TypeError(f"append_backward: loss must be a static Variable, got {type(loss).__name__}")
    shape = loss.shape
    if shape is None or any(d < 0 for d in shape) or (len(shape) and math.prod(shape) != 1):
        raise ValueError(
            f"append_backward: loss {loss.name!r} must hold exactly one element (shape [1]), "
            f"but its shape is {list(shape) if shape is not None else None}; reduce it first, "
            "e.g. with fluid.layers.mean(loss)"
        )
    if not is_float_dtype(loss.dtype):
        raise ValueError(f"append_backward: loss {loss.name!r} must be a float tensor, got {loss.dtype}")


def _path(ops, loss_name):
    """Indices of the ops that the loss depends on, and the loss op's index."""
    last = max((i for i, op in enumerate(ops) if loss_name in op.output_arg_names), default=None)
    if last is None:
        raise ValueError(f"append_backward: no op in the program produces the loss {loss_name!r}")
    needed, path = {loss_name}, []
    for i in range(last, -1, -1):
        op = ops[i]
        if any(n in needed for n in op.output_arg_names):
            path.append(i)
            needed.update(op.input_arg_names)
    return sorted(path), last


def _requires_grad(block, ops, path, no_grad):
    """Names of variables that get a gradient (forward propagation of requires-grad). A
    variable an op only updates in place (``increment`` of a parameter: the op reads and
    writes it) is still a leaf: it gets the gradient its readers give it."""
    produced = {n for i in path for n in ops[i].output_arg_names if n not in ops[i].input_arg_names}
    req = {n for n, v in block.vars.items() if n not in produced and n not in no_grad and is_float_dtype(v.dtype)}
    for i in path:
        op = ops[i]
        opdef = get_op(op.type)
        if not opdef.differentiable:
            continue
        if any(n in req for s, ns in op.inputs.items() if s not in opdef.no_grad_slots for n in ns):
            for n in op.output_arg_names:
                v = block.vars.get(n)
                if n not in no_grad and v is not None and is_float_dtype(v.dtype):
                    req.add(n)
    return req


class _Grads:
    """Gradient contributions per forward variable; fan-in resolved by ``sum`` ops."""

    def __init__(self, block, expected):
        self.block, self.expected = block, expected
        self.parts: dict[str, list[str]] = defaultdict(list)
        self.done: dict[str, str] = {}

    def new_name(self, fwd: str) -> str:
        k = len(self.parts[fwd])
        name = fwd + GRAD_SUFFIX if self.expected[fwd] <= 1 else f"{fwd}{GRAD_SUFFIX}@RENAME@block{self.block.idx}@{k}"
        self.parts[fwd].append(name)
        v = self.block._find_var_recursive(fwd)
        self.block.create_var(name, v.shape, v.dtype)
        return name

    def resolve(self, fwd: str):
        """The name holding the full gradient of ``fwd`` (appending a sum if needed)."""
        if fwd in self.done:
            return self.done[fwd]
        parts = self.parts.get(fwd)
        if not parts:
            return None
        target = fwd + GRAD_SUFFIX
        if parts != [target]:
            v = self.block._find_var_recursive(fwd)
            self.block.create_var(target, v.shape, v.dtype)
            self.block.append_op("sum", {"X": list(parts)}, {"Out": [target]}, infer=False)
        self.done[fwd] = target
        return target


def append_backward(loss, parameter_list=None, no_grad_set=None, callbacks=None, checkpoints=None):
    """Append grad ops for ``loss``; return ``[(param, grad_var)]`` (param order)."""
    _check_loss(loss)
    block = loss.block
    program = block.program
    no_grad = set(names_of(no_grad_set or (), "append_backward(no_grad_set): expected Variables or names, got {}"))
    no_grad |= {v.name for v in block.vars.values() if v.stop_gradient}
    ops = block.ops
    path, loss_idx = _path(ops, loss.name)
    ops[loss_idx].attrs["op_role"] = ops[loss_idx].role | OpRole.Loss
    req = _requires_grad(block, ops, path, no_grad)

    def wanted(opdef, slot, name):
        return slot not in opdef.no_grad_slots and name in req

    expected = defaultdict(int)
    for i in path:
        opdef = get_op(ops[i].type)
        if opdef.differentiable:
            for slot, names in ops[i].inputs.items():
                for n in names:
                    expected[n] += wanted(opdef, slot, n)
    expected[loss.name] = 1
    grads = _Grads(block, expected)
    grad_to_var: dict[str, str] = {}
    with program._backward_role_guard():
        loss_grad = grads.new_name(loss.name)
        block.append_op(
            "fill_constant",
            {},
            {"Out": [loss_grad]},
            {"shape": [1], "dtype": loss.dtype, "value": 1.0, "op_role": OpRole.Backward | OpRole.Loss},
            infer=False,
        )
        for i in reversed(path):
            op = ops[i]
            opdef = get_op(op.type)
            if not opdef.differentiable:
                continue
            if not any(wanted(opdef, s, n) for s, ns in op.inputs.items() for n in ns):
                continue
            out_grads = {s: [grads.resolve(n) for n in ns] for s, ns in op.outputs.items()}
            if all(g is None for gs in out_grads.values() for g in gs):
                continue
            inputs = {**op.inputs, **op.outputs}
            for s, gs in out_grads.items():
                if any(g is not None for g in gs):
                    inputs[s + GRAD_SUFFIX] = [g or EMPTY_VAR_NAME for g in gs]
            outputs = {}
            for s, ns in op.inputs.items():
                gnames = [grads.new_name(n) if wanted(opdef, s, n) else EMPTY_VAR_NAME for n in ns]
                if any(g != EMPTY_VAR_NAME for g in gnames):
                    outputs[s + GRAD_SUFFIX] = gnames
                    grad_to_var.update({g: n for g, n in zip(gnames, ns, strict=True) if g != EMPTY_VAR_NAME})
            block.append_op(op.type + "_grad", inputs, outputs, op_attrs(op), infer=False)
            for cb in callbacks or ():
                cb(block=block, context=grad_to_var)
        for fwd in list(grads.parts):  # leaves reached more than once (e.g. a fed x used twice) get their sum too
            grads.resolve(fwd)
        if parameter_list is not None:
            error = "append_backward(parameter_list): expected Variables or names, got {}"
            params = [block.var(n) for n in names_of(parameter_list, error)]
        else:
            params = [p for p in program.global_block().all_parameters() if p.trainable]
        result = []
        for p in params:
            if p.name in no_grad or (isinstance(p, Parameter) and not p.trainable):
                continue
            g = grads.resolve(p.name)
            if g is not None:
                result.append((p, block.var(g)))
    return result
