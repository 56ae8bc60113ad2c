"""Data-parallel training on torch.distributed (gloo, 127.0.0.1, 2 processes spawned here).

References are single-process trainings on the concatenated batch with the same
definitions (tests/dist_worker.py). Three 2-rank jobs in all: one runs every
equivalence scenario plus a checkpointed reference run; one crashes a rank; one
restarts from the checkpoints. Every process has a hard timeout; no timing asserts.
"""

import argparse
import multiprocessing
import os
import pathlib
import re
import runpy
import shutil
import socket
import tempfile
import time
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist

from torchfluid.checkpoint import Checkpointer, CheckpointError
from torchfluid.distributed import ShardedCheckpointer, consolidated_state_dict, merge_shards, partition, state_nbytes
from torchfluid.optimizer import RMSProp

from . import dist_worker as W

HARD_TIMEOUT = 60  # seconds per job; a hang fails the test instead of blocking CI
TOTAL = 10  # steps of the checkpointed runs
RESUME_AT = 5  # the step the one-rank resume starts from
CRASH_AFTER = 6  # rank 1 is SIGKILLed after the update of this step, before saving it
ATOL, RTOL = 1e-5, 1e-5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Ranks are forked from a forkserver that imported torch (and DDP's lazy imports) once,
# so a job does not pay the import twice per rank.
_CTX = multiprocessing.get_context("forkserver")
_CTX.set_forkserver_preload(["torch", "torch.distributed", "torch._dynamo", "torchfluid", "tests.dist_worker"])


def launch(*args, world: int = 2, timeout: float = 20.0, grace: float = 5.0) -> list[tuple[int, str]]:
    """Run ``dist_worker.main(args)`` as ``world`` ranks (the environment torchrun would
    set; ``timeout``: the process group's) and return ``[(exit code, output)]`` per rank.
    Like torchrun, once a rank has failed the others get ``grace`` seconds, then are
    killed; a job still running after HARD_TIMEOUT is killed and the test fails (a hang)."""
    port = _free_port()
    logdir = tempfile.mkdtemp(prefix="tf-dist-")
    logs = [os.path.join(logdir, f"rank{r}.log") for r in range(world)]
    procs = [_CTX.Process(target=W.entry, args=(args, r, world, port, logs[r], timeout)) for r in range(world)]
    for proc in procs:
        proc.start()
    deadline, failed_at = time.monotonic() + HARD_TIMEOUT, None
    try:
        while any(p.exitcode is None for p in procs):
            now = time.monotonic()
            if now > deadline:
                tails = "".join(
                    f"\n--- rank {r}:\n" + (open(log).read()[-1500:] if os.path.exists(log) else "")
                    for r, log in enumerate(logs)
                )
                pytest.fail(f"job {args[0]!r} did not finish within {HARD_TIMEOUT}s (a hang){tails}")
            if failed_at is None and any(p.exitcode not in (None, 0) for p in procs):
                failed_at = now
            if failed_at is not None and now > failed_at + grace:
                break
            time.sleep(0.05)
    finally:
        for proc in procs:
            if proc.exitcode is None:
                proc.kill()
                proc.join()
    results = []
    for rank, (proc, log) in enumerate(zip(procs, logs, strict=False)):
        text = open(log).read() if os.path.exists(log) else f"(rank {rank} wrote no output: did it start?)"
        results.append((proc.exitcode, text))
    shutil.rmtree(logdir, ignore_errors=True)
    return results


def _ok(results):
    for rank, (rc, err) in enumerate(results):
        assert rc == 0, f"rank {rank} exited with {rc}:\n{err[-3000:]}"


def _close(got: dict, want: dict, what: str, atol=ATOL, rtol=RTOL):
    assert got.keys() == want.keys(), what
    for k in want:
        torch.testing.assert_close(got[k], want[k], atol=atol, rtol=rtol, msg=lambda m, k=k: f"{what} {k}: {m}")


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    """The 2-rank job of every equivalence scenario + the checkpointed reference run."""
    out = tmp_path_factory.mktemp("dist")
    ckdir = out / "ref_ckpt"
    _ok(launch("equiv", out, ckdir, TOTAL))
    ranks = [torch.load(out / f"equiv-rank{r}.pt", weights_only=True) for r in range(2)]
    return {"ranks": ranks, "ckdir": ckdir, "final": torch.load(out / "ckpt.pt", weights_only=True)}


@pytest.fixture(scope="module")
def references():
    """Single-process training on the concatenated batch, per optimizer configuration."""
    return {config: W.run(config, ddp=False) for config in ("plain", "full", "adam", "skip", "mp", "mp_adamw")}


# ------------------------------------------------------------------ 2-rank equivalences
def test_ddp_with_torchfluid_rmsprop_equals_one_process_on_the_concatenated_batch(two_rank_run, references):
    for name, config in (("ddp", "plain"), ("full_ddp", "full")):
        want = references[config][0]
        for rank in range(2):
            _close(two_rank_run["ranks"][rank][name]["params"], want, f"{name} rank {rank}")


def test_fluid_dygraph_layers_train_data_parallel_like_one_process(two_rank_run):
    want = W.run_dygraph(ddp=False)
    assert set(want) == {"linear_0.w_0", "linear_0.b_0", "linear_1.w_0", "linear_1.b_0"}
    for name in ("dygraph_ddp", "dygraph_sharded_reduce"):
        for rank in range(2):
            _close(two_rank_run["ranks"][rank][name]["params"], want, f"{name} rank {rank}")


def test_sharded_equals_unsharded_and_each_rank_holds_about_half_the_state(two_rank_run, references):
    r0, r1 = two_rank_run["ranks"]
    # no global clip: the sharded update IS the DDP one, bit for bit (same kernel, same grads)
    for name in ("ddp_sharded", "sharded_reduce"):
        for rank, res in enumerate((r0, r1)):
            for k, v in res[name]["params"].items():
                assert torch.equal(v, r0["ddp"]["params"][k]), (name, rank, k)
    for name, config in (
        ("ddp_sharded", "plain"),
        ("sharded_reduce", "plain"),
        ("full_ddp_sharded", "full"),
        ("full_sharded_reduce", "full"),
        ("adam_sharded_reduce", "adam"),
    ):
        params, opt, _ = references[config]
        total = state_nbytes(opt)
        keys = sorted(k for k in opt.state_dict() if k not in ("param_groups", "LR_Scheduler"))
        for rank, res in enumerate((r0, r1)):
            _close(res[name]["params"], params, f"{name} rank {rank}")
            assert 0 < res[name]["state_nbytes"] <= 0.6 * total, (name, rank, res[name]["state_nbytes"], total)
        assert r0[name]["state_nbytes"] + r1[name]["state_nbytes"] == total, name
        assert not set(r0[name]["state_keys"]) & set(r1[name]["state_keys"]), name
        assert sorted(r0[name]["state_keys"] + r1[name]["state_keys"]) == keys, name


def test_global_norm_clip_across_ranks_equals_the_single_process_clip(two_rank_run, references):
    want = torch.tensor(references["full"][2])
    assert (want > 0.5).all()  # ClipGradByGlobalNorm(0.5) scales every step
    for name in ("full_ddp", "full_ddp_sharded", "full_sharded_reduce"):
        for rank in range(2):
            got = torch.tensor(two_rank_run["ranks"][rank][name]["norms"])
            torch.testing.assert_close(
                got, want, atol=0, rtol=1e-5, msg=lambda m, name=name, rank=rank: f"{name} rank {rank}: {m}"
            )
    want_adam = torch.tensor(references["adam"][2])
    for rank in range(2):
        got = torch.tensor(two_rank_run["ranks"][rank]["adam_sharded_reduce"]["norms"])
        torch.testing.assert_close(got, want_adam, atol=0, rtol=1e-5)


def test_a_nonfinite_gradient_on_one_rank_skips_the_update_on_every_rank(two_rank_run, references):
    params, opt, _ = references["skip"]
    assert opt.skipped_steps == 1  # the NaN half of step NAN_STEP's batch
    for rank in range(2):
        res = two_rank_run["ranks"][rank]["skip_sharded_reduce"]
        assert res["skipped_steps"] == 1, rank
        _close(res["params"], params, f"skip rank {rank}")


@pytest.mark.parametrize("config", ["mp", "mp_adamw"])
def test_multi_precision_master_weights_are_sharded_too(two_rank_run, references, config):
    params, opt, _ = references[config]
    r0, r1 = (two_rank_run["ranks"][r][f"{config}_sharded_reduce"] for r in range(2))
    ddp = two_rank_run["ranks"][0][f"{config}_ddp"]["params"]
    for rank, res in enumerate((r0, r1)):
        assert res["params"]["0.weight"].dtype == torch.bfloat16
        for k, v in ddp.items():  # bfloat16 gradients averaged in bfloat16, exactly as DDP does
            assert torch.equal(res["params"][k], v), (rank, k)
        _close(res["params"], params, f"mp rank {rank}", atol=5e-2, rtol=5e-2)  # vs one process: bf16 noise
    assert not set(r0["masters"]) & set(r1["masters"])
    assert sorted(r0["masters"] + r1["masters"]) == sorted(opt.state_dict()["master_weights"])
    assert r0["state_nbytes"] + r1["state_nbytes"] == state_nbytes(opt)
    assert max(r0["state_nbytes"], r1["state_nbytes"]) <= 0.6 * state_nbytes(opt)


def test_consolidated_state_dict_is_the_unsharded_state_dict(two_rank_run, references):
    got = two_rank_run["ranks"][0]["full_sharded_reduce"]["consolidated"]
    assert two_rank_run["ranks"][1]["full_sharded_reduce"]["consolidated"] is None
    want = references["full"][1].state_dict()
    assert got.keys() == want.keys()
    assert got["param_groups"] == want["param_groups"] and got["LR_Scheduler"] == want["LR_Scheduler"]
    _close(
        {k: v for k, v in got.items() if isinstance(v, torch.Tensor)},
        {k: v for k, v in want.items() if isinstance(v, torch.Tensor)},
        "consolidated",
        atol=1e-4,
    )


# -------------------------------------------------------------------- checkpoints
def _continue_on_one_process(model, opt, sched, start: int) -> dict:
    for step in range(start, TOTAL):
        W.train_step(model, opt, sched, step)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_two_rank_shards_resume_on_one_process_and_continue_identically(two_rank_run, tmp_path):
    ck = ShardedCheckpointer(two_rank_run["ckdir"])
    assert [s for s, _, w in ck.checkpoints()] == list(range(1, TOTAL + 1))
    assert {w for _, _, w in ck.checkpoints()} == {2}
    model = W.make_model()
    opt, sched = W.make_optimizer("full", model)
    info = ck.resume(model=model, optimizer=opt, step=RESUME_AT)
    assert info == {"step": RESUME_AT, "extra": None, "world_size": 2, "rng_restored": False}
    assert opt.state_dict().keys() == W.run("full", ddp=False, steps=1)[1].state_dict().keys()
    final = _continue_on_one_process(model, opt, sched, RESUME_AT)
    _close(final, two_rank_run["final"]["params"], "resumed at 1 rank")
    # the consolidated single file resumes the same way through the plain Checkpointer
    single = Checkpointer(tmp_path)
    ck.export_consolidated(single.path_for(RESUME_AT), step=RESUME_AT)
    model2 = W.make_model()
    opt2, sched2 = W.make_optimizer("full", model2)
    assert single.resume(model=model2, optimizer=opt2)["step"] == RESUME_AT
    final2 = _continue_on_one_process(model2, opt2, sched2, RESUME_AT)
    for k in final:
        assert torch.equal(final2[k], final[k]), k


def test_a_crashed_rank_fails_the_job_clearly_and_a_restart_resumes_from_the_last_checkpoint(two_rank_run, tmp_path):
    ckdir, out = tmp_path / "ckpt", tmp_path / "final.pt"
    (rc0, err0), (rc1, _) = launch("ckpt", ckdir, TOTAL, out, CRASH_AFTER)
    assert rc1 == -9  # SIGKILL
    assert rc0 not in (0, None) and "ShardingError" in err0 and "peer rank probably exited" in err0, err0[-2000:]
    assert not out.exists()
    ck = ShardedCheckpointer(ckdir)
    assert ck.checkpoints()[-1][0] == CRASH_AFTER - 1  # rank 0's file of CRASH_AFTER alone is incomplete
    _ok(launch("ckpt", ckdir, TOTAL, out, -1))  # the restart, at 2 ranks
    got = torch.load(out, weights_only=True)
    assert got["start"] == CRASH_AFTER - 1
    for k, v in two_rank_run["final"]["params"].items():
        assert torch.equal(got["params"][k], v), k


def test_a_hung_rank_fails_the_job_after_the_process_group_timeout(tmp_path):
    (rc0, err0), (rc1, _) = launch("stall", tmp_path / "ckpt", TOTAL, tmp_path / "final.pt", 2, timeout=2.0, grace=0.5)
    assert rc0 not in (0, None) and "ShardingError" in err0, err0[-2000:]
    assert rc1 == -9  # killed by the launcher after the grace period


# ------------------------------------------------------------------ documentation
DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "distributed.md"
DOC_BLOCKS = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)


def test_the_docs_examples_run_at_two_ranks_and_at_one_process(tmp_path, monkeypatch):
    assert len(DOC_BLOCKS) == 2
    scripts = []
    for i, block in enumerate(DOC_BLOCKS):
        scripts.append(tmp_path / f"example{i}.py")
        scripts[-1].write_text(block)
        _ok(launch("exec", scripts[-1], tmp_path))
    ck = ShardedCheckpointer(tmp_path / "checkpoints")
    assert [(s, w) for s, _, w in ck.checkpoints()] == [(15, 2), (20, 2)]
    # the 2-rank shards resume in one process (nothing left to train: it stops at once)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.chdir(tmp_path)
    for script in scripts:
        runpy.run_path(str(script), run_name="__main__")
    assert [(s, w) for s, _, w in ck.checkpoints()] == [(15, 2), (20, 2)]


# ------------------------------------------------------------- in-process checks
@pytest.mark.parametrize(
    "kwargs, text",
    [
        ({"shard_state": "yes"}, "shard_state must be True or False, got 'yes'"),
        ({"shard_state": True, "grad_reduction": "all"}, "grad_reduction must be one of ['none', 'reduce'], got 'all'"),
        ({"grad_reduction": "reduce"}, "apply only with shard_state=True"),
        ({"shard_state": True, "process_group": object()}, "process_group must be None"),
    ],
)
def test_bad_sharding_arguments(kwargs, text):
    with pytest.raises(ValueError) as info:
        RMSProp(0.1, parameters=[torch.nn.Parameter(torch.ones(2))], **kwargs)
    assert text in str(info.value)


def test_partition_is_deterministic_balanced_and_stable_when_extended():
    sizes = [("a", 100), ("b", 60), ("c", 50), ("d", 40), ("e", 10), ("f", 10)]
    owners = partition(sizes, 2)
    assert owners == partition(list(reversed(sizes)), 2)  # order of the input does not matter
    assert owners == {"a": 0, "b": 1, "c": 1, "d": 0, "e": 1, "f": 1}
    loads = [0, 0]
    for name, n in sizes:
        loads[owners[name]] += n
    assert loads == [140, 130]
    extended = partition(sizes + [("g", 500)], 2, dict(owners), loads)
    assert {k: extended[k] for k in owners} == owners and extended["g"] == 1
    assert partition(sizes, 1) == {n: 0 for n, _ in sizes}
    with pytest.raises(ValueError, match="world_size must be an int >= 1, got 0"):
        partition(sizes, 0)


def _train_pair(steps=6, **kwargs):
    model = W.make_model()
    opt, sched = W.make_optimizer("full", model, **kwargs)
    for step in range(steps):
        W.train_step(model, opt, sched, step)
    return model, opt


def test_without_a_process_group_sharded_is_exactly_unsharded():
    assert not dist.is_initialized()
    m1, o1 = _train_pair()
    m2, o2 = _train_pair(shard_state=True, grad_reduction="reduce")
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values(), strict=False):
        assert torch.equal(a, b), k
    s1, s2 = o1.state_dict(), o2.state_dict()
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1 if isinstance(s1[k], torch.Tensor))
    assert consolidated_state_dict(o2).keys() == s1.keys()


def test_world_size_one_process_group_is_exactly_unsharded(tmp_path):
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1, timeout=timedelta(seconds=20)
    )
    try:
        m1, _ = _train_pair()
        m2, o2 = _train_pair(shard_state=True, grad_reduction="reduce")
        assert not o2.sharding.engaged
        for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values(), strict=False):
            assert torch.equal(a, b), k
    finally:
        dist.destroy_process_group()


def test_merge_shards_unites_disjoint_shards_and_rejects_mixed_files():
    a = {"w_mean_square_0": torch.ones(2), "param_groups": [{"lr": 0.1, "param_names": ["w", "b"]}]}
    b = {"b_mean_square_0": torch.zeros(1), "param_groups": [{"lr": 0.1, "param_names": ["w", "b"]}]}
    merged = merge_shards([a, b])
    assert set(merged) == {"w_mean_square_0", "b_mean_square_0", "param_groups"}
    with pytest.raises(ValueError, match=r"'w_mean_square_0' is in shards\[0\] and shards\[1\]"):
        merge_shards([a, dict(a)])
    other = dict(b, param_groups=[{"lr": 0.2, "param_names": ["w", "b"]}])
    with pytest.raises(ValueError, match=r"shards\[0\] and shards\[1\] disagree about 'param_groups'"):
        merge_shards([a, other])
    # the stochastic-rounding counter (bfloat16 state) is one value all ranks share
    rounded = [dict(a, stochastic_rounding={"step": 5}), dict(b, stochastic_rounding={"step": 5})]
    assert merge_shards(rounded)["stochastic_rounding"] == {"step": 5}
    rounded[1]["stochastic_rounding"] = {"step": 4}
    with pytest.raises(ValueError, match=r"shards\[0\] and shards\[1\] disagree about 'stochastic_rounding'"):
        merge_shards(rounded)
    with pytest.raises(ValueError, match="non-empty list"):
        merge_shards([])
    with pytest.raises(TypeError, match=r"shards\[1\] must be a state dict, got int"):
        merge_shards([a, 3])


def test_sharded_checkpointer_on_one_process_rotates_and_skips_incomplete(tmp_path):
    model = W.make_model()
    opt, sched = W.make_optimizer("full", model)
    ck = ShardedCheckpointer(tmp_path, every=2, keep=2)
    for step in range(6):
        W.train_step(model, opt, sched, step)
        ck.save(step + 1, model=model, optimizer=opt, extra={"epoch": 0})
    assert [s for s, _, _ in ck.checkpoints()] == [4, 6]
    os.makedirs(ck.folder_for(8))  # a save that died before its file was written
    (tmp_path / "ckpt-00000008" / "rank-00001-of-00002.tfckpt").write_bytes(b"")  # and a foreign half
    assert ck.checkpoints()[-1][0] == 6
    model2 = W.make_model()
    opt2, _ = W.make_optimizer("full", model2)
    info = ck.resume(model=model2, optimizer=opt2)
    assert info == {"step": 6, "extra": {"epoch": 0}, "world_size": 1, "rng_restored": True}
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values(), strict=False):
        assert torch.equal(a, b), k
    with pytest.raises(CheckpointError, match="no complete checkpoint of step 5"):
        ck.resume(model=model2, optimizer=opt2, step=5)
    with pytest.raises(ValueError, match="keep must be an int >= 1, got 0"):
        ShardedCheckpointer(tmp_path, keep=0)


def test_the_benchmark_runs_and_halves_the_state(monkeypatch):
    bench_dir = str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks")
    monkeypatch.syspath_prepend(bench_dir)
    import bench_distributed

    args = argparse.Namespace(hidden=16, layers=2, batch=8, steps=2, warmup=1)
    rows = {r["config"]: r for r in bench_distributed.run(args)}
    assert set(rows) == {"unsharded", "DDP", "DDP + shard_state", "shard_state reduce"}
    full = rows["unsharded"]["state_mb"]
    assert rows["DDP"]["state_mb"] == full
    assert rows["DDP + shard_state"]["state_mb"] == rows["shard_state reduce"]["state_mb"] == full / 2
    assert rows["shard_state reduce"]["comm_mb"] == rows["DDP"]["comm_mb"] > 0
