"""The optimizer in static mode: the ops ``minimize`` appends to a program.

The optimizer facade (``torchfluid.optimizer``) decides the mode once, where it sees a
static ``Variable`` loss, and delegates here. Paddle's order (``apply_gradients``):
parameters sorted by name, then one ``grad_clip`` op (if the optimizer clips), then a
``regularization`` op per regularized gradient, then one optimizer op per parameter
(type ``opt._static_op_type``). Accumulators are persistable variables
``<param>_<acc>_0`` set by ops in the startup program to ``opt._new_state``'s values.

Optimizer hooks used (the same as eager mode): ``_accumulator_names()``,
``_new_state(param)``, ``_kernel_update(param, grad, state, lr=, group=)``,
``_static_op_type``, ``regularization``, ``_grad_clip`` (``clip_tensors``),
``_static_lr`` (a static lr Variable) or else ``defaults['lr']`` (a float).
"""

from __future__ import annotations


import torch

from ..layers.helper import LayerHelper
from ..ops import get_op
from ..ops import convert_dtype, to_torch_dtype
from ..ops.state_ops import slot_of
from .. import unique_name
from .backward import append_backward
from .framework import Variable, default_startup_program, program_guard

__all__ = ["minimize", "backward", "apply_gradients", "apply_optimize", "append_regularization_ops",
           "accumulator_vars"]


def minimize(opt, loss, startup_program=None, parameter_list=None, no_grad_set=None):
    """``backward`` then ``apply_optimize``; returns ``(optimize_ops, params_grads)``."""
    params_grads = backward(opt, loss, startup_program, parameter_list, no_grad_set)
    optimize_ops = apply_optimize(opt, loss, startup_program, params_grads)
    return optimize_ops, params_grads


def backward(opt, loss, startup_program=None, parameter_list=None, no_grad_set=None, callbacks=None):
    """Append the grad ops of ``loss``; return ``[(param, grad_var)]``."""
    if not isinstance(loss, Variable):
        raise TypeError(f"backward: loss must be a static Variable, got {type(loss).__name__}")
    startup = startup_program if startup_program is not None else default_startup_program()
    with program_guard(loss.block.program, startup):
        return append_backward(loss, parameter_list, no_grad_set, callbacks)


def apply_optimize(opt, loss, startup_program, params_grads):
    """Second half of minimize: the clip, regularization and optimizer ops."""
    startup = startup_program if startup_program is not None else default_startup_program()
    with program_guard(loss.block.program, startup):
        return apply_gradients(opt, params_grads)


def apply_gradients(opt, params_grads):
    """Append clip, regularization and update ops for ``params_grads``; return the update ops."""
    params_grads = sorted(((p, g) for p, g in params_grads if g is not None), key=lambda pg: pg[0].name)
    if not params_grads:
        return []
    program = params_grads[0][0].block.program
    with program._optimized_guard():
        clip = getattr(opt, "_grad_clip", None)
        if clip is not None:
            params_grads = _append_clip(clip, params_grads)
        params_grads = append_regularization_ops(opt, params_grads, getattr(opt, "regularization", None))
        return _create_optimization_pass(opt, params_grads, program)


def append_regularization_ops(opt, params_grads, regularization=None):
    """A ``regularization`` op per (param, grad) whose param (its own ``regularizer``
    first) or the optimizer has a regularizer; the grad variable is updated in place."""
    out = []
    for p, g in params_grads:
        reg = getattr(p, "regularizer", None) or regularization
        if reg is None or g is None:
            out.append((p, g))
            continue
        if not callable(reg):
            raise TypeError(f"regularizer of {p.name!r} must be callable reg(param, grad), got {reg!r}")
        with p.block.program._optimized_guard():
            g.block.append_op("regularization", {"Param": [p], "Grad": [g]}, {"Out": [g]},
                              {"regularizer": reg})
        out.append((p, g))
    return out


def _append_clip(clip, params_grads):
    block = params_grads[0][1].block
    need = [bool(getattr(p, "need_clip", True)) for p, _ in params_grads]
    outs = []
    for (p, g), n in zip(params_grads, need):
        outs.append(block.create_var(unique_name.generate(g.name + "@CLIP"), g.shape, g.dtype) if n else g)
    block.append_op("grad_clip", {"X": [g for _, g in params_grads]}, {"Out": outs},
                    {"clip": clip, "need_clip": need})
    return [(p, o) for (p, _), o in zip(params_grads, outs)]


def _group(opt):
    """Hyper-parameters for the kernel: the optimizer's defaults (static mode has no
    torch param groups; the lr comes from the LearningRate variable)."""
    return opt.defaults


def _global_lr(opt, program):
    """The learning-rate variable of ``opt`` in ``program`` (created once per program)."""
    cache = program.__dict__.setdefault("_optimizer_lr_vars", {})
    var = cache.get(id(opt))
    if var is not None:
        return var
    lr = getattr(opt, "_static_lr", None)
    if isinstance(lr, Variable):
        var = lr
    else:
        if getattr(opt, "_schedule", None) is not None:
            raise TypeError(
                f"static mode: {type(opt._schedule).__name__} is a dygraph learning-rate schedule; "
                "in static mode pass a float or a fluid.layers.*_decay(...) variable as learning_rate"
            )
        lr = float(opt.defaults["lr"])
        var = program.global_block().create_var(unique_name.generate("learning_rate"), [1], "float32",
                                                persistable=True, stop_gradient=True)
        LayerHelper("learning_rate").fill_startup(var, float(lr))
    cache[id(opt)] = var
    return var


def _param_lr(param, global_lr):
    mult = float(param.optimize_attr.get("learning_rate", 1.0))
    if mult == 1.0:
        return global_lr
    block = param.block
    out = block.create_var(unique_name.generate(f"{param.name}_lr"), [1], global_lr.dtype, stop_gradient=True)
    block.append_op("scale", {"X": [global_lr]}, {"Out": [out]}, {"scale": mult})
    return out


def _create_accumulators(opt, param, startup):
    """``{acc name: Variable}`` persistable, zero- (or ``_new_state``-) initialized."""
    block = param.block
    helper = LayerHelper("accumulator")
    init = opt._new_state(torch.zeros(param.shape, dtype=to_torch_dtype(param.dtype)))
    accs = {}
    for name in opt._accumulator_names():
        t = init[name]
        var = block.create_var(unique_name.generate(f"{param.name}_{name}"), list(t.shape),
                               convert_dtype(t.dtype), persistable=True, stop_gradient=True,
                               belong_to_optimizer=True)
        flat = t.reshape(-1)
        if flat.numel() and bool((flat == flat[0]).all()):
            helper.fill_startup(var, float(flat[0]))
        else:
            svar = startup.global_block().create_var(var.name, var.shape, var.dtype, persistable=True)
            startup.global_block().append_op("assign_value", {}, {"Out": [svar]},
                                             {"shape": list(t.shape), "dtype": var.dtype,
                                              "values": flat.tolist()})
        accs[name] = var
    return accs


def _create_optimization_pass(opt, params_grads, program):
    op_type = opt._static_op_type
    opdef = get_op(op_type)
    acc_slots = opdef.inputs[3:]
    startup = default_startup_program()
    global_lr = _global_lr(opt, program)
    group = _group(opt)
    block = program.global_block()
    all_accs = [_create_accumulators(opt, p, startup) for p, _ in params_grads]
    ops = []
    for (p, g), accs in zip(params_grads, all_accs):
        by_slot = {}
        for name, var in accs.items():
            slot = slot_of(name)
            if slot not in acc_slots:
                raise ValueError(f"optimizer op {op_type!r} has no slot for accumulator {name!r} (slots: {acc_slots})")
            by_slot[slot] = (name, var)
        inputs = {"Param": [p], "Grad": [g], "LearningRate": [_param_lr(p, global_lr)]}
        outputs = {"ParamOut": [p]}
        for slot, (name, var) in by_slot.items():
            inputs[slot] = [var]
            outputs[slot + "Out"] = [var]
        attrs = {"optimizer": opt, "group": group,
                 "accumulators": tuple(by_slot[s][0] if s in by_slot else None for s in acc_slots)}
        ops.append(block.append_op(op_type, inputs, outputs, attrs))
    return ops


def accumulator_vars(program) -> dict[str, dict[str, str]]:
    """``{param name: {accumulator name: variable name}}`` from a program's optimizer ops."""
    out = {}
    for op in program.global_block().ops:
        accs = op.attrs.get("accumulators")
        if accs is None or "optimizer" not in op.attrs:
            continue
        opdef = get_op(op.type)
        entry = out.setdefault(op.input("Param")[0], {})
        for slot, name in zip(opdef.inputs[3:], accs):
            if name is not None:
                entry[name] = op.input(slot)[0]
    return out

