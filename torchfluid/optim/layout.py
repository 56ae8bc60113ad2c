"""Converting optimizer state between Paddle's layout and torch.optim's.

Two layouts hold the same RMSProp state:

* **Paddle** (``torchfluid.optimizer``): flat keys ``<param name>_<accumulator>_0`` ->
  tensor, accumulators ``mean_square``, ``mean_grad``, ``momentum`` (plus
  ``LR_Scheduler``, ``param_groups``, ``master_weights`` entries).
* **torch** (``torchfluid.optim``, ``torch.optim``): ``{'state': {index: {name: tensor}},
  'param_groups': [{..., 'params': [index, ...], 'param_names': [...]}]}``, per-parameter
  entries ``square_avg``, ``grad_avg``, ``momentum_buffer`` and ``step``.

The accumulator and group-key tables (from :mod:`torchfluid.optimizer.state`) are the
whole translation; the functions only move entries between the two shapes. Parameters are matched by name wherever both
sides know names (``param_names`` in torch's layout, the key prefix in Paddle's), by
position otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ..optimizer.state import TORCH_ACCUMULATORS, TORCH_GROUP_KEYS

__all__ = [
    "TORCH_TO_PADDLE_ACC",
    "PADDLE_TO_TORCH_ACC",
    "TORCH_TO_PADDLE_GROUP",
    "PADDLE_TO_TORCH_GROUP",
    "is_torch_layout",
    "paddle_to_torch",
    "reorder_by_name",
    "torch_to_paddle",
]

# torch.optim.RMSprop's per-parameter entry / group key -> torchfluid's accumulator / group key
TORCH_TO_PADDLE_ACC = TORCH_ACCUMULATORS
PADDLE_TO_TORCH_ACC = {v: k for k, v in TORCH_TO_PADDLE_ACC.items()}
TORCH_TO_PADDLE_GROUP = TORCH_GROUP_KEYS
PADDLE_TO_TORCH_GROUP = {v: k for k, v in TORCH_TO_PADDLE_GROUP.items()}


def is_torch_layout(sd) -> bool:
    """Whether ``sd`` is in torch.optim's layout (``state`` mapping and ``param_groups``)."""
    return isinstance(sd, Mapping) and isinstance(sd.get("state"), Mapping) and "param_groups" in sd


def _paddle_key(prefix: str, name: str, acc: str) -> str:
    return f"{prefix}{name}_{acc}_0"


def torch_to_paddle(sd: Mapping, names: Sequence[Sequence[str]], *, prefix: str = "") -> dict:
    """A torch-layout state dict as Paddle keys. ``names[i]`` names group ``i``'s parameters
    when the dict carries no ``param_names``. ``step`` is left out (Paddle's RMSProp keeps
    no step count); unknown per-parameter entries keep their own name as accumulator."""
    out: dict = {}
    groups = sd["param_groups"]
    for i, group in enumerate(groups):
        indices = list(group["params"])
        group_names = group.get("param_names")
        if group_names is None:
            if i >= len(names) or len(names[i]) != len(indices):
                raise ValueError(
                    f"state_dict['param_groups'][{i}] has {len(indices)} params and no param_names, and "
                    f"this optimizer has no group of that size to match them by position"
                )
            group_names = names[i]
        for index, name in zip(indices, group_names, strict=True):
            for key, value in sd["state"].get(index, {}).items():
                if key == "step":
                    continue
                out[_paddle_key(prefix, name, TORCH_TO_PADDLE_ACC.get(key, key))] = value
    return out


def paddle_to_torch(
    sd: Mapping,
    groups: Sequence[Mapping],
    names: Sequence[Sequence[str]],
    *,
    prefix: str = "",
    accumulators: Sequence[str] = tuple(TORCH_TO_PADDLE_ACC.values()),
) -> dict:
    """A Paddle-keyed state dict in torch's layout for an optimizer whose group ``i`` has
    hyper-parameters ``groups[i]`` (without ``params``) and parameter names ``names[i]``.
    Keys that name no parameter or accumulator raise ValueError (listing them all).
    A parameter gets ``step`` 0 (Paddle keeps no step count)."""
    wanted: dict[str, tuple[int, str]] = {}
    index = 0
    for group_names in names:
        for name in group_names:
            for acc in accumulators:
                wanted[_paddle_key(prefix, name, acc)] = (index, PADDLE_TO_TORCH_ACC.get(acc, acc))
            index += 1
    state: dict[int, dict] = {}
    unexpected = []
    for key, value in sd.items():
        if key in ("param_groups", "LR_Scheduler", "StructuredToParameterName@@"):
            continue
        if key not in wanted:
            unexpected.append(repr(key))
            continue
        i, acc = wanted[key]
        entry = state.setdefault(i, {"step": torch.tensor(0.0)})
        entry[acc] = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    if unexpected:
        raise ValueError(
            "Paddle-layout state_dict has keys that name no parameter/accumulator of this optimizer: "
            + ", ".join(unexpected)
        )
    out_groups = []
    index = 0
    for group, group_names in zip(groups, names, strict=True):
        g = {k: v for k, v in group.items() if k not in ("params", "param_names")}
        g["params"] = list(range(index, index + len(group_names)))
        g["param_names"] = list(group_names)
        index += len(group_names)
        out_groups.append(g)
    return {"state": {i: state[i] for i in sorted(state)}, "param_groups": out_groups}


def reorder_by_name(sd: Mapping, names: Sequence[Sequence[str]]) -> dict:
    """``sd`` (torch layout) with each group's parameters permuted into the order of
    ``names[i]``, when the saved group carries ``param_names`` that are the same set in
    another order; otherwise ``sd`` unchanged (torch matches by position)."""
    groups = sd["param_groups"]
    if len(groups) != len(names):
        return dict(sd)
    state = dict(sd["state"])
    new_groups = []
    moved: dict = {}
    for group, ours in zip(groups, names, strict=True):
        saved = group.get("param_names")
        if saved is None or list(saved) == list(ours) or sorted(saved) != sorted(ours):
            new_groups.append(group)
            continue
        by_name = dict(zip(saved, group["params"], strict=True))
        slots = list(group["params"])
        for slot, name in zip(slots, ours, strict=True):
            if by_name[name] in state:
                moved[slot] = state[by_name[name]]
        for slot in slots:
            state.pop(slot, None)
        new_groups.append({**group, "param_names": list(ours)})
    if not moved and all(a is b for a, b in zip(new_groups, groups, strict=True)):
        return dict(sd)
    state.update(moved)
    return {**sd, "state": state, "param_groups": new_groups}
