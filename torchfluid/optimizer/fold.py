"""A gradient's clipping and regularization, deferred to the update that uses it.

The pipeline (:meth:`Optimizer._run_pipeline`) plans the clip over all gradients at
once (a global norm needs them all) and picks each parameter's regularizer; the update
then either *materialises* them (:meth:`GradPrep.apply`: new gradient tensors, exactly
``clip`` then ``append_regularization_ops``, for the reference kernel) or *folds* them
into a fused kernel's single pass (:func:`kernel_extras`: a
:class:`~torchfluid.kernels.table.GradFold` of per-tensor ``grad_scale``,
``clip_min``/``clip_max``, ``l2``, ``l1``), which computes the same values.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch

from ..clip import ClipStep
from ..kernels.table import NO_FOLD, GradFold
from ..regularizer import L1Decay, L2Decay, WeightDecayRegularizer

__all__ = ["GradPrep", "NO_PREP", "foldable_regularizer", "kernel_extras"]

_NO_CLIP = ClipStep()


class GradPrep(NamedTuple):
    """One gradient's pending clip step and regularizer (None: not regularized)."""

    clip: ClipStep = _NO_CLIP
    reg: WeightDecayRegularizer | None = None

    def apply(self, p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """The clipped, regularized gradient as a new tensor (``g`` itself if neither)."""
        g = self.clip.apply(g)
        return g if self.reg is None else self.reg(p, g)

    def foldable(self) -> bool:
        """Whether a fused kernel's extras express this (L2Decay/L1Decay, not subclasses)."""
        return foldable_regularizer(self.reg)


def foldable_regularizer(reg) -> bool:
    """No regularizer, or one a fused kernel folds in: exactly ``L2Decay``/``L1Decay`` (a
    subclass may compute something else)."""
    return reg is None or type(reg) in (L2Decay, L1Decay)


NO_PREP = GradPrep()


def kernel_extras(preps: Sequence[GradPrep | None], device: torch.device, dtype: torch.dtype) -> GradFold:
    """The :class:`~torchfluid.kernels.table.GradFold` that folds ``preps`` (one per
    flat-group slot, None for a slot without a gradient this step) into a fused step of a
    group of ``dtype`` tensors: only the terms some slot sets, plain floats per slot
    (:data:`~torchfluid.kernels.table.NO_FOLD` when nothing is set)."""
    if all(q is None or q is NO_PREP for q in preps):
        return NO_FOLD  # no clip, no regularizer: the kernel's defaults
    present = [q for q in preps if q is not None]
    out: dict = {}
    scales = [q.clip.scale for q in present]
    if any(s is not None for s in scales):
        first = scales[0]
        if first is not None and all(s is first for s in scales):
            out["grad_scale"] = first  # one shared scale (a global norm): no stacking
        else:
            one = torch.ones((), dtype=torch.float64, device=device)
            out["grad_scale"] = torch.stack(
                [
                    one
                    if q is None or q.clip.scale is None
                    else q.clip.scale.to(device=device, dtype=torch.float64).reshape(())
                    for q in preps
                ]
            )
    if any(q.clip.min is not None for q in present):
        out["clip_min"] = [-float("inf") if q is None or q.clip.min is None else q.clip.min for q in preps]
        out["clip_max"] = [float("inf") if q is None or q.clip.max is None else q.clip.max for q in preps]
    for key, kind in (("l2", L2Decay), ("l1", L1Decay)):
        if any(type(q.reg) is kind for q in present):
            out[key] = [q.reg.coeff_for(dtype) if q is not None and type(q.reg) is kind else 0.0 for q in preps]
    return GradFold(**out)
