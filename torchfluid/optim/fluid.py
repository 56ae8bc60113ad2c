"""torchfluid's own optimizers (Paddle's maths, every option) with torch.optim's layout.

``torchfluid.optim.RMSProp``, ``SGD``, ``Adam``, ``Adagrad`` and ``Momentum`` take exactly the
constructors of ``torchfluid.optimizer.RMSProp``, ``SGD``, ``Adam``, ``Adagrad`` and ``Momentum``
(Paddle's defaults and maths, ``RMSProp.preset(...)``, clipping, regularization, precision options) and run the same
update. Only the edge differs: ``state_dict()`` returns torch's layout (``state`` by
index, ``param_groups`` with ``param_names``), which ``torch.distributed.checkpoint``,
``ZeroRedundancyOptimizer`` and trainer frameworks expect; ``paddle_state_dict()`` gives
Paddle's keys. ``load_state_dict``/``set_state_dict`` read both layouts (and
``torch.optim.RMSprop``'s) and match parameters by name. They also take torch's call,
``RMSProp(model.parameters(), lr=0.01, momentum=0.9)``, so that wrappers which build the
optimizer themselves (``ZeroRedundancyOptimizer(params, optimizer_class=RMSProp,
lr=...)``) work. ``Momentum`` reads torch.optim.SGD's ``nesterov`` as ``use_nesterov`` and
``Adagrad`` torch.optim.Adagrad's ``eps`` as ``epsilon`` (in the call and in ``add_param_group``);
torch's options without Paddle maths (``dampening``, ``lr_decay``, ``maximize``) are accepted only
at the values that change nothing (0, False) and refused otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import torch

from .. import optimizer as _paddle
from ..optimizer.adagrad import AdagradRule
from ..optimizer.momentum import MomentumRule
from ..optimizer.state import refuse_torch_options, rename_group_keys

__all__ = ["RMSProp", "SGD", "Adam", "Adagrad", "Momentum"]


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


class _TorchLayout:
    """Mixin: torch's layout for ``state_dict()``; Paddle's under ``paddle_state_dict()``;
    torch's call ``cls(params, lr=..., **options)`` besides torchfluid's.

    ``_TORCH_NAMES``: torch's keyword names of options this class has under its own name
    (read as those); ``_TORCH_ONLY``: torch's options without a counterpart here, accepted
    only at the values that change nothing (the rule's ``torch_neutral_options``)."""

    _TORCH_NAMES: Mapping = MappingProxyType({})
    _TORCH_ONLY: tuple = ()

    def __init__(self, *args, **kwargs):
        args, kwargs = torch_call(args, kwargs)
        where = f"torchfluid.optim.{type(self).__name__}(...)"
        kwargs = rename_group_keys(kwargs, self._TORCH_NAMES, where)
        torch_only = {k: kwargs.pop(k) for k in self._TORCH_ONLY if k in kwargs}
        if torch_only:
            refuse_torch_options(torch_only, where, self._RULE.torch_neutral_options)
        super().__init__(*args, **kwargs)

    def state_dict(self) -> dict:
        """torch.optim's layout (see :meth:`torch_state_dict`)."""
        return self.torch_state_dict()


class RMSProp(_TorchLayout, _paddle.RMSProp):
    __doc__ = _paddle.RMSProp.__doc__


class SGD(_TorchLayout, _paddle.SGD):
    __doc__ = _paddle.SGD.__doc__


class Adam(_TorchLayout, _paddle.Adam):
    __doc__ = _paddle.Adam.__doc__


class Adagrad(_TorchLayout, _paddle.Adagrad):
    __doc__ = _paddle.Adagrad.__doc__
    # torch.optim.Adagrad's eps is epsilon; lr_decay=0 and maximize=False are accepted
    _TORCH_NAMES = AdagradRule.torch_group_keys
    _TORCH_ONLY = ("lr_decay", "maximize")
    _RULE = AdagradRule


class Momentum(_TorchLayout, _paddle.Momentum):
    __doc__ = _paddle.Momentum.__doc__
    # torch.optim.SGD's nesterov is use_nesterov; dampening=0 and maximize=False are accepted
    _TORCH_NAMES = MomentumRule.torch_group_keys
    _TORCH_ONLY = ("dampening", "maximize")
    _RULE = MomentumRule
