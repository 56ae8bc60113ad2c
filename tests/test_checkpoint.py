"""Checkpoints: the safe format, atomic writes, bad files, Checkpointer rotation and
resume, kill -9 at random steps and inside a save (subprocesses), malicious pickles."""

import io
import os
import pickle
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import torchfluid
from torchfluid.checkpoint import Checkpointer, CheckpointError, atomic_write, load, save
from torchfluid.optimizer import RMSProp

WORKER = os.path.join(os.path.dirname(__file__), "ckpt_worker.py")


class WritesAFile:
    """A pickle whose loading would create a file (the attack a safe loader must stop)."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_round_trip_of_state_dicts_numpy_and_plain_values(tmp_path):
    obj = {
        "w": torch.randn(3, 4),
        "n": np.arange(5, dtype=np.float32),
        "step": 7,
        "name": "x",
        "nested": {"l": [1.5, None, True], "t": (torch.ones(2),)},
    }
    save(obj, tmp_path / "a.tfckpt")
    back = load(tmp_path / "a.tfckpt")
    assert torch.equal(back["w"], obj["w"]) and torch.equal(back["n"], torch.arange(5.0))
    assert back["step"] == 7 and back["name"] == "x" and back["nested"]["l"] == [1.5, None, True]


def test_unsupported_objects_are_rejected_at_save(tmp_path):
    with pytest.raises(TypeError, match=r"obj\['f'\] is a function"):
        save({"f": lambda: 1}, tmp_path / "x")
    assert not os.path.exists(tmp_path / "x")


def test_truncated_corrupted_foreign_and_wrong_version_files_give_clear_errors(tmp_path):
    good = tmp_path / "good.tfckpt"
    save({"w": torch.randn(100)}, good)
    data = good.read_bytes()
    cases = {
        "truncated": (data[: len(data) // 2], "truncated or corrupted"),
        "empty": (b"", "empty file"),
        "garbage": (b"not a checkpoint at all", "not a torchfluid checkpoint"),
    }
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF
    cases["bitflip"] = (bytes(flipped), "")
    buf = io.BytesIO()
    torch.save({"w": torch.ones(1)}, buf)
    cases["foreign"] = (buf.getvalue(), "not a torchfluid checkpoint")
    buf = io.BytesIO()
    torch.save(
        {"format": "torchfluid-checkpoint", "version": 99, "sha256": "", "payload": torch.zeros(1, dtype=torch.uint8)},
        buf,
    )
    cases["version"] = (buf.getvalue(), "version 99 is not supported")
    for name, (blob, text) in cases.items():
        path = tmp_path / f"{name}.tfckpt"
        path.write_bytes(blob)
        with pytest.raises(CheckpointError) as info:
            load(path)
        assert str(path) in str(info.value) and text in str(info.value), name
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.tfckpt")


def test_malicious_pickle_is_refused_and_executes_nothing(tmp_path):
    target = tmp_path / "pwned"
    evil = tmp_path / "evil.tfckpt"
    buf = io.BytesIO()
    torch.save({"x": WritesAFile(str(target))}, buf)  # a torch zip carrying a code-running pickle
    evil.write_bytes(buf.getvalue())
    plain = tmp_path / "evil.pkl"
    plain.write_bytes(pickle.dumps(WritesAFile(str(target))))
    for path in (evil, plain):
        with pytest.raises(CheckpointError, match="refused to load|not a zip archive"):
            load(path)
    assert not target.exists()


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write(path, b"old")

    def boom(f):
        f.write(b"partial new content")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, boom)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_checkpointer_rotates_and_skips_damaged_newest(tmp_path):
    p = torch.nn.Parameter(torch.zeros(3))
    opt = RMSProp(0.1, parameters=[("w", p)])
    ck = Checkpointer(tmp_path, every=2, keep=2)
    for step in range(1, 8):
        p.grad = torch.ones(3)
        opt.step()
        ck.save(step, optimizer=opt)
    assert [s for s, _ in ck.checkpoints()] == [4, 6]
    with open(ck.path_for(6), "r+b") as f:
        f.truncate(100)
    with pytest.warns(RuntimeWarning, match="skipping damaged checkpoint"):
        state = ck.latest()
    assert state["step"] == 4
    with pytest.raises(ValueError, match="every must be an int >= 1, got 0"):
        Checkpointer(tmp_path, every=0)


def test_resume_is_all_or_nothing(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = RMSProp(0.1, parameters=model.named_parameters())
    ck = Checkpointer(tmp_path)
    ck.save(1, model=model, optimizer=opt)
    other = torch.nn.Linear(3, 2)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    wrong_opt = RMSProp(0.1, momentum=0.9, parameters=[("x", torch.nn.Parameter(torch.ones(1)))])
    state = load(ck.path_for(1))
    state["optimizer"]["weight_mean_square_0"] = torch.ones(2, 3)
    save(state, ck.path_for(1))
    with pytest.raises(ValueError, match="unexpected"):
        ck.resume(model=other, optimizer=wrong_opt)
    for k, v in other.state_dict().items():
        assert torch.equal(v, before[k])


def test_resume_with_a_malformed_rng_state_puts_everything_back(tmp_path):
    model = torch.nn.Linear(3, 2)
    ck = Checkpointer(tmp_path)
    ck.save(1, model=model)
    state = load(ck.path_for(1))
    state["rng"]["numpy"] = {"kind": "MT19937"}  # torch's state is set first, then this fails
    save(state, ck.path_for(1))
    other = torch.nn.Linear(3, 2)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    rng_before = torch.get_rng_state()
    with pytest.raises(CheckpointError, match=r"ckpt-00000001.tfckpt: malformed RNG state"):
        ck.resume(model=other)
    assert all(torch.equal(v, before[k]) for k, v in other.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng_before)


def _run_worker(ckdir, out, kill_step=-1, kill_at="none", total=12):
    return subprocess.run(
        [sys.executable, WORKER, str(ckdir), str(total), str(out), str(kill_step), kill_at],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_kill_minus_9_anywhere_then_resume_is_bit_identical(tmp_path):
    ref = _run_worker(tmp_path / "ref", tmp_path / "ref.pt")
    assert ref.returncode == 0, ref.stderr
    expected = torch.load(tmp_path / "ref.pt", weights_only=True)
    for kill_step, kill_at in [(3, "update"), (6, "fsync"), (9, "replace")]:
        ckdir = tmp_path / f"run_{kill_at}"
        out = tmp_path / f"{kill_at}.pt"
        first = _run_worker(ckdir, out, kill_step, kill_at)
        assert first.returncode == -signal.SIGKILL, first.stderr
        assert not out.exists()
        second = _run_worker(ckdir, out)
        assert second.returncode == 0, second.stderr
        got = torch.load(out, weights_only=True)
        for k in expected:
            assert torch.equal(got[k], expected[k]), (kill_at, k)
        assert not [n for n in os.listdir(ckdir) if n.endswith(".tmp")]


def test_optimizer_to_and_torch_style_state_dict_round_trip():
    model = torch.nn.Linear(4, 3)
    opt = RMSProp(0.01, momentum=0.9, parameters=model.named_parameters())
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    tsd = opt.torch_state_dict()
    assert set(tsd) == {"state", "param_groups"} and tsd["param_groups"][0]["param_names"] == ["weight", "bias"]
    model2 = torch.nn.Linear(4, 3)
    opt2 = RMSProp(0.01, momentum=0.9, parameters=[("bias", model2.bias), ("weight", model2.weight)])
    opt2.load_state_dict(tsd)  # matched by name although the order differs
    assert torch.equal(opt2.state[model2.weight]["momentum"], opt.state[model.weight]["momentum"])
    opt2.to(dtype=torch.float64)
    assert opt2.state[model2.weight]["momentum"].dtype == torch.float64


def test_top_level_save_and_load_are_the_checkpoint_functions(tmp_path):
    torchfluid.save({"a": torch.ones(2)}, tmp_path / "x.tfckpt")
    assert torch.equal(torchfluid.load(tmp_path / "x.tfckpt")["a"], torch.ones(2))
