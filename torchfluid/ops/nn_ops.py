"""Loss, metric and lookup ops (Paddle op types) with their grad rules."""

from __future__ import annotations

import torch

from .registry import register

# ---------------------------------------------------------------- cross entropy


def _hard_label(Label: torch.Tensor, ignore_index: int):
    """(index tensor safe for gather with shape [..., 1], mask of ignored rows)."""
    lbl = Label.long()
    ignored = lbl == ignore_index
    return lbl.masked_fill(ignored, 0), ignored


def _ce_grad(X, Label, Y, dY, *, soft_label=False, ignore_index=-100, need=(True, False)):
    if soft_label:
        return (-dY * Label / X, None)
    lbl, ignored = _hard_label(Label, ignore_index)
    picked = X.gather(-1, lbl)
    g = torch.where(ignored, torch.zeros_like(dY), -dY / picked)
    return (torch.zeros_like(X).scatter_(-1, lbl, g), None)


@register("cross_entropy", ["Y"], grad=_ce_grad, no_grad_slots=["Label"])
def cross_entropy(X, Label, *, soft_label=False, ignore_index=-100):
    """``Y = -log(X[label])`` (hard, Label ``[..., 1]`` int) or ``-sum(Label * log(X))``
    (soft); X holds probabilities; rows whose label is ``ignore_index`` give 0."""
    if soft_label:
        return -(Label * torch.log(X)).sum(dim=-1, keepdim=True)
    lbl, ignored = _hard_label(Label, ignore_index)
    y = -torch.log(X.gather(-1, lbl))
    return y.masked_fill(ignored, 0.0)


def _swce_grad(
    Logits,
    Label,
    Softmax,
    Loss,
    dSoftmax,
    dLoss,
    *,
    soft_label=False,
    ignore_index=-100,
    axis=-1,
    numeric_stable_mode=True,
    need=(True, False),
):
    """``dLogits = (Softmax - onehot(Label)) * dLoss`` (soft labels: ``Softmax - Label``; ignored
    rows 0), plus ``Softmax * (dSoftmax - sum(dSoftmax * Softmax))`` when the softmax output is
    used too. Computed as the vector-Jacobian product of the forward (its log-softmax, gather and
    exp, as autograd differentiates them in dygraph mode), so both modes agree bit for bit."""
    attrs = {"soft_label": soft_label, "ignore_index": ignore_index, "axis": axis}
    with torch.enable_grad():
        logits = Logits.detach().requires_grad_(True)
        sm, loss = softmax_with_cross_entropy(logits, Label, **attrs)
        outs, grads = [loss], [dLoss]
        if dSoftmax is not None:
            outs.append(sm)
            grads.append(dSoftmax)
        (g,) = torch.autograd.grad(outs, [logits], grads)
    return (g, None)


@register(
    "softmax_with_cross_entropy",
    ["Softmax", "Loss"],
    grad=_swce_grad,
    no_grad_slots=["Label"],
)
def softmax_with_cross_entropy(
    Logits, Label, *, soft_label=False, ignore_index=-100, axis=-1, numeric_stable_mode=True
):
    """Softmax along ``axis`` then cross entropy; returns ``(Softmax, Loss)``, Loss has
    size 1 on ``axis``. Computed with log-softmax (numerically stable)."""
    logp = torch.log_softmax(Logits, dim=axis)
    if soft_label:
        loss = -(Label * logp).sum(dim=axis, keepdim=True)
    else:
        lbl, ignored = _hard_label(Label, ignore_index)
        loss = (-logp.gather(axis, lbl)).masked_fill(ignored, 0.0)
    return torch.exp(logp), loss


# ---------------------------------------------------------------- metrics


@register("top_k", ["Out", "Indices"])
def top_k(X, *, k=1):
    """The ``k`` largest values along the last dim and their int64 indices."""
    vals, idx = torch.topk(X, k, dim=-1)
    return vals, idx


@register("accuracy", ["Accuracy", "Correct", "Total"])
def accuracy(Out, Indices, Label):
    """Top-k accuracy: a row is correct when its label is among its ``Indices``."""
    n = Indices.shape[0]
    correct = (Indices == Label.reshape(n, 1).to(Indices.dtype)).any(dim=-1).sum()
    acc = (correct.to(torch.float32) / max(n, 1)).reshape(1)
    return acc, correct.to(torch.int32).reshape(1), torch.full((1,), n, dtype=torch.int32)


def _one_hot_ids(X, depth):
    if X.dim() < 1 or X.shape[-1] != 1:
        raise ValueError(f"one_hot: the input's last dim must be 1, got shape {list(X.shape)}")
    if X.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"one_hot: the input must be int32 or int64 ids, got {str(X.dtype).replace('torch.', '')}")
    return X.reshape(X.shape[:-1])


def _one_hot_infer(X, *, depth, allow_out_of_range=False):
    ids = _one_hot_ids(X, depth)
    return torch.empty((*ids.shape, depth), dtype=torch.float32, device="meta")


@register("one_hot", ["Out"], infer=_one_hot_infer)
def one_hot(X, *, depth, allow_out_of_range=False):
    """Paddle ``one_hot`` (v1): ids ``X`` of shape ``[..., 1]`` become float32 rows of length
    ``depth`` with a 1 at each id: shape ``[..., depth]``. An id outside ``[0, depth)`` is an
    error, or (``allow_out_of_range=True``) gives a row of zeros. No gradient flows to the ids."""
    ids = _one_hot_ids(X, depth).long()
    bad = (ids < 0) | (ids >= depth)
    if not allow_out_of_range and bool(bad.any()):
        raise ValueError(
            f"one_hot: ids must be in [0, {depth}), got {int(ids[bad][0])} "
            "(allow_out_of_range=True makes such rows all zeros)"
        )
    out = torch.zeros((*ids.shape, depth), dtype=torch.float32, device=X.device)
    out.scatter_(-1, ids.clamp(0, depth - 1).unsqueeze(-1), (~bad).to(torch.float32).unsqueeze(-1))
    return out


# ---------------------------------------------------------------- embedding


def _ids(Ids):
    return Ids.squeeze(-1) if Ids.dim() > 1 and Ids.shape[-1] == 1 else Ids


def _lookup_grad(W, Ids, Out, dOut, *, padding_idx=-1, is_sparse=False, need=(True, False)):
    ids = _ids(Ids).reshape(-1).long()
    g = dOut.reshape(-1, W.shape[1])
    if padding_idx != -1:
        g = g.masked_fill((ids == padding_idx).unsqueeze(1), 0.0)
    return (torch.zeros_like(W).index_add_(0, ids, g), None)


@register("lookup_table", ["Out"], grad=_lookup_grad, no_grad_slots=["Ids"])
def lookup_table(W, Ids, *, padding_idx=-1, is_sparse=False):
    """Rows of ``W`` picked by ``Ids`` (a trailing dim of 1 is dropped); rows whose id
    equals ``padding_idx`` (``-1``: none) are zeros and get no gradient.
    (In static mode the gradient is dense; ``is_sparse`` is kept as an attribute.)"""
    ids = _ids(Ids).long()
    out = W[ids]
    if padding_idx != -1:
        out = out.masked_fill((ids == padding_idx).unsqueeze(-1), 0.0)
    return out


# ---------------------------------------------------------------- gradient clipping


def _clip_infer(X, *, clip, need_clip):
    return [torch.empty_like(x) for x in X]


@register("clip_gradients", ["Out"], list_slots=["X", "Out"], infer=_clip_infer)
def clip_gradients(X, *, clip, need_clip):
    """The gradients ``X`` clipped together by ``clip`` (a ``fluid.clip`` object:
    ``clip.clip_tensors(X, need_clip)``; a global norm spans all of them)."""
    with torch.no_grad():
        return list(clip.clip_tensors(list(X), list(need_clip)))
