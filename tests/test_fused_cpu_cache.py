"""The on-disk kernel cache of fused_cpu: a fresh process loads what another compiled,
with bit-identical results, and a damaged entry is recompiled, never trusted."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("numba")

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CODE = """
import sys, hashlib, torch
sys.path.insert(0, {root!r})
from torchfluid.kernels import fused_cpu, kernel_cache
from torchfluid.kernels.flat import FlatGroup, RMSPropHyper
gen = torch.Generator().manual_seed(0)
ps = [torch.nn.Parameter(torch.randn(n, generator=gen)) for n in (70_001, 3, 0)]
for p in ps:
    p.grad = torch.randn(p.shape, generator=gen)
g = FlatGroup(ps, centered=True, momentum=True)
for _ in range(3):
    g.step(RMSPropHyper(lr=1e-2, rho=0.9, epsilon=1e-6, momentum=0.9, nesterov=True))
norms = torch.from_numpy(fused_cpu.sq_norms([p.grad for p in ps]))
h = hashlib.sha256()
for t in ps + [v for i in range(3) for v in g.state(i).values()] + [norms]:
    h.update(t.detach().numpy().tobytes())
print("numba" in sys.modules, sorted(set(kernel_cache.ORIGIN.values())), h.hexdigest())
"""


def _run(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    out = subprocess.run(
        [sys.executable, "-c", CODE.format(root=ROOT)], env=env, capture_output=True, text=True, check=True
    )
    numba_imported, rest = out.stdout.strip().splitlines()[-1].split(" ", 1)
    origin, digest = rest.rsplit(" ", 1)
    return numba_imported == "True", origin, digest


def test_cached_kernel_matches_compiled_and_damage_recompiles(tmp_path):
    numba_imported, origin, compiled = _run(tmp_path)
    assert origin == "['compiled']" and numba_imported
    files = sorted(os.listdir(tmp_path / "torchfluid"))
    assert files == ["fused_cpu-rmsprop-float32-True-True-True.kernel", "fused_cpu-sq_sums-float32.kernel"]
    numba_imported, origin, loaded = _run(tmp_path)
    assert origin == "['cache']"
    assert not numba_imported  # a cache hit loads through llvmlite alone
    assert loaded == compiled
    entry = tmp_path / "torchfluid" / files[0]
    data = entry.read_bytes()
    damaged = data[:-64] + bytes(64)  # damaged object code
    entry.write_bytes(damaged)
    _, origin, again = _run(tmp_path)
    assert origin == "['cache', 'compiled']"
    assert again == compiled
    assert entry.read_bytes() != damaged  # replaced by the recompile
