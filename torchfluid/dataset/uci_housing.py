"""``paddle.dataset.uci_housing``: the UCI (Boston) housing data, Paddle's reader.

Nothing is downloaded. The data are read from the first of these that exists:

1. ``$TORCHFLUID_UCI_HOUSING`` when set (a ``housing.data`` file; an explicit choice, so
   a missing or malformed file there is an error);
2. Paddle's cache ``~/.cache/paddle/dataset/uci_housing/housing.data`` (a malformed
   file there is skipped with a warning);
3. the copy bundled with torchfluid, ``torchfluid/data/boston_house_prices.csv`` (the
   same 506 x 14 numbers; see ``torchfluid/data/LICENSES.md``).

As Paddle: each of the 13 features becomes ``(x - mean) / (max - min)`` (statistics of
all 506 rows), the first 80% of rows are ``train()``, the rest ``test()``; samples are
``(features[13], price[1])`` float64 arrays.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

__all__ = [
    "train",
    "test",
    "data_path",
    "load",
    "load_raw",
    "source",
    "feature_names",
    "ENV_VAR",
    "PADDLE_CACHE",
    "BUNDLED",
]

ENV_VAR = "TORCHFLUID_UCI_HOUSING"
FEATURE_NUM = 14
PADDLE_CACHE = os.path.join("~", ".cache", "paddle", "dataset", "uci_housing", "housing.data")
BUNDLED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "boston_house_prices.csv")
feature_names = ["CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT"]
_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _parse(path: str) -> np.ndarray:
    """Rows x 14 from ``housing.data`` (whitespace) or the bundled CSV (two header lines)."""
    if path.endswith(".csv"):
        with open(path) as f:
            head = f.readline().split(",")
            f.readline()  # column names
            data = np.loadtxt(f, delimiter=",", ndmin=2)
        if data.shape != (int(head[0]), FEATURE_NUM):
            raise ValueError(
                f"{path!r} holds {data.shape[0]} rows x {data.shape[1]} columns; its header "
                f"says {head[0]} rows x {FEATURE_NUM} columns"
            )
        return data
    data = np.fromfile(path, sep=" ")
    if data.size == 0 or data.size % FEATURE_NUM:
        raise ValueError(f"{path!r} holds {data.size} numbers; expected rows of {FEATURE_NUM} (13 features + price)")
    return data.reshape(data.size // FEATURE_NUM, FEATURE_NUM)


def source() -> tuple[str, np.ndarray]:
    """``(path, raw rows)`` of the data the readers use (see the module docstring)."""
    env = os.environ.get(ENV_VAR)
    if env:
        path = os.path.expanduser(env)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{ENV_VAR}={env!r}: no such file. Unset {ENV_VAR} to use Paddle's cache "
                f"({PADDLE_CACHE}) or the copy bundled with torchfluid"
            )
        return path, _parse(path)
    cache = os.path.expanduser(PADDLE_CACHE)
    if os.path.isfile(cache):
        try:
            return cache, _parse(cache)
        except ValueError as e:
            warnings.warn(
                f"ignoring Paddle's cached housing data: {e}; using the bundled copy", RuntimeWarning, stacklevel=2
            )
    if not os.path.isfile(BUNDLED):
        raise FileNotFoundError(
            f"UCI housing data not found: {ENV_VAR} is not set, Paddle's cache {cache!r} is absent or "
            f"malformed and the bundled copy {BUNDLED!r} is missing (reinstall torchfluid). torchfluid "
            "never downloads: save housing.data (506 rows x 14 numbers, UCI machine-learning-databases/"
            f"housing/housing.data) at {cache!r} or point {ENV_VAR} at a copy"
        )
    return BUNDLED, _parse(BUNDLED)


def data_path() -> str:
    """The file the readers use."""
    return source()[0]


def load_raw(path: str | None = None) -> np.ndarray:
    """The raw rows (13 features + price), unnormalized."""
    return (_parse(path) if path else source()[1]).copy()


def load(path: str | None = None, ratio: float = 0.8):
    """``(train rows, test rows)``, features normalized as Paddle does."""
    path, data = source() if path is None else (path, _parse(path))
    key = f"{os.path.abspath(path)}:{os.path.getmtime(path)}:{ratio}"
    if key in _CACHE:
        return _CACHE[key]
    data = data.astype(np.float64, copy=True)
    features = data[:, : FEATURE_NUM - 1]
    span = features.max(axis=0) - features.min(axis=0)
    features -= features.sum(axis=0) / data.shape[0]
    features /= np.where(span != 0, span, 1.0)
    offset = int(data.shape[0] * ratio)
    _CACHE[key] = (data[:offset], data[offset:])
    return _CACHE[key]


def _reader(rows):
    def reader():
        for d in rows:
            yield d[:-1], d[-1:]

    return reader


def train():
    """Reader creator over the first 80% of rows."""
    return _reader(load()[0])


def test():
    """Reader creator over the last 20% of rows."""
    return _reader(load()[1])
