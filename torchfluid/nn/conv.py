"""``paddle.nn.Conv2D`` (Paddle 2.x signature) over fluid's ``Conv2D`` layer.

The same op (``conv2d``, NCHW), names (``conv2d_N.w_0``), filter shape ``[out_channels,
in_channels / groups, kh, kw]`` and default initialisation (filter ``N(0, sqrt(2 / (kh * kw
* in_channels)))``, bias zeros) as :class:`torchfluid.dygraph.Conv2D`; the parameters take
:func:`torchfluid.framework.get_default_dtype`'s dtype. ``padding_mode`` other than
``'zeros'``, string paddings (``'SAME'``/``'VALID'``) and ``data_format='NHWC'`` are not
supported (``NotImplementedError``/``ValueError`` naming the argument).
"""

from __future__ import annotations

from ..dygraph import nn as _fluid_nn
from ..framework import get_default_dtype

__all__ = ["Conv2D"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class Conv2D(_fluid_nn.Conv2D):
    """``conv2d(x, weight) + bias``; ``weight_attr``/``bias_attr`` as ``ParamAttr``, an
    initializer, or ``False`` for no bias."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        padding_mode="zeros",
        weight_attr=None,
        bias_attr=None,
        data_format="NCHW",
    ):
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {list(_PADDING_MODES)}, got {padding_mode!r}")
        if padding_mode != "zeros":
            raise NotImplementedError(f"padding_mode={padding_mode!r} is not supported; allowed: 'zeros'")
        if isinstance(padding, str):
            raise NotImplementedError(f"padding={padding!r} is not supported; allowed: an int or a list of ints")
        if data_format != "NCHW":
            raise ValueError(f"data_format must be 'NCHW', got {data_format!r}")
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            param_attr=weight_attr,
            bias_attr=bias_attr,
            dtype=get_default_dtype(),
        )
