"""``paddle.nn.Linear`` and ``paddle.nn.Embedding`` (Paddle 2.x signatures).

Same maths, names and defaults as the fluid layers in :mod:`torchfluid.dygraph.nn`
(``linear_N.w_0``, weight ``[in_features, out_features]``, Xavier-uniform weight, zero
bias), with the 2.x arguments. As in Paddle 2.x, their parameters take the dtype of
:func:`torchfluid.framework.get_default_dtype` (``set_default_dtype``) when the layer is
made. ``Embedding`` also zeroes the ``padding_idx`` row at creation, as Paddle 2.x does.
"""

from __future__ import annotations

import torch

from .._checks import check_int
from ..dygraph import nn as _fluid_nn
from ..framework import get_default_dtype

__all__ = ["Linear", "Embedding"]


def _check_name(name):
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {type(name).__name__}")
    return name


class Linear(_fluid_nn.Linear):
    """``x @ weight + bias``, ``weight`` of shape ``[in_features, out_features]``."""

    def __init__(self, in_features, out_features, weight_attr=None, bias_attr=None, name=None):
        super().__init__(
            in_features, out_features, param_attr=weight_attr, bias_attr=bias_attr, dtype=get_default_dtype()
        )
        self.name = _check_name(name)


class Embedding(_fluid_nn.Embedding):
    """Lookup table ``[num_embeddings, embedding_dim]``; ``sparse=True`` gives row-sparse gradients."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, sparse=False, weight_attr=None, name=None):
        check_int("num_embeddings", num_embeddings, lo=0, lo_open=True)
        check_int("embedding_dim", embedding_dim, lo=0, lo_open=True)
        super().__init__(
            [num_embeddings, embedding_dim],
            is_sparse=sparse,
            padding_idx=padding_idx,
            param_attr=weight_attr,
            dtype=get_default_dtype(),
        )
        self.name = _check_name(name)
        if self._padding_idx >= 0:
            with torch.no_grad():
                self.weight[self._padding_idx] = 0.0
