"""The layout shows the architecture: every folder has a one-line purpose, the README's architecture
section names every folder and module it describes (and nothing that is gone), and docstring examples run."""

from __future__ import annotations

import ast
import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "torchfluid"


def architecture_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^## Architecture\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert section, "README has no '## Architecture' section"
    block = re.search(r"```\n(torchfluid/\n.*?)```", section.group(1), flags=re.S)
    assert block, "the architecture section has no tree block starting with 'torchfluid/'"
    return block.group(1)


def package_tree_lines(block: str) -> list[str]:
    """The lines of the tree inside ``torchfluid/`` (indented), up to the next top-level entry."""
    lines = block.splitlines()[1:]
    out = []
    for line in lines:
        if line and not line.startswith(" "):
            break
        out.append(line)
    return out


def folders() -> list[str]:
    return sorted(
        p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__" and not p.name.startswith(".")
    )


def named_entries(block: str) -> set[str]:
    """``name/`` and ``name.py`` entries at the start of the package tree's lines, or inside its text."""
    text = "\n".join(package_tree_lines(block))
    folders = re.findall(r"(?<![\w./])([A-Za-z_]\w*/)(?!\w)", text)
    modules = re.findall(r"(?<![\w./])([A-Za-z_]\w*\.py)\b", text)
    return set(folders) | set(modules)


def test_readme_tree_reader_finds_entries():
    block = "torchfluid/\n  a/   x\n  b.py y, c.py and d/\nother/  z\n"
    assert named_entries(block) == {"a/", "b.py", "c.py", "d/"}


@pytest.mark.parametrize("folder", folders())
def test_every_folder_is_in_the_readme_architecture(folder):
    assert f"{folder}/" in named_entries(architecture_block()), (
        f"torchfluid/{folder}/ is missing from the README's architecture section"
    )


def test_readme_architecture_names_only_what_exists():
    entries = {e for e in named_entries(architecture_block()) if e.endswith("/")}
    folder_names = {f"{f}/" for f in folders()}
    subfolders = {f"{p.name}/" for p in PACKAGE.rglob("*") if p.is_dir()}
    assert entries <= folder_names | subfolders, f"named but not in torchfluid/: {sorted(entries - folder_names)}"
    modules = {e for e in named_entries(architecture_block()) if e.endswith(".py")}
    existing = {p.name for p in PACKAGE.rglob("*.py")}
    assert modules <= existing, f"named but not in torchfluid/: {sorted(modules - existing)}"


PACKAGES = sorted(str(p.parent.relative_to(ROOT)) for p in PACKAGE.rglob("__init__.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_docstring_starts_with_a_one_line_purpose(package):
    doc = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))
    assert doc, f"{package}/__init__.py has no docstring"
    first, *rest = doc.splitlines()
    assert first.rstrip().endswith("."), f"{package}: the first line is not a complete sentence: {first!r}"
    assert not rest or not rest[0].strip(), f"{package}: the one-line purpose runs on: {rest[0]!r}"


DOCTEST_MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for p in PACKAGE.rglob("*.py")
    if ">>>" in p.read_text()
)


@pytest.mark.parametrize("module", DOCTEST_MODULES)
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result
