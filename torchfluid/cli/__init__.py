"""The ``torchfluid`` command (also ``python -m torchfluid``)."""

from __future__ import annotations

import argparse
import sys

from . import demo

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="torchfluid", description="Paddle fluid's RMSProp system on PyTorch")
    sub = parser.add_subparsers(dest="command", required=True)
    demo.add_parser(sub)
    args = parser.parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
