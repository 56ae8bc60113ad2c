"""The whole-training-step benchmark: every loop trains, results carry the ratios, bad
names are refused, and ``torchfluid bench --loops`` prints and records them."""

from __future__ import annotations

import json

import pytest
import torch

from torchfluid.bench import loops
from torchfluid.cli import main


@pytest.mark.parametrize("name", ["linear", "mlp", "lenet"])
def test_model_loops_train_both_sides_from_the_same_weights(name):
    torch.manual_seed(0)
    model, _, _ = loops.MODELS[name](torch.Generator().manual_seed(0))
    before = [p.detach().clone() for p in model.parameters()]
    steps = loops._model_loops(name)
    for side in ("torch", "torchfluid"):
        start = list(steps[side].model.parameters())
        assert all(torch.equal(a.detach(), b) for a, b in zip(start, before, strict=True)), side
        steps[side](2)
    for side in ("torch", "torchfluid"):
        after = list(steps[side].model.parameters())
        assert len(after) == len(before)
        assert any(not torch.equal(a.detach(), b) for a, b in zip(after, before, strict=True)), side


@pytest.mark.parametrize("optimizer", loops.OPTIMIZERS)
@pytest.mark.parametrize("step_only", [False, True], ids=["whole step", "step only"])
def test_every_optimizer_pair_trains_both_sides(optimizer, step_only):
    steps = loops._model_loops("mlp", optimizer=optimizer, step_only=step_only)
    names = {
        "rmsprop": "RMSprop",
        "momentum": "SGD",
        "adagrad": "Adagrad",
        "sgd": "SGD",
        "adam": "Adam",
        "adamw": "AdamW",
        "adamax": "Adamax",
        "adadelta": "Adadelta",
        "torch-sgd": "SGD",
        "torch-rmsprop": "RMSprop",
    }
    for side in ("torch", "torchfluid"):
        before = [p.detach().clone() for p in steps[side].model.parameters()]
        steps[side](2)
        after = list(steps[side].model.parameters())
        assert any(not torch.equal(a.detach(), b) for a, b in zip(after, before, strict=True)), side
    # the torch side is torch.optim's counterpart of the torchfluid optimizer
    assert type(steps["torch"].optimizer).__module__.startswith("torch.optim")
    assert type(steps["torch"].optimizer).__name__ == names[optimizer]
    assert type(steps["torchfluid"].optimizer).__module__.startswith("torchfluid.optim")


def test_an_unknown_optimizer_is_refused():
    with pytest.raises(
        ValueError,
        match="unknown optimizer 'lion'; allowed: rmsprop, momentum, adagrad, sgd, adam, adamw, adamax, adadelta, "
        "torch-sgd, torch-rmsprop",
    ):
        loops._model_loops("linear", optimizer="lion")


def test_run_loops_reports_ratios_side_by_side():
    seen = []
    results = loops.run_loops(
        ["linear"], ["fluid dygraph", "fluid static"], rounds=1, block_ms=1.0, threads=None, on_result=seen.append
    )
    assert [r.case for r in results] == ["linear", "fluid dygraph", "fluid static"] and seen == results
    for r in results:
        assert r.ms[r.loop] > 0 and r.ms[r.baseline] > 0
        assert r.ratio == pytest.approx(r.ms[r.loop] / r.ms[r.baseline])
        lo, hi = r.ratio_spread  # one round: its own ratio
        assert lo == hi == pytest.approx(r.per_round[r.loop][0] / r.per_round[r.baseline][0])
    assert (results[0].loop, results[0].baseline) == ("torchfluid", "torch")
    assert (results[2].loop, results[2].baseline) == ("fluid static", "torch + fetch")


def test_unknown_loop_is_refused():
    with pytest.raises(
        ValueError, match="unknown loop 'resnet'; allowed: linear, mlp, lenet, transformer, embedding, fluid dygraph"
    ):
        loops.run_loops(["resnet"], [], rounds=1)


def test_cli_bench_loops(tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["bench", "--loops", "--reps", "1", "--cases", "linear,fluid static", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "linear" in text and "fluid static" in text and "ratio" in text
    with open(out / "loops.json") as f:
        record = json.load(f)
    assert [r["case"] for r in record["results"]] == ["linear", "fluid static"]
    assert all(r["ratio"] > 0 for r in record["results"])
    assert main(["bench", "--loops", "--cases", "resnet", "--out", str(out)]) == 2
