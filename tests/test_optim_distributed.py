"""torchfluid optimizers in torch's distributed ecosystem, on 2 gloo ranks (CPU):
FSDP2 (DTensor parameters), torch.distributed.checkpoint, ZeroRedundancyOptimizer.
One 2-rank job (tests/optim_dist_worker.py); references run in this process."""

import multiprocessing
import socket

import pytest
import torch

from . import optim_dist_worker as W

HARD_TIMEOUT = 120
# ranks fork from a server that imported torch and torchfluid once (not once per rank)
_CTX = multiprocessing.get_context("forkserver")
_CTX.set_forkserver_preload(["torch", "torch.distributed", "torchfluid.optim", "tests.optim_dist_worker"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("optim-dist"))
    port = _free_port()
    procs = [_CTX.Process(target=W.entry, args=(r, 2, port, out)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(HARD_TIMEOUT)
    for p in procs:
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0, 0], "a rank failed (its traceback is in the captured stderr)"
    return torch.load(f"{out}/result.pt")


@pytest.mark.parametrize("name", list(W.OPTIMIZERS))
def test_fsdp2_gives_the_single_process_parameters(result, name):
    for got, want in zip(result[f"fsdp/{name}"], W.reference(name, W.STEPS), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(W.OPTIMIZERS))
def test_dcp_save_and_resume_is_bit_exact(result, name):
    for got, want in zip(result[f"dcp-resumed/{name}"], result[f"dcp-continued/{name}"], strict=True):
        assert torch.equal(got, want)
    for got, want in zip(result[f"dcp-continued/{name}"], W.reference(name, W.STEPS + W.MORE), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "name, keys",
    [
        # torch.optim's names and step; Paddle's records that torch has none of (beta powers) or keeps
        # otherwise (RMSProp's velocity, lr inside: torch's buffer is it over lr) under their own
        ("RMSProp", ["grad_avg", "momentum", "momentum_buffer", "square_avg", "step"]),
        ("AdamW", ["beta1_pow_acc", "beta2_pow_acc", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]),
    ],
)
def test_zero_redundancy_optimizer_with_torchfluid_optimizers(result, name, keys):
    for got, want in zip(result[f"zero/{name}"], W.reference(name, W.STEPS), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    assert result[f"zero-state-keys/{name}"] == keys


def test_zero_redundancy_optimizer_carries_betas_written_into_its_groups(result):
    """ZeRO copies its groups' keys, torch's ``betas`` and ``eps`` included, into the local
    optimizer's groups every step: they drive the update as in the unsharded optimizer."""
    want = W.reference("AdamW", W.STEPS, new_betas=True)
    for got, ref in zip(result["zero-new-betas/AdamW"], want, strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-7)
    unchanged = W.reference("AdamW", W.STEPS)
    assert not all(torch.equal(a, b) for a, b in zip(want, unchanged, strict=True))  # the betas did matter
