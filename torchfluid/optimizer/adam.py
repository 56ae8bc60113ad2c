"""``AdamOptimizer`` (alias ``Adam``): Paddle's Adam (see :mod:`torchfluid.kernels.adam`).

Accumulators: ``moment1``, ``moment2`` (param-shaped) and ``beta1_pow_acc``,
``beta2_pow_acc`` (shape [1], starting at beta1 / beta2). Differs from ``torch.optim.Adam``
only in where eps sits (Paddle scales it by ``sqrt(1 - beta2^t)``).

Tensor hyper-parameters. As Paddle's ``fluid.optimizer.AdamOptimizer`` (2.0: ``beta1``,
``beta2``) and ``paddle.optimizer.Adam`` (2.1 and later: also ``epsilon``), ``beta1``,
``beta2`` and ``epsilon`` may each be a 1-element floating-point tensor (eager / dygraph) or
a program's ``Variable`` of one element (static) instead of a float. Its value is read at
every update -- by :func:`~torchfluid.optimizer.pipeline.run_update` for a tensor, by the
program's optimize op for a Variable (Paddle's ``Beta1Tensor`` / ``Beta2Tensor`` /
``EpsilonTensor`` inputs) -- so it may change between steps, and it is range-checked then
(``0 <= beta < 1``, ``epsilon > 0``) before anything changes. As in Paddle, the
``beta1_pow_acc`` / ``beta2_pow_acc`` of a tensor beta start at Paddle's defaults 0.9 /
0.999 (the tensor's value is unknown when the accumulator is made), then are multiplied by
the beta's value at each update.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import torch

from .._checks import ArgumentTypeError, check_bool, check_number
from .._grad_mode import hyper_parameter_now, recording
from ..kernels import adam_
from ..kernels.attrs import as_factor, as_saved, paddle_attrs
from ..kernels.rows import update_rows_
from ..kernels.table import GradFold
from .base import Optimizer, UpdateParts, checked_tensor_hparams
from .state import TORCH_BETAS, TORCH_STEP_OPTIONS, real_value, torch_step_tensor
from .fused import FlatRule, fused_path

__all__ = ["AdamOptimizer", "Adam", "AdamRule", "AdamW", "AdamWRule"]


# Paddle's beta-power starting values when the beta is a tensor (adam.py's _add_moments_pows)
_PADDLE_POW_START = {"beta1": 0.9, "beta2": 0.999}
_BOUNDS = {
    "beta1": {"lo": 0.0, "hi": 1.0, "hi_open": True},
    "beta2": {"lo": 0.0, "hi": 1.0, "hi_open": True},
    "epsilon": {"lo": 0.0, "lo_open": True},
}


def _pow_start(hparams: Mapping, name: str) -> float:
    """The starting value of ``name``'s power accumulator: the beta itself when it is a
    number, Paddle's default when it is a tensor or a program variable."""
    value = hparams[name]
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return _PADDLE_POW_START[name]


def beta_pow_initial(acc: str, hparams: Mapping) -> float:
    """Where a fresh record of Adam's family starts: ``beta1_pow_acc`` / ``beta2_pow_acc`` at
    their beta (:func:`_pow_start`), the moments at 0."""
    if acc in ("beta1_pow_acc", "beta2_pow_acc"):
        return _pow_start(hparams, acc[:5])
    return 0.0


def powers_from_torch(entry: Mapping, hparams: Mapping, betas: tuple[str, ...]) -> dict:
    """The beta powers (``<beta>_pow_acc``) of a torch.optim checkpoint entry, which counts
    its updates in ``step`` and keeps no powers: after ``step`` updates Paddle's power is its
    start value (:func:`_pow_start`) times ``beta ** step``, what its next update takes
    (computed in float64, the beta a float32 attribute, as Paddle's kernel multiplies by it;
    stored in the real dtype of the entry's moments). Nothing when the entry has no ``step``
    or no moments, or has powers that ``step`` counts (:func:`step_from_powers`: torchfluid's
    own torch-layout dict, whose powers keep their bits); powers that it does not count were
    left behind by a torch.optim run that went on from such a dict, and are replaced."""
    step = entry.get("step")
    moments = [t for t in entry.values() if isinstance(t, torch.Tensor) and t.dim() > 0]
    if step is None or not moments:
        return {}
    count = real_value(step)
    if count is None or not (math.isfinite(count) and count >= 0 and count == int(count)):
        raise ValueError(
            f"torch's step (of a checkpoint or written into optimizer.state) must be a count >= 0, got {step!r}"
        )
    if any(f"{b}_pow_acc" in entry for b in betas) and step_from_powers(entry, hparams, betas) == count:
        return {}
    values = [real_value(hparams[b]) for b in betas]
    if any(v is None or not 0.0 <= v < 1.0 for v in values):
        return {}  # a beta out of range: the loader's check of the group refuses it, naming it
    dtype = moments[0].real.dtype
    out = {}
    for b, v in zip(betas, values, strict=True):
        beta = hparams[b]
        if isinstance(beta, torch.Tensor) and beta.requires_grad and recording():  # a differentiable beta:
            power = _pow_start(hparams, b) * beta.reshape(1) ** count  # the power is a function of it, unrounded
            out[f"{b}_pow_acc"] = power.to(dtype)
            continue
        value = float(np.float32(v))
        out[f"{b}_pow_acc"] = torch.tensor([_pow_start(hparams, b) * value**count], dtype=torch.float64).to(dtype)
    return out


_TINY = float(np.finfo(np.float32).tiny)  # below it a float32 power has lost bits (or is 0)


def step_from_powers(entry: Mapping, hparams: Mapping, betas: tuple[str, ...]) -> int:
    """torch.optim's ``step`` for an entry of Paddle's records: the update count ``k`` whose
    power ``start * beta ** k`` (:func:`powers_from_torch`) is nearest the entry's, read from
    the first beta whose power is still a normal float32 (so exact while that beta has not
    changed between updates). Where every power has underflowed (or no beta is in (0, 1)),
    the count after which every power is below float32's range: torch's bias corrections
    ``1 - beta ** step`` are then 1 there as here. 0 for an entry without powers."""
    floor = 0
    for b in betas:
        power, beta, start = real_value(entry.get(f"{b}_pow_acc")), real_value(hparams[b]), _pow_start(hparams, b)
        if power is None or beta is None or not 0.0 < beta < 1.0 or not start > 0.0:
            continue
        beta = float(np.float32(beta))
        if power >= _TINY:
            return max(0, round(math.log(power / start) / math.log(beta)))
        floor = max(floor, math.ceil(math.log(2.0**-149 / start) / math.log(beta)))
    return floor


@dataclasses.dataclass(frozen=True)
class AdamRule(FlatRule):
    """Adam's update rule for :func:`~torchfluid.optimizer.pipeline.run_update`: the
    moments and the ``beta_pow`` accumulators, state in the parameter's dtype (float32
    for float16/bfloat16 parameters), Paddle's kernel.

    ``tensor_hparams``: the hyper-parameters that may hold a 1-element tensor, read at each
    update and checked by :meth:`check_hparams` (the module docstring)."""

    torch_class = "torch.optim.Adam"
    torch_group_keys = MappingProxyType({"eps": "epsilon"})  # torch's name, read as this rule's
    torch_neutral_options = TORCH_STEP_OPTIONS
    torch_group_pairs = TORCH_BETAS  # torch's betas: beta1 and beta2
    # torch.optim.Adam's names of this rule's records, in torch's layout
    torch_accumulators = MappingProxyType(
        {"moment1": "exp_avg", "moment2": "exp_avg_sq", "moment2_max": "max_exp_avg_sq"}
    )

    @staticmethod
    def records_from_torch(entry: Mapping, hparams: Mapping) -> dict:
        """The beta powers of a torch.optim.Adam entry, from its ``step`` (:func:`powers_from_torch`)."""
        return powers_from_torch(entry, hparams, ("beta1", "beta2"))

    @staticmethod
    def torch_records(entry: Mapping, hparams: Mapping) -> dict:
        """torch.optim.Adam's ``step`` for an entry of this rule's records (:func:`step_from_powers`)."""
        return {"step": torch_step_tensor(step_from_powers(entry, hparams, ("beta1", "beta2")))}

    lazy_mode: bool = False  # row-sparse gradients: update only the rows present
    amsgrad: bool = False  # AMSGrad: the denominator takes the running maximum of moment2
    op_type = "adam"
    supports_complex = True  # as torch: a complex parameter is updated as its real view (two real coordinates)
    accumulator_names = ("moment1", "moment2", "beta1_pow_acc", "beta2_pow_acc")
    compatible_accumulators = ("moment2_max",)  # AMSGrad's record: a state dict may carry it

    def accumulators(self, hparams) -> list[str]:
        """``moment1``, ``moment2`` [, ``moment2_max`` with AMSGrad], the two beta powers (Paddle's order)."""
        return ["moment1", "moment2", *(("moment2_max",) if self.amsgrad else ()), "beta1_pow_acc", "beta2_pow_acc"]

    def fused_group(self, params, layout: tuple):
        """A :class:`~torchfluid.kernels.flat.FlatAdam` of ``params`` (with AMSGrad's buffer if asked)."""
        from ..kernels.flat import FlatAdam

        return FlatAdam(params, amsgrad=self.amsgrad)

    scalar_records = ("beta1_pow_acc", "beta2_pow_acc")
    flat_class = "FlatAdam"  # the fused path's kernel (torchfluid.optimizer.fused.FlatRule)
    tensor_hparams = ("beta1", "beta2", "epsilon")
    differentiable_hparams = ("beta1", "beta2", "epsilon")  # the kernel takes tensors that require grad

    @staticmethod
    def check_hparams(values: Mapping) -> dict:
        """``{name: float}`` of ``values`` (some of ``tensor_hparams`` as numbers), each
        checked: ``0 <= beta1, beta2 < 1``, ``epsilon > 0``, finite."""
        return {name: check_number(name, v, **_BOUNDS[name]) for name, v in values.items()}

    @staticmethod
    def fused_initial(acc: str, hparams: Mapping) -> float:
        return beta_pow_initial(acc, hparams)

    @staticmethod
    def fused_step(fg, hparams: Mapping, grads, lrs, fold: GradFold, decay=None) -> None:
        """One :class:`~torchfluid.kernels.flat.FlatAdam` step (``decay``: AdamW's per-member coefficients)."""
        fg.step(
            lr=lrs,
            beta1=hparams["beta1"],
            beta2=hparams["beta2"],
            epsilon=hparams["epsilon"],
            grads=grads,
            fold=fold,
            decay=decay,
        )

    def update(self, param, grad, state, *, lr: float, hparams: Mapping, precision, name: str) -> None:
        """Paddle's kernel on one parameter. A row-sparse gradient: with no rows nothing
        changes (Paddle's kernel returns at once); otherwise ``lazy_mode`` updates only the
        rows present (their moments and values; the powers advance), else every row as if
        absent rows had gradient 0 (Paddle's exact mode)."""
        kwargs = {"lr": lr, "beta1": hparams["beta1"], "beta2": hparams["beta2"], "epsilon": hparams["epsilon"]}
        powers = (state["beta1_pow_acc"], state["beta2_pow_acc"])
        tensors = (param, state["moment1"], state["moment2"], *((state["moment2_max"],) if self.amsgrad else ()))
        if param.is_complex():  # as torch: the real and imaginary parts are two real coordinates
            tensors = tuple(torch.view_as_real(t) for t in tensors)
            grad = torch.view_as_real(grad.to_dense() if grad.is_sparse else grad)

        def kernel(p, g, m1, m2, m2_max=None):
            adam_(p, g, m1, m2, *powers, **kwargs, moment2_max=m2_max)

        if grad.is_sparse:
            grad = grad.coalesce()
            if grad._nnz() == 0:
                return
            if self.lazy_mode and param.dim() > 0:
                values = grad.values()
                update_rows_(grad.indices()[0], tensors, lambda p, *moments: kernel(p, values, *moments))
                return
            grad = grad.to_dense()
        kernel(tensors[0], grad, *tensors[1:])


class AdamOptimizer(Optimizer, fluid_attributes=("beta1", "beta2", "epsilon")):
    """Adam with fluid's API: ``AdamOptimizer(learning_rate=0.001, beta1=0.9, beta2=0.999,
    epsilon=1e-8, parameter_list=None, regularization=None, grad_clip=None, name=None,
    lazy_mode=False)``.

    ``lazy_mode``: for row-sparse gradients (``Embedding(is_sparse=True)``), update only
    the rows present, as Paddle's lazy mode (faster; absent rows' moments do not decay);
    False (default) is Paddle's exact mode. Dense gradients are not affected.

    ``beta1``, ``beta2`` and ``epsilon``: a float, or a 1-element floating-point tensor
    (static mode: a program ``Variable``) read at every update (the module docstring).

    Paddle 3's keywords: ``amsgrad=True`` keeps ``moment2_max`` (state key
    ``<param>_moment2_max_0``, starting at 0), the running maximum of ``moment2``, and
    divides by its square root instead (the fused kernel's AMSGrad variant too);
    ``use_multi_tensor`` (a bool) is accepted and changes nothing.

    ``fused``: None (default) updates the dense float32/float64 CPU parameters of each
    group and dtype with one single-pass numba kernel call (bit for bit the reference
    kernel's numbers; clip and L2/L1 decay folded in) and everything else (sparse
    gradients, float16/bfloat16, CUDA, groups whose ``beta1``/``beta2``/``epsilon`` is a
    tensor) with the reference kernel; False always uses the reference kernel; True
    requires the fused one (except for such tensor hyper-parameters)."""

    def __init__(
        self,
        learning_rate=0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        parameter_list=None,
        regularization=None,
        grad_clip=None,
        name=None,
        lazy_mode: bool = False,
        *,
        amsgrad: bool = False,
        use_multi_tensor: bool = False,
        fused: bool | None = None,
        **options,
    ):
        fused_update = fused_path(fused)
        self.fused = fused
        self.lazy_mode = check_bool("lazy_mode", lazy_mode)
        check_bool("use_multi_tensor", use_multi_tensor)
        parts = UpdateParts(
            AdamRule(lazy_mode=self.lazy_mode, amsgrad=check_bool("amsgrad", amsgrad)),
            defaults=self.checked_options({"beta1": beta1, "beta2": beta2, "epsilon": epsilon}),
            fused=fused_update,
        )
        super().__init__(learning_rate, parameter_list, regularization, grad_clip, name, parts=parts, **options)

    @classmethod
    def checked_options(cls, group: Mapping) -> dict:
        """A group's Adam options: a number range-checked and returned as a float; a tensor
        (1 element, floating point) or a program variable returned as it is (its value is
        read, and checked, at each update)."""
        return checked_tensor_hparams(AdamRule, group, {"beta1": "in [0, 1)", "beta2": "in [0, 1)", "epsilon": "> 0"})


Adam = AdamOptimizer


class NamedParameter:
    """A parameter tensor under its optimizer name (``name``); every other attribute is the
    tensor's: what AdamW's ``lr_ratio`` receives for a parameter whose own ``name`` is not
    that name (a torch Parameter, a program parameter's value)."""

    __slots__ = ("tensor", "name")

    def __init__(self, tensor: torch.Tensor, name: str):
        self.tensor, self.name = tensor, name

    def __getattr__(self, attr):
        return getattr(self.tensor, attr)

    def __repr__(self) -> str:
        return f"NamedParameter({self.name!r}, shape={list(self.tensor.shape)})"

    @staticmethod
    def of(item) -> object:
        """A pipeline item's parameter as a user function sees it: the parameter itself
        where its ``name`` is its name here (a fluid parameter), else a NamedParameter."""
        param = item.param
        return param if getattr(param, "name", None) == item.name else NamedParameter(param, item.name)


@dataclasses.dataclass(frozen=True)
class AdamWRule(AdamRule):
    """AdamW's rule: Paddle's ``adamw`` op, Adam with decoupled weight decay. Before the
    Adam update, a decayed parameter (``apply_decay_param_fun(name)`` true, or no such
    function) becomes ``p - (lr * coeff) * p`` in its dtype, each product rounded, as
    Paddle's CPU kernel (jit ``adamw``) writes it (``coeff`` a float32 attribute, as Paddle's
    op; its GPU kernel scales ``p * (1 - lr * coeff)``, which can round differently in the
    last bit), and both steps use ``lr * lr_ratio(param)`` where ``lr_ratio`` is given
    (Paddle refuses ``lr_ratio`` on CPU). The fused Adam kernel's decoupled variant runs
    both steps in its one pass, bit for bit as the reference kernel."""

    lr_ratio: object = None  # callable(param) -> float, or None
    apply_decay_param_fun: object = None  # callable(name) -> bool, or None
    op_type = "adamw"
    torch_class = "torch.optim.AdamW"
    # torch.optim.AdamW's group key read from its checkpoints as this rule's (the call takes
    # weight_decay under its own name)
    torch_group_keys_read = MappingProxyType({"weight_decay": "coeff"})
    fused_step_names = True  # apply_decay_param_fun reads each member's name
    # this update's apply_decay_param_fun answers by parameter name, asked by adjust_items before
    # anything changes (a per-step cache, never saved or compared)
    decay_answers: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def decays(self, name: str) -> bool:
        """Whether parameter ``name`` is decayed this update (``apply_decay_param_fun``'s
        answer, asked once by :meth:`adjust_items`; every parameter without the function)."""
        if self.apply_decay_param_fun is None:
            return True
        answer = self.decay_answers.get(name)
        return bool(self.apply_decay_param_fun(name)) if answer is None else answer

    def fused_step(self, fg, hparams: Mapping, grads, lrs, fold: GradFold, names) -> None:
        coeff = _coeff_now(hparams["coeff"])
        decay = [
            coeff if g is not None and coeff != 0 and self.decays(n) else 0.0 for g, n in zip(grads, names, strict=True)
        ]
        AdamRule.fused_step(fg, hparams, grads, lrs, fold, decay)

    def adjust_items(self, items: list) -> list:
        """Ask the user functions about every item once per update, before anything
        changes (one that raises leaves everything as it was): ``apply_decay_param_fun(name)``
        (kept for :meth:`decays`) and ``lr_ratio(param)`` (a real number >= 0), which
        multiplies the item's learning-rate multiplier. ``param`` is the parameter itself
        where its ``name`` is its name here (a fluid parameter), else the tensor seen under
        that name (:class:`NamedParameter`), as Paddle's ``lr_ratio`` reads ``param.name``."""
        answers = {}
        if self.apply_decay_param_fun is not None:
            answers = {it.name: bool(self.apply_decay_param_fun(it.name)) for it in items}
        self.decay_answers.clear()
        self.decay_answers.update(answers)
        if self.lr_ratio is None:
            return items
        out = []
        for it in items:
            ratio = check_number(f"lr_ratio({it.name})", self.lr_ratio(NamedParameter.of(it)), lo=0.0)
            out.append(it._replace(lr_mult=it.lr_mult * ratio))
        return out

    def update(self, param, grad, state, *, lr: float, hparams: Mapping, precision, name: str) -> None:
        coeff = _coeff_now(hparams["coeff"])
        decayed = isinstance(coeff, torch.Tensor) or coeff != 0  # a differentiable coefficient: even at 0
        if decayed and not (grad.is_sparse and grad._nnz() == 0) and self.decays(name):
            target = torch.view_as_real(param) if param.is_complex() else param
            (coeff,) = paddle_attrs(target.dtype, coeff)
            lr_t, coeff_t = (as_factor(v, target) for v in (lr, coeff))
            target.sub_(as_saved(target) * (lr_t * coeff_t))  # p - (lr * coeff) * p, in the dtype
        super().update(param, grad, state, lr=lr, hparams=hparams, precision=precision, name=name)


class AdamW(AdamOptimizer, fluid_attributes=("coeff",)):
    """Paddle 2.x ``paddle.optimizer.AdamW``: ``AdamW(learning_rate=0.001, beta1=0.9,
    beta2=0.999, epsilon=1e-8, parameters=None, weight_decay=0.01, lr_ratio=None,
    apply_decay_param_fun=None, grad_clip=None, lazy_mode=False, multi_precision=False,
    name=None)``.

    Adam with decoupled weight decay (:class:`AdamWRule`): ``weight_decay`` is the decay
    coefficient (a float >= 0, also a param group's ``weight_decay``), not an L2
    regularizer; ``lr_ratio(param)`` scales a parameter's learning rate;
    ``apply_decay_param_fun(name)`` chooses the decayed parameters by name. The decay is
    ``torch.optim.AdamW``'s (``p *= 1 - lr * weight_decay``); the Adam step differs from
    torch's where Adam does (Paddle's eps placement). ``multi_precision=True``: float32
    master weights (decayed and updated in float32) and state for float16/bfloat16
    parameters. ``amsgrad``: as Adam's. ``fused``: as Adam's (None: the fused CPU kernel,
    decay included, wherever it applies; False: the reference kernel always; True:
    required). ``options``: :class:`~torchfluid.optimizer.base.Optimizer`'s keyword
    arguments (``nonfinite``, ``maximize``, ``shard_state``, ...)."""

    def __init__(
        self,
        learning_rate=0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        parameters=None,
        weight_decay: float = 0.01,
        lr_ratio=None,
        apply_decay_param_fun=None,
        grad_clip=None,
        lazy_mode: bool = False,
        multi_precision: bool = False,
        name=None,
        *,
        amsgrad: bool = False,
        fused: bool | None = None,
        **options,
    ):
        for arg, fn in (("lr_ratio", lr_ratio), ("apply_decay_param_fun", apply_decay_param_fun)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{arg} must be a callable or None, got {type(fn).__name__}")
        fused_update = fused_path(fused)
        self.fused = fused
        self.lazy_mode = check_bool("lazy_mode", lazy_mode)
        defaults = self.checked_options({"beta1": beta1, "beta2": beta2, "epsilon": epsilon})
        defaults["coeff"] = _check_coeff(weight_decay)
        rule = AdamWRule(
            lazy_mode=self.lazy_mode,
            amsgrad=check_bool("amsgrad", amsgrad),
            lr_ratio=lr_ratio,
            apply_decay_param_fun=apply_decay_param_fun,
        )
        parts = UpdateParts(rule, defaults=defaults, fused=fused_update)
        Optimizer.__init__(
            self,
            learning_rate,
            None,
            None,
            grad_clip,
            name,
            parameters=parameters,
            parts=parts,
            multi_precision=multi_precision,
            **options,
        )

    def add_param_group(self, param_group: Mapping) -> None:
        """A group's ``weight_decay`` is its decay coefficient (``coeff``), as in Paddle's AdamW."""
        if isinstance(param_group, Mapping) and "weight_decay" in param_group:
            param_group = dict(param_group)
            param_group["coeff"] = _check_coeff(param_group.pop("weight_decay"))
        super().add_param_group(param_group)

    def _check_group(self, group: dict) -> None:
        """A group's ``weight_decay`` written into ``param_groups`` (torch's name, which
        ``ZeroRedundancyOptimizer`` copies into its local optimizer's groups at every step)
        is its decay coefficient too, never a coupled L2 decay: it becomes ``coeff`` (where
        every group holds torch's ``weight_decay``, ``keeps_torch_weight_decay``, the two are
        kept equal instead, as torch's ``betas`` and ``beta1``/``beta2``)."""
        if "weight_decay" in group and not self.keeps_torch_weight_decay:
            group["coeff"] = _check_coeff(group.pop("weight_decay"))
        super()._check_group(group)
        _check_coeff(group["coeff"])


def _check_coeff(value) -> float | torch.Tensor:
    """AdamW's decay coefficient: a real number >= 0, or (as torch takes it) a 1-element
    floating-point tensor holding one, returned as it is: its value is read at each update,
    and a ``differentiable`` update differentiates by it when it requires grad."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point():
        check_number("weight_decay", float(value.detach()), lo=0.0)
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(
            f"weight_decay must be a real number >= 0 or a 1-element floating-point tensor, got {value!r} of type "
            f"{type(value).__name__}"
        )
    return check_number("weight_decay", value, lo=0.0)


def _coeff_now(coeff) -> float | torch.Tensor:
    """The decay coefficient this update uses: a number, a tensor's value now, or, in a recorded
    (``differentiable``) update, a tensor that requires grad itself (0-d)."""
    value = hyper_parameter_now(coeff)
    if isinstance(coeff, torch.Tensor) and not isinstance(value, torch.Tensor):  # its value now, checked
        return check_number("weight_decay", value, lo=0.0)
    return value
