"""``fluid.layer_helper``: :class:`LayerHelper`, as old fluid layer code imports it
(``from paddle.fluid.layer_helper import LayerHelper``)."""

from .layers.helper import LayerHelper

__all__ = ["LayerHelper"]
