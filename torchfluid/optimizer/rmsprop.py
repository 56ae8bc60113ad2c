"""``RMSPropOptimizer`` (alias ``RMSProp``): Paddle fluid's RMSProp on torch parameters.

Maths (Paddle's, verified against real Paddle runs; see :mod:`torchfluid.kernels.rmsprop`)::

    ms  = rho * ms + (1 - rho) * g^2
    mg  = rho * mg + (1 - rho) * g                        centered only
    mom = momentum * mom + lr * g / sqrt(ms [- mg^2] + eps)
    p  -= mom

Differences from ``torch.optim.RMSprop``: eps is INSIDE the sqrt (torch: outside), the
learning rate is inside the velocity (torch: ``p -= lr * buf``; identical while lr is
constant), defaults are ``rho=0.95, epsilon=1e-6`` (torch: ``alpha=0.99, eps=1e-8``).
Paddle's page calls the momentum "Nesterov"; it is plain heavy-ball momentum.

Accumulators (``state_dict`` keys ``<param>_<acc>_0``): ``mean_square`` always,
``mean_grad`` only when centered, ``momentum`` only when ``momentum != 0``. Paddle
always keeps all three; loading a Paddle state dict accepts (shape-checked) and ignores
the ones this configuration does not use: an uncentered ``mean_grad`` is all zeros in
Paddle, and at momentum 0 Paddle's ``momentum`` only holds the last update, which never
enters a later one. So trajectories are identical and state stays minimal.

Conventions (group options; Paddle's values are the defaults, see docs/conventions.md)::

    eps_in_sqrt=True          sqrt(ms + eps)        False: sqrt(ms) + eps (torch, Keras 2)
    initial_mean_square=0.0   ms starts at this     1.0: TF1 and timm RMSpropTF
    lr_in_momentum=True       mom += lr*g/den       False: buf += g/den; p -= lr*buf (torch)
    nesterov=False            p -= mom              True: p -= lr*g/den + momentum*mom (optax)
    decoupled_weight_decay=0  --                    wd: p *= 1 - lr*wd before the update (Keras 3)
    maximize=False            --                    True: g = -g before clipping/regularization (torch)
    bias_correction=False     --                    True: ms/(1-rho^t) in the denominator (optax)
    float32_attrs=True        float64 parameters: rho, epsilon, momentum rounded to float32 first
                              (Paddle's float32 op attributes)      False: as given (the others)

``RMSProp.preset(name, parameters=..., **kwargs)`` builds the exact configuration of
'paddle', 'torch', 'tf1', 'keras', 'optax' or 'timm' from that library's own argument
names (:mod:`torchfluid.optimizer.presets`). Precision options (``multi_precision``,
``state_dtype``, ``nonfinite``) are described in :mod:`torchfluid.optimizer.precision`.

Row-sparse gradients (``Embedding(is_sparse=True)``): by default Paddle's exact rule —
duplicate rows are summed, then EVERY row is updated as if absent rows had gradient 0
(their ``ms`` decays, their velocity keeps moving them). ``lazy_mode=True`` updates
only the rows present (faster; differs from Paddle for momentum/decay of absent rows).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from types import MappingProxyType

import torch

from .._checks import check_bool, check_number
from ..kernels.rmsprop import RMSPropHyper, rmsprop_update_
from ..kernels.rows import update_rows_
from ..kernels.table import GradFold
from .base import Optimizer, UpdateParts, checked_tensor_hparams
from .fused import fused_path, plain_float_param
from .precision import Precision
from .state import TORCH_GROUP_KEYS, real_value

__all__ = ["RMSPropOptimizer", "RMSProp", "RMSPropRule"]


# the group options FlatGroup.step takes by the same names
_FLAT_HYPER = ("rho", "epsilon", "momentum", "eps_in_sqrt", "lr_in_momentum", "nesterov", "float32_attrs")


@dataclasses.dataclass(frozen=True)
class RMSPropRule:
    """RMSProp's update rule for :func:`~torchfluid.optimizer.pipeline.run_update`: which
    accumulators a group keeps, their initial values, and the reference kernel.

    ``hparams`` is a param group (``rho``, ``epsilon``, ``momentum``, ``centered`` and the
    convention flags of the module docstring); ``lazy_mode`` applies to sparse gradients.
    """

    lazy_mode: bool = False
    # (device, dtype) -> the reference kernel's work buffer, reused every step and grown to
    # the largest parameter: a workspace, not state (never saved, not compared)
    scratch: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)
    op_type = "rmsprop"
    supports_complex = True  # a complex parameter is updated as its real view (two real coordinates)
    compatible_accumulators = ("mean_square", "mean_grad", "momentum")
    torch_class = "torch.optim.RMSprop"
    torch_group_keys = TORCH_GROUP_KEYS  # alpha -> rho, eps -> epsilon
    # torch.optim.RMSprop's names of the averages; its momentum_buffer is torch_records' (lr inside or not)
    torch_accumulators = MappingProxyType({"mean_square": "square_avg", "mean_grad": "grad_avg"})
    torch_entries_read = ("momentum_buffer",)

    @staticmethod
    def torch_records(entry: Mapping, hparams: Mapping) -> dict:
        """torch.optim.RMSprop's ``momentum_buffer`` for an entry of this rule's records
        (None: an entry dropped). Where lr sits outside the velocity (torch's convention) it is
        the velocity; where it sits inside (Paddle's), the velocity over the group's lr: the
        buffer with which torch's next update, ``lr * (momentum * buf + g / den)``, moves the
        parameter by Paddle's ``momentum * mom + lr * g / den`` (0 at lr 0, where torch's
        moves nothing). Paddle's ``momentum`` then stays too, under its own name, so that a
        load here keeps its bits."""
        mom = entry.get("momentum")
        if mom is None:
            return {}
        if not hparams["lr_in_momentum"]:
            return {"momentum_buffer": mom, "momentum": None}
        return {"momentum_buffer": _velocity_over_lr(mom, hparams["lr"])}

    @staticmethod
    def records_from_torch(entry: Mapping, hparams: Mapping) -> dict:
        """Paddle's ``momentum`` from torch.optim.RMSprop's ``momentum_buffer`` (None: an entry
        dropped), the inverse of :meth:`torch_records`: the buffer itself where lr sits outside
        the velocity, else the group's lr times it. A ``momentum`` the entry has as well is
        kept while the buffer is still the one written from it (its bits), and replaced where
        a torch run has moved the buffer (or the lr) since."""
        buf = entry.get("momentum_buffer")
        if buf is None:
            return {}
        if not hparams["lr_in_momentum"] or not isinstance(buf, torch.Tensor):
            return {"momentum": buf, "momentum_buffer": None}  # a bad buffer: the loader's checks name it
        mom = entry.get("momentum")
        if isinstance(mom, torch.Tensor) and mom.shape == buf.shape and mom.dtype == buf.dtype:
            if torch.equal(_velocity_over_lr(mom, hparams["lr"]), buf):
                return {"momentum_buffer": None}
        lr = real_value(hparams["lr"])
        return {"momentum": buf * (lr if lr is not None and math.isfinite(lr) else 0.0), "momentum_buffer": None}

    # torch's CyclicLR / OneCycleLR write the momentum into the groups, as a tensor if they were given one
    tensor_hparams = ("momentum",)

    @staticmethod
    def check_hparams(values: Mapping) -> dict:
        """``{'momentum': float}``, checked: a finite number >= 0."""
        return {name: check_number(name, v, lo=0.0) for name, v in values.items()}

    @staticmethod
    def accumulators(hparams: Mapping) -> list[str]:
        """Accumulator names kept: ``mean_square`` [, ``mean_grad``] [, ``momentum``] [, ``step``]."""
        names = ["mean_square"]
        if hparams["centered"]:
            names.append("mean_grad")
        if hparams["momentum"] != 0:
            names.append("momentum")
        if hparams.get("bias_correction", False):
            names.append("step")
        return names

    def new_state(self, p: torch.Tensor, hparams: Mapping, dtype: torch.dtype) -> dict:
        """Fresh records: ``mean_square`` at ``initial_mean_square``, the others 0, in ``dtype``
        (``step``: a 0-d int64 count of updates, for bias correction)."""
        state = {}
        for acc in self.accumulators(hparams):
            if acc == "step":
                state[acc] = torch.zeros((), dtype=torch.int64, device=p.device)
            elif acc == "mean_square":
                state[acc] = torch.full_like(p, hparams["initial_mean_square"], dtype=dtype)
                if state[acc].is_complex():  # both parts of a complex parameter start there
                    torch.view_as_real(state[acc]).fill_(hparams["initial_mean_square"])
            else:
                state[acc] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
        return state

    @staticmethod
    def fused_eligible(param: torch.Tensor, hparams: Mapping, precision) -> bool:
        """True when ``param``'s update needs only what the fused kernel's flags express
        (float32/float64 param and state, no master weight, no decoupled decay, no bias
        correction); anything else takes the reference kernel (:meth:`update`)."""
        return (
            plain_float_param(param, precision)
            and not hparams["decoupled_weight_decay"]
            and not hparams["bias_correction"]
        )

    fused_devices = ("cpu", "cuda")  # numba on CPU, Triton on CUDA

    @staticmethod
    def fused_layout(hparams: Mapping) -> tuple:
        """The flat buffers a group needs: ``(centered, momentum != 0)``."""
        return (bool(hparams["centered"]), hparams["momentum"] != 0)

    @staticmethod
    def fused_group(params, layout: tuple):
        """A :class:`~torchfluid.kernels.flat.FlatGroup` of ``params`` for ``layout``."""
        from ..kernels.flat import FlatGroup

        return FlatGroup(params, centered=layout[0], momentum=layout[1])

    @staticmethod
    def fused_initial(acc: str, hparams: Mapping) -> float:
        """Where a fresh record of accumulator ``acc`` starts (as :meth:`new_state`)."""
        return float(hparams["initial_mean_square"]) if acc == "mean_square" else 0.0

    @staticmethod
    def fused_step(fg, hparams: Mapping, grads, lrs, fold: GradFold) -> None:
        """One kernel call of flat group ``fg``: one gradient (or None) and learning rate
        per member, the folded clip / regularizer terms ``fold``."""
        fg.step(RMSPropHyper(lrs, **{k: hparams[k] for k in _FLAT_HYPER}), grads=grads, fold=fold)

    def update(self, param, grad, state, *, lr: float, hparams: Mapping, precision, name: str) -> None:
        """The reference kernel on one parameter, in place (its master weight if it has one;
        a record the group's options added since starts fresh first: the pipeline's
        ``complete_records``)."""
        step = 0
        if hparams["bias_correction"]:
            state["step"] += 1
            step = int(state["step"])
        hyper = RMSPropHyper.from_mapping(hparams, lr=lr, bias_correction_step=step)
        stored = [
            state["mean_square"],
            state.get("mean_grad") if hparams["centered"] else None,
            state.get("momentum") if hparams["momentum"] != 0 else None,
        ]
        if param.is_complex():  # as torch: the real and imaginary parts are two real coordinates
            stored = [None if t is None else torch.view_as_real(t) for t in stored]
            grad = torch.view_as_real(grad.to_dense() if grad.is_sparse else grad)
        mean_square, mean_grad, moment = work = precision.widen(stored)
        target = param
        if target.is_complex():
            target = torch.view_as_real(target)
        if grad.is_sparse and self.lazy_mode:
            _lazy_sparse_update(target, grad, mean_square, mean_grad, moment, hyper)
        else:
            if grad.is_sparse:
                grad = grad.to_dense()  # Paddle exact: duplicates summed, absent rows get g = 0
            rmsprop_update_(target, grad, work, hyper, scratch=self._scratch_like(mean_square))
        precision.store(stored, work)

    def _scratch_like(self, t: torch.Tensor) -> torch.Tensor | None:
        """The work buffer for state ``t``, twice its size (the kernel's scratch; float32/
        float64; None for float16/bfloat16 state, which the kernel widens itself)."""
        if t.dtype not in (torch.float32, torch.float64):
            return None
        key = (t.device, t.dtype)
        buf = self.scratch.get(key)
        if buf is None or buf.numel() < 2 * t.numel():
            buf = self.scratch[key] = torch.empty(2 * t.numel(), dtype=t.dtype, device=t.device)
        return buf


def _velocity_over_lr(mom: torch.Tensor, lr) -> torch.Tensor:
    """``mom / lr`` (zeros where the lr is 0 or no finite number)."""
    value = real_value(lr)
    if value is None or value == 0.0 or not math.isfinite(value):
        return torch.zeros_like(mom)
    return mom / value


class RMSPropOptimizer(Optimizer, fluid_attributes=("rho", "epsilon", "momentum", "centered")):
    """RMSProp with Paddle's maths and fluid's API; also a ``torch.optim.Optimizer``.

    Args:
        learning_rate: float >= 0, a fluid ``LearningRateDecay`` or a 2.x ``LRScheduler``.
        rho: decay of the moving averages, in [0, 1).
        epsilon: >= 0, added inside the sqrt (outside with ``eps_in_sqrt=False``); 0 is accepted, as
            Paddle does (a zero gradient on a zero mean square then gives 0/0 = nan, as in Paddle).
        momentum: >= 0; heavy-ball momentum, lr inside the velocity (``lr_in_momentum``).
        centered: normalise by the estimated variance instead of the second moment.
        parameter_list / parameters: what to optimize (tensors, named pairs, a dict or
            param-group dicts). Required in eager mode.
        regularization / weight_decay: None, a float (L2 coefficient), L1Decay or L2Decay.
        grad_clip: ClipGradByValue / ClipGradByNorm / ClipGradByGlobalNorm.
        name: prefix for accumulator names.
        lazy_mode: for sparse gradients, update only the rows present.
        eps_in_sqrt, initial_mean_square, lr_in_momentum, nesterov,
        decoupled_weight_decay, maximize, bias_correction, float32_attrs: the conventions of
            the other libraries (module docstring); per-group options like ``rho``.
        multi_precision: float32 master weights and state for float16/bfloat16 params.
        state_dtype: None, ``torch.float32`` or ``torch.bfloat16`` (stochastic rounding).
        nonfinite: 'propagate' (default, as Paddle), 'skip' or 'raise' on NaN/inf gradients.
        shard_state / grad_reduction / process_group: ZeRO-1 data parallelism, the state
            divided among the ranks (see :mod:`torchfluid.distributed`).
        fused: None (default) updates each parameter group, device and dtype with one
            single-pass multi-tensor kernel where it can (numba on CPU, Triton on CUDA;
            :mod:`torchfluid.optimizer.fused`) and with the reference kernel elsewhere;
            False always uses the reference kernel; True requires the fused kernel.
        options: :class:`~torchfluid.optimizer.base.Optimizer`'s keyword arguments: ``parameters``,
            ``weight_decay``, ``shard_state``, ``grad_reduction``, ``process_group`` (above).

    ``skipped_steps`` counts updates skipped for non-finite gradients (``nonfinite='skip'``
    or a ``torch.amp.GradScaler`` overflow).
    """

    def __init__(
        self,
        learning_rate,
        rho: float = 0.95,
        epsilon: float = 1e-6,
        momentum: float = 0.0,
        centered: bool = False,
        parameter_list=None,
        regularization=None,
        grad_clip=None,
        name=None,
        *,
        lazy_mode: bool = False,
        eps_in_sqrt: bool = True,
        initial_mean_square: float = 0.0,
        lr_in_momentum: bool = True,
        nesterov: bool = False,
        decoupled_weight_decay: float = 0.0,
        maximize: bool = False,
        bias_correction: bool = False,
        float32_attrs: bool = True,
        multi_precision: bool = False,
        state_dtype: torch.dtype | None = None,
        nonfinite: str = "propagate",
        fused: bool | None = None,
        **options,
    ):
        defaults = self.checked_options(locals())  # reads the group options among the arguments
        self.lazy_mode = check_bool("lazy_mode", lazy_mode)
        fused_update = fused_path(fused)
        self.fused = fused
        parts = UpdateParts(
            RMSPropRule(lazy_mode=self.lazy_mode),
            defaults=defaults,
            precision=Precision(multi_precision=multi_precision, state_dtype=state_dtype, nonfinite=nonfinite),
            fused=fused_update,
        )
        super().__init__(learning_rate, parameter_list, regularization, grad_clip, name, parts=parts, **options)

    _FLAGS = (
        "centered",
        "eps_in_sqrt",
        "lr_in_momentum",
        "nesterov",
        "maximize",
        "bias_correction",
        "float32_attrs",
    )

    @classmethod
    def checked_options(cls, group: Mapping) -> dict:
        """Range-check a group's RMSProp options; return them normalised (floats, bools; a
        tensor momentum, 1 element, as it is: read and checked at each update)."""
        out = dict(
            rho=check_number("rho", group["rho"], lo=0.0, hi=1.0, hi_open=True),
            epsilon=check_number("epsilon", group["epsilon"], lo=0.0),  # Paddle accepts 0
            **checked_tensor_hparams(RMSPropRule, group, {"momentum": ">= 0"}, variables=False),
            initial_mean_square=check_number("initial_mean_square", group["initial_mean_square"], lo=0.0),
            decoupled_weight_decay=check_number("decoupled_weight_decay", group["decoupled_weight_decay"], lo=0.0),
            **{flag: check_bool(flag, group[flag]) for flag in cls._FLAGS},
        )
        if out["nesterov"] and float(out["momentum"]) == 0:
            raise ValueError("nesterov=True needs momentum > 0, got momentum=0")
        return out

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        self._precision.check_epsilon(group["epsilon"], group["params"])

    @classmethod
    def preset(cls, name: str, /, parameters=None, **kwargs) -> "RMSPropOptimizer":
        """An RMSProp configured exactly as library ``name`` ('paddle', 'torch', 'tf1',
        'keras', 'optax', 'timm') from that library's own argument names and defaults.
        See :mod:`torchfluid.optimizer.presets`."""
        from .presets import build_preset

        return build_preset(cls, name, parameters, kwargs)


def _lazy_sparse_update(param, grad, mean_square, mean_grad, moment, hyper) -> None:
    """Update only the rows present in a row-sparse gradient (duplicates summed first)."""
    g = grad.coalesce()
    update_rows_(
        g.indices()[0],
        (param, mean_square, mean_grad, moment),
        lambda p, *state: rmsprop_update_(p, g.values(), state, hyper),
    )


RMSProp = RMSPropOptimizer
