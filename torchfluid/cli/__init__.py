"""The ``torchfluid`` command line (also ``python -m torchfluid``).

Subcommands ``demo``, ``train``, ``compare`` and ``bench``. Errors are one line on
stderr, never a traceback:

* exit 2: bad input: command-line usage (the usage line and the error only), a bad
  configuration value or combination (``config error: <key> ...``), unreadable data, a
  folder that cannot be used (``out`` or ``checkpoint_dir`` is a file, results or another
  run's checkpoints already there, a checkpoint folder in use by another process);
* exit 1: the run failed: a loss that is not finite (``training stopped: ...``), a damaged
  checkpoint, an I/O error, or an unexpected internal error (``internal error: ...``;
  set ``TORCHFLUID_TRACEBACK=1`` to see its traceback);
* exit 130: interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..checkpoint import CheckpointError, CheckpointFolderError
from . import bench, compare, demo, train
from .config import ConfigError
from .engine import TrainingError

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse with short errors: the usage line and the message, not the full usage; the
    description printed as written (subcommands' module docstrings hold examples)."""

    def __init__(self, *args, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message):
        self.exit(2, f"usage: {self.prog} [options]  (see {self.prog} --help)\n{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(prog="torchfluid", description="Paddle fluid's RMSProp system on PyTorch")
    parser.add_argument("--version", action="version", version=f"torchfluid {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in (demo, train, compare, bench):
        module.add_parser(sub)
    return parser


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__


# The project's own errors: (class, message prefix, exit code); the first class that matches wins.
_REPORTED = (
    (ConfigError, "config error", 2),
    (CheckpointFolderError, "checkpoint error", 2),
    (CheckpointError, "checkpoint error", 1),
    (TrainingError, "training stopped", 1),
)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except tuple(cls for cls, _, _ in _REPORTED) as e:
        prefix, code = next((p, c) for cls, p, c in _REPORTED if isinstance(e, cls))
        print(f"{prefix}: {_one_line(e)}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        where = f" {e.filename!r}" if getattr(e, "filename", None) else ""
        print(f"error:{where} {e.strerror or _one_line(e)}", file=sys.stderr)
        return 1
    except MemoryError:
        print("error: out of memory (try a smaller model, batch_size or data set)", file=sys.stderr)
        return 1
    except Exception as e:  # a bug: still one line, the traceback on request
        if os.environ.get("TORCHFLUID_TRACEBACK"):
            raise
        print(
            f"internal error: {type(e).__name__}: {_one_line(e)} (set TORCHFLUID_TRACEBACK=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
