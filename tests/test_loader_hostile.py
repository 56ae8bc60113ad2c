"""Loaders under hostile files: each bad file raises CheckpointError with a message
naming the problem, and memory stays bounded by the file's size (checked under an
address-space limit in a subprocess, with hypothesis fuzzing bytes and pickles)."""

import hashlib
import io
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from torchfluid.checkpoint import CheckpointError, load
from torchfluid.checkpoint.format import FORMAT
from torchfluid.dygraph.checkpoint import load_dygraph
from torchfluid.io import UnsafePickleError, safe_loads

WORKER = os.path.join(os.path.dirname(__file__), "loader_fuzz_worker.py")
ENV = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}


def _wrapper(payload: bytes, sha: str | None = None) -> bytes:
    buf = io.BytesIO()
    torch.save(
        {
            "format": FORMAT,
            "version": 1,
            "sha256": sha or hashlib.sha256(payload).hexdigest(),
            "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8)
            if payload
            else torch.zeros(0, dtype=torch.uint8),
        },
        buf,
    )
    return buf.getvalue()


def _deflated_zip(size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\x00" * size)
    return buf.getvalue()


def _zip_needing_version(version: int) -> bytes:
    """A stored zip whose central directory says extracting needs zip ``version / 10``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("archive/data.pkl", date_time=(2020, 1, 1, 0, 0, 0)), b"\x00" * 16)
    data = bytearray(buf.getvalue())
    data[data.rfind(b"PK\x01\x02") + 6] = version  # "version needed to extract"
    return bytes(data)


def _stored_zip_claiming(size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", b"\x00" * 16)
    data = bytearray(buf.getvalue())
    central = data.rfind(b"PK\x01\x02")
    data[central + 20 : central + 28] = size.to_bytes(4, "little") * 2  # compressed and uncompressed sizes
    return bytes(data)


@pytest.mark.parametrize(
    "data,match",
    [
        (_wrapper(b""), "the checkpoint payload is empty"),
        (_wrapper(b"PK\x03\x04junk"), "the checkpoint payload is truncated or corrupted"),
        (_wrapper(b"\x80\x02N."), "the checkpoint payload is not a torch.save archive"),
        (_deflated_zip(8 << 20), "has a compressed record 'archive/data.pkl' .torch.save stores records uncompressed"),
        (_stored_zip_claiming(1 << 30), "truncated or corrupted"),
        (b"PK\x03\x04" + b"\x00" * 40, "truncated or corrupted"),
        (_zip_needing_version(110), "is not a torch.save archive: zip file version 11.0"),
    ],
)
def test_unreadable_checkpoints_raise_checkpoint_error(tmp_path, data, match):
    path = tmp_path / "x.tfckpt"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=match):
        load(path)


def test_a_folder_or_unreadable_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="cannot be read: IsADirectoryError"):
        load(tmp_path)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.tfckpt")


class _Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_DTYPE_F4 = (
    b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00f4\x89\x88\x87R"
    b"(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff"
)


@pytest.mark.parametrize(
    "data,match",
    [
        (
            pickle.dumps(_Reduce(np.ndarray, ((2**31,), "f8")), protocol=2),
            r"numpy.ndarray\(\(2147483648,\), float64\) would allocate 17179869184 bytes, more than the file can hold",
        ),
        (
            pickle.dumps(_Reduce(_RECONSTRUCT, (np.ndarray, (2**31,), b"f8")), protocol=2),
            r"a numpy array of shape \(2147483648,\) would allocate 17179869184 bytes",
        ),
        (
            pickle.dumps(_Reduce(_RECONSTRUCT, (np.ndarray, (1,), "(100000000,)f8")), protocol=2),
            r"numpy dtype \(.<f8., \(100000000,\)\) is not allowed",
        ),
        (
            _DTYPE_F4 + b"K\x03tb.",
            r"numpy dtype float32 has a non-standard pickled state \(3, '<', None, None, None, "
            r"-1, -1, 3\)",
        ),
        (_DTYPE_F4 + b"K\x01tb.", "non-standard pickled state"),
        (b"\x80\x02cnumpy\nndarray\nK\x02\x85\x81.", "not a valid pickle"),  # NEWOBJ never reaches ndarray.__new__
        (
            b"\x80\x02X\x03\x00\x00\x00abc(cbuiltins\ntuple\nh\x00\x85R" + b"q\x00(cbuiltins\nlist\n" + b".",
            "not a valid pickle",
        ),
        (b"\x80\x02]q\x00}b.", "sets the state of a list"),
        (b"", "the file is empty"),
        (
            b"\x80\x02cnumpy.core.multiarray\nscalar\ncnumpy\ndtype\nX\x02\x00\x00\x00f8\x85RC\x02ab\x86R.",
            "needs 8 raw bytes",
        ),
    ],
)
def test_paddle_pickle_reader_refuses_before_allocating(data, match):
    with pytest.raises(UnsafePickleError, match=match) as info:
        safe_loads(data)
    assert isinstance(info.value, CheckpointError)


def test_reader_never_changes_numpys_shared_dtypes():
    big_endian = pickle.dumps({"a": np.arange(4.0).astype(">f8")}, protocol=2)
    np.testing.assert_array_equal(safe_loads(big_endian)["a"], np.arange(4.0))
    assert np.dtype("f8").byteorder == "=" and np.arange(2.0)[1] == 1.0


def test_shared_references_are_walked_once():
    data = b"\x80\x02N" + b"q\x00h\x00h\x00\x86" * 60 + b"."  # a DAG of 2**60 paths
    out = safe_loads(data)
    assert isinstance(out, tuple) and out[0] is out[1]


@pytest.mark.parametrize(
    "info,match",
    [
        ([1, 2], "'UnpackBigParamInfor@@' must be a dict, got list"),
        ({"w": {"slices": ["a"], "OriginShape": [5]}}, "cannot reassemble split tensor 'w': KeyError"),
        ({"w": 3}, "cannot reassemble split tensor 'w': TypeError"),
    ],
)
def test_malformed_split_tensors_are_checkpoint_errors(tmp_path, info, match):
    (tmp_path / "m.pdparams").write_bytes(pickle.dumps({"UnpackBigParamInfor@@": info}, protocol=2))
    with pytest.raises(CheckpointError, match=match):
        load_dygraph(str(tmp_path / "m"))


@pytest.mark.parametrize("kind,n", [("hostile", 1), ("checkpoint", 200), ("pickle", 200)])
def test_fuzzed_files_raise_checkpoint_error_with_bounded_memory(kind, n):
    if not sys.platform.startswith("linux"):
        pytest.skip("the memory bound uses /proc and RLIMIT_AS")
    r = subprocess.run([sys.executable, WORKER, kind, str(n)], env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stdout.startswith("ok "), r.stdout[-2000:] + r.stderr[-4000:]
