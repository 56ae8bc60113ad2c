"""``fluid.unique_name``: Paddle's name generator (``fc_0``, ``fc_0.w_0``, ``fc_0.tmp_1``).

``generate(key)`` returns ``key_N`` with a per-key counter starting at 0; one global
generator serves both modes. When the dygraph package's ``torchfluid.unique_name`` is
present, this module is a view of it (same generator, plus
``generate_with_ignorable_key``); otherwise it keeps its own.
``guard()`` swaps in a fresh generator for the ``with`` body (or one with a prefix).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict

__all__ = ["generate", "generate_with_ignorable_key", "switch", "guard", "UniqueNameGenerator"]


class UniqueNameGenerator:
    """Counters per key; names are ``prefix + key + '_' + count``."""

    def __init__(self, prefix: str | None = None):
        self.ids: defaultdict[str, int] = defaultdict(int)
        self.prefix = prefix or ""

    def __call__(self, key: str) -> str:
        n = self.ids[key]
        self.ids[key] = n + 1
        return f"{self.prefix}{key}_{n}"


_generator = UniqueNameGenerator()


def generate(key: str) -> str:
    """A new unique name ``key_N``."""
    return _generator(key)


def generate_with_ignorable_key(key: str) -> str:
    """Same as :func:`generate` (Paddle ignores the key only in dygraph tracing)."""
    return _generator(key)


def switch(new_generator: UniqueNameGenerator | None = None) -> UniqueNameGenerator:
    """Install ``new_generator`` (a fresh one if None); return the previous one."""
    global _generator
    old = _generator
    _generator = new_generator if new_generator is not None else UniqueNameGenerator()
    return old


@contextlib.contextmanager
def guard(new_generator=None):
    """Run the body with a fresh generator; a ``str`` argument becomes its prefix."""
    if isinstance(new_generator, (str, bytes)):
        prefix = new_generator.decode() if isinstance(new_generator, bytes) else new_generator
        new_generator = UniqueNameGenerator(prefix)
    elif new_generator is not None and not isinstance(new_generator, UniqueNameGenerator):
        raise TypeError(
            f"unique_name.guard(new_generator={new_generator!r}): expected None, a str prefix "
            "or a UniqueNameGenerator"
        )
    old = switch(new_generator)
    try:
        yield
    finally:
        switch(old)


try:  # one generator for both modes: defer to the dygraph package's module when present
    from .. import unique_name as _shared  # noqa: E402
except ImportError:  # pragma: no cover - depends on which packages are installed together
    _shared = None
if _shared is not None and _shared.__name__ != __name__:
    UniqueNameGenerator = _shared.UniqueNameGenerator  # noqa: F811
    generate = _shared.generate  # noqa: F811
    switch = _shared.switch  # noqa: F811
    guard = _shared.guard  # noqa: F811

    def generate_with_ignorable_key(key: str) -> str:  # noqa: F811
        return _shared.generate(key)
