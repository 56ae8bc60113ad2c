"""The models of ``torchfluid train``, written twice in fluid's two styles from one spec:
a ``fluid.dygraph.Layer`` (eager) and a ``fluid.layers`` network in a ``Program`` (static).

* ``linear``: one fully connected layer;
* ``mlp``: ``model.hidden`` fully connected layers with ``model.activation``, then one;
* ``embedding``: every feature's bin is a token; the mean of their embeddings goes
  through the ``mlp`` layers (sparse row gradients with ``model.sparse``).

Regression: one output and the mean squared error (``square_error_cost``);
classification: one logit per class and ``softmax_with_cross_entropy``.
"""

from __future__ import annotations

import dataclasses

import torch

from .. import layers
from ..dygraph import Embedding, Layer, Linear
from ..layers.nn import static_data
from .data import Prepared

__all__ = ["ModelSpec", "Net", "loss_of", "build_static"]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    kind: str
    hidden: tuple[int, ...]
    activation: str
    embedding_dim: int
    sparse: bool
    num_features: int
    num_outputs: int
    vocab: int
    classification: bool

    @classmethod
    def of(cls, cfg, data: Prepared) -> "ModelSpec":
        hidden = () if cfg["model.kind"] == "linear" else tuple(cfg["model.hidden"])
        return cls(
            cfg["model.kind"],
            hidden,
            cfg["model.activation"],
            cfg["model.embedding_dim"],
            cfg["model.sparse"],
            data.num_features,
            data.num_outputs,
            data.vocab,
            data.classification,
        )

    def widths(self) -> list[int]:
        first = self.embedding_dim if self.kind == "embedding" else self.num_features
        return [first, *self.hidden, self.num_outputs]


class Net(Layer):
    """The dygraph model: ``fluid.dygraph.Embedding`` / ``Linear`` layers."""

    def __init__(self, spec: ModelSpec, dtype: str = "float32"):
        super().__init__(dtype=dtype)
        self.spec = spec
        self.emb = (
            Embedding([spec.vocab, spec.embedding_dim], is_sparse=spec.sparse) if spec.kind == "embedding" else None
        )
        widths = spec.widths()
        self.fcs = torch.nn.ModuleList(
            Linear(a, b, act=spec.activation if i < len(widths) - 2 else None)
            for i, (a, b) in enumerate(zip(widths, widths[1:], strict=False))
        )

    def forward(self, x):
        h = self.emb(x).mean(dim=1) if self.emb is not None else x
        for fc in self.fcs:
            h = fc(h)
        return h


def loss_of(out: torch.Tensor, y: torch.Tensor, classification: bool) -> torch.Tensor:
    """Mean cross entropy of logits (``y`` int64 ``[N, 1]``) or mean squared error."""
    if classification:
        return torch.nn.functional.cross_entropy(out.float(), y.reshape(-1))
    return (out.float() - y).square().mean()


def build_static(spec: ModelSpec):
    """Append the network to the current main program; returns ``(x, y, out, loss)``."""
    if spec.kind == "embedding":
        x = static_data("x", [-1, spec.num_features, 1], "int64")
        h = layers.reduce_mean(layers.embedding(x, size=[spec.vocab, spec.embedding_dim], is_sparse=spec.sparse), dim=1)
    else:
        x = static_data("x", [-1, spec.num_features], "float32")
        h = x
    widths = spec.widths()
    for i, width in enumerate(widths[1:]):
        h = layers.fc(input=h, size=width, act=spec.activation if i < len(widths) - 2 else None)
    if spec.classification:
        y = static_data("y", [-1, 1], "int64")
        loss = layers.mean(layers.softmax_with_cross_entropy(h, y))
    else:
        y = static_data("y", [-1, 1], "float32")
        loss = layers.mean(layers.square_error_cost(input=h, label=y))
    return x, y, h, loss
