"""The ``torchfluid`` command: demo, train, compare, bench on tiny settings, in process."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from torchfluid.cli import main
from tests import lr_refs
from torchfluid.cli.report import PNG_MAGIC

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = ["--no-progress"]


def assert_png(path, min_bytes=5_000):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert len(data) > min_bytes
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 300 and height > 200


def histories(out_dir):
    with open(os.path.join(out_dir, "metrics.json")) as f:
        return {r["label"]: r["history"] for r in json.load(f)["runs"]}


def curve(history, key="train_loss"):
    return np.array([h[key] for h in history])


def test_demo_trains_both_models_and_plots(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "3", *QUIET]) == 0
    text = capsys.readouterr().out
    assert "the RMSPropOptimizer page's static-mode example" in text and "test acc" in text
    assert_png(out / "demo.png", 20_000)
    runs = histories(out)
    assert len(runs) == 3
    for label, h in runs.items():
        assert len(h) == 3
        assert h[-1]["train_loss"] < h[0]["train_loss"], label
    clf = [h for h in runs.values() if h[-1]["test_accuracy"] is not None]
    assert len(clf) == 2 and all(h[-1]["test_accuracy"] > 0.8 for h in clf)
    with open(out / "metrics.csv") as f:
        assert len(f.read().strip().splitlines()) == 1 + 3 * 3


TRAIN_CASES = [
    # (flags, data) -- every model kind, both modes, the optimizer kinds and options
    (["--data", "iris", "--model", "linear", "--mode", "static"], "classification"),
    (
        ["--data", "uci_housing", "--model", "linear", "--mode", "static", "--lr", "0.1", "--batch-size", "8"],
        "regression",
    ),
    (
        [
            "--data",
            "wine",
            "--model",
            "mlp",
            "--centered",
            "--momentum",
            "0.9",
            "--l2",
            "1e-4",
            "--clip",
            "global_norm:1.0",
            "--schedule",
            "cosine",
        ],
        "classification",
    ),
    (
        [
            "--data",
            "wine",
            "--mode",
            "static",
            "--centered",
            "--momentum",
            "0.9",
            "--l1",
            "1e-4",
            "--clip",
            "value:0.5",
            "--schedule",
            "exponential",
        ],
        "classification",
    ),
    (
        [
            "--data",
            "digits",
            "--model",
            "embedding",
            "--set",
            "model.sparse=true",
            "--set",
            "optimizer.lazy_mode=true",
            "--set",
            "model.bins=17",
        ],
        "classification",
    ),
    (["--data", "digits", "--model", "embedding", "--mode", "static", "--set", "model.bins=17"], "classification"),
    (
        ["--data", "iris", "--preset", "torch", "--preset-arg", "alpha=0.9", "--preset-arg", "momentum=0.5"],
        "classification",
    ),
    (["--data", "iris", "--mode", "static", "--preset", "keras", "--schedule", "warmup"], "classification"),
    (
        ["--data", "iris", "--precision", "bfloat16", "--multi-precision", "--set", 'optimizer.state_dtype="bfloat16"'],
        "classification",
    ),
    (
        [
            "--data",
            "iris",
            "--set",
            "optimizer.eps_in_sqrt=false",
            "--set",
            "optimizer.lr_in_momentum=false",
            "--set",
            "optimizer.initial_mean_square=1.0",
            "--momentum",
            "0.9",
            "--set",
            "optimizer.nesterov=true",
            "--set",
            "optimizer.bias_correction=true",
            "--set",
            "optimizer.decoupled_weight_decay=0.01",
        ],
        "classification",
    ),
    (["--data", "iris", "--optimizer", "adam", "--mode", "static"], "classification"),
    (["--data", "iris", "--optimizer", "sgd", "--lr", "0.1"], "classification"),
    (
        ["--data", "iris", "--optimizer", "torch.rmsprop", "--schedule", "polynomial", "--clip", "norm:1.0"],
        "classification",
    ),
    (["--data", "iris", "--optimizer", "torch.adam", "--l2", "1e-4"], "classification"),
    (["--data", "iris", "--optimizer", "torch.sgd", "--momentum", "0.9", "--lr", "0.05"], "classification"),
    (["--data", "iris", "--optimizer", "momentum", "--nesterov", "--lr", "0.05", "--l2", "1e-4"], "classification"),
    (["--data", "uci_housing", "--model", "linear", "--mode", "static", "--optimizer", "momentum"], "regression"),
    (["--data", "wine", "--optimizer", "adagrad", "--lr", "0.05", "--clip", "global_norm:1.0"], "classification"),
    (
        ["--data", "iris", "--mode", "static", "--optimizer", "adagrad", "--lr", "0.05", "--l1", "1e-4"]
        + ["--set", "optimizer.initial_accumulator_value=0.1", "--schedule", "exponential"],
        "classification",
    ),
    (
        ["--data", "digits", "--model", "embedding", "--set", "model.sparse=true", "--optimizer", "adagrad"]
        + ["--lr", "0.05"],
        "classification",
    ),
    (
        ["--data", "iris", "--optimizer", "torch.momentum", "--nesterov", "--momentum", "0.8", "--lr", "0.05"],
        "classification",
    ),
    (
        ["--data", "iris", "--optimizer", "torch.adagrad", "--lr", "0.05", "--epsilon", "1e-6"]
        + ["--set", "optimizer.initial_accumulator_value=0.1", "--l2", "1e-4"],
        "classification",
    ),
]


@pytest.mark.parametrize("flags, task", TRAIN_CASES, ids=[" ".join(f[:6]) for f, _ in TRAIN_CASES])
def test_train_writes_metrics_and_plot(tmp_path, capsys, flags, task):
    out = tmp_path / "run"
    assert main(["train", *flags, "--epochs", "3", "--out", str(out), *QUIET]) == 0
    assert "final: train loss" in capsys.readouterr().out
    (h,) = histories(out).values()
    losses = curve(h)
    assert len(h) == 3 and np.isfinite(losses).all()
    assert losses[-1] < losses[0]
    assert (h[-1]["test_accuracy"] is None) == (task == "regression")
    assert_png(out / "loss.png")
    with open(out / "metrics.csv") as f:
        assert f.readline().strip() == "run,epoch,train_loss,test_loss,test_accuracy,lr,seconds"


def test_static_and_dygraph_train_the_same_model_alike(tmp_path):
    runs = {}
    for mode in ("dygraph", "static"):
        out = tmp_path / mode
        main(
            [
                "train",
                "--data",
                "wine",
                "--mode",
                mode,
                "--centered",
                "--momentum",
                "0.9",
                "--schedule",
                "exponential",
                "--epochs",
                "3",
                "--out",
                str(out),
                *QUIET,
            ]
        )
        (runs[mode],) = histories(out).values()
    for key in ("train_loss", "test_loss", "lr"):
        np.testing.assert_allclose(curve(runs["static"], key), curve(runs["dygraph"], key), rtol=1e-4)


@pytest.mark.parametrize(
    "flags",
    [
        ["--mode", "dygraph", "--momentum", "0.9", "--schedule", "exponential"],
        ["--mode", "static", "--momentum", "0.9", "--schedule", "exponential"],
        ["--optimizer", "torch.rmsprop", "--momentum", "0.9", "--schedule", "exponential"],
        ["--mode", "dygraph", "--optimizer", "momentum", "--nesterov", "--lr", "0.05", "--schedule", "exponential"],
        ["--mode", "static", "--optimizer", "momentum", "--lr", "0.05", "--schedule", "exponential"],
        ["--mode", "dygraph", "--optimizer", "adagrad", "--lr", "0.05", "--schedule", "exponential"],
        ["--mode", "static", "--optimizer", "adagrad", "--lr", "0.05", "--schedule", "exponential"],
        ["--optimizer", "torch.momentum", "--nesterov", "--lr", "0.05", "--schedule", "exponential"],
        ["--optimizer", "torch.adagrad", "--lr", "0.05", "--schedule", "exponential"],
    ],
    ids=lambda f: " ".join(f[:4]),
)
def test_resume_continues_exactly(tmp_path, flags):
    common = ["train", "--data", "iris", *flags, "--set", "optimizer.schedule.decay_steps=5", *QUIET]
    main([*common, "--epochs", "4", "--out", str(tmp_path / "full")])
    ckpt = str(tmp_path / "ckpt")
    main([*common, "--epochs", "2", "--out", str(tmp_path / "part"), "--checkpoint-dir", ckpt])
    main([*common, "--epochs", "4", "--out", str(tmp_path / "resumed"), "--checkpoint-dir", ckpt, "--resume"])
    with open(tmp_path / "resumed" / "metrics.json") as f:
        assert json.load(f)["runs"][0]["resumed_from_epoch"] == 2
    (full,) = histories(tmp_path / "full").values()
    (resumed,) = histories(tmp_path / "resumed").values()
    for key in ("train_loss", "test_loss", "lr"):
        np.testing.assert_array_equal(curve(resumed, key), curve(full, key))


def test_train_from_a_toml_file_and_a_csv(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    labels = np.where(x @ [1.0, -2.0, 0.5] > 0, "yes", "no")
    csv = tmp_path / "points.csv"
    csv.write_text(
        "a,b,c,label\n" + "\n".join(f"{a:.4f},{b:.4f},{c:.4f},{t}" for (a, b, c), t in zip(x, labels, strict=False))
    )
    config = tmp_path / "run.toml"
    config.write_text(f"""
epochs = 4
batch_size = 8
mode = "static"
out = "{tmp_path / "out"}"
progress = false
[data]
path = "{csv}"
target = "label"
[model]
kind = "mlp"
hidden = [8]
[optimizer]
learning_rate = 0.01
centered = true
[optimizer.schedule]
kind = "piecewise"
boundaries = [10]
values = [0.01, 0.001]
""")
    assert main(["train", "--config", str(config), "--set", "optimizer.rho=0.9"]) == 0
    with open(tmp_path / "out" / "metrics.json") as f:
        meta = json.load(f)
    assert meta["config"]["optimizer"]["rho"] == 0.9 and meta["config"]["mode"] == "static"
    h = meta["runs"][0]["history"]
    assert h[-1]["lr"] == pytest.approx(0.001) and h[-1]["test_accuracy"] > 0.6


CONFIG_ERRORS = [
    (["--set", "optimizer.rho=1.5"], "optimizer.rho must be in [0, 1), got 1.5"),
    (["--rho", "-0.1"], "optimizer.rho must be in [0, 1), got -0.1"),
    (["--epsilon", "0"], "optimizer.epsilon must be > 0, got 0"),
    (["--set", "optimizer.rhoo=0.9"], "unknown key optimizer.rhoo; did you mean optimizer.rho?"),
    (["--set", "epochs=0"], "epochs must be >= 1, got 0"),
    (["--set", "batch_size=2.5"], "batch_size must be an integer, got 2.5"),
    (["--set", "optimizer.centered=1"], "optimizer.centered must be true or false, got 1"),
    (["--set", 'mode="eager"'], "mode must be one of 'dygraph', 'static', got 'eager'"),
    (["--optimizer", "adam", "--rho", "0.9"], "optimizer.rho applies to optimizer.kind 'rmsprop' or 'torch.rmsprop'"),
    (["--preset", "torch", "--momentum", "0.9"], "optimizer.momentum cannot be combined with optimizer.preset='torch'"),
    (["--preset", "torch", "--preset-arg", "alpha=1.5"], "optimizer.preset_args.alpha must be in [0, 1), got 1.5"),
    (["--preset", "torch", "--preset-arg", "beta=1"], "unexpected argument(s) 'beta'"),
    (["--set", 'optimizer.preset="caffe"'], "optimizer.preset must be one of 'paddle', 'torch'"),
    (["--mode", "static", "--optimizer", "torch.rmsprop"], "optimizer.kind='torch.rmsprop' needs mode='dygraph'"),
    (["--mode", "static", "--precision", "bfloat16"], "precision='bfloat16' needs mode='dygraph'"),
    (["--optimizer", "torch.adam", "--l1", "0.1"], "optimizer.regularization.kind='l1' is not available"),
    (["--resume"], "resume = true needs checkpoint_dir"),
    (["--data", "nosuch"], "--data 'nosuch': neither a bundled data set"),
    (["--data", "/nonexistent/x.csv", "--target", "y"], "data.path: '/nonexistent/x.csv': no such file"),
    (["--data", "/nonexistent/x.csv"], "needs data.target"),
    (["--target", "y"], "data.target applies to a CSV given by data.path"),
    (["--clip", "global_norm:-1"], "optimizer.clip.value must be > 0, got -1"),
    (["--clip", "global_norm"], "--clip 'global_norm': expected KIND:VALUE"),
    (["--set", 'optimizer.schedule.kind="piecewise"'], "optimizer.schedule.boundaries must list at least one step"),
    (["--set", "model.hidden=[0]"], "model.hidden[0] must be in [1, 65536], got 0"),
    (["--set", "data.test_fraction=1.0"], "data.test_fraction must be in (0, 1), got 1.0"),
    (["--set", "model.sparse=true"], "model.sparse applies to model.kind='embedding'"),
    (["--set", "rho"], "--set 'rho': expected KEY=VALUE"),
    (["--config", "/nonexistent.toml"], "--config '/nonexistent.toml': no such file"),
    (["--optimizer", "momentum", "--momentum", "-0.5"], "optimizer.momentum must be >= 0, got -0.5"),
    (
        ["--optimizer", "adam", "--nesterov"],
        "optimizer.nesterov applies to optimizer.kind 'rmsprop' or 'momentum' or 'torch.momentum', not 'adam'",
    ),
    (["--optimizer", "torch.sgd", "--nesterov"], "optimizer.nesterov applies to optimizer.kind"),
    (["--optimizer", "momentum", "--epsilon", "1e-6"], "optimizer.epsilon applies to optimizer.kind"),
    (["--optimizer", "adagrad", "--momentum", "0.9"], "optimizer.momentum applies to optimizer.kind"),
    (["--optimizer", "adagrad", "--epsilon", "0"], "optimizer.epsilon must be > 0, got 0"),
    (
        ["--optimizer", "adagrad", "--set", "optimizer.initial_accumulator_value=-1"],
        "optimizer.initial_accumulator_value must be >= 0, got -1",
    ),
    (
        ["--optimizer", "torch.adagrad", "--set", "optimizer.initial_accumulator_value=true"],
        "optimizer.initial_accumulator_value must be a real number >= 0, got True of type bool",
    ),
    (
        ["--optimizer", "torch.momentum", "--set", "optimizer.initial_accumulator_value=0.1"],
        "optimizer.initial_accumulator_value applies to optimizer.kind 'adagrad' or 'torch.adagrad', "
        "not 'torch.momentum'",
    ),
    (["--optimizer", "momentum", "--preset", "torch"], "optimizer.preset applies to optimizer.kind 'rmsprop'"),
    (["--mode", "static", "--optimizer", "torch.momentum"], "optimizer.kind='torch.momentum' needs mode='dygraph'"),
    (["--mode", "static", "--optimizer", "torch.adagrad"], "optimizer.kind='torch.adagrad' needs mode='dygraph'"),
    (["--optimizer", "torch.adagrad", "--l1", "0.1"], "optimizer.regularization.kind='l1' is not available"),
    (
        ["--optimizer", "torch.momentum", "--momentum", "0", "--nesterov"],
        "optimizer (torch.momentum(lr=0.01, momentum=0, nesterov)): Nesterov momentum requires a momentum",
    ),
    (
        ["--optimizer", "torch.adagrad", "--precision", "float16"],
        "optimizer.epsilon=1e-10 is below float16's smallest normal number 6.1e-05",
    ),
    (["--optimizer", "adagrad", "--set", "optimizer.initial_accumulator_value=1e999"], "got inf"),
]


@pytest.mark.parametrize("flags, message", CONFIG_ERRORS, ids=[" ".join(f) for f, _ in CONFIG_ERRORS])
def test_config_errors_name_the_key(tmp_path, capsys, flags, message):
    assert main(["train", *flags, "--out", str(tmp_path / "x"), *QUIET]) == 2
    err = capsys.readouterr().err
    assert err.startswith("config error: ") and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_bad_toml_value_and_the_console_entry(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[optimizer]\nrho = 1.5\n")
    proc = subprocess.run(
        [sys.executable, "-m", "torchfluid", "train", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": ROOT},
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "config error: optimizer.rho must be in [0, 1), got 1.5"


def test_compare_plots_settings_side_by_side(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert (
        main(
            [
                "compare",
                "--epochs",
                "3",
                "--out",
                str(out),
                "--settings",
                "paddle,torch-preset,torch.rmsprop",
                "--setting",
                "fast adam:kind=adam,beta1=0.8",
                *QUIET,
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "final train loss" in text and "fast adam" in text
    assert_png(out / "compare.png", 20_000)
    runs = histories(out)
    assert list(runs) == [
        "torchfluid RMSProp (Paddle defaults)",
        "torchfluid RMSProp.preset('torch')",
        "torch.optim.RMSprop",
        "fast adam",
    ]
    # the 'torch' preset reproduces torch.optim.RMSprop from the same start and batches
    np.testing.assert_allclose(
        curve(runs["torchfluid RMSProp.preset('torch')"]), curve(runs["torch.optim.RMSprop"]), rtol=1e-4
    )


def test_compare_settings_from_toml_and_their_errors(tmp_path, capsys):
    config = tmp_path / "cmp.toml"
    config.write_text(
        'epochs = 2\nprogress = false\n[data]\nname = "iris"\n'
        '[[compare]]\nname = "centered"\noptimizer = { centered = true }\n'
        '[[compare]]\nname = "tf1"\noptimizer = { preset = "tf1", preset_args = { decay = 0.9 } }\n'
    )
    assert main(["compare", "--config", str(config), "--out", str(tmp_path / "o")]) == 0
    assert list(histories(tmp_path / "o")) == ["centered", "tf1"]
    config.write_text('[[compare]]\nname = "bad"\noptimizer = { rho = 2.0 }\n')
    assert main(["compare", "--config", str(config), "--out", str(tmp_path / "o2")]) == 2
    assert "config error: setting 'bad': optimizer.rho must be in [0, 1), got 2.0" in capsys.readouterr().err
    assert main(["compare", "--settings", "paddle,nope", "--out", str(tmp_path / "o3")]) == 2
    assert "unknown setting 'nope'" in capsys.readouterr().err


def test_bench_quick_prints_a_table_and_plots(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "--quick", "--reps", "2", "--cases", "50x4K", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ms/step" in text and "torch / this" in text and "this / floor" in text
    assert_png(out / "bench.png")
    with open(out / "bench.json") as f:
        results = json.load(f)["results"]
    assert [r["centered"] for r in results] == [False, True]
    for r in results:
        assert {"torchfluid", "torch", "torch foreach", "floor"} <= set(r["ms"])
        assert all(v > 0 for v in r["ms"].values())
    assert main(["bench", "--cases", "huge", "--out", str(out)]) == 2


def test_readme_toml_block_is_a_valid_train_config():
    import re
    import tomllib

    from torchfluid.cli.config import build_config, flatten

    with open(os.path.join(ROOT, "README.md")) as f:
        (block,) = re.findall(r"```toml\n(.*?)```", f.read(), flags=re.S)
    cfg = build_config(flatten(tomllib.loads(block)))
    assert cfg["optimizer.schedule.kind"] == "cosine" and cfg["optimizer.centered"] is True


@pytest.mark.parametrize(
    "key, value",
    [
        ("seed", 2**62 + 1),
        ("seed", 2**53 + 1),
        ("seed", 2**63 - 1),  # the documented maximum
        ("optimizer.schedule.decay_steps", 2**53),
        ("optimizer.schedule.warmup_steps", 2**53),
        ("epochs", 7),
        ("epochs", 2**64 + 1),  # no upper bound, and every digit kept
    ],
)
def test_integer_keys_keep_every_digit(key, value):
    from torchfluid.cli.config import build_config

    got = build_config({key: value})[key]
    assert type(got) is int and got == value


@pytest.mark.parametrize(
    "flat, message",
    [
        ({"seed": 2**63}, "seed must be in [0, 9.22337e+18], got 9223372036854775808"),
        ({"seed": -1}, "seed must be in [0, 9.22337e+18], got -1"),
        ({"optimizer.schedule.decay_steps": 2**53 + 1}, "optimizer.schedule.decay_steps must be in [1, 9.0072e+15]"),
        (
            {"optimizer.schedule.kind": "piecewise", "optimizer.schedule.boundaries": [2, 2**53 + 1]},
            "optimizer.schedule.boundaries[1] must be in [1, 9.0072e+15], got 9007199254740993",
        ),
        ({"epochs": 10**400}, "epochs must be >= 1, got an integer of 401 digits"),
        ({"optimizer.learning_rate": 10**400}, "optimizer.learning_rate must be > 0, got an integer of 401 digits"),
        ({"optimizer.momentum": -(10**60)}, "optimizer.momentum must be >= 0, got a negative integer of 61 digits"),
        ({"mode": "eager"}, "mode must be one of 'dygraph', 'static', got 'eager'"),
        ({"data.task": "Auto"}, "data.task must be one of 'auto', 'regression', 'classification', got 'Auto'"),
        ({"optimizer.state_dtype": "float16"}, "optimizer.state_dtype must be one of 'float32', 'bfloat16', got"),
    ],
)
def test_config_values_checked_at_the_bounds(flat, message):
    from torchfluid.cli.config import ConfigError, build_config

    with pytest.raises(ConfigError) as info:
        build_config(flat)
    assert str(info.value).startswith(message), str(info.value)


_T = np.arange(12, dtype=np.float64)


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ({"kind": "constant"}, np.full(12, 0.1)),
        ({"kind": "exponential", "decay_steps": 3, "decay_rate": 0.5}, lr_refs.exponential(_T, 0.1, 3, 0.5)),
        (
            {"kind": "exponential", "decay_steps": 3, "decay_rate": 0.5, "staircase": True},
            lr_refs.exponential(_T, 0.1, 3, 0.5, staircase=True),
        ),
        ({"kind": "natural_exp", "decay_steps": 4, "decay_rate": 0.3}, lr_refs.natural_exp(_T, 0.1, 4, 0.3)),
        ({"kind": "inverse_time", "decay_steps": 2, "decay_rate": 0.7}, lr_refs.inverse_time(_T, 0.1, 2, 0.7)),
        (
            {"kind": "polynomial", "decay_steps": 8, "end_learning_rate": 0.01, "power": 2.0},
            lr_refs.polynomial(_T, 0.1, 8, end_lr=0.01, power=2.0),
        ),
        (
            {"kind": "piecewise", "boundaries": [2, 5], "values": [0.3, 0.2, 0.05]},
            lr_refs.piecewise(_T, [2, 5], [0.3, 0.2, 0.05]),
        ),
        ({"kind": "cosine"}, lr_refs.cosine_epochs(_T, 0.1, 4, 6)),
        (
            {"kind": "warmup", "warmup_steps": 5, "start_lr": 0.02},
            lr_refs.warmup(_T + 1, 5, 0.02, 0.1, 0.1),
        ),  # Paddle: begin=1
    ],
    ids=lambda v: v["kind"] if isinstance(v, dict) else "",
)
def test_every_schedule_kind_gives_its_formula(schedule, expected):
    from torchfluid.cli.config import build_config
    from torchfluid.cli.optim import learning_rate
    from torchfluid.dygraph import guard

    cfg = build_config(
        {"epochs": 6, "optimizer.learning_rate": 0.1, **{f"optimizer.schedule.{k}": v for k, v in schedule.items()}}
    )
    with guard():
        lr = learning_rate(cfg, 4)  # 4 steps per epoch
        rates = [lr] * 12 if isinstance(lr, float) else [float(lr()) for _ in range(12)]  # a fluid decay: [1] tensors
    np.testing.assert_allclose(rates, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "key, value",
    [
        ("rho", 0.8),
        ("momentum", 0.5),
        ("centered", True),
        ("eps_in_sqrt", False),
        ("initial_mean_square", 0.25),
        ("lr_in_momentum", False),
        ("nesterov", True),
        ("decoupled_weight_decay", 0.01),
        ("bias_correction", True),
        ("epsilon", 1e-3),
        ("lazy_mode", True),
    ],
)
def test_every_rmsprop_key_reaches_the_optimizer(key, value):
    import torch

    from torchfluid.cli.config import build_config
    from torchfluid.cli.optim import make_optimizer

    needs = {"lazy_mode": {"model.kind": "embedding", "model.sparse": True}, "nesterov": {"optimizer.momentum": 0.9}}
    cfg = build_config({f"optimizer.{key}": value, **needs.get(key, {})})
    opt = make_optimizer(cfg, 0.1, [torch.nn.Parameter(torch.zeros(2))])
    got = opt.lazy_mode if key == "lazy_mode" else opt.param_groups[0][key]
    assert got == value


@pytest.mark.parametrize(
    "value, cell",
    [
        (None, "-"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (-float("inf"), "-inf"),
        (0.5, "0.5"),
        (1 / 3, "0.3333"),
        (9999.0, "9999"),
        (12345.0, "1.234e+04"),
        (-12345.0, "-1.234e+04"),
        (7, "7"),
        ("12.5%", "12.5%"),
    ],
)
def test_table_cells(value, cell):
    from torchfluid.cli.report import format_table

    header, rule, row = format_table(["h"], [[value]]).splitlines()
    assert row.strip() == cell and len(row) == len(rule) == max(1, len(cell))


@pytest.mark.parametrize(
    "flags",
    [
        ["--optimizer", "momentum", "--lr", "0.05", "--l2", "1e-3", "--schedule", "exponential"],
        ["--optimizer", "momentum", "--nesterov", "--momentum", "0.5", "--clip", "global_norm:0.5"],
        ["--optimizer", "adagrad", "--lr", "0.05", "--l1", "1e-3", "--schedule", "exponential"],
        ["--optimizer", "adagrad", "--set", "optimizer.initial_accumulator_value=0.5", "--clip", "value:0.1"],
    ],
    ids=lambda f: " ".join(f[:4]),
)
def test_momentum_and_adagrad_train_alike_in_static_and_dygraph_mode(tmp_path, flags):
    runs = {}
    for mode in ("dygraph", "static"):
        out = tmp_path / mode
        argv = ["train", "--data", "wine", "--mode", mode, *flags, "--epochs", "3", "--out", str(out), *QUIET]
        assert main(argv) == 0
        (runs[mode],) = histories(out).values()
    assert curve(runs["dygraph"])[-1] < curve(runs["dygraph"])[0]
    for key in ("train_loss", "test_loss", "lr"):
        np.testing.assert_allclose(curve(runs["static"], key), curve(runs["dygraph"], key), rtol=1e-4)


def test_compare_momentum_and_adagrad_next_to_their_torch_twins(tmp_path, capsys):
    # with the same epsilon, Paddle's momentum / adagrad ops and torch.optim.SGD(momentum) /
    # torch.optim.Adagrad(lr_decay=0) are the same maths: the same curves from the same start and batches
    out = tmp_path / "cmp"
    argv = ["compare", "--data", "iris", "--epochs", "3", "--lr", "0.05", "--out", str(out), *QUIET]
    assert main([*argv, "--settings", "momentum,torch.momentum,adagrad,torch.adagrad"]) == 0
    assert "final train loss" in capsys.readouterr().out
    runs = histories(out)
    assert list(runs) == [
        "torchfluid Momentum",
        "torch.optim.SGD, momentum 0.9",
        "torchfluid Adagrad",
        "torch.optim.Adagrad, eps 1e-6",
    ]
    for h in runs.values():
        assert curve(h)[-1] < curve(h)[0]
    for ours, theirs in (
        ("torchfluid Momentum", "torch.optim.SGD, momentum 0.9"),
        ("torchfluid Adagrad", "torch.optim.Adagrad, eps 1e-6"),
    ):
        np.testing.assert_allclose(curve(runs[ours]), curve(runs[theirs]), rtol=1e-4)
    assert not np.allclose(curve(runs["torchfluid Momentum"]), curve(runs["torchfluid Adagrad"]), rtol=1e-2)


@pytest.mark.parametrize(
    "given, expected",
    [
        # (keys set, {param-group option: value}) -- the group reads the kind's own argument names
        ({"optimizer.kind": "momentum"}, {"momentum": 0.9, "use_nesterov": False}),
        (
            {"optimizer.kind": "momentum", "optimizer.momentum": 0.5, "optimizer.nesterov": True},
            {"momentum": 0.5, "use_nesterov": True},
        ),
        ({"optimizer.kind": "adagrad"}, {"epsilon": 1e-6, "initial_accumulator_value": 0.0}),
        (
            {"optimizer.kind": "adagrad", "optimizer.epsilon": 1e-3, "optimizer.initial_accumulator_value": 0.25},
            {"epsilon": 1e-3, "initial_accumulator_value": 0.25},
        ),
        ({"optimizer.kind": "torch.momentum"}, {"momentum": 0.9, "nesterov": False, "dampening": 0}),
        (
            {"optimizer.kind": "torch.momentum", "optimizer.momentum": 0.7, "optimizer.nesterov": True},
            {"momentum": 0.7, "nesterov": True},
        ),
        ({"optimizer.kind": "torch.sgd"}, {"momentum": 0.0, "nesterov": False}),
        ({"optimizer.kind": "torch.adagrad"}, {"eps": 1e-10, "initial_accumulator_value": 0.0, "lr_decay": 0.0}),
        (
            {"optimizer.kind": "torch.adagrad", "optimizer.epsilon": 1e-6, "optimizer.initial_accumulator_value": 0.1},
            {"eps": 1e-6, "initial_accumulator_value": 0.1},
        ),
        ({"optimizer.kind": "rmsprop"}, {"momentum": 0.0, "epsilon": 1e-6}),
        ({"optimizer.kind": "torch.rmsprop"}, {"momentum": 0.0, "eps": 1e-8}),
    ],
    ids=lambda v: "-".join(f"{k.removeprefix('optimizer.')}={x}" for k, x in v.items()) if isinstance(v, dict) else "",
)
def test_momentum_and_adagrad_keys_reach_the_optimizer(given, expected):
    import torch

    from torchfluid.cli.config import build_config
    from torchfluid.cli.optim import TorchStepper, build_optimizer

    cfg = build_config(given)
    opt = build_optimizer(cfg, 0.1, [torch.nn.Parameter(torch.zeros(2))])
    group = (opt.opt if isinstance(opt, TorchStepper) else opt).param_groups[0]
    assert {k: group[k] for k in expected} == expected


def test_help_lists_the_momentum_and_adagrad_kinds(capsys):
    from torchfluid.cli import build_parser

    for command in ("train", "compare"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for word in ("momentum", "adagrad", "torch.momentum", "torch.adagrad", "--nesterov"):
            assert word in text, (command, word)


def _readme_lines(*words):
    import re
    import shlex

    with open(os.path.join(ROOT, "README.md")) as f:
        blocks = re.findall(r"```bash\n(.*?)```", f.read(), flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line.startswith("torchfluid") and all(w in line for w in words)]


README_MOMENTUM_ADAGRAD = [
    *_readme_lines("--optimizer momentum"),
    *_readme_lines("--optimizer adagrad"),
    *_readme_lines("--settings momentum"),
]


def test_readme_shows_momentum_and_adagrad_commands():
    assert [w[1] for w in README_MOMENTUM_ADAGRAD] == ["train", "train", "compare"]


@pytest.mark.parametrize("words", README_MOMENTUM_ADAGRAD, ids=lambda w: " ".join(w[1:6]))
def test_readme_momentum_and_adagrad_commands_run(tmp_path, capsys, words):
    out = tmp_path / "out"
    assert main([*words[1:], "--epochs", "3", "--out", str(out), *QUIET]) == 0
    capsys.readouterr()
    runs = histories(out)
    assert runs
    for h in runs.values():
        assert curve(h)[-1] < curve(h)[0]
