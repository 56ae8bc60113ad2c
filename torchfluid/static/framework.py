"""The static IR: plain records (Program > Block > Variable / Operator).

A :class:`Program` holds blocks; block 0 is the global block. A :class:`Variable` is
a name plus metadata (shape with -1 for the batch dim, Paddle dtype name, persistable,
stop_gradient, is_data); values live in a :class:`~torchfluid.static.scope.Scope`,
never here. An :class:`Operator` names an op type of :mod:`torchfluid.ops` with
``{slot: [var names]}`` inputs/outputs, attrs, a role (forward, backward, optimize,
lr schedule) and the user line that built it. Output shapes are inferred when the op
is appended, by running the op's forward on meta tensors.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Mapping

from .. import unique_name
from .._checks import check_int
from ..dtypes import dtype_name
from ..ops import get_op
from ._infer import OpBuildError, callsite, infer_outputs

__all__ = [
    "OpRole",
    "Variable",
    "Parameter",
    "Operator",
    "Block",
    "Program",
    "program_guard",
    "default_main_program",
    "default_startup_program",
    "switch_main_program",
    "switch_startup_program",
    "manual_program_seed",
]


class OpRole:
    """Paddle's ``op_role`` attribute values."""

    Forward = 0x0000
    Backward = 0x0001
    Optimize = 0x0002
    LRSched = 0x0010
    Loss = 0x0100


class Variable:
    """A named tensor slot in a block (no value)."""

    def __init__(
        self,
        block,
        name,
        shape=None,
        dtype="float32",
        persistable=False,
        stop_gradient=False,
        is_data=False,
        lod_level=0,
        type="LOD_TENSOR",
        **kw,
    ):
        self.block = block
        self.name = name
        self.shape = None if shape is None else tuple(int(s) for s in shape)
        self.dtype = dtype_name(dtype)
        self.persistable = bool(persistable)
        self.stop_gradient = bool(stop_gradient)
        self.is_data = bool(is_data)
        self.lod_level = lod_level
        self.type = type
        self.belong_to_optimizer = bool(kw.pop("belong_to_optimizer", False))
        # Paddle's VarDesc flag: the executor checks a fed value's shape and dtype against this
        # variable (fluid.data); fluid.layers.data variables take their feeds as given
        self.need_check_feed = bool(kw.pop("need_check_feed", False))
        if kw:
            raise TypeError(f"Variable {name!r}: unexpected arguments {sorted(kw)}")

    # Paddle spells the program as ``var.block.program``; convenience accessors:
    @property
    def program(self):
        return self.block.program

    def to_string(self, throw_on_error=False, with_details=False) -> str:
        kind = "persist " if self.persistable else ""
        extra = ", stop_gradient=True" if with_details and self.stop_gradient else ""
        return f"{kind}var {self.name} : {self.type}.shape{self.shape}.dtype({self.dtype}){extra}"

    __str__ = to_string

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} shape={self.shape} dtype={self.dtype}>"

    def _copy_to(self, block) -> "Variable":
        v = object.__new__(type(self))
        v.__dict__.update(self.__dict__)
        v.block = block
        return v

    def __hash__(self):  # identity hash: records are used as dict keys and in sets
        return id(self)


class Parameter(Variable):
    """A trainable persistable variable with optimizer attributes (from ParamAttr)."""

    def __init__(
        self,
        block,
        name,
        shape,
        dtype="float32",
        trainable=True,
        optimize_attr=None,
        regularizer=None,
        need_clip=True,
        do_model_average=False,
        initializer=None,
        **kw,
    ):
        kw.setdefault("persistable", True)
        kw.setdefault("stop_gradient", not trainable)
        super().__init__(block, name, shape, dtype, **kw)
        self.trainable = bool(trainable)
        self.optimize_attr = dict(optimize_attr or {"learning_rate": 1.0})
        self.regularizer = regularizer
        self.need_clip = bool(need_clip)
        self.do_model_average = do_model_average
        self.initializer = initializer

    def to_string(self, throw_on_error=False, with_details=False) -> str:
        return "param " + super().to_string(throw_on_error, with_details).replace("persist var ", "")

    __str__ = to_string


def names_of(items, error: str) -> list[str]:
    """The names of ``items`` in order: a Variable gives ``.name``, a str itself; any other
    item raises ``TypeError(error.format(<its type name>))``."""
    out = []
    for it in items:
        if not isinstance(it, (Variable, str)):
            raise TypeError(error.format(type(it).__name__))
        out.append(it if isinstance(it, str) else it.name)
    return out


def _names(value, where) -> list[str]:
    """The names in ``value``: None, a Variable, a name or a (nested) list of them."""
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _names(v, where)]
    return [] if value is None else names_of([value], where + ": expected a Variable, a name or a list of them, got {}")


class Operator:
    """One op: type, ``{slot: [names]}`` inputs/outputs, attrs and where it was built."""

    def __init__(self, block, type, inputs=None, outputs=None, attrs=None, callsite=None):
        self.block = block
        self.type = type
        self.inputs = {k: _names(v, f"op {type} input {k}") for k, v in (inputs or {}).items()}
        self.outputs = {k: _names(v, f"op {type} output {k}") for k, v in (outputs or {}).items()}
        self.attrs = dict(attrs or {})
        self.callsite = callsite

    def input(self, slot: str) -> list[str]:
        return list(self.inputs.get(slot, []))

    def output(self, slot: str) -> list[str]:
        return list(self.outputs.get(slot, []))

    @property
    def input_names(self):
        return list(self.inputs)

    @property
    def output_names(self):
        return list(self.outputs)

    @property
    def input_arg_names(self):
        return [n for ns in self.inputs.values() for n in ns]

    @property
    def output_arg_names(self):
        return [n for ns in self.outputs.values() for n in ns]

    def attr(self, name):
        return self.attrs.get(name)

    def has_attr(self, name) -> bool:
        return name in self.attrs

    def _set_attr(self, name, value):
        self.attrs[name] = value
        self.block.program._bump()

    @property
    def role(self) -> int:
        return self.attrs.get("op_role", OpRole.Forward)

    def where(self) -> str:
        if not self.callsite:
            return "unknown location"
        fname, line, code = self.callsite
        return f"{fname}:{line}" + (f" ({code})" if code else "")

    def to_string(self, throw_on_error=False) -> str:
        fmt = lambda d: ", ".join(f"{k}={v}" for k, v in d.items())  # noqa: E731
        attrs = ", ".join(f"{k} = {_short(v)}" for k, v in sorted(self.attrs.items()) if k != "op_role")
        return f"{{{fmt(self.outputs)}}} = {self.type}(inputs={{{fmt(self.inputs)}}}{', ' if attrs else ''}{attrs})"

    __str__ = to_string

    def __repr__(self):
        return f"<Operator {self.type}>"

    def _copy_to(self, block) -> "Operator":
        return Operator(block, self.type, self.inputs, self.outputs, self.attrs, self.callsite)


def _short(v):
    if isinstance(v, (bool, int, float, str)) or v is None:
        return repr(v) if isinstance(v, str) else str(v)
    if isinstance(v, (list, tuple)) and len(v) <= 8 and all(isinstance(x, (int, float, bool, str)) for x in v):
        return str(list(v))
    return f"<{type(v).__name__}>"


class Block:
    """Variables (by name, in creation order) and ops (in execution order)."""

    def __init__(self, program, idx: int, parent_idx: int = -1):
        self.program = program
        self.idx = idx
        self.parent_idx = parent_idx
        self.vars: dict[str, Variable] = {}
        self.ops: list[Operator] = []

    def var(self, name: str) -> Variable:
        if not isinstance(name, str):
            raise TypeError(f"var(name): name must be a str, got {type(name).__name__}")
        v = self.vars.get(name)
        if v is None:
            raise ValueError(f"var {name!r} is not in block {self.idx} of this program")
        return v

    def has_var(self, name: str) -> bool:
        return name in self.vars

    def _find_var_recursive(self, name):
        b = self
        while b is not None:
            if name in b.vars:
                return b.vars[name]
            b = self.program.blocks[b.parent_idx] if b.parent_idx >= 0 else None
        return None

    def create_var(self, name=None, shape=None, dtype="float32", **kw) -> Variable:
        if name is None:
            name = unique_name.generate("_generated_var")
        if name in self.vars:
            return self.vars[name]
        v = Variable(self, name, shape, dtype, **kw)
        self.vars[name] = v
        self.program._bump()
        return v

    def create_parameter(self, name, shape, dtype="float32", **kw) -> Parameter:
        """A Parameter ``name``; creating an existing parameter again (same shape and dtype)
        replaces its record with one carrying the new attributes, as Paddle does."""
        if shape is None or any(int(s) <= 0 for s in shape):
            raise ValueError(f"parameter {name!r}: shape must be all positive, got {shape}")
        old = self.vars.get(name)
        if old is not None and (
            not isinstance(old, Parameter)
            or list(old.shape) != [int(s) for s in shape]
            or old.dtype != dtype_name(dtype)
        ):
            raise ValueError(
                f"parameter name {name!r} already exists in block {self.idx} as {old!r}; "
                f"a parameter of shape {list(shape)} dtype {dtype_name(dtype)} cannot take it"
            )
        p = Parameter(self, name, shape, dtype, **kw)
        self.vars[name] = p
        self.program._bump()
        return p

    def all_parameters(self) -> list[Parameter]:
        return [v for v in self.vars.values() if isinstance(v, Parameter)]

    def iter_parameters(self):
        return iter(self.all_parameters())

    def _make_op(self, type, inputs, outputs, attrs, infer=True) -> Operator:
        opdef = get_op(type)  # unknown types fail here, at the user's line
        for what, slots in (("inputs", inputs), ("outputs", outputs)):
            if slots is not None and not isinstance(slots, Mapping):
                raise TypeError(
                    f"op {type}: {what} must be a dict slot -> Variable, name or list of them, "
                    f"got {slots.__class__.__name__} {slots!r}"
                )
        attrs = dict(attrs or {})
        attrs.setdefault("op_role", self.program._op_role)
        op = Operator(self, type, inputs, outputs, attrs, callsite())
        try:  # its slots as the op type's record gives them (required, known, single or list)
            opdef.check_slots(op.inputs, op.outputs, attrs)
        except ValueError as e:
            raise OpBuildError(f"{e} (op built at {op.where()})") from None
        for n in op.input_arg_names:
            if n != "@EMPTY@" and self._find_var_recursive(n) is None:
                raise ValueError(f"op {type} built at {op.where()}: input variable {n!r} is not in the program")
        made = [n for n in dict.fromkeys(op.output_arg_names) if n != "@EMPTY@" and self._find_var_recursive(n) is None]
        for n in made:
            self.create_var(n, None)
        if infer:
            try:
                infer_outputs(op)
            except Exception:
                for n in made:  # an op that cannot be built leaves the block as it was
                    del self.vars[n]
                raise
        return op

    def append_op(self, type, inputs=None, outputs=None, attrs=None, infer=True) -> Operator:
        return self._insert_op(len(self.ops), type, inputs, outputs, attrs, infer)

    def _insert_op(self, index, type, inputs=None, outputs=None, attrs=None, infer=True) -> Operator:
        op = self._make_op(type, inputs, outputs, attrs, infer)
        self.ops.insert(index, op)
        self.program._bump()
        return op

    def _prepend_op(self, type, inputs=None, outputs=None, attrs=None) -> Operator:
        return self._insert_op(0, type, inputs, outputs, attrs)

    def _remove_op(self, index: int, sync=True) -> None:
        """Remove the op at ``index`` (Paddle's ``Block._remove_op``); runs after it, of this
        program or a CompiledProgram of it, no longer run it."""
        n = len(self.ops)
        if isinstance(index, bool) or not isinstance(index, int) or not -n <= index < n:
            raise IndexError(
                f"_remove_op: index must be an int in [{-n}, {n}) (block {self.idx} has {n} ops), got {index!r}"
            )
        del self.ops[index]
        self.program._bump()

    def _remove_var(self, name: str, sync=True) -> None:
        """Remove variable ``name`` (Paddle's ``Block._remove_var``: ops that still name it are
        left as they are, to be removed too)."""
        if name not in self.vars:
            raise ValueError(f"_remove_var: no variable {name!r} in block {self.idx}")
        del self.vars[name]
        self.program._bump()

    def to_string(self, throw_on_error=False, with_details=False) -> str:
        lines = [f"block {self.idx} (parent {self.parent_idx}) {{"]
        lines += ["    " + v.to_string(with_details=with_details) for v in self.vars.values()]
        lines += ["    " + op.to_string() for op in self.ops]
        return "\n".join(lines + ["}"])

    __str__ = to_string


_program_ids = itertools.count()


def prune_ops(ops, target_names, target_ops=(), given=()):
    """The ops (in order) needed to compute ``target_names`` and run ``target_ops`` from
    the variables ``given`` (fed: no op is kept to compute them)."""
    needed = set(target_names)
    keep_ids = {id(o) for o in target_ops}
    kept = []
    for op in reversed(ops):
        if id(op) in keep_ids or any(n in needed and n not in given for n in op.output_arg_names):
            kept.append(op)
            needed.update(op.input_arg_names)
    return kept[::-1]


class Program:
    """A list of blocks; block 0 is the global block.

    ``random_seed`` (0: none; new Programs start from the seed ``global_seed`` set) seeds
    every initializer drawn for this program, as in Paddle: each initializer op whose own
    ``seed`` is 0 draws from a fresh generator seeded with ``random_seed``, so with a seed set
    every parameter of the same shape and initializer starts with the same values.
    """

    _global_seed = 0

    def __init__(self):
        self.blocks = [Block(self, 0)]
        self.current_block_idx = 0
        self.random_seed = Program._global_seed
        self._version = 0
        self._uid = next(_program_ids)
        self._op_role = OpRole.Forward
        self._plan_cache: dict = {}

    def _bump(self):
        self._version += 1

    @property
    def desc(self):
        """Paddle's ``program.desc``: ``desc.serialize_to_string()`` is this program as JSON
        text, which :meth:`parse_from_string` reads back (:mod:`torchfluid.static.program_desc`)."""
        return _program_codec()[0](self)

    @staticmethod
    def parse_from_string(binary_str) -> "Program":
        """The Program that ``desc.serialize_to_string()`` described (``str`` or UTF-8 ``bytes``)."""
        return _program_codec()[1](binary_str)

    def global_seed(self, seed: int = 0) -> None:
        """Set ``random_seed`` of this program and of every Program made after it to ``seed``."""
        seed = check_int("seed", seed, lo=0)
        Program._global_seed = seed
        self.random_seed = seed

    def cached_plan(self, key, build):
        """The executor's plan for ``key`` (feeds, fetches, ...) at this program's current
        version, made by ``build()`` on first use (at most 64 kept; any edit to the
        program starts afresh)."""
        key = (self._version, key)
        plan = self._plan_cache.get(key)
        if plan is None:
            if len(self._plan_cache) > 64:
                self._plan_cache.clear()
            plan = self._plan_cache[key] = build()
        return plan

    def _create_block(self, parent_idx: int | None = None) -> Block:
        """Paddle's ``Program._create_block``: append a block whose parent is ``parent_idx``
        (default: the current block) and make it the current block, where layers then record
        their ops; :meth:`_rollback` makes the parent current again."""
        parent = self.current_block_idx if parent_idx is None else parent_idx
        block = Block(self, len(self.blocks), parent)
        self.blocks.append(block)
        self.current_block_idx = block.idx
        self._bump()
        return block

    def _rollback(self) -> None:
        """Paddle's ``Program._rollback``: make the current block's parent current again."""
        self.current_block_idx = self.current_block().parent_idx

    def global_block(self) -> Block:
        return self.blocks[0]

    def current_block(self) -> Block:
        return self.blocks[self.current_block_idx]

    def block(self, index: int) -> Block:
        return self.blocks[index]

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def list_vars(self):
        for b in self.blocks:
            yield from b.vars.values()

    def all_parameters(self) -> list[Parameter]:
        return [p for b in self.blocks for p in b.all_parameters()]

    @contextlib.contextmanager
    def _role_guard(self, role):
        old, self._op_role = self._op_role, role
        try:
            yield
        finally:
            self._op_role = old

    def _backward_role_guard(self):
        return self._role_guard(OpRole.Backward)

    def _optimized_guard(self, param_and_grads=None):
        return self._role_guard(OpRole.Optimize)

    def _lr_schedule_guard(self, is_with_opt=False):
        return self._role_guard(OpRole.LRSched)

    def clone(self, for_test: bool = False) -> "Program":
        """A copy; ``for_test=True`` keeps only forward ops (drops backward, optimize and
        lr-schedule ops and the variables only they use) and sets ``is_test`` on the ops
        that have it (dropout stops dropping, batch_norm normalises with its moving
        statistics). A 2.x scheduler attached to the program (``lr_sheduler``) goes with
        the copy when its learning-rate variable does."""
        p = Program()
        p.random_seed = self.random_seed
        p.blocks = []
        for b in self.blocks:
            nb = Block(p, b.idx, b.parent_idx)
            forward = (OpRole.Forward, OpRole.Forward | OpRole.Loss)
            nb.ops = [op._copy_to(nb) for op in b.ops if not for_test or op.role in forward]
            for op in nb.ops:
                if for_test and "is_test" in op.attrs:  # dropout scales, batch_norm uses its moving statistics
                    op.attrs["is_test"] = True
            used = {n for op in nb.ops for n in op.input_arg_names + op.output_arg_names}
            for name, v in b.vars.items():
                if not for_test or ((name in used or v.persistable or v.is_data) and not v.belong_to_optimizer):
                    nb.vars[name] = v._copy_to(nb)
            p.blocks.append(nb)
        sched = getattr(self, "lr_sheduler", None)  # Paddle's hook (sic): a 2.x LRScheduler that sets its
        if sched is not None and getattr(sched, "_var_name", None) in p.global_block().vars:  # variable each run
            p.lr_sheduler = sched
        return p

    def _prune_with_input(self, feeded_var_names, targets) -> "Program":
        """Paddle's ``Program._prune_with_input``: a copy whose global block keeps only the ops
        that compute ``targets`` (Variables or names) from ``feeded_var_names`` (names; no op
        computing them is kept) and the variables those ops, the feeds and the targets use.
        Every name must be a variable of the global block."""
        feeds = [feeded_var_names] if isinstance(feeded_var_names, str) else feeded_var_names
        if not isinstance(feeds, (list, tuple)) or not all(isinstance(n, str) for n in feeds):
            raise ValueError(f"_prune_with_input: feeded_var_names must be names (str), got {feeded_var_names!r}")
        items = targets if isinstance(targets, (list, tuple)) else [targets]
        names = []
        for t in items:
            if not isinstance(t, (Variable, str)):
                raise ValueError(f"_prune_with_input: targets must be Variables or names, got {type(t).__name__}")
            names.append(t if isinstance(t, str) else t.name)
        block = self.global_block()
        unknown = [n for n in [*feeds, *names] if not block.has_var(n)]
        if unknown:
            raise ValueError(f"_prune_with_input: {unknown[0]!r} is not a variable of the program's global block")
        p = self.clone()
        nb = p.global_block()
        nb.ops = prune_ops(nb.ops, names, given=set(feeds))
        used = {n for op in nb.ops for n in op.input_arg_names + op.output_arg_names} | set(feeds) | set(names)
        nb.vars = {n: v for n, v in nb.vars.items() if n in used}
        p._bump()
        return p

    def to_string(self, throw_on_error=False, with_details=False) -> str:
        return "\n".join(b.to_string(throw_on_error, with_details) for b in self.blocks)

    __str__ = to_string

    def __repr__(self):
        b = self.global_block()
        return f"<Program {self._uid}: {len(b.vars)} vars, {len(b.ops)} ops>"


_PROGRAM_CODEC: list = []


def register_program_codec(describe, parse) -> None:
    """Install ``describe(program) -> desc`` and ``parse(text) -> Program`` behind
    ``Program.desc`` / ``Program.parse_from_string`` (done by :mod:`.program_desc`)."""
    _PROGRAM_CODEC[:] = [(describe, parse)]


def _program_codec():
    if not _PROGRAM_CODEC:
        raise RuntimeError("no program description codec: import torchfluid.static.program_desc")
    return _PROGRAM_CODEC[0]


_main_program = Program()
_startup_program = Program()


def manual_program_seed(seed: int) -> None:
    """Paddle's ``paddle.framework.random._manual_program_seed``: set ``random_seed`` of the
    default main and startup programs and the seed of every Program made later to ``seed``.

    Parameters then start from initializers seeded with ``seed`` in both modes (dygraph
    layers read the default main program's seed)."""
    seed = check_int("seed", seed, lo=0)
    default_main_program().random_seed = seed
    default_startup_program().random_seed = seed
    Program().global_seed(seed)


def default_main_program() -> Program:
    return _main_program


def default_startup_program() -> Program:
    return _startup_program


def switch_main_program(program: Program) -> Program:
    global _main_program
    old, _main_program = _main_program, program
    return old


def switch_startup_program(program: Program) -> Program:
    global _startup_program
    old, _startup_program = _startup_program, program
    return old


@contextlib.contextmanager
def program_guard(main_program: Program, startup_program: Program | None = None):
    """Make ``main_program`` (and ``startup_program`` if given) the defaults in the body."""
    if not isinstance(main_program, Program):
        raise TypeError(f"program_guard: main_program must be a Program, got {type(main_program).__name__}")
    if startup_program is not None and not isinstance(startup_program, Program):
        raise TypeError(
            f"program_guard: startup_program must be a Program or None, got {type(startup_program).__name__}"
        )
    old_main = switch_main_program(main_program)
    old_start = switch_startup_program(startup_program) if startup_program is not None else None
    try:
        yield
    finally:
        switch_main_program(old_main)
        if startup_program is not None:
            switch_startup_program(old_start)
