"""Paddle's Adagrad kernel (``adagrad`` op, ``adagrad_op.h``), pure and in place.

Per element, with the moment starting at ``initial_accumulator_value`` (0 by default)::

    moment = moment + g * g
    p      = p - (lr * g) / (sqrt(moment) + epsilon)

epsilon sits OUTSIDE the square root and the moment is the plain running sum of squared
gradients (no decay). Each step is computed in the moment's dtype with Paddle's roundings:
``g * g`` rounded, then added; ``lr * g`` rounded, then divided by ``sqrt(moment) +
epsilon`` (``lr`` and ``epsilon`` rounded to that dtype, as Paddle's float32 learning-rate
tensor and ``static_cast<T>(epsilon)``). The square root is correctly rounded, as Eigen's
(torch's vectorised CPU ``sqrt`` is not): the denominator is
:func:`~torchfluid.kernels.rmsprop.rmsprop_denominator` with eps outside the sqrt.

Paddle's sparse rule (``SparseAdagradFunctor``) -- a row-sparse gradient is merged (its
duplicate rows summed) and ONLY the merged rows of ``moment`` and ``p`` change -- is
:func:`adagrad_rows_`.

Where ``torch.optim.Adagrad`` differs:

* ``lr_decay``: torch divides the learning rate by ``1 + (t - 1) * lr_decay`` at step
  ``t`` (a per-parameter step count it keeps); Paddle has no such option and keeps no step
  count. torchfluid's ``Adagrad(lr_decay=...)`` passes this kernel the decayed rate, with
  a ``step`` record kept only while ``lr_decay`` is not 0
  (:class:`~torchfluid.optimizer.adagrad.AdagradRule`);
* torch's defaults are ``eps=1e-10`` and ``lr=0.01`` (Paddle: ``epsilon=1e-6`` and no
  default learning rate); eps is outside the sqrt in both and the accumulator starts at
  ``initial_accumulator_value`` in both (TensorFlow/Keras start it at 0.1, and TF1 has
  no eps);
* torch rounds the step as ``lr * (g / (sqrt(moment) + eps))`` (``addcdiv``), Paddle as
  ``(lr * g) / (sqrt(moment) + eps)``: equal maths, a last-bit difference at times;
* torch's ``weight_decay`` is coupled L2 (``g + wd * p``), as Paddle's ``L2Decay``.
"""

from __future__ import annotations

import torch

from .._grad_mode import update_kernel
from .attrs import paddle_attrs, subtract_
from .rmsprop import rmsprop_denominator
from .rows import update_rows_

__all__ = ["adagrad_", "adagrad_rows_"]


@update_kernel
def adagrad_(
    param: torch.Tensor,
    grad: torch.Tensor,
    moment: torch.Tensor,
    *,
    lr: float,
    epsilon: float = 1e-6,
) -> None:
    """One Adagrad update in place: ``moment += g * g``; ``param -= (lr * g) / (sqrt(moment) + epsilon)``.

    ``grad`` is dense, of ``param``'s shape; ``moment`` holds the running sum (float32 for a
    float16/bfloat16 ``param``: the step is computed in the moment's dtype and the result
    rounded once into ``param``). ``epsilon`` is Paddle's float32 attribute: a float64 update
    uses it rounded to float32 (:func:`~torchfluid.kernels.attrs.paddle_attrs`)."""
    (epsilon,) = paddle_attrs(moment.dtype, epsilon)
    g = grad.to(moment.dtype)
    moment.add_(g * g)  # g * g rounded first, as Paddle's Eigen expression (never fused)
    den = rmsprop_denominator(moment, None, epsilon=epsilon, eps_in_sqrt=False)  # sqrt(moment) + epsilon
    update = g.mul(lr).div_(den)
    subtract_(param, update)


@update_kernel
def adagrad_rows_(
    param: torch.Tensor,
    rows: torch.Tensor,
    values: torch.Tensor,
    moment: torch.Tensor,
    *,
    lr: float,
    epsilon: float = 1e-6,
) -> None:
    """Paddle's sparse Adagrad: ``rows`` (int64, distinct) of ``param`` and ``moment`` get
    :func:`adagrad_` with gradient rows ``values`` (``values[i]`` is row ``rows[i]``, the
    merged gradient); every other row is left exactly as it is."""
    update_rows_(rows, (param, moment), lambda p, m: adagrad_(p, values, m, lr=lr, epsilon=epsilon))
