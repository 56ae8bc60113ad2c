"""Argument checks shared by every layer. Errors name the argument, the value and what is allowed.

A value of the wrong type raises :class:`ArgumentTypeError`, which is both a ``TypeError``
and a ``ValueError``; a number of the right type outside its range raises a ``ValueError`` that also carries
the argument's name and value (:func:`range_error`).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import sys

__all__ = [
    "ArgumentTypeError",
    "range_error",
    "ArgumentAssertionError",
    "asserted_by_paddle",
    "shown",
    "check_number",
    "check_choice",
    "check_int",
    "check_bool",
    "check_increasing",
    "check_callable",
]


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a ``TypeError``; also a ``ValueError``, so code that
    treats every bad argument as a ``ValueError`` catches it too)."""


def range_error(message: str, argument: str, value) -> ValueError:
    """The ``ValueError`` for a number of the right type outside its allowed range, carrying
    ``argument`` and ``value`` (the argument's name and the value given) as attributes of
    those names: a front end may reword it (``torchfluid.optim`` does, in torch's words)."""
    error = ValueError(message)
    error.argument, error.value = argument, value
    return error


class ArgumentAssertionError(ValueError, AssertionError):
    """A bad argument that Paddle refuses with an ``assert``: a ``ValueError``, as every bad
    argument here, and also an ``AssertionError``, so Paddle code that catches that (and
    Paddle's own tests) catches it too."""


@contextlib.contextmanager
def asserted_by_paddle(rule: str):
    """Re-raise a bad argument's ``TypeError`` / ``ValueError`` from the block as an
    :class:`ArgumentAssertionError` led by Paddle's assertion text ``rule``."""
    try:
        yield
    except (TypeError, ValueError) as e:
        raise ArgumentAssertionError(f"{rule} ({e})") from None


def _fmt_range(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi:g}"
    return ""


def shown(value) -> str:
    """``repr(value)``; an integer of more than 40 digits by its number of digits."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value).bit_length() > 128:
        try:
            digits = len(str(abs(int(value))))
        except ValueError:  # more digits than Python converts to text
            return f"an integer of more than {sys.get_int_max_str_digits()} digits"
        if digits > 40:
            return f"{'a negative' if value < 0 else 'an'} integer of {digits} digits"
    return repr(value)


def check_number(
    name: str,
    value,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """Return ``float(value)`` after checking it is a finite real number (not a bool) within the range.

    An integer (``int``, ``numpy.int64``, ...) is compared with the bounds exactly, before any
    conversion to float: ``2**63 - 1`` is within ``hi=2**63 - 1`` and ``2**53 + 1`` is above
    ``hi=2**53``. An integer in range but beyond float64's range (``|v| >= 2**1024``) is refused.

    >>> check_number("rho", 1.5, lo=0.0, hi=1.0, hi_open=True)
    Traceback (most recent call last):
    ...
    ValueError: rho must be in [0, 1), got 1.5
    """
    allowed = _fmt_range(lo, hi, lo_open, hi_open)
    if value is None:
        raise ArgumentTypeError(f"{name} must be {allowed or 'a real number'}, got None")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        what = f"a real number {allowed}" if allowed else "a real number"
        raise ArgumentTypeError(f"{name} must be {what}, got {value!r} of type {type(value).__name__}")
    exact = int(value) if isinstance(value, numbers.Integral) else float(value)  # int <-> float compare exactly
    if isinstance(exact, float) and not math.isfinite(exact):
        raise range_error(f"{name} must be {allowed or 'a finite number'}, got {value!r}", name, value)
    if lo is not None and (exact < lo or (lo_open and exact == lo)):
        raise range_error(f"{name} must be {allowed}, got {shown(value)}", name, value)
    if hi is not None and (exact > hi or (hi_open and exact == hi)):
        raise range_error(f"{name} must be {allowed}, got {shown(value)}", name, value)
    try:
        return float(exact)
    except OverflowError:  # an integer of 309 digits or more
        message = f"{name} must be {allowed or 'a finite number'}, got {shown(value)}"
        raise range_error(message, name, value) from None


def check_choice(name: str, value, choices):
    """The one of ``choices`` equal to ``value`` (of its type or a subclass: ``"sum"``, not ``b"sum"``).

    A value of no choice's type raises :class:`ArgumentTypeError`, another value ``ValueError``.

    >>> check_choice("nonfinite", "ignore", ("propagate", "skip", "raise"))
    Traceback (most recent call last):
    ...
    ValueError: nonfinite must be one of 'propagate', 'skip', 'raise', got 'ignore'
    """
    for choice in choices:
        if value is choice or (isinstance(value, type(choice)) and value == choice):
            return choice
    message = f"{name} must be one of {', '.join(map(repr, choices))}, got {shown(value)}"
    if not any(isinstance(value, type(c)) for c in choices):
        raise ArgumentTypeError(message)
    raise ValueError(message)


def check_int(name: str, value, *, lo: int | None = None, lo_open: bool = False) -> int:
    """Return ``int(value)`` after checking it is an integer (not a bool) ``>= lo`` (``> lo`` if ``lo_open``).

    >>> check_int("step_size", 0, lo=0, lo_open=True)
    Traceback (most recent call last):
    ...
    ValueError: step_size must be an int > 0, got 0
    """
    allowed = _fmt_range(lo, None, lo_open, False)
    message = f"{name} must be an int{' ' + allowed if allowed else ''}, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(message)
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ValueError(message)
    return int(value)


def check_bool(name: str, value) -> bool:
    """``value`` itself, which must be ``True`` or ``False`` (not 0/1 or a string)."""
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_increasing(name: str, seq) -> list:
    """A list or tuple of finite real numbers, strictly increasing; returns a list."""
    if not isinstance(seq, (list, tuple)):
        raise ArgumentTypeError(f"{name} must be a list or tuple, got {type(seq).__name__}")
    for i, v in enumerate(seq):
        check_number(f"{name}[{i}]", v)
    for i in range(len(seq) - 1):
        if not seq[i] < seq[i + 1]:
            raise ValueError(
                f"{name} must be strictly increasing, got {list(seq)!r} "
                f"({name}[{i}]={seq[i]!r} >= {name}[{i + 1}]={seq[i + 1]!r})"
            )
    return list(seq)


def check_callable(name: str, fn, owner: str):
    """``fn`` itself, which must be callable (``owner`` names the class or function taking it)."""
    if not callable(fn):
        raise ArgumentTypeError(f"{name} in {owner} must be callable, got {fn!r} ({type(fn).__name__})")
    return fn
