"""Normalising the ``parameters=`` argument into torch param groups with stable names.

Accepted forms: an iterable of tensors (``model.parameters()``), of ``(name, tensor)``
pairs (``model.named_parameters()``), a ``{name: tensor}`` dict, or a list of group
dicts (``{'params': ..., 'lr': ..., 'learning_rate': ...}``). Sets are rejected (their
order is not stable, so state could not be matched back), and so are duplicates.

A parameter's name, in order of preference: the name given with it, its ``_fluid_name``
attribute (dygraph layers set it, e.g. ``linear_0.w_0``), else ``param_<k>`` with k its
position in this optimizer. State is keyed by these names, never by position alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

__all__ = ["fluid_name", "split_named", "is_group_list", "refuse_single_tensor"]


def fluid_name(param) -> str | None:
    """The stable Paddle-style name a parameter carries, if any."""
    name = getattr(param, "_fluid_name", None)
    return name if isinstance(name, str) and name else None


def split_named(params, argname: str = "parameters") -> list[tuple[str | None, torch.Tensor]]:
    """``params`` (tensors, (name, tensor) pairs or a dict) -> list of (name or None, tensor).
    A single tensor is refused (:func:`refuse_single_tensor`); a param group's is a list of one
    (the caller's, as torch's ``add_param_group``)."""
    refuse_single_tensor(params, argname)
    if isinstance(params, (set, frozenset)):
        raise TypeError(
            f"{argname} must be an ordered iterable (list, tuple, generator, dict), got a set: "
            f"its order changes between runs, so optimizer state could not be matched to parameters"
        )
    if isinstance(params, Mapping):
        items = list(params.items())
    elif isinstance(params, Iterable) and not isinstance(params, (str, bytes)):
        items = list(params)
    else:
        raise TypeError(f"{argname} must be an iterable of tensors, got {type(params).__name__}")
    out: list[tuple[str | None, torch.Tensor]] = []
    for i, item in enumerate(items):
        if isinstance(item, torch.Tensor):
            out.append((None, item))
        elif (
            isinstance(item, tuple)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], torch.Tensor)
        ):
            out.append((item[0], item[1]))
        else:
            raise TypeError(
                f"{argname}[{i}] must be a torch.Tensor or a (name, tensor) pair, got {type(item).__name__}"
            )
    return out


def refuse_single_tensor(params, argname: str = "parameters") -> None:
    """TypeError for a single tensor as the optimizer's parameters, as torch.optim refuses it
    (iterating it would give its rows, not the tensor)."""
    if isinstance(params, torch.Tensor):
        raise TypeError(
            f"{argname} must be an iterable of tensors, (name, tensor) pairs or a dict, got a single "
            "Tensor; wrap it in a list (torch.optim's words: params argument given to the optimizer should be "
            "an iterable of Tensors or dicts)"
        )


def is_group_list(params) -> bool:
    """True when ``params`` is a list of param-group dicts (torch / Paddle 2.x style)."""
    return isinstance(params, (list, tuple)) and len(params) > 0 and all(isinstance(g, Mapping) for g in params)
