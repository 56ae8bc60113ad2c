"""The ``torchfluid`` command line (also ``python -m torchfluid``).

Subcommands ``demo``, ``train``, ``compare`` and ``bench``. Bad configuration values exit with status 2 and one line
``config error: <key> ...`` on stderr, no traceback."""

from __future__ import annotations

import argparse
import sys

from ..checkpoint import CheckpointError
from . import bench, compare, demo, train
from .config import ConfigError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torchfluid", description="Paddle fluid's RMSProp system on PyTorch")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (demo, train, compare, bench):
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    except CheckpointError as e:
        print(f"checkpoint error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
