"""program.desc.serialize_to_string() / Program.parse_from_string: a parsed program trains
bit for bit like the original, re-serializes to the same text, and loading runs no code."""

import json

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import initializer as I
from torchfluid.static.program_desc import ProgramDescError, parse_program, serialize_program


def _net(make_opt, seed_init=False):
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        words = [fluid.data(name=f"w{i}", shape=[-1, 1], dtype="int64") for i in range(3)]
        emb = [fluid.layers.embedding(input=w, size=[30, 6], param_attr="shared_w") for w in words[:2]]
        h = fluid.layers.fc(
            fluid.layers.concat(emb, axis=1),
            12,
            act="tanh",
            param_attr=fluid.ParamAttr(
                regularizer=fluid.regularizer.L1Decay(0.01), initializer=I.Normal(0.0, 0.3, seed=5 if seed_init else 0)
            ),
        )
        pred = fluid.layers.fc(h, 30, act="softmax")
        cost = fluid.layers.mean(fluid.layers.cross_entropy(pred, words[2]))
        make_opt().minimize(cost)
    return main, startup, cost


# (label, optimizer factory): each configuration round-trips
CONFIGS = [
    (
        "rmsprop centered momentum L2 global-norm",
        lambda: fluid.optimizer.RMSProp(
            learning_rate=0.01,
            momentum=0.5,
            centered=True,
            regularization=fluid.regularizer.L2Decay(0.1),
            grad_clip=fluid.clip.GradientClipByGlobalNorm(0.5),
        ),
    ),
    (
        "rmsprop clip by value",
        lambda: fluid.optimizer.RMSProp(
            learning_rate=0.02, rho=0.9, epsilon=1e-4, grad_clip=fluid.clip.GradientClipByValue(0.01)
        ),
    ),
    (
        "rmsprop exponential decay",
        lambda: fluid.optimizer.RMSProp(
            learning_rate=fluid.layers.exponential_decay(0.05, decay_steps=2, decay_rate=0.5, staircase=True)
        ),
    ),
    ("sgd clip by norm", lambda: fluid.optimizer.SGD(learning_rate=0.3, grad_clip=fluid.clip.GradientClipByNorm(0.2))),
    ("adam", lambda: fluid.optimizer.Adam(learning_rate=0.01)),
    ("adagrad l2", lambda: fluid.optimizer.Adagrad(learning_rate=0.1, regularization=fluid.L2Decay(0.01))),
    (
        "momentum nesterov clip by norm",
        lambda: fluid.optimizer.Momentum(0.05, 0.9, use_nesterov=True, grad_clip=fluid.clip.GradientClipByNorm(0.2)),
    ),
    ("adamw", lambda: fluid.optimizer.AdamW(learning_rate=0.05, weight_decay=0.2, lazy_mode=True)),
    (
        "adam multi_precision nonfinite skip",
        lambda: fluid.optimizer.Adam(learning_rate=0.01, multi_precision=True, nonfinite="skip"),
    ),
    (
        "adamw multi_precision amsgrad",
        lambda: fluid.optimizer.AdamW(learning_rate=0.05, multi_precision=True, amsgrad=True),
    ),
    ("lamb nonfinite raise", lambda: fluid.optimizer.Lamb(learning_rate=0.01, nonfinite="raise")),
]


def _train(startup, main, cost_name, steps=4):
    rng = np.random.default_rng(1)
    exe = fluid.Executor(fluid.CPUPlace())
    scope = fluid.Scope()
    with fluid.scope_guard(scope):
        torch.manual_seed(7)
        exe.run(startup)
        losses = [
            exe.run(
                main,
                feed={f"w{i}": rng.integers(0, 30, (8, 1)).astype("int64") for i in range(3)},
                fetch_list=[cost_name],
            )[0]
            for _ in range(steps)
        ]
        params = {n: np.array(scope.find_var(n).get_tensor()) for n in ("shared_w", "fc_0.w_0", "fc_1.b_0")}
    return losses, params


@pytest.mark.parametrize("label,make_opt", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_parsed_program_trains_bit_for_bit(label, make_opt):
    main, startup, cost = _net(make_opt)
    texts = [main.desc.serialize_to_string(), startup.desc.serialize_to_string()]
    assert all(isinstance(t, str) for t in texts)
    main2 = fluid.Program.parse_from_string(texts[0])
    startup2 = fluid.Program.parse_from_string(texts[1].encode("utf-8"))  # bytes too
    assert [op.type for op in main2.global_block().ops] == [op.type for op in main.global_block().ops]
    assert main2.desc.serialize_to_string() == texts[0]  # a fixed point
    assert startup2.desc.serialize_to_string() == texts[1]
    want_losses, want_params = _train(startup, main, cost.name)
    got_losses, got_params = _train(startup2, main2, cost.name)
    np.testing.assert_array_equal(np.concatenate(got_losses), np.concatenate(want_losses))
    assert not np.array_equal(want_losses[0], want_losses[-1])  # it trained
    for n, v in want_params.items():
        np.testing.assert_array_equal(got_params[n], v)


def test_parameters_keep_their_attributes_and_seeds():
    main, startup, _ = _net(CONFIGS[0][1], seed_init=True)
    startup.random_seed = 11
    s2 = fluid.Program.parse_from_string(startup.desc.serialize_to_string())
    m2 = fluid.Program.parse_from_string(main.desc.serialize_to_string())
    assert s2.random_seed == 11
    w = m2.global_block().var("fc_0.w_0")
    assert isinstance(w.regularizer, fluid.regularizer.L1Decay) and w.regularizer.coeff == 0.01
    assert isinstance(w.initializer, I.NormalInitializer)
    assert [p.name for p in m2.all_parameters()] == [p.name for p in main.all_parameters()]


def _startup_text():
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup):
        fluid.layers.fc(fluid.data(name="x", shape=[-1, 3], dtype="float32"), 2)
    return startup.desc.serialize_to_string()


def _replace_initializer(text, obj):
    desc = json.loads(text)
    desc["blocks"][0]["ops"][0]["attrs"]["initializer"] = obj
    return json.dumps(desc)


# loading refuses anything but torchfluid's program-attribute classes: no code from the text runs
HOSTILE = [
    ("os.system", {"__object__": "os:system", "state": None}, "not torchfluid's"),
    ("builtins eval", {"__object__": "builtins:eval", "state": None}, "not torchfluid's"),
    (
        "a torchfluid class of another kind",
        {"__object__": "torchfluid.static.framework:Program", "state": None},
        "not a program-attribute kind",
    ),
    (
        "a torchfluid function",
        {"__object__": "torchfluid.checkpoint.format:load", "state": None},
        "not a program-attribute kind",
    ),
    ("missing class", {"__object__": "torchfluid.initializer:NoSuch", "state": None}, "does not exist"),
    ("object dtype array", {"__array__": {"dtype": "object", "shape": [1], "data": [1]}}, "not numeric"),
    ("unknown tag", {"__pickle__": "x"}, "malformed value"),
]


@pytest.mark.parametrize("label,obj,match", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_parse_refuses_foreign_objects(label, obj, match):
    with pytest.raises(ProgramDescError, match=match):
        fluid.Program.parse_from_string(_replace_initializer(_startup_text(), obj))


@pytest.mark.parametrize(
    "text,match",
    [
        (b"\xff\xfe", "UTF-8 JSON expected"),
        ("{not json", "JSON expected"),
        (json.dumps({"format": "other"}), "format 'torchfluid-program' expected"),
        (json.dumps({"format": "torchfluid-program", "version": 99}), "version 99"),
        (json.dumps({"format": "torchfluid-program", "version": 1, "random_seed": 0}), "malformed program"),
    ],
)
def test_parse_rejects_bad_text(text, match):
    with pytest.raises(ProgramDescError, match=match):
        fluid.Program.parse_from_string(text)


def test_parse_rejects_non_text():
    with pytest.raises(TypeError, match="expected str or bytes, got int"):
        fluid.Program.parse_from_string(3)


def test_serializing_a_foreign_attribute_names_the_op():
    main = fluid.Program()
    block = main.global_block()
    out = block.create_var("o", [2], "float32")
    block.append_op(
        "initializer", {}, {"Out": [out]}, {"shape": [2], "dtype": "float32", "initializer": lambda t: t, "seed": 0}
    )
    with pytest.raises(ProgramDescError, match="op initializer .* attribute 'initializer' is a builtins.function"):
        main.desc.serialize_to_string()


def test_data_variables_keep_whether_their_feeds_are_checked():
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        fluid.data("checked", [None, 3], "float32")
        fluid.layers.data("lax", [3], dtype="float32")
    text = serialize_program(main)
    parsed = parse_program(text).global_block().vars
    assert parsed["checked"].need_check_feed is True and parsed["lax"].need_check_feed is False
    older = json.loads(text)  # a text written before the flag existed: lax, as fluid.layers.data
    for block in older["blocks"]:
        for var in block["vars"]:
            var.pop("need_check_feed", None)
    assert parse_program(json.dumps(older)).global_block().vars["checked"].need_check_feed is False


def test_adamw_with_a_function_argument_cannot_be_described():
    main, startup, _ = _net(lambda: fluid.optimizer.AdamW(0.05, apply_decay_param_fun=lambda name: True))
    with pytest.raises(ProgramDescError, match=r"op adamw .* is a builtins.function"):
        main.desc.serialize_to_string()
