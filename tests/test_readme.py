"""Every ```python block of the README runs."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[index], f"README block {index}", "exec"), {"__name__": "__readme__"})


SHELL_LINES = [
    line.split("#")[0].strip()
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    for line in block.splitlines()
    if line.split("#")[0].strip()
]


@pytest.mark.parametrize("line", SHELL_LINES)
def test_readme_shell_lines_are_valid_commands(line):
    """Every shell line of the README names a script that exists or is a torchfluid
    command the CLI accepts; train commands (without a config file) pass config checks."""
    import shlex

    from torchfluid.cli import build_parser
    from torchfluid.cli.flags import config_from_args

    words = shlex.split(line)
    if words[0] == "bash":
        assert (README.parent / words[1]).is_file(), line
        return
    assert words[0] == "torchfluid", line
    args = build_parser().parse_args(words[1:])
    if args.command == "train" and not args.config:
        config_from_args(args)
