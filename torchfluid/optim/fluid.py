"""torchfluid's own optimizers (Paddle's maths, every option) with torch.optim's layout.

``torchfluid.optim.RMSProp``, ``SGD`` and ``Adam`` take exactly the constructors of
``torchfluid.optimizer.RMSProp``, ``SGD`` and ``Adam`` (Paddle's defaults and maths,
``RMSProp.preset(...)``, clipping, regularization, precision options) and run the same
update. Only the edge differs: ``state_dict()`` returns torch's layout (``state`` by
index, ``param_groups`` with ``param_names``), which ``torch.distributed.checkpoint``,
``ZeroRedundancyOptimizer`` and trainer frameworks expect; ``paddle_state_dict()`` gives
Paddle's keys. ``load_state_dict``/``set_state_dict`` read both layouts (and
``torch.optim.RMSprop``'s) and match parameters by name.
"""

from __future__ import annotations

from .. import optimizer as _paddle

__all__ = ["RMSProp", "SGD", "Adam"]


class _TorchLayout:
    """Mixin: torch's layout for ``state_dict()``; Paddle's under ``paddle_state_dict()``."""

    def state_dict(self) -> dict:
        """torch.optim's layout (see :meth:`torch_state_dict`)."""
        return self.torch_state_dict()


class RMSProp(_TorchLayout, _paddle.RMSProp):
    __doc__ = _paddle.RMSProp.__doc__


class SGD(_TorchLayout, _paddle.SGD):
    __doc__ = _paddle.SGD.__doc__


class Adam(_TorchLayout, _paddle.Adam):
    __doc__ = _paddle.Adam.__doc__
