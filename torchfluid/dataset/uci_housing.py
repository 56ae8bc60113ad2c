"""``paddle.dataset.uci_housing``: the UCI (Boston) housing data, Paddle's reader.

Reads ``housing.data`` (506 rows x 14 whitespace-separated numbers) from
``$TORCHFLUID_UCI_HOUSING`` if set, else Paddle's cache
``~/.cache/paddle/dataset/uci_housing/housing.data``. Nothing is downloaded.
As Paddle: each of the 13 features becomes ``(x - mean) / (max - min)``, the first
80% of rows are ``train()``, the rest ``test()``; samples are ``(features[13], price[1])``.

:func:`write_synthetic` writes a clearly SYNTHETIC file of the same format (a noisy
linear model, not the real data) for examples and tests on machines without the data.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["train", "test", "data_path", "load", "write_synthetic", "feature_names", "ENV_VAR"]

ENV_VAR = "TORCHFLUID_UCI_HOUSING"
FEATURE_NUM = 14
feature_names = ["CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX",
                 "PTRATIO", "B", "LSTAT"]
_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def data_path() -> str:
    env = os.environ.get(ENV_VAR)
    if env:
        return os.path.expanduser(env)
    return os.path.expanduser(os.path.join("~", ".cache", "paddle", "dataset", "uci_housing", "housing.data"))


def load(path: str | None = None, ratio: float = 0.8):
    """``(train rows, test rows)``, features normalized as Paddle does."""
    path = path or data_path()
    key = f"{os.path.abspath(path)}:{ratio}"
    if key in _CACHE:
        return _CACHE[key]
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"UCI housing data not found at {path!r}. torchfluid never downloads: save housing.data "
            "(506 rows x 14 numbers, from the UCI machine learning repository, "
            "machine-learning-databases/housing/housing.data) there, or point the environment "
            f"variable {ENV_VAR} at a copy. For a SYNTHETIC stand-in of the same format run: "
            "python -m torchfluid.dataset --write-synthetic-housing PATH"
        )
    data = np.fromfile(path, sep=" ")
    if data.size == 0 or data.size % FEATURE_NUM:
        raise ValueError(f"{path!r} holds {data.size} numbers; expected rows of {FEATURE_NUM} (13 features + price)")
    data = data.reshape(data.size // FEATURE_NUM, FEATURE_NUM)
    maximums, minimums, avgs = data.max(axis=0), data.min(axis=0), data.sum(axis=0) / data.shape[0]
    for i in range(FEATURE_NUM - 1):
        span = maximums[i] - minimums[i]
        data[:, i] = (data[:, i] - avgs[i]) / (span if span else 1.0)
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


def write_synthetic(path: str, rows: int = 506, seed: int = 0) -> str:
    """Write a SYNTHETIC housing-format file: 13 features on housing-like scales and a
    price that is a fixed linear function of them plus noise. Not real data."""
    rng = np.random.default_rng(seed)
    scales = np.array([10, 25, 10, 0.3, 0.1, 0.7, 28, 2, 8, 170, 2, 90, 7], dtype=np.float64)
    means = np.array([3.6, 11, 11, 0.07, 0.55, 6.3, 68, 3.8, 9.5, 408, 18.5, 356, 12.6])
    x = means + scales * rng.standard_normal((rows, 13))
    w = rng.uniform(-1, 1, 13) / scales
    price = np.clip(22.5 + 9.0 * (x - means) @ w + rng.normal(0, 1.5, rows), 5, 50)
    table = np.concatenate([x, price[:, None]], axis=1)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        for r in table:
            f.write(" ".join(f"{v:.6g}" for v in r) + "\n")
    return path

