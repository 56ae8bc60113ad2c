"""The optimizer layer: a real ``torch.optim.Optimizer`` with Paddle's fluid API.

One pipeline per update, in Paddle's order (the same for ``step()``, ``minimize()``
and ``apply_gradients()``)::

    collect (param, grad) pairs   params with a gradient, trainable, not in no_grad_set
    validate                      shapes / dtypes / devices, BEFORE anything changes
    prepare                       subclass hook (``_prepare_grads``): AMP unscale, non-finite
                                  policy, sign flip; may skip the whole update, still unchanged
    learning rate                 schedule value for this update (fluid decays advance)
    clip                          grad_clip (need_clip=False params untouched), planned over all
    regularize                    param.regularizer if set, else the optimizer's
    update                        the kernel, in place, lr * group multiplier * param multiplier;
                                  clip and regularization are applied to the gradient here
                                  (``GradPrep.apply``), or folded into a fused kernel's pass

Subclasses only say which accumulators they keep and which kernel they call
(``_accumulator_names``, ``_new_state``, ``_kernel_update``); state records are keyed by
stable parameter names (see :mod:`torchfluid.optimizer.state`).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np
import torch

from .._checks import check_number
from ..clip import ClipStep, GradientClipBase, need_clip
from ..distributed import sharding as _sharding
from ..regularizer import as_regularizer
from . import schedules
from .fold import NO_PREP, GradPrep
from .params import fluid_name, is_group_list, split_named
from .state import LoadReport, StateCodec

__all__ = ["Optimizer"]


# --- static mode (helper C): the mode is decided here, once, from the loss/param kind ---
def _is_static(obj) -> bool:
    """True for torchfluid.static program records (Variable / Parameter)."""
    return getattr(type(obj), "_torchfluid_static", False)


def _static():
    from ..static import optimize

    return optimize
# --- end static mode ---


def _one_of(name_a: str, a, name_b: str, b):
    if a is not None and b is not None:
        raise ValueError(f"pass only one of {name_a} and {name_b} (they mean the same), got both")
    return a if a is not None else b


class Optimizer(torch.optim.Optimizer):
    """Base of torchfluid's optimizers: Paddle fluid's Optimizer API on a torch.optim.Optimizer."""

    _static_op_type = ""

    def __init__(
        self,
        learning_rate,
        parameter_list=None,
        regularization=None,
        grad_clip=None,
        name=None,
        *,
        parameters=None,
        weight_decay=None,
        defaults: Mapping | None = None,
        shard_state: bool = False,
        grad_reduction: str = "none",
        process_group=None,
    ):
        params = _one_of("parameter_list", parameter_list, "parameters", parameters)
        # distributed (ZeRO-1) hook: None unless shard_state=True; see torchfluid.distributed
        self._sharding = _sharding.make(self, shard_state, grad_reduction, process_group)
        # --- static mode (helper C): a fluid.layers.*_decay Variable as the learning rate ---
        self._static_lr = learning_rate if _is_static(learning_rate) else None
        if self._static_lr is not None:
            learning_rate = 0.0  # the value lives in the program; see torchfluid.static.optimize
        # --- end static mode ---
        reg = _one_of("regularization", regularization, "weight_decay", weight_decay)
        self._schedule = schedules.as_schedule(learning_rate)
        if self._schedule is None:
            base_lr = check_number("learning_rate", learning_rate, lo=0.0)
        else:
            base_lr = schedules.peek(self._schedule)
        self.regularization = as_regularizer(reg, "weight_decay" if weight_decay is not None else "regularization")
        if grad_clip is not None and not isinstance(grad_clip, GradientClipBase):
            raise TypeError(
                f"grad_clip must be None or a ClipGradByValue/ClipGradByNorm/ClipGradByGlobalNorm, "
                f"got {type(grad_clip).__name__}"
            )
        self._grad_clip = grad_clip
        if name is not None and not isinstance(name, str):
            raise ValueError(f"name must be None or a str, got {name!r}")
        self._name = name
        self._names: dict[torch.Tensor, str] = {}
        self._initial_hparams: list[dict] = []  # each group's hyper-parameters when added
        self._codec = StateCodec(self)
        self._last_lr: float | None = None
        self._static_parameter_list = None
        self._constructing = True
        super().__init__([{"params": []}], {"lr": base_lr, "lr_mult": 1.0, **dict(defaults or {})})
        self._constructing = False
        if params is not None:
            if is_group_list(params):
                for group in params:
                    self.add_param_group(group)
            elif not self._keep_static_list(params):
                self.add_param_group({"params": params})

    # ------------------------------------------------------------------ params
    def _keep_static_list(self, params) -> bool:
        """A static-mode parameter list (Parameter records or names) is kept for the static pass."""
        if isinstance(params, (list, tuple)) and params and all(
            isinstance(p, str) or getattr(type(p), "_torchfluid_static", False) for p in params
        ):
            self._static_parameter_list = list(params)
            return True
        return False

    def add_param_group(self, param_group: Mapping) -> None:
        """Add a group: ``{'params': ..., 'lr': absolute lr, 'learning_rate': Paddle multiplier, ...}``.

        ``params`` takes every form the constructor takes. Hyper-parameters not given
        fall back to the optimizer's defaults and are range-checked.
        """
        if not isinstance(param_group, Mapping):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        if "params" not in group:
            raise ValueError("param_group must have a 'params' entry")
        named = split_named(group["params"], "param_group['params']")
        if not named and self._constructing:
            return
        given_names = group.pop("param_names", None)
        if given_names is not None:
            if len(given_names) != len(named):
                raise ValueError(
                    f"param_group['param_names'] has {len(given_names)} names for {len(named)} params"
                )
            named = [(n, p) for n, (_, p) in zip(given_names, named)]
        if "learning_rate" in group:
            group["lr_mult"] = check_number("param_group['learning_rate']", group.pop("learning_rate"), lo=0.0)
        existing = {p for g in self.param_groups for p in g["params"]}
        seen: set[torch.Tensor] = set()
        for i, (_, p) in enumerate(named):
            if p in seen:
                raise ValueError(f"parameter {i} (shape {list(p.shape)}) appears twice in the parameter list")
            if p in existing:
                raise ValueError(f"parameter {i} (shape {list(p.shape)}) is already in another parameter group")
            if not p.is_leaf:
                raise ValueError(f"parameter {i} is not a leaf tensor; only leaves can be optimized")
            if not (p.is_floating_point() or p.is_complex()):
                raise ValueError(f"parameter {i} must be a floating-point tensor, got dtype {p.dtype}")
            seen.add(p)
        taken = set(self._names.values())
        names = []
        for i, (given, p) in enumerate(named):
            name = given or fluid_name(p) or self._generated_name(len(self._names) + i, taken)
            if name in taken:
                raise ValueError(f"two parameters share the name {name!r}; names key the optimizer state")
            taken.add(name)
            names.append(name)
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        group["params"] = [p for _, p in named]
        self._check_group(group)
        for name, (_, p) in zip(names, named):
            self._names[p] = name
        group["param_names"] = names
        self.param_groups.append(group)
        self._initial_hparams.append(self._hparams(group))

    @staticmethod
    @staticmethod
    def _hparams(group: Mapping) -> dict:
        return {k: v for k, v in group.items() if k not in ("params", "param_names")}

    def _hparams_changed(self) -> bool:
        """Whether any group's hyper-parameters differ from when it was added (set_lr, a
        torch LR scheduler, ...): only then does ``state_dict`` need ``param_groups``."""
        return any(self._hparams(g) != initial for g, initial in zip(self.param_groups, self._initial_hparams))

    @staticmethod
    def _generated_name(k: int, taken: set[str]) -> str:
        """``param_<k>``, k the parameter's position in this optimizer (skipping taken names)."""
        while f"param_{k}" in taken:
            k += 1
        return f"param_{k}"

    def _check_group(self, group: dict) -> None:
        check_number("lr", group["lr"], lo=0.0)
        check_number("lr_mult", group["lr_mult"], lo=0.0)

    def _param_name(self, p: torch.Tensor) -> str:
        return self._names[p]

    def _group_of(self) -> dict:
        return {p: g for g in self.param_groups for p in g["params"]}

    # -------------------------------------------------------- learning rate
    def _lr_value_for_update(self) -> float | None:
        """The schedule's lr for this update (fluid decays advance here), or None for a float lr."""
        if self._schedule is None:
            return None
        value = schedules.take(self._schedule)
        self._last_lr = value
        for g in self.param_groups:
            g["lr"] = value
        return value

    def current_step_lr(self) -> float:
        """The learning rate of the current step (Paddle dygraph ``current_step_lr``).

        With a fluid ``LearningRateDecay`` this is the lr the last update used (its value
        at ``step_num`` before the first update); with a 2.x ``LRScheduler`` its current
        value; otherwise the (first group's) float lr.
        """
        if self._schedule is not None:
            if self._last_lr is not None and schedules.is_fluid_decay(self._schedule):
                return self._last_lr
            return schedules.peek(self._schedule)
        if self.param_groups:
            return float(self.param_groups[0]["lr"])
        return float(self.defaults["lr"])

    def get_lr(self) -> float:
        """Paddle 2.x name: the current learning rate (see :meth:`current_step_lr`)."""
        return self.current_step_lr()

    def set_lr(self, value) -> None:
        """Set the learning rate of every group by hand (a float or a 1-element tensor).

        Raises RuntimeError when a learning-rate schedule is attached (as Paddle does).
        """
        if self._schedule is not None:
            raise RuntimeError(
                f"set_lr cannot be used while a learning-rate schedule "
                f"({type(self._schedule).__name__}) is attached: the two would conflict"
            )
        if isinstance(value, (torch.Tensor, np.ndarray)):
            t = torch.as_tensor(value)
            if t.numel() != 1:
                raise ValueError(f"set_lr needs a float or a 1-element tensor, got a tensor of shape {list(t.shape)}")
            # the shortest decimal that rounds to the same value in the tensor's dtype:
            # a float32 0.7 gives 0.7 (what Paddle prints), not 0.699999988079071
            first = t.detach().cpu().reshape(-1)[:1]
            first = first if first.dtype == torch.float64 else first.to(torch.float32)
            value = float(str(first.numpy()[0]))
        elif not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise TypeError(f"set_lr needs a float or a 1-element tensor, got {type(value).__name__}")
        value = check_number("learning_rate", value, lo=0.0)
        self.defaults["lr"] = value
        for g in self.param_groups:
            g["lr"] = value

    # ------------------------------------------------------------ pipeline
    def _collect(self, parameter_list=None, no_grad_set=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(param, grad) for every trainable managed parameter that has a gradient."""
        wanted = None
        if parameter_list is not None:
            wanted = set()
            for item in parameter_list:
                wanted.add(item if isinstance(item, str) else self._names.get(item, id(item)))
        excluded = set()
        for item in no_grad_set or ():
            excluded.add(item if isinstance(item, str) else self._names.get(item, id(item)))
        names = self._names if wanted is not None or excluded else None
        pairs = []
        for g in self.param_groups:
            for p in g["params"]:
                grad = p.grad
                if (grad is None or not p.requires_grad or getattr(p, "trainable", True) is False
                        or getattr(p, "stop_gradient", False) is True):
                    continue
                if names is not None:
                    name = names[p]
                    if (wanted is not None and name not in wanted) or name in excluded:
                        continue
                pairs.append((p, grad))
        return pairs

    def _validate(self, params_grads) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Check every pair before anything changes; drop pairs whose grad is None."""
        out = []
        for i, pair in enumerate(params_grads):
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise TypeError(f"params_grads[{i}] must be a (param, grad) pair, got {type(pair).__name__}")
            p, g = pair
            if g is None:
                continue
            name = self._names.get(p) if isinstance(p, torch.Tensor) else None
            if name is None:
                raise ValueError(f"params_grads[{i}]: the parameter is not managed by this optimizer")
            if not isinstance(g, torch.Tensor):
                raise TypeError(f"gradient of {name!r} must be a tensor, got {type(g).__name__}")
            if tuple(g.shape) != tuple(p.shape):
                raise ValueError(
                    f"gradient of {name!r} has shape {list(g.shape)}, expected the parameter's shape {list(p.shape)}"
                )
            if not g.is_floating_point():
                raise ValueError(f"gradient of {name!r} must be floating point, got dtype {g.dtype}")
            if g.device != p.device:
                raise ValueError(f"gradient of {name!r} is on {g.device}, but the parameter is on {p.device}")
            out.append((p, g))
        return out

    @torch.no_grad()
    def _run_pipeline(self, params_grads, *, from_grad_attrs: bool = False) -> None:
        """The update. ``from_grad_attrs``: the pairs are managed parameters and their
        ``.grad``, which torch keeps in the parameter's shape, dtype and device (it refuses
        any other assignment), so :meth:`_validate` has nothing left to check."""
        pairs = self._prepare_grads(params_grads if from_grad_attrs else self._validate(params_grads))
        shard = self._sharding if self._sharding is not None and self._sharding.engaged else None
        if shard is not None:  # ZeRO-1: (reduced) gradients of this rank's shard; a skip is agreed
            pairs = shard.own_pairs(pairs)
        if pairs is None:  # the update is skipped: nothing (state, params, schedule) changes
            return
        self._lr_value_for_update()
        pairs, steps = self._clip_plan(pairs, shard)
        groups = self._group_of()
        group_lr = {id(g): float(g["lr"]) * float(g["lr_mult"]) for g in self.param_groups}
        items = []
        for (p, g), step in zip(pairs, steps):
            group = groups[p]
            reg = self._regularizer_of(p, self.regularization)
            prep = NO_PREP if reg is None and step.is_noop() else GradPrep(step, reg)
            items.append((p, g, group, self._param_lr(p, group_lr[id(group)]), prep))
        self._update(items)
        if shard is not None:  # every rank gets the parameters their owners updated
            shard.sync_params()

    def _clip_plan(self, pairs, shard) -> tuple[list, list[ClipStep]]:
        """``(pairs, one ClipStep per pair)``: the clip's plan, over all ranks' shards under
        sharding; a clip without a plan clips the pairs here (and every step is a no-op)."""
        clip = self._grad_clip
        if clip is not None and (pairs or shard is not None):
            if clip.plannable():
                if shard is not None:
                    return pairs, shard.clip_plan(clip, pairs)
                return pairs, clip.plan([g for _, g in pairs], [need_clip(p) for p, _ in pairs])
            pairs = clip(pairs) if shard is None else shard.clip(clip, pairs)
        return pairs, [ClipStep()] * len(pairs)

    @staticmethod
    def _param_lr(p: torch.Tensor, lr: float) -> float:
        """``lr`` (group lr x group multiplier) x the parameter's ``optimize_attr['learning_rate']``."""
        attr = getattr(p, "optimize_attr", None)
        if attr is not None and isinstance(attr, Mapping):
            lr *= float(attr.get("learning_rate", 1.0))
        return lr

    def _update(self, items) -> None:
        """Apply the kernel to ``(param, grad, group, lr, prep)`` items, ``prep`` (clip and
        regularization) applied to the gradient first (fast paths override this)."""
        for p, g, group, lr, prep in items:
            self._kernel_update(p, prep.apply(p, g), self._state_for(p, group), lr=lr, group=group)

    def _state_for(self, p: torch.Tensor, group: dict) -> dict:
        state = self.state.get(p)
        if not state:
            state = self._new_state(p, group)
            self._codec.apply_pending(self._names[p], state)
            self.state[p] = state
        return state

    # ---------------------------------------------- hooks for subclasses
    def _accumulator_names(self, group: Mapping | None = None) -> list[str]:
        """Paddle accumulator names this configuration keeps, e.g. ['mean_square']."""
        return []

    def _compatible_accumulator_names(self) -> list[str]:
        """Accumulator names Paddle emits that this configuration accepts and ignores."""
        return []

    def _new_state(self, p: torch.Tensor, group: Mapping | None = None) -> dict:
        return {}

    def _prepare_grads(self, pairs):
        """Validated ``(param, grad)`` pairs -> the pairs to clip and update, or None to skip
        this update entirely. Runs before anything changes; must not modify ``param.grad``."""
        return pairs

    def _extra_state_dict(self) -> dict:
        """Entries besides the accumulators for ``state_dict()`` (e.g. ``master_weights``)."""
        return {}

    def _check_extra_state(self, state_dict: Mapping, rename, report: LoadReport, loaded_params):
        """Check a loaded state dict's extra entries into ``report``; return a callable that
        applies them (called only once everything has been checked)."""
        return lambda: None

    def _kernel_update(self, param, grad, state, *, lr: float, group: Mapping) -> None:
        raise NotImplementedError

    # ------------------------------------------------------- torch API
    @torch.no_grad()
    def step(self, closure=None):
        """torch API: one update from the gradients in ``.grad`` (``closure`` re-evaluates the loss)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._run_pipeline(self._collect(), from_grad_attrs=True)
        return loss

    def state_dict(self) -> dict:
        """Paddle-style keys: ``<param>_<accumulator>_0`` -> tensor, plus ``LR_Scheduler``
        when a schedule is attached and ``param_groups`` (hyper-parameters by group).
        torch's state-dict hooks run around it (``register_state_dict_pre_hook`` /
        ``register_state_dict_post_hook``), as in ``torch.optim.Optimizer.state_dict``."""
        return self.paddle_state_dict()

    def paddle_state_dict(self) -> dict:
        """Paddle's layout (see :meth:`state_dict`), whatever ``state_dict()`` returns."""
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)
        out = self._codec.state_dict()
        for post_hook in self._optimizer_state_dict_post_hooks.values():
            result = post_hook(self, out)
            if result is not None:
                out = result
        return out

    def _load_with_hooks(self, state_dict, *, strict: bool, key_map) -> LoadReport:
        """torch's load hooks around :meth:`StateCodec.load`: pre-hooks may return a new
        state dict (the caller's is never modified); post-hooks run after a load."""
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = pre_hook(self, state_dict)
            if result is not None:
                state_dict = result
        report = self._codec.load(state_dict, strict=strict, key_map=key_map)
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)
        return report

    # hook dictionaries are dropped from copies and pickles, as torch.optim.Optimizer does
    _UNCOPIED = ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks", "_optimizer_state_dict_pre_hooks",
                 "_optimizer_state_dict_post_hooks", "_optimizer_load_state_dict_pre_hooks",
                 "_optimizer_load_state_dict_post_hooks")

    def __getstate__(self) -> dict:
        """Everything but the hooks (``copy.deepcopy`` and ``pickle`` keep names, options,
        precision state and counters; torch's own ``__getstate__`` keeps only
        ``defaults``, ``state`` and ``param_groups``)."""
        return {k: v for k, v in self.__dict__.items() if k not in self._UNCOPIED}

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)  # torch: restores the attributes, new hook dicts, step patching

    def set_state_dict(self, state_dict: Mapping, strict: bool = True, key_map=None) -> LoadReport:
        """Load a state dict; checks every key, shape and dtype before changing anything.

        ``strict=True`` raises one ValueError listing missing, unexpected and mismatched
        keys; ``strict=False`` loads what matches and returns the report. ``key_map``
        (a dict or a callable) renames parameter names found in the file.
        """
        return self._load_with_hooks(state_dict, strict=strict, key_map=key_map)

    set_dict = set_state_dict

    def torch_state_dict(self) -> dict:
        """The same state in torch.optim's positional layout (``state`` by index, with
        ``param_names`` in each group); ``set_state_dict``/``load_state_dict`` read both."""
        return self._codec.torch_style()

    @torch.no_grad()
    def to(self, device=None, dtype=None) -> "Optimizer":
        """Move every state tensor to ``device`` and/or cast floating ones to ``dtype``."""
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype if (dtype is not None and t.is_floating_point()) else None)

        for p, st in self.state.items():
            for acc in list(st):
                if isinstance(st[acc], torch.Tensor):
                    st[acc] = move(st[acc])
        self._codec.pending = {k: move(v) for k, v in self._codec.pending.items()}
        return self

    def load_state_dict(self, state_dict: Mapping) -> None:  # torch API (Lightning resume)
        """torch API: :meth:`set_state_dict` with ``strict=True`` (either layout)."""
        self._load_with_hooks(state_dict, strict=True, key_map=None)

    # ------------------------------------------------------- fluid API
    def backward(self, loss, startup_program=None, parameter_list=None, no_grad_set=None, callbacks=None):
        """Eager mode: the gradients are those already computed by ``loss.backward()``
        (backward is never run twice); returns ``[(param, grad)]``.
        Static mode (``loss`` a program Variable): appends the grad ops."""
        if _is_static(loss):  # --- static mode (helper C) ---
            return _static().backward(self, loss, startup_program, self._static_params(parameter_list),
                                      no_grad_set, callbacks)
        return self._collect(parameter_list, no_grad_set)

    def apply_gradients(self, params_grads):
        """Clip, regularize and update the given pairs (sorted by parameter name, as Paddle)."""
        if params_grads and _is_static(params_grads[0][0]):  # --- static mode (helper C) ---
            return _static().apply_gradients(self, params_grads)
        pairs = [pg for pg in params_grads if pg[1] is not None] if params_grads else []
        pairs.sort(key=lambda pg: self._names.get(pg[0], ""))
        self._run_pipeline(pairs)
        return []

    def apply_optimize(self, loss, startup_program, params_grads):
        """Second half of ``minimize``: apply the update for ``params_grads``."""
        if _is_static(loss):  # --- static mode (helper C) ---
            return _static().apply_optimize(self, loss, startup_program, params_grads)
        return self.apply_gradients(params_grads)

    def minimize(self, loss, startup_program=None, parameter_list=None, no_grad_set=None):
        """``backward`` then ``apply_optimize``; returns ``(optimize_ops, params_grads)``
        (``optimize_ops`` is empty in eager mode; the appended ops in static mode)."""
        if _is_static(loss):  # --- static mode (helper C) ---
            return _static().minimize(self, loss, startup_program, self._static_params(parameter_list),
                                      no_grad_set)
        params_grads = self.backward(loss, startup_program, parameter_list, no_grad_set)
        optimize_ops = self.apply_optimize(loss, startup_program, params_grads)
        return optimize_ops, params_grads

    def append_regularization_ops(self, parameters_and_grads, regularization=None):
        """Return the pairs with regularized gradients: a parameter's own ``regularizer``
        if set, else ``regularization`` (the global one); grads that are None pass through."""
        regularization = as_regularizer(regularization)
        if parameters_and_grads and _is_static(parameters_and_grads[0][0]):  # --- static mode (helper C) ---
            return _static().append_regularization_ops(self, parameters_and_grads, regularization)
        out = []
        with torch.no_grad():
            for p, g in parameters_and_grads:
                reg = self._regularizer_of(p, regularization)
                out.append((p, g if g is None or reg is None else reg(p, g)))
        return out

    @staticmethod
    def _regularizer_of(p, regularization):
        """``p``'s own ``regularizer`` if set, else ``regularization``."""
        return getattr(p, "regularizer", None) or regularization

    def _static_params(self, parameter_list):  # --- static mode (helper C) ---
        return parameter_list if parameter_list is not None else self._static_parameter_list

    def clear_grad(self, set_to_zero: bool = True) -> None:
        """Zero every managed gradient in place (``set_to_zero=False``: set them to None)."""
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if set_to_zero:
                    if p.grad.is_sparse:
                        p.grad = torch.zeros_like(p)
                    else:
                        p.grad.detach_().zero_()
                else:
                    p.grad = None

    def clear_gradients(self) -> None:
        """Paddle fluid name: zero every managed gradient (they stay allocated)."""
        self.clear_grad(set_to_zero=True)

    def __repr__(self) -> str:
        hp = {k: v for k, v in self.defaults.items() if k != "lr_mult"}
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in hp.items())})"
