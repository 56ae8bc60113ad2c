"""``python -m torchfluid.dataset --write-synthetic-housing PATH``: write a SYNTHETIC
housing-format file (see :func:`torchfluid.dataset.uci_housing.write_synthetic`)."""

import argparse

from .uci_housing import write_synthetic

ap = argparse.ArgumentParser(prog="python -m torchfluid.dataset")
ap.add_argument("--write-synthetic-housing", metavar="PATH", required=True,
                help="write a SYNTHETIC (not real) UCI-housing-format file to PATH")
print(write_synthetic(ap.parse_args().write_synthetic_housing))
