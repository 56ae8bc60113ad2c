"""The page's static example runs as a script and trains on the real UCI housing data;
the uci_housing reader: Paddle's normalisation and split, and where it reads from."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import torchfluid as fluid
from torchfluid.dataset import uci_housing

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The first training sample of Paddle's uci_housing.train() (Paddle 2.x, real data).
PADDLE_FIRST_TRAIN = [
    -0.0405441,
    0.06636364,
    -0.32356227,
    -0.06916996,
    -0.03435197,
    0.05563625,
    -0.03475696,
    0.02682186,
    -0.37171335,
    -0.21419304,
    -0.33569506,
    0.10143217,
    -0.21172912,
]


@pytest.fixture
def no_paddle(monkeypatch, tmp_path):
    """No env var, and a HOME without Paddle's cache: the bundled copy is used."""
    monkeypatch.delenv(uci_housing.ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def _housing_data(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(" ".join(f"{v:.6g}" for v in r) for r in rows) + "\n")
    return path


@pytest.mark.skipif(not hasattr(fluid, "CPUPlace"), reason="fluid.CPUPlace comes with the dygraph facade")
def test_page_static_example_runs_and_the_loss_falls(no_paddle):
    env = {k: v for k, v in os.environ.items() if k != uci_housing.ENV_VAR}
    env.update(HOME=os.environ["HOME"], PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "static_rmsprop_fit_a_line.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout
    first, last, steps = out.split()[1], out.split()[3], out.split()[5]
    assert int(steps) == 404  # 80% of 506 rows, batch_size=1
    assert float(last) < 0.5 * float(first)


def test_bundled_data_is_pauls_reader_output(no_paddle):
    assert uci_housing.data_path() == uci_housing.BUNDLED
    train = list(uci_housing.train()())
    test = list(uci_housing.test()())
    assert len(train) == 404 and len(test) == 102
    feats, price = train[0]
    assert feats.shape == (13,) and price.shape == (1,)
    np.testing.assert_allclose(feats, PADDLE_FIRST_TRAIN, rtol=1e-6)
    assert price[0] == 24.0 and test[-1][1][0] == 11.9  # first and last MEDV of housing.data
    raw = uci_housing.load_raw()
    col = raw[:, 2]
    np.testing.assert_allclose(train[3][0][2], (col[3] - col.mean()) / (col.max() - col.min()), rtol=1e-6)


def test_paddle_cache_comes_before_the_bundled_copy(no_paddle):
    raw = uci_housing.load_raw()
    cache = pathlib.Path(os.path.expanduser(uci_housing.PADDLE_CACHE))
    _housing_data(cache, raw[:100] * 1.5)
    assert uci_housing.data_path() == str(cache)
    assert len(list(uci_housing.train()())) == 80


def test_malformed_paddle_cache_falls_back_to_the_bundled_copy(no_paddle):
    cache = pathlib.Path(os.path.expanduser(uci_housing.PADDLE_CACHE))
    cache.parent.mkdir(parents=True)
    cache.write_text("1 2 3\n")
    with pytest.warns(RuntimeWarning, match="ignoring Paddle's cached housing data.*holds 3 numbers"):
        assert uci_housing.data_path() == uci_housing.BUNDLED


def test_env_var_comes_first(no_paddle, monkeypatch):
    path = _housing_data(no_paddle / "mine.data", uci_housing.load_raw()[:50])
    monkeypatch.setenv(uci_housing.ENV_VAR, str(path))
    assert uci_housing.data_path() == str(path)
    assert len(list(uci_housing.test()())) == 10


@pytest.mark.parametrize(
    "content, error, match",
    [
        (None, FileNotFoundError, "TORCHFLUID_UCI_HOUSING=.*no such file"),
        ("1 2 3\n", ValueError, "holds 3 numbers; expected rows of 14"),
    ],
)
def test_bad_env_var_file_is_an_error(no_paddle, monkeypatch, content, error, match):
    path = no_paddle / "bad.data"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv(uci_housing.ENV_VAR, str(path))
    with pytest.raises(error, match=match):
        uci_housing.train()


def test_no_data_anywhere_says_how_to_provide_it(no_paddle, monkeypatch):
    monkeypatch.setattr(uci_housing, "BUNDLED", str(no_paddle / "gone.csv"))
    with pytest.raises(FileNotFoundError, match="never downloads.*housing.data.*TORCHFLUID_UCI_HOUSING"):
        uci_housing.train()
