"""The page's static example runs as a script and trains; the uci_housing reader."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import torchfluid as fluid
from torchfluid.dataset import uci_housing

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def housing(tmp_path_factory):
    return uci_housing.write_synthetic(str(tmp_path_factory.mktemp("uci") / "housing.data"))


@pytest.mark.skipif(not hasattr(fluid, "CPUPlace"), reason="fluid.CPUPlace comes with the dygraph facade")
def test_page_static_example_runs_and_the_loss_falls(housing):
    env = {**os.environ, uci_housing.ENV_VAR: housing, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "static_rmsprop_fit_a_line.py")],
                         capture_output=True, text=True, env=env, timeout=120, check=True).stdout
    first, last, steps = out.split()[1], out.split()[3], out.split()[5]
    assert int(steps) == 404  # 80% of 506 rows, batch_size=1
    assert float(last) < 0.5 * float(first)


def test_reader_normalizes_and_splits_like_paddle(housing, monkeypatch):
    monkeypatch.setenv(uci_housing.ENV_VAR, housing)
    raw = np.loadtxt(housing)
    train = list(uci_housing.train()())
    test = list(uci_housing.test()())
    assert len(train) == int(506 * 0.8) and len(test) == 506 - int(506 * 0.8)
    feats, price = train[3]
    assert feats.shape == (13,) and price.shape == (1,)
    col = raw[:, 2]
    np.testing.assert_allclose(feats[2], (col[3] - col.mean()) / (col.max() - col.min()), rtol=1e-6)
    assert price[0] == pytest.approx(raw[3, -1])


def test_missing_data_file_says_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setenv(uci_housing.ENV_VAR, str(tmp_path / "absent.data"))
    with pytest.raises(FileNotFoundError, match="never downloads.*TORCHFLUID_UCI_HOUSING.*--write-synthetic-housing"):
        uci_housing.train()


def test_malformed_data_file_is_rejected(tmp_path, monkeypatch):
    bad = tmp_path / "bad.data"
    bad.write_text("1 2 3\n")
    monkeypatch.setenv(uci_housing.ENV_VAR, str(bad))
    with pytest.raises(ValueError, match="holds 3 numbers; expected rows of 14"):
        uci_housing.train()
