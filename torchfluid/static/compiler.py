"""``fluid.CompiledProgram``: a program run as it is, or data-parallel over several places in one process.

::

    compiled = fluid.CompiledProgram(main).with_data_parallel(loss_name=loss.name, places=fluid.cpu_places(4))
    loss_values, = exe.run(compiled, feed={"x": x, "y": y}, fetch_list=[loss])   # 4 values, one per place

``CompiledProgram(program)`` alone runs exactly as ``program`` (one place). With
``with_data_parallel`` each run does what Paddle's ParallelExecutor does with the default
``BuildStrategy`` (AllReduce, ``GradientScaleStrategy.CoeffNumDevice``), over ``N`` places:

* **feed**: a dict is split along dim 0 (:func:`split_sizes`: ``B`` rows give steps of
  ``ceil(B / N)`` rows, the last place the rest; ``B=10, N=4``: 3, 3, 3, 1). A batch that
  gives fewer than ``N`` pieces (``B < N``, or ``B=5, N=4``: 2, 2, 1) is refused, as Paddle
  refuses it. A persistable variable fed (a parameter) goes whole to every place. A list
  of ``N`` dicts gives each place its own feed, unsplit.
* **forward and backward** (the ops whose role is neither optimize nor lr-schedule) run
  once per place on its slice, over per-place variables ``<name>@PLACE<p>``; the gradient
  of the loss (``loss_name``) starts at ``1/N`` on each place (``CoeffNumDevice``; ``One``:
  1) and each gradient the optimizer reads is the sum of the places' gradients (AllReduce).
  With a loss that is a mean over rows and a batch of ``N*k`` rows this is the gradient of
  the whole batch's mean; otherwise it is the mean over places of each place's gradient.
* **optimize** (and lr-schedule) ops run once, on the summed gradients: every place then
  holds the same parameters, which live in the executor's scope.
  ``compiled._executor.local_scopes()`` gives one scope per place reading them.
* **fetch**: each fetched variable is the concatenation along dim 0 of the places' values
  (a ``[1]`` loss gives ``N`` values, as in Paddle); a variable every place shares (a
  parameter, the learning rate, a summed gradient) comes ``N`` times.
* **batch_norm** normalises each place's slice with that slice's statistics (Paddle's
  non-sync batch norm); its moving statistics keep place 0's new values (Paddle keeps one
  copy per place; ``BuildStrategy.sync_batch_norm=True`` is refused).

How: on the first run with a given feed layout, a data-parallel program is built from the
original (cached per program version): ``data_parallel_split`` ops in front, each
forward/backward op once per place (renamed), ``data_parallel_allreduce`` ops before the
optimize op, ``parallel_do_write_back`` for a persistable variable the places write. The
places run one after another; the executor runs that program with its usual plan.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch

from ..ops.registry import register
from ..places import CPUPlace, CUDAPinnedPlace, CUDAPlace, Place, to_place
from .framework import OpRole, Program, Variable
from .scope import LoDTensor, Scope, ScopeVar

__all__ = [
    "CompiledProgram",
    "BuildStrategy",
    "ExecutionStrategy",
    "cpu_places",
    "cuda_places",
    "cuda_pinned_places",
]

_EMPTY = "@EMPTY@"
_GRAD = "@GRAD"


# ---------------------------------------------------------------- places


def _cpu_num() -> int:
    """Paddle's CPU place count: the ``CPU_NUM`` environment variable, else 1 (with a warning)."""
    text = os.environ.get("CPU_NUM")
    if text is None:
        if (os.cpu_count() or 1) > 1:
            warnings.warn(
                "CPU_NUM is not set: 1 CPU place is used (set the environment variable CPU_NUM=n for n places)",
                stacklevel=3,
            )
        return 1
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"the environment variable CPU_NUM must be an integer >= 1, got {text!r}")
    return n


def _count(what, device_count):
    if device_count is None:
        return _cpu_num()
    if isinstance(device_count, bool) or not isinstance(device_count, (int, np.integer)) or device_count < 1:
        raise ValueError(f"{what}: device_count must be an int >= 1 or None, got {device_count!r}")
    return int(device_count)


def cpu_places(device_count=None) -> list:
    """``device_count`` ``CPUPlace()`` (None: the ``CPU_NUM`` environment variable, else 1), Paddle's list."""
    return [CPUPlace() for _ in range(_count("cpu_places", device_count))]


def cuda_pinned_places(device_count=None) -> list:
    """``device_count`` ``CUDAPinnedPlace()`` (None: ``CPU_NUM``, else 1)."""
    return [CUDAPinnedPlace() for _ in range(_count("cuda_pinned_places", device_count))]


def cuda_places(device_ids=None) -> list:
    """``CUDAPlace(i)`` for each GPU id in ``device_ids`` (None: ``FLAGS_selected_gpus``, else every visible GPU).

    ``FLAGS_selected_gpus`` holds comma-separated ids. Each place must be usable: without CUDA
    this raises ``RuntimeError`` (:func:`torchfluid.places.to_place`)."""
    if device_ids is None:
        env = os.environ.get("FLAGS_selected_gpus")
        if env:
            try:
                device_ids = [int(s) for s in env.split(",")]
            except ValueError:
                raise ValueError(f"FLAGS_selected_gpus must be comma-separated GPU ids, got {env!r}") from None
        else:
            if not torch.cuda.is_available():
                raise RuntimeError("cuda_places() needs CUDA, but this torch build has no usable GPU")
            device_ids = range(torch.cuda.device_count())
    elif not isinstance(device_ids, (list, tuple, range)):
        raise TypeError(f"cuda_places: device_ids must be a list of ints or None, got {device_ids!r}")
    return [to_place(CUDAPlace(i), f"cuda_places: device {i}") for i in device_ids]


# ---------------------------------------------------------------- settings records


class _Settings:
    """A record of named settings with defaults; setting an unknown name or a wrong type is an error."""

    _FIELDS: dict = {}

    def __init__(self):
        for name, (default, _) in self._FIELDS.items():
            object.__setattr__(self, name, default)

    def __setattr__(self, name, value):
        spec = self._FIELDS.get(name)
        if spec is None:
            raise AttributeError(
                f"{type(self).__name__} has no setting {name!r}; its settings are: {', '.join(self._FIELDS)}"
            )
        kind = spec[1]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            raise TypeError(f"{type(self).__name__}.{name} must be of type {kind.__name__}, got {value!r}")
        object.__setattr__(self, name, value)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self._FIELDS)})"


class _ReduceStrategy:
    AllReduce = 0
    Reduce = 1


class _GradientScaleStrategy:
    CoeffNumDevice = 0
    One = 1
    Customized = 2


class BuildStrategy(_Settings):
    """Paddle's ``fluid.BuildStrategy``: how a data-parallel program is built.

    Honoured: ``gradient_scale_strategy`` (``CoeffNumDevice``: each place's loss gradient is
    ``1/N``, so the summed gradient is the mean; ``One``: 1, the sum), ``reduce_strategy``
    (``AllReduce`` or ``Reduce``: both give every place the summed gradient's update, the same
    numbers). Refused when a run compiles: ``GradientScaleStrategy.Customized`` (a fed loss
    gradient), ``sync_batch_norm=True``, ``num_trainers > 1`` (several processes: use
    torch.distributed). Every other setting (the fusion passes, ``memory_optimize``,
    ``enable_inplace``, ``debug_graphviz_path``, ...) is kept and has no effect: they change
    speed or memory in Paddle, never the numbers.
    """

    ReduceStrategy = _ReduceStrategy
    GradientScaleStrategy = _GradientScaleStrategy
    _FIELDS = {
        "reduce_strategy": (_ReduceStrategy.AllReduce, int),
        "gradient_scale_strategy": (_GradientScaleStrategy.CoeffNumDevice, int),
        "debug_graphviz_path": ("", str),
        "enable_sequential_execution": (False, bool),
        "fuse_elewise_add_act_ops": (False, bool),
        "fuse_bn_act_ops": (False, bool),
        "fuse_bn_add_act_ops": (True, bool),
        "fuse_relu_depthwise_conv": (False, bool),
        "fuse_broadcast_ops": (False, bool),
        "fuse_all_optimizer_ops": (False, bool),
        "fuse_all_reduce_ops": (False, bool),
        "enable_auto_fusion": (False, bool),
        "enable_addto": (False, bool),
        "enable_inplace": (False, bool),
        "memory_optimize": (False, bool),
        "cache_runtime_context": (False, bool),
        "remove_unnecessary_lock": (True, bool),
        "sync_batch_norm": (False, bool),
        "num_trainers": (1, int),
        "trainer_id": (0, int),
        "trainers_endpoints": ([], list),
        "nccl_comm_num": (1, int),
        "use_hierarchical_allreduce": (False, bool),
        "hierarchical_allreduce_inter_nranks": (0, int),
        "is_distribution": (False, bool),
    }

    def _check(self):
        """Refuse the settings whose meaning a one-process run cannot honour."""
        scale = self.gradient_scale_strategy
        if scale == _GradientScaleStrategy.Customized:
            raise NotImplementedError(
                "BuildStrategy.gradient_scale_strategy=Customized (a loss gradient fed per place) is not supported; "
                "use CoeffNumDevice (the mean over places, the default) or One (the sum)"
            )
        if scale not in (_GradientScaleStrategy.CoeffNumDevice, _GradientScaleStrategy.One):
            raise ValueError(
                f"BuildStrategy.gradient_scale_strategy must be GradientScaleStrategy.CoeffNumDevice (0) or One (1), "
                f"got {scale!r}"
            )
        if self.reduce_strategy not in (_ReduceStrategy.AllReduce, _ReduceStrategy.Reduce):
            raise ValueError(
                f"BuildStrategy.reduce_strategy must be ReduceStrategy.AllReduce (0) or Reduce (1), "
                f"got {self.reduce_strategy!r}"
            )
        if self.sync_batch_norm:
            raise NotImplementedError(
                "BuildStrategy.sync_batch_norm=True (batch statistics over all places) is not supported: "
                "each place's batch_norm uses its own slice's statistics; leave sync_batch_norm False"
            )
        if self.num_trainers != 1:
            raise NotImplementedError(
                f"BuildStrategy.num_trainers={self.num_trainers}: several trainer processes are not supported "
                "by CompiledProgram; use torch.distributed (README, 'Distributed training')"
            )


class ExecutionStrategy(_Settings):
    """Paddle's ``fluid.ExecutionStrategy``: how a data-parallel program runs.

    ``num_threads``, ``use_thread_barrier``, ``allow_op_delay`` and
    ``num_iteration_per_drop_scope`` are kept and have no effect (the places run one after
    another; temporaries are dropped after each run). ``num_iteration_per_run`` other than 1
    (several steps per run) is refused when a run compiles.
    """

    _FIELDS = {
        "num_threads": (0, int),
        "use_thread_barrier": (False, bool),
        "allow_op_delay": (False, bool),
        "num_iteration_per_drop_scope": (100, int),
        "num_iteration_per_run": (1, int),
    }

    def _check(self):
        if self.num_iteration_per_run != 1:
            raise NotImplementedError(
                f"ExecutionStrategy.num_iteration_per_run={self.num_iteration_per_run}: one run is one step here; "
                "leave it 1 and call exe.run once per step"
            )


# ---------------------------------------------------------------- ops


def split_sizes(batch: int, num_places: int) -> list[int]:
    """Rows per place when ``batch`` rows are split across ``num_places`` places, as Paddle's
    ``SplitLoDTensor`` splits a feed: steps of ``ceil(batch / num_places)`` rows, the last piece the
    rest, so there may be fewer pieces than places (``batch=5, num_places=4``: 2, 2, 1). 0 rows give
    every place an empty piece."""
    if batch == 0:
        return [0] * num_places
    step = -(-batch // num_places)
    return [min(step, batch - start) for start in range(0, batch, step)]


@register("data_parallel_split", ["Out"])
def data_parallel_split(X, *, index, num_places, device):
    """Place ``index``'s rows of ``X`` (:func:`split_sizes`) on ``device``."""
    if X.dim() == 0:
        raise ValueError("data_parallel_split: a 0-d feed has no rows to split across places")
    sizes = split_sizes(X.shape[0], num_places)
    if len(sizes) != num_places:
        raise ValueError(_too_few(X.shape[0], len(sizes), num_places, "X"))
    start = sum(sizes[:index])
    return X[start : start + sizes[index]].to(device)


def _copy_grad(X, Out, dOut, *, device, need=(True,)):
    return (dOut.to(X.device),)


@register("parallel_do_copy", ["Out"], grad=_copy_grad)
def parallel_do_copy(X, *, device):
    """``X`` on ``device`` (itself when it is there already): a place's copy of a variable built outside."""
    return X.to(device)


@register("parallel_do_write_back", ["Out"])
def parallel_do_write_back(X, Ref):
    """Place 0's new value ``X`` of a variable ``Ref`` shared by the places, on ``Ref``'s device."""
    return X.to(Ref.device)


@register("data_parallel_allreduce", ["Out"], list_slots=["X"])
def data_parallel_allreduce(X, *, device):
    """The sum of the places' values ``X`` (in place order) on ``device``: AllReduce's result."""
    out = X[0].to(device)
    for t in X[1:]:
        out = out + t.to(device)
    return out


def _too_few(rows, pieces, num_places, name):
    return (
        f"feed {name!r}: its {rows} rows split into {pieces} piece(s) (steps of ceil({rows}/{num_places}) rows), "
        f"fewer than the {num_places} places; Paddle does not allow it either: feed at least "
        f"{num_places} rows such that every place gets some (or use fewer places, e.g. CPU_NUM)"
    )


# ---------------------------------------------------------------- the data-parallel program


def _place_name(p: int, name: str) -> str:
    return f"{name}@PLACE{p}"


def _is_once(op) -> bool:
    return bool(op.role & (OpRole.Optimize | OpRole.LRSched))


def _loss_grad_ops(block):
    return [op for op in block.ops if op.type == "fill_constant" and op.role == (OpRole.Backward | OpRole.Loss)]


def _build_data_parallel(program, devices, exe_device, split_feeds, place_feeds, scale, loss_name):
    """The data-parallel program of ``program`` (see the module docstring); returns
    ``(program, per-place names, summed names)``."""
    src = program.global_block()
    n = len(devices)
    if any(b.ops for b in program.blocks[1:]):
        raise NotImplementedError(
            "CompiledProgram.with_data_parallel: the program has ops in sub-blocks (control flow); only a program "
            "whose ops are all in the global block runs data-parallel"
        )
    for op in src.ops:
        if not _is_once(op) and op.attrs.get("is_sparse"):
            raise NotImplementedError(
                f"CompiledProgram.with_data_parallel: op {op.type} built at {op.where()} makes a sparse "
                "(SelectedRows) gradient; data-parallel runs sum dense gradients only: build it with is_sparse=False"
            )
    dp = Program()
    dp.random_seed = program.random_seed
    blk = dp.global_block()
    for name, v in src.vars.items():
        blk.vars[name] = v._copy_to(blk)
        if name in split_feeds and v.shape is not None and len(v.shape):
            blk.vars[name].shape = (-1, *v.shape[1:])  # the whole batch; each place's piece was checked
    per_place_ops = [op for op in src.ops if not _is_once(op)]
    written = {m for op in per_place_ops for m in op.output_arg_names if m != _EMPTY}
    local = set(written) | set(split_feeds) | set(place_feeds)
    persist_written = sorted(m for m in written if m in src.vars and src.vars[m].persistable)
    read = {m for op in per_place_ops for m in op.input_arg_names if m != _EMPTY}
    moved = sorted(m for m in read - local if m in src.vars and any(d != exe_device for d in devices))
    for m in sorted(local | set(moved)):
        like = src.vars.get(m)
        if like is None:
            continue
        for p in range(n):
            name = _place_name(p, m)
            if name in src.vars:
                raise ValueError(f"CompiledProgram: the per-place variable {name!r} exists in the program already")
            blk.create_var(
                name,
                like.shape,
                like.dtype,
                stop_gradient=like.stop_gradient,
                lod_level=like.lod_level,
                persistable=False,
            )
    renamed = local | set(moved)

    def rename(slots, p):
        return {s: [m if m not in renamed else _place_name(p, m) for m in ms] for s, ms in slots.items()}

    def emit(type_, inputs, outputs, attrs, callsite=None):
        op = blk.append_op(type_, inputs, outputs, attrs, infer=False)
        op.callsite = callsite
        return op

    for m in split_feeds:
        for p, device in enumerate(devices):
            attrs = {"index": p, "num_places": n, "device": device, "op_role": OpRole.Forward}
            emit("data_parallel_split", {"X": [m]}, {"Out": [_place_name(p, m)]}, attrs)
    for p, device in enumerate(devices):
        for m in sorted(set(persist_written) | set(moved)):
            emit("parallel_do_copy", {"X": [m]}, {"Out": [_place_name(p, m)]}, {"device": device})
    # Paddle's ScaleLossGrad: the gradient of loss_name (only) starts at 1/N on each place
    loss_grads = {
        id(op) for op in _loss_grad_ops(src) if loss_name is not None and loss_name + _GRAD in op.output_arg_names
    }
    last = max((i for i, op in enumerate(src.ops) if not _is_once(op)), default=-1)
    summed: set = set()
    for i, op in enumerate(src.ops):
        if _is_once(op):
            for m in op.input_arg_names:
                if m in local and m not in summed:
                    if not m.endswith(_GRAD) and _GRAD + "@" not in m:
                        raise NotImplementedError(
                            f"CompiledProgram.with_data_parallel: op {op.type} built at {op.where()} runs once "
                            f"(optimize / lr schedule) but reads {m!r}, which each place computes and which is not "
                            "a gradient; only gradients are combined across places"
                        )
                    parts = [_place_name(p, m) for p in range(n)]
                    emit("data_parallel_allreduce", {"X": parts}, {"Out": [m]}, {"device": exe_device})
                    summed.add(m)
            emit(op.type, dict(op.inputs), dict(op.outputs), dict(op.attrs), op.callsite)
        else:
            for p in range(n):
                attrs = dict(op.attrs)
                if id(op) in loss_grads:
                    attrs["value"] = 1.0 / n if scale == _GradientScaleStrategy.CoeffNumDevice else 1.0
                emit(op.type, rename(op.inputs, p), rename(op.outputs, p), attrs, op.callsite)
        if i == last:
            for m in persist_written:
                emit("parallel_do_write_back", {"X": [_place_name(0, m)], "Ref": [m]}, {"Out": [m]}, {})
    return dp, frozenset(local), frozenset(summed)


# ---------------------------------------------------------------- scopes


class _PlaceScope(Scope):
    """A place's scope: its own entries, and the run scope's values of the program's persistable
    variables (the same tensors: every place holds the same parameters after a run)."""

    def __init__(self, scope: Scope, names):
        super().__init__()
        self._parent = scope
        self._shared = frozenset(names)

    def value(self, name):
        own = super().value(name)
        if own is None and name in self._shared:
            return self._parent.value(name)
        return own

    def lod(self, name):
        own = super().lod(name)
        return self._parent.lod(name) if own is None and name in self._shared else own

    def find_var(self, name):
        return ScopeVar(self, name) if name in self._shared else super().find_var(name)

    def local_var_names(self):
        return list(dict.fromkeys([*self._shared, *super().local_var_names()]))


class _ParallelExecutor:
    """What ``CompiledProgram._executor`` holds once it has run: Paddle's ParallelExecutor's
    ``local_scopes()`` and ``device_count``."""

    def __init__(self, scope, program, places):
        names = [v.name for v in program.list_vars() if v.persistable]
        self._scopes = [_PlaceScope(scope, names) for _ in places]
        self.device_count = len(places)

    def local_scopes(self) -> list:
        """One scope per place, holding that place's persistable values."""
        return list(self._scopes)


# ---------------------------------------------------------------- CompiledProgram


class CompiledProgram:
    """A program compiled for a run (Paddle's ``fluid.CompiledProgram(program_or_graph, build_strategy=None)``).

    Run it with ``Executor.run`` like a program. Alone it runs exactly as the program; after
    :meth:`with_data_parallel` each run is data-parallel over its places (module docstring).
    The first run fixes the executor's place and scope: a later run with another place or
    scope is an error, as in Paddle.
    """

    def __init__(self, program_or_graph, build_strategy=None):
        if not isinstance(program_or_graph, Program):
            raise TypeError(
                "CompiledProgram: program_or_graph must be a Program (a Paddle IR Graph is not supported), "
                f"got {type(program_or_graph).__name__}"
            )
        self._program = program_or_graph
        self._build_strategy = _check_strategy("build_strategy", build_strategy, BuildStrategy)
        self._exec_strategy = None
        self._is_data_parallel = False
        self._loss_name = None
        self._places = None
        self._share_vars_from = None
        self._scope = None
        self._place = None
        self._executor = None

    def with_data_parallel(
        self, loss_name=None, build_strategy=None, exec_strategy=None, share_vars_from=None, places=None
    ):
        """Run data-parallel over ``places`` (None: ``cpu_places()`` or ``cuda_places()`` by the
        executor's place); returns ``self``.

        ``loss_name``: the name of the loss (a Variable is taken by its name); required when the
        program has a backward pass. ``share_vars_from``: a data-parallel CompiledProgram that has
        run already (its scope is used). The strategies: :class:`BuildStrategy`,
        :class:`ExecutionStrategy` (None: the defaults).
        """
        if self._is_data_parallel:
            raise ValueError("CompiledProgram.with_data_parallel: this program is data-parallel already")
        if build_strategy is not None:
            build_strategy = _check_strategy("build_strategy", build_strategy, BuildStrategy)
        exec_strategy = _check_strategy("exec_strategy", exec_strategy, ExecutionStrategy)
        block = self._program.global_block()
        if isinstance(loss_name, Variable):
            loss_name = loss_name.name
        if loss_name is not None:
            if not isinstance(loss_name, str):
                raise TypeError(f"with_data_parallel: loss_name must be a str (the loss's name), got {loss_name!r}")
            if loss_name not in block.vars:
                raise ValueError(f"with_data_parallel: loss_name {loss_name!r} is not a variable of the program")
        grads = _loss_grad_ops(block)
        if grads:
            starts = sorted({m.removesuffix(_GRAD) for op in grads for m in op.output_arg_names})
            if loss_name is None:
                raise ValueError(
                    f"with_data_parallel: the program has a backward pass (from loss {starts[0]!r}), so loss_name "
                    "must be given: with_data_parallel(loss_name=loss.name, ...)"
                )
            if loss_name not in starts:
                raise ValueError(
                    f"with_data_parallel: loss_name {loss_name!r} is not the loss the program's backward pass "
                    f"starts from ({', '.join(map(repr, starts))})"
                )
        if share_vars_from is not None:
            if not isinstance(share_vars_from, CompiledProgram):
                raise TypeError(
                    "with_data_parallel: share_vars_from must be a CompiledProgram, "
                    f"got {type(share_vars_from).__name__}"
                )
            if not share_vars_from._is_data_parallel:
                raise ValueError("with_data_parallel: share_vars_from is not data-parallel; there is nothing to share")
        self._places = None if places is None else _as_places(places)
        self._is_data_parallel = True
        if build_strategy is not None:
            self._build_strategy = build_strategy
        self._exec_strategy = exec_strategy
        self._loss_name = loss_name
        self._share_vars_from = share_vars_from
        return self

    # -------------------------------------------------------------- running
    def _compile(self, place, scope):
        """Fix the place and scope on the first run; refuse a different one later. Returns the places."""
        if self._share_vars_from is not None:
            other = self._share_vars_from
            if other._executor is None:
                raise ValueError(
                    "CompiledProgram: share_vars_from has not run yet, so it has no variables to share; run it first"
                )
            scope = other._scope
        if self._executor is not None:
            if scope is not self._scope:
                raise ValueError("CompiledProgram: it was run with another scope; a compiled program keeps its scope")
            if place != self._place:
                raise ValueError(
                    f"CompiledProgram: it was run by an executor on {self._place!r}; this executor's place is "
                    f"{place!r} (a compiled program keeps its place)"
                )
            return self._run_places
        if self._is_data_parallel:
            for s in (self._build_strategy, self._exec_strategy):
                if s is not None:
                    s._check()
            places = self._places
            if places is None:
                places = cuda_places() if place.is_gpu_place() else cpu_places()
            for i, p in enumerate(places):
                if p.is_gpu_place() != place.is_gpu_place():
                    raise ValueError(
                        f"CompiledProgram: places[{i}] is {p!r} but the executor runs on {place!r}; the places "
                        "must be of the executor's kind (all CPU or all GPU)"
                    )
        else:
            places = [place]
        self._run_places = list(places)
        self._place, self._scope = place, scope
        self._executor = _ParallelExecutor(scope, self._program, places)
        return self._run_places

    def run_by_executor(self, executor, feed, fetch_names, scope, return_numpy, run_kwargs):
        """One run by ``executor``: ``Executor.run(compiled, ...)`` calls it (fetch names without minimize tuples)."""
        place = to_place(CPUPlace() if executor.place is None else executor.place)
        if place.is_cuda_pinned_place():
            place = CPUPlace()
        places = self._compile(place, scope)
        scope = self._scope
        n = len(places)
        if not self._is_data_parallel:
            if isinstance(feed, (list, tuple)):
                if len(feed) != 1:
                    raise ValueError(f"Executor.run: a list feed needs one dict per place (1 place), got {len(feed)}")
                feed = feed[0]
            return executor.run(self._program, feed, fetch_names, scope=scope, return_numpy=return_numpy, **run_kwargs)
        feed, split_feeds, place_feeds = self._prepare_feed(feed, n)
        devices = [str(p.device) for p in places]
        exe_device = str(place.device)
        scale = self._build_strategy.gradient_scale_strategy if self._build_strategy else 0
        key = ("data_parallel", tuple(devices), exe_device, split_feeds, place_feeds, scale, self._loss_name)
        dp, local, summed = self._program.cached_plan(
            key,
            lambda: _build_data_parallel(
                self._program, devices, exe_device, split_feeds, place_feeds, scale, self._loss_name
            ),
        )
        sched = getattr(self._program, "lr_sheduler", None)
        if sched is not None:
            dp.lr_sheduler = sched
        wanted = []
        for m in fetch_names:
            if m in local and m not in summed:
                wanted.extend(_place_name(p, m) for p in range(n))
            else:
                wanted.append(m)
        wanted = list(dict.fromkeys(wanted))
        values = executor.run(dp, feed, wanted, scope=scope, return_numpy=True, **run_kwargs)
        got = dict(zip(wanted, values, strict=True))
        out = []
        for m in fetch_names:
            if m in local and m not in summed:
                parts = [got[_place_name(p, m)] for p in range(n)]
            else:
                parts = [got[m]] * n
            merged = np.concatenate([np.reshape(a, (1,)) if a.ndim == 0 else a for a in parts])
            if not return_numpy:
                t = LoDTensor()
                t.set(merged)
                merged = t
            out.append(merged)
        return out

    def _prepare_feed(self, feed, n):
        """``(the executor's feed, split feed names, per-place feed names)`` after checking every
        feed (nothing runs before: a bad feed changes nothing)."""
        block = self._program.global_block()

        def persistable(name):
            v = block.vars.get(name)
            return v is not None and v.persistable

        def no_lod(name, value):
            if isinstance(value, LoDTensor) and value.lod():
                raise NotImplementedError(
                    f"feed {name!r}: a LoDTensor with a LoD is not split across places by torchfluid; "
                    "pad the sequences to one length and feed a dense array"
                )

        if isinstance(feed, (list, tuple)):
            if len(feed) != n:
                raise ValueError(
                    f"Executor.run: a list feed gives one dict per place: {n} places, got {len(feed)} dict(s)"
                )
            keys = None
            out = {}
            for p, d in enumerate(feed):
                if not isinstance(d, dict):
                    raise TypeError(f"Executor.run: feed[{p}] must be a dict name -> array, got {type(d).__name__}")
                if keys is not None and set(d) != keys:
                    raise ValueError(
                        f"Executor.run: feed[{p}] feeds {sorted(d)} but feed[0] feeds {sorted(keys)}; every place "
                        "must be fed the same variables"
                    )
                keys = set(d)
                for name, value in d.items():
                    _known(block, name)
                    no_lod(name, value)
                    out[name if persistable(name) else _place_name(p, name)] = value
            names = tuple(sorted(m for m in keys or () if not persistable(m)))
            return out, (), names
        feed = {} if feed is None else feed
        if not isinstance(feed, dict):
            raise TypeError(
                f"Executor.run(feed=...): expected a dict name -> array or a list of one dict per place, "
                f"got {type(feed).__name__}"
            )
        split = []
        for name, value in feed.items():
            _known(block, name)
            no_lod(name, value)
            if persistable(name):
                continue
            if isinstance(value, LoDTensor):
                shape = tuple(value.shape())
            else:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else np.shape(value)
            if not shape:
                raise ValueError(f"feed {name!r}: a 0-d value has no rows to split across {n} places")
            sizes = split_sizes(shape[0], n)
            if len(sizes) != n:
                raise ValueError(_too_few(shape[0], len(sizes), n, name))
            want = block.vars[name].shape
            if want is not None and len(want) and want[0] >= 0 and any(r != want[0] for r in sizes):
                raise ValueError(
                    f"feed {name!r}: variable {name!r} has shape {list(want)}, so each place needs {want[0]} rows, "
                    f"but the fed {shape[0]} rows split into {sizes} across {n} places"
                )
            split.append(name)
        return feed, tuple(sorted(split)), ()


def program_of(program, what: str):
    """The Program that ``program`` runs: a Program itself, a CompiledProgram's program (with
    Paddle's warning that passing a CompiledProgram is not recommended); anything else is a
    TypeError naming ``what``."""
    if isinstance(program, CompiledProgram):
        warnings.warn(f"{what}: the input is a CompiledProgram, this is not recommended", stacklevel=3)
        program = program._program
    if not isinstance(program, Program):
        raise TypeError(f"{what} must be a Program or CompiledProgram, got {type(program).__name__}")
    return program


def _known(block, name):
    if name not in block.vars:
        data = [v.name for v in block.vars.values() if v.is_data]
        raise ValueError(
            f"feed {name!r}: no variable of that name in the program; data variables are: {', '.join(data) or 'none'}"
        )


def _check_strategy(what, value, kind):
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"{what} must be a fluid.{kind.__name__} or None, got {type(value).__name__}")
    return value


def _as_places(places) -> list:
    if isinstance(places, (list, tuple)):
        if not places:
            raise ValueError("with_data_parallel: places is empty; give at least one place, or None for the default")
        items = list(places)
    elif isinstance(places, (Place, str, torch.device)):
        items = [places]
    else:
        raise TypeError(
            "with_data_parallel: places must be a list of places (CPUPlace(), CUDAPlace(i), 'cpu', 'gpu:i'), "
            f"one place, or None, got {places!r}"
        )
    out = []
    for i, p in enumerate(items):
        place = to_place(p, f"with_data_parallel: places[{i}]")
        out.append(CPUPlace() if place.is_cuda_pinned_place() else place)
    return out
