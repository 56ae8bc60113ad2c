"""Fluid dygraph layers ``Linear`` and ``Embedding`` (Paddle's ``fluid.dygraph.nn``), exact.

``Linear``: ``out = act(matmul(x, W) + b)`` with ``W`` of shape ``[input_dim,
output_dim]`` (the transpose of torch's) and the bias added after the product, as
Paddle's ``matmul`` + ``elementwise_add`` (not a fused ``addmm``).

``Embedding`` (``lookup_table_v2``): ``out[..., :] = W[ids[...]]``, shape
``ids.shape + [D]``. Ids equal to ``padding_idx`` give zero rows. Gradients:

* dense: rows summed per id; the padding row gets exactly zero;
* ``is_sparse=True``: a torch sparse COO gradient with one row per id occurrence, in
  order, duplicates not merged (Paddle's SelectedRows). As in Paddle's kernel, the
  padding id's rows carry the upstream gradient unchanged.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

from .layers import Layer
from .varbase import VarBase, call_plain

__all__ = ["Linear", "Embedding", "embedding_lookup", "apply_activation", "ACTIVATIONS"]

ACTIVATIONS = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda x: torch.softmax(x, dim=-1),
    "relu6": lambda x: torch.clamp(x, 0.0, 6.0),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.02),  # Paddle's default alpha
    "elu": F.elu,
    "gelu": F.gelu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "exp": torch.exp,
    "abs": torch.abs,
    "square": torch.square,
    "sqrt": torch.sqrt,
}


def _check_act(act):
    if act is not None and act not in ACTIVATIONS:
        raise ValueError(f"act must be None or one of {sorted(ACTIVATIONS)}, got {act!r}")
    return act


def apply_activation(x, act):
    return x if act is None else ACTIVATIONS[act](x)


def _positive_int(name, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be an int > 0, got {value!r}")
    return int(value)


def _linear(input, weight, bias, act):
    out = torch.matmul(input, weight)
    if bias is not None:
        out = out + bias
    return apply_activation(out, act)


class Linear(Layer):
    """``act(input @ weight + bias)``; ``weight`` is ``[input_dim, output_dim]``, named ``linear_N.w_0``."""

    def __init__(self, input_dim, output_dim, param_attr=None, bias_attr=None, act=None, dtype="float32"):
        super().__init__(dtype=dtype)
        input_dim = _positive_int("input_dim", input_dim)
        output_dim = _positive_int("output_dim", output_dim)
        self._act = _check_act(act)
        self.weight = self.create_parameter(shape=[input_dim, output_dim], attr=param_attr, is_bias=False)
        bias = self.create_parameter(shape=[output_dim], attr=bias_attr, is_bias=True)
        self.register_parameter("bias", bias)

    def forward(self, input):
        return call_plain(_linear, input, self.weight, self.bias, self._act)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}, bias={self.bias is not None}, act={self._act}"


class _SparsePaddedLookup(torch.autograd.Function):
    """Lookup with zeroed padding rows whose sparse gradient keeps every id (Paddle's kernel)."""

    @staticmethod
    def forward(ctx, ids, weight, padding_idx):
        ctx.save_for_backward(ids)
        ctx.table_shape = tuple(weight.shape)
        out = F.embedding(ids, weight)
        return out.masked_fill((ids == padding_idx).unsqueeze(-1), 0)

    @staticmethod
    def backward(ctx, grad_out):
        (ids,) = ctx.saved_tensors
        rows, width = ctx.table_shape
        grad = torch.sparse_coo_tensor(
            ids.reshape(1, -1).to(torch.long), grad_out.reshape(-1, width).contiguous(), (rows, width),
            check_invariants=False,
        )
        return None, grad, None


def embedding_lookup(ids, weight, padding_idx=None, sparse=False):
    """``weight[ids]`` with Paddle's padding and sparse-gradient rules (module docstring)."""
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"Embedding input must be a Tensor of int64/int32 ids, got {type(ids).__name__}")
    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"Embedding input must hold int64 or int32 ids, got dtype {ids.dtype}")
    if padding_idx is None or padding_idx < 0:
        return F.embedding(ids, weight, sparse=sparse)
    if sparse:
        out = _SparsePaddedLookup.apply(ids, weight, int(padding_idx))
        if type(out) is torch.Tensor:
            out.__class__ = VarBase
        return out
    out = F.embedding(ids, weight)
    return out.masked_fill((ids == padding_idx).unsqueeze(-1), 0)


def _normalise_padding(padding_idx, rows: int) -> int:
    if padding_idx is None:
        return -1
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, numbers.Integral):
        raise TypeError(f"padding_idx must be an int or None, got {padding_idx!r}")
    if not -rows <= padding_idx < rows:
        raise ValueError(f"padding_idx must be within [-{rows}, {rows}), got {padding_idx}")
    return int(padding_idx) if padding_idx >= 0 else rows + int(padding_idx)


class Embedding(Layer):
    """Lookup table ``[size[0], size[1]]`` named ``embedding_N.w_0``; see the module docstring."""

    def __init__(self, size, is_sparse=False, is_distributed=False, padding_idx=None, param_attr=None,
                 dtype="float32"):
        super().__init__(dtype=dtype)
        if not isinstance(size, (list, tuple)) or len(size) != 2:
            raise ValueError(f"size must be a list of two ints [vocab_size, emb_dim], got {size!r}")
        rows = _positive_int("size[0]", size[0])
        width = _positive_int("size[1]", size[1])
        if not isinstance(is_sparse, bool):
            raise TypeError(f"is_sparse must be a bool, got {is_sparse!r}")
        if is_distributed:
            raise ValueError("is_distributed=True (a parameter-server table) is not supported")
        self._size = [rows, width]
        self._is_sparse = is_sparse
        self._padding_idx = _normalise_padding(padding_idx, rows)
        self.weight = self.create_parameter(shape=self._size, attr=param_attr, is_bias=False)

    def forward(self, input):
        return embedding_lookup(input, self.weight, self._padding_idx, self._is_sparse)

    def extra_repr(self) -> str:
        return f"{self._size}, padding_idx={self._padding_idx}, is_sparse={self._is_sparse}"
