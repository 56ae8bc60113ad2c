"""``paddle.nn.BatchNorm2D`` (Paddle 2.x signature) over fluid's ``BatchNorm`` layer.

The op is ``batch_norm`` (NCHW, biased batch variance, moving statistics ``m = momentum *
m + (1 - momentum) * batch``), with 2.x's ``use_global_stats``:

* ``None`` (default): batch statistics in training (``layer.train()``), the moving ones in
  ``layer.eval()``;
* ``True``: always the moving statistics (never updated);
* ``False``: always the batch statistics, and the moving ones keep moving, in eval too
  (Paddle's ``trainable_statistics``).

The input must be 4-D; parameters take :func:`torchfluid.framework.get_default_dtype`'s dtype.
"""

from __future__ import annotations

from .._checks import check_bool
from ..dygraph import nn as _fluid_nn
from ..framework import get_default_dtype

__all__ = ["BatchNorm2D"]


class BatchNorm2D(_fluid_nn.BatchNorm):
    """Batch normalisation of ``[N, C, H, W]`` input over N, H, W, per channel."""

    def __init__(
        self,
        num_features,
        momentum=0.9,
        epsilon=1e-05,
        weight_attr=None,
        bias_attr=None,
        data_format="NCHW",
        use_global_stats=None,
        name=None,
    ):
        if data_format != "NCHW":
            raise ValueError(f"data_format must be 'NCHW', got {data_format!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {type(name).__name__}")
        glob = False if use_global_stats is None else check_bool("use_global_stats", use_global_stats)
        super().__init__(
            num_features,
            momentum=momentum,
            epsilon=epsilon,
            param_attr=weight_attr,
            bias_attr=bias_attr,
            dtype=get_default_dtype(),
            use_global_stats=glob,
            trainable_statistics=use_global_stats is False,
        )

    def forward(self, input):
        if len(input.shape) != 4:
            raise ValueError(f"BatchNorm2D: input must be 4-D [N, C, H, W], got shape {list(input.shape)}")
        return super().forward(input)
