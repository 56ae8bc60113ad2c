"""Argument checks shared by every layer. Errors name the argument, the value and what is allowed."""

from __future__ import annotations

import math
import numbers

__all__ = ["check_number", "check_bool"]


def _fmt_range(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi:g}"
    return "a finite number"


def check_number(
    name: str,
    value,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """Return ``float(value)`` after checking it is a finite real number within the range.

    >>> check_number("rho", 1.5, lo=0.0, hi=1.0, hi_open=True)
    Traceback (most recent call last):
    ...
    ValueError: rho must be in [0, 1), got 1.5
    """
    allowed = _fmt_range(lo, hi, lo_open, hi_open)
    if value is None:
        raise ValueError(f"{name} must be {allowed}, got None")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number {allowed}, got {value!r} of type {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return v


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value
