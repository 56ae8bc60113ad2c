"""Row-sparse updates: a dense kernel applied to some rows of its tensors only."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .._grad_mode import update_kernel

__all__ = ["update_rows_"]


@update_kernel
def update_rows_(rows: torch.Tensor, tensors: Sequence[torch.Tensor | None], update: Callable[..., None]) -> None:
    """``update(*parts)`` on rows ``rows`` (int64, distinct) of each tensor (None passes as
    None), then those rows written back; every other row is left exactly as it is."""
    parts = [None if t is None else t.index_select(0, rows) for t in tensors]
    update(*parts)
    for t, part in zip(tensors, parts, strict=True):
        if t is not None:
            t.index_copy_(0, rows, part)
