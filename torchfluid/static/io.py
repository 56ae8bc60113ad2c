"""Static-mode persistence: ``fluid.io.save_persistables`` / ``load_persistables`` /
``save_params`` / ``load_params`` and ``fluid.save(program, path)`` / ``fluid.load``.

Values come from (and go to) the global scope. Files use the project's checkpoint
format (:mod:`torchfluid.checkpoint.format`): a ``torch.save`` zip read back only with
``weights_only=True`` and checked by SHA-256, written atomically (temp file, fsync,
rename). Layouts, as Paddle's:

* ``save_persistables(exe, dirname)``: one file per variable, ``dirname/<var name>``;
  with ``filename`` all variables in ``dirname/<filename>``.
* ``fluid.save(program, path)``: ``path.pdparams`` (parameters) and ``path.pdopt``
  (other persistables: optimizer accumulators, learning rate, step counters).
  Paddle's ``path.pdmodel`` (the serialized program) is not written.

``fluid.io.load_program_state(path)`` reads either layout into ``{name: numpy array}``
and ``fluid.io.set_program_state(program, state)`` sets a program's persistables from
such a dict (pretrained weights, a state edited in numpy).

Loading checks every variable (present, shape, dtype) before changing the scope, so a
bad file leaves the scope as it was.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch

from ..checkpoint import format as ckpt
from .compiler import CompiledProgram, program_of
from .framework import Parameter, Program, default_main_program
from .scope import global_scope

__all__ = [
    "save_persistables",
    "load_persistables",
    "save_params",
    "load_params",
    "save",
    "load",
    "save_vars",
    "load_vars",
    "write_values",
    "read_values",
    "load_program_state",
    "set_program_state",
]


def _vars(program, predicate):
    program = default_main_program() if program is None else program_of(program, "main_program")
    seen, out = set(), []
    for v in program.list_vars():
        if v.name not in seen and predicate(v) and not v.is_data:
            seen.add(v.name)
            out.append(v)
    return out


def _is_persistable(v):
    return v.persistable


def _is_param(v):
    return isinstance(v, Parameter)


def _values(names, action):
    """Copies of the global scope's values of ``names`` (on the CPU)."""
    out = {}
    for n in names:
        t = global_scope().value(n)
        if t is None:
            raise RuntimeError(f"{action}: variable {n!r} holds no value in the scope (run the startup program first)")
        out[n] = t.detach().cpu().clone()
    return out


def save_vars(executor, dirname, main_program=None, vars=None, predicate=None, filename=None):
    """Save ``vars`` (or those of ``main_program`` passing ``predicate``) from the global scope.
    With ``dirname`` and ``filename`` both None nothing is written: the values are returned as
    the bytes of one combined file (Paddle's save to memory), which ``load_vars(exe, None, ...,
    filename=those_bytes)`` and ``load_inference_model(None, exe, model_bytes, those_bytes)`` read."""
    if vars is None:
        vars = _vars(main_program, predicate or _is_persistable)
    return write_values([v if isinstance(v, str) else v.name for v in vars], dirname, filename, "save")


def write_values(names, dirname, filename, action):
    """The global scope's values of ``names``: all in ``dirname/filename``, or (``filename``
    None) one file per variable, ``dirname/<name>``; both None: the combined file's bytes, returned."""
    if dirname is None:
        if filename is not None:
            raise ValueError(
                f"{action}: dirname is None, so filename must be None too (save to memory), got {filename!r}"
            )
        return ckpt.to_bytes(_values(names, action))
    values = _values(names, action)
    os.makedirs(dirname, exist_ok=True)
    if filename is not None:
        ckpt.save(values, os.path.join(dirname, filename))
        return
    for name, t in values.items():
        ckpt.save({name: t}, os.path.join(dirname, name))


def read_values(names, dirname, filename, action, error=ValueError):
    """``{name: (file, value or None)}`` for files written by :func:`write_values`; a
    combined file that holds no dict raises ``error``. ``dirname`` None: ``filename`` is the
    combined file's bytes (what :func:`write_values` returned)."""
    if dirname is None:
        if not isinstance(filename, (bytes, bytearray)):
            raise ValueError(
                f"{action}: with dirname None, filename must be the saved values' bytes, got {type(filename).__name__}"
            )
        values = ckpt.from_bytes(filename, f"{action}: the values' bytes")
        if not isinstance(values, dict):
            raise error(f"{action}: the values' bytes hold a {type(values).__name__}, not a dict of variables")
        return {n: ("<bytes>", values.get(n)) for n in names}
    if filename is not None:
        path = os.path.join(dirname, filename)
        values = ckpt.load(path)
        if not isinstance(values, dict):
            raise error(f"{path}: expected a dict of variables, got {type(values).__name__}")
        return {n: (path, values.get(n)) for n in names}
    out = {}
    for n in names:
        path = os.path.join(dirname, n)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{action}: no file for variable {n!r} at {path!r}")
        values = ckpt.load(path)
        out[n] = (path, values.get(n) if isinstance(values, dict) else None)
    return out


def _set_checked(vars, loaded, missing):
    """Set ``vars`` in the global scope to their values in ``loaded`` (``{name: (file, value
    or None)}``) once every one is checked: present (else ``ValueError(missing(name, file))``),
    of the variable's shape and dtype."""
    for v in vars:
        path, t = loaded.get(v.name, (None, None))
        if t is None:
            raise ValueError(missing(v.name, path))
        if tuple(t.shape) != tuple(v.shape):
            raise ValueError(
                f"{path}: variable {v.name!r} has shape {list(t.shape)}, the program expects {list(v.shape)}"
            )
        if t.dtype != getattr(torch, v.dtype):
            raise ValueError(f"{path}: variable {v.name!r} has dtype {t.dtype}, the program expects {v.dtype}")
    for v in vars:
        global_scope().set_value(v.name, loaded[v.name][1].clone())


def load_vars(executor, dirname, main_program=None, vars=None, predicate=None, filename=None):
    """Load variables saved by :func:`save_vars`; all are checked before any is set."""
    if vars is None:
        vars = _vars(main_program, predicate or _is_persistable)
    vars = [default_main_program().global_block().var(v) if isinstance(v, str) else v for v in vars]
    loaded = read_values([v.name for v in vars], dirname, filename, "load")
    _set_checked(vars, loaded, lambda name, path: f"{path}: variable {name!r} is not in the file")


def save_persistables(executor, dirname, main_program=None, filename=None):
    """Every persistable variable of ``main_program`` (parameters, accumulators, lr)."""
    return save_vars(executor, dirname, main_program, predicate=_is_persistable, filename=filename)


def load_persistables(executor, dirname, main_program=None, filename=None):
    load_vars(executor, dirname, main_program, predicate=_is_persistable, filename=filename)


def save_params(executor, dirname, main_program=None, filename=None):
    """The parameters of ``main_program`` only."""
    return save_vars(executor, dirname, main_program, predicate=_is_param, filename=filename)


def load_params(executor, dirname, main_program=None, filename=None):
    load_vars(executor, dirname, main_program, predicate=_is_param, filename=filename)


def save(program, model_path):
    """``model_path.pdparams`` (parameters) and ``model_path.pdopt`` (other persistables)."""
    params = _vars(program, _is_param)
    others = _vars(program, lambda v: v.persistable and not isinstance(v, Parameter))
    ckpt.save(_values([v.name for v in params], "fluid.save"), model_path + ".pdparams")
    ckpt.save(_values([v.name for v in others], "fluid.save"), model_path + ".pdopt")


def load(program, model_path, executor=None, var_list=None):
    """Set ``program``'s persistables from :func:`save`'s files (all checked first)."""
    wanted = _vars(program, _is_persistable)
    if var_list is not None:
        names = {v if isinstance(v, str) else v.name for v in var_list}
        wanted = [v for v in wanted if v.name in names]
    values = {}
    for suffix in (".pdparams", ".pdopt"):
        path = model_path + suffix
        if os.path.isfile(path):
            values.update({k: (path, t) for k, t in ckpt.load(path).items()})
        elif suffix == ".pdparams":
            raise FileNotFoundError(f"fluid.load: {path!r} does not exist")
    _set_checked(
        wanted, values, lambda name, _: f"fluid.load: variable {name!r} is not in {model_path}.pdparams / .pdopt"
    )


def _as_array(t: torch.Tensor):
    """A numpy array of ``t`` (a dtype numpy lacks, bfloat16, stays a tensor)."""
    try:
        return t.numpy()
    except TypeError:
        return t


def load_program_state(model_path, var_list=None) -> dict:
    """Paddle's ``fluid.io.load_program_state``: ``{variable name: numpy array}`` of what
    :func:`save` wrote at ``model_path`` (``model_path.pdparams``, and ``.pdopt`` where it
    exists; a path ending in ``.pdparams``, ``.pdopt`` or ``.pdmodel`` names the same
    prefix), or of a directory :func:`save_vars` / :func:`save_persistables` /
    :func:`save_params` wrote (one file per variable, or one ``filename`` holding them all).
    ``var_list`` (variables or names): only those, each of which must be there."""
    prefix = str(model_path)
    for suffix in (".pdparams", ".pdopt", ".pdmodel"):
        if prefix.endswith(suffix):
            prefix = prefix[: -len(suffix)]
            break
    values: dict = {}
    if os.path.isfile(prefix + ".pdparams"):
        for path in (prefix + ".pdparams", prefix + ".pdopt"):
            if os.path.isfile(path):
                values.update(ckpt.load(path))
    elif os.path.isdir(model_path):
        for root, _, files in os.walk(model_path):
            for f in sorted(files):
                path = os.path.join(root, f)
                loaded = ckpt.load(path)
                if not isinstance(loaded, dict):
                    raise ValueError(f"load_program_state: {path} holds no variables (a {type(loaded).__name__})")
                values.update(loaded)
    else:
        raise FileNotFoundError(
            f"load_program_state: neither {prefix + '.pdparams'!r} (fluid.save) nor a directory {model_path!r} "
            "(save_persistables / save_params / save_vars) exists"
        )
    if var_list is not None:
        names = [v if isinstance(v, str) else v.name for v in var_list]
        absent = [n for n in names if n not in values]
        if absent:
            raise ValueError(f"load_program_state: {model_path} holds no variable {absent} (var_list)")
        values = {n: values[n] for n in names}
    return {name: _as_array(t) for name, t in values.items()}


def set_program_state(program, state_dict) -> None:
    """Paddle's ``fluid.io.set_program_state``: set each persistable variable of ``program``
    that ``state_dict`` (``{name: numpy array or tensor}``, e.g. from
    :func:`load_program_state`) holds, in the global scope (after the startup program
    ran). Every value is checked (shape, dtype) before any is set; names the program lacks
    are left out with a warning, as in Paddle."""
    if not isinstance(state_dict, dict):
        raise TypeError(f"set_program_state: state_dict must be a dict, got {type(state_dict).__name__}")
    wanted = [v for v in _vars(program, _is_persistable) if v.name in state_dict]
    loaded = {}
    for v in wanted:
        if global_scope().value(v.name) is None:
            raise RuntimeError(
                f"set_program_state: variable {v.name!r} holds no value in the scope (run the startup program first)"
            )
        value = state_dict[v.name]
        loaded[v.name] = (
            "set_program_state",
            value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value)),
        )
    _set_checked(wanted, loaded, lambda name, _: f"set_program_state: no value for {name!r}")
    unused = [k for k in state_dict if k not in loaded]
    if unused:
        warnings.warn(
            f"set_program_state: not set, the program has no persistable variable of these names: {unused}",
            stacklevel=2,
        )


def save_any(obj, path, *args, **kwargs):
    """``fluid.save``: a static Program -> :func:`save`; anything else -> the checkpoint
    format's ``save(obj, path)`` (dygraph state dicts, checkpoints)."""
    if isinstance(obj, (Program, CompiledProgram)):
        return save(obj, path, *args, **kwargs)
    return ckpt.save(obj, path, *args, **kwargs)


def load_any(obj, path=None, executor=None, var_list=None, **kwargs):
    """``fluid.load``: ``load(program, model_path, executor)`` -> :func:`load`;
    ``load(path[, map_location])`` -> the checkpoint format's ``load``."""
    if isinstance(obj, (Program, CompiledProgram)):
        return load(obj, path, executor, var_list)
    if path is not None:
        kwargs.setdefault("map_location", path)
    return ckpt.load(obj, **kwargs)
