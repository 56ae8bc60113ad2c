"""The reference RMSProp kernel: the ground truth every other path is tested against.

Pure function over tensors, in place, keyword-only hyper-parameters, no state and no
mode checks. With the defaults it is exactly PaddlePaddle's ``rmsprop`` op::

    ms  = rho * ms + (1 - rho) * g * g
    mg  = rho * mg + (1 - rho) * g                      (centered only)
    den = sqrt(ms - mg * mg + eps)   if centered        (variance clamped at 0)
        = sqrt(ms + eps)             otherwise          (eps INSIDE the sqrt)
    mom = momentum * mom + lr * g / den                 (lr INSIDE the velocity)
    p   = p - mom

Where conventions differ (see the README's convention table):

* PyTorch puts eps outside the sqrt (``eps_in_sqrt=False``: ``den = sqrt(ms) + eps``)
  and lr outside the velocity (``lr_in_momentum=False``: ``buf = momentum*buf + g/den;
  p -= lr*buf``). With a constant lr the two momentum forms give the same trajectory;
  they differ as soon as lr changes.
* optax's ``nesterov=True`` applies the look-ahead ``p -= u + momentum * mom`` where
  ``u`` is this step's update term.
* When ``moment is None`` (momentum 0 and no velocity kept) the update is applied
  directly: ``p -= lr * g / den``. Paddle keeps the velocity even at momentum 0
  (it then equals the last update); the result for ``p`` is identical.
* ``decoupled_weight_decay=wd`` (Keras 3 ``weight_decay``, timm ``decoupled_decay``,
  AdamW's form) first shrinks the parameter: ``p *= 1 - lr * wd``; the gradient and
  the state do not see it. (Coupled L2 decay, ``g += wd * p``, is a regularizer
  applied by the optimizer before the kernel.)
* ``bias_correction_step=t`` (optax ``bias_correction=True``, t the 1-based count of
  this update) divides the moving averages by ``1 - rho**t`` inside the denominator
  only (the stored ``ms``/``mg`` stay uncorrected, as in optax).

Precision: the arithmetic runs in at least float32 (float64 state stays float64).
State in float16/bfloat16 is read into float32, updated, and written back rounded to
nearest; a float16/bfloat16 ``param`` is computed in float32 and rounded once.

The centered variance ``ms - mg*mg`` is clamped at 0 before eps is added; Paddle does
not clamp, which differs only where rounding makes the difference negative (there
Paddle can produce NaN for tiny eps; we do not).

Roundings. With ``float32_attrs`` (Paddle's op, the default) the averages are Paddle's CPU
kernel's expressions as written (``phi/kernels/impl/rmsprop_kernel_impl.h``): ``1 - rho``
computed in the compute type from the float32 attribute (``1 - float32(0.95)``, not
``float32(0.05)``), ``rho * ms`` and ``((1 - rho) * g) * g`` each rounded, then summed (no
fused multiply-add), likewise ``rho * mg + (1 - rho) * g``; with ``lr_in_momentum`` the
step is ``(lr * g) / den``. Against real Paddle 2.6/3.3 CPU runs (the shared reference
trajectories) the averages then agree bit for bit in every element and step, the
parameters in 96% of elements and the velocities in 87%, the rest by 1 or 2 ulp (before
these roundings: 40% of parameters and averages, up to 8 ulp apart): Paddle's CPU
kernel takes Eigen's vectorised square root, an approximate reciprocal square root refined
once (``EIGEN_FAST_MATH``), whose last bit depends on the processor, where this kernel
takes the correctly rounded one. Without ``float32_attrs`` (torch, TF, Keras, optax) the
averages are torch's ``addcmul_``/``add_(alpha=)`` (fused multiply-adds on CPU).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch

from .._grad_mode import recording, update_kernel
from .attrs import as_saved, one_minus, paddle_attrs

__all__ = [
    "RMSPropHyper",
    "plain_memory",
    "rmsprop_",
    "rmsprop_denominator",
    "rmsprop_graph_",
    "rmsprop_update_",
    "sqrt_rounded",
]


def plain_memory(t: torch.Tensor) -> bool:
    """Whether ``t``'s data is its own strided memory (a plain tensor, a Parameter or a
    subclass without ``__torch_dispatch__``). A ``__torch_dispatch__`` wrapper (DTensor,
    FSDP2's sharded parameters, fake or functional tensors) is not: only torch ops may
    touch it, never numpy or a kernel that reads raw addresses."""
    return getattr(type(t), "__torch_dispatch__", None) is torch._C._disabled_torch_dispatch_impl


def rmsprop_denominator(
    mean_square: torch.Tensor,
    mean_grad: torch.Tensor | None,
    *,
    epsilon: float,
    eps_in_sqrt: bool = True,
    bias_correction_step: int = 0,
) -> torch.Tensor:
    """``sqrt(ms [- mg*mg] + eps)`` or ``sqrt(ms [- mg*mg]) + eps`` as a new tensor.

    With ``bias_correction_step=t > 0`` the averages are first divided by ``1 - rho**t``
    (the caller passes them already corrected; see :func:`rmsprop_`).
    """
    if mean_grad is not None:
        var = torch.clamp_min(mean_square - mean_grad * mean_grad, 0.0)
    else:
        var = mean_square
    if eps_in_sqrt:
        return _sqrt(var + epsilon)
    return _sqrt(var) + epsilon


def _sqrt(x: torch.Tensor) -> torch.Tensor:
    """IEEE (correctly rounded) square root, as Paddle's Eigen kernels and torchfluid's
    fused kernels compute it. torch's vectorised CPU ``sqrt`` is one ulp off for ~15% of
    float32 inputs (and some float64 ones), so on CPU numpy's (SIMD, correctly rounded)
    computes it, into a new tensor; float16/bfloat16 go through float64 (exact: no double
    rounding from 53 to <= 24 bits). CUDA's ``sqrt`` is already correctly rounded.

    Tensors numpy must not read (tensor subclasses such as DTensor, and tensors that
    require grad, for ``differentiable`` steps) and code traced by ``torch.compile``
    (which turns ``np.sqrt`` into torch's ``sqrt``) take :func:`_sqrt_torch_ops`."""
    if x.device.type != "cpu":
        return torch.sqrt(x)
    if x.requires_grad or not plain_memory(x) or torch.compiler.is_compiling():
        return _sqrt_torch_ops(x)
    if x.dtype in (torch.float32, torch.float64):
        a = x.detach().numpy()
        return torch.from_numpy(np.sqrt(a, out=np.empty_like(a)))
    return torch.sqrt(x.double()).to(x.dtype)


sqrt_rounded = _sqrt  # the correctly rounded square root, for the other reference kernels


def _sqrt_(x: torch.Tensor) -> None:
    """:func:`_sqrt` in place, for a contiguous float32/float64 tensor (CPU: numpy's)."""
    if x.device.type != "cpu":
        x.sqrt_()
    elif not plain_memory(x) or torch.compiler.is_compiling():
        x.copy_(_sqrt_torch_ops(x))
    else:
        a = x.numpy()
        np.sqrt(a, out=a)


def _sqrt_torch_ops(x: torch.Tensor) -> torch.Tensor:
    """Correctly rounded sqrt from torch ops only (they dispatch through any subclass).

    float32 and narrower: ``sqrt`` in float64, rounded once (a float32 square root is at
    least 2^-50 (relative) away from a float32 rounding midpoint, more than float64
    ``sqrt``'s error of at most one float64 ulp, so the rounding is right). float64: one
    Newton correction with the exact residual ``fma(-r, r, x)`` (``addcmul`` is an fma on
    CPU), which moves a one-ulp-off root to the nearest one. Gradients flow through
    ``sqrt`` (the correction is detached)."""
    if x.dtype != torch.float64:
        return torch.sqrt(x.double()).to(x.dtype)
    r = torch.sqrt(x)
    rd = r.detach()
    fixed = rd + torch.addcmul(x.detach(), rd, rd, value=-1.0) / (2.0 * rd)
    ok = torch.isfinite(rd) & (rd > 0)
    return r + torch.where(ok, fixed - rd, torch.zeros_like(rd))


_LOW = (torch.float16, torch.bfloat16)


class RMSPropHyper(NamedTuple):
    """:func:`rmsprop_`'s keyword hyper-parameters as one record: the same names, defaults
    and meaning (``lr`` may be a 0-d tensor for :func:`rmsprop_graph_`, or one per parameter
    for :meth:`torchfluid.kernels.flat.FlatGroup.step`)."""

    lr: float | torch.Tensor | Sequence[float]
    rho: float
    epsilon: float
    momentum: float = 0.0
    eps_in_sqrt: bool = True
    lr_in_momentum: bool = True
    nesterov: bool = False
    decoupled_weight_decay: float = 0.0
    bias_correction_step: int = 0
    float32_attrs: bool = True

    def for_dtype(self, dtype: torch.dtype) -> RMSPropHyper:
        """The record a ``dtype`` update uses: with ``float32_attrs`` (Paddle's op attributes
        ``decay``, ``epsilon`` and ``momentum`` are float32) a float64 update takes ``rho``,
        ``epsilon`` and ``momentum`` rounded to float32 first, as Paddle's kernel casts its
        float attributes to the parameter's type; the learning rate, a tensor in Paddle, is
        not rounded. Narrower updates compute in float32, where the rounding is the
        arithmetic's own; without ``float32_attrs`` (torch, TF, Keras, optax) the values
        are used as given."""
        if not self.float32_attrs or dtype != torch.float64:
            return self
        rho, epsilon, momentum = paddle_attrs(dtype, self.rho, self.epsilon, self.momentum)
        return self._replace(rho=rho, epsilon=epsilon, momentum=momentum)

    @classmethod
    def from_mapping(cls, values: Mapping, **given) -> RMSPropHyper:
        """The record of the fields in ``given``, else in ``values`` (a param group, say:
        other keys are ignored, optional fields it lacks take their defaults)."""
        picked = {f: values[f] for f in cls._fields if f in values}
        return cls(**{**picked, **given})


@update_kernel
def rmsprop_(
    param: torch.Tensor,
    grad: torch.Tensor,
    mean_square: torch.Tensor,
    mean_grad: torch.Tensor | None = None,
    moment: torch.Tensor | None = None,
    *,
    lr: float,
    rho: float,
    epsilon: float,
    momentum: float = 0.0,
    eps_in_sqrt: bool = True,
    lr_in_momentum: bool = True,
    nesterov: bool = False,
    decoupled_weight_decay: float = 0.0,
    bias_correction_step: int = 0,
    float32_attrs: bool = True,
    scratch: torch.Tensor | None = None,
) -> None:
    """One RMSProp update of ``param`` and its state, in place.

    ``mean_grad`` is given iff the update is centered; ``moment`` is given iff a
    velocity is kept (momentum != 0, or Paddle's always-kept velocity). All state
    tensors have ``param``'s shape and one dtype; the arithmetic runs in that dtype
    promoted to at least float32 (so fp32 state over an fp16 parameter computes in
    fp32, and fp16/bf16 state is widened for the update and rounded back), and the
    result is cast back into ``param``.

    ``float32_attrs`` (Paddle's, the default): Paddle's ``rho``, ``epsilon`` and
    ``momentum`` are float32 op attributes, so float64 state uses them rounded to float32
    (:meth:`RMSPropHyper.for_dtype`); False uses them as given (torch, TF, Keras, optax).

    ``scratch``: a contiguous 1-D tensor of the state's dtype and device with at least
    ``param.numel()`` elements, sharing memory with none of the others; the update's
    intermediates (the averages' products, the denominator, the step) are written into it,
    and with ``lr_in_momentum`` Paddle's numerator ``lr * g`` into its second
    ``param.numel()`` elements when it has them. So with float32/float64 state,
    ``param``/``grad`` of that dtype and a scratch of ``2 * param.numel()`` elements nothing
    the size of the parameter is allocated (bias correction still makes one; a scratch of
    ``param.numel()`` makes the numerator with ``lr_in_momentum``). Its contents on entry are
    ignored and on return unspecified. Without it one is allocated for the call. The
    results are the same bit for bit either way.
    """
    hyper = RMSPropHyper(
        lr,
        rho,
        epsilon,
        momentum,
        eps_in_sqrt,
        lr_in_momentum,
        nesterov,
        decoupled_weight_decay,
        bias_correction_step,
        float32_attrs,
    )
    rmsprop_update_(param, grad, (mean_square, mean_grad, moment), hyper, scratch=scratch)


@update_kernel
def rmsprop_update_(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None],
    hyper: RMSPropHyper,
    *,
    scratch: torch.Tensor | None = None,
) -> None:
    """:func:`rmsprop_` with its state as ``(mean_square, mean_grad, moment)`` and its
    hyper-parameters as one record (float16/bfloat16 state ignores ``scratch``)."""
    hyper = hyper.for_dtype(state[0].dtype)
    if recording() or not all(plain_memory(t) for t in (param, grad, *state) if t is not None):
        rmsprop_graph_(param, grad, state, hyper)  # torch ops only: autograd records them, subclasses dispatch them
    elif state[0].dtype in _LOW:
        _in_float32(_rmsprop_scratch_, param, grad, state, hyper)
    else:
        _rmsprop_scratch_(param, grad, state, hyper, scratch)


def _in_float32(update, param, grad, state, hyper) -> None:
    """``update`` with float16/bfloat16 state read into float32 and written back rounded
    to nearest."""
    wide = [None if t is None else t.float() for t in state]
    update(param, grad, wide, hyper)
    for t, w in zip(state, wide, strict=True):
        if t is not None:
            t.copy_(w)


def _decay_and_average_(param, grad, mean_square, mean_grad, hyper: RMSPropHyper, work=None):
    """What both forms do first: the decoupled decay of the parameter, then the moving
    averages (``work``: a buffer of the state's shape for Paddle's products, else new
    tensors); returns ``(g, target)``, the gradient and the parameter in the state's dtype
    (``target`` is ``param`` itself when the dtypes agree)."""
    g = grad.to(mean_square.dtype)
    target = param if param.dtype == mean_square.dtype else param.to(mean_square.dtype)
    if hyper.decoupled_weight_decay:
        target.mul_(1.0 - hyper.lr * hyper.decoupled_weight_decay)
    if hyper.float32_attrs:
        # Paddle's CPU kernel: rho * ms + ((1 - rho) * g) * g and rho * mg + (1 - rho) * g, each
        # product rounded, then the sum (no fused multiply-add), 1 - rho in the compute type
        (one_minus_rho,) = one_minus(mean_square.dtype, hyper.rho)
        mean_square.mul_(hyper.rho).add_(_mul(g, one_minus_rho, work).mul_(g))
        if mean_grad is not None:
            mean_grad.mul_(hyper.rho).add_(_mul(g, one_minus_rho, work))
    else:  # torch.optim.RMSprop's ops (addcmul_ and add_ with alpha: fused multiply-adds on CPU)
        mean_square.mul_(hyper.rho).addcmul_(g, g, value=1.0 - hyper.rho)
        if mean_grad is not None:
            mean_grad.mul_(hyper.rho).add_(g, alpha=1.0 - hyper.rho)
    return g, target


def _mul(t: torch.Tensor, x, out: torch.Tensor | None) -> torch.Tensor:
    """``t * x`` into ``out`` (a new tensor without it)."""
    return t.mul(x) if out is None else torch.mul(t, x, out=out)


def _apply_(param, target, update) -> None:
    """``param -= update`` through ``target`` (rounded once into ``param`` when it is a copy)."""
    target.sub_(update)
    if target is not param:
        param.copy_(target)


def _rmsprop_scratch_(param, grad, state, hyper: RMSPropHyper, scratch=None) -> None:
    """The update for plain float32/float64 state, its intermediates in ``scratch``."""
    mean_square, mean_grad, moment = state
    lr, rho, epsilon, momentum = hyper.lr, hyper.rho, hyper.epsilon, hyper.momentum
    eps_in_sqrt, bias_correction_step = hyper.eps_in_sqrt, hyper.bias_correction_step
    n = mean_square.numel()
    if scratch is None:
        scratch = torch.empty(n, dtype=mean_square.dtype, device=mean_square.device)
    elif (
        scratch.dtype != mean_square.dtype
        or scratch.device != mean_square.device
        or scratch.dim() != 1
        or not scratch.is_contiguous()
        or scratch.numel() < n
    ):
        raise ValueError(
            f"scratch: {scratch.dtype} {tuple(scratch.shape)} on {scratch.device}; allowed: a "
            f"contiguous 1-D {mean_square.dtype} tensor on {mean_square.device} with at least "
            f"{n} elements"
        )
    s = scratch[:n].view(mean_square.shape)
    g, target = _decay_and_average_(param, grad, mean_square, mean_grad, hyper, s)
    # s = den = sqrt(var + eps) or sqrt(var) + eps, var = ms [- mg * mg] (bias-corrected)
    if bias_correction_step > 0:
        correction = 1.0 - rho**bias_correction_step
        if mean_grad is None:
            torch.div(mean_square, correction, out=s)
        else:
            torch.div(mean_grad, correction, out=s)
            s.mul_(s)
            torch.sub(mean_square / correction, s, out=s).clamp_min_(0.0)
    elif mean_grad is None:
        if eps_in_sqrt:
            torch.add(mean_square, epsilon, out=s)
        else:
            s.copy_(mean_square)
    else:
        torch.mul(mean_grad, mean_grad, out=s)
        torch.sub(mean_square, s, out=s).clamp_min_(0.0)
    if eps_in_sqrt and (mean_grad is not None or bias_correction_step > 0):
        s.add_(epsilon)
    _sqrt_(s)
    if not eps_in_sqrt:
        s.add_(epsilon)
    if hyper.lr_in_momentum:  # s = (lr * g) / den, Paddle's order; lr * g in the scratch's second half
        num = scratch[n : 2 * n].view(s.shape) if scratch.numel() >= 2 * n else None
        torch.div(_mul(g, lr, num), s, out=s)
    else:
        torch.div(g, s, out=s)  # s = u = g / den
    if moment is None:
        update = s if hyper.lr_in_momentum else s.mul_(lr)
    elif hyper.lr_in_momentum:
        moment.mul_(momentum).add_(s)
        update = moment if not hyper.nesterov else s.add_(moment, alpha=momentum)
    else:
        moment.mul_(momentum).add_(s)
        update = torch.mul(moment, lr, out=s) if not hyper.nesterov else s.add_(moment, alpha=momentum).mul_(lr)
    _apply_(param, target, update)


def rmsprop_graph_(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None],
    hyper: RMSPropHyper,
) -> None:
    """:func:`rmsprop_update_`'s maths from plain torch ops, in place, with no scratch
    buffer and no ``out=``: what autograd can record (``differentiable=True`` optimizers,
    under grad mode; ``param`` and the state must then be non-leaf tensors, as torch
    requires for in-place updates) and what tensor subclasses (DTensor) dispatch op by op.
    :func:`rmsprop_update_` sends subclasses here; the results equal it bit for bit on
    plain tensors. ``hyper.lr`` may be a 0-d tensor."""
    mean_square, mean_grad, moment = state
    if mean_square.dtype in _LOW:
        _in_float32(rmsprop_graph_, param, grad, state, hyper)
        return
    hyper = hyper.for_dtype(mean_square.dtype)
    lr, rho, momentum, nesterov = hyper.lr, hyper.rho, hyper.momentum, hyper.nesterov
    g, target = _decay_and_average_(param, grad, mean_square, mean_grad, hyper)
    ms_hat, mg_hat = as_saved(mean_square), None if mean_grad is None else as_saved(mean_grad)
    if hyper.bias_correction_step > 0:
        correction = 1.0 - rho**hyper.bias_correction_step
        ms_hat = mean_square / correction
        mg_hat = None if mean_grad is None else mean_grad / correction
    den = rmsprop_denominator(ms_hat, mg_hat, epsilon=hyper.epsilon, eps_in_sqrt=hyper.eps_in_sqrt)
    if hyper.lr_in_momentum:  # (lr * g) / den, Paddle's order
        step = (g * lr).div(den)
        if moment is None:
            update = step
        else:
            moment.mul_(momentum).add_(step)
            update = moment if not nesterov else step.add(moment, alpha=momentum)
    elif moment is None:
        update = g.div(den).mul_(lr)
    else:
        moment.mul_(momentum).add_(g.div(den))
        update = (as_saved(moment) if not nesterov else g.div(den).add_(moment, alpha=momentum)) * lr
    _apply_(param, target, update)
