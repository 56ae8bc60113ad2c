"""Compiling a program's ops into a plan: a flat list of closures over one environment.

A plan is built once per (program version, feed names, fetch targets) and cached on
the program. Each step reads its inputs from ``env`` (a dict name -> tensor), calls
the op's forward with pre-bound attrs and writes its outputs back. The interpreter
loop is then only ``for step in steps: step(env)``.
"""

from __future__ import annotations

from ..ops import get_op
from ._infer import describe_inputs, op_attrs
from .backward import EMPTY_VAR_NAME
from .framework import prune_ops
from .lod import lod_key, lod_readers, lod_sources

__all__ = ["Plan", "build_plan", "prune_ops", "OpRunError"]


class OpRunError(RuntimeError):
    """An op failed while the executor ran it; says which op, its inputs and its line."""


def _need_flags(base, op):
    """For a grad op: which of the forward op's inputs want a gradient."""
    flags = []
    for slot in base.inputs:
        names = op.outputs.get(slot + "@GRAD")
        if slot in base.list_slots:
            n_in = len(op.inputs.get(slot, []))
            flags.append([n != EMPTY_VAR_NAME for n in names] if names else [False] * n_in)
        else:
            flags.append(bool(names) and names[0] != EMPTY_VAR_NAME)
    return tuple(flags)


def _slot_spec(slots, names_by_slot, list_slots):
    """Per slot: a tuple of names (None for an empty one) for a list slot, else the one name or None."""
    spec = []
    for slot in slots:
        names = names_by_slot.get(slot, [])
        if slot in list_slots:
            spec.append(tuple(None if n == EMPTY_VAR_NAME else n for n in names))
        else:
            spec.append(names[0] if names and names[0] != EMPTY_VAR_NAME else None)
    return spec


def _compile(op, lod_from=None):
    """The step of ``op``; ``lod_from``: the feed whose LoD the op reads (its ``offsets``)."""
    opdef = get_op(op.type)
    attrs = op_attrs(op)
    if op.type.endswith("_grad") and op.type[:-5] and opdef.forward is not None:
        base = get_op(op.type[:-5])
        attrs["need"] = _need_flags(base, op)
    fn = opdef.forward
    ins = _slot_spec(opdef.inputs, op.inputs, opdef.list_slots)
    outs = _slot_spec(opdef.outputs, op.outputs, opdef.list_slots)
    if lod_from is not None:
        return _lod_step(fn, ins, outs, attrs, lod_key(lod_from))
    simple_in = all(isinstance(s, str) for s in ins)
    optional_in = all(s is None or isinstance(s, str) for s in ins)
    if opdef.inplace:
        if simple_in:

            def step(env):
                fn(*[env[n] for n in ins], **attrs)
        elif optional_in:

            def step(env):
                fn(*[None if n is None else env[n] for n in ins], **attrs)
        else:

            def step(env):
                fn(*[_get(env, s) for s in ins], **attrs)

        return step
    if len(outs) == 1 and isinstance(outs[0], str):
        out = outs[0]
        if simple_in:

            def step(env):
                env[out] = fn(*[env[n] for n in ins], **attrs)
        elif optional_in:

            def step(env):
                env[out] = fn(*[None if n is None else env[n] for n in ins], **attrs)
        else:

            def step(env):
                env[out] = fn(*[_get(env, s) for s in ins], **attrs)

        return step

    single = len(outs) == 1

    def step(env):
        res = fn(*[_get(env, s) for s in ins], **attrs)
        for spec, val in zip(outs, (res,) if single else res, strict=True):
            _put(env, spec, val)

    return step


def _lod_step(fn, ins, outs, attrs, key):
    """A step passing the LoD offsets held in ``env[key]`` (the executor checked they are there)."""
    attrs = {k: v for k, v in attrs.items() if k != "offsets"}
    single = len(outs) == 1

    def step(env):
        res = fn(*[_get(env, s) for s in ins], offsets=env[key], **attrs)
        for spec, val in zip(outs, (res,) if single else res, strict=True):
            _put(env, spec, val)

    return step


def _get(env, spec):
    if spec is None:
        return None
    if isinstance(spec, str):
        return env[spec]
    return [None if n is None else env[n] for n in spec]


def _put(env, spec, val):
    if spec is None or val is None:
        return
    if isinstance(spec, str):
        env[spec] = val
    else:
        for n, v in zip(spec, val, strict=True):
            if n is not None and v is not None:
                env[n] = v


class Plan:
    """Compiled steps plus what the run must read from feeds/scope and write back."""

    def __init__(self, program, ops, feed_names, fetch_names):
        block = program.global_block()
        self.ops = ops
        # which feed each variable's LoD comes from, and the ops reading one (sequence_pool)
        self.lod_src = lod_sources(ops, feed_names)
        readers = dict(lod_readers(ops, self.lod_src))
        self.lod_feeds = tuple(dict.fromkeys(readers.values()))  # feeds that must come with a LoD
        self.lod_users = {}  # feed -> the first op reading its LoD (named in errors)
        for i, s in readers.items():
            self.lod_users.setdefault(s, ops[i])
        self.steps = [_compile(op, readers.get(i)) for i, op in enumerate(ops)]
        produced, external = set(), []
        for op in ops:
            for n in op.input_arg_names:
                if n != EMPTY_VAR_NAME and n not in produced and n not in external:
                    external.append(n)
            produced.update(op.output_arg_names)
        self.feed_names = tuple(feed_names)
        self.fetch_names = tuple(fetch_names)
        self.external = [n for n in external if n not in feed_names]
        self.persist_writes = [
            n
            for n in dict.fromkeys(n for op in ops if not get_op(op.type).inplace for n in op.output_arg_names)
            if n in block.vars and block.vars[n].persistable
        ]
        self.produced = produced
        self.block = block

    def run(self, env):
        steps = self.steps
        i = 0
        try:
            for i, step in enumerate(steps):  # noqa: B007 - i names the failing op
                step(env)
        except (OpRunError, FloatingPointError):  # a non-finite policy's error keeps its type
            raise
        except Exception as e:  # noqa: BLE001 - re-raised with the op's context
            op = self.ops[i]
            raise OpRunError(
                f"op {op.type} (built at {op.where()}) failed on inputs ({describe_inputs(op, env)}): "
                f"{type(e).__name__}: {e}"
            ) from e


def build_plan(program, feed_names, fetch_names, target_ops=(), prune=False) -> Plan:
    ops = program.global_block().ops
    if prune:
        ops = prune_ops(ops, fetch_names, target_ops)
    return Plan(program, list(ops), feed_names, fetch_names)
