"""The command under hostile input: one line on stderr and exit 2 (bad input) or 1 (a
run that fails), never a traceback and never a silent NaN."""

import json
import os
import subprocess
import sys

import pytest

from torchfluid.cli import main
from torchfluid.cli.engine import RunResult
from torchfluid.cli.report import build_figure, loss_panels, same_curves

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = ["--no-progress"]
FAST = ["--epochs", "1", *QUIET]


def _csv(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def _one_line_error(capsys, code, argv, prefix="config error: "):
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(prefix), err
    return err.strip()


ROWS = "a,b,y\n" + "\n".join(f"{i % 3},{i % 5},{i % 2}" for i in range(20)) + "\n"

DATA_CASES = [  # (file name, content, extra flags, expected message after 'config error: data.path: ')
    ("nan.csv", "a,b,y\n1,2,0\nnan,2,1\n1,2,0\n", [], "'{p}' line 3 column 'a': 'nan' is not a finite number"),
    ("inf.csv", "a,b,y\n1,2,0\n1,-inf,1\n1,2,0\n", [], "'{p}' line 3 column 'b': '-inf' is not a finite number"),
    (
        "f32.csv",
        "a,b,y\n1,2,0\n1e39,2,1\n1,2,0\n",
        [],
        "'{p}' line 3 column 'a': '1e39' is too large (the magnitude must be below 1e+15; float32 training would "
        "overflow)",
    ),
    (
        "target.csv",
        "a,b,y\n1,2,0.5\n1,2,1e30\n1,2,0.25\n",
        ["--task", "regression"],
        "'{p}' line 3 column 'y': '1e30' is too large",
    ),
    (
        "nantarget.csv",
        "a,b,y\n1,2,0.5\n\n1,2,nan\n1,2,0.25\n",
        ["--task", "regression"],
        "'{p}' line 4 column 'y': 'nan' is not a finite number",
    ),
    (
        "dup.csv",
        "a,y,y\n1,2,0\n1,2,1\n1,2,0\n",
        [],
        "'{p}': the header names column 'y' 2 times; column names must be distinct",
    ),
    ("huge.csv", "a,b,y\n1,2,0\n1," + "2" * 140_000 + ",1\n", [], "'{p}' line 3: field larger than field limit"),
    ("latin1.csv", b"a,b,y\n1,2,0\n1,\xe92,1\n", [], "'{p}': not UTF-8 text (byte 14)"),
]


@pytest.mark.parametrize("name,content,flags,message", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_bad_csv_values_name_row_and_column(tmp_path, capsys, name, content, flags, message):
    path = _csv(tmp_path, name, content)
    err = _one_line_error(
        capsys, 2, ["train", "--data", path, "--target", "y", *flags, *FAST, "--out", str(tmp_path / "o")]
    )
    assert err.startswith("config error: data.path: " + message.format(p=path)), err
    assert not (tmp_path / "o").exists()


def _file(tmp_path, name="afile", data=b"x"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


INPUT_CASES = [  # (argv builder, expected message after 'config error: ')
    (
        lambda t: ["--config", _file(t, "bad.toml", b"epochs = 1\n\xff\xfe = 2\n")],
        "--config '{t}/bad.toml': not UTF-8 text (byte 11: b'\\xff'); TOML files are UTF-8",
    ),
    (lambda t: ["--config", str(t)], "--config '{t}': is a folder, not a TOML file"),
    (lambda t: ["--out", _file(t)], "out '{t}/afile' exists and is not a folder"),
    (lambda t: ["--checkpoint-dir", _file(t)], "checkpoint_dir '{t}/afile' exists and is not a folder"),
    (lambda t: ["--set", "model.hidden=[2000000000]"], "model.hidden[0] must be in [1, 65536], got 2000000000"),
    (
        lambda t: ["--model", "embedding", "--set", "model.bins=1000000000"],
        "model.bins must be in [2, 65536], got 1000000000",
    ),
    (
        lambda t: ["--hidden", "60000,60000"],
        "the model would have 3,600,540,003 parameters (model.hidden=[60000, 60000], 4 features); at most "
        "50,000,000 are allowed",
    ),
    (
        lambda t: ["--model", "embedding", "--set", "model.bins=65536", "--set", "model.embedding_dim=65536"],
        "the model would have 17,181,966,467 parameters (model.hidden=[32], 4 features, vocabulary 262144 x "
        "embedding_dim 65536); at most 50,000,000 are allowed",
    ),
    (lambda t: ["--seed", str(10**18 * 10)], "seed must be in [0, 9.22337e+18], got 10000000000000000000"),
    (lambda t: ["--set", "epochs=" + "9" * 400], "epochs must be >= 1, got an integer of 400 digits"),
    (
        lambda t: ["--precision", "float16", "--optimizer", "torch.rmsprop"],
        "optimizer.epsilon=1e-08 is below float16's smallest normal number 6.1e-05",
    ),
    (
        lambda t: ["--precision", "float16", "--optimizer", "torch.adagrad"],
        "optimizer.epsilon=1e-10 is below float16's smallest normal number 6.1e-05",
    ),
    (
        lambda t: ["--optimizer", "torch.momentum", "--momentum", "0", "--nesterov"],
        "optimizer (torch.momentum(lr=0.01, momentum=0, nesterov)): Nesterov momentum requires a momentum and "
        "zero dampening",
    ),
    (lambda t: ["--set", "resume_anyway=true"], "resume_anyway = true needs resume = true"),
    (
        lambda t: ["--preset", "torch", "--preset-arg", "weight_decay=0.1", "--l2", "1e-4"],
        "optimizer.regularization and the preset's own weight_decay are both set; keep one",
    ),
    (
        lambda t: ["--preset", "keras", "--preset-arg", "clipnorm=1.0", "--clip", "norm:1.0"],
        "optimizer.clip and the preset's own clipping are both set; keep one",
    ),
]


@pytest.mark.parametrize("argv,message", INPUT_CASES, ids=[m[:40] for _, m in INPUT_CASES])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    err = _one_line_error(
        capsys,
        2,
        ["train", *argv(tmp_path), *FAST, "--out", str(tmp_path / "o")]
        if "--out" not in argv(tmp_path)
        else ["train", *argv(tmp_path), *FAST],
    )
    assert err.startswith("config error: " + message.format(t=tmp_path)), err
    assert not (tmp_path / "o").exists()


def test_float16_trains_with_float32_optimizer_state(tmp_path, capsys):
    assert main(["train", "--precision", "float16", "--epochs", "3", "--out", str(tmp_path / "o"), *QUIET]) == 0
    with open(tmp_path / "o" / "metrics.json") as f:
        history = json.load(f)["runs"][0]["history"]
    assert all(0 < h["train_loss"] < 2 for h in history)


@pytest.mark.parametrize(
    "flags,what",
    [
        (["--lr", "1e30"], "the train loss became nan in epoch 1"),
        (["--optimizer", "sgd", "--lr", "1e20", "--mode", "static"], "the train loss became"),
    ],
)
def test_non_finite_loss_stops_the_run_with_exit_1(tmp_path, capsys, flags, what):
    err = _one_line_error(
        capsys, 1, ["train", *flags, "--epochs", "3", "--out", str(tmp_path / "o"), *QUIET], prefix="training stopped: "
    )
    assert what in err and "(lower optimizer.learning_rate, add optimizer.clip, or check the data)" in err
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_argparse_errors_are_the_usage_line_and_the_error(capsys):
    for argv, message in (
        (["train", "--bogus"], "torchfluid: error: unrecognized arguments: --bogus"),
        (["train", "--epochs", "x"], "torchfluid train: error: argument --epochs: invalid int value: 'x'"),
        (["nosuch"], "torchfluid: error: argument command: invalid choice: 'nosuch'"),
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 2 and lines[0].startswith("usage: torchfluid") and "--help" in lines[0], lines
        assert lines[1].startswith(message), lines


def test_version(capsys):
    from torchfluid import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"torchfluid {__version__}"


def test_default_out_is_a_new_folder_per_run_and_given_out_needs_overwrite(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for expect in ("torchfluid-run", "torchfluid-run-2"):
        assert main(["train", *FAST]) == 0
        assert f"wrote {expect}/metrics.csv" in capsys.readouterr().out
    err = _one_line_error(capsys, 2, ["train", *FAST, "--out", "torchfluid-run"])
    assert err == (
        "config error: out 'torchfluid-run' already holds the results of a run (metrics.csv, "
        "metrics.json, loss.png); pass --overwrite to replace them or choose another folder"
    )
    assert main(["train", *FAST, "--out", "torchfluid-run", "--overwrite"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["torchfluid-run", "torchfluid-run-2"]


def test_checkpoint_dir_of_another_run_and_resume_with_another_config(tmp_path, capsys):
    ck = str(tmp_path / "ck")
    base = ["train", "--checkpoint-dir", ck, *QUIET]
    assert main([*base, "--epochs", "2", "--out", str(tmp_path / "a")]) == 0
    err = _one_line_error(capsys, 2, [*base, "--epochs", "1", "--out", str(tmp_path / "b")])
    assert err == (
        f"config error: checkpoint_dir '{ck}' holds checkpoints of another run (epochs 1..2); pass "
        "--resume to continue it or --overwrite to replace them"
    )
    for flags, diff in (
        (["--hidden", "64"], "model.hidden: [32] -> [64]"),
        (
            ["--optimizer", "adam", "--schedule", "cosine"],
            "optimizer.kind: 'rmsprop' -> 'adam'; optimizer.schedule.kind: 'constant' -> 'cosine'",
        ),
    ):
        err = _one_line_error(capsys, 2, [*base, "--epochs", "3", "--resume", *flags, "--out", str(tmp_path / "c")])
        assert err == (
            f"config error: --resume: the checkpoint in '{ck}' was written with another configuration "
            f"({diff}); resume with the same settings or pass --resume-anyway"
        )
    err = _one_line_error(
        capsys, 2, [*base, "--epochs", "3", "--resume-anyway", "--hidden", "64", "--out", str(tmp_path / "c")]
    )
    assert err.startswith(
        f"config error: --resume: the checkpoint in '{ck}' does not fit this model and "
        "optimizer: RuntimeError: Error(s) in loading state_dict for Net: size mismatch"
    )
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
    assert main([*base, "--epochs", "3", "--resume", "--out", str(tmp_path / "c")]) == 0  # epochs may change
    assert main([*base, "--epochs", "1", "--overwrite", "--out", str(tmp_path / "d")]) == 0
    assert sorted(os.listdir(ck)) == [".ckpt.lock", "ckpt-00000001.tfckpt", "ckpt-index.json"]


@pytest.mark.parametrize(
    "first, then, message",
    [
        (
            ["--optimizer", "momentum"],
            ["--optimizer", "adagrad"],
            "ValueError: state_dict does not match this optimizer; nothing was loaded. unexpected (4): "
            "'linear_0.w_0_velocity_0'",
        ),
        (
            ["--optimizer", "momentum"],
            ["--optimizer", "torch.momentum"],
            "ValueError: the optimizer state holds no torch.optim state (keys: linear_0.w_0_velocity_0, ",
        ),
        (
            ["--optimizer", "torch.momentum"],
            ["--optimizer", "momentum"],
            "ValueError: state_dict does not match this optimizer; nothing was loaded. unexpected (1): 'optimizer'",
        ),
        (
            ["--optimizer", "torch.momentum"],
            ["--optimizer", "torch.adagrad"],
            "ValueError: the optimizer state is another torch.optim optimizer's (param-group options dampening, "
            "differentiable, foreach, fused, lr, maximize, momentum, nesterov, weight_decay); Adagrad has "
            "differentiable, eps, foreach, fused, initial_accumulator_value, lr, lr_decay",
        ),
        (
            ["--optimizer", "torch.adagrad"],
            ["--optimizer", "torch.rmsprop"],
            "ValueError: the optimizer state is another torch.optim optimizer's (param-group options "
            "differentiable, eps, foreach, fused, initial_accumulator_value, lr, lr_decay, maximize, weight_decay)",
        ),
    ],
    ids=lambda v: v[1] if isinstance(v, list) else "",
)
def test_resume_anyway_refuses_another_optimizers_state(tmp_path, capsys, first, then, message):
    ck = str(tmp_path / "ck")
    base = ["train", "--data", "iris", "--checkpoint-dir", ck, *QUIET]
    assert main([*base, *first, "--epochs", "2", "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    err = _one_line_error(capsys, 2, [*base, *then, "--epochs", "3", "--resume", "--out", str(tmp_path / "b")])
    assert f"(optimizer.kind: {first[1]!r} -> {then[1]!r}" in err, err
    err = _one_line_error(capsys, 2, [*base, *then, "--epochs", "3", "--resume-anyway", "--out", str(tmp_path / "b")])
    assert err.startswith(
        f"config error: --resume: the checkpoint in '{ck}' does not fit this model and optimizer: {message}"
    ), err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    "kind, flags, diff",
    [
        ("momentum", ["--momentum", "0.5"], "optimizer.momentum: 0.9 -> 0.5"),
        ("torch.momentum", ["--nesterov"], "optimizer.nesterov: False -> True"),
        (
            "adagrad",
            ["--set", "optimizer.initial_accumulator_value=0.1"],
            "optimizer.initial_accumulator_value: 0.0 -> 0.1",
        ),
        ("torch.adagrad", ["--epsilon", "1e-6"], "optimizer.epsilon: None -> 1e-06"),
        ("rmsprop", ["--momentum", "0.9"], "optimizer.momentum: 0.0 -> 0.9"),
    ],
)
def test_resume_names_the_momentum_and_adagrad_keys_that_differ(tmp_path, capsys, kind, flags, diff):
    ck = str(tmp_path / "ck")
    base = ["train", "--data", "iris", "--optimizer", kind, "--checkpoint-dir", ck, *QUIET]
    assert main([*base, "--epochs", "1", "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    err = _one_line_error(capsys, 2, [*base, *flags, "--epochs", "2", "--resume", "--out", str(tmp_path / "b")])
    assert f"was written with another configuration ({diff})" in err, err
    assert main([*base, "--epochs", "2", "--resume", "--out", str(tmp_path / "c")]) == 0  # the same settings


def test_console_errors_have_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "torchfluid", "train", "--config", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": ROOT},
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr == f"config error: --config '{tmp_path}': is a folder, not a TOML file\n"


def _run(label, losses):
    return RunResult(
        label, [{"epoch": i + 1, "train_loss": v, "test_loss": v, "test_accuracy": 0.5} for i, v in enumerate(losses)]
    )


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_long_labels_go_to_one_legend_below_the_panels():
    runs = [
        _run(
            "rmsprop(lr=0.01, centered, momentum=0.9, schedule=cosine, clip=global_norm:1, l2=0.0001, "
            "nesterov, bias_correction)",
            [1.0, 0.5, 0.25],
        ),
        _run("adam", [1.0, 0.6, 0.3]),
    ]
    fig = build_figure(loss_panels(runs), suptitle="x")
    renderer = fig.canvas.get_renderer()
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert all(not ax.get_legend() for ax in axes)
    assert not any(_overlaps(box, ax.get_tightbbox(renderer)) for ax in axes)
    assert "\n" in legend.get_texts()[0].get_text()  # the long label is wrapped
    assert all(len(line) <= 38 for t in legend.get_texts() for line in t.get_text().splitlines())
    tight = fig.get_tightbbox(renderer)
    for ax in axes:  # the saved image (bbox_inches="tight") holds every x label and the legend
        label = ax.xaxis.label.get_window_extent(renderer).transformed(fig.dpi_scale_trans.inverted())
        assert tight.x0 <= label.x0 and label.x1 <= tight.x1 and tight.y0 <= label.y0
    assert tight.y0 <= box.transformed(fig.dpi_scale_trans.inverted()).y0


def test_identical_curves_stay_visible_and_are_noted():
    runs = [_run("a", [1.0, 0.5, 0.25]), _run("b", [1.0, 0.5, 0.25]), _run("c", [1.0, 0.4, 0.2])]
    assert same_curves(runs) == {"b": "a"}
    fig = build_figure(loss_panels(runs))
    lines = fig.axes[0].get_lines()
    styles = [(line.get_linestyle(), line.get_marker(), line.get_markevery()) for line in lines]
    assert len(set(styles)) == 3


def test_compare_notes_exact_overlaps_in_the_table(tmp_path, capsys):
    assert (
        main(
            [
                "compare",
                "--data",
                "iris",
                "--epochs",
                "2",
                "--settings",
                "paddle",
                "--setting",
                "copy:kind=rmsprop",
                "--setting",
                "other:kind=rmsprop,rho=0.5",
                "--out",
                str(tmp_path / "c"),
                *QUIET,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    (copy_row,) = [line for line in out.splitlines() if line.strip().startswith("copy ")]
    assert copy_row.rstrip().endswith("same curves as 'torchfluid RMSProp (Paddle defaults)'")
    (other_row,) = [line for line in out.splitlines() if line.strip().startswith("other ")]
    assert "same curves" not in other_row
    assert "identical curves are drawn on top of each other" in out


def test_compare_refuses_a_shared_checkpoint_dir(tmp_path, capsys):
    err = _one_line_error(
        capsys,
        2,
        [
            "compare",
            "--settings",
            "paddle,adam",
            "--checkpoint-dir",
            str(tmp_path / "ck"),
            "--out",
            str(tmp_path / "c"),
            *FAST,
        ],
    )
    assert err == (
        "config error: checkpoint_dir applies to train: the settings of compare would share one "
        "checkpoint folder (train each setting with its own --checkpoint-dir instead)"
    )
    assert not (tmp_path / "c").exists() and not (tmp_path / "ck").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--epochs", "0"], "--epochs must be >= 1, got 0"),
        (["demo", "--seed", "-1"], "--seed must be in [0, 2**63), got -1"),
        (["demo", "--seed", str(2**63)], f"--seed must be in [0, 2**63), got {2**63}"),
        (["bench", "--reps", "0"], "--reps must be >= 1, got 0"),
        (["bench", "--reps", "100001"], "--reps must be <= 100000, got 100001"),
        (["bench", "--loops", "--reps", "0"], "--reps must be >= 1, got 0"),
        (["bench", "--loops", "--threads", "0"], "--threads must be in [1, 1024], got 0"),
        (["bench", "--loops", "--cases", "linear,resnet"], "--cases: unknown loop 'resnet'; choose from linear, mlp"),
    ],
)
def test_demo_and_bench_refuse_bad_flags_before_writing(tmp_path, capsys, argv, message):
    err = _one_line_error(capsys, 2, [*argv, "--out", str(tmp_path / "o")])
    assert err.startswith("config error: " + message), err
    assert not (tmp_path / "o").exists()
