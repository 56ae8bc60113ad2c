"""``ParamAttr``: how a layer creates one parameter (Paddle's ``fluid.ParamAttr``).

The optimizer reads the resulting attributes from the parameter itself:
``optimize_attr = {'learning_rate': learning_rate}`` (a multiplier on the optimizer's
rate), ``regularizer`` (replaces the optimizer's regularization for this parameter),
``need_clip`` (False: neither clipped nor counted in a global norm) and ``trainable``
(False: ``stop_gradient=True``, never updated).

Layers accept, wherever Paddle does (``param_attr=``, ``bias_attr=``, ``weight_attr=``):
``None`` (defaults), a ``ParamAttr``, a name (``str``), an ``Initializer``, a
regularizer, ``True`` (defaults) or ``False`` (no such parameter, e.g. no bias).
"""

from __future__ import annotations

from ._checks import check_bool, check_number
from ._unsupported import fluid_module_getattr
from .initializer import Initializer
from .regularizer import WeightDecayRegularizer

__all__ = ["ParamAttr"]


class ParamAttr:
    """Parameter attributes: name, initializer, lr multiplier, regularizer, trainable, need_clip."""

    def __init__(
        self,
        name=None,
        initializer=None,
        learning_rate=1.0,
        regularizer=None,
        trainable=True,
        do_model_average=True,
        need_clip=True,
    ):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"ParamAttr: name must be a str or None, got {type(name).__name__}")
        if name == "":
            raise ValueError("ParamAttr: name must not be empty (use None for a generated name)")
        if initializer is not None and not isinstance(initializer, Initializer):
            raise TypeError(
                f"ParamAttr: initializer must be a torchfluid.initializer.Initializer or None, "
                f"got {type(initializer).__name__}"
            )
        learning_rate = check_number("ParamAttr: learning_rate", learning_rate, lo=0.0)
        if regularizer is not None and not isinstance(regularizer, WeightDecayRegularizer):
            raise TypeError(
                f"ParamAttr: regularizer must be an L1Decay/L2Decay (WeightDecayRegularizer) or None, "
                f"got {type(regularizer).__name__}"
            )
        self.name = name
        self.initializer = initializer
        self.learning_rate = float(learning_rate)
        self.regularizer = regularizer
        self.trainable = check_bool("ParamAttr: trainable", trainable)
        self.do_model_average = check_bool("ParamAttr: do_model_average", do_model_average)
        self.need_clip = check_bool("ParamAttr: need_clip", need_clip)

    @staticmethod
    def _to_attr(arg):
        """Normalise a layer's ``*_attr`` argument (see the module docstring)."""
        if arg is None:
            return ParamAttr()
        if isinstance(arg, (list, tuple)):
            return [ParamAttr._to_attr(a) for a in arg]
        if isinstance(arg, ParamAttr):
            return arg
        if isinstance(arg, str):
            return ParamAttr(name=arg)
        if isinstance(arg, Initializer):
            return ParamAttr(initializer=arg)
        if isinstance(arg, bool):
            return ParamAttr() if arg else False
        if isinstance(arg, WeightDecayRegularizer):
            return ParamAttr(regularizer=arg)
        raise TypeError(
            f"parameter attribute must be None, bool, str, ParamAttr, Initializer or a regularizer, "
            f"got {type(arg).__name__}"
        )

    def _to_kwargs(self) -> dict:
        return {
            "name": self.name,
            "optimize_attr": {"learning_rate": self.learning_rate},
            "regularizer": self.regularizer,
            "trainable": self.trainable,
            "do_model_average": self.do_model_average,
            "need_clip": self.need_clip,
        }

    def __repr__(self) -> str:
        return (
            f"ParamAttr(name={self.name!r}, initializer={self.initializer!r}, "
            f"learning_rate={self.learning_rate}, regularizer={self.regularizer!r}, "
            f"trainable={self.trainable}, need_clip={self.need_clip})"
        )


# a fluid.param_attr name torchfluid does not implement: say so, and what to use instead
__getattr__ = fluid_module_getattr("fluid.param_attr")
