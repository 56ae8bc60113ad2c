"""The op registry shared by static and dygraph mode.

An op type maps to one :class:`OpDef`: a forward function over torch tensors and, for
differentiable ops, a grad rule (a vector-Jacobian product written out by hand, so the
static executor needs no autograd graph). Calling conventions::

    forward(*inputs, **attrs)            -> output | tuple of outputs (OpDef.outputs order)
    grad(*inputs, *outputs, *out_grads, need=(bool per input), **attrs)
                                         -> tuple of input grads (None where not needed)

``inputs`` are tensors in ``OpDef.inputs`` order (a list of tensors for a slot named in
``list_slots``; ``None`` for an absent optional slot). In dygraph mode the same forward
runs eagerly and torch autograd differentiates it; every grad rule is tested equal to
torch.autograd of its forward.

The grad of op type ``T`` is itself an op, ``T_grad``: its inputs are T's input slots,
T's output slots and ``<out slot>@GRAD``; its outputs are ``<in slot>@GRAD``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["OpDef", "register", "get_op", "has_op", "registered_types", "GRAD_SUFFIX"]

GRAD_SUFFIX = "@GRAD"


@dataclass(frozen=True)
class OpDef:
    """One op type: slots, forward function and optional grad rule.

    ``no_grad_slots``: input slots never differentiated (labels, indices).
    ``inplace``: the forward updates its inputs in place and returns None (optimizer
    and initializer ops); its outputs name the same variables as its inputs.
    ``infer``: optional ``infer(*input_shapes_dtypes, **attrs)`` for ops whose forward
    cannot run on meta tensors; otherwise shapes come from running forward on meta.
    """

    type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    forward: Callable
    grad: Callable | None = None
    list_slots: frozenset = field(default_factory=frozenset)
    no_grad_slots: frozenset = field(default_factory=frozenset)
    inplace: bool = False
    infer: Callable | None = None
    doc: str = ""

    @property
    def differentiable(self) -> bool:
        return self.grad is not None


_REGISTRY: dict[str, OpDef] = {}


def register(
    type: str,
    inputs,
    outputs,
    *,
    grad: Callable | None = None,
    list_slots=(),
    no_grad_slots=(),
    inplace: bool = False,
    infer: Callable | None = None,
):
    """Decorator registering ``forward`` as op ``type``; each type is defined once."""

    def deco(forward: Callable) -> Callable:
        if type in _REGISTRY:
            raise ValueError(f"op type {type!r} is already registered")
        _REGISTRY[type] = OpDef(
            type=type,
            inputs=tuple(inputs),
            outputs=tuple(outputs),
            forward=forward,
            grad=grad,
            list_slots=frozenset(list_slots),
            no_grad_slots=frozenset(no_grad_slots),
            inplace=inplace,
            infer=infer,
            doc=(forward.__doc__ or "").strip(),
        )
        return forward

    return deco


@functools.cache
def _grad_opdef(base_type: str) -> OpDef:
    base = _REGISTRY[base_type]
    ins = base.inputs + base.outputs + tuple(s + GRAD_SUFFIX for s in base.outputs)
    outs = tuple(s + GRAD_SUFFIX for s in base.inputs)
    ls = base.list_slots | {s + GRAD_SUFFIX for s in base.list_slots}
    fwd = base.grad
    if len(outs) == 1:  # single-output ops return the value, not a 1-tuple

        def fwd(*args, **kwargs):
            return base.grad(*args, **kwargs)[0]

    return OpDef(
        type=base.type + "_grad",
        inputs=ins,
        outputs=outs,
        forward=fwd,
        list_slots=frozenset(ls),
        doc=f"grad rule of {base.type}",
    )


def has_op(type: str) -> bool:
    try:
        get_op(type)
    except KeyError:
        return False
    return True


def get_op(type: str) -> OpDef:
    """The OpDef of ``type``; ``T_grad`` is derived from ``T``'s grad rule."""
    op = _REGISTRY.get(type)
    if op is not None:
        return op
    base = _REGISTRY.get(type[: -len("_grad")]) if type.endswith("_grad") else None
    if base is not None and base.grad is not None:
        return _grad_opdef(base.type)  # made once per type
    raise KeyError(f"unknown op type {type!r}; registered: {', '.join(sorted(_REGISTRY))}")


def registered_types() -> list[str]:
    return sorted(_REGISTRY)
