"""torch.optim's conventions over torchfluid's optimizers.

``torchfluid.optimizer`` follows Paddle (fluid and 2.x names, Paddle-keyed
``state_dict()``); ``torchfluid.optim`` follows ``torch.optim``:

* :class:`RMSprop`: a drop-in replacement for ``torch.optim.RMSprop`` (same signature,
  defaults, maths, ``state_dict()`` layout, hooks and error types) on torchfluid's kernels.
* :class:`RMSProp`, :class:`SGD`, :class:`Adam`, :class:`AdamW`, :class:`Adamax`,
  :class:`Adadelta`, :class:`Lamb`, :class:`Adagrad`, :class:`Momentum`: torchfluid's own
  constructors (Paddle's
  maths by default, ``RMSProp.preset(...)``, every option) with torch's ``state_dict()``
  layout.

Every optimizer in both namespaces has ``paddle_state_dict()`` and ``torch_state_dict()``,
and its ``load_state_dict`` reads either layout. A torch-layout dict uses torch.optim's
entry names, ``step`` and group keys, so the torch.optim namesake loads it too."""

from . import layout
from .fluid import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, Lamb, Momentum, RMSProp
from .rmsprop import RMSprop

__all__ = ["RMSprop", "RMSProp", "SGD", "Adam", "AdamW", "Adamax", "Adadelta", "Lamb", "Adagrad", "Momentum", "layout"]
