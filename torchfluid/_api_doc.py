"""Generates ``docs/api.md``: every fluid name torchfluid supports, from the code itself.

``python -m torchfluid._api_doc > docs/api.md`` rewrites the file; ``tests/test_api_doc.py``
fails when the file and the code disagree. A module's names are its ``__all__`` (or, for
``torchfluid`` itself, its public non-module attributes); each line shows the first line
of the object's docstring.
"""

from __future__ import annotations

import importlib
import inspect
import types

__all__ = ["MODULES", "render", "supported_names"]

# (fluid spelling, torchfluid module)
MODULES = [
    ("fluid", "torchfluid"),
    ("fluid.layers", "torchfluid.layers"),
    ("fluid.nets", "torchfluid.nets"),
    ("fluid.dygraph", "torchfluid.dygraph"),
    ("fluid.io", "torchfluid.io"),
    ("fluid.core", "torchfluid.core"),
    ("fluid.optimizer", "torchfluid.optimizer"),
    ("fluid.regularizer", "torchfluid.regularizer"),
    ("fluid.clip", "torchfluid.clip"),
    ("fluid.initializer", "torchfluid.initializer"),
    ("fluid.backward", "torchfluid.backward"),
    ("fluid.dataset", "torchfluid.dataset"),
    ("fluid.op", "torchfluid.op"),
    ("fluid.compiler", "torchfluid.compiler"),
    ("fluid.executor", "torchfluid.executor"),
]


def _names(module) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            n
            for n, v in vars(module).items()
            if not n.startswith("_") and not isinstance(v, types.ModuleType) and n not in ("annotations",)
        ]
    return sorted(set(names))


def supported_names() -> dict[str, list[str]]:
    """``{fluid module: [names]}`` as the code exports them."""
    return {fluid: _names(importlib.import_module(mod)) for fluid, mod in MODULES}


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) if callable(obj) or inspect.isclass(obj) else None
    if not doc:
        return ""
    return doc.strip().splitlines()[0].replace("|", "\\|")


def render() -> str:
    lines = [
        "# Supported fluid API",
        "",
        "Generated from the code by `python -m torchfluid._api_doc > docs/api.md` (checked by",
        "`tests/test_api_doc.py`). `import torchfluid as fluid`; every name below exists and works.",
        "A fluid name that is not listed fails with an error that names it and says what to use",
        "instead (LoD ops other than `sequence_pool`, `ParallelExecutor`, `DistributeTranspiler`: see the",
        "README's Limits).",
        "",
    ]
    for fluid, mod in MODULES:
        module = importlib.import_module(mod)
        lines += [f"## `{fluid}`", "", "| name | summary |", "|---|---|"]
        for n in _names(module):
            obj = getattr(module, n)
            lines.append(f"| `{fluid}.{n}` | {_summary(obj)} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
