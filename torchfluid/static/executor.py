"""``fluid.Executor``: binds feeds, runs a (cached) plan of a program, returns fetches.

One run: check every feed (name, dtype, shape) and that every input the plan reads
exists -- all before anything is written, so a bad feed leaves the scope unchanged --
then run the plan's steps over ``env = {scope values, feeds}`` and write the
persistable outputs back into the scope. Temporaries are dropped after the run.
A fed persistable variable (a parameter) is copied, so the caller's array or tensor is
never updated in place. After ``close()`` the executor refuses to run.

A fed LoDTensor's LoD (one level of sequence offsets) is checked against its rows and put
in the environment for the ops that read it (:mod:`torchfluid.static.lod`); a fetch with
``return_numpy=False`` gives a LoDTensor with the LoD its variable carries.
"""

from __future__ import annotations

import numpy as np
import torch

from ..dtypes import numpy_dtype, torch_dtype
from .framework import Operator, Program, Variable, default_main_program
from .lod import lod_key
from .plan import build_plan
from .scope import LoDTensor, Scope, global_scope, lod_problem, place_device

__all__ = ["Executor", "FeedError"]


class FeedError(ValueError):
    """A feed does not fit the program: unknown name, missing, wrong dtype or shape."""


def _split_fetch_list(fetch_list):
    """(fetch names, optimize ops to run) from Variables, names and minimize tuples."""
    names, target_ops = [], []
    for item in fetch_list or ():
        if isinstance(item, (Variable, str)):
            names.append(item if isinstance(item, str) else item.name)
        elif isinstance(item, Operator):
            target_ops.append(item)
        elif (
            isinstance(item, (tuple, list))
            and len(item) == 2
            and isinstance(item[0], (list, tuple))
            and all(isinstance(o, Operator) for o in item[0])
        ):
            target_ops.extend(item[0])
        else:
            raise TypeError(
                f"fetch_list item {item!r} is not a Variable, a variable name, an Operator or "
                "the (optimize_ops, params_grads) tuple returned by minimize"
            )
    return names, target_ops


# numpy's dtype.name is a Python-level property (a few microseconds a call): the common
# dtypes' names are looked up here instead, once per fed array and step
_NP_NAMES = {
    np.dtype(n): n for n in ("bool", "int8", "uint8", "int16", "int32", "int64", "float16", "float32", "float64")
}


def _feed_tensor(name, value, var) -> torch.Tensor:
    """The fed ``value`` as a tensor, after checking its dtype and shape against ``var``.

    A torch tensor is used as it is (any dtype, bfloat16 included; a meta tensor, which has
    no data, is refused); anything else goes through numpy (a negative-stride or
    non-native-byte-order array is copied to a plain one)."""
    if value is None:
        raise FeedError(f"feed {name!r}: the value is None; allowed: an array, tensor or nested list of {var.dtype}")
    if isinstance(value, torch.Tensor):
        if value.is_meta:
            raise FeedError(f"feed {name!r}: a meta tensor holds no data; allowed: a tensor with values")
        _check_fed(name, str(value.dtype).removeprefix("torch."), value.shape, var)  # any dtype: a FeedError
        return value.detach()
    if not isinstance(value, np.ndarray):
        try:
            value = np.array(value, dtype=numpy_dtype(var.dtype))
        except (TypeError, ValueError) as e:
            raise FeedError(f"feed {name!r}: cannot convert {type(value).__name__} to {var.dtype}: {e}") from e
    _check_fed(name, _NP_NAMES.get(value.dtype) or value.dtype.name, value.shape, var)
    try:
        return torch.from_numpy(value)
    except ValueError:  # negative strides or a non-native byte order: torch takes neither
        return torch.from_numpy(np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("=")))


def _fed_lod(name, offsets, value) -> tuple[int, ...]:
    """The LoD offsets of fed LoDTensor ``name``, checked against its value's rows."""
    if value.ndim == 0:
        problem = "a LoD needs a value with rows, got a 0-d value"
    else:  # lod_problem skips the row check for 0 rows (Paddle's CheckLoD); a feed has no such case
        rows = value.shape[0]
        problem = lod_problem(offsets, rows)
        if problem is None and offsets[-1] != rows:
            problem = f"the offsets {list(offsets)} end at row {offsets[-1]} but the tensor has {rows} rows"
    if problem:
        raise FeedError(f"feed {name!r}: the LoD of the fed LoDTensor does not fit its value: {problem}")
    return tuple(offsets)


def _check_fed(name, got, got_shape, var):
    if not var.need_check_feed:  # fluid.layers.data: Paddle takes the value as it is
        return
    if got != var.dtype:
        raise FeedError(
            f"feed {name!r}: the data type of fed variable {name!r} must be {var.dtype!r}, "
            f"but received {got!r} (convert it with .astype({var.dtype!r}))"
        )
    shape = var.shape
    if shape is not None and (
        len(got_shape) != len(shape) or any(d >= 0 and d != s for d, s in zip(shape, got_shape, strict=True))
    ):
        raise FeedError(
            f"feed {name!r}: fed variable {name!r} should have shape {list(shape)} "
            f"(-1 = any size), but received shape {list(got_shape)}"
        )


class Executor:
    """Runs programs on ``place``: a Place, ``'cpu'``, ``'gpu:N'`` or a ``torch.device`` (None: the CPU).

    The place goes through :func:`torchfluid.framework.to_place`, as ``fluid.dygraph.guard``'s does:
    junk, an unknown device and a GPU this process cannot use are refused here, before any run.
    """

    def __init__(self, place=None):
        self._device = place_device(place)
        self.place = place
        self._closed = False

    def close(self):
        """Close the executor (Paddle's API): a later ``run`` raises RuntimeError."""
        self._closed = True

    def run(
        self,
        program=None,
        feed=None,
        fetch_list=None,
        feed_var_name="feed",
        fetch_var_name="fetch",
        scope=None,
        return_numpy=True,
        use_program_cache=False,
        use_prune=False,
    ):
        """Run ``program`` (default main program); return the fetched values as numpy."""
        if self._closed:
            raise RuntimeError("Executor.run: this executor was closed (close()); make a new Executor to run programs")
        program = default_main_program() if program is None else program
        scope = global_scope() if scope is None else scope
        if not isinstance(scope, Scope):
            raise TypeError(f"Executor.run(scope=...): expected a Scope, got {type(scope).__name__}")
        if not isinstance(program, Program):
            from .compiler import CompiledProgram

            if not isinstance(program, CompiledProgram):
                raise TypeError(
                    f"Executor.run(program=...): expected a Program or CompiledProgram, got {type(program).__name__}"
                )
            items = (
                fetch_list
                if isinstance(fetch_list, (list, tuple))
                else ([fetch_list] if fetch_list is not None else [])
            )
            # the optimize ops of a minimize tuple run in every run of a compiled program anyway
            fetch_names, _ = _split_fetch_list(items)
            run_kwargs = {"use_program_cache": use_program_cache, "use_prune": use_prune}
            return program.run_by_executor(self, feed, fetch_names, scope, return_numpy, run_kwargs)
        feed = {} if feed is None else feed
        if not isinstance(feed, dict):
            raise TypeError(f"Executor.run(feed=...): expected a dict name -> array, got {type(feed).__name__}")
        fetch_names, target_ops = _split_fetch_list(
            fetch_list if isinstance(fetch_list, (list, tuple)) else ([fetch_list] if fetch_list is not None else [])
        )
        prune = bool(target_ops) or bool(use_prune)
        key = (tuple(feed), tuple(fetch_names), tuple(id(o) for o in target_ops), prune)
        plan = program.cached_plan(key, lambda: build_plan(program, list(feed), fetch_names, target_ops, prune))
        env = self._bind(plan, program, feed, scope)
        self._set_scheduled_lr(program, scope, env)
        plan.run(env)
        for n in plan.persist_writes:
            scope.set_value(n, env[n])
        return self._fetch(plan, env, return_numpy)

    def _bind(self, plan, program, feed, scope):
        """Check feeds and inputs; build the run's environment (the scope is not touched)."""
        block = plan.block
        env = {}
        for name, value in feed.items():
            var = block.vars.get(name)
            if var is None:
                data = [v.name for v in block.vars.values() if v.is_data]
                raise FeedError(
                    f"feed {name!r}: no variable of that name in the program; "
                    f"data variables are: {', '.join(data) or 'none'}"
                )
            if isinstance(value, LoDTensor):
                lod = value.lod()
                value = np.array(value)
                if lod:
                    env[lod_key(name)] = _fed_lod(name, lod[0], value)
            t = _feed_tensor(name, value, var)
            t = t if t.device == self._device else t.to(self._device)
            # a fed persistable (a parameter) is written back to the scope and may be updated in
            # place: it gets its own copy, never the caller's memory (Paddle's feed op copies too)
            env[name] = t.clone() if var.persistable else t
        for n in plan.lod_feeds:
            if lod_key(n) not in env:
                op = plan.lod_users[n]
                raise FeedError(
                    f"feed {n!r}: op {op.type} (built at {op.where()}) reads its sequence lengths (LoD), but it "
                    "was fed without any: feed a LoDTensor with set_recursive_sequence_lengths([[...]]), "
                    "fluid.create_lod_tensor(data, [[lengths]], place), or a DataFeeder batch of lod_level=1 data"
                )
        for n in plan.external:
            t = scope.value(n)
            if t is None:
                var = block.vars.get(n)
                if var is not None and var.is_data:
                    raise FeedError(
                        f"feed: data variable {n!r} is needed to run this program but was not fed "
                        f"(fed: {', '.join(feed) or 'nothing'})"
                    )
                raise RuntimeError(
                    f"variable {n!r} is read by this program but holds no value in the scope "
                    "(run the startup program first, or feed it)"
                )
            env[n] = t
        for n in plan.fetch_names:
            if n in env or n in plan.produced:
                continue
            t = scope.value(n)
            if t is None:
                raise ValueError(
                    f"fetch_list: variable {n!r} is neither computed by this program nor held in the scope"
                )
            env[n] = t
        return env

    def _set_scheduled_lr(self, program, scope, env):
        """A 2.x LRScheduler attached to the program (Paddle's ``program.lr_sheduler``, its
        ``_var_name`` naming the learning-rate variable) sets that variable to
        ``scheduler()`` before each run; the user steps the scheduler between runs."""
        sched = getattr(program, "lr_sheduler", None)
        if sched is None:
            return
        name = getattr(sched, "_var_name", None)
        var = program.global_block().vars.get(name) if isinstance(name, str) else None
        if var is None:
            raise ValueError(
                f"program.lr_sheduler ({type(sched).__name__}) names learning-rate variable {name!r}, "
                "which is not in the program"
            )
        t = torch.tensor([float(sched())], dtype=torch_dtype(var.dtype), device=self._device)
        scope.set_value(name, t)
        if name in env:
            env[name] = t

    @staticmethod
    def _fetch(plan, env, return_numpy):
        out = []
        for n in plan.fetch_names:
            t = env[n]
            if return_numpy:
                if t.dtype is torch.bfloat16:
                    raise TypeError(
                        f"fetch {n!r}: a bfloat16 value has no numpy dtype; fetch it with return_numpy=False "
                        "(a LoDTensor) or cast it to float32 in the program"
                    )
                out.append(
                    (t.numpy() if t.device.type == "cpu" and not t.requires_grad else t.detach().cpu().numpy()).copy()
                )
            else:
                s = Scope()
                s.set_value(n, t.detach().clone())
                src = plan.lod_src.get(n)
                if src is not None:
                    s.set_lod(n, env.get(lod_key(src)))
                out.append(LoDTensor(s, n))
        return out
