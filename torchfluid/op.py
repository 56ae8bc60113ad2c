"""``fluid.op.Operator``: run one registered op directly on the values of a scope.

``Operator('elementwise_add', X='x', Y='y', Out='out', axis=-1).run(scope, place)`` reads
``x`` and ``y`` from ``scope``, runs the op's forward and stores ``out`` in ``scope``.
Keyword arguments named like the op's input or output slots give variable names (a name
or a list of names); every other keyword is an attribute, which the op's forward must take
(otherwise a TypeError listing the slots and attributes allowed). ``type`` must be a str
and ``run``'s ``scope`` a :class:`~torchfluid.static.scope.Scope`.

Paddle's raw optimizer ops. In a torchfluid program the op types ``rmsprop``, ``sgd``,
``momentum``, ``adam``, ``adagrad``, ``adamax``, ``adadelta`` and ``lamb`` are the optimizer's whole optimize
section (one op per ``minimize``, with a ``section`` attribute; :mod:`torchfluid.static.optimize`). Paddle's own
ops of those names update ONE parameter from Paddle's slots; they are registered as ``raw_rmsprop``,
``raw_sgd``, ``raw_momentum``, ``raw_adam``, ``raw_adagrad``, ``raw_adamax``, ``raw_adadelta`` and ``raw_lamb``
(:mod:`torchfluid.ops.optimizer_ops`, each calling the one reference kernel). The table ``RAW_OPS`` below holds
their Paddle signatures, and the rule is: ``Operator(type, ...)`` with a ``type`` of the table and no ``section=``
keyword is Paddle's raw op (``self.type`` stays Paddle's name); with ``section=`` it is
the optimize section op. For a raw op:

* the keywords must be its slots or its attributes (anything else is a TypeError that
  lists what is allowed), and its required slots must be given (a ValueError naming the
  missing slot);
* each output slot ``<S>Out`` names the variable the new ``<S>`` is written to: the
  input slot's own (``ParamOut`` is ``Param``: updated in place) or another one, which
  receives the result while the input variable keeps its value, as in Paddle (no other
  input slot may read that variable, and two output slots may not share one);
  ``sgd`` with a SelectedRows ``Grad`` must update in place, as Paddle's kernel requires;
* ``Param`` of ``sgd`` may name a SelectedRows too (a table of some rows; its ``Grad`` must then
  be a SelectedRows);
* a slot the op updates in place (``Param``, ``Moment``, ...) must name a variable of its
  own: no other input slot may name it (a ValueError naming both slots);
* ``Grad`` may name a scope entry made with ``scope.var(name).get_selected_rows()``
  (Paddle's SelectedRows sparse gradient; see the ops module for each op's sparse rule).

``RAW_OPS``:

=========  ==============  ====================================================  ==========================
Paddle     registered as   required slots (optional)                             attributes (default)
=========  ==============  ====================================================  ==========================
rmsprop    raw_rmsprop     Param, Grad, MeanSquare, Moment, LearningRate,        epsilon (1e-10), decay (0.9),
                           ParamOut, MeanSquareOut, MomentOut                    momentum (0.0),
                           (MeanGrad, MeanGradOut: needed iff centered)          centered (False)
sgd        raw_sgd         Param, LearningRate, Grad, ParamOut                   --
momentum   raw_momentum    Param, Grad, Velocity, LearningRate, ParamOut,        mu (required), use_nesterov
                           VelocityOut                                           (False), regularization_method
                                                                                 (''), regularization_coeff
                                                                                 (0.0), multi_precision
                                                                                 (False), rescale_grad (1.0)
adam       raw_adam        Param, Grad, LearningRate, Moment1, Moment2,          beta1 (0.9), beta2 (0.999),
                           Beta1Pow, Beta2Pow, ParamOut, Moment1Out,             epsilon (1e-8), lazy_mode
                           Moment2Out, Beta1PowOut, Beta2PowOut                  (False),
                           (Beta1Tensor, Beta2Tensor, EpsilonTensor: [1]         min_row_size_to_use_multithread
                           tensors replacing the attributes)
adagrad    raw_adagrad     Param, Grad, Moment, LearningRate, ParamOut,          epsilon (1e-6)
                           MomentOut
adamax     raw_adamax      Param, Grad, LearningRate, Moment, InfNorm,           beta1 (0.9), beta2 (0.999),
                           Beta1Pow, ParamOut, MomentOut, InfNormOut             epsilon (1e-8)
                           (Beta1Pow is read, not advanced, as Paddle's op)
adadelta   raw_adadelta    Param, Grad, AvgSquaredGrad, AvgSquaredUpdate,        rho (0.95), epsilon (1e-6)
                           ParamOut, AvgSquaredGradOut, AvgSquaredUpdateOut
                           (LearningRate: later Paddle's slot; absent: lr 1)
lamb       raw_lamb        Param, Grad, LearningRate, Moment1, Moment2,          weight_decay (required),
                           Beta1Pow, Beta2Pow, ParamOut, Moment1Out,             beta1 (0.9), beta2 (0.999),
                           Moment2Out, Beta1PowOut, Beta2PowOut                  epsilon (1e-6),
                           (SkipUpdate: a [1] bool tensor, true: no change)      multi_precision (False)
=========  ==============  ====================================================  ==========================
"""

from __future__ import annotations

import dataclasses

from .dtypes import dtype_name
from .ops import get_op
from .ops.optimizer_ops import SelectedRows
from .static._infer import FRAMEWORK_ATTRS, forward_attrs
from .static.executor import Executor
from .static.framework import Program
from .static.scope import Scope

__all__ = ["Operator", "RAW_OPS", "RawOpSignature"]


@dataclasses.dataclass(frozen=True)
class RawOpSignature:
    """A Paddle raw op's signature: registered op type, required slots, in-place slot pairs.

    ``registered``: the op type that runs it; ``required``: the input and output slots
    that must be given; ``inplace``: (output slot, the input slot whose new value it
    receives) pairs (the registered op updates the input in place)."""

    registered: str
    required: tuple[str, ...]
    inplace: tuple[tuple[str, str], ...]


def _raw_signature(registered: str) -> RawOpSignature:
    """The signature of raw op ``registered``: every slot is required except the op's
    dispensable input slots (the registry's record) and their outputs, and each output slot
    ``<S>Out`` receives the new value of input slot ``<S>``."""
    opdef = get_op(registered)
    optional = opdef.dispensable | {s + "Out" for s in opdef.dispensable}
    required = tuple(s for s in opdef.inputs + opdef.outputs if s not in optional)
    return RawOpSignature(registered, required, tuple((out, out[: -len("Out")]) for out in opdef.outputs))


RAW_OPS: dict[str, RawOpSignature] = {
    "rmsprop": _raw_signature("raw_rmsprop"),
    "sgd": _raw_signature("raw_sgd"),
    "momentum": _raw_signature("raw_momentum"),
    "adam": _raw_signature("raw_adam"),
    "adagrad": _raw_signature("raw_adagrad"),
    "adamax": _raw_signature("raw_adamax"),
    "adadelta": _raw_signature("raw_adadelta"),
    "lamb": _raw_signature("raw_lamb"),
}


class Operator:
    """One op of type ``type`` with its slots and attributes (see the module docstring)."""

    def __init__(self, type, **kwargs):  # noqa: A002 - Paddle's argument name
        if not isinstance(type, str):
            raise TypeError(f"Operator: type must be an op type name (a str), got {type!r}")
        raw = RAW_OPS.get(type) if "section" not in kwargs else None
        self._def = get_op(raw.registered if raw is not None else type)
        self.type = type
        slots = set(self._def.inputs) | set(self._def.outputs)
        self.inputs = {k: _names(v) for k, v in kwargs.items() if k in self._def.inputs}
        self.outputs = {k: _names(v) for k, v in kwargs.items() if k in self._def.outputs}
        self.attrs = {k: v for k, v in kwargs.items() if k not in slots}
        _check_attrs(f"Operator {type!r}" + (" (Paddle's raw op)" if raw is not None else ""), self._def, self.attrs)
        # (input variable, output variable) of each raw-op state written to a variable of its own
        self._copies: list[tuple[str, str]] = []
        if raw is not None:
            _check_raw(type, raw, self._def, self.inputs, self.outputs)
            self._copies = [
                (self.inputs[src][0], self.outputs[out][0])
                for out, src in raw.inplace
                if out in self.outputs and self.outputs[out] != self.inputs[src]
            ]

    def run(self, scope, place=None):
        """Run the op on ``scope``'s values; its outputs are written to ``scope``."""
        if not isinstance(scope, Scope):
            raise TypeError(f"Operator {self.type}: run(scope) takes a Scope, got {type(scope).__name__}")
        program = Program()
        block = program.global_block()
        for names in self.inputs.values():
            for n in names:
                t = scope.value(n)
                if t is None:
                    raise ValueError(f"Operator {self.type}: input variable {n!r} holds no value in the scope")
                shape = t.dense_shape if isinstance(t, SelectedRows) else list(t.shape)
                block.create_var(n, shape, dtype_name(t.dtype) if t.dtype else "float32", persistable=True)
        if self._copies and self.type == "sgd" and isinstance(scope.value(self.inputs["Grad"][0]), SelectedRows):
            raise ValueError(
                f"Operator 'sgd': with a SelectedRows Grad, ParamOut must name the same variable as Param "
                f"(Paddle's sparse sgd updates in place), got ParamOut={self.outputs['ParamOut'][0]!r}, "
                f"Param={self.inputs['Param'][0]!r}"
            )
        for src, out in self._copies:  # the op updates a copy of the input, which becomes the output
            v = block.var(src)
            block.create_var(out, v.shape, v.dtype, persistable=True)
            block.append_op("assign", {"X": [src]}, {"Out": [out]}, {}, infer=False)
        for names in self.outputs.values():
            for n in names:
                block.create_var(n, None, "float32", persistable=True)  # an input's variable is kept as it is
        renamed = dict(self._copies)
        inputs = {slot: [renamed.get(n, n) for n in names] for slot, names in self.inputs.items()}
        block.append_op(self._def.type, inputs, self.outputs, self.attrs, infer=False)
        Executor(place).run(program, scope=scope)


def _check_attrs(label, opdef, attrs):
    """Every attribute must be a keyword the op's forward takes (any, if it takes ``**kwargs``;
    the framework's own ``op_role``, ... always)."""
    allowed_attrs = forward_attrs(opdef)
    if allowed_attrs is None:
        return
    unknown = [k for k in attrs if k not in allowed_attrs and k not in FRAMEWORK_ATTRS]
    if unknown:
        raise TypeError(
            f"{label}: unknown slot or attribute {unknown[0]!r}; allowed slots: "
            f"{', '.join(opdef.inputs + opdef.outputs)}; attributes: {', '.join(allowed_attrs) or 'none'}"
        )


def _check_raw(type_, raw, opdef, inputs, outputs):
    given = {**inputs, **outputs}
    for slot in raw.required:
        if slot not in given:
            raise ValueError(
                f"Operator {type_!r} (Paddle's raw op): slot {slot} is missing; "
                f"required slots: {', '.join(raw.required)}"
            )
    for slot, names in given.items():
        if len(names) != 1:
            raise ValueError(f"Operator {type_!r}: slot {slot} takes one variable name, got {names}")
    for out, src in raw.inplace:
        if (out in given) != (src in given):
            have, lack = (out, src) if out in given else (src, out)
            raise ValueError(f"Operator {type_!r}: slot {have} is given without {lack}; give both or neither")
        if out in given and given[out] != given[src]:
            reader = next((s for s in inputs if inputs[s] == given[out]), None)
            if reader is not None:
                raise ValueError(
                    f"Operator {type_!r}: {out} names variable {given[out][0]!r}, which input slot {reader} reads; "
                    f"allowed: the variable of {src} (updated in place) or one no input slot names"
                )
    updated = {src for _, src in raw.inplace}
    for slot in inputs:  # in slot order: the first updated slot sharing its variable is named
        other = next((s for s in inputs if s != slot and inputs[s] == inputs[slot]), None)
        if slot in updated and other is not None:
            raise ValueError(
                f"Operator {type_!r}: slots {slot} and {other} both name variable {inputs[slot][0]!r}; "
                f"allowed: {slot} (updated in place) names a variable no other input slot names"
            )
    written = [(out, outputs[out][0]) for out, _ in raw.inplace if out in outputs]
    for i, (out, name) in enumerate(written):
        other = next((o for o, n in written[:i] if n == name), None)
        if other is not None:
            raise ValueError(f"Operator {type_!r}: output slots {other} and {out} both name variable {name!r}")


def _names(v):
    if isinstance(v, str):
        return [v]
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return list(v)
    raise TypeError(f"Operator: a slot takes a variable name or a list of names, got {v!r}")
