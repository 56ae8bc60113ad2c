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


def _auc_area(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """ROC area from per-bucket positive / negative counts (bucket ``i``: scores in
    ``[i, i+1) / num_thresholds``): thresholds swept from the top bucket down, the trapezoids
    under (false positives, true positives) summed, divided by ``#pos * #neg`` (0 when either
    is 0), in float64 as Paddle's kernel."""
    tp = torch.cumsum(pos.flip(0).to(torch.float64), 0)
    fp = torch.cumsum(neg.flip(0).to(torch.float64), 0)
    tp_prev = torch.cat([tp.new_zeros(1), tp[:-1]])
    fp_prev = torch.cat([fp.new_zeros(1), fp[:-1]])
    area = ((fp - fp_prev).abs() * (tp + tp_prev) / 2.0).sum()
    if tp[-1] > 0 and fp[-1] > 0:
        area = area / tp[-1] / fp[-1]
    return area.reshape(1)


def _auc_infer(Predict, Label, StatPos, StatNeg, *, curve="ROC", num_thresholds=4095, slide_steps=1):
    return torch.empty(1, dtype=torch.float64, device="meta"), torch.empty_like(StatPos), torch.empty_like(StatNeg)


@register("auc", ["AUC", "StatPosOut", "StatNegOut"], infer=_auc_infer, no_grad_slots=["Label", "StatPos", "StatNeg"])
def auc(Predict, Label, StatPos, StatNeg, *, curve="ROC", num_thresholds=4095, slide_steps=1):
    """Paddle's ``auc`` op: each row's last column of ``Predict`` (a probability in ``[0, 1]``)
    falls in bucket ``int(p * num_thresholds)``; the row counts as positive when its label is
    > 0, negative when it is 0. ``slide_steps=0``: ``StatPos`` / ``StatNeg``
    (``num_thresholds + 1`` counts each) accumulate every batch. ``slide_steps=k``: they hold
    ``k`` windows, their sum, and a batch counter (the last entry): this batch replaces the
    oldest window. Returns the ROC AUC of the accumulated counts (float64 ``[1]``, see
    :func:`_auc_area`) and the new counts."""
    if Predict.dim() != 2:
        raise ValueError(f"auc: Predict must be [N, C] probabilities, got shape {list(Predict.shape)}")
    p = Predict[:, -1].to(torch.float64)
    if p.numel() and (bool((p < 0).any()) or bool((p > 1).any())):
        raise ValueError(f"auc: Predict values must be in [0, 1], got {float(p.min())} .. {float(p.max())}")
    labels = Label.reshape(-1).to(torch.int64)
    if labels.numel() != p.numel():
        raise ValueError(f"auc: Label has {labels.numel()} values for {p.numel()} Predict rows")
    n = num_thresholds + 1
    bins = (p.to(Predict.dtype) * num_thresholds).to(torch.int64)  # truncation, in Predict's precision
    batch_pos = torch.bincount(bins[labels > 0], minlength=n)[:n]
    batch_neg = torch.bincount(bins[labels == 0], minlength=n)[:n]
    pos, neg = StatPos.reshape(-1).to(torch.int64).clone(), StatNeg.reshape(-1).to(torch.int64).clone()
    if slide_steps == 0:
        pos[:n] += batch_pos
        neg[:n] += batch_neg
        total_pos, total_neg = pos[:n], neg[:n]
    else:
        cur = int(pos[(slide_steps + 1) * n]) % slide_steps
        window, total = slice(cur * n, (cur + 1) * n), slice(slide_steps * n, (slide_steps + 1) * n)
        for stat, batch in ((pos, batch_pos), (neg, batch_neg)):
            stat[total] -= stat[window]
            stat[window] = batch
            stat[total] += batch
        total_pos, total_neg = pos[total], neg[total]
    area = _auc_area(total_pos, total_neg)
    if slide_steps:
        pos[(slide_steps + 1) * n] += 1
        neg[(slide_steps + 1) * n] += 1
    return area, pos.reshape(StatPos.shape), neg.reshape(StatNeg.shape)


def _one_hot_ids(X):
    if X.dim() < 1 or X.shape[-1] != 1:
        raise ValueError(f"one_hot: the input's last dim must be 1, got shape {list(X.shape)}")
    if X.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"one_hot: the input must be int32 or int64 ids, got {str(X.dtype).replace('torch.', '')}")
    return X.reshape(X.shape[:-1])


def _one_hot_infer(X, *, depth, allow_out_of_range=False):
    ids = _one_hot_ids(X)
    return torch.empty((*ids.shape, depth), dtype=torch.float32, device="meta")


@register("one_hot", ["Out"], infer=_one_hot_infer)
def one_hot(X, *, depth, allow_out_of_range=False):
    """Paddle ``one_hot`` (v1): ids ``X`` of shape ``[..., 1]`` become float32 rows of length
    ``depth`` with a 1 at each id: shape ``[..., depth]``. An id outside ``[0, depth)`` is an
    error, or (``allow_out_of_range=True``) gives a row of zeros. No gradient flows to the ids."""
    ids = _one_hot_ids(X).long()
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
