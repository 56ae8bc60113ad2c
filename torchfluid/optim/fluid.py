"""torchfluid's own optimizers (Paddle's maths, every option) with torch.optim's layout.

``torchfluid.optim.RMSProp``, ``SGD``, ``Adam``, ``AdamW``, ``Adamax``, ``Adadelta``, ``Lamb``,
``Adagrad`` and ``Momentum`` take exactly the constructors of their ``torchfluid.optimizer``
namesakes
(Paddle's defaults and maths, ``RMSProp.preset(...)``, clipping, regularization, precision options) and run the same
update. Only the edge differs: ``state_dict()`` returns torch's layout (``state`` by
index, ``param_groups`` with ``param_names``), which ``torch.distributed.checkpoint``,
``ZeroRedundancyOptimizer`` and trainer frameworks expect, with torch's entry names,
``step`` and group keys, so that the torch.optim namesake loads it
(:meth:`~torchfluid.optimizer.state.StateCodec.torch_style`); ``paddle_state_dict()`` gives
Paddle's keys. ``load_state_dict``/``set_state_dict`` read both layouts (and the
checkpoints of ``torch.optim.RMSprop``, ``SGD``, ``Adagrad``, ``Adam``, ``AdamW``, ``Adamax`` and
``Adadelta``: torch's entry names, ``betas`` and ``step`` read as Paddle's records) and match
parameters by name. They also take torch's call,
``RMSProp(model.parameters(), lr=0.01, momentum=0.9)``, so that wrappers which build the
optimizer themselves (``ZeroRedundancyOptimizer(params, optimizer_class=RMSProp,
lr=...)``) work. ``Momentum`` reads torch.optim.SGD's ``nesterov`` as ``use_nesterov`` and
``Adagrad``, ``Adam``, ``AdamW``, ``Adamax`` and ``Adadelta`` torch's ``eps`` as ``epsilon`` (in the
call and in ``add_param_group``), and the Adam family torch's ``betas`` pair as ``beta1``,
``beta2``. Every group holds torch's ``weight_decay`` (the group's coupled L2 coefficient; AdamW's
``coeff``, kept equal to it; absent where the optimizer's regularization is no coupled L2:
:class:`NoWeightDecayGroup`). torch's ``maximize`` and ``differentiable`` work on every optimizer,
and so do ``SGD``'s ``momentum``,
``dampening`` and ``nesterov`` (torch.optim.SGD's maths) and ``Adagrad``'s ``lr_decay``; torch's
options without maths here (``capturable``; ``Momentum``'s ``dampening``) are
accepted only at the values that change nothing (0, False) and refused otherwise, and ``foreach``
is accepted and changes nothing. Where the Paddle namesake has no default learning rate
(``Adagrad``, ``RMSProp``), torch's call without ``lr`` takes torch's default (0.01); the other
defaults are Paddle's (``SGD``'s 0.001 is torch's too).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from .. import optimizer as _paddle
from ..optimizer.adadelta import AdadeltaRule
from ..optimizer.adagrad import AdagradRule
from ..optimizer.adam import AdamRule, AdamWRule
from ..optimizer.adamax import AdamaxRule
from ..optimizer.lamb import LambRule
from ..optimizer.momentum import MomentumRule
from ..optimizer.rmsprop import RMSPropRule
from ..optimizer.sgd import SGDRule
from ..optimizer.state import refuse_torch_options, rename_group_keys

__all__ = ["RMSProp", "SGD", "Adam", "AdamW", "Adamax", "Adadelta", "Lamb", "Adagrad", "Momentum"]


def _looks_like_params(obj) -> bool:
    """Parameters as torch passes them first: tensors, (name, tensor) pairs or group dicts
    in any iterable (never a number, a schedule or a string)."""
    return isinstance(obj, (torch.Tensor, Mapping)) or (isinstance(obj, Iterable) and not isinstance(obj, str))


def torch_call(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Accept torch's calling convention besides torchfluid's: ``cls(params, lr=...)`` or
    ``cls(params=params, lr=...)`` (what ``ZeroRedundancyOptimizer`` and trainer frameworks
    do) means ``cls(parameters=params, learning_rate=...)``."""
    kwargs = dict(kwargs)
    if "params" in kwargs:  # torch's keyword for the parameters
        if "parameters" in kwargs or "parameter_list" in kwargs or (args and _looks_like_params(args[0])):
            raise TypeError("pass the parameters once: params (torch's name), parameters or parameter_list")
        kwargs["parameters"] = kwargs.pop("params")
    if args and _looks_like_params(args[0]) and "parameters" not in kwargs and "parameter_list" not in kwargs:
        kwargs["parameters"], args = args[0], args[1:]
    if "lr" in kwargs:
        if "learning_rate" in kwargs or args:
            raise TypeError("pass the learning rate once: lr (torch's name) or learning_rate, not both")
        kwargs["learning_rate"] = kwargs.pop("lr")
    return args, kwargs


def split_betas(kwargs: dict, where: str) -> dict:
    """torch's ``betas=(beta1, beta2)`` as torchfluid's ``beta1`` and ``beta2``."""
    kwargs = dict(kwargs)
    betas = kwargs.pop("betas")
    if "beta1" in kwargs or "beta2" in kwargs:
        raise TypeError(f"{where} sets betas and beta1/beta2; pass the betas once")
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    kwargs["beta1"], kwargs["beta2"] = betas
    return kwargs


def torch_invalid(argument: str, value, rule=None) -> str:
    """torch.optim's words for an argument out of range: ``Invalid learning rate: -1``,
    ``Invalid beta parameter at index 0: 1.0``, ``Invalid momentum value: -0.5`` (torch's
    name of the argument where ``rule`` renames it: RMSprop's ``alpha`` for ``rho``)."""
    if argument in ("learning_rate", "lr"):
        return f"Invalid learning rate: {value}"
    if argument in ("beta1", "beta2"):
        return f"Invalid beta parameter at index {int(argument[-1]) - 1}: {value}"
    theirs = {ours: t for t, ours in getattr(rule, "torch_group_keys", {}).items() if t != "eps"}
    return f"Invalid {theirs.get(argument, argument)} value: {value}"


class NoWeightDecayGroup(dict):
    """A param group of a ``torchfluid.optim`` optimizer whose regularization no torch
    ``weight_decay`` stands for (an ``L1Decay``, a custom regularizer): it holds no
    ``weight_decay`` until one is written (a coupled L2 of that group then, replacing the
    regularization), and reading the absent key raises a ``KeyError`` that says why."""

    def __init__(self, group, regularization=None):
        super().__init__(group)
        self.regularization = repr(regularization)  # a string: the group refers to no optimizer's object

    def __missing__(self, key):
        if key == "weight_decay":
            raise KeyError(
                f"weight_decay: this param group's regularization is the optimizer's {self.regularization}, "
                "not a coupled L2 decay, so no torch weight_decay stands for it; write group['weight_decay'] = c "
                "to give the group a coupled L2 decay of c instead"
            )
        raise KeyError(key)


class _TorchLayout:
    """Mixin: torch's layout for ``state_dict()``; Paddle's under ``paddle_state_dict()``;
    torch's call ``cls(params, lr=..., **options)`` besides torchfluid's.

    ``_RULE``: the update rule whose torch names the call reads: ``torch_group_keys``
    (torch's name of an option this class has under its own, e.g. ``eps`` -> ``epsilon``)
    and ``torch_neutral_options`` (torch's options without maths here, accepted only at the
    values that change nothing). torch's ``betas`` pair is ``beta1``/``beta2``; its
    ``foreach`` is accepted and changes nothing (the fused kernel runs wherever it applies)."""

    _RULE = None
    keeps_torch_pairs = True  # every group holds torch's betas (the Adam family), as torch's
    keeps_torch_weight_decay = True  # and torch's weight_decay (see add_param_group)
    # torch's default learning rate, for a class whose Paddle namesake has none (Paddle's
    # default, where there is one, is torch's too, or stays Paddle's: Adamax, Adadelta)
    _TORCH_LR: float | None = None

    def __init__(self, *args, **kwargs):
        args, kwargs = torch_call(args, kwargs)
        where = f"torchfluid.optim.{type(self).__name__}(...)"
        if self._TORCH_LR is not None and not args and "learning_rate" not in kwargs:
            kwargs["learning_rate"] = self._TORCH_LR
        kwargs.pop("foreach", None)
        if "betas" in kwargs:
            kwargs = split_betas(kwargs, where)
        if self._RULE is not None:
            kwargs = rename_group_keys(kwargs, getattr(self._RULE, "torch_group_keys", {}), where)
            neutral = getattr(self._RULE, "torch_neutral_options", {})
            refuse_torch_options({k: kwargs.pop(k) for k in list(neutral) if k in kwargs}, where, neutral)
        try:
            super().__init__(*args, **kwargs)
        except ValueError as e:
            if getattr(e, "argument", None) is None:  # not a number out of range (range_error)
                raise
            raise ValueError(f"{torch_invalid(e.argument, e.value, self._RULE)} ({e})") from None
        for pair, parts in getattr(self._RULE, "torch_group_pairs", {}).items():  # torch's defaults key too:
            self.defaults[pair] = tuple(self.defaults[p] for p in parts)  # OneCycleLR looks for betas there

    def add_param_group(self, param_group: Mapping) -> None:
        """As the Paddle namesake's, and the group holds torch's ``weight_decay``, as torch's
        groups do, always the value the update uses: the group's coupled L2 coefficient (the
        optimizer's ``L2Decay`` coefficient where the group sets none, 0.0 without
        regularization) or, in ``AdamW``, its decoupled coefficient ``coeff`` (the two kept
        equal: either written sets the other). Where the optimizer's regularization is no
        coupled L2 (an ``L1Decay``, a custom regularizer) a group that sets none holds no
        ``weight_decay`` (:class:`NoWeightDecayGroup`: reading it says why)."""
        before = len(self.param_groups)
        super().add_param_group(param_group)
        if len(self.param_groups) > before and self.weight_decay_is_l2() and self.torch_weight_decay() is None:
            self.param_groups[-1] = NoWeightDecayGroup(self.param_groups[-1], self.regularization)

    def state_dict(self) -> dict:
        """torch.optim's layout (see :meth:`torch_state_dict`)."""
        return self.torch_state_dict()


class RMSProp(_TorchLayout, _paddle.RMSProp):
    __doc__ = _paddle.RMSProp.__doc__
    _RULE = RMSPropRule  # torch.optim.RMSprop's alpha and eps are rho and epsilon
    _TORCH_LR = 1e-2


class SGD(_TorchLayout, _paddle.SGD):
    __doc__ = _paddle.SGD.__doc__
    _RULE = SGDRule  # torch.optim.SGD's momentum, dampening and nesterov are SGD's own options here


class Adam(_TorchLayout, _paddle.Adam):
    __doc__ = _paddle.Adam.__doc__
    _RULE = AdamRule  # torch.optim.Adam's betas and eps; capturable at False


class AdamW(_TorchLayout, _paddle.AdamW):
    __doc__ = _paddle.AdamW.__doc__
    _RULE = AdamWRule  # as Adam; torch.optim.AdamW's weight_decay is the decay coefficient here too


class Adamax(_TorchLayout, _paddle.Adamax):
    __doc__ = _paddle.Adamax.__doc__
    _RULE = AdamaxRule


class Adadelta(_TorchLayout, _paddle.Adadelta):
    __doc__ = _paddle.Adadelta.__doc__
    _RULE = AdadeltaRule  # torch.optim.Adadelta's eps is epsilon (the same maths)


class Lamb(_TorchLayout, _paddle.Lamb):
    __doc__ = _paddle.Lamb.__doc__
    _RULE = LambRule


class Adagrad(_TorchLayout, _paddle.Adagrad):
    __doc__ = _paddle.Adagrad.__doc__
    _RULE = AdagradRule  # torch.optim.Adagrad's eps is epsilon; lr_decay is Adagrad's own option here
    _TORCH_LR = 1e-2


class Momentum(_TorchLayout, _paddle.Momentum):
    __doc__ = _paddle.Momentum.__doc__
    _RULE = MomentumRule  # torch.optim.SGD's nesterov is use_nesterov; dampening=0 is accepted
