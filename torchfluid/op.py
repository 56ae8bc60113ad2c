"""``fluid.op.Operator``: run one registered op directly on the values of a scope.

``Operator('elementwise_add', X='x', Y='y', Out='out', axis=-1).run(scope, place)`` reads
``x`` and ``y`` from ``scope``, runs the op's forward and stores ``out`` in ``scope``.
Keyword arguments named like the op's input or output slots give variable names (a name
or a list of names); every other keyword is an attribute.
"""

from __future__ import annotations

from .dtypes import dtype_name
from .ops import get_op
from .static.executor import Executor
from .static.framework import Program

__all__ = ["Operator"]


class Operator:
    """One op of type ``type`` with its slots and attributes (see the module docstring)."""

    def __init__(self, type, **kwargs):  # noqa: A002 - Paddle's argument name
        self._def = get_op(type)
        self.type = type
        slots = set(self._def.inputs) | set(self._def.outputs)
        self.inputs = {k: _names(v) for k, v in kwargs.items() if k in self._def.inputs}
        self.outputs = {k: _names(v) for k, v in kwargs.items() if k in self._def.outputs}
        self.attrs = {k: v for k, v in kwargs.items() if k not in slots}

    def run(self, scope, place=None):
        """Run the op on ``scope``'s values; its outputs are written to ``scope``."""
        program = Program()
        block = program.global_block()
        for names in self.inputs.values():
            for n in names:
                t = scope.value(n)
                if t is None:
                    raise ValueError(f"Operator {self.type}: input variable {n!r} holds no value in the scope")
                if not block.has_var(n):
                    block.create_var(n, list(t.shape), dtype_name(t.dtype), persistable=True)
        for names in self.outputs.values():
            for n in names:
                if not block.has_var(n):
                    block.create_var(n, None, "float32", persistable=True)
        block.append_op(self.type, self.inputs, self.outputs, self.attrs, infer=False)
        Executor(place).run(program, scope=scope)


def _names(v):
    if isinstance(v, str):
        return [v]
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return list(v)
    raise TypeError(f"Operator: a slot takes a variable name or a list of names, got {v!r}")
