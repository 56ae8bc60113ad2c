"""Weight-decay regularizers (Paddle's ``fluid.regularizer``).

A regularizer adds a term to a parameter's gradient, AFTER gradient clipping (Paddle's
order): ``L2Decay``: ``g + coeff * p``; ``L1Decay``: ``g + coeff * sign(p)``. This is
coupled (L2-in-the-gradient) decay, as ``weight_decay`` in ``torch.optim.RMSprop``;
the term then goes through the RMSProp normalisation, unlike AdamW-style decoupled decay.

A parameter's own ``regularizer`` attribute (set from ``ParamAttr(regularizer=...)``)
replaces the optimizer's regularizer for that parameter only. A row-sparse gradient
plus a dense term becomes a dense gradient (as in Paddle's dygraph ``add_n``).

Paddle multiplies by ``coeff`` with its ``scale`` op, whose attribute is a float32: a
float64 parameter's term uses ``float64(float32(coeff))``. ``float32_attrs=False`` uses
``coeff`` as given (torch's and Keras's coupled weight decay, for their presets).
"""

from __future__ import annotations

import torch

from ._grad_mode import hyper_parameter_now, update_kernel

from ._checks import check_bool, check_number
from ._unsupported import fluid_module_getattr
from .kernels.attrs import as_saved, paddle_attrs

__all__ = [
    "WeightDecayRegularizer",
    "L1Decay",
    "L2Decay",
    "L1DecayRegularizer",
    "L2DecayRegularizer",
    "as_regularizer",
]


class WeightDecayRegularizer:
    """Base class: ``reg(param, grad)`` returns the regularized gradient as a new tensor.

    The coefficient is ``coeff`` (Paddle 2.x) or, by keyword, ``regularization_coeff``
    (fluid's name); giving both is an error."""

    def __init__(self, coeff: float = 0.0, *, regularization_coeff=None, float32_attrs: bool = True):
        argname = "coeff"
        if regularization_coeff is not None:
            if coeff != 0.0:
                raise TypeError(
                    f"{type(self).__name__}: give coeff ({coeff!r}) or regularization_coeff "
                    f"({regularization_coeff!r}), not both"
                )
            argname, coeff = "regularization_coeff", regularization_coeff
        self._coeff = check_coefficient(argname, coeff)
        self._float32_attrs = check_bool("float32_attrs", float32_attrs)

    @property
    def coeff(self) -> float | torch.Tensor:
        return self._coeff

    @property
    def float32_attrs(self) -> bool:
        return self._float32_attrs

    def coeff_for(self, dtype: torch.dtype) -> float:
        """The coefficient a ``dtype`` parameter's term uses: rounded to float32 for float64
        with ``float32_attrs`` (Paddle's float32 attribute), else ``coeff``. (Narrower
        parameters multiply in their own precision, where torch rounds it the same way.)
        A tensor coefficient gives its value now; in a recorded (``differentiable``) update,
        one that requires grad gives itself (0-d, unrounded), so autograd differentiates by it."""
        coeff = hyper_parameter_now(self._coeff)
        if isinstance(coeff, torch.Tensor):
            return coeff
        if isinstance(self._coeff, torch.Tensor):  # its value now, checked as the number given would be
            coeff = check_number("coeff", coeff, lo=0.0)
        return paddle_attrs(dtype, coeff)[0] if self._float32_attrs else coeff

    def term(self, param: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @update_kernel  # autograd off, except in a recorded (differentiable) update
    def __call__(self, param: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        term = self.term(param).to(grad.dtype)
        if grad.is_sparse:
            grad = grad.to_dense()
        return grad + term

    def __repr__(self) -> str:
        flag = "" if self._float32_attrs else ", float32_attrs=False"
        coeff = self._coeff
        shown = f"tensor({float(coeff.detach()):g})" if isinstance(coeff, torch.Tensor) else f"{coeff:g}"
        return f"{type(self).__name__}(coeff={shown}{flag})"

    def _key(self) -> tuple:
        coeff = self._coeff if not isinstance(self._coeff, torch.Tensor) else id(self._coeff)  # a tensor: itself
        return (type(self).__name__, coeff, self._float32_attrs)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


class L2Decay(WeightDecayRegularizer):
    """L2 weight decay: adds ``coeff * p`` to the gradient (loss term ``coeff/2 * ||p||^2``)."""

    def term(self, param: torch.Tensor) -> torch.Tensor:
        return as_saved(param) * self.coeff_for(param.dtype)  # a copy while recording: the update changes param


class L1Decay(WeightDecayRegularizer):
    """L1 weight decay: adds ``coeff * sign(p)`` to the gradient (loss term ``coeff * |p|``)."""

    def term(self, param: torch.Tensor) -> torch.Tensor:
        return torch.sign(param) * self.coeff_for(param.dtype)


L1DecayRegularizer = L1Decay
L2DecayRegularizer = L2Decay


def as_regularizer(value, argname: str = "regularization") -> WeightDecayRegularizer | None:
    """Normalise the ``regularization=``/``weight_decay=`` argument.

    ``None`` -> no regularization; a float ``c`` -> ``L2Decay(c)`` (Paddle 2.x meaning of
    ``weight_decay=c``), also a 1-element floating-point tensor holding it (torch's tensor
    ``weight_decay``: its value read at each update, differentiated by in a ``differentiable``
    one); a regularizer -> itself. Anything else is rejected.
    """
    if value is None or isinstance(value, WeightDecayRegularizer):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return L2Decay(check_number(argname, value, lo=0.0))
    if _is_coefficient_tensor(value):
        return L2Decay(check_coefficient(argname, value))
    raise ValueError(
        f"{argname} must be None, a float (L2 coefficient) or a 1-element floating-point tensor holding one, "
        f"L1Decay or L2Decay, got {value!r} of type {type(value).__name__} (unknown regularizer type)"
    )


def _is_coefficient_tensor(value) -> bool:
    return isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point()


def check_coefficient(argname: str, value) -> float | torch.Tensor:
    """A decay coefficient: a real number >= 0 (returned as a float), or a 1-element
    floating-point tensor holding one (returned as it is: its value is read at each update)."""
    if _is_coefficient_tensor(value):
        check_number(argname, float(value.detach()), lo=0.0)
        return value
    return check_number(argname, value, lo=0.0)


# a fluid.regularizer name torchfluid does not implement: say so, and what to use instead
__getattr__ = fluid_module_getattr("fluid.regularizer")
