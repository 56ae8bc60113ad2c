"""State-dict plumbing shared by the fluid decays and the 2.x schedulers.

A schedule's state is a flat dict of plain Python values (int, float, bool, None)
whose keys the schedule names in ``self.keys`` (set by its ``state_keys()`` /
``_state_keys()`` method, Paddle's protocol), plus optional nested schedule states
(e.g. the schedule a warm-up wraps). ``load`` checks the whole dict, nested parts
included, before it changes anything.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

__all__ = ["to_plain", "observed_value", "observed_copy", "dump", "load"]


def to_plain(value, where: str):
    """A Python number/bool/None from a number, a 1-element numpy array or tensor."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    numel = value.numel() if callable(getattr(value, "numel", None)) else getattr(value, "size", None)
    if numel == 1 and hasattr(value, "item"):
        return to_plain(value.item(), where)
    raise TypeError(
        f"{where} must be a number, None, or a 1-element array/tensor, got {value!r} ({type(value).__name__})"
    )


def observed_value(name: str, value) -> float:
    """A plateau scheduler's observation (a number or a 1-element array/tensor) as a float."""
    plain = to_plain(value, name)
    if plain is None or isinstance(plain, bool):
        raise TypeError(f"{name} must be a number or a 1-element array/tensor, got {value!r}")
    return float(plain)


def observed_copy(name: str, value):
    """A plateau scheduler's best observation kept as Paddle keeps it, as given: a detached
    copy of a tensor or array (so a later change to the caller's value changes nothing), a
    float for a number."""
    if callable(getattr(value, "detach", None)):
        return value.detach().clone()
    if callable(getattr(value, "copy", None)) and hasattr(value, "shape"):
        return value.copy()
    return observed_value(name, value)


def dump(obj, keys, nested: Mapping) -> dict:
    """``{key: plain(obj.key)}`` for the keys present on ``obj``, plus nested states."""
    out = {}
    for key in keys:
        if key in obj.__dict__:
            out[key] = to_plain(obj.__dict__[key], f"{type(obj).__name__}.{key}")
    for key, sub in nested.items():
        out[key] = sub.state_dict()
    return out


def _check(obj, state, where: str) -> list[tuple[object, dict]]:
    """``(schedule, its plain values)`` for ``obj`` and each nested schedule, from ``state``;
    raises before anything is assigned."""
    keys, nested = obj._state_layout()
    if not isinstance(state, Mapping):
        raise TypeError(f"{where}: state_dict must be a dict, got {type(state).__name__}")
    expected = list(keys) + list(nested)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise RuntimeError(
            f"{where}: state_dict does not match this {type(obj).__name__}: "
            f"missing keys {missing}, unexpected keys {unexpected} (expected exactly {expected})"
        )
    out = [(obj, {k: to_plain(state[k], f"{where}: state_dict[{k!r}]") for k in keys})]
    for key, sub in nested.items():
        out += _check(sub, state[key], f"{where}[{key!r}]")
    return out


def load(obj, state) -> None:
    """Validate ``state`` against ``obj``'s layout (nested included), then assign it."""
    for target, plain in _check(obj, state, f"{type(obj).__name__}.set_state_dict"):
        target.__dict__.update(plain)


class StateMixin:
    """``state_dict`` / ``set_state_dict`` (alias ``set_dict``) for both schedule families.

    A class lists the attributes it saves in ``_saved_keys()`` and the schedules nested in
    it in ``_nested_schedulers()``.
    """

    def _saved_keys(self) -> list:
        raise NotImplementedError

    def _nested_schedulers(self) -> dict:
        return {}

    def _state_layout(self):
        return list(self._saved_keys()), self._nested_schedulers()

    def state_dict(self) -> dict:
        """The schedule's state as a dict of plain Python numbers (JSON-serializable)."""
        keys, nested = self._state_layout()
        return dump(self, keys, nested)

    def set_state_dict(self, state_dict):
        """Restore ``state_dict()``'s output; missing or unexpected keys raise ``RuntimeError``."""
        load(self, state_dict)

    set_dict = set_state_dict
