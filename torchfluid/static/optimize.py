"""The optimizer in a program: what ``minimize`` appends, and the op that runs it.

Front door. Importing this module registers it for program records (``Variable`` and
so ``Parameter``) with :func:`torchfluid.optimizer.base.register_front_door`: an
optimizer's ``minimize``, ``backward``, ``apply_gradients``, ``apply_optimize`` and
``append_regularization_ops`` called with a loss ``Variable`` or ``Parameter`` records
come here, with the optimizer's frozen :class:`~torchfluid.optimizer.pipeline.UpdateConfig`
(never the optimizer object). The mode is decided there, once, by the records' class.

What ``minimize`` appends: the grad ops (:func:`append_backward`), then ONE optimize op
for all the parameters, sorted by name (Paddle's order), of type
``config.rule.op_type`` (``rmsprop``, ``sgd``, ``momentum``, ``adam``, ``adagrad``)::

    inputs   Param [p...], Grad [g...], LearningRate, State [accumulators, param-major],
             MasterParam [float32 master weights of the multi-precision parameters],
             Counter [the schedule step counters LearningRate is computed from],
             RoundingStep [with bfloat16 state: the stochastic-rounding counter],
             HyperParam [the 1-element variables given as hyper-parameters, e.g. Adam's
             beta1 / beta2 / epsilon: Paddle's Beta1Tensor / Beta2Tensor / EpsilonTensor]
    outputs  ParamOut, StateOut, MasterParamOut, CounterOut, RoundingStepOut (the same variables)
    attrs    section: an OptimizeSection (frozen: the config, the parameter names, their
             lr multipliers, regularizers, need_clip flags, the accumulator names and the
             names of the hyper-parameters HyperParam feeds)

At run time the op calls :func:`~torchfluid.optimizer.pipeline.run_update` once with the
scope's tensors as the (param, grad, state) values: prepare (non-finite policy,
maximize, precision), clip plan, regularization and the kernel -- the fused kernel when
eligible -- all in that one call, exactly as eager ``step()`` runs them. The lr of a
parameter is ``LearningRate * lr_mult * ParamAttr learning_rate``. A hyper-parameter fed
by ``HyperParam`` is the scope's tensor of that run, read (and checked) by ``run_update``
as an eager tensor hyper-parameter is, so a program may change it between runs; the
configuration holds the variable, never a value.

Accumulators are persistable variables ``<param>_<acc>_0`` initialized in the startup
program to the rule's initial values; with ``multi_precision`` each float16/bfloat16
parameter gets a persistable float32 master ``<param>_fp32_master_0``, cast from the
parameter's initial value in the startup program (saved and loaded with the others).
With ``state_dtype=torch.bfloat16`` the op's stochastic rounding draws its bits from
generators seeded by a counter of applied updates (see
:mod:`torchfluid.optimizer.precision`): that counter is the persistable int64 ``[1]``
variable ``stochastic_rounding_step_N`` (0 in the startup program), so a program saved
and loaded (``save_persistables`` / ``load_persistables``) continues bit for bit. The
fused path's flat buffers are not saved: they are a cache of the state variables,
rebuilt when the scope's tensors change.
A float learning rate becomes a persistable float32 variable ``learning_rate_N`` (as in
Paddle; float64 for float64 parameters); a ``fluid.layers.*_decay`` variable is used as
it is. The op's forward is :func:`optimize`, registered here for the five
op types (the ops package stays below the optimizer layer, so it cannot hold it).
"""

from __future__ import annotations

import dataclasses
import numbers
import sys
import weakref

import torch

from .. import unique_name
from ..dtypes import dtype_name, torch_dtype
from ..lr.scheduler import LRScheduler
from ..ops.registry import register
from ..optimizer.base import register_front_door
from ..optimizer.fused import FusedUpdate
from ..optimizer.pipeline import Item, UpdateConfig, UpdateRuntime, run_update
from ..optimizer.precision import Precision
from ..regularizer import L1Decay, L2Decay
from .backward import append_backward
from .clip import append_gradient_clip_ops
from .framework import Program, Variable, default_main_program, default_startup_program, program_guard

__all__ = [
    "minimize",
    "backward",
    "apply_gradients",
    "apply_optimize",
    "append_regularization_ops",
    "accumulator_vars",
    "accumulator_records",
    "learning_rate_var",
    "state_var_names",
    "OptimizeSection",
    "OPTIMIZE_OP_TYPES",
    "optimize",
]

OPTIMIZE_OP_TYPES = ("rmsprop", "sgd", "momentum", "adam", "adagrad", "adamw", "adamax", "adadelta", "lamb")
_INPUTS = ("Param", "Grad", "LearningRate", "State", "MasterParam", "Counter", "RoundingStep", "HyperParam")
_READ_ONLY = ("Grad", "LearningRate", "HyperParam")
_OUTPUTS = tuple(s + "Out" for s in _INPUTS if s not in _READ_ONLY)  # the in-place state slots


@dataclasses.dataclass(frozen=True, eq=False)
class OptimizeSection:
    """What one optimize op updates and how: the optimizer's frozen configuration and,
    per parameter in op order, its name, lr multiplier, regularizer and ``need_clip``;
    ``accumulators``: the state names each parameter has in the op's ``State`` slot."""

    config: UpdateConfig
    names: tuple[str, ...]
    lr_mults: tuple[float, ...]
    regularizers: tuple
    need_clip: tuple[bool, ...]
    accumulators: tuple[str, ...]
    master_index: tuple[int, ...] = ()  # the parameters with a float32 master weight (MasterParam)
    counter_steps: tuple[float, ...] = ()  # per Counter input: what its increment op adds each run
    hyper_names: tuple[str, ...] = ()  # per HyperParam input: the hyper-parameter it holds

    def __repr__(self) -> str:
        return f"OptimizeSection({type(self.config.rule).__name__}, {len(self.names)} params)"


def _refuse_a_second_update(config, program, names=None) -> None:
    """``ValueError`` if ``config``'s update of any of ``names`` (None: of any parameter)
    is in ``program`` already (Paddle: "Accumulator ... already exists for parameter ...")."""
    for op in program.global_block().ops:
        section = op.attrs.get("section") if op.type in OPTIMIZE_OP_TYPES else None
        if section is None or section.config is not config:
            continue
        twice = sorted(set(section.names) if names is None else set(section.names) & set(names))
        if twice:
            raise ValueError(
                f"this optimizer's update of {twice} is already in this program (its {op.type} op, appended by an "
                "earlier minimize / apply_gradients): a second one would update them twice per run; build another "
                "optimizer for a second update"
            )


def minimize(config, loss, startup_program=None, parameter_list=None, no_grad_set=None):
    """``backward`` then ``apply_optimize``; returns ``(optimize_ops, params_grads)``."""
    if isinstance(loss, Variable):  # refused before the grad ops are appended
        names = None if parameter_list is None else [p if isinstance(p, str) else p.name for p in parameter_list]
        _refuse_a_second_update(config, loss.block.program, names)
    params_grads = backward(loss, startup_program, parameter_list, no_grad_set)
    optimize_ops = apply_optimize(config, loss, startup_program, params_grads)
    return optimize_ops, params_grads


def backward(loss, startup_program=None, parameter_list=None, no_grad_set=None, callbacks=None):
    """Append the grad ops of ``loss``; return ``[(param, grad_var)]``."""
    if not isinstance(loss, Variable):
        raise TypeError(f"backward: loss must be a static Variable, got {type(loss).__name__}")
    with program_guard(loss.block.program, startup_program):  # None: keep the default startup program
        return append_backward(loss, parameter_list, no_grad_set, callbacks)


def apply_optimize(config, loss, startup_program, params_grads):
    """Second half of minimize: the optimize op."""
    with program_guard(loss.block.program, startup_program):
        return apply_gradients(config, params_grads)


def apply_gradients(config, params_grads):
    """Append the optimize op for ``params_grads`` (sorted by parameter name); return ``[op]``.
    With no gradient it appends nothing but, as Paddle, still makes the learning-rate
    variable in the default main program (a 2.x scheduler's value is set in it each run)."""
    params_grads = sorted(((p, g) for p, g in params_grads if g is not None), key=lambda pg: pg[0].name)
    if not params_grads:
        _learning_rate_var(config, default_main_program(), default_startup_program(), [])
        return []
    program = params_grads[0][0].block.program
    _refuse_a_second_update(config, program, [p.name for p, _ in params_grads])
    if config.clip is None:  # the optimizer's grad_clip wins over set_gradient_clip, as in Paddle
        params_grads = append_gradient_clip_ops(params_grads)
    with program._optimized_guard():
        return [_append_section(config, params_grads, program)]


def append_regularization_ops(params_grads, regularization=None):
    """Regularize each (param, grad) whose param (its own ``regularizer`` first) or
    ``regularization`` has a regularizer; the grad variable is updated in place.

    As in Paddle, ``L2Decay(c)`` appends ``scale(p, scale=c)`` then ``sum([g, decay])``
    into ``g``; ``L1Decay(c)`` appends ``sign(p)``, ``scale(., scale=c)`` then the ``sum``.
    These compute ``g + p * c`` / ``g + sign(p) * c`` with the same roundings as the
    regularizer itself (bit for bit). Other regularizers, and a grad whose dtype differs
    from its param's, get one ``regularization`` op calling ``reg(param, grad)``."""
    out = [(p, g) for p, g in params_grads]
    for p, g in out:
        reg = getattr(p, "regularizer", None) or regularization
        if reg is None or g is None:
            continue
        if not callable(reg):
            raise TypeError(f"regularizer of {p.name!r} must be callable reg(param, grad), got {reg!r}")
        with p.block.program._optimized_guard():
            _append_decay_ops(g.block, p, g, reg)
    return out


def _append_decay_ops(block, p, g, reg) -> None:
    if type(reg) not in (L1Decay, L2Decay) or p.dtype != g.dtype:
        block.append_op("regularization", {"Param": [p], "Grad": [g]}, {"Out": [g]}, {"regularizer": reg})
        return
    x = p
    if type(reg) is L1Decay:
        x = block.create_var(unique_name.generate(f"{p.name}@sign"), p.shape, p.dtype)
        block.append_op("sign", {"X": [p]}, {"Out": [x]})
    decay = block.create_var(unique_name.generate(f"{p.name}@decay"), p.shape, p.dtype)
    block.append_op("scale", {"X": [x]}, {"Out": [decay]}, {"scale": reg.coeff_for(torch_dtype(p.dtype))})
    block.append_op("sum", {"X": [g, decay]}, {"Out": [g]})


def _optimizer_var(block, key, shape, dtype):
    """A new persistable variable ``<key>_N`` that belongs to the optimizer."""
    return block.create_var(
        unique_name.generate(key), list(shape), dtype, persistable=True, stop_gradient=True, belong_to_optimizer=True
    )


def _startup_op(startup, var, op_type, inputs, attrs) -> None:
    """Append op ``op_type`` that sets persistable ``var`` to the startup program."""
    sblock = startup.global_block()
    svar = sblock.create_var(var.name, var.shape, var.dtype, persistable=True)
    sblock.append_op(op_type, inputs, {"Out": [svar]}, attrs)


def _fill_startup(startup, var, value) -> None:
    """Initialize persistable ``var`` to the constant ``value`` in the startup program."""
    _startup_op(
        startup, var, "fill_constant", {}, {"shape": list(var.shape), "dtype": var.dtype, "value": float(value)}
    )


# the programs an optimize op was appended to (for accumulator_records), held weakly
_OPTIMIZED: weakref.WeakSet = weakref.WeakSet()

# program -> [(weak reference to a config, the name of its learning-rate variable)], for
# learning_rate_var (names and weak references: a Variable would keep its program alive)
_LR_VARS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _learning_rate_var(config, program, startup, params):
    """The program variable holding the learning rate of ``config``: float32 (Paddle's),
    float64 when a parameter is float64 (so its lr is not rounded to float32)."""
    var = _new_learning_rate_var(config, program, startup, params)
    _LR_VARS.setdefault(program, []).append((weakref.ref(config), var.name))
    return var


def _new_learning_rate_var(config, program, startup, params):
    lr = config.learning_rate
    if isinstance(lr, Variable):
        return lr
    scheduler = isinstance(lr, LRScheduler)
    if not isinstance(lr, numbers.Real) and not scheduler:
        raise TypeError(
            f"static mode: {type(lr).__name__} is a dygraph learning-rate schedule; in static mode pass a float, "
            "a fluid.layers.*_decay(...) variable or a 2.x paddle.optimizer.lr scheduler as learning_rate"
        )
    dtype = "float64" if any(p.dtype == "float64" for p in params) else "float32"
    var = program.global_block().create_var(
        unique_name.generate("learning_rate"), [1], dtype, persistable=True, stop_gradient=True
    )
    _fill_startup(startup, var, float(lr()) if scheduler else float(lr))
    if scheduler:  # Paddle's hook (sic): the Executor sets var to scheduler() before each run
        program.lr_sheduler = lr
        lr._var_name = var.name
    return var


def _schedule_counters(program, lr_var, taken) -> list[tuple[str, float]]:
    """``[(counter name, step)]``: the step counters (variables an ``increment`` op advances
    in place, such as ``@LR_DECAY_COUNTER@``) that ``lr_var`` is computed from, found by
    walking its producing ops back; counters in ``taken`` (owned by an earlier optimize
    op) are left out."""
    ops = program.global_block().ops
    steps = {
        op.input("X")[0]: float(op.attr("step"))
        for op in ops
        if op.type == "increment" and op.input("X") and op.input("X") == op.output("Out")
    }
    producers = {}
    for op in ops:
        if op.type in OPTIMIZE_OP_TYPES:
            continue
        for n in op.output_arg_names:
            producers.setdefault(n, op)
    out, seen, todo = [], set(), [lr_var.name]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        if n in steps:
            if n not in taken:
                out.append((n, steps[n]))
            continue
        op = producers.get(n)
        if op is not None:
            todo.extend(op.input_arg_names)
    return sorted(out)


def _precision(config) -> Precision:
    return Precision(multi_precision=config.multi_precision, state_dtype=config.state_dtype, nonfinite=config.nonfinite)


def _create_accumulators(config, param, startup):
    """``{acc name: Variable}`` persistable, initialized in ``startup`` to the rule's values."""
    block = param.block
    dtype = torch_dtype(param.dtype)
    init = config.rule.new_state(
        torch.zeros(param.shape, dtype=dtype), config.hparams, _precision(config).state_dtype_for(dtype)
    )
    accs = {}
    for name, t in init.items():
        var = accs[name] = _optimizer_var(block, f"{param.name}_{name}", t.shape, dtype_name(t.dtype))
        flat = t.reshape(-1)
        if flat.numel() and bool((flat == flat[0]).all()):
            _fill_startup(startup, var, float(flat[0]))
        else:
            attrs = {"shape": list(t.shape), "dtype": var.dtype, "values": flat.tolist()}
            _startup_op(startup, var, "assign_value", {}, attrs)
    return accs


def _master_var(param, startup):
    """The float32 master weight of a multi-precision parameter: a persistable variable
    ``<param>_fp32_master_0`` (Paddle's name), set in ``startup`` from the parameter's
    initial value."""
    var = _optimizer_var(param.block, f"{param.name}_fp32_master", param.shape, "float32")
    _startup_op(startup, var, "cast", {"X": [param.name]}, {"in_dtype": param.dtype, "out_dtype": "float32"})
    return var


def _append_section(config, params_grads, program):
    if config.differentiable:
        raise ValueError(
            "differentiable=True records eager updates for autograd; a program's optimize op runs "
            "outside autograd (build the optimizer with differentiable=False for static mode)"
        )
    op_type = config.rule.op_type
    if op_type not in OPTIMIZE_OP_TYPES:
        raise ValueError(
            f"no optimize op for rule {type(config.rule).__name__} (op type {op_type!r}); "
            f"allowed: {', '.join(OPTIMIZE_OP_TYPES)}"
        )
    params = [p for p, _ in params_grads]
    startup = default_startup_program()
    lr_var = _learning_rate_var(config, program, startup, params)
    accumulators = tuple(config.rule.accumulators(config.hparams))
    state_vars = []
    for p in params:
        accs = _create_accumulators(config, p, startup)
        state_vars.extend(accs[name] for name in accumulators)
    precision = _precision(config)
    masters = [
        (i, _master_var(p, startup))
        for i, p in enumerate(params)
        if precision.has_master(torch.empty(0, dtype=torch_dtype(p.dtype)))
    ]
    hyper = _hyper_param_vars(config)
    taken = {n for op in program.global_block().ops if op.type in OPTIMIZE_OP_TYPES for n in op.input("Counter")}
    counters = _schedule_counters(program, lr_var, taken)
    section = OptimizeSection(
        config=config,
        names=tuple(p.name for p in params),
        lr_mults=tuple(float(p.optimize_attr.get("learning_rate", 1.0)) for p in params),
        regularizers=tuple(getattr(p, "regularizer", None) or config.regularization for p in params),
        need_clip=tuple(bool(getattr(p, "need_clip", True)) for p in params),
        accumulators=accumulators,
        master_index=tuple(i for i, _ in masters),
        counter_steps=tuple(step for _, step in counters),
        hyper_names=tuple(hyper),
    )
    rounding = []
    if precision.stochastic_rounding:
        rounding = [_optimizer_var(program.global_block(), "stochastic_rounding_step", [1], "int64")]
        _fill_startup(startup, rounding[0], 0)
    inputs = {
        "Param": params,
        "Grad": [g for _, g in params_grads],
        "LearningRate": [lr_var],
        "State": state_vars,
        "MasterParam": [v for _, v in masters],
        "Counter": [n for n, _ in counters],
        "RoundingStep": rounding,
        "HyperParam": list(hyper.values()),
    }
    outputs = {slot: inputs[slot[: -len("Out")]] for slot in _OUTPUTS}  # each state slot is updated in place
    op = program.global_block().append_op(op_type, inputs, outputs, {"section": section})
    _OPTIMIZED.add(program)
    return op


def _hyper_param_vars(config) -> dict[str, Variable]:
    """``{name: variable}``: the hyper-parameters of ``config`` its rule lets be tensors
    (``rule.tensor_hparams``) that are program variables, each of one floating-point element."""
    out = {}
    for name in getattr(config.rule, "tensor_hparams", ()):
        var = config.hparams.get(name)
        if not isinstance(var, Variable):
            continue
        if any(d != 1 for d in var.shape) or not torch_dtype(var.dtype).is_floating_point:
            raise ValueError(
                f"{name} is variable {var.name!r} of shape {list(var.shape)} and dtype {var.dtype}; allowed: a "
                "variable of one floating-point element (shape [1]), read at each run"
            )
        out[name] = var
    return out


def learning_rate_var(config, program=None):
    """The learning-rate variable ``config``'s update uses in ``program`` (default: the
    default main program), or None when it made none there (Paddle's
    ``optimizer._global_learning_rate(program)``). ``config`` is matched by identity: an
    optimizer whose settings changed since ``minimize`` has a new one."""
    program = default_main_program() if program is None else program
    if not isinstance(program, Program):
        raise TypeError(f"_global_learning_rate(program=...): expected a Program or None, got {type(program).__name__}")
    names = [name for ref, name in _LR_VARS.get(program, ()) if ref() is config]
    return program.global_block().var(names[-1]) if names else None


def learning_rate_holders(config) -> list[str]:
    """Where the learning rate of ``config``'s updates lives outside the optimizer: one line
    per learning-rate variable those updates read in a program still alive (``set_lr``
    cannot change it: the startup program or the program's own ops write it)."""
    return [
        f"the variable {name!r} of a Program it was minimized into"
        for program in list(_LR_VARS)
        for ref, name in _LR_VARS.get(program, ())
        if ref() is config
    ]


def state_var_names(config, program=None) -> list[str]:
    """The optimizer-state variables (accumulators, then master weights, per op) of the
    optimize ops ``config`` appended to ``program`` (default: the default main program)."""
    block = (default_main_program() if program is None else program).global_block()
    ops = [op for op in block.ops if op.type in OPTIMIZE_OP_TYPES and op.attr("section").config is config]
    return [n for op in ops for slot in ("State", "MasterParam") for n in op.input(slot)]


def accumulator_records(config, program=None) -> dict[str, dict[str, Variable]]:
    """``{accumulator: {parameter name: variable}}`` of the optimize ops ``config`` appended
    to ``program`` (None: to every program it was minimized into that is still alive):
    Paddle's ``optimizer._accumulators`` layout."""
    programs = list(_OPTIMIZED) if program is None else [program]
    out: dict[str, dict[str, Variable]] = {}
    for prog in programs:
        block = prog.global_block()
        for op in block.ops:
            section = op.attrs.get("section")
            if op.type not in OPTIMIZE_OP_TYPES or not isinstance(section, OptimizeSection):
                continue
            if section.config is not config:
                continue
            state, n = op.input("State"), len(section.accumulators)
            for i, name in enumerate(section.names):  # State is param-major
                for acc, var_name in zip(section.accumulators, state[i * n : (i + 1) * n], strict=True):
                    out.setdefault(acc, {})[name] = block.var(var_name)
    return out


def accumulator_vars(program) -> dict[str, dict[str, str]]:
    """``{param name: {accumulator name: variable name}}`` from a program's optimize ops."""
    out = {}
    for op in program.global_block().ops:
        section = op.attrs.get("section")
        if not isinstance(section, OptimizeSection):
            continue
        state = op.input("State")
        n = len(section.accumulators)
        for i, name in enumerate(section.names):  # State is param-major
            out.setdefault(name, {}).update(zip(section.accumulators, state[i * n : (i + 1) * n], strict=True))
    return out


# ------------------------------------------------------------------ the optimize op

_RUNTIMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _runtime(section: OptimizeSection) -> tuple[UpdateRuntime, dict]:
    """The run-time side of ``section`` (fused flat buffers, master weights, rounding
    generators) and its hyper-parameter record, kept for as long as the section lives."""
    entry = _RUNTIMES.get(section)
    if entry is None:
        config = section.config
        fused = None if config.fused is False else FusedUpdate(required=config.fused is True)
        entry = _RUNTIMES[section] = (UpdateRuntime(_precision(config), fused), dict(config.hparams))
    return entry


def _optimize_infer(params, grads, lr, state, masters=None, counters=None, rounding=None, hyper=None, *, section):
    return list(params), list(state), list(masters or ()), list(counters or ()), list(rounding or ())


def optimize(
    Param, Grad, LearningRate, State, MasterParam=None, Counter=None, RoundingStep=None, HyperParam=None, *, section
):
    """One update of every parameter of ``section`` by ``run_update``, the scope's tensors
    as (param, grad, state, master weight), lr = ``LearningRate`` x multipliers, the
    ``HyperParam`` tensors as the hyper-parameters ``section.hyper_names`` (read by
    ``run_update``); returns
    the parameters, the state tensors as the update left them (after a fused step, views
    of the fused path's flat buffers, which then stay in the scope), the masters and the
    schedule counters and the stochastic-rounding counter (``RoundingStep``, bfloat16
    state only: the generators' seed, advanced by each applied update).

    ``Counter``: the step counters the learning rate is computed from, already advanced
    by their ``increment`` ops at the head of the run. A skipped step (non-finite policy
    'skip', a GradScaler overflow) hands them back one increment lower, so the schedule
    does not advance on it -- as eager mode, whose decay advances only on an applied step.
    A step that raises writes nothing back (the executor keeps the scope as it was)."""
    runtime, hparams = _runtime(section)
    masters = list(MasterParam or ())
    runtime.precision.masters = {Param[i]: m for i, m in zip(section.master_index, masters, strict=True)}
    hparams["lr"] = float(LearningRate.reshape(-1)[0])
    hparams.update(zip(section.hyper_names, HyperParam or (), strict=True))  # this run's tensors
    n = len(section.accumulators)
    state, items = {}, []
    for i, (p, g) in enumerate(zip(Param, Grad, strict=True)):
        state[p] = dict(zip(section.accumulators, State[i * n : (i + 1) * n], strict=True))
        items.append(
            Item(section.names[i], p, g, hparams, section.lr_mults[i], section.regularizers[i], section.need_clip[i])
        )
    runtime.state = state
    rounding = list(RoundingStep or ())
    if rounding:
        runtime.precision.rounding_step = int(rounding[0].reshape(-1)[0])
    applied = run_update(section.config, items, runtime)
    rounding = [torch.full_like(t, runtime.precision.rounding_step) for t in rounding]
    counters = list(Counter or ())
    if not applied:
        counters = [
            c - (step if c.is_floating_point() else int(step))
            for c, step in zip(counters, section.counter_steps, strict=True)
        ]
    return (list(Param), [state[p][acc] for p in Param for acc in section.accumulators], masters, counters, rounding)


for _type in OPTIMIZE_OP_TYPES:
    _list_slots = [s for s in _INPUTS + _OUTPUTS if s != "LearningRate"]
    register(_type, _OUTPUTS, list_slots=_list_slots, infer=_optimize_infer)(optimize)


register_front_door(Variable, sys.modules[__name__])
