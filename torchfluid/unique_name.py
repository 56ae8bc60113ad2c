"""Unique names, as Paddle's ``fluid.unique_name`` (one counter per key).

``generate('linear')`` gives ``linear_0``, then ``linear_1``...; layers name their
parameters ``<layer full name>.w_<k>`` / ``.b_<k>`` through it (``linear_0.w_0``).
``guard()`` opens a fresh scope (restored on exit); ``dygraph.guard()`` and
``enable_dygraph()`` open one, so names restart in every dygraph block, as in Paddle.
Static-mode code (programs, optimizer accumulators) uses the same functions.
"""

from __future__ import annotations

import collections
import contextlib

__all__ = [
    "UniqueNameGenerator",
    "generate",
    "generate_with_ignorable_key",
    "switch",
    "guard",
    "dygraph_parameter_name_checker",
]


class UniqueNameGenerator:
    """Counter per key; ``prefix`` is prepended to every generated name."""

    def __init__(self, prefix: str | None = None):
        if prefix is not None and not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str or None, got {type(prefix).__name__}")
        self.ids: collections.defaultdict[str, int] = collections.defaultdict(int)
        self.prefix = prefix or ""
        # Parameter names already taken in this scope (dygraph mode rejects duplicates).
        self.parameter_names: set[str] = set()

    def __call__(self, key: str) -> str:
        if not isinstance(key, str):
            raise TypeError(f"key must be a str, got {type(key).__name__}")
        count = self.ids[key]
        self.ids[key] += 1
        return f"{self.prefix}{key}_{count}"


generator = UniqueNameGenerator()


def generate(key: str) -> str:
    """``key_<n>`` with n counting the calls for this key in the current scope."""
    return generator(key)


def generate_with_ignorable_key(key: str) -> str:
    """Same as :func:`generate` (Paddle ignores the key only while tracing dygraph)."""
    return generator(key)


def switch(new_generator: UniqueNameGenerator | None = None) -> UniqueNameGenerator:
    """Install ``new_generator`` (a fresh one when None) and return the previous one."""
    global generator
    if new_generator is not None and not isinstance(new_generator, UniqueNameGenerator):
        raise TypeError(f"new_generator must be a UniqueNameGenerator or None, got {type(new_generator).__name__}")
    old, generator = generator, (new_generator or UniqueNameGenerator())
    return old


@contextlib.contextmanager
def guard(new_generator=None):
    """A fresh naming scope; ``new_generator`` may be a generator or a prefix (str/bytes)."""
    if isinstance(new_generator, bytes):
        new_generator = new_generator.decode()
    if isinstance(new_generator, str):
        new_generator = UniqueNameGenerator(new_generator)
    old = switch(new_generator)
    try:
        yield
    finally:
        switch(old)


def dygraph_parameter_name_checker(name: str) -> bool:
    """True when ``name`` is already a parameter name in this scope; else record it."""
    if name in generator.parameter_names:
        return True
    generator.parameter_names.add(name)
    return False
