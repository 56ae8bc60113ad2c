"""Fuzzes the loaders with bounded memory: run as ``loader_fuzz_worker.py KIND N``.

The address space is limited to what the process uses after start-up plus
``HEADROOM`` (setrlimit RLIMIT_AS), so a loader that allocates from a size declared
in the file instead of the bytes present dies with MemoryError, which fails the run.
Every input must load or raise ``CheckpointError`` (the loaders' one error for an
unreadable file). Prints ``ok <examples>``.

KIND: ``checkpoint`` (bit flips, truncations, splices and declared-size edits of a
torchfluid checkpoint), ``pickle`` (the same over Paddle pickles, plus opcode
sequences built from the admitted globals), ``hostile`` (hand-written bombs).
"""

import io
import os
import pickle
import resource
import struct
import sys
import tempfile
import zipfile

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from torchfluid.checkpoint import CheckpointError  # noqa: E402
from torchfluid.checkpoint import load as ckpt_load  # noqa: E402
from torchfluid.checkpoint.format import to_bytes  # noqa: E402
from torchfluid.dygraph.checkpoint import load_dygraph  # noqa: E402
from torchfluid.io import safe_loads  # noqa: E402

HEADROOM = 768 << 20
TMP = tempfile.mkdtemp()


def _limit_memory() -> None:
    torch.set_num_threads(1)
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + HEADROOM, vm + HEADROOM))


def _check_checkpoint(data: bytes) -> None:
    path = os.path.join(TMP, "f.tfckpt")
    with open(path, "wb") as f:
        f.write(data)
    try:
        ckpt_load(path)
    except CheckpointError:
        pass


def _check_pickle(data: bytes) -> None:
    try:
        safe_loads(data)
    except CheckpointError:
        pass
    path = os.path.join(TMP, "p.pdparams")
    with open(path, "wb") as f:
        f.write(data)
    try:
        load_dygraph(path[: -len(".pdparams")])
    except CheckpointError:
        pass


GOOD_CKPT = to_bytes({"w": torch.arange(40.0).reshape(8, 5), "step": 3, "nested": {"m": [torch.ones(3), "s"]}})
GOOD_PICKLES = [
    pickle.dumps(
        {
            "w": np.arange(12, dtype=np.float32).reshape(3, 4),
            "s": np.float64(2.0),
            "l": [1, (2, 3)],
            "StructuredToParameterName@@": {"w": "fc_0.w_0"},
        },
        protocol=p,
    )
    for p in (2, 4, 5)
]
GOOD_PICKLES.append(
    pickle.dumps(
        {
            "UnpackBigParamInfor@@": {"w": {"OriginShape": (2, 3), "slices": ["w@0", "w@1"]}},
            "w@0": np.zeros(3, np.float32),
            "w@1": np.ones(3, np.float32),
        },
        protocol=2,
    )
)


def _mutate(base: bytes, edits) -> bytes:
    data = bytearray(base)
    for kind, pos, value in edits:
        if not data:
            break
        pos %= len(data)
        if kind == 0:
            data[pos] ^= 1 << (value % 8)
        elif kind == 1:
            del data[pos:]
        elif kind == 2:
            data[pos:pos] = bytes([value % 256]) * (1 + value % 7)
        else:  # a 4-byte little-endian size field set to something large
            data[pos : pos + 4] = struct.pack("<I", (value * 2654435761) & 0xFFFFFFFF)
    return bytes(data)


EDITS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1 << 20), st.integers(0, 1 << 16)), min_size=1, max_size=4)
SETTINGS = settings(database=None, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

_GLOBALS = [
    b"cnumpy\nndarray\n",
    b"cnumpy\ndtype\n",
    b"cnumpy.core.multiarray\n_reconstruct\n",
    b"cnumpy.core.multiarray\nscalar\n",
    b"cnumpy._core.numeric\n_frombuffer\n",
    b"cbuiltins\ntuple\n",
    b"cbuiltins\nlist\n",
    b"cbuiltins\nset\n",
    b"cbuiltins\nbytearray\n",
    b"c_codecs\nencode\n",
    b"ccollections\nOrderedDict\n",
    b"cbuiltins\ncomplex\n",
]
_ATOMS = [
    b"J\xff\xff\xff\x7f",
    b"\x8a\x05\x00\x00\x00\x00\x08",
    b"K\x03",
    b"X\x02\x00\x00\x00f8",
    b"C\x01b",
    b"X\x01\x00\x00\x00<",
    b"N",
    b"\x88",
    b"\x89",
    b"(",
    b"t",
    b"\x85",
    b"\x86",
    b"\x87",
    b"R",
    b"b",
    b"\x81",
    b"]",
    b"}",
    b"e",
    b"s",
    b"u",
    b"q\x00",
    b"h\x00",
    b"2",
    b"0",
    b"a",
    b"\x94",
    b"C\x08" + b"\x00" * 8,
]
OPS = st.lists(st.sampled_from(_GLOBALS + _ATOMS), max_size=40).map(lambda ops: b"\x80\x02" + b"".join(ops) + b".")


def run_checkpoint(n: int) -> int:
    @settings(SETTINGS, max_examples=n)
    @given(EDITS)
    def fuzz(edits):
        _check_checkpoint(_mutate(GOOD_CKPT, edits))

    fuzz()
    return n


def run_pickle(n: int) -> int:
    @settings(SETTINGS, max_examples=n)
    @given(st.sampled_from(range(len(GOOD_PICKLES))), EDITS)
    def fuzz_bytes(which, edits):
        _check_pickle(_mutate(GOOD_PICKLES[which], edits))

    @settings(SETTINGS, max_examples=n)
    @given(OPS)
    def fuzz_ops(data):
        _check_pickle(data)

    fuzz_bytes()
    fuzz_ops()
    return 2 * n


def _zip(records: dict, method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in records.items():
            z.writestr(name, data)
    return buf.getvalue()


def _bomb() -> bytes:  # built before the memory limit: ~0.5 MB on disk, 512 MiB inside
    return _zip({"archive/data.pkl": b"\x00" * (512 << 20)}, zipfile.ZIP_DEFLATED)


def run_hostile(_n: int, bomb: bytes) -> int:
    big_storage = to_bytes({"w": torch.zeros(4)}).replace(b"\x10\x00\x00\x00", b"\xff\xff\xff\x7f")
    memo = b"X" + struct.pack("<I", 100000) + b"x" * 100000 + b"q\x00("
    cases = [
        bomb,
        big_storage,
        b"\x80\x02cnumpy\nndarray\n\x8a\x05\x00\x00\x00\x80\x00\x85X\x02\x00\x00\x00f8\x86R.",
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n\x8a\x05\x00\x00\x00\x80\x00\x85C\x02f8\x87R.",
        b"\x80\x02" + memo + b"cbuiltins\ntuple\nh\x00\x85R" * 2000 + b"l.",
        b"\x80\x02" + memo + b"cbuiltins\nbytearray\nh\x00\x85R" * 20000 + b"l.",
        b"\x80\x02" + memo + b"c_codecs\nencode\nh\x00X\x06\x00\x00\x00latin1\x86R" * 20000 + b"l.",
        # a 2**60-node walk if shared references were followed again: ]x = [x, x] sixty times
        b"\x80\x02N" + b"q\x00h\x00h\x00\x86" * 60 + b".",
    ]
    for data in cases:
        _check_checkpoint(data)
        _check_pickle(data)
    return len(cases)


if __name__ == "__main__":
    kind, n = sys.argv[1], int(sys.argv[2])
    runner = {"checkpoint": run_checkpoint, "pickle": run_pickle}.get(kind)
    if kind == "hostile":
        bomb = _bomb()

        def runner(n):
            return run_hostile(n, bomb)

    _limit_memory()
    print(f"ok {runner(n)}", flush=True)
