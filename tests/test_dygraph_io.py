"""save_dygraph / load_dygraph: Paddle's file format, atomic writes, and the restricted unpickler."""

import builtins
import collections
import io
import os
import pickle
import pickletools
import stat
import struct
import subprocess

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid.dygraph import Embedding, Linear, guard
from torchfluid.io import UnsafePickleError, atomic_write, safe_loads

NAME_TABLE = "StructuredToParameterName@@"


def _globals(data: bytes) -> set:
    found = set()
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            found.add(arg)
    return found


# ----------------------------------------------------------------------------- writing
def test_layer_round_trip_in_paddle_format(tmp_path):
    with guard():
        lin = Linear(3, 2)
        fluid.save_dygraph(lin.state_dict(), str(tmp_path / "model"))
    assert os.listdir(tmp_path) == ["model.pdparams"]  # no temp file left behind
    data = (tmp_path / "model.pdparams").read_bytes()
    assert data[:2] == b"\x80\x02"  # protocol 2, as Paddle's save_dygraph
    assert _globals(data) == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype", "_codecs encode"}
    raw = pickle.loads(data, encoding="latin1")  # what Paddle itself does with the file
    assert set(raw) == {"weight", "bias", NAME_TABLE}
    assert raw[NAME_TABLE] == {"weight": "linear_0.w_0", "bias": "linear_0.b_0"}
    assert type(raw["weight"]) is np.ndarray and raw["weight"].dtype == np.float32
    params, opt = fluid.load_dygraph(str(tmp_path / "model"))
    assert opt is None and set(params) == {"weight", "bias"}
    np.testing.assert_array_equal(params["weight"], lin.weight.numpy())
    with guard():
        fresh = Linear(3, 2)
        fresh.set_dict(params)
    assert torch.equal(fresh.weight, lin.weight) and torch.equal(fresh.bias, lin.bias)
    kept, _ = fluid.load_dygraph(str(tmp_path / "model.pdparams"), keep_name_table=True)
    assert kept[NAME_TABLE] == raw[NAME_TABLE]


def test_optimizer_like_dict_goes_to_pdopt_with_plain_values(tmp_path):
    state = {
        "linear_0.w_0_mean_square_0": torch.ones(2, 2),
        "global_step": np.array([3], np.int32),
        "LR_Scheduler": {"last_epoch": 4, "last_lr": 0.25, "boundaries": [1, 2], "t": torch.tensor(1.5)},
    }
    fluid.save_dygraph(state, str(tmp_path / "opt"))
    assert os.listdir(tmp_path) == ["opt.pdopt"]
    params, opt = fluid.load_dygraph(str(tmp_path / "opt"))
    assert params == {}
    assert opt[NAME_TABLE] == {"linear_0.w_0_mean_square_0": "linear_0.w_0_mean_square_0"}
    np.testing.assert_array_equal(opt["linear_0.w_0_mean_square_0"], np.ones((2, 2), np.float32))
    assert opt["global_step"].tolist() == [3]
    sched = opt["LR_Scheduler"]
    assert (sched["last_epoch"], sched["last_lr"], sched["boundaries"], float(sched["t"])) == (4, 0.25, [1, 2], 1.5)


def test_both_files_and_sparse_embedding(tmp_path):
    with guard():
        emb = Embedding([4, 3], is_sparse=True)
        fluid.save_dygraph(emb.state_dict(), str(tmp_path / "both"))
        fluid.save_dygraph({"acc": torch.zeros(4, 3)}, str(tmp_path / "both"))
    params, opt = fluid.load_dygraph(str(tmp_path / "both"))
    assert list(params) == ["weight"] and set(opt) == {"acc", NAME_TABLE}


@pytest.mark.parametrize(
    "state,path,error,match",
    [
        ([1], "m", TypeError, "state_dict must be a dict, got list"),
        ({}, "m", ValueError, "state_dict is empty, no need to save"),
        ({"a": torch.ones(1)}, "sub/", ValueError, "empty file prefix"),
        ({"a": torch.ones(1)}, 3, TypeError, "model_path must be a str or path, got int"),
        ({1: torch.ones(1)}, "m", TypeError, "keys must be str, got 1"),
        ({"a": object()}, "m", TypeError, r"state_dict\['a'\] is a object; only tensors"),
        ({"s": {"f": lambda: 0}}, "m", TypeError, r"state_dict\['s'\]\['f'\] is a function"),
        ({"a": np.array([object()])}, "m", TypeError, "numpy array of dtype object"),
    ],
)
def test_save_bad_input(tmp_path, state, path, error, match):
    with pytest.raises(error, match=match):
        fluid.save_dygraph(state, os.path.join(str(tmp_path), path) if isinstance(path, str) else path)
    assert os.listdir(tmp_path) == []


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="neither .*nope.pdparams.* nor .*nope.pdopt.* exists"):
        fluid.load_dygraph(str(tmp_path / "nope"))
    (tmp_path / "lst.pdparams").write_bytes(pickle.dumps([1, 2], protocol=2))
    with pytest.raises(ValueError, match="holds a list, not a state dict"):
        fluid.load_dygraph(str(tmp_path / "lst"))


def test_atomic_write_failure_keeps_old_file_and_cleans_up(tmp_path):
    target = tmp_path / "f.bin"
    atomic_write(target, lambda f: f.write(b"old"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~umask

    def broken(f):
        f.write(b"half-written")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]


# ----------------------------------------------------------------------------- reading Paddle's files
def _py2_pickle_of_float32_array(key: str, values) -> bytes:
    """The bytes Python 2 + NumPy 1.x write for {key: np.array(values, float32)}, protocol 2."""
    raw = struct.pack("<%df" % len(values), *values)

    def pystr(b: bytes) -> bytes:  # Python 2 str: SHORT_BINSTRING
        return b"U" + bytes([len(b)]) + b

    return (
        b"\x80\x02}q\x00" + pystr(key.encode()) + b"q\x01"
        b"cnumpy.core.multiarray\n_reconstruct\nq\x02cnumpy\nndarray\nq\x03K\x00\x85q\x04"
        + pystr(b"b")
        + b"\x87Rq\x05(K\x01"
        + b"K"
        + bytes([len(values)])
        + b"\x85"
        b"cnumpy\ndtype\nq\x06"
        + pystr(b"f4")
        + b"K\x00K\x01\x87Rq\x07(K\x03"
        + pystr(b"<")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbI00\n"
        + pystr(raw)
        + b"tbs."
    )


def test_reads_python2_era_pickles(tmp_path):
    data = _py2_pickle_of_float32_array("fc_0.w_0", [1.5, -2.0, 3.25])
    assert pickle.loads(data, encoding="latin1")["fc_0.w_0"].tolist() == [1.5, -2.0, 3.25]  # a valid pickle
    (tmp_path / "old.pdparams").write_bytes(data)
    params, _ = fluid.load_dygraph(str(tmp_path / "old"))
    assert params["fc_0.w_0"].dtype == np.float32 and params["fc_0.w_0"].tolist() == [1.5, -2.0, 3.25]


def test_reads_paddle_save_2x_format(tmp_path):
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    obj = {
        "weight": ("linear_0.w_0", w),  # paddle.save pickles tensors as (name, array)
        "big@@.0": np.arange(6, dtype=np.float64),
        "big@@.1": np.arange(6, 12, dtype=np.float64),
        "UnpackBigParamInfor@@": {"big": {"OriginShape": (3, 4), "slices": ["big@@.0", "big@@.1"]}},
        NAME_TABLE: collections.OrderedDict(weight="linear_0.w_0"),
        "LR_Scheduler": {
            "last_epoch": np.int64(3),
            "last_lr": np.float32(0.5),
            "c": complex(1, 2),
            "s": {1, 2},
            "t": (1, "x"),
            "b": b"\x00\xff",
            "ba": bytearray(b"ab"),
        },
    }
    (tmp_path / "new.pdparams").write_bytes(pickle.dumps(obj, protocol=4))
    params, _ = fluid.load_dygraph(str(tmp_path / "new"))
    np.testing.assert_array_equal(params["weight"], w)
    np.testing.assert_array_equal(params["big"], np.arange(12.0).reshape(3, 4))
    assert set(params) == {"weight", "big", "LR_Scheduler"}
    assert params["LR_Scheduler"]["last_lr"] == np.float32(0.5) and params["LR_Scheduler"]["s"] == {1, 2}


# ----------------------------------------------------------------------------- malicious files
class _Payload:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker):
    m = str(marker)
    return {
        "os.system": _Payload(os.system, f"touch {m}"),
        "builtins.open": _Payload(builtins.open, m, "w"),
        "builtins.exec": _Payload(builtins.exec, f"open({m!r}, 'w').close()"),
        "subprocess.call": _Payload(subprocess.call, ["touch", m]),
    }


@pytest.mark.parametrize("kind", ["os.system", "builtins.open", "builtins.exec", "subprocess.call"])
@pytest.mark.parametrize("protocol", [2, 4])
def test_malicious_pickle_raises_and_executes_nothing(tmp_path, kind, protocol):
    live = tmp_path / "live_marker"
    pickle.loads(pickle.dumps(_payloads(live)[kind], protocol=protocol))  # the payload really works...
    assert live.exists()
    marker = tmp_path / "marker"
    evil = {"weight": np.ones(2, np.float32), "hidden": [{"x": _payloads(marker)[kind]}]}
    (tmp_path / "evil.pdparams").write_bytes(pickle.dumps(evil, protocol=protocol))
    with pytest.raises(UnsafePickleError, match="refusing to load .*evil.pdparams.*it references"):
        fluid.load_dygraph(str(tmp_path / "evil"))  # ...but not through load_dygraph
    assert not marker.exists()


class _Evil:
    pass


@pytest.mark.parametrize(
    "data,match",
    [
        (pickle.dumps(np.array([1, "a"], dtype=object), protocol=2), "dtype object is not allowed"),
        (pickle.dumps(np.zeros(2, dtype=[("a", "f4")]), protocol=2), "is not allowed"),
        (pickle.dumps(_Evil(), protocol=2), r"test_dygraph_io._Evil"),
        (pickle.dumps(_Evil(), protocol=0), "copy_reg._reconstructor"),
        (pickle.dumps(collections.Counter(a=1), protocol=2), "collections.Counter"),
        (
            b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nc__builtin__\ndict\nK\x00\x85U\x01b\x87R.",
            "only numpy.ndarray can be rebuilt",
        ),
        (b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R.", "only for str with latin1"),
        (b"\x80\x02P0\n.", "persistent ids"),
        (b"\x80\x02cbuiltins\ngetattr\n.", "builtins.getattr"),
    ],
)
def test_restricted_unpickler_rejects(data, match):
    with pytest.raises(UnsafePickleError, match=match):
        safe_loads(data)


def test_restricted_unpickler_accepts_plain_data():
    value = {
        "a": np.arange(3, dtype=np.int64),
        "b": [1.5, None, True, "s"],
        "c": np.float64(2.0),
        "d": collections.OrderedDict(x=np.zeros((2, 2), np.complex64)),
        "e": np.array(True),
    }
    for protocol in (2, 3, 4, 5):
        out = safe_loads(pickle.dumps(value, protocol=protocol))
        assert out["b"] == value["b"] and out["c"] == 2.0 and out["e"] == np.array(True)
        np.testing.assert_array_equal(out["a"], value["a"])
        np.testing.assert_array_equal(out["d"]["x"], value["d"]["x"])


def test_numpy_buffer_protocol5_arrays():
    buf = io.BytesIO()
    pickle.Pickler(buf, protocol=5).dump(np.arange(5, dtype=np.float32))
    np.testing.assert_array_equal(safe_loads(buf.getvalue()), np.arange(5, dtype=np.float32))
