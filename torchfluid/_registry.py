"""Values registered by class, found for an object through its class's MRO.

Lower layers use it to let a facade plug in without being imported by them: the static
package registers its ``Variable`` as a front door of the optimizer and as a clipper of
program gradients; the dygraph package registers how its parameters' optimizer state is
handed out.
"""

from __future__ import annotations

__all__ = ["ByType"]


class ByType:
    """``{class: value}``; :meth:`lookup` returns the value of the nearest class in an
    object's MRO (a subclass of a registered class finds it), else None."""

    def __init__(self, argument: str):
        self._argument = argument  # the registering function's argument name, for errors
        self._by_type: dict[type, object] = {}

    def register(self, cls: type, value) -> None:
        if not isinstance(cls, type):
            raise TypeError(f"{self._argument} must be a class, got {type(cls).__name__}")
        self._by_type[cls] = value

    def lookup(self, obj):
        for klass in type(obj).__mro__:
            value = self._by_type.get(klass)
            if value is not None:
                return value
        return None

    def values(self) -> list:
        """Each registered value once, in registration order."""
        return list(dict.fromkeys(self._by_type.values()))
