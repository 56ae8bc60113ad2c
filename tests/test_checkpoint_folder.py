"""Checkpoint folders shared by processes and runs: temporaries of live writers survive,
one writer per folder and prefix (an advisory lock), one run per folder (run ids),
rotation that never deletes the newest save, and entries named like checkpoints that
are not files."""

import os
import subprocess
import sys
import time

import pytest
import torch

from torchfluid.checkpoint import Checkpointer, CheckpointFolderError, load, save
from torchfluid.checkpoint.atomic import parse_temp_name, this_host

WORKER = os.path.join(os.path.dirname(__file__), "ckpt_concurrent_worker.py")
ENV = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _temp(folder, target, pid, host=None):
    path = folder / f".{target}.{pid}@{host or this_host()}.0123456789ab.tmp"
    path.write_bytes(b"partial")
    return path


def test_temporary_names_carry_pid_and_host(tmp_path):
    ck = Checkpointer(tmp_path)
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        return real(src, dst)

    os.replace = spy
    try:
        ck.save(1)
    finally:
        os.replace = real
    assert parse_temp_name(seen[0]) == ("ckpt-00000001.tfckpt", os.getpid(), this_host())


def test_only_dead_owners_temporaries_of_this_prefix_are_removed(tmp_path):
    dead = _dead_pid()
    cases = {  # name -> removed?
        _temp(tmp_path, "ckpt-00000005.tfckpt", dead): True,  # ours, writer gone
        _temp(tmp_path, "ckpt-index.json", dead): True,  # our index, writer gone
        _temp(tmp_path, "ckpt-00000006.tfckpt", os.getppid()): False,  # ours, writer alive
        _temp(tmp_path, "ckpt-00000007.tfckpt", dead, "otherhost"): False,  # another host: cannot tell
        _temp(tmp_path, "ckpt-b-00000005.tfckpt", dead): False,  # prefix ckpt-b is not ckpt's
        _temp(tmp_path, "ckpt-b-index.json", dead): False,
    }
    Checkpointer(tmp_path).save(1)
    for path, removed in cases.items():
        assert path.exists() != removed, path.name
    Checkpointer(tmp_path, prefix="ckpt-b").resume()
    assert not (tmp_path / f".ckpt-b-00000005.tfckpt.{dead}@{this_host()}.0123456789ab.tmp").exists()


def test_prefixes_are_independent(tmp_path):
    a, b = Checkpointer(tmp_path, keep=1), Checkpointer(tmp_path, prefix="ckpt-b", keep=1)
    for step in (1, 2, 3):
        a.save(step, extra={"who": "a"})
        b.save(step * 10, extra={"who": "b"})
    assert [s for s, _ in a.checkpoints()] == [3] and [s for s, _ in b.checkpoints()] == [30]
    assert a.latest()["extra"] == {"who": "a"} and b.latest()["extra"] == {"who": "b"}


def test_second_writer_fails_fast_naming_the_first(tmp_path):
    first = Checkpointer(tmp_path)
    first.save(1)
    with pytest.raises(CheckpointFolderError, match=rf"in use by process {os.getpid()} on host {this_host()}"):
        Checkpointer(tmp_path).resume()
    with pytest.raises(CheckpointFolderError, match="in use by process"):
        Checkpointer(tmp_path).save(2)
    assert Checkpointer(tmp_path).latest()["step"] == 1  # reading needs no lock
    first.close()
    assert Checkpointer(tmp_path).resume()["step"] == 1


def test_lock_is_released_when_the_process_dies(tmp_path):
    code = (
        "import sys, os; sys.path.insert(0, sys.argv[2]); from torchfluid.checkpoint import Checkpointer; "
        "ck = Checkpointer(sys.argv[1]); ck.save(1); print('locked', flush=True); sys.stdin.read()"
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path), ENV["PYTHONPATH"]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout.readline().strip() == "locked"
        with pytest.raises(CheckpointFolderError, match=rf"in use by process {p.pid} on host"):
            Checkpointer(tmp_path).resume()
    finally:
        p.kill()
        p.wait()
    assert Checkpointer(tmp_path).resume()["step"] == 1


def test_fresh_run_refuses_another_runs_folder_unless_resume_or_overwrite(tmp_path):
    old = Checkpointer(tmp_path, keep=1)
    old.save(100, extra="old")
    old.close()
    fresh = Checkpointer(tmp_path, keep=1)
    with pytest.raises(
        CheckpointFolderError,
        match=rf"holds 1 checkpoint\(s\) of run {old.run_id} \(prefix 'ckpt', steps 100..100\); "
        "call resume\\(\\) to continue that run, pass overwrite=True",
    ):
        fresh.save(1)
    assert [s for s, _ in fresh.checkpoints()] == [100]  # nothing was deleted
    fresh.close()
    replace = Checkpointer(tmp_path, keep=1, overwrite=True)
    replace.save(1, extra="new")
    assert [s for s, _ in replace.checkpoints()] == [1]
    assert replace.latest()["extra"] == "new" and replace.latest()["run_id"] == replace.run_id
    replace.close()
    resumed = Checkpointer(tmp_path, keep=2)
    assert resumed.resume()["step"] == 1 and resumed.run_id == replace.run_id
    resumed.save(2)
    assert [s for s, _ in resumed.checkpoints()] == [1, 2]


def test_legacy_folder_without_index_counts_as_another_run(tmp_path):
    save({"step": 3, "rng": {}, "extra": None}, tmp_path / "ckpt-00000003.tfckpt")
    with pytest.raises(CheckpointFolderError, match="of an unknown run"):
        Checkpointer(tmp_path).save(1)


@pytest.mark.parametrize(
    "steps,keep,expect",
    [
        ([100, 1], 1, [1]),  # a lower step saved later is the newest: kept, 100 rotated out
        ([5, 6, 2, 3], 2, [2, 3]),
        ([1, 2, 1], 2, [2, 1]),  # saving a step again makes it the newest
    ],
)
def test_rotation_never_deletes_the_newest_save(tmp_path, steps, keep, expect):
    ck = Checkpointer(tmp_path, keep=keep)
    for s in steps:
        ck.save(s, extra=s)
    assert [s for s, _ in ck.checkpoints()] == expect
    assert ck.latest()["step"] == steps[-1]


def test_a_save_the_index_does_not_list_yet_is_the_newest(tmp_path):
    ck = Checkpointer(tmp_path, keep=3)
    for s in (7, 8):
        ck.save(s)
    save(dict(load(ck.path_for(8)), step=2), ck.path_for(2))  # written, then a crash before the index update
    assert [s for s, _ in ck.checkpoints()] == [7, 8, 2]
    assert ck.latest()["step"] == 2


def test_directory_named_like_a_checkpoint_is_skipped_with_a_warning(tmp_path):
    ck = Checkpointer(tmp_path, keep=1)
    ck.save(1)
    os.mkdir(tmp_path / "ckpt-00000009.tfckpt")
    with pytest.warns(RuntimeWarning, match="ckpt-00000009.tfckpt: named like a checkpoint but not a file"):
        assert ck.resume()["step"] == 1
    with pytest.warns(RuntimeWarning, match="not a file"):
        ck.save(2)
    assert os.path.isdir(tmp_path / "ckpt-00000009.tfckpt")
    with pytest.warns(RuntimeWarning, match="not a file"):
        assert [s for s, _ in ck.checkpoints()] == [2]


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "empty file"),
        (None, "not a Checkpointer checkpoint"),
    ],
)
def test_unusable_newest_file_is_skipped(tmp_path, content, match):
    ck = Checkpointer(tmp_path, keep=3)
    ck.save(1)
    newest = ck.path_for(2)
    if content is None:
        save({"no": "step"}, newest)
    else:
        open(newest, "wb").write(content)
    with pytest.warns(RuntimeWarning, match=match):
        assert ck.resume()["step"] == 1


def test_concurrent_save_and_resume_on_one_folder_lose_nothing(tmp_path):
    ckdir, stop = tmp_path / "ck", tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, WORKER, "save", str(ckdir), "50", str(stop)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (ckdir / ".ckpt.lock").exists() and time.time() < deadline:
        time.sleep(0.01)
    reader = subprocess.run(
        [sys.executable, WORKER, "resume", str(ckdir), "40", str(stop)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0 and out.startswith("saved "), err
    n = int(out.split()[1])
    assert reader.returncode == 0, reader.stderr
    refused, read, bad = (int(x) for x in reader.stdout.split()[1::2])
    assert bad == 0 and read > 0
    assert refused > 0  # resume() while the writer runs is refused, never interleaved
    ck = Checkpointer(ckdir)
    assert [s for s, _ in ck.checkpoints()] == [n - 2, n - 1, n]
    state = ck.resume()
    assert state["step"] == n and torch.equal(state["extra"]["w"], torch.full((64,), float(n)))
    assert not [f for f in os.listdir(ckdir) if f.endswith(".tmp")]


def test_a_file_system_without_locks_warns_and_still_saves(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    ck = Checkpointer(tmp_path)
    with pytest.warns(RuntimeWarning, match="does not support locks; checkpoint folder .* is not protected"):
        ck.save(1)
    assert ck.latest()["step"] == 1
