"""Paddle's raw optimizer ops (``rmsprop``, ``sgd``, ``momentum``, ``adam``, ``adagrad``, ``adamax``, ``adadelta``,
``lamb`` of Paddle's operator library) and the gradient-clipping ops of Paddle's static clip graph (``squared_l2_norm``,
``clip``, ``clip_by_norm``; :mod:`torchfluid.static.clip` appends them).

These are the per-parameter ops Paddle's own op tests run with ``fluid.op.Operator`` on
scope values. They are registered as ``raw_rmsprop``, ``raw_sgd``, ``raw_momentum``, ``raw_adam``,
``raw_adagrad``, ``raw_adamax``, ``raw_adadelta`` and ``raw_lamb``:
the plain names belong to the optimizer's whole optimize section
(:mod:`torchfluid.static.optimize`), and :mod:`torchfluid.op` maps Paddle's names here.
Each op updates its state in place (``ParamOut`` is ``Param``, ``MomentOut`` is
``Moment``, ...) by calling the one reference kernel of :mod:`torchfluid.kernels`; no
maths is written here. Every input is checked before anything is written, so a bad
input leaves the state untouched.

``Grad`` is a dense tensor of ``Param``'s shape, or a :class:`SelectedRows` (Paddle's
sparse gradient: some rows of a ``[height, width]`` matrix, rows may repeat); each op's
docstring gives its rule for it, as Paddle's ``rmsprop_op.h``, ``sgd_op.h``, ``momentum_op.h``,
``adam_op.h``, ``adagrad_op.h``, ``lamb_op.h`` (``adamax`` and ``adadelta`` take a dense ``Grad`` only, as
Paddle's kernels).
"""

from __future__ import annotations

import math

import torch

from .._checks import check_int, check_number
from ..dtypes import dtype_name
from ..kernels.adadelta import adadelta_
from ..kernels.adagrad import adagrad_, adagrad_rows_
from ..kernels.adam import adam_
from ..kernels.adamax import adamax_
from ..kernels.attrs import paddle_attrs
from ..kernels.lamb import lamb_
from ..kernels.momentum import momentum_
from ..kernels.rmsprop import rmsprop_
from ..kernels.sgd import sgd_
from .registry import register

__all__ = [
    "SelectedRows",
    "raw_rmsprop",
    "raw_sgd",
    "raw_momentum",
    "raw_adam",
    "raw_adagrad",
    "raw_adamax",
    "raw_adadelta",
    "raw_lamb",
    "squared_l2_norm",
    "clip",
    "clip_by_norm",
]


class SelectedRows:
    """Paddle's sparse value: rows ``rows`` (int, may repeat, any order) of a
    ``[height, *value.shape[1:]]`` matrix, ``value[i]`` being row ``rows[i]``.

    The dense matrix it stands for has ``value[i]`` added into row ``rows[i]`` for every
    ``i`` in order (repeated rows summed) and zeros elsewhere (:meth:`to_dense`)."""

    def __init__(self, rows=(), height: int = 0, value: torch.Tensor | None = None):
        self.rows = [int(r) for r in rows]
        self.height = int(height)
        self.value = value

    @property
    def dtype(self):
        return None if self.value is None else self.value.dtype

    @property
    def dense_shape(self) -> list[int]:
        """``[height, *row shape]`` (the row shape is unknown until ``value`` is set)."""
        return [self.height] + ([] if self.value is None else list(self.value.shape[1:]))

    def check(self, what: str, shape) -> None:
        """Raise ValueError unless this is a complete sparse value of dense ``shape``."""
        shape = list(shape)
        if self.value is None:
            raise ValueError(f"{what}: the SelectedRows holds no value tensor (call get_tensor().set(...))")
        if self.value.dim() < 1 or self.value.shape[0] != len(self.rows):
            raise ValueError(
                f"{what}: the SelectedRows value has shape {list(self.value.shape)} but {len(self.rows)} rows; "
                "allowed: one value row per row index"
            )
        if self.dense_shape != shape:
            raise ValueError(
                f"{what}: the SelectedRows stands for shape {self.dense_shape} (height {self.height}), "
                f"allowed: the parameter's shape {shape}"
            )
        bad = [r for r in self.rows if not 0 <= r < self.height]
        if bad:
            raise ValueError(f"{what}: row index {bad[0]} is out of range; allowed: 0 <= row < height={self.height}")

    def row_index(self) -> dict[int, int]:
        """``{row: position in value}``, the last position of a repeated row (the map Paddle's
        ``SelectedRows::SyncIndex`` builds and ``AutoGrownIndex`` reads)."""
        return {r: i for i, r in enumerate(self.rows)}

    def _index(self) -> torch.Tensor:
        return torch.tensor(self.rows, dtype=torch.int64, device=self.value.device)

    def to_dense(self) -> torch.Tensor:
        """The dense matrix: zeros, with each ``value[i]`` added into row ``rows[i]`` in order."""
        out = torch.zeros(self.dense_shape, dtype=self.value.dtype, device=self.value.device)
        return out.index_add_(0, self._index(), self.value)

    def merged(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rows, values)``: the distinct rows in increasing order and each one's summed
        value (Paddle's ``MergeAdd``; the sums taken in entry order)."""
        rows = torch.unique(self._index(), sorted=True)
        return rows, self.to_dense().index_select(0, rows)

    def __repr__(self) -> str:
        shape = None if self.value is None else list(self.value.shape)
        return f"SelectedRows(height={self.height}, rows={len(self.rows)}, value={shape})"


# ---------------------------------------------------------------- checks (before any write)


def _check_state(op, slot, t, param):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{op}: input {slot} must hold a dense tensor, got {type(t).__name__}")
    if tuple(t.shape) != tuple(param.shape) or t.dtype != param.dtype or t.device != param.device:
        raise ValueError(
            f"{op}: input {slot} is {dtype_name(t.dtype)} {list(t.shape)} on {t.device}; allowed: Param's "
            f"{dtype_name(param.dtype)} {list(param.shape)} on {param.device}"
        )


def _check_param(op, param):
    if not isinstance(param, torch.Tensor) or not param.is_floating_point():
        what = type(param).__name__ if not isinstance(param, torch.Tensor) else str(param.dtype)
        raise TypeError(f"{op}: input Param must hold a floating-point dense tensor, got {what}")


def _check_grad(op, grad, param):
    if isinstance(grad, SelectedRows):
        grad.check(f"{op}: input Grad", param.shape)
        if grad.value.dtype != param.dtype or grad.value.device != param.device:
            raise ValueError(
                f"{op}: input Grad (SelectedRows) is {dtype_name(grad.value.dtype)} on {grad.value.device}; "
                f"allowed: Param's {dtype_name(param.dtype)} on {param.device}"
            )
        return
    if not isinstance(grad, torch.Tensor):
        raise TypeError(f"{op}: input Grad must hold a dense tensor or SelectedRows, got {type(grad).__name__}")
    _check_state(op, "Grad", grad, param)


def _check_inputs(op, numbers, flags, param, grad, states):
    """The checks a stateful op starts with, in order: the attributes ``numbers`` (name ->
    ``(value, check_number bounds)``) are finite real numbers within their bounds, returned as
    floats in order; the attributes ``flags`` are bools; ``param`` is a floating-point tensor,
    ``grad`` its gradient, and ``states`` (slot -> value; an absent optional slot is left out)
    tensors of ``param``'s shape, dtype and device."""
    floats = [check_number(f"{op}: attribute {name}", v, **bounds) for name, (v, bounds) in numbers.items()]
    for name, v in flags.items():
        if not isinstance(v, bool):
            raise TypeError(f"{op}: attribute {name} must be a bool, got {v!r}")
    _check_param(op, param)
    _check_grad(op, grad, param)
    for slot, t in states.items():
        _check_state(op, slot, t, param)
    return floats


def _scalar(op, t, slot="LearningRate", below_one=False, positive=False):
    """The value of the 1-element floating-point tensor ``t`` of input ``slot``, which must be
    finite (and in [0, 1) if ``below_one``: a beta or a beta power; > 0 if ``positive``)."""
    if not isinstance(t, torch.Tensor) or t.numel() != 1 or not t.is_floating_point():
        what = type(t).__name__ if not isinstance(t, torch.Tensor) else f"{t.dtype} {list(t.shape)}"
        raise ValueError(f"{op}: input {slot} must hold a 1-element floating-point tensor, got {what}")
    v = float(t.reshape(-1)[0])
    if not math.isfinite(v) or (below_one and not 0.0 <= v < 1.0) or (positive and not v > 0.0):
        allowed = " in [0, 1)" if below_one else " > 0" if positive else ""
        raise ValueError(f"{op}: input {slot} holds {v!r}; allowed: a finite value{allowed}")
    return v


# ---------------------------------------------------------------- rmsprop


@register(
    "raw_rmsprop",
    ["ParamOut", "MeanSquareOut", "MomentOut", "MeanGradOut"],
    inplace=True,
    dispensable=["MeanGrad"],
    required_when={"MeanGrad": "centered"},
)
def raw_rmsprop(
    Param, Grad, MeanSquare, Moment, MeanGrad, LearningRate, *, epsilon=1e-10, decay=0.9, momentum=0.0, centered=False
):
    """Paddle's ``rmsprop`` op, in place (``rho = decay``), by :func:`~torchfluid.kernels.rmsprop.rmsprop_`::

        ms  = decay * ms + (1 - decay) * g * g
        mg  = decay * mg + (1 - decay) * g                  (centered only)
        mom = momentum * mom + lr * g / sqrt(ms [- mg * mg] + epsilon)
        p   = p - mom

    A SelectedRows ``Grad`` is merged (duplicate rows summed) and EVERY row is updated,
    absent rows with gradient 0 (their mean square and moment decay, the parameter moves
    by the decayed moment). ``MeanGrad`` is needed (and updated) iff ``centered`` (when given
    uncentered it is checked and left as it is).

    Allowed attributes: ``epsilon >= 0``, ``0 <= decay < 1``, ``momentum >= 0`` (finite
    real numbers, not bools), ``centered`` a bool; ``LearningRate`` a finite 1-element
    floating-point tensor."""
    op = "rmsprop"
    numbers = {
        "epsilon": (epsilon, {"lo": 0.0}),
        "decay": (decay, {"lo": 0.0, "hi": 1.0, "hi_open": True}),
        "momentum": (momentum, {"lo": 0.0}),
    }
    states = dict(MeanSquare=MeanSquare, Moment=Moment, **({} if MeanGrad is None else {"MeanGrad": MeanGrad}))
    epsilon, decay, momentum = _check_inputs(op, numbers, {"centered": centered}, Param, Grad, states)
    if centered and MeanGrad is None:
        raise ValueError(f"{op}: centered=True needs the MeanGrad and MeanGradOut slots (the mean gradient)")
    lr = _scalar(op, LearningRate)
    g = Grad.to_dense() if isinstance(Grad, SelectedRows) else Grad
    rmsprop_(
        Param,
        g,
        MeanSquare,
        MeanGrad if centered else None,
        Moment,
        lr=lr,
        rho=decay,
        epsilon=epsilon,
        momentum=momentum,
    )


# ---------------------------------------------------------------- sgd


@register("raw_sgd", ["ParamOut"], inplace=True)
def raw_sgd(Param, LearningRate, Grad):
    """Paddle's ``sgd`` op, in place, by :func:`~torchfluid.kernels.sgd.sgd_`: ``p = p - lr * g``.

    A SelectedRows ``Grad`` updates only its rows, ``p[rows[i]] -= lr * value[i]`` for
    each entry in order (a repeated row once per entry, as Paddle's loop does).

    A SelectedRows ``Param`` (a table holding some rows of a larger matrix, Paddle's
    distributed lookup table) takes a SelectedRows ``Grad`` only, whose value rows have the
    shape of ``Param``'s value rows: for each entry ``i`` in order, the value row of
    ``Param`` that holds row ``Grad.rows[i]`` moves, ``value[k] -= lr * g.value[i]`` with
    ``k`` the last position of that row in ``Param.rows`` (the index Paddle's ``sync_index``
    builds). Every row of ``Grad`` must be one of ``Param``'s rows ("id should be in the
    table"); ``Grad``'s height is not compared with ``Param``'s (as in Paddle). A ``Grad``
    with no rows changes nothing.

    ``LearningRate`` must be a finite 1-element floating-point tensor. Everything is
    checked before anything is written."""
    op = "sgd"
    if isinstance(Param, SelectedRows):
        positions = _check_table_grad(op, Param, Grad)
        lr = _scalar(op, LearningRate)
        for i, k in enumerate(positions):  # Paddle's loop: one update per entry, in order
            sgd_(Param.value[k], Grad.value[i], lr=lr)
        return
    _check_param(op, Param)
    _check_grad(op, Grad, Param)
    lr = _scalar(op, LearningRate)
    if not isinstance(Grad, SelectedRows):
        sgd_(Param, Grad, lr=lr)
        return
    for i, r in enumerate(Grad.rows):  # Paddle's loop: one update per entry, in order (on a view of the row)
        sgd_(Param[r], Grad.value[i], lr=lr)


def _check_table_grad(op, table: SelectedRows, grad) -> list[int]:
    """For a SelectedRows ``Param`` (``table``) and its gradient: the position in
    ``table.value`` of each of ``grad``'s rows, in entry order, after checking both."""
    if table.value is None or not table.value.is_floating_point() or table.value.dim() < 1:
        what = "no value" if table.value is None else f"a {dtype_name(table.value.dtype)} value"
        raise TypeError(f"{op}: input Param (SelectedRows) holds {what}; allowed: a floating-point value tensor")
    table.check(f"{op}: input Param", table.dense_shape)  # one value row per row index, indices in range
    if not isinstance(grad, SelectedRows):
        raise TypeError(
            f"{op}: input Param is a SelectedRows, so Grad must be a SelectedRows too, got {type(grad).__name__}"
        )
    row_shape = list(table.value.shape[1:])
    grad.check(f"{op}: input Grad", [grad.height, *row_shape])
    if grad.value.dtype != table.value.dtype or grad.value.device != table.value.device:
        raise ValueError(
            f"{op}: input Grad (SelectedRows) is {dtype_name(grad.value.dtype)} on {grad.value.device}; "
            f"allowed: Param's {dtype_name(table.value.dtype)} on {table.value.device}"
        )
    index = table.row_index()
    missing = [r for r in grad.rows if r not in index]
    if missing:
        raise ValueError(
            f"{op}: row {missing[0]} of Grad is not one of Param's rows {table.rows}; allowed: rows the "
            "SelectedRows Param holds (Paddle: id should be in the table)"
        )
    return [index[r] for r in grad.rows]


# ---------------------------------------------------------------- momentum

_REGULARIZATION_METHODS = ("", "l2_decay")


@register("raw_momentum", ["ParamOut", "VelocityOut"], inplace=True)
def raw_momentum(
    Param,
    Grad,
    Velocity,
    LearningRate,
    *,
    mu=None,
    use_nesterov=False,
    regularization_method="",
    regularization_coeff=0.0,
    multi_precision=False,
    rescale_grad=1.0,
):
    """Paddle's ``momentum`` op, in place, by :func:`~torchfluid.kernels.momentum.momentum_`::

        g        = g * rescale_grad
        g        = p * regularization_coeff + g        (regularization_method='l2_decay' only)
        velocity = velocity * mu + g
        p        = p - lr * velocity                   (use_nesterov: p - (g + velocity * mu) * lr)

    A SelectedRows ``Grad`` is merged (duplicate rows summed) and EVERY row is updated,
    absent rows with gradient 0 (their velocity decays by ``mu`` and still moves the
    parameter; the L2 term reaches every row), as Paddle's ``SparseMomentumFunctor``.
    ``rescale_grad`` scales the gradient before the L2 term, as Paddle's GPU kernel and its
    documentation say (Paddle's CPU kernel skips it for a dense ``Grad``).

    Allowed attributes: ``mu`` (required) and ``regularization_coeff`` finite real numbers
    >= 0, ``rescale_grad`` a finite real number, ``use_nesterov`` a bool,
    ``regularization_method`` ``''`` or ``'l2_decay'``, ``multi_precision`` False (Paddle's
    optional ``MasterParam``/``MasterParamOut`` slots are not supported); ``LearningRate`` a
    finite 1-element floating-point tensor."""
    op = "momentum"
    if mu is None:
        raise ValueError(f"{op}: attribute mu is missing; allowed: a finite real number >= 0 (the momentum)")
    numbers = {
        "mu": (mu, {"lo": 0.0}),
        "regularization_coeff": (regularization_coeff, {"lo": 0.0}),
        "rescale_grad": (rescale_grad, {}),
    }
    flags = {"use_nesterov": use_nesterov, "multi_precision": multi_precision}
    mu, coeff, rescale = _check_inputs(op, numbers, flags, Param, Grad, {"Velocity": Velocity})
    if regularization_method not in _REGULARIZATION_METHODS:
        raise ValueError(
            f"{op}: attribute regularization_method is {regularization_method!r}; allowed: '' or 'l2_decay'"
        )
    if multi_precision:
        raise ValueError(
            f"{op}: attribute multi_precision=True needs the MasterParam slots, which torchfluid's raw op does not "
            "support; allowed: False (the optimizers' multi_precision=True keeps float32 master weights)"
        )
    lr = _scalar(op, LearningRate)
    g = Grad.to_dense() if isinstance(Grad, SelectedRows) else Grad
    momentum_(
        Param,
        g,
        Velocity,
        lr=lr,
        mu=mu,
        use_nesterov=use_nesterov,
        rescale_grad=rescale,
        l2_coeff=coeff if regularization_method == "l2_decay" else 0.0,
    )


# ---------------------------------------------------------------- adam


@register(
    "raw_adam",
    ["ParamOut", "Moment1Out", "Moment2Out", "Beta1PowOut", "Beta2PowOut"],
    inplace=True,
)
def raw_adam(
    Param,
    Grad,
    LearningRate,
    Moment1,
    Moment2,
    Beta1Pow,
    Beta2Pow,
    Beta1Tensor=None,
    Beta2Tensor=None,
    EpsilonTensor=None,
    *,
    beta1=0.9,
    beta2=0.999,
    epsilon=1e-8,
    lazy_mode=False,
    min_row_size_to_use_multithread=1000,
):
    """Paddle's ``adam`` op, in place, by :func:`~torchfluid.kernels.adam.adam_`::

        m1 = beta1 * m1 + (1 - beta1) * g;  m2 = beta2 * m2 + (1 - beta2) * g * g
        p  = p - lr * (sqrt(1 - beta2_pow) / (1 - beta1_pow)) * (m1 / (sqrt(m2) + epsilon * sqrt(1 - beta2_pow)))
        beta1_pow *= beta1;  beta2_pow *= beta2

    ``Beta1Tensor`` / ``Beta2Tensor`` (Paddle 2.0's ``adam_op``) and ``EpsilonTensor``
    (Paddle 2.1's), when given, are 1-element floating-point tensors whose value replaces
    the attribute of that name for this run (the attribute is then not used): that is how a
    program feeds a beta that changes between runs.

    A SelectedRows ``Grad`` is merged (duplicate rows summed); ``lazy_mode=False``
    updates every row (gradient 0 where absent: ``m1 = beta1 * m1``, ``m2 = beta2 * m2``
    and the parameter still moves), ``lazy_mode=True`` only the merged rows (and their
    moments), as Paddle's ``SparseAdamFunctor``; the beta powers advance once per run either way.
    A SelectedRows ``Grad`` with no rows changes nothing (Paddle's kernel returns at once).
    ``min_row_size_to_use_multithread`` (an int >= 0) is accepted and has no effect (a CPU
    threading hint). Allowed: ``0 <= beta1, beta2 < 1``, ``epsilon > 0`` (finite real
    numbers, not bools; the same for the tensors' values), ``lazy_mode`` a bool;
    ``LearningRate`` a finite 1-element floating-point tensor, ``Beta1Pow``/``Beta2Pow``
    1-element floating-point tensors in [0, 1)."""
    op = "adam"
    unit = {"lo": 0.0, "hi": 1.0, "hi_open": True}
    numbers = {"beta1": (beta1, unit), "beta2": (beta2, unit), "epsilon": (epsilon, {"lo": 0.0, "lo_open": True})}
    states = {"Moment1": Moment1, "Moment2": Moment2}
    beta1, beta2, epsilon = _check_inputs(op, numbers, {"lazy_mode": lazy_mode}, Param, Grad, states)
    check_int(f"{op}: attribute min_row_size_to_use_multithread", min_row_size_to_use_multithread, lo=0)
    for slot, t in (("Beta1Pow", Beta1Pow), ("Beta2Pow", Beta2Pow)):
        _scalar(op, t, slot, below_one=True)
    if Beta1Tensor is not None:
        beta1 = _scalar(op, Beta1Tensor, "Beta1Tensor", below_one=True)
    if Beta2Tensor is not None:
        beta2 = _scalar(op, Beta2Tensor, "Beta2Tensor", below_one=True)
    if EpsilonTensor is not None:
        epsilon = _scalar(op, EpsilonTensor, "EpsilonTensor", positive=True)
    lr = _scalar(op, LearningRate)
    kw = {"lr": lr, "beta1": beta1, "beta2": beta2, "epsilon": epsilon}
    if not isinstance(Grad, SelectedRows):
        # a 0-d parameter runs as its 1-element view (the kernel's beta powers are [1])
        p, g, m1, m2 = (t.view(1) if Param.dim() == 0 else t for t in (Param, Grad, Moment1, Moment2))
        adam_(p, g, m1, m2, Beta1Pow, Beta2Pow, **kw)
        return
    if not Grad.rows:  # Paddle's kernel returns at once: nothing moves, not even the beta powers
        return
    if not lazy_mode:
        adam_(Param, Grad.to_dense(), Moment1, Moment2, Beta1Pow, Beta2Pow, **kw)
        return
    rows, values = Grad.merged()
    p, m1, m2 = (t.index_select(0, rows) for t in (Param, Moment1, Moment2))
    adam_(p, values, m1, m2, Beta1Pow, Beta2Pow, **kw)
    for t, part in ((Param, p), (Moment1, m1), (Moment2, m2)):
        t.index_copy_(0, rows, part)


# ---------------------------------------------------------------- adagrad


@register("raw_adagrad", ["ParamOut", "MomentOut"], inplace=True)
def raw_adagrad(Param, Grad, Moment, LearningRate, *, epsilon=1e-6):
    """Paddle's ``adagrad`` op, in place, by :func:`~torchfluid.kernels.adagrad.adagrad_`::

        moment = moment + g * g
        p      = p - (lr * g) / (sqrt(moment) + epsilon)

    A SelectedRows ``Grad`` is merged (duplicate rows summed) and ONLY the merged rows of
    ``Moment`` and ``Param`` are updated (Paddle's ``SparseAdagradFunctor``); the other
    rows keep their values. Allowed: ``epsilon > 0`` (a finite real number, not a bool);
    ``LearningRate`` a finite 1-element floating-point tensor. Paddle's optional
    ``MasterParam`` slot and ``multi_precision`` attribute are not supported."""
    op = "adagrad"
    numbers = {"epsilon": (epsilon, {"lo": 0.0, "lo_open": True})}
    (epsilon,) = _check_inputs(op, numbers, {}, Param, Grad, {"Moment": Moment})
    lr = _scalar(op, LearningRate)
    if not isinstance(Grad, SelectedRows):
        adagrad_(Param, Grad, Moment, lr=lr, epsilon=epsilon)
        return
    rows, values = Grad.merged()
    adagrad_rows_(Param, rows, values, Moment, lr=lr, epsilon=epsilon)


# ---------------------------------------------------------------- adamax


def _dense_grad_only(op, grad):
    if isinstance(grad, SelectedRows):
        raise ValueError(
            f"{op}: input Grad is a SelectedRows; allowed: a dense tensor (Paddle's {op} kernel takes a dense "
            "gradient only)"
        )


@register(
    "raw_adamax",
    ["ParamOut", "MomentOut", "InfNormOut"],
    inplace=True,
)
def raw_adamax(Param, Grad, LearningRate, Moment, InfNorm, Beta1Pow, *, beta1=0.9, beta2=0.999, epsilon=1e-8):
    """Paddle's ``adamax`` op, in place, by :func:`~torchfluid.kernels.adamax.adamax_`::

        moment   = beta1 * moment + (1 - beta1) * g
        inf_norm = max(|g|, beta2 * inf_norm + epsilon)
        p        = p - lr / (1 - beta1_pow) * moment / inf_norm

    ``Beta1Pow`` is read, not advanced: Paddle's op has no ``Beta1PowOut`` (its optimizer
    appends a ``scale`` op for that). ``Grad`` must be dense (Paddle's kernel takes no
    SelectedRows). Allowed: ``0 <= beta1, beta2 < 1``, ``epsilon > 0`` (finite real numbers,
    not bools); ``LearningRate`` a finite 1-element floating-point tensor, ``Beta1Pow`` a
    1-element floating-point tensor in [0, 1] (1, the power before any step, makes the step
    infinite, ``lr / 0``, as in Paddle's kernel, whose op test starts from it)."""
    op = "adamax"
    unit = {"lo": 0.0, "hi": 1.0, "hi_open": True}
    numbers = {"beta1": (beta1, unit), "beta2": (beta2, unit), "epsilon": (epsilon, {"lo": 0.0, "lo_open": True})}
    states = {"Moment": Moment, "InfNorm": InfNorm}
    beta1, beta2, epsilon = _check_inputs(op, numbers, {}, Param, Grad, states)
    _dense_grad_only(op, Grad)
    b1p = _scalar(op, Beta1Pow, "Beta1Pow")
    if not 0.0 <= b1p <= 1.0:
        raise ValueError(f"{op}: input Beta1Pow holds {b1p!r}; allowed: a finite value in [0, 1]")
    lr = _scalar(op, LearningRate)
    beta1_pow = Beta1Pow.detach().clone().reshape(1)  # the kernel advances its power: Paddle's op does not
    adamax_(Param, Grad, Moment, InfNorm, beta1_pow, lr=lr, beta1=beta1, beta2=beta2, epsilon=epsilon)


# ---------------------------------------------------------------- adadelta


@register(
    "raw_adadelta",
    ["ParamOut", "AvgSquaredGradOut", "AvgSquaredUpdateOut"],
    inplace=True,
)
def raw_adadelta(Param, Grad, AvgSquaredGrad, AvgSquaredUpdate, LearningRate=None, *, rho=0.95, epsilon=1e-6):
    """Paddle's ``adadelta`` op, in place, by :func:`~torchfluid.kernels.adadelta.adadelta_`::

        avg_sq_grad   = rho * avg_sq_grad + (1 - rho) * g * g
        update        = -(sqrt(avg_sq_update + epsilon) / sqrt(avg_sq_grad + epsilon)) * g
        p             = p + lr * update
        avg_sq_update = rho * avg_sq_update + (1 - rho) * update * update

    ``LearningRate`` is optional: the op of Paddle's 2.0-2.4 op tests has no such input and
    moves the parameter by ``update`` itself (``lr = 1``); given (the slot of Paddle's later
    op), it is a finite 1-element floating-point tensor. ``Grad`` must be dense (Paddle's kernel takes no
    SelectedRows). Allowed: ``0 <= rho <= 1``, ``epsilon > 0`` (finite real numbers, not bools)."""
    op = "adadelta"
    numbers = {"rho": (rho, {"lo": 0.0, "hi": 1.0}), "epsilon": (epsilon, {"lo": 0.0, "lo_open": True})}
    states = {"AvgSquaredGrad": AvgSquaredGrad, "AvgSquaredUpdate": AvgSquaredUpdate}
    rho, epsilon = _check_inputs(op, numbers, {}, Param, Grad, states)
    _dense_grad_only(op, Grad)
    lr = 1.0 if LearningRate is None else _scalar(op, LearningRate)
    adadelta_(Param, Grad, AvgSquaredGrad, AvgSquaredUpdate, lr=lr, rho=rho, epsilon=epsilon)


# ---------------------------------------------------------------- lamb


@register(
    "raw_lamb",
    ["ParamOut", "Moment1Out", "Moment2Out", "Beta1PowOut", "Beta2PowOut"],
    inplace=True,
)
def raw_lamb(
    Param,
    Grad,
    LearningRate,
    Moment1,
    Moment2,
    Beta1Pow,
    Beta2Pow,
    SkipUpdate=None,
    *,
    weight_decay=None,
    beta1=0.9,
    beta2=0.999,
    epsilon=1e-6,
    multi_precision=False,
    always_adapt=False,
):
    """Paddle's ``lamb`` op, in place, by :func:`~torchfluid.kernels.lamb.lamb_`::

        m1 = beta1 * m1 + (1 - beta1) * g;  m2 = beta2 * m2 + (1 - beta2) * g * g
        r  = (m1 / (1 - beta1_pow)) / (sqrt(m2 / (1 - beta2_pow)) + epsilon) + weight_decay * p
        p  = p - lr * (||p|| / ||r|| if both norms are > 0 else 1) * r
        beta1_pow *= beta1;  beta2_pow *= beta2

    (the norms over the whole parameter, before the update; with ``weight_decay`` 0 none is
    taken and the ratio is 1 unless the ``always_adapt`` attribute is true, as Paddle's
    kernel). A SelectedRows ``Grad`` is
    merged (duplicate rows summed) and EVERY row is updated, absent rows with gradient 0,
    as Paddle's ``SparseLambMomentREGUpdateFunctor``. ``SkipUpdate`` (Paddle 2.3's optional
    slot), when given and true, leaves everything as it is (Paddle's kernel copies its
    inputs to its outputs): a 1-element bool tensor.

    Allowed attributes: ``weight_decay`` (required, as Paddle's attribute has no default) a
    finite real number >= 0, ``0 <= beta1, beta2 < 1``, ``epsilon > 0`` (finite real
    numbers, not bools), ``multi_precision`` False (Paddle's optional ``MasterParam`` /
    ``MasterParamOut`` slots are not supported), ``always_adapt`` a bool; ``LearningRate`` a finite 1-element
    floating-point tensor, ``Beta1Pow``/``Beta2Pow`` 1-element floating-point tensors in [0, 1)."""
    op = "lamb"
    if weight_decay is None:
        raise ValueError(f"{op}: attribute weight_decay is missing; allowed: a finite real number >= 0")
    unit = {"lo": 0.0, "hi": 1.0, "hi_open": True}
    numbers = {
        "weight_decay": (weight_decay, {"lo": 0.0}),
        "beta1": (beta1, unit),
        "beta2": (beta2, unit),
        "epsilon": (epsilon, {"lo": 0.0, "lo_open": True}),
    }
    states = {"Moment1": Moment1, "Moment2": Moment2}
    flags = {"multi_precision": multi_precision, "always_adapt": always_adapt}
    weight_decay, beta1, beta2, epsilon = _check_inputs(op, numbers, flags, Param, Grad, states)
    if multi_precision:
        raise ValueError(
            f"{op}: attribute multi_precision=True needs the MasterParam slots, which torchfluid's raw op does not "
            "support; allowed: False (the optimizers' multi_precision=True keeps float32 master weights)"
        )
    for slot, t in (("Beta1Pow", Beta1Pow), ("Beta2Pow", Beta2Pow)):
        _scalar(op, t, slot, below_one=True)
    lr = _scalar(op, LearningRate)
    if SkipUpdate is not None:
        if not isinstance(SkipUpdate, torch.Tensor) or SkipUpdate.numel() != 1 or SkipUpdate.dtype != torch.bool:
            what = type(SkipUpdate).__name__ if not isinstance(SkipUpdate, torch.Tensor) else str(SkipUpdate.dtype)
            raise ValueError(f"{op}: input SkipUpdate must hold a 1-element bool tensor, got {what}")
        if bool(SkipUpdate.reshape(-1)[0]):
            return
    g = Grad.to_dense() if isinstance(Grad, SelectedRows) else Grad
    lamb_(
        Param,
        g,
        Moment1,
        Moment2,
        Beta1Pow,
        Beta2Pow,
        lr=lr,
        weight_decay=weight_decay,
        beta1=beta1,
        beta2=beta2,
        epsilon=epsilon,
        always_adapt=bool(always_adapt),
    )


# ---------------------------------------------------------------- gradient-clipping ops


def _squared_l2_norm_grad(X, Out, dOut, need=(True,)):
    return (2.0 * X * dOut.reshape(()),)


@register("squared_l2_norm", ["Out"], grad=_squared_l2_norm_grad)
def squared_l2_norm(X):
    """Paddle's ``squared_l2_norm``: ``sum(x * x)`` as a ``[1]`` tensor, computed in X's
    dtype (each square rounded, then summed: float32 sums for float32 X, as Paddle's
    ``x.square().sum()``)."""
    return torch.sum(X * X).reshape(1)


def _clip_grad(X, Out, dOut, *, min, max, need=(True,)):  # noqa: A002 - Paddle's attribute names
    lo, hi = paddle_attrs(X.dtype, min, max)
    return (dOut * ((X > lo) & (X < hi)).to(dOut.dtype),)


@register("clip", ["Out"], grad=_clip_grad)
def clip(X, *, min, max):  # noqa: A002 - Paddle's attribute names
    """Paddle's ``clip``: ``min`` where ``x < min``, ``max`` where ``x > max``, else ``x``
    (NaN stays NaN); its gradient passes where ``min < x < max``. ``min``/``max`` are
    float32 attributes: a float64 ``X`` is clamped to their float32 values, as Paddle's kernel."""
    lo, hi = paddle_attrs(X.dtype, min, max)
    return torch.clamp(X, lo, hi)


@register("clip_by_norm", ["Out"])
def clip_by_norm(X, *, max_norm):
    """Paddle's ``clip_by_norm``: ``n = sqrt(sum(x * x))`` (in X's dtype; float32 for
    float16/bfloat16 X, as Paddle's GPU kernel), ``scale = 1`` if ``n <= max_norm`` else
    ``max_norm / (n + e)`` with ``e = 1e-6`` when ``n <= 1e-30`` and 0 otherwise;
    ``out = x * scale`` (scale rounded to X's dtype)."""
    wide = X.float() if X.dtype in (torch.float16, torch.bfloat16) else X
    n = torch.sqrt(torch.sum(wide * wide))
    eps = (n <= 1e-30).to(n.dtype) * 1e-6
    scale = torch.where(n <= max_norm, torch.ones_like(n), max_norm / (n + eps))
    return X * scale.to(X.dtype)
