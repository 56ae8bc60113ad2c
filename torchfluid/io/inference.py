"""``fluid.io.save_inference_model`` / ``load_inference_model``: a pruned program plus its
parameters, in a format that loads without running code from the files.

Layout of ``dirname`` (Paddle's names, safe contents):

* ``__model__`` (or ``model_filename``): a JSON description of the inference program:
  ``{"format": "torchfluid-inference-program", "version": 1, "feed": [names],
  "fetch": [names], "vars": [...], "ops": [{"type", "inputs", "outputs", "attrs"}]}``.
  Attributes are JSON values only (numbers, strings, bools, null and lists of them);
  loading reads the file with :func:`json.load` and builds the program from registered op
  types, so nothing in the file is ever executed.
* the parameters: one file per variable (``dirname/<var name>``) or all in
  ``params_filename``; each a torchfluid checkpoint (:mod:`torchfluid.checkpoint.format`:
  read only with ``torch.load(weights_only=True)`` and checked by SHA-256). The program
  file records ``"params_filename"`` (null for one file per variable), and
  ``load_inference_model`` without ``params_filename`` reads the file recorded there
  (Paddle would look for one file per variable and fail; a given name still wins).

The saved program is ``main_program.clone(for_test=True)`` (dropout off, batch_norm on its
moving statistics) pruned to the ops that compute the fetch targets from the feeds.
"""

from __future__ import annotations

import json
import os
import warnings

import torch

from ..checkpoint.atomic import atomic_write
from ..ops import get_op
from ..static.compiler import program_of
from ..static.framework import Parameter, Program, Variable, default_main_program, names_of
from ..static.program_desc import JSON_SCALARS, ProgramDescError, check_op_fields, check_var_fields, json_scalar
from ..static.io import read_values, write_values
from ..static.plan import prune_ops
from ..static.scope import global_scope

__all__ = ["save_inference_model", "load_inference_model", "InferenceModelError", "FORMAT", "VERSION"]

FORMAT = "torchfluid-inference-program"
VERSION = 1
MODEL_FILENAME = "__model__"
_VAR_FLAGS = ("persistable", "stop_gradient", "is_data", "parameter", "trainable", "need_check_feed")
# op types that carry Python objects or update state: never part of an inference program
_NOT_INFERENCE = frozenset(
    {"initializer", "lr_schedule", "grad_clip", "clip_gradients", "regularization", "copy_layer_parameter"}
)


class InferenceModelError(ValueError):
    """An inference model that cannot be saved or loaded: says which file or op and why."""


def _names(items, what):
    if isinstance(items, (str, Variable)):
        items = [items]
    out = names_of(items or (), f"save_inference_model: {what} must be Variables or names, got {{}}")
    if not out:
        raise ValueError(f"save_inference_model: {what} must not be empty")
    return out


def _json_value(v, where):
    if isinstance(v, JSON_SCALARS):
        return json_scalar(v)
    if isinstance(v, (list, tuple)):
        return [_json_value(x, where) for x in v]
    raise InferenceModelError(f"{where} is a {type(v).__name__}; an inference program holds only plain values")


def _describe_program(block, ops, feeds, fetches):
    used = dict.fromkeys([n for op in ops for n in op.input_arg_names + op.output_arg_names] + feeds + fetches)
    produced = {n for op in ops for n in op.output_arg_names}
    vars_ = []
    for n in used:
        if n == "@EMPTY@":
            continue
        v = block._find_var_recursive(n)
        if v is None:
            raise InferenceModelError(f"variable {n!r} is not in the program")
        if n not in produced and n not in feeds and not v.persistable:
            raise InferenceModelError(
                f"the fetch targets depend on variable {n!r}, which is neither fed ({', '.join(feeds)}) "
                "nor persistable; add it to the feeded variable names"
            )
        vars_.append(
            {
                "name": n,
                "shape": None if v.shape is None else list(v.shape),
                "dtype": v.dtype,
                "persistable": v.persistable,
                "stop_gradient": v.stop_gradient,
                "is_data": n in feeds,
                "need_check_feed": n in feeds and v.need_check_feed,  # fluid.data: feeds are checked
                "parameter": isinstance(v, Parameter),
                "trainable": bool(getattr(v, "trainable", False)),
            }
        )
    op_descs = []
    for op in ops:
        if op.type in _NOT_INFERENCE or get_op(op.type).inplace:
            raise InferenceModelError(
                f"op {op.type} (built at {op.where()}) is not an inference op; the fetch targets must not "
                "depend on optimizer or initializer ops"
            )
        op_descs.append(
            {
                "type": op.type,
                "inputs": op.inputs,
                "outputs": op.outputs,
                "attrs": {k: _json_value(a, f"op {op.type} attribute {k!r}") for k, a in op.attrs.items()},
            }
        )
    return {"format": FORMAT, "version": VERSION, "feed": feeds, "fetch": fetches, "vars": vars_, "ops": op_descs}


def save_inference_model(
    dirname,
    feeded_var_names,
    target_vars,
    executor=None,
    main_program=None,
    model_filename=None,
    params_filename=None,
    export_for_deployment=True,
    program_only=False,
    clip_extra=False,
):
    """Save the program computing ``target_vars`` from ``feeded_var_names`` (pruned, in test
    mode) and the persistable values it reads (from the global scope); returns the fetch
    target names. See the module docstring for the files. A program with an ``auc`` op warns,
    as Paddle: "please ensure that you have set the auc states to zeros before saving
    inference model"."""
    program = (
        default_main_program()
        if main_program is None
        else program_of(main_program, "save_inference_model: main_program")
    )
    feeds = _names(feeded_var_names, "feeded_var_names")
    fetches = _names(target_vars, "target_vars")
    if any(op.type == "auc" for op in program.global_block().ops):  # Paddle's warning, word for word
        warnings.warn(
            "please ensure that you have set the auc states to zeros before saving inference model", stacklevel=2
        )
    test = program.clone(for_test=True)
    block = test.global_block()
    for n in feeds + fetches:
        if not block.has_var(n):
            raise InferenceModelError(f"save_inference_model: variable {n!r} is not in the program")
    ops = prune_ops(block.ops, fetches, given=set(feeds))
    desc = _describe_program(block, ops, feeds, fetches)
    if params_filename is not None:
        if not isinstance(params_filename, str) or not os.path.basename(params_filename):
            raise ValueError(f"save_inference_model: params_filename must name a file, got {params_filename!r}")
        params_filename = os.path.basename(params_filename)  # Paddle's: the file goes in dirname
    desc["params_filename"] = None if program_only else params_filename
    os.makedirs(dirname, exist_ok=True)
    text = json.dumps(desc, indent=1, sort_keys=True).encode("utf-8")
    atomic_write(os.path.join(dirname, model_filename or MODEL_FILENAME), text)
    if not program_only:
        params = [v["name"] for v in desc["vars"] if v["persistable"] and not v["is_data"]]
        write_values(params, dirname, params_filename, "save_inference_model")
    return fetches


def _load_desc(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"load_inference_model: no program file at {path!r}") from None
    return _parse_desc(data, path)


def _parse_desc(data, path):
    try:
        desc = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # bad UTF-8 or JSON, huge ints, too deep
        raise InferenceModelError(f"{path}: not a torchfluid inference program (JSON expected): {e}") from None
    if not isinstance(desc, dict) or desc.get("format") != FORMAT:
        raise InferenceModelError(f"{path}: not a torchfluid inference program (format {FORMAT!r} expected)")
    if desc.get("version") != VERSION:
        raise InferenceModelError(f"{path}: inference program version {desc.get('version')!r}; this reads {VERSION}")
    for key in ("feed", "fetch", "vars", "ops"):
        if not isinstance(desc.get(key), list):
            raise InferenceModelError(f"{path}: field {key!r} must be a list")
    return desc


def _build_program(desc, path):
    program = Program()
    block = program.global_block()
    try:
        for v in desc["vars"]:
            check_var_fields(v["name"], v, _VAR_FLAGS, path)
            if v["name"] in block.vars:
                raise InferenceModelError(f"{path}: variable {v['name']!r} is described twice")
            kw = {k: v[k] for k in ("persistable", "stop_gradient", "is_data")}
            if v.get("parameter"):
                p = Parameter(block, v["name"], v["shape"], v["dtype"], trainable=v.get("trainable", False), **kw)
                block.vars[p.name] = p
            else:  # a file without need_check_feed takes feeds as they are, as fluid.layers.data
                block.create_var(
                    v["name"], v["shape"], v["dtype"], need_check_feed=v.get("need_check_feed", False), **kw
                )
        for i, op in enumerate(desc["ops"]):
            if isinstance(op["type"], str) and op["type"] in _NOT_INFERENCE:
                raise InferenceModelError(f"op type {op['type']!r} is not allowed in an inference program")
            check_op_fields(op["type"], op["inputs"], op["outputs"], op["attrs"], block.has_var, f"{path}: op {i}")
            if get_op(op["type"]).inplace:
                raise InferenceModelError(f"op type {op['type']!r} is not allowed in an inference program")
            block.append_op(op["type"], op["inputs"], op["outputs"], op["attrs"], infer=False)
    except (InferenceModelError, ProgramDescError) as e:
        raise InferenceModelError(str(e)) from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise InferenceModelError(f"{path}: malformed inference program: {type(e).__name__}: {e}") from None
    for key in ("feed", "fetch"):
        if not all(isinstance(n, str) for n in desc[key]):
            raise InferenceModelError(f"{path}: field {key!r} must be a list of variable names, got {desc[key]!r}")
    for n in desc["feed"] + desc["fetch"]:
        if not block.has_var(n):
            raise InferenceModelError(f"{path}: feed/fetch variable {n!r} is not described in the file")
    return program


def load_inference_model(dirname, executor=None, model_filename=None, params_filename=None, pserver_endpoints=None):
    """``[program, feed_names, fetch_targets]`` from :func:`save_inference_model`'s files;
    the parameters go into the global scope (all checked before any is set).

    ``dirname`` None (Paddle's load from memory): ``model_filename`` is the program file's bytes
    and ``params_filename`` the parameters' bytes, as ``save_persistables(exe, None, program)``
    returns them (for instance of ``program._prune_with_input(feeds, targets)``)."""
    if dirname is None:
        for arg, value in (("model_filename", model_filename), ("params_filename", params_filename)):
            if value is None:
                raise ValueError(f"load_inference_model: with dirname None, {arg} must be the saved bytes, got None")
            if not isinstance(value, (bytes, bytearray)):
                raise TypeError(
                    f"load_inference_model: with dirname None, {arg} must be the saved bytes, "
                    f"got {type(value).__name__}"
                )
        path = "load_inference_model: the program's bytes"
        desc = _parse_desc(model_filename, path)
        program = _build_program(desc, path)
        return _load_params(program, desc, None, params_filename, path)
    if not isinstance(dirname, (str, os.PathLike)):
        raise TypeError(f"load_inference_model: dirname must be a path (str) or None, got {dirname!r}")
    for arg, value in (("model_filename", model_filename), ("params_filename", params_filename)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"load_inference_model: {arg} must be a file name (str) or None, got {value!r}")
    if not os.path.isdir(dirname):
        raise InferenceModelError(f"load_inference_model: there is no directory {os.fspath(dirname)!r}")
    path = os.path.join(dirname, model_filename or MODEL_FILENAME)
    desc = _load_desc(path)
    program = _build_program(desc, path)
    return _load_params(program, desc, dirname, params_filename, path)


def _load_params(program, desc, dirname, params_filename, path):
    """Check the persistables ``program`` reads in the files (or bytes), set them in the global
    scope, and return ``[program, feed names, fetch Variables]``."""
    if params_filename is None:
        params_filename = desc.get("params_filename")
        if params_filename is not None and (
            not isinstance(params_filename, str)
            or not params_filename
            or os.path.basename(params_filename) != params_filename
        ):
            raise InferenceModelError(f"{path}: params_filename {params_filename!r} is not a file name in {dirname!r}")
    block = program.global_block()
    wanted = [v for v in block.vars.values() if v.persistable and not v.is_data]
    names = [v.name for v in wanted]
    loaded = read_values(names, dirname, params_filename, "load_inference_model", InferenceModelError)
    for v in wanted:
        ppath, t = loaded[v.name]
        if not isinstance(t, torch.Tensor):
            raise InferenceModelError(f"{ppath}: variable {v.name!r} is missing")
        if list(t.shape) != list(v.shape) or str(t.dtype).replace("torch.", "") != v.dtype:
            raise InferenceModelError(
                f"{ppath}: variable {v.name!r} is {str(t.dtype).replace('torch.', '')}{list(t.shape)}, "
                f"the program expects {v.dtype}{list(v.shape)}"
            )
    scope = global_scope()
    for n, (_, t) in loaded.items():
        scope.set_value(n, t.clone())
    return [program, list(desc["feed"]), [block.var(n) for n in desc["fetch"]]]
