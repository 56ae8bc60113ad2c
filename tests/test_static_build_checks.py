"""Static programs refuse a malformed op when it is appended (Paddle's op-proto checks), and
program descriptions re-check what they restore.

* Slots: every input slot of an op type is required unless the registry records it as
  dispensable; an op missing a required input, naming a slot its type does not have, or
  giving a single-variable slot several variables is refused by ``Block.append_op`` (and by
  ``Program.parse_from_string`` / ``load_inference_model`` with their own error types),
  before anything is appended. Each op's record is checked against its forward: the forward
  fails without each required input and runs without each dispensable one.
"""

import json

import pytest
import torch

import torchfluid as fluid
from torchfluid.ops import get_op, registered_types
from torchfluid.static._infer import OpBuildError
from torchfluid.static.optimize import OPTIMIZE_OP_TYPES
from torchfluid.static.program_desc import ProgramDescError

PLACE = fluid.CPUPlace()


def f(*shape, lo=-1.0):
    """A float32 tensor of ``shape`` with values in [lo, lo + 2), fixed by the shape."""
    g = torch.Generator().manual_seed(sum(shape) + 7)
    return torch.rand(shape, generator=g) * 2.0 + lo


def ints(*rows, hi=3):
    return torch.tensor([[r % hi] for r in range(rows[0])], dtype=torch.int64)


def _rms(centered):
    ins = dict(Param=f(2, 3), Grad=f(2, 3), MeanSquare=f(2, 3, lo=0.5), Moment=f(2, 3), MeanGrad=f(2, 3))
    return {**ins, "LearningRate": torch.tensor([0.1])}, {"centered": centered}


# (label, op type, inputs (slot -> tensor or list of tensors), attrs): a valid op of each registered
# type that takes inputs (the optimize section ops are built by minimize below)
SAMPLES = [
    *[(t, t, {"X": f(2, 3)}, {}) for t in ("abs", "exp", "elu", "gelu", "leaky_relu", "relu", "relu6")],
    *[(t, t, {"X": f(2, 3)}, {}) for t in ("sigmoid", "sign", "softmax", "softplus", "softsign", "square", "tanh")],
    *[(t, t, {"X": f(2, 3)}, {}) for t in ("assign", "scale", "reduce_sum", "reduce_mean", "mean", "dropout")],
    *[(t, t, {"X": f(2, 3, lo=0.5)}, {}) for t in ("log", "sqrt")],
    ("squared_l2_norm", "squared_l2_norm", {"X": f(2, 3)}, {}),
    ("top_k", "top_k", {"X": f(2, 3)}, {"k": 2}),
    ("increment", "increment", {"X": torch.tensor([3.0])}, {"step": 1.0}),
    ("clip", "clip", {"X": f(2, 3)}, {"min": -0.5, "max": 0.5}),
    ("clip_by_norm", "clip_by_norm", {"X": f(2, 3)}, {"max_norm": 1.0}),
    ("cast", "cast", {"X": f(2, 3)}, {"out_dtype": "float64"}),
    ("reshape2", "reshape2", {"X": f(2, 3)}, {"shape": [3, 2]}),
    ("sum", "sum", {"X": [f(2, 3), f(2, 3)]}, {}),
    ("concat", "concat", {"X": [f(2, 3), f(1, 3)]}, {"axis": 0}),
    (
        "clip_gradients",
        "clip_gradients",
        {"X": [f(2, 3)]},
        {"clip": fluid.clip.GradientClipByNorm(1.0), "need_clip": [True]},
    ),
    *[(t, t, {"X": f(2, 3), "Y": f(2, 3)}, {}) for t in ("elementwise_add", "elementwise_sub", "elementwise_mul")],
    *[(t, t, {"X": f(2, 3), "Y": f(2, 3)}, {}) for t in ("elementwise_div", "elementwise_max", "elementwise_min")],
    ("elementwise_pow", "elementwise_pow", {"X": f(2, 3, lo=0.5), "Y": f(2, 3)}, {}),
    ("mul", "mul", {"X": f(2, 3), "Y": f(3, 4)}, {}),
    ("matmul", "matmul", {"X": f(2, 3), "Y": f(3, 4)}, {}),
    ("cross_entropy", "cross_entropy", {"X": f(4, 3, lo=0.1).softmax(-1), "Label": ints(4)}, {}),
    ("softmax_with_cross_entropy", "softmax_with_cross_entropy", {"Logits": f(4, 3), "Label": ints(4)}, {}),
    ("accuracy", "accuracy", {"Out": f(4, 2), "Indices": ints(4).repeat(1, 2), "Label": ints(4)}, {}),
    ("lookup_table", "lookup_table", {"W": f(5, 3), "Ids": ints(4, hi=5)}, {}),
    ("conv2d", "conv2d", {"Input": f(1, 2, 5, 5), "Filter": f(3, 2, 3, 3)}, {}),
    ("pool2d", "pool2d", {"X": f(1, 2, 4, 4)}, {"ksize": [2, 2]}),
    (
        "batch_norm",
        "batch_norm",
        {"X": f(2, 3, 4, 4), "Scale": f(3), "Bias": f(3), "Mean": f(3), "Variance": f(3, lo=0.5)},
        {},
    ),
    (
        "regularization",
        "regularization",
        {"Param": f(2, 3), "Grad": f(2, 3)},
        {"regularizer": fluid.regularizer.L2Decay(0.1)},
    ),
    (
        "lr_schedule",
        "lr_schedule",
        {"Step": torch.tensor([3], dtype=torch.int64), "LearningRate": torch.tensor([0.5])},
        {
            "schedule": "exponential_decay",
            "params": {"learning_rate": 0.1, "decay_steps": 2.0, "decay_rate": 0.5, "staircase": False},
        },
    ),
    ("raw_rmsprop", "raw_rmsprop", *_rms(False)),
    ("raw_rmsprop centered", "raw_rmsprop", *_rms(True)),
    ("raw_sgd", "raw_sgd", {"Param": f(2, 3), "LearningRate": torch.tensor([0.1]), "Grad": f(2, 3)}, {}),
    (
        "raw_adam",
        "raw_adam",
        {
            "Param": f(2, 3),
            "Grad": f(2, 3),
            "LearningRate": torch.tensor([0.1]),
            "Moment1": f(2, 3),
            "Moment2": f(2, 3, lo=0.5),
            "Beta1Pow": torch.tensor([0.9]),
            "Beta2Pow": torch.tensor([0.999]),
        },
        {},
    ),
]
# op types without input slots: nothing to leave out
NO_INPUTS = {"fill_constant", "assign_value", "initializer", "uniform_random", "copy_layer_parameter"}
# (op type, slot): required by Paddle's op proto though torchfluid's forward does not read it
PROTO_ONLY = {("accuracy", "Out")}
# every dispensable slot of the registry, as Paddle's op makers have them (the optimize section ops' own)
DISPENSABLE = {
    "raw_rmsprop": {"MeanGrad"},  # AsDispensable in Paddle's RMSPropOpMaker; needed when centered
    "lr_schedule": {"LearningRate"},
    **{t: {"MasterParam", "Counter", "RoundingStep"} for t in OPTIMIZE_OP_TYPES},
}


def _ids(rows):
    return [r[0] for r in rows]


def test_every_registered_op_type_is_in_the_tables():
    covered = {r[1] for r in SAMPLES} | NO_INPUTS | set(OPTIMIZE_OP_TYPES)
    assert covered == set(registered_types())
    assert all(not get_op(t).inputs for t in NO_INPUTS)
    assert {t: set(get_op(t).dispensable) for t in registered_types() if get_op(t).dispensable} == DISPENSABLE


def _forward(op_type, inputs, attrs, without=None):
    """Run op_type's forward on copies of ``inputs``, ``without`` given as absent."""
    opdef = get_op(op_type)
    args = []
    for slot in opdef.inputs:
        v = inputs.get(slot)
        if slot == without or v is None:
            v = [] if slot in opdef.list_slots else None
        elif isinstance(v, list):
            v = [t.clone() for t in v]
        else:
            v = v.clone()
        args.append(v)
    return opdef.forward(*args, **attrs)


def _slots_of(op_type, attrs):
    opdef = get_op(op_type)
    return [(s, s in opdef.required_inputs(attrs)) for s in opdef.inputs]


@pytest.mark.parametrize("label,op_type,inputs,attrs", SAMPLES, ids=_ids(SAMPLES))
def test_required_slots_are_the_ones_the_forward_cannot_do_without(label, op_type, inputs, attrs):
    _forward(op_type, inputs, attrs)  # the sample is valid
    for slot, required in _slots_of(op_type, attrs):
        if not required:
            _forward(op_type, inputs, attrs, without=slot)  # runs without it
        elif (op_type, slot) not in PROTO_ONLY:
            with pytest.raises(Exception):  # noqa: B017 - any failure: the forward needs the slot
                _forward(op_type, inputs, attrs, without=slot)


def _program(inputs):
    """A program with one variable per sample input tensor; returns it and slot -> names."""
    main = fluid.Program()
    block = main.global_block()
    names = {}
    for slot, v in inputs.items():
        ts = v if isinstance(v, list) else [v]
        names[slot] = [f"{slot.lower()}_{i}" for i in range(len(ts))]
        for n, t in zip(names[slot], ts, strict=True):
            block.create_var(n, list(t.shape), str(t.dtype).replace("torch.", ""), persistable=True)
    return main, names


def _outputs(op_type, names):
    """Output names: an in-place op's ``<S>Out`` names its input ``<S>``'s variable."""
    opdef = get_op(op_type)
    if opdef.inplace:
        return {s: names[s[: -len("Out")]] for s in opdef.outputs if s[: -len("Out")] in names}
    return {
        s: [f"out_{s.lower()}"] * (1 if s not in opdef.list_slots else len(names.get("X", [0]))) for s in opdef.outputs
    }


@pytest.mark.parametrize("label,op_type,inputs,attrs", SAMPLES, ids=_ids(SAMPLES))
def test_append_op_refuses_each_missing_required_input(label, op_type, inputs, attrs):
    for slot, required in _slots_of(op_type, attrs):
        main, names = _program(inputs)
        block = main.global_block()
        given = {s: n for s, n in names.items() if s != slot}
        outputs = {s: n for s, n in _outputs(op_type, names).items() if s != slot + "Out"}
        before = set(block.vars)
        if required:
            msg = rf"op '{op_type}' needs input slot '{slot}'.*, got slots {sorted(given)!r}".replace("[", r"\[")
            with pytest.raises(OpBuildError, match=msg):
                block.append_op(op_type, given, outputs, attrs)
            assert block.ops == [] and set(block.vars) == before  # nothing appended, no variable made
        else:
            block.append_op(op_type, given, outputs, attrs)
            assert [op.type for op in block.ops] == [op_type]
    main, names = _program(inputs)  # with every slot it builds and runs
    main.global_block().append_op(op_type, names, _outputs(op_type, names), attrs)
    scope = fluid.Scope()
    for slot, ns in names.items():
        ts = inputs[slot] if isinstance(inputs[slot], list) else [inputs[slot]]
        for n, t in zip(ns, ts, strict=True):
            scope.var(n).get_tensor().set(t.numpy(), PLACE)
    fluid.Executor(PLACE).run(main, scope=scope)


def _minimized(make_opt):
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = fluid.data("x", [None, 3], "float32")
        loss = fluid.layers.mean(fluid.layers.fc(x, 2))
        make_opt().minimize(loss)
    op = main.global_block().ops[-1]
    assert op.type in OPTIMIZE_OP_TYPES
    return main, start, op


# (label, optimizer factory, the slots whose absence its optimize op's forward cannot take)
OPTIMIZERS = [
    (
        "rmsprop",
        lambda: fluid.optimizer.RMSProp(0.1, centered=True, momentum=0.5),
        ["Param", "Grad", "LearningRate", "State"],
    ),
    ("sgd", lambda: fluid.optimizer.SGD(0.1), ["Param", "Grad", "LearningRate"]),
    ("adam", lambda: fluid.optimizer.Adam(0.01), ["Param", "Grad", "LearningRate", "State"]),
]


@pytest.mark.parametrize("label,make_opt,needed", OPTIMIZERS, ids=_ids(OPTIMIZERS))
@pytest.mark.parametrize("slot", ["Param", "Grad", "LearningRate", "State"])
def test_optimize_op_without_a_required_input_is_refused(label, make_opt, needed, slot):
    main, _, op = _minimized(make_opt)
    block = main.global_block()
    n_ops = len(block.ops)
    inputs = {s: ns for s, ns in op.inputs.items() if s != slot}
    outputs = {s: ns for s, ns in op.outputs.items() if s != slot + "Out"}
    with pytest.raises(OpBuildError, match=rf"op '{op.type}' needs input slot '{slot}', got slots"):
        block.append_op(op.type, inputs, outputs, op.attrs)
    assert len(block.ops) == n_ops


@pytest.mark.parametrize("label,make_opt,needed", OPTIMIZERS, ids=_ids(OPTIMIZERS))
def test_optimize_op_forward_cannot_do_without_its_required_inputs(label, make_opt, needed):
    main, start, op = _minimized(make_opt)
    opdef = get_op(op.type)
    assert {s for s in opdef.inputs if s not in opdef.required_inputs(op.attrs)} == DISPENSABLE[op.type]
    assert set(needed) <= set(opdef.required_inputs(op.attrs))  # sgd's State is [] (it has no accumulators)
    scope = fluid.Scope()
    fluid.Executor(PLACE).run(start, scope=scope)

    def run(without=None):
        params = [scope.value(n).clone() for n in op.input("Param")]
        args = []
        for slot in opdef.inputs:
            if slot == without:
                values = []
            elif slot in ("Param", "Grad"):  # the gradients are not in the startup scope: ones
                values = params if slot == "Param" else [torch.ones_like(p) for p in params]
            else:
                values = [scope.value(n).clone() for n in op.input(slot)]
            args.append(values if slot in opdef.list_slots else (values[0] if values else None))
        return opdef.forward(*args, section=op.attr("section"))

    run()  # with every slot it runs
    for slot in needed:
        with pytest.raises(Exception):  # noqa: B017 - any failure: the forward needs the slot
            run(without=slot)


def _two_vars():
    main = fluid.Program()
    block = main.global_block()
    for n in ("a", "b", "c"):
        block.create_var(n, [2, 3], "float32")
    return main, block


# (case, op type, inputs, outputs, attrs, message): slot errors at append time
APPEND_BAD = [
    ("mul without Y", "mul", {"X": ["a"]}, {"Out": ["o"]}, {}, r"op 'mul' needs input slot 'Y', got slots \['X'\]"),
    ("add without Y", "elementwise_add", {"X": "a"}, {"Out": "o"}, {}, r"needs input slot 'Y', got slots \['X'\]"),
    ("mean with no X", "mean", {}, {"Out": ["o"]}, {}, r"op 'mean' needs input slot 'X', got slots \[\]"),
    ("mean with X empty", "mean", {"X": []}, {"Out": ["o"]}, {}, r"op 'mean' needs input slot 'X', got slots \['X'\]"),
    ("mean with X @EMPTY@", "mean", {"X": ["@EMPTY@"]}, {"Out": ["o"]}, {}, r"op 'mean' needs input slot 'X'"),
    (
        "cross_entropy without Label",
        "cross_entropy",
        {"X": ["a"]},
        {"Y": ["o"]},
        {},
        r"op 'cross_entropy' needs input slot 'Label', got slots \['X'\]",
    ),
    ("sum without X", "sum", {}, {"Out": ["o"]}, {}, r"op 'sum' needs input slot 'X', got slots \[\]"),
    ("unknown input slot", "mul", {"X": "a", "Y": "b", "Z": "c"}, {"Out": "o"}, {}, r"op 'mul' has no input slot 'Z'"),
    ("unknown output slot", "relu", {"X": "a"}, {"Out": "o", "Mask": "m"}, {}, r"'relu' has no output slot 'Mask'"),
    (
        "two variables in X",
        "relu",
        {"X": ["a", "b"]},
        {"Out": "o"},
        {},
        r"op 'relu' input slot 'X' takes one variable, got 2: \['a', 'b'\]",
    ),
    ("two outputs", "relu", {"X": "a"}, {"Out": ["o", "p"]}, {}, r"output slot 'Out' takes one variable, got 2"),
    (
        "grad op without its op's input",
        "mul_grad",
        {"X": ["a"], "Out": ["b"], "Out@GRAD": ["c"]},
        {"X@GRAD": ["g"]},
        {},
        r"op 'mul_grad' needs input slot 'Y', got slots \['Out', 'Out@GRAD', 'X'\]",
    ),
    (
        "rmsprop centered without MeanGrad",
        "raw_rmsprop",
        {"Param": "a", "Grad": "b", "MeanSquare": "c", "Moment": "c", "LearningRate": "a"},
        {},
        {"centered": True},
        r"op 'raw_rmsprop' needs input slot 'MeanGrad' when centered is True",
    ),
]


@pytest.mark.parametrize("case,op_type,inputs,outputs,attrs,match", APPEND_BAD, ids=_ids(APPEND_BAD))
def test_append_op_refuses_bad_slots(case, op_type, inputs, outputs, attrs, match):
    main, block = _two_vars()
    with pytest.raises(OpBuildError, match=match):
        block.append_op(type=op_type, inputs=inputs, outputs=outputs, attrs=attrs)
    assert block.ops == [] and set(block.vars) == {"a", "b", "c"}
    assert issubclass(OpBuildError, ValueError)


def test_layers_and_a_grad_op_with_its_dispensable_slots_left_out_build():
    main, block = _two_vars()
    block.append_op("mul_grad", {"X": ["a"], "Y": ["b"]}, {"X@GRAD": ["g"]}, infer=False)  # Out, Out@GRAD dispensable
    block.append_op("raw_rmsprop", {"Param": "a", "Grad": "b", "MeanSquare": "c", "Moment": "c", "LearningRate": "a"})
    assert [op.type for op in block.ops] == ["mul_grad", "raw_rmsprop"]


# ---------------------------------------------------------------- descriptions


def _small_program():
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start):
        x = fluid.data("x", [None, 3], "float32")
        y = fluid.layers.fc(x, 2, act="relu")
    return main, start, y


def _drop(*path):
    def mutate(d):
        for k in path[:-1]:
            d = d[k]
        del d[path[-1]]

    return mutate


def _set(path, value):
    def mutate(d):
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value

    return mutate


# (case, mutation of the main program's description, message): block 0's ops are mul, elementwise_add, relu
DESC_SLOTS_BAD = [
    ("mul without Y", _drop("blocks", 0, "ops", 0, "inputs", "Y"), r"block 0 op 0: op 'mul' needs input slot 'Y'"),
    ("mul with Y empty", _set(("blocks", 0, "ops", 0, "inputs", "Y"), []), r"op 0: op 'mul' needs input slot 'Y'"),
    ("add without X", _drop("blocks", 0, "ops", 1, "inputs", "X"), r"block 0 op 1: op 'elementwise_add' needs input"),
    (
        "relu with 2 X",
        _set(("blocks", 0, "ops", 2, "inputs", "X"), ["x", "x"]),
        r"op 2: op 'relu' input slot 'X' takes",
    ),
]


@pytest.mark.parametrize("case,mutation,match", DESC_SLOTS_BAD, ids=_ids(DESC_SLOTS_BAD))
def test_parse_from_string_refuses_a_missing_required_input(case, mutation, match):
    main, _, _ = _small_program()
    desc = json.loads(main.desc.serialize_to_string())
    assert [op["type"] for op in desc["blocks"][0]["ops"]] == ["mul", "elementwise_add", "relu"]
    mutation(desc)
    with pytest.raises(ProgramDescError, match=match):
        fluid.Program.parse_from_string(json.dumps(desc))


@pytest.mark.parametrize("slot", ["Param", "Grad", "LearningRate", "State"])
def test_parse_from_string_refuses_an_optimize_op_without_a_required_input(slot):
    main, _, op = _minimized(OPTIMIZERS[0][1])
    desc = json.loads(main.desc.serialize_to_string())
    last = desc["blocks"][0]["ops"][-1]
    assert last["type"] == "rmsprop"
    del last["inputs"][slot]
    i = len(desc["blocks"][0]["ops"]) - 1
    with pytest.raises(ProgramDescError, match=rf"block 0 op {i}: op 'rmsprop' needs input slot '{slot}'"):
        fluid.Program.parse_from_string(json.dumps(desc))


@pytest.mark.parametrize("case,mutation,match", DESC_SLOTS_BAD[:3], ids=_ids(DESC_SLOTS_BAD[:3]))
def test_load_inference_model_refuses_a_missing_required_input(tmp_path, case, mutation, match):
    main, start, y = _small_program()
    scope = fluid.Scope()
    exe = fluid.Executor(PLACE)
    with fluid.scope_guard(scope):
        exe.run(start)
        fluid.io.save_inference_model(str(tmp_path), ["x"], [y], exe, main_program=main)
        model = tmp_path / "__model__"
        desc = json.loads(model.read_text())
        mutation({"blocks": [desc]})
        model.write_text(json.dumps(desc))
        before = sorted(scope.local_var_names())
        with pytest.raises(fluid.io.InferenceModelError, match=match.replace("block 0 op", "op")):
            fluid.io.load_inference_model(str(tmp_path), exe)
        assert sorted(scope.local_var_names()) == before
