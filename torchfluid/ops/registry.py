"""The op registry shared by static and dygraph mode.

An op type maps to one :class:`OpDef`: a forward function over torch tensors and, for
differentiable ops, a grad rule: a vector-Jacobian product, written out with torch's own
backward kernels or, for a forward composed of several torch operations (matmul, batch_norm,
softmax_with_cross_entropy, gelu, softplus), torch.autograd over that forward alone; the
static executor keeps no autograd graph across ops. Either way a rule computes what autograd
computes in dygraph mode, in the same order: a program's gradients equal dygraph's bit for bit
(tests/test_static_grad_rules.py checks every rule in float32). Calling conventions::

    forward(*inputs, **attrs)            -> output | tuple of outputs (OpDef.outputs order)
    grad(*inputs, *outputs, *out_grads, need=(bool per input), **attrs)
                                         -> tuple of input grads (None where not needed)

``inputs`` are tensors in ``OpDef.inputs`` order (a list of tensors for a slot named in
``list_slots``; ``None`` for an absent dispensable slot).

Slots, as Paddle's op protos: every input slot is required unless it is dispensable
(``OpDef.dispensable``: the slots given to ``register(dispensable=...)`` and those whose
forward parameter defaults to ``None``); ``required_when`` makes a dispensable slot needed
when a bool attribute is True (``raw_rmsprop``'s ``MeanGrad`` when ``centered``).
:meth:`OpDef.check_slots` refuses an op missing a required input, naming an unknown slot or
giving a single-variable slot several variables; programs check it when an op is appended.

In dygraph mode the same forward runs eagerly and torch autograd differentiates it; every
grad rule is tested equal to torch.autograd of its forward.

The grad of op type ``T`` is itself an op, ``T_grad``: its inputs are T's input slots,
T's output slots and ``<out slot>@GRAD``; its outputs are ``<in slot>@GRAD``.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["OpDef", "register", "get_op", "has_op", "registered_types", "GRAD_SUFFIX", "UNKNOWN_DIM", "is_unknown_dim"]

GRAD_SUFFIX = "@GRAD"

# Build-time shape inference runs forwards (or ``infer`` functions) on meta tensors in which an
# unknown dim (``-1``, the batch) has this size, a large prime; an output dim that is a multiple of
# it is unknown again. An ``infer`` function keeps a dim unknown by giving it this size.
UNKNOWN_DIM = 1_000_003


def is_unknown_dim(d) -> bool:
    """True for a dim that stands for an unknown (``-1``) size during shape inference."""
    return int(d) > 0 and int(d) % UNKNOWN_DIM == 0


@dataclass(frozen=True)
class OpDef:
    """One op type: slots, forward function and optional grad rule.

    ``no_grad_slots``: input slots never differentiated (labels, indices).
    ``inplace``: the forward updates its inputs in place and returns None (optimizer
    and initializer ops); its outputs name the same variables as its inputs.
    ``infer``: optional ``infer(*input_shapes_dtypes, **attrs)`` for ops whose forward
    cannot run on meta tensors; otherwise shapes come from running forward on meta.
    ``dispensable``: input slots that may be absent (the forward gets ``None``, or ``[]`` for
    a list slot); every other input slot is required. ``required_when``: dispensable slot ->
    the bool attribute under which it is needed after all (when it is ``True``).
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
    dispensable: frozenset = field(default_factory=frozenset)
    required_when: Mapping = field(default_factory=lambda: types.MappingProxyType({}))

    @property
    def differentiable(self) -> bool:
        return self.grad is not None

    def required_inputs(self, attrs: Mapping) -> tuple[str, ...]:
        """The input slots an op of this type with ``attrs`` must be given, in slot order."""
        return tuple(
            s
            for s in self.inputs
            if s not in self.dispensable or (s in self.required_when and attrs.get(self.required_when[s]) is True)
        )

    def check_slots(self, inputs: Mapping, outputs: Mapping, attrs: Mapping, empty: str = "@EMPTY@") -> None:
        """Raise ``ValueError`` naming the op and the slot unless ``inputs``/``outputs``
        (slot -> list of variable names) name only this op's slots, give every required input
        (a single-variable slot one name other than ``empty``; a list slot its key, maybe
        with no names) and give each single-variable slot at most one name."""
        for kind, given, allowed in (("input", inputs, self.inputs), ("output", outputs, self.outputs)):
            for slot, names in given.items():
                if slot not in allowed:
                    raise ValueError(
                        f"op {self.type!r} has no {kind} slot {slot!r}; allowed: {', '.join(allowed) or 'none'}"
                    )
                if slot not in self.list_slots and len(names) > 1:
                    raise ValueError(
                        f"op {self.type!r} {kind} slot {slot!r} takes one variable, got {len(names)}: {list(names)}"
                    )
        for slot in self.required_inputs(attrs):
            names = inputs.get(slot)
            present = names is not None if slot in self.list_slots else bool(names) and names[0] != empty
            if not present:
                when = f" when {self.required_when[slot]} is True" if slot in self.required_when else ""
                raise ValueError(f"op {self.type!r} needs input slot {slot!r}{when}, got slots {sorted(inputs)}")


_REGISTRY: dict[str, OpDef] = {}


def register(
    type: str,
    outputs,
    *,
    grad: Callable | None = None,
    list_slots=(),
    no_grad_slots=(),
    inplace: bool = False,
    infer: Callable | None = None,
    dispensable=(),
    required_when: Mapping | None = None,
):
    """Decorator registering ``forward`` as op ``type``; each type is defined once.

    The op's input slots are ``forward``'s positional parameters, in order (its keyword-only
    parameters are attributes); its dispensable input slots are ``dispensable`` and the slots
    whose parameter defaults to ``None``; ``required_when`` (slot -> bool attribute) names
    those needed when the attribute is True."""

    def deco(forward: Callable) -> Callable:
        if type in _REGISTRY:
            raise ValueError(f"op type {type!r} is already registered")
        params = inspect.signature(forward).parameters.values()
        inputs = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        optional = set(dispensable) | {p.name for p in params if p.name in inputs and p.default is None}
        wrong = sorted(set(dispensable) - set(inputs)) + sorted(set(required_when or {}) - optional)
        if wrong:
            raise ValueError(f"op type {type!r}: dispensable / required_when name {wrong}, not dispensable input slots")
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
            dispensable=frozenset(optional),
            required_when=types.MappingProxyType(dict(required_when or {})),
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

    return OpDef(  # it needs its op's required inputs; the op's outputs and their grads are dispensable
        type=base.type + "_grad",
        inputs=ins,
        outputs=outs,
        forward=fwd,
        list_slots=frozenset(ls),
        doc=f"grad rule of {base.type}",
        dispensable=base.dispensable | frozenset(ins[len(base.inputs) :]),
        required_when=base.required_when,
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
