"""``save_dygraph`` / ``load_dygraph`` in Paddle's own file format.

``save_dygraph(state_dict, path)`` writes ``path.pdparams`` when the dict holds at least
one parameter (a layer's ``state_dict()``), else ``path.pdopt`` (an optimizer's). The
file is what Paddle writes, so Paddle reads it back: a protocol-2 pickle (numpy
globals spelled as NumPy 1.x does) of a plain
dict, tensors as numpy arrays, plus ``"StructuredToParameterName@@"`` mapping each key
to the tensor's unique name (``weight`` -> ``linear_0.w_0``; a tensor without a name
maps to its key). Other values (an ``"LR_Scheduler"`` dict) must be numbers, strings,
numpy arrays, tensors or lists/dicts of them. The write is atomic.

``load_dygraph(path)`` returns ``(param_dict, opt_dict)`` as Paddle does: each a dict
of numpy arrays (``{}`` / ``None`` when the file is absent; the name table is dropped
from ``param_dict`` unless ``keep_name_table=True``). Files are read only through the
restricted unpickler (:mod:`torchfluid.io.safe_pickle`): a file that references any
other Python object raises ``UnsafePickleError`` and runs nothing; a file that cannot be
read (truncated, corrupted, asking for more memory than its size allows, a malformed
split tensor) raises ``CheckpointError`` (``UnsafePickleError`` is one). Files written by
Paddle >= 2.1's ``paddle.save`` (``(name, array)`` tuples, large tensors split under
``"UnpackBigParamInfor@@"``) are read too.
"""

from __future__ import annotations

import collections.abc
import numbers
import os
import pickle

import numpy as np
import torch

from ..checkpoint.atomic import atomic_write
from ..checkpoint.format import CheckpointError
from ..io import safe_load
from .varbase import to_numpy

__all__ = ["save_dygraph", "load_dygraph", "NAME_TABLE_KEY"]

NAME_TABLE_KEY = "StructuredToParameterName@@"
_UNPACK_KEY = "UnpackBigParamInfor@@"


_NUMPY_1_NAMES = {
    id(np.ndarray.__reduce__(np.zeros(1))[0]): b"_reconstruct",
    id(np.float32(0).__reduce__()[0]): b"scalar",
}


class _PaddlePickler(pickle._Pickler):
    """Protocol-2 pickler that names numpy's array/scalar rebuilders ``numpy.core.multiarray``
    (NumPy 2 says ``numpy._core``, which the NumPy 1.x under a real Paddle cannot import;
    NumPy 2 still resolves the old names)."""

    def save_global(self, obj, name=None):
        short = _NUMPY_1_NAMES.get(id(obj))
        if short is None:
            return super().save_global(obj, name)
        self.write(pickle.GLOBAL + b"numpy.core.multiarray\n" + short + b"\n")
        self.memoize(obj)


def _plain_value(value, where: str):
    """``value`` as picklable plain data (tensors become numpy arrays)."""
    if isinstance(value, torch.Tensor):
        return to_numpy(value)
    if isinstance(value, (np.generic, np.ndarray)) and value.dtype.kind not in "biufc":
        kind = "array" if isinstance(value, np.ndarray) else "scalar"
        raise TypeError(f"save_dygraph: {where} is a numpy {kind} of dtype {value.dtype}; only numeric ones are saved")
    if value is None or isinstance(value, (bool, str, numbers.Number, np.generic, np.ndarray)):
        return value
    if isinstance(value, collections.abc.Mapping):
        return {k: _plain_value(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain_value(v, f"{where}[{i}]") for i, v in enumerate(value))
    raise TypeError(
        f"save_dygraph: {where} is a {type(value).__name__}; only tensors, numpy arrays, numbers, "
        "strings, None and lists/dicts of them can be saved"
    )


def save_dygraph(state_dict, model_path) -> None:
    """Write ``state_dict`` to ``model_path + '.pdparams'`` or ``'.pdopt'`` (module docstring)."""
    if not isinstance(state_dict, collections.abc.Mapping):
        raise TypeError(f"save_dygraph: state_dict must be a dict, got {type(state_dict).__name__}")
    if not isinstance(model_path, (str, os.PathLike)):
        raise TypeError(f"save_dygraph: model_path must be a str or path, got {type(model_path).__name__}")
    model_path = os.fspath(model_path)
    if os.path.basename(model_path) == "":
        raise ValueError(
            f"save_dygraph: model_path must be 'dirname/file_prefix', got {model_path!r} (empty file prefix)"
        )
    if len(state_dict) == 0:
        raise ValueError("save_dygraph: state_dict is empty, no need to save")
    has_param = any(isinstance(v, torch.nn.Parameter) for v in state_dict.values())
    suffix = ".pdparams" if has_param else ".pdopt"
    model_dict, name_table = {}, {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"save_dygraph: keys must be str, got {key!r}")
        if key == NAME_TABLE_KEY:
            continue
        if isinstance(value, torch.Tensor):
            name = value.__dict__.get("_fluid_name")
            name_table[key] = name if isinstance(name, str) and name else key
        model_dict[key] = _plain_value(value, f"state_dict[{key!r}]")
    model_dict[NAME_TABLE_KEY] = name_table
    atomic_write(model_path + suffix, lambda f: _PaddlePickler(f, protocol=2).dump(model_dict))


def _pack_loaded_dict(obj, source: str):
    if not isinstance(obj, dict):
        raise CheckpointError(f"load_dygraph: {source} holds a {type(obj).__name__}, not a state dict")
    if _UNPACK_KEY in obj:
        info = obj.pop(_UNPACK_KEY)
        if not isinstance(info, dict):
            raise CheckpointError(f"load_dygraph: {source}: {_UNPACK_KEY!r} must be a dict, got {type(info).__name__}")
        for key, spec in info.items():
            try:
                parts = [obj.pop(part) for part in spec["slices"]]
                obj[key] = np.concatenate(parts).reshape(spec["OriginShape"])
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
                raise CheckpointError(
                    f"load_dygraph: {source}: cannot reassemble split tensor {key!r}: {type(err).__name__}: {err}"
                ) from None
    for key, value in list(obj.items()):
        if (
            isinstance(value, tuple)
            and len(value) == 2
            and isinstance(value[0], str)
            and isinstance(value[1], np.ndarray)
        ):  # paddle.save's (name, array) form
            obj[key] = value[1]
    return obj


def load_dygraph(model_path, keep_name_table: bool = False):
    """Read ``model_path.pdparams`` / ``.pdopt`` -> ``(param_dict, opt_dict)`` (module docstring)."""
    if not isinstance(model_path, (str, os.PathLike)):
        raise TypeError(f"load_dygraph: model_path must be a str or path, got {type(model_path).__name__}")
    prefix = os.fspath(model_path)
    for ext in (".pdparams", ".pdopt"):
        if prefix.endswith(ext):
            prefix = prefix[: -len(ext)]
    params_path, opt_path = prefix + ".pdparams", prefix + ".pdopt"
    if not os.path.exists(params_path) and not os.path.exists(opt_path):
        raise ValueError(
            f"load_dygraph: neither {params_path!r} nor {opt_path!r} exists "
            "(inference-model folders from jit.save/save_inference_model are not supported)"
        )
    para_dict, opti_dict = {}, None
    if os.path.exists(params_path):
        para_dict = _pack_loaded_dict(safe_load(params_path), repr(params_path))
        if not keep_name_table:
            para_dict.pop(NAME_TABLE_KEY, None)
    if os.path.exists(opt_path):
        opti_dict = _pack_loaded_dict(safe_load(opt_path), repr(opt_path))
    return para_dict, opti_dict
