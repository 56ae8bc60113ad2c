"""The bundled real data sets, the CSV loader and the encodings the CLI models use."""

import hashlib
import os
import re

import numpy as np
import pytest
import torch

import torchfluid
from torchfluid.cli.data import to_tokens
from torchfluid.dataset import bundled
from torchfluid.dygraph import guard, to_variable

DATASETS = [
    # name, rows, features, task, classes
    ("uci_housing", 506, 13, "regression", 0),
    ("iris", 150, 4, "classification", 3),
    ("wine", 178, 13, "classification", 3),
    ("breast_cancer", 569, 30, "classification", 2),
    ("digits", 1797, 64, "classification", 10),
]


@pytest.mark.parametrize("name, rows, features, task, classes", DATASETS)
def test_bundled_sets(name, rows, features, task, classes, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no Paddle cache: the bundled housing copy
    monkeypatch.delenv("TORCHFLUID_UCI_HOUSING", raising=False)
    t = bundled.load(name)
    assert t.x.shape == (rows, features) and t.x.dtype == np.float32 and np.isfinite(t.x).all()
    assert t.task == task and t.num_classes == classes and len(t.feature_names) == features
    if classes:
        assert t.y.shape == (rows,) and set(np.unique(t.y)) == set(range(classes))
    x_tr, y_tr, x_te, y_te = bundled.split(t, 0.2, seed=0)
    assert len(x_tr) + len(x_te) == rows and len(x_te) == (102 if name == "uci_housing" else round(rows * 0.2))


def test_licence_file_lists_every_bundled_file_with_its_hash():
    data = bundled.data_dir()
    text = open(os.path.join(data, "LICENSES.md")).read()
    files = sorted(f for f in os.listdir(data) if f.endswith((".csv", ".csv.gz")))
    assert len(files) == 5
    for f in files:
        digest = hashlib.sha256(open(os.path.join(data, f), "rb").read()).hexdigest()
        assert re.search(rf"`{re.escape(f)}`.*`{digest}`", text), f


def test_split_standardises_with_training_statistics():
    x_tr, _, x_te, _ = bundled.split(bundled.load("wine"), 0.25, seed=3)
    np.testing.assert_allclose(x_tr.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(x_tr.std(axis=0), 1, atol=1e-4)
    assert len(x_te) == round(178 * 0.25)


CSV_ERRORS = [
    ("a,b\n1,2\n", "b", "header row and at least 2 data rows"),
    ("a,b\n1,2\n3,4\n", "c", "target column 'c' is not in the header"),
    ("a,b\n1,2\nx,4\n", "b", "line 3 column 'a': 'x' is not a number"),
    ("a,b\n1,2\n3\n", "b", "line 3: 1 fields, the header has 2"),
    ("b\n1\n2\n", "b", "no feature columns"),
]


@pytest.mark.parametrize("text, target, message", CSV_ERRORS)
def test_csv_errors(tmp_path, text, target, message):
    path = tmp_path / "d.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        bundled.load_csv(str(path), target)


@pytest.mark.parametrize(
    "task, error",
    [("Auto", ValueError), ("", ValueError), ("class", ValueError), (None, TypeError), (1, TypeError)],
)
def test_csv_task_must_be_one_of_three_before_the_file_is_read(task, error):
    message = f"task must be one of 'auto', 'regression', 'classification', got {task!r}"
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        bundled.load_csv("/nonexistent/d.csv", "y", task)


def test_csv_task_detection(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,n,label\n" + "\n".join(f"{i},{i * 0.5},{'xy'[i % 2]}" for i in range(10)))
    t = bundled.load_csv(str(path), "label")
    assert t.task == "classification" and t.classes == ["x", "y"] and t.y.tolist() == [0, 1] * 5
    path.write_text("a,n,k\n" + "\n".join(f"{i},{i * 0.5},{i % 3}" for i in range(10)))
    t = bundled.load_csv(str(path), "n")
    assert t.task == "regression" and t.y.shape == (10, 1)
    t = bundled.load_csv(str(path), "k")
    assert t.task == "classification" and t.classes == ["0", "1", "2"]


def test_tokens_cover_the_vocabulary():
    x = np.array([[0.0, 5.0], [1.0, 10.0], [0.5, 7.5]], dtype=np.float32)
    tokens = to_tokens(x, x.min(axis=0), x.max(axis=0), bins=4)
    assert tokens.tolist() == [[0, 4], [3, 7], [2, 6]]


def test_dygraph_values_save_as_plain_tensors(tmp_path):
    with guard():
        v = to_variable(np.ones((2, 3), dtype=np.float32))
        assert type(v) is not torch.Tensor
        torchfluid.checkpoint.save({"v": v * 2}, tmp_path / "v.tfckpt")
    back = torchfluid.checkpoint.load(tmp_path / "v.tfckpt")
    assert type(back["v"]) is torch.Tensor and back["v"].tolist() == [[2.0] * 3] * 2
