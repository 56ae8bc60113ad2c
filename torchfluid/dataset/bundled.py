"""The small real data sets bundled with torchfluid, and CSV files, as arrays.

``load(name)`` returns a :class:`Table`: features ``x`` (float32 ``[N, F]``), targets
``y`` (float32 ``[N, 1]`` for regression, int64 ``[N]`` class ids for classification),
and names. ``split(table, ...)`` gives the train / test parts; features are
standardised with the training part's statistics. ``uci_housing`` is the exception: it
is Paddle's reader (:mod:`torchfluid.dataset.uci_housing`), with Paddle's normalisation
and first-80%-of-rows split, read from Paddle's cache when present.

Sources and licences: ``torchfluid/data/LICENSES.md``.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import os

import numpy as np

from .._checks import check_choice
from . import uci_housing

__all__ = ["Table", "DATASETS", "load", "load_csv", "split", "data_dir"]


@dataclasses.dataclass
class Table:
    """A data set: ``x`` float32 ``[N, F]``; ``y`` float32 ``[N, 1]`` (regression) or
    int64 ``[N]`` (classification, ids into ``classes``)."""

    name: str
    x: np.ndarray
    y: np.ndarray
    task: str  # "regression" | "classification"
    feature_names: list[str]
    classes: list[str] = dataclasses.field(default_factory=list)
    source: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def data_dir() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")


def _sklearn_csv(path: str, name: str, feature_names: list[str], classes: list[str] | None = None) -> Table:
    """scikit-learn's layout: ``N,F,class names...`` then rows of F features + class id
    (``classes`` given: no header line, as ``digits.csv.gz``)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        if classes is None:
            head = f.readline().strip().split(",")
            classes = head[2:]
        data = np.loadtxt(f, delimiter=",", ndmin=2)
    x, y = data[:, :-1].astype(np.float32), data[:, -1].astype(np.int64)
    names = feature_names or [f"x{i}" for i in range(x.shape[1])]
    return Table(name, x, y, "classification", names, classes, path)


def _iris():
    return _sklearn_csv(
        os.path.join(data_dir(), "iris.csv"), "iris", ["sepal length", "sepal width", "petal length", "petal width"]
    )


def _wine():
    return _sklearn_csv(
        os.path.join(data_dir(), "wine_data.csv"),
        "wine",
        [
            "alcohol",
            "malic acid",
            "ash",
            "alcalinity of ash",
            "magnesium",
            "total phenols",
            "flavanoids",
            "nonflavanoid phenols",
            "proanthocyanins",
            "color intensity",
            "hue",
            "OD280/OD315",
            "proline",
        ],
    )


def _breast_cancer():
    return _sklearn_csv(os.path.join(data_dir(), "breast_cancer.csv"), "breast_cancer", [])


def _digits():
    return _sklearn_csv(
        os.path.join(data_dir(), "digits.csv.gz"),
        "digits",
        [f"pixel {r},{c}" for r in range(8) for c in range(8)],
        [str(i) for i in range(10)],
    )


def _uci_housing():
    path, raw = uci_housing.source()
    return Table(
        "uci_housing",
        raw[:, :-1].astype(np.float32),
        raw[:, -1:].astype(np.float32),
        "regression",
        list(uci_housing.feature_names),
        [],
        path,
    )


DATASETS = {
    "uci_housing": (_uci_housing, "UCI (Boston) housing, 506 x 13, regression (Paddle's reader)"),
    "iris": (_iris, "Fisher's iris, 150 x 4, 3 classes"),
    "wine": (_wine, "UCI wine recognition, 178 x 13, 3 classes"),
    "breast_cancer": (_breast_cancer, "Breast Cancer Wisconsin (diagnostic), 569 x 30, 2 classes"),
    "digits": (_digits, "UCI handwritten digits 8x8 (pixels 0..16), 1797 x 64, 10 classes"),
}


def load(name: str) -> Table:
    """A bundled data set by name (``DATASETS``)."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; bundled: {', '.join(DATASETS)}")
    return DATASETS[name][0]()


MAX_MAGNITUDE = 1e15  # larger values overflow float32 once squared and summed (losses, statistics)


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number") from None
    if not np.isfinite(value):
        raise ValueError(f"{where}: {text!r} is not a finite number")
    if abs(value) >= MAX_MAGNITUDE:
        raise ValueError(
            f"{where}: {text!r} is too large (the magnitude must be below {MAX_MAGNITUDE:g}; "
            "float32 training would overflow)"
        )
    return value


def load_csv(path: str, target: str, task: str = "auto") -> Table:
    """A CSV file with a header row: every column but ``target`` is a numeric feature.

    ``task="auto"``: classification when the target column is not numeric or holds at
    most 20 distinct integers, else regression. Class names are the sorted distinct
    target values. Numbers (features, regression targets) must be finite in float32 and
    of magnitude below ``MAX_MAGNITUDE``; column names must be distinct. A bad value
    raises ``ValueError`` naming the line and the column.
    """
    check_choice("task", task, ("auto", "regression", "classification"))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path!r}: no such file")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            rows = [(reader.line_num, row) for row in reader]
    except csv.Error as e:
        raise ValueError(f"{path!r} line {reader.line_num}: {e}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path!r}: not UTF-8 text (byte {e.start})") from None
    except IsADirectoryError:
        raise ValueError(f"{path!r}: is a folder, not a CSV file") from None
    rows = [(n, r) for n, r in rows if r and any(c.strip() for c in r)]
    if len(rows) < 3:
        raise ValueError(f"{path!r}: expected a header row and at least 2 data rows, got {len(rows)} rows")
    header = [h.strip() for h in rows[0][1]]
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise ValueError(
            f"{path!r}: the header names column {dup[0]!r} {header.count(dup[0])} times; column names must be distinct"
        )
    if target not in header:
        raise ValueError(f"{path!r}: target column {target!r} is not in the header {header}")
    t = header.index(target)
    feats = [i for i in range(len(header)) if i != t]
    if not feats:
        raise ValueError(f"{path!r}: no feature columns besides the target {target!r}")
    x = np.empty((len(rows) - 1, len(feats)), dtype=np.float32)
    raw_y, lines = [], []
    for k, (r, row) in enumerate(rows[1:]):
        if len(row) != len(header):
            raise ValueError(f"{path!r} line {r}: {len(row)} fields, the header has {len(header)}")
        for j, i in enumerate(feats):
            x[k, j] = _number(row[i].strip(), f"{path!r} line {r} column {header[i]!r}")
        raw_y.append(row[t].strip())
        lines.append(r)
    try:
        y_num = np.array([float(v) for v in raw_y])
    except ValueError:
        y_num = None
    if task == "auto":
        few_ints = y_num is not None and np.all(y_num == np.round(y_num)) and len(np.unique(y_num)) <= 20
        task = "classification" if y_num is None or few_ints else "regression"
    names = [header[i] for i in feats]
    name = os.path.splitext(os.path.basename(path))[0]
    if task == "regression":
        if y_num is None:
            bad = next(v for v in raw_y if not _is_number(v))
            raise ValueError(f"{path!r}: target column {target!r} must be numeric for regression, got {bad!r}")
        for r, v in zip(lines, raw_y, strict=True):
            _number(v, f"{path!r} line {r} column {target!r}")
        return Table(name, x, y_num.astype(np.float32)[:, None], task, names, [], path)
    keys = sorted(set(raw_y), key=lambda v: (float(v), v) if _is_number(v) else (float("inf"), v))
    ids = {v: i for i, v in enumerate(keys)}
    return Table(name, x, np.array([ids[v] for v in raw_y], dtype=np.int64), task, names, keys, path)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def split(table: Table, test_fraction: float = 0.2, seed: int = 0):
    """``(x_train, y_train, x_test, y_test)``.

    ``uci_housing``: Paddle's split (first 80% of rows) and normalisation
    ``(x - mean) / (max - min)`` over all rows (``test_fraction`` must be 0.2).
    Others: a permutation of the rows drawn from ``seed``, then features standardised
    with the training rows' mean and standard deviation.
    """
    if table.name == "uci_housing" and table.source and test_fraction == 0.2:
        train, test = uci_housing.load(table.source)
        f = np.float32
        return train[:, :-1].astype(f), train[:, -1:].astype(f), test[:, :-1].astype(f), test[:, -1:].astype(f)
    n = len(table.x)
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    if test_fraction and not 1 <= n_test < n:
        raise ValueError(f"test_fraction={test_fraction} leaves {n_test} of {n} rows for testing")
    tr, te = order[n_test:], order[:n_test]
    mean = table.x[tr].mean(axis=0)
    std = table.x[tr].std(axis=0)
    std[std == 0] = 1.0
    x = ((table.x - mean) / std).astype(np.float32)
    return x[tr], table.y[tr], x[te], table.y[te]
