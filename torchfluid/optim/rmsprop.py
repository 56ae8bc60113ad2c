"""``torchfluid.optim.RMSprop``: a drop-in replacement for ``torch.optim.RMSprop``.

Same signature, defaults, argument checks, error types, ``param_groups`` keys,
``state_dict()`` layout, hooks and maths as ``torch.optim.RMSprop``; the update runs on
torchfluid's kernels. With ``g`` the gradient, per parameter and step::

    g   = -g                    if maximize
    g   = g + weight_decay * p  if weight_decay != 0   (coupled L2, per group)
    v   = alpha * v + (1 - alpha) * g^2                                  square_avg
    m   = alpha * m + (1 - alpha) * g          (centered)                grad_avg
    den = sqrt(v - m^2) + eps   (centered)   or   sqrt(v) + eps           eps OUTSIDE the sqrt
    b   = momentum * b + g / den;  p -= lr * b   (momentum > 0)          momentum_buffer
    p  -= lr * g / den                           (momentum == 0)
    step += 1                                                             step

Paddle's RMSProp differs: eps inside the sqrt and lr inside the velocity; use
``torchfluid.optim.RMSProp`` (Paddle's maths, torch's layout) or
``torchfluid.optimizer.RMSProp`` (Paddle's maths and layout) for that.

Which kernel runs: dense contiguous float32/float64 parameters (complex ones as their
real view, as torch does) on CPU take the single-pass fused kernel
(:class:`torchfluid.kernels.fused_cpu.RMSPropTensors`), one call per group and dtype;
everything else (non-contiguous, other dtypes and devices, tensor subclasses such as
FSDP2's DTensor parameters, ``differentiable=True``) takes the reference kernel
(:func:`torchfluid.kernels.rmsprop.rmsprop_`), which uses torch ops only. Both compute a
correctly rounded square root; torch's CPU ``sqrt`` is one ulp off for some inputs,
so results equal torch's to within a few ulps, not always bit for bit.

``torch.compile(opt.step)`` works: the update itself is a graph break and runs eagerly,
so compiled and eager steps agree bit for bit.

Arguments that only choose torch's implementation are accepted and have no effect on
the result: ``foreach`` (the fused kernel is used whenever it applies).
``capturable=True`` is checked as torch checks it (CUDA graph capture: parameters and
``step`` on a supported accelerator; on CPU ``step()`` raises torch's error).
``differentiable=True`` records the update in autograd (as torch does): step() then
runs with grad mode on, and the parameters must be non-leaf tensors.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch.optim.optimizer import _get_capturable_supported_devices, _get_scalar_dtype, _use_grad_for_differentiable

from .._grad_mode import closure_loss
from ..optimizer.state import optimizer_option_keys
from ..kernels import fused_cpu
from ..kernels.rmsprop import RMSPropHyper, plain_memory, rmsprop_graph_, rmsprop_update_
from . import layout

__all__ = ["RMSprop"]

_FUSED_DTYPES = {
    torch.float32: torch.float32,
    torch.float64: torch.float64,
    torch.complex64: torch.float32,
    torch.complex128: torch.float64,
}


# torch.optim.RMSprop's defaults, in its order (the order of every param group's keys)
_DEFAULT_KEYS = tuple("lr momentum alpha eps centered weight_decay capturable foreach maximize differentiable".split())


def _real(t: torch.Tensor | None) -> torch.Tensor | None:
    return torch.view_as_real(t) if t is not None and t.is_complex() else t


class RMSprop(torch.optim.Optimizer):
    """``torch.optim.RMSprop`` on torchfluid's kernels (module docstring: maths, kernels).

    Args:
        params: tensors, ``(name, tensor)`` pairs or param-group dicts (torch's forms).
        lr: learning rate (float or 1-element Tensor), >= 0.
        alpha: smoothing constant of the averages, >= 0.
        eps: added to the denominator OUTSIDE the sqrt, >= 0.
        weight_decay: coupled L2 coefficient (``g += weight_decay * p``), >= 0.
        momentum: >= 0; ``momentum_buffer`` is kept when > 0.
        centered: normalise by the estimated variance.
        capturable, foreach, maximize, differentiable: as torch (module docstring).

    Every one of these is also a per-group key (``add_param_group`` honours them).
    ``state_dict()`` is torch's layout; :meth:`paddle_state_dict` gives Paddle's keys,
    and :meth:`load_state_dict` reads both.
    """

    def __init__(
        self,
        params,
        lr: float | torch.Tensor = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        if isinstance(lr, torch.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        for what, value in (("epsilon", eps), ("momentum", momentum), ("weight_decay", weight_decay), ("alpha", alpha)):
            if not 0.0 <= value:
                raise ValueError(f"Invalid {what} value: {value}")
        args = locals()
        super().__init__(params, {key: args[key] for key in _DEFAULT_KEYS})

    def __setstate__(self, state):
        """torch's: fill keys missing from older pickles; a float ``step`` becomes a tensor."""
        super().__setstate__(state)
        for group in self.param_groups:
            for key in ("momentum", "centered", "foreach", "maximize", "differentiable", "capturable"):
                group.setdefault(key, self.defaults[key] if key in self.defaults else False)
            for p in group["params"]:
                st = self.state.get(p, {})
                if st and not torch.is_tensor(st["step"]):
                    device = p.device if group["capturable"] else None
                    st["step"] = torch.tensor(float(st["step"]), dtype=_get_scalar_dtype(), device=device)

    # ------------------------------------------------------------------ state
    def _state_of(self, p: torch.Tensor, group: Mapping) -> dict:
        state = self.state[p]
        if len(state) == 0:
            device = p.device if group["capturable"] else None
            state["step"] = torch.zeros((), dtype=_get_scalar_dtype(), device=device)
            state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if group["momentum"] > 0:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if group["centered"]:
                state["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    # ------------------------------------------------------------------- step
    @_use_grad_for_differentiable
    def step(self, closure=None):
        """One update of every parameter with a gradient (``closure`` re-evaluates the loss)."""
        loss = closure_loss(closure)
        for group in self.param_groups:
            items = []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("RMSprop does not support sparse gradients")
                items.append((p, p.grad, self._state_of(p, group)))
            if items:
                _check_capturable(group, items)
                # the fused kernel's tables per (group, dtype), reused while the sizes stay (not
                # part of the optimizer's pickled or copied state: rebuilt on first use)
                _update_group(items, group, self.__dict__.setdefault("_kernel_tables", {}))
        return loss

    # ----------------------------------------------------------- state dicts
    def _names(self) -> list[list[str]]:
        """Each group's parameter names: ``param_names`` if given, else ``param_<k>`` (k the
        position in this optimizer)."""
        out, k = [], 0
        for g in self.param_groups:
            names = g.get("param_names") or [f"param_{k + i}" for i in range(len(g["params"]))]
            out.append(list(names))
            k += len(g["params"])
        return out

    def torch_state_dict(self) -> dict:
        """torch's layout (the same as :meth:`state_dict`)."""
        return self.state_dict()

    def paddle_state_dict(self) -> dict:
        """Paddle's keys: ``<param name>_<acc>_0`` with ``mean_square``, ``mean_grad``,
        ``momentum`` (``step`` is not part of Paddle's RMSProp state), plus ``param_groups``
        with this optimizer's hyper-parameters and names."""
        sd = self.state_dict()
        out = layout.torch_to_paddle(sd, self._names())
        out["param_groups"] = [{k: v for k, v in g.items() if k != "params"} for g in sd["param_groups"]]
        return out

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Load torch's layout (``torch.optim.RMSprop``'s, or this class's) or Paddle's keys
        (``torchfluid.optimizer``'s ``state_dict()`` / this class's ``paddle_state_dict()``).

        Parameters are matched by ``param_names`` when both sides have them, else by
        position as torch does. Group keys in torchfluid's spelling (``rho``,
        ``epsilon``) are read as ``alpha``/``eps``; keys this class does not know are
        dropped; keys the file lacks keep their current values. Torch's load hooks run.

        Paddle's ``momentum`` accumulator is torch's ``momentum_buffer`` only when it was
        kept with lr outside the velocity (``RMSProp.preset('torch')``,
        ``lr_in_momentum=False``); a file whose ``param_groups`` say otherwise raises
        ValueError (Paddle's default keeps lr inside, so its momentum is lr x torch's).
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        names = self._names()
        _refuse_lr_in_momentum(state_dict.get("param_groups"))
        if layout.is_torch_layout(state_dict):
            sd = layout.reorder_by_name(state_dict, names)
            sd = {**sd, "state": {i: _torch_entries(st) for i, st in sd["state"].items()}}
        else:  # the saved groups' hyper-parameters where they match ours, translated below
            saved = state_dict.get("param_groups")
            matches = isinstance(saved, (list, tuple)) and len(saved) == len(self.param_groups)
            sd = layout.paddle_to_torch(state_dict, saved if matches else self.param_groups, names)
        groups = sd["param_groups"]
        if isinstance(groups, (list, tuple)) and len(groups) == len(self.param_groups):
            sd = {
                **sd,
                "param_groups": [
                    _torch_group(saved, ours) for saved, ours in zip(groups, self.param_groups, strict=True)
                ],
            }
        super().load_state_dict(sd)


def _refuse_lr_in_momentum(groups) -> None:
    """torchfluid's Paddle-convention velocity (lr inside) is not torch's momentum_buffer."""
    for i, group in enumerate(groups if isinstance(groups, (list, tuple)) else ()):
        if isinstance(group, Mapping) and group.get("lr_in_momentum") and group.get("momentum"):
            raise ValueError(
                f"state_dict['param_groups'][{i}] was saved with lr inside the momentum "
                "(lr_in_momentum=True, Paddle's convention): its momentum is lr times torch's "
                "momentum_buffer; load it into torchfluid.optim.RMSProp instead"
            )


def _torch_entries(entry):
    """A per-parameter state entry with torchfluid's accumulator names read as torch's."""
    if not isinstance(entry, Mapping):
        return entry
    out = {layout.PADDLE_TO_TORCH_ACC.get(k, k): v for k, v in entry.items()}
    out.setdefault("step", torch.tensor(0.0))
    return out


def _torch_group(saved, ours: Mapping):
    """A saved group with torchfluid's spellings translated; of the optimizer options it sets
    only this class's are kept, and every key that is no optimizer's option (a scheduler's
    ``initial_lr``, ``max_lr``, ``swa_lr``, ...) is kept, as torch keeps it."""
    if not isinstance(saved, Mapping):
        return saved
    saved = {layout.PADDLE_TO_TORCH_GROUP.get(k, k): v for k, v in saved.items()}
    keys = set(ours) | {"params", "param_names"}
    options = optimizer_option_keys()
    out = {k: v for k, v in saved.items() if k in keys or (k not in options and isinstance(k, str))}
    for k, v in ours.items():
        if k not in ("params", "param_names"):
            out.setdefault(k, v)
    return out


def _check_capturable(group: Mapping, items) -> None:
    if group["capturable"] and not torch.compiler.is_compiling():
        supported = _get_capturable_supported_devices()
        for p, _, state in items:
            if not (p.device.type == state["step"].device.type and p.device.type in supported):
                raise AssertionError(
                    f"If capturable=True, params and state_steps must be on supported devices: {supported}."
                )


def _fusable(p: torch.Tensor, g: torch.Tensor, state: Mapping, group: Mapping) -> bool:
    """Whether ``(p, g, state)`` can take the fused CPU kernel (plain dense contiguous
    memory on CPU, float32/float64 or their complex types, grad of the same dtype)."""
    if group["differentiable"] or p.device.type != "cpu" or p.dtype not in _FUSED_DTYPES:
        return False
    tensors = [p, g] + [state[k] for k in ("square_avg", "grad_avg", "momentum_buffer") if k in state]
    return (
        all(plain_memory(t) and t.layout == torch.strided and t.dtype == p.dtype and t.is_contiguous() for t in tensors)
        and not g.requires_grad
    )


def _tables(cache: dict, key, params, centered: bool, has_moment: bool) -> fused_cpu.RMSPropTensors:
    """The kernel tables of one group's fused part, built again when its sizes or variant
    change (addresses and hyper-parameters are written at every call)."""
    numels = tuple(p.numel() for p in params)
    call = cache.get(key)
    if call is None or call.numels != numels or (call.centered, call.has_moment) != (centered, has_moment):
        call = cache[key] = fused_cpu.RMSPropTensors(
            numels, params[0].dtype, centered=centered, has_moment=has_moment, lr_in_momentum=False
        )
    return call


@torch.compiler.disable
def _update_group(items, group: Mapping, tables: dict) -> None:
    """The update of one group's ``(param, grad, state)`` items (module docstring);
    ``tables``: the fused kernel's tables, by (group, dtype), kept between steps.

    ``torch.compile(opt.step)`` breaks the graph here and runs the kernels eagerly: the
    fused kernel is opaque to the compiler, and traced elementwise ops may round
    differently (a traced ``addcmul_`` is not always an fma), so compiled and eager
    steps give the same numbers bit for bit."""
    lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
    momentum, wd = group["momentum"], group["weight_decay"]
    centered, maximize, differentiable = group["centered"], group["maximize"], group["differentiable"]
    if isinstance(lr, torch.Tensor) and not (differentiable or group["capturable"]):
        lr = lr.item()
    for _, _, state in items:
        state["step"] += 1
    hyper = RMSPropHyper(lr, alpha, eps, momentum, eps_in_sqrt=False, lr_in_momentum=False, float32_attrs=False)
    fused: dict[torch.dtype, list] = {}
    use_fused = not differentiable and not isinstance(lr, torch.Tensor) and fused_cpu.available()
    for p, g, state in items:
        if use_fused and _fusable(p, g, state, group):
            fused.setdefault(_FUSED_DTYPES[p.dtype], []).append((p, g, state))
            continue
        g = -g if maximize else g
        if wd != 0:
            g = g.add(p, alpha=wd)
        kernel = rmsprop_graph_ if differentiable else rmsprop_update_
        state_avgs = (
            _real(state["square_avg"]),
            _real(state.get("grad_avg")) if centered else None,
            _real(state.get("momentum_buffer")) if momentum > 0 else None,
        )
        kernel(_real(p), _real(g), state_avgs, hyper)
    for dtype, part in fused.items():
        params = [_real(p) for p, _, _ in part]
        call = _tables(tables, (id(group), dtype), params, centered, momentum > 0)
        call(
            params,
            [_real(g if wd == 0 else (-g if maximize else g).add(p, alpha=wd)) for p, g, _ in part],
            [_real(s["square_avg"]) for _, _, s in part],
            [_real(s["grad_avg"]) for _, _, s in part] if centered else None,
            [_real(s["momentum_buffer"]) for _, _, s in part] if momentum > 0 else None,
            lr=float(lr),
            rho=float(alpha),
            epsilon=float(eps),
            momentum=float(momentum),
            eps_in_sqrt=False,
            # coupled decay as torch's add(p, alpha=wd), one rounding (the kernel's l2 rounds twice)
            grad_scale=-1.0 if maximize and wd == 0 else 1.0,
        )
        # the kernel writes the memory directly: bump the version counters as torch's in-place
        # ops do, so a graph that saved a parameter before the step refuses to backward
        torch.autograd.graph.increment_version([p for p, _, _ in part])
