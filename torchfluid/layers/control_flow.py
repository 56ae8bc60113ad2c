"""``fluid.layers.control_flow``: ``ParallelDo``, Paddle 1.x's data-parallel block, in one process.

::

    places = fluid.layers.get_places()          # or get_places(device_count=n), or a list of places
    pd = fluid.layers.ParallelDo(places)
    with pd.do():
        img_ = pd.read_input(img)                # split along dim 0 across the places
        label_ = pd.read_input(label)
        avg_cost = ...layers of img_, label_...   # recorded once, run once per place
        pd.write_output(avg_cost)                # merged by concatenation, in place order
    avg_cost = fluid.layers.mean(pd())

What a run computes is Paddle's ``parallel_do`` op:

* **split**: each input read with ``read_input`` is cut along dim 0 as Paddle's
  ``LoDTensor::SplitLoDTensor`` cuts it. With ``B`` rows and ``P`` places, ``R = min(B, P)``
  places run; each of them gets ``B // R`` consecutive rows and, when ``R == P``, the last
  one also gets the ``B % P`` left over (``B=10, P=3``: 3, 3, 4 rows; ``B=10, P=4``: 2, 2, 2, 4;
  ``B=2, P=3``: one row each on the first two places, the third does not run). Every input
  must split into the same ``R``; an input of 0 rows is an error.
* **per place**: the block's ops run on that place's device, reading the place's slices and
  its own copy of every other variable the block reads (parameters and anything else built
  outside the block). A variable built outside that the block overwrites (batch_norm's
  moving statistics) keeps the value place 0 wrote; the other places' writes are dropped
  (Paddle's place 0 shares the parent's memory, the others get copies).
* **merge**: each output given to ``write_output`` is the concatenation, along dim 0 and in
  place order, of the ``R`` places' values, on the executor's device.
* **backward**: each place's ops get their own grad ops, and the gradient of a parameter
  is the sum of the places' gradients (Paddle's ``parallel_do_grad`` accumulates them). An
  input that needs a gradient (computed from parameters before the block) gets the places'
  gradients put back together in its rows; Paddle's op leaves the inputs' gradients unset.

How: when the ``with`` block ends, its recorded ops are unrolled into the global block
once per place, over renamed per-place variables ``<pd name>.place<p>.<name>``, between
``parallel_do_slice`` / ``parallel_do_copy`` ops in front and ``parallel_do_merge`` ops
behind (the slice and merge ops registered here; the copy and write-back ops, which
``fluid.CompiledProgram``'s data-parallel programs use too, in :mod:`torchfluid.static.compiler`).
``append_backward``, the optimizers, ``clone(for_test=True)`` and the executor then need nothing new.
The places run one after another. When fewer rows than places come (``R < P``), the idle
places' copies still run, on place 0's rows, but their outputs are not merged and their
gradients are exactly zero, so the numbers are Paddle's.

Not supported (each a clear error): a ParallelDo inside another one's block, LoD inputs
(``lod_level > 0``), ``minimize``/``append_backward`` inside the block, dygraph mode.
Any other name of this module raises an error saying what to use instead.
"""

from __future__ import annotations

import torch

from .. import unique_name
from .._checks import check_bool
from .._unsupported import unsupported_module_getattr
from ..framework import in_dygraph_mode
from ..ops.registry import register
from ..places import Place, to_place
from ..static import compiler as _compiler  # noqa: F401  (registers parallel_do_copy / parallel_do_write_back)
from ..static.framework import OpRole, Variable, default_main_program
from .device import PlaceList

__all__ = ["ParallelDo"]

_EMPTY = "@EMPTY@"  # the name of an absent grad slot (append_backward's EMPTY_VAR_NAME)


# ---------------------------------------------------------------- the split rule and the ops


def split_sizes(batch: int, num_places: int) -> list[int]:
    """Rows per running place when ``batch`` rows are split across ``num_places`` places
    (Paddle's ``SplitLoDTensor``): ``R = min(batch, num_places)`` places get ``batch // R``
    rows each, the last of all ``num_places`` also gets ``batch % num_places``."""
    if batch <= 0:
        raise ValueError(
            f"ParallelDo: an input has {batch} rows; it needs at least one row to split across {num_places} place(s)"
        )
    used = min(batch, num_places)
    sizes = [batch // used] * used
    if used == num_places:
        sizes[-1] += batch % num_places
    return sizes


def _rows(t: torch.Tensor, what: str) -> int:
    if t.dim() == 0:
        raise ValueError(f"ParallelDo: {what} is a scalar; read_input needs a tensor with a batch dim 0")
    return t.shape[0]


def _slice_bounds(X, Ref, index, num_places):
    sizes = split_sizes(_rows(X, "input"), num_places)
    ref_sizes = split_sizes(_rows(Ref, "the first input"), num_places)
    if len(sizes) != len(ref_sizes):
        raise ValueError(
            f"ParallelDo: the inputs split into different numbers of places: the first input's "
            f"{Ref.shape[0]} rows run on {len(ref_sizes)} place(s), this input's {X.shape[0]} rows on "
            f"{len(sizes)} (feed every input at least {num_places} rows, or the same number)"
        )
    i = index if index < len(sizes) else 0  # an idle place works on place 0's rows, masked later
    start = sum(sizes[:i])
    return start, start + sizes[i], index < len(sizes)


def _slice_grad(X, Ref, Out, dOut, *, index, devices, need=(True, False)):
    start, end, active = _slice_bounds(X, Ref, index, len(devices))
    dX = torch.zeros_like(X)
    if active:
        dX[start:end] = dOut.to(X.device)
    return dX, None


@register("parallel_do_slice", ["Out"], grad=_slice_grad, no_grad_slots=["Ref"])
def parallel_do_slice(X, Ref, *, index, devices):
    """Place ``index``'s rows of ``X`` (``split_sizes``; ``Ref``, the first input, must split into as
    many places), on ``devices[index]``; an idle place (``index >= R``) gets place 0's rows."""
    start, end, _ = _slice_bounds(X, Ref, index, len(devices))
    return X[start:end].to(devices[index])


def _merge_parts(X, Ref):
    used = len(split_sizes(_rows(Ref, "the first input"), len(X)))
    parts = [x.reshape(1) if x.dim() == 0 else x for x in X[:used]]
    for i, x in enumerate(parts[1:], start=1):
        if x.shape[1:] != parts[0].shape[1:] or x.dtype != parts[0].dtype:
            raise ValueError(
                f"ParallelDo: an output is {str(parts[0].dtype).removeprefix('torch.')}{list(parts[0].shape)} on "
                f"place 0 but {str(x.dtype).removeprefix('torch.')}{list(x.shape)} on place {i}; the places' "
                "values must agree in dtype and in every dim but the first to be concatenated"
            )
    return parts


def _merge_grad(X, Ref, Out, dOut, need=None):
    parts = _merge_parts(X, Ref)
    pieces = torch.split(dOut, [p.shape[0] for p in parts])
    grads = [g.reshape(x.shape).to(x.device) for g, x in zip(pieces, X, strict=False)]
    grads += [torch.zeros_like(x) for x in X[len(parts) :]]  # idle places: not merged, no gradient
    flags = need[0] if need is not None else [True] * len(X)
    return [g if f else None for g, f in zip(grads, flags, strict=True)], None


@register("parallel_do_merge", ["Out"], grad=_merge_grad, list_slots=["X"], no_grad_slots=["Ref"])
def parallel_do_merge(X, Ref):
    """The running places' values ``X[:R]`` concatenated along dim 0 on ``Ref``'s device (``R`` from
    the first input ``Ref``'s rows, ``split_sizes``); a 0-d value counts as one row."""
    return torch.cat([p.to(Ref.device) for p in _merge_parts(X, Ref)])


# ---------------------------------------------------------------- ParallelDo


def _as_places(places) -> PlaceList:
    if isinstance(places, Variable):
        raise TypeError(
            f"ParallelDo: places must be what fluid.layers.get_places() returns or a list of places, got "
            f"the program variable {places.name!r}"
        )
    if isinstance(places, (str, Place)) or not isinstance(places, (list, tuple)):
        raise TypeError(
            "ParallelDo: places must be what fluid.layers.get_places() returns or a list of places "
            f"(CPUPlace(), CUDAPlace(i), 'cpu', 'gpu:0', ...), got {places!r}"
        )
    if not places:
        raise ValueError("ParallelDo: places is empty; it needs at least one place")
    return PlaceList(to_place(p, f"ParallelDo: places[{i}]") for i, p in enumerate(places))


class ParallelDo:
    """Run a recorded block once per place on a slice of each input; concatenate its outputs.

    Paddle 1.x's ``ParallelDo(places, use_nccl=False, name=None)``; the module docstring gives the
    exact split, merge and gradient rules.

    ``places``: ``fluid.layers.get_places(...)`` or a list of places (``CPUPlace()``,
    ``CUDAPlace(i)``, ``'cpu'``, ``'gpu:i'``, a ``torch.device``); a GPU place needs a usable GPU.
    ``use_nccl``: a bool, accepted and without effect (Paddle's op sums the gradients itself either way).
    """

    _BEFORE, _IN, _AFTER = "before", "in", "after"

    def __init__(self, places, use_nccl=False, name=None):
        if in_dygraph_mode():
            raise RuntimeError(
                "ParallelDo builds a static program; in dygraph mode run the model on each slice yourself, "
                "or use torch.nn.parallel.DistributedDataParallel"
            )
        self.places = _as_places(places)
        self.use_nccl = check_bool("ParallelDo: use_nccl", use_nccl)
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"ParallelDo: name must be a non-empty str or None, got {name!r}")
        self.name = unique_name.generate("parallel_do") if name is None else name
        self.inputs: list[Variable] = []
        self.outputs: list[Variable] = []
        self._merged: list[Variable] = []
        self._status = self._BEFORE
        self._program = None
        self._block = None

    # -------------------------------------------------------------- recording
    def do(self):
        """The ``with`` block whose layers run once per place (entered once per ParallelDo)."""
        return _BlockGuard(self)

    def _enter(self):
        if self._status != self._BEFORE:
            raise ValueError(
                f"ParallelDo {self.name!r}: do() was entered already; a ParallelDo records one block "
                "(make a new ParallelDo for another)"
            )
        program = default_main_program()
        if program.current_block_idx != 0:
            raise NotImplementedError(
                f"ParallelDo {self.name!r}: do() must be entered in the program's global block; a "
                "ParallelDo (or any block) inside another block is not supported"
            )
        self._program, self._block = program, program._create_block()
        self._status = self._IN

    def _exit(self, failed: bool):
        self._drop_block()
        if failed:
            self._reset()
            return
        try:
            self._merged = self._unroll(self._program, self._block)
        except BaseException:
            self._reset()
            raise
        self._status = self._AFTER

    def _drop_block(self):
        program = self._program
        if program.current_block() is self._block:
            program._rollback()
        if program.blocks and program.blocks[-1] is self._block:
            program.blocks.pop()

    def _reset(self):
        self.inputs, self.outputs, self._merged = [], [], []
        self._status = self._BEFORE

    def _check_in_block(self, method):
        if self._status != self._IN:
            raise ValueError(f"ParallelDo.{method}() must be called inside `with pd.do():`")

    def read_input(self, var):
        """Mark ``var`` (built outside the block, e.g. a ``fluid.layers.data``) to be split along dim 0
        across the places; returns ``var``, which inside the block stands for each place's slice."""
        self._check_in_block("read_input")
        if not isinstance(var, Variable):
            raise TypeError(f"ParallelDo.read_input: expected a static Variable, got {type(var).__name__}")
        if var.name in self._block.vars or var.name not in self._program.global_block().vars:
            raise ValueError(
                f"ParallelDo.read_input: {var.name!r} is not a variable of the program's global block; "
                "read_input takes a variable built before do(), such as a fluid.layers.data"
            )
        if var.shape is not None and len(var.shape) == 0:
            raise ValueError(f"ParallelDo.read_input: {var.name!r} has no dim 0 to split (shape [])")
        if var.lod_level:
            raise NotImplementedError(
                f"ParallelDo.read_input: {var.name!r} is a LoD tensor (lod_level={var.lod_level}); "
                "ParallelDo splits dense tensors only: pad the sequences to one length"
            )
        if all(v.name != var.name for v in self.inputs):
            self.inputs.append(var)
        return var

    def write_output(self, var):
        """Mark ``var`` (computed inside the block) as an output: after the block, ``pd()`` gives the
        places' values concatenated along dim 0 in place order, under ``var``'s name."""
        self._check_in_block("write_output")
        if not isinstance(var, Variable):
            raise TypeError(f"ParallelDo.write_output: expected a static Variable, got {type(var).__name__}")
        if var.name not in self._block.vars:
            raise ValueError(
                f"ParallelDo.write_output: {var.name!r} is not computed inside this do() block; write a "
                "variable that a layer inside the block returned"
            )
        if any(v.name == var.name for v in self.outputs):
            raise ValueError(f"ParallelDo.write_output: {var.name!r} is written already")
        self.outputs.append(var)

    def __call__(self, *args, **kwargs):
        """The merged outputs, in ``write_output`` order: one Variable, or a list of several."""
        if self._status != self._AFTER:
            raise ValueError(
                f"ParallelDo {self.name!r}: pd() gives the outputs only after the `with pd.do():` block has ended"
            )
        if not self._merged:
            raise ValueError(f"ParallelDo {self.name!r} has no output: call pd.write_output(var) inside do()")
        return self._merged[0] if len(self._merged) == 1 else list(self._merged)

    # -------------------------------------------------------------- unrolling
    def _place_name(self, p: int, name: str) -> str:
        return f"{self.name}.place{p}.{name}"

    def _scan(self, block, parent):
        """``(outer variables the block reads before writing them, outer variables it writes)``,
        after checking the recorded block."""
        ops = block.ops
        if not self.inputs:
            raise ValueError(
                f"ParallelDo {self.name!r} has no input: call pd.read_input(var) inside do() for the "
                "data to split across the places"
            )
        for op in ops:
            if op.role & (OpRole.Backward | OpRole.Optimize):
                raise ValueError(
                    f"ParallelDo {self.name!r}: op {op.type} built at {op.where()} is a backward or optimize "
                    "op; call minimize/append_backward on pd()'s merged outputs after the block"
                )
        locals_ = set(block.vars)
        inputs = {v.name for v in self.inputs}
        available, shared, written = set(inputs), [], set()
        for op in ops:
            for n in op.input_arg_names:
                if n == _EMPTY or n in available:
                    continue
                if n in locals_:
                    raise ValueError(
                        f"ParallelDo {self.name!r}: variable {n!r} is read by op {op.type} built at "
                        f"{op.where()} before any op of the block writes it"
                    )
                shared.append(n)
                available.add(n)
            for n in op.output_arg_names:
                if n != _EMPTY:
                    available.add(n)
                    if n not in locals_ and n not in inputs:
                        written.add(n)
        produced = {n for op in ops for n in op.output_arg_names}
        for v in self.outputs:
            if v.name not in produced:
                raise ValueError(f"ParallelDo {self.name!r}: output {v.name!r} is written by no op of the block")
            if v.name in parent.vars:
                raise ValueError(
                    f"ParallelDo {self.name!r}: output {v.name!r} would replace the global block's variable "
                    "of that name"
                )
        names = locals_ | inputs | set(shared) | written
        taken = sorted(self._place_name(p, n) for p in range(len(self.places)) for n in names)
        clash = [n for n in taken if n in parent.vars]
        if clash:
            raise ValueError(
                f"ParallelDo {self.name!r}: the per-place variable {clash[0]!r} exists already; give the "
                "ParallelDo another name="
            )
        return shared, written

    def _unroll(self, program, block):
        """Append the split, per-place and merge ops to the global block; return the merged outputs.
        The global block is left as it was when anything fails."""
        parent = program.global_block()
        shared, written = self._scan(block, parent)
        saved_ops, saved_vars = list(parent.ops), dict(parent.vars)
        try:
            return self._emit(block, parent, shared, written)
        except BaseException:
            parent.ops[:] = saved_ops
            parent.vars.clear()
            parent.vars.update(saved_vars)
            raise

    def _new_var(self, parent, name, like, batch_unknown=False):
        shape = like.shape
        if batch_unknown and shape is not None:
            shape = (-1, *shape[1:])
        return parent.create_var(
            name, shape, like.dtype, stop_gradient=like.stop_gradient, lod_level=like.lod_level, persistable=False
        )

    def _emit(self, block, parent, shared, written):
        devices = [str(p.device) for p in self.places]
        ref = self.inputs[0].name
        names = set(block.vars) | set(shared) | written
        for p in range(len(devices)):
            for n in sorted(names):
                like = block.vars[n] if n in block.vars else parent.var(n)
                self._new_var(parent, self._place_name(p, n), like)
            for v in self.inputs:
                self._new_var(parent, self._place_name(p, v.name), parent.var(v.name), batch_unknown=True)
        for v in self.inputs:
            for p in range(len(devices)):
                parent.append_op(
                    "parallel_do_slice",
                    {"X": [v.name], "Ref": [ref]},
                    {"Out": [self._place_name(p, v.name)]},
                    {"index": p, "devices": devices},
                )
        for p, device in enumerate(devices):
            for n in shared:
                parent.append_op("parallel_do_copy", {"X": [n]}, {"Out": [self._place_name(p, n)]}, {"device": device})

            def rename(slots, p=p):
                return {s: [n if n == _EMPTY else self._place_name(p, n) for n in ns] for s, ns in slots.items()}

            for op in block.ops:
                new = parent.append_op(op.type, rename(op.inputs), rename(op.outputs), dict(op.attrs))
                new.callsite = op.callsite
        for n in shared:
            if n in written:  # place 0's value of a variable built outside survives the run
                parent.append_op("parallel_do_write_back", {"X": [self._place_name(0, n)], "Ref": [n]}, {"Out": [n]})
        merged = []
        for v in self.outputs:
            out = self._new_var(parent, v.name, v, batch_unknown=True)
            parts = [self._place_name(p, v.name) for p in range(len(devices))]
            parent.append_op("parallel_do_merge", {"X": parts, "Ref": [ref]}, {"Out": [out]})
            merged.append(out)
        return merged


class _BlockGuard:
    """``with pd.do():`` (a class, not a generator, so that ops appended when the block ends name
    the user's line as where they were built)."""

    def __init__(self, pd: ParallelDo):
        self._pd = pd

    def __enter__(self):
        self._pd._enter()

    def __exit__(self, exc_type, exc, tb):
        self._pd._exit(failed=exc_type is not None)
        return False


# every other name here is unsupported: say so, and what to use instead
__getattr__ = unsupported_module_getattr("fluid.layers.control_flow")
