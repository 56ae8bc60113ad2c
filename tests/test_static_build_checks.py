"""Static programs refuse a malformed op when it is appended (Paddle's op-proto checks), and
program descriptions re-check what they restore.

* Slots: every input slot of an op type is required unless the registry records it as
  dispensable; an op missing a required input, naming a slot its type does not have, or
  giving a single-variable slot several variables is refused by ``Block.append_op`` (and by
  ``Program.parse_from_string`` / ``load_inference_model`` with their own error types),
  before anything is appended. Each op's record is checked against its forward: the forward
  fails without each required input and runs without each dispensable one.
* Restored objects: every kind of object a description restores loads as it was made, and a
  description with a bad value in one (a regularizer's coefficient, an initializer's scale,
  a scheduler's or decay's settings, an optimizer configuration's hyper-parameters, an
  optimize section's fields, a parameter's attributes) is a ProgramDescError naming the
  object and the field.
"""

import json

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import initializer as I
from torchfluid.lr import scheduler as S
from torchfluid.ops import get_op, registered_types
from torchfluid.static._infer import OpBuildError
from torchfluid.static.optimize import OPTIMIZE_OP_TYPES
from torchfluid.static.program_desc import ProgramDescError

from .test_hostile_static import _drop, _set, _small_program

PLACE = fluid.CPUPlace()


def f(*shape, lo=-1.0):
    """A float32 tensor of ``shape`` with values in [lo, lo + 2), fixed by the shape."""
    g = torch.Generator().manual_seed(sum(shape) + 7)
    return torch.rand(shape, generator=g) * 2.0 + lo


def ints(*rows, hi=3):
    return torch.tensor([[r % hi] for r in range(rows[0])], dtype=torch.int64)


def _adam_slots():
    """The inputs of Paddle's adam op (lamb's too)."""
    return {
        "Param": f(2, 3),
        "Grad": f(2, 3),
        "LearningRate": torch.tensor([0.1]),
        "Moment1": f(2, 3),
        "Moment2": f(2, 3, lo=0.5),
        "Beta1Pow": torch.tensor([0.9]),
        "Beta2Pow": torch.tensor([0.999]),
    }


def _rms(centered):
    ins = {"Param": f(2, 3), "Grad": f(2, 3), "MeanSquare": f(2, 3, lo=0.5), "Moment": f(2, 3), "MeanGrad": f(2, 3)}
    return {**ins, "LearningRate": torch.tensor([0.1])}, {"centered": centered}


_CPUS = [torch.device("cpu")] * 2
# (label, op type, inputs (slot -> tensor or list of tensors), attrs): a valid op of each registered
# type that takes inputs (the optimize section ops are built by minimize below)
SAMPLES = [
    *[(t, t, {"X": f(2, 3)}, {}) for t in ("abs", "exp", "elu", "gelu", "leaky_relu", "relu", "relu6")],
    *[(t, t, {"X": f(2, 3)}, {}) for t in ("sigmoid", "sign", "softmax", "softplus", "softsign", "square", "tanh")],
    *[(t, t, {"X": f(2, 3)}, {}) for t in ("sin", "cos")],
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
    ("slice", "slice", {"Input": f(2, 3)}, {"axes": [1], "starts": [1], "ends": [3]}),
    ("split", "split", {"X": f(2, 4)}, {"axis": 1, "num": 2}),
    ("transpose2", "transpose2", {"X": f(2, 3)}, {"axis": [1, 0]}),
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
    ("one_hot", "one_hot", {"X": ints(4, hi=3)}, {"depth": 3}),
    (
        "auc",
        "auc",
        {
            "Predict": f(4, 2, lo=0.0) / 2.0,
            "Label": ints(4, hi=2),
            "StatPos": torch.zeros(2 * 11 + 1, dtype=torch.int64),
            "StatNeg": torch.zeros(2 * 11 + 1, dtype=torch.int64),
        },
        {"num_thresholds": 10, "slide_steps": 1},
    ),
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
    ("parallel_do_slice", "parallel_do_slice", {"X": f(4, 3), "Ref": f(4, 2)}, {"index": 1, "devices": _CPUS}),
    ("parallel_do_copy", "parallel_do_copy", {"X": f(2, 3)}, {"device": torch.device("cpu")}),
    ("parallel_do_merge", "parallel_do_merge", {"X": [f(2, 3), f(2, 3)], "Ref": f(4, 2)}, {}),
    ("parallel_do_write_back", "parallel_do_write_back", {"X": f(2, 3), "Ref": f(2, 3)}, {}),
    (
        "data_parallel_split",
        "data_parallel_split",
        {"X": f(4, 3)},
        {"index": 1, "num_places": 2, "device": torch.device("cpu")},
    ),
    ("data_parallel_allreduce", "data_parallel_allreduce", {"X": [f(2, 3), f(2, 3)]}, {"device": torch.device("cpu")}),
    ("sequence_pool", "sequence_pool", {"X": f(5, 3)}, {"pooltype": "SUM", "offsets": (0, 2, 5)}),
    ("raw_rmsprop", "raw_rmsprop", *_rms(False)),
    ("raw_rmsprop centered", "raw_rmsprop", *_rms(True)),
    ("raw_sgd", "raw_sgd", {"Param": f(2, 3), "LearningRate": torch.tensor([0.1]), "Grad": f(2, 3)}, {}),
    ("raw_adam", "raw_adam", _adam_slots(), {}),
    (
        "raw_adagrad",
        "raw_adagrad",
        {"Param": f(2, 3), "Grad": f(2, 3), "Moment": f(2, 3, lo=0.5), "LearningRate": torch.tensor([0.1])},
        {"epsilon": 1e-6},
    ),
    (
        "raw_momentum",
        "raw_momentum",
        {"Param": f(2, 3), "Grad": f(2, 3), "Velocity": f(2, 3), "LearningRate": torch.tensor([0.1])},
        {"mu": 0.9, "use_nesterov": True},
    ),
    (
        "raw_adamax",
        "raw_adamax",
        {
            "Param": f(2, 3),
            "Grad": f(2, 3),
            "LearningRate": torch.tensor([0.1]),
            "Moment": f(2, 3),
            "InfNorm": f(2, 3, lo=0.5),
            "Beta1Pow": torch.tensor([0.9]),
        },
        {},
    ),
    (
        "raw_adadelta",
        "raw_adadelta",
        {"Param": f(2, 3), "Grad": f(2, 3), "AvgSquaredGrad": f(2, 3, lo=0.5), "AvgSquaredUpdate": f(2, 3, lo=0.5)},
        {"rho": 0.9},
    ),
    ("raw_lamb", "raw_lamb", _adam_slots(), {"weight_decay": 0.01}),
]
# ops whose forward cannot run on meta tensors (their layers append them without shape inference)
NO_META = {"parallel_do_slice", "parallel_do_copy", "data_parallel_split", "data_parallel_allreduce"}
# (op type, slot) -> the sequence lengths its sample input is fed with (its LoD, matching the offsets attr)
FED_LOD = {("sequence_pool", "X"): [[2, 3]]}
# op types without input slots: nothing to leave out
NO_INPUTS = {
    "fill_constant",
    "assign_value",
    "initializer",
    "uniform_random",
    "gaussian_random",
    "copy_layer_parameter",
}
# (op type, slot): required by Paddle's op proto though torchfluid's forward does not read it
PROTO_ONLY = {("accuracy", "Out")}
# every dispensable slot of the registry, as Paddle's op makers have them (the optimize section ops' own)
DISPENSABLE = {
    "raw_rmsprop": {"MeanGrad"},  # AsDispensable in Paddle's RMSPropOpMaker; needed when centered
    "raw_adam": {"Beta1Tensor", "Beta2Tensor", "EpsilonTensor"},  # AsDispensable in Paddle's AdamOpMaker
    "raw_adadelta": {"LearningRate"},  # later Paddle's slot; the op of the 2.0-2.4 op tests has none
    "raw_lamb": {"SkipUpdate"},  # AsDispensable in Paddle's LambOpMaker (2.3)
    "lr_schedule": {"LearningRate"},
    **{t: {"MasterParam", "Counter", "RoundingStep", "HyperParam"} for t in OPTIMIZE_OP_TYPES},
}


def _ids(rows):
    return [r[0] for r in rows]


def test_every_registered_op_type_is_in_the_tables():
    covered = {r[1] for r in SAMPLES} | NO_INPUTS | set(OPTIMIZE_OP_TYPES)
    assert covered == set(registered_types())
    assert all(not get_op(t).inputs for t in NO_INPUTS)
    assert {t: set(get_op(t).dispensable) for t in registered_types() if get_op(t).dispensable} == DISPENSABLE


def _forward(op_type, inputs, attrs, without=None):
    """Run op_type's forward on copies of ``inputs``, ``without`` given as absent; its result, or
    for an in-place op the updated copy of its first input."""
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
    out = opdef.forward(*args, **attrs)
    return args[0] if opdef.inplace else out


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


def _outputs(op_type, names, inputs, attrs):
    """Output names: an in-place op's ``<S>Out`` names its input ``<S>``'s variable; a list
    output slot gets one variable per tensor the forward gives it."""
    opdef = get_op(op_type)
    if opdef.inplace:
        return {s: names[s[: -len("Out")]] for s in opdef.outputs if s[: -len("Out")] in names}
    res = _forward(op_type, inputs, attrs)
    res = (res,) if len(opdef.outputs) == 1 else res
    return {
        s: [f"out_{s.lower()}"] if s not in opdef.list_slots else [f"out_{s.lower()}_{i}" for i in range(len(r))]
        for s, r in zip(opdef.outputs, res, strict=True)
    }


@pytest.mark.parametrize("label,op_type,inputs,attrs", SAMPLES, ids=_ids(SAMPLES))
def test_append_op_refuses_each_missing_required_input(label, op_type, inputs, attrs):
    for slot, required in _slots_of(op_type, attrs):
        main, names = _program(inputs)
        block = main.global_block()
        given = {s: n for s, n in names.items() if s != slot}
        outputs = {s: n for s, n in _outputs(op_type, names, inputs, attrs).items() if s != slot + "Out"}
        before = set(block.vars)
        if required:
            msg = rf"op '{op_type}' needs input slot '{slot}'.*, got slots {sorted(given)!r}".replace("[", r"\[")
            with pytest.raises(OpBuildError, match=msg):
                block.append_op(op_type, given, outputs, attrs, infer=op_type not in NO_META)
            assert block.ops == [] and set(block.vars) == before  # nothing appended, no variable made
        else:
            block.append_op(op_type, given, outputs, attrs, infer=op_type not in NO_META)
            assert [op.type for op in block.ops] == [op_type]
    main, names = _program(inputs)  # with every slot it builds and runs, its first output as the forward's
    outputs = _outputs(op_type, names, inputs, attrs)
    main.global_block().append_op(op_type, names, outputs, attrs, infer=op_type not in NO_META)
    scope, feed = fluid.Scope(), {}
    for slot, ns in names.items():
        ts = inputs[slot] if isinstance(inputs[slot], list) else [inputs[slot]]
        for n, t in zip(ns, ts, strict=True):
            if (op_type, slot) in FED_LOD:  # sequences come with their feed
                feed[n] = fluid.create_lod_tensor(t.numpy(), FED_LOD[op_type, slot], PLACE)
            else:
                scope.var(n).get_tensor().set(t.numpy(), PLACE)
    first = outputs[get_op(op_type).outputs[0]][0]
    (got,) = fluid.Executor(PLACE).run(main, feed=feed, scope=scope, fetch_list=[first])
    want = _forward(op_type, inputs, attrs)
    want = want[0] if isinstance(want, (list, tuple)) else want
    if op_type != "dropout":  # a random mask
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-6)


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


# ---------------------------------------------------------------- restored objects


def _programs(init=None, reg=None, make_opt=None):
    """(main, startup) of an fc net with these parameter attributes, minimized by ``make_opt()``."""
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = fluid.data("x", [None, 3], "float32")
        h = fluid.layers.fc(x, 2, param_attr=fluid.ParamAttr(initializer=init, regularizer=reg))
        (make_opt or (lambda: fluid.optimizer.RMSProp(0.1)))().minimize(fluid.layers.mean(h))
    return main, start


def _round_trips(program):
    text = program.desc.serialize_to_string()
    parsed = fluid.Program.parse_from_string(text)
    assert parsed.desc.serialize_to_string() == text
    return parsed


_L = fluid.layers
# every kind of object a program description restores, made validly: each loads and re-describes as it was
VALID_OBJECTS = [
    *[
        (f"init {type(i).__name__}", {"init": i})
        for i in (
            I.Constant(0.5),
            I.Uniform(-0.5, 0.5, seed=3, diag_num=2, diag_step=1, diag_val=2.0),
            I.Normal(0.1, 0.2, seed=4),
            I.TruncatedNormal(0.0, 0.3),
            I.Xavier(uniform=False, fan_in=3.0),
            I.MSRA(),
            I.NumpyArrayInitializer(np.ones((3, 2), np.float32)),
            I.XavierUniform(),
            I.XavierNormal(fan_out=4),
            I.KaimingUniform(),
            I.KaimingNormal(fan_in=2),
        )
    ],
    ("reg L1Decay", {"reg": fluid.regularizer.L1Decay(0.1)}),
    ("reg L2Decay fluid name", {"reg": fluid.regularizer.L2Decay(regularization_coeff=0.2)}),
    (
        "rmsprop every option",
        {
            "make_opt": lambda: fluid.optimizer.RMSProp(
                0.1,
                centered=True,
                momentum=0.9,
                nesterov=True,
                lazy_mode=True,
                grad_clip=fluid.clip.GradientClipByGlobalNorm(1.0),
                regularization=fluid.regularizer.L2Decay(0.01),
            )
        },
    ),
    (
        "rmsprop precision",
        {
            "make_opt": lambda: fluid.optimizer.RMSProp(
                0.1, multi_precision=True, nonfinite="skip", bias_correction=True, eps_in_sqrt=False
            )
        },
    ),
    ("rmsprop bfloat16 state", {"make_opt": lambda: fluid.optimizer.RMSProp(0.1, state_dtype=torch.bfloat16)}),
    ("sgd", {"make_opt": lambda: fluid.optimizer.SGD(0.1)}),
    ("adam", {"make_opt": lambda: fluid.optimizer.Adam(0.01, beta1=0.8)}),
    *[
        (f"scheduler {type(s).__name__}", {"make_opt": lambda s=s: fluid.optimizer.RMSProp(s)})
        for s in (
            S.NoamDecay(10, 5),
            S.PiecewiseDecay([2], [0.1, 0.01]),
            S.NaturalExpDecay(0.1, 0.5),
            S.InverseTimeDecay(0.1, 0.5),
            S.PolynomialDecay(0.1, 10, cycle=True),
            S.LinearWarmup(S.ExponentialDecay(0.1, 0.9), 5, 0.0, 0.1),
            S.ExponentialDecay(0.1, 0.9, verbose=True),
            S.MultiStepDecay(0.1, [2, 4]),
            S.StepDecay(0.1, 3),
            S.CosineAnnealingDecay(0.1, 10),
            S.ReduceOnPlateau(0.1),
            S.OneCycleLR(0.1, 100),
            S.LinearLR(0.1, 10),
            S.CosineAnnealingWarmRestarts(0.1, 5),
        )
    ],
    *[
        (f"decay {name}", {"make_opt": lambda d=d: fluid.optimizer.SGD(d())})
        for name, d in (
            ("piecewise", lambda: _L.piecewise_decay([2, 4], [0.1, 0.05, 0.01])),
            ("exponential", lambda: _L.exponential_decay(0.1, 3, 0.5, True)),
            ("natural_exp", lambda: _L.natural_exp_decay(0.1, 3, 0.5)),
            ("inverse_time", lambda: _L.inverse_time_decay(0.1, 3, 0.5)),
            ("polynomial", lambda: _L.polynomial_decay(0.1, 10, 0.001, 2.0, True)),
            ("cosine", lambda: _L.cosine_decay(0.1, 5, 3)),
            ("noam", lambda: _L.noam_decay(16, 4)),
            ("warmup", lambda: _L.linear_lr_warmup(0.1, 3, 0.0, 0.1)),
            ("warmup of a decay", lambda: _L.linear_lr_warmup(_L.exponential_decay(0.1, 3, 0.5), 3, 0.0, 0.1)),
        )
    ],
]


@pytest.mark.parametrize("label,kw", VALID_OBJECTS, ids=_ids(VALID_OBJECTS))
def test_valid_objects_load_as_they_were(label, kw, capsys):
    main, start = _programs(**kw)
    _round_trips(start)
    parsed = _round_trips(main)
    assert capsys.readouterr().out == ""  # a verbose scheduler is rebuilt silently
    assert [op.type for op in parsed.global_block().ops] == [op.type for op in main.global_block().ops]


def _described():
    """The descriptions the bad-object cases mutate: ``main``/``startup`` of a net with a uniform
    initializer, an L1Decay parameter regularizer and RMSProp (an ExponentialDecay scheduler,
    momentum, L2Decay); ``decay`` is a main program whose rate is fluid.layers.exponential_decay."""
    main, start = _programs(
        I.Uniform(-0.5, 0.5),
        fluid.regularizer.L1Decay(0.01),
        lambda: fluid.optimizer.RMSProp(
            S.ExponentialDecay(0.1, 0.9), momentum=0.5, regularization=fluid.regularizer.L2Decay(0.1)
        ),
    )
    decay, _ = _programs(make_opt=lambda: fluid.optimizer.SGD(_L.exponential_decay(0.1, 2, 0.5, staircase=True)))
    return {"main": main, "startup": start, "decay": decay}


def _find_object(d, cls):
    """The first described object of class name ``cls`` in ``d``."""
    if isinstance(d, dict):
        if str(d.get("__object__", "")).endswith(":" + cls):
            return d
        d = list(d.values())
    if isinstance(d, list):
        return next((o for o in (_find_object(v, cls) for v in d) if o is not None), None)
    return None


def _field(cls, field, value, mapping=None):
    """Set ``field`` of the first described ``cls`` object's state (of its ``mapping`` field) to ``value``."""

    def mutate(d):
        items = _find_object(d, cls)["state"]["__dict__"]
        if mapping is not None:
            items = next(v for k, v in items if k == mapping)["__mapping__"]
        for item in items:
            if item[0] == field:
                item[1] = value
                return
        items.append([field, value])

    return mutate


def _no_field(cls, field):
    def mutate(d):
        state = _find_object(d, cls)["state"]
        state["__dict__"] = [item for item in state["__dict__"] if item[0] != field]

    return mutate


def _both(*mutations):
    def mutate(d):
        for m in mutations:
            m(d)

    return mutate


def _op_of(d, op_type):
    return next(op for op in d["blocks"][0]["ops"] if op["type"] == op_type)


def _op_attr(op_type, name, value):
    def mutate(d):
        attrs = _op_of(d, op_type)["attrs"]
        if value is _DROP:
            del attrs[name]
        else:
            attrs[name] = value

    return mutate


def _lr_param(name, value):
    def mutate(d):
        items = _op_of(d, "lr_schedule")["attrs"]["params"]["__dict__"]
        if value is _DROP:
            items[:] = [item for item in items if item[0] != name]
            return
        for item in items:
            if item[0] == name:
                item[1] = value
                return
        items.append([name, value])

    return mutate


def _param_field(field, value):
    def mutate(d):
        var = next(v for v in d["blocks"][0]["vars"] if v["kind"] == "param")
        var[field] = value

    return mutate


def _tuple(*items):
    return {"__tuple__": list(items)}


_DROP = object()
NAN = float("nan")
_REG, _L1, _INIT = "torchfluid.regularizer:L2Decay", "torchfluid.regularizer:L1Decay", "UniformInitializer"
_CFG, _SEC, _SCHED = "'torchfluid.optimizer.pipeline:UpdateConfig'", "OptimizeSection", "ExponentialDecay"
# (case, which description, mutation, message): each a ProgramDescError naming the object and field
BAD_OBJECTS = [
    ("L2Decay coeff str", "main", _field("L2Decay", "_coeff", "abc"), rf"'{_REG}': ArgumentTypeError: coeff must be a"),
    ("L2Decay coeff -1", "main", _field("L2Decay", "_coeff", -1), rf"'{_REG}': ValueError: coeff must be >= 0, got -1"),
    (
        "L2Decay coeff nan",
        "main",
        _field("L2Decay", "_coeff", NAN),
        r"coeff must be >= 0, got nan.*fields coeff=_coeff",
    ),
    (
        "L1Decay regularization_coeff str",
        "main",
        _both(_no_field("L1Decay", "_coeff"), _field("L1Decay", "regularization_coeff", "abc")),
        rf"'{_L1}': ArgumentTypeError: regularization_coeff must be a real number >= 0, got 'abc'",
    ),
    ("L1Decay coeff missing", "main", _no_field("L1Decay", "_coeff"), rf"'{_L1}': field '_coeff' is missing"),
    ("L1Decay unknown field", "main", _field("L1Decay", "bogus", 1), r"unknown field 'bogus'; allowed: _coeff"),
    (
        "Uniform low above high",
        "startup",
        _field(_INIT, "_low", 2.0),
        r"UniformInitializer': ValueError: high must be >= low, got low=2.0, high=0.5",
    ),
    ("Uniform seed -3", "startup", _field(_INIT, "_seed_value", -3), r"seed must be an int >= 0, got -3.*seed=_seed"),
    ("Uniform low str", "startup", _field(_INIT, "_low", "x"), r"ArgumentTypeError: low must be a real number"),
    (
        "Uniform diag_num -1",
        "startup",
        _field(_INIT, "_diag", _tuple(-1, 0, 1.0)),
        r"diag_num must be an int >= 0, got -1.*diag_num=_diag\[0\]",
    ),
    (
        "Normal std -1",
        "startup",
        lambda d: _find_object(d, _INIT).update(
            {"__object__": "torchfluid.initializer:NormalInitializer", "state": {"__dict__": [["_std_dev", -1]]}}
        ),
        r"NormalInitializer': ValueError: scale must be >= 0, got -1 .*scale=_std_dev",
    ),
    (
        "Constant force_cpu str",
        "startup",
        _field("ConstantInitializer", "_force_cpu", "yes"),
        r"ConstantInitializer': field '_force_cpu' is 'yes'; its constructor makes True",
    ),
    ("scheduler gamma 0", "main", _field(_SCHED, "gamma", 0.0), r"ExponentialDecay': ValueError: gamma must be in"),
    ("scheduler base_lr -1", "main", _field(_SCHED, "base_lr", -1.0), r"learning_rate must be >= 0.*=base_lr"),
    ("scheduler last_lr str", "main", _field(_SCHED, "last_lr", "abc"), r"state_dict\['last_lr'\] must be a number"),
    ("scheduler last_epoch -5", "main", _field(_SCHED, "last_epoch", -5), r"last_epoch must be an int >= -1"),
    ("scheduler _var_name int", "main", _field(_SCHED, "_var_name", 3), r"field '_var_name' must be a str, got 3"),
    ("rho 1.5", "main", _field("UpdateConfig", "rho", 1.5, "hparams"), rf"{_CFG}: ValueError: rho must be in \[0, 1\)"),
    ("epsilon -1", "main", _field("UpdateConfig", "epsilon", -1.0, "hparams"), r"epsilon must be >= 0, got -1.0"),
    ("momentum nan", "main", _field("UpdateConfig", "momentum", NAN, "hparams"), r"momentum must be >= 0, got nan"),
    ("lr_mult -1", "main", _field("UpdateConfig", "lr_mult", -1.0, "hparams"), r"hparams\['lr_mult'\] is -1.0; RMSP"),
    ("centered str", "main", _field("UpdateConfig", "centered", "yes", "hparams"), r"centered must be True or False"),
    ("unknown hparam", "main", _field("UpdateConfig", "bogus", 1.0, "hparams"), r"hparams has unknown key 'bogus'"),
    ("nonfinite", "main", _field("UpdateConfig", "nonfinite", "bogus"), r"nonfinite must be one of 'propagate'"),
    ("config rate str", "main", _field("UpdateConfig", "learning_rate", "x"), r"field 'learning_rate' is 'x'; allowed"),
    ("config name int", "main", _field("UpdateConfig", "name", 5), r"field 'name' must be a str or None, got 5"),
    ("section lr_mults", "main", _field(_SEC, "lr_mults", _tuple(-1.0, 1.0)), r"field 'lr_mults' is \(-1.0, 1.0\)"),
    ("section need_clip", "main", _field(_SEC, "need_clip", _tuple(1, 1)), r"field 'need_clip' is \(1, 1\); allowed"),
    ("section accumulators", "main", _field(_SEC, "accumulators", _tuple("mean_square")), r"'accumulators' is"),
    ("section master_index", "main", _field(_SEC, "master_index", _tuple(7)), r"field 'master_index' is \(7,\)"),
    ("section names", "main", _field(_SEC, "names", _tuple("fc_0.w_0", "x")), r"input Param is \['fc_0.b_0', 'fc_0.w"),
    ("section counter_steps", "main", _field(_SEC, "counter_steps", _tuple(1.0)), r"input Counter names 0 variables"),
    (
        "decay decay_steps 0",
        "decay",
        _lr_param("decay_steps", 0.0),
        r"ExponentialDecay\): ValueError: decay_steps must",
    ),
    ("decay decay_rate str", "decay", _lr_param("decay_rate", "x"), r"decay_rate must be a real number"),
    ("decay staircase str", "decay", _lr_param("staircase", "yes"), r"params\['staircase'\] is 'yes'; Exponential"),
    ("decay param missing", "decay", _lr_param("decay_rate", _DROP), r"attribute 'params' is .*allowed: a dict of"),
    ("decay unknown param", "decay", _lr_param("bogus", 1.0), r"op lr_schedule attribute 'params' is"),
    ("decay schedule", "decay", _op_attr("lr_schedule", "schedule", "check_piecewise"), r"'schedule' is 'check_pi"),
    ("decay dtype", "decay", _op_attr("lr_schedule", "dtype", "int8"), r"dtype must be one of \('float32', 'float"),
    ("decay no params", "decay", _op_attr("lr_schedule", "params", _DROP), r"op lr_schedule needs attribute 'params'"),
    ("initializer op attr int", "startup", _op_attr("initializer", "initializer", 5), r"'initializer' is 5; allowed"),
    ("optimize op section", "main", _op_attr("rmsprop", "section", 1), r"op rmsprop attribute 'section' is 1; allowed"),
    ("param regularizer int", "main", _param_field("regularizer", 5), r"field 'regularizer' is 5; allowed: a regul"),
    ("param initializer str", "main", _param_field("initializer", "x"), r"field 'initializer' is 'x'; allowed: an ini"),
    ("param lr -1", "main", _param_field("optimize_attr", {"__dict__": [["learning_rate", -1.0]]}), r"must be >= 0"),
    ("param optimize_attr", "main", _param_field("optimize_attr", 3), r"field 'optimize_attr' must be a dict, got 3"),
    ("var lod_level -1", "main", _param_field("lod_level", -1), r"field 'lod_level' is -1; allowed: an int >= 0"),
    ("var lod_level str", "main", _param_field("lod_level", "1"), r"field 'lod_level' is '1'; allowed: an int"),
    ("var type int", "main", _param_field("type", 7), r"variable 'fc_0.w_0' field 'type' must be a str, got 7"),
]


@pytest.mark.parametrize("case,which,mutation,match", BAD_OBJECTS, ids=_ids(BAD_OBJECTS))
def test_a_restored_object_is_checked_as_its_constructor_checks_it(case, which, mutation, match):
    program = _described()[which]
    desc = json.loads(program.desc.serialize_to_string())
    mutation(desc)
    with pytest.raises(ProgramDescError, match=match):
        fluid.Program.parse_from_string(json.dumps(desc))
    _round_trips(program)  # unchanged, it loads
