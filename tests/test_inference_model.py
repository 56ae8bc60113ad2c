"""fluid.io.save_inference_model / load_inference_model: pruning, layout, safe loading."""

import json
import os
import pickle

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid.io.inference import InferenceModelError


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.fixture
def model(tmp_path):
    """A trained-looking two-input model saved to tmp_path; returns (dir, reference fn)."""
    torch.manual_seed(0)
    main, startup, scope = fluid.Program(), fluid.Program(), fluid.Scope()
    with fluid.scope_guard(scope), fluid.program_guard(main, startup), fluid.unique_name.guard():
        a = fluid.layers.data(name="a", shape=[4], dtype="float32")
        b = fluid.layers.data(name="b", shape=[4], dtype="float32")
        label = fluid.layers.data(name="label", shape=[1], dtype="int64")
        h = fluid.layers.fc(input=fluid.layers.concat([a, b], axis=1), size=6, act="relu")
        h = fluid.layers.dropout(h, 0.5)
        pred = fluid.layers.fc(input=h, size=3, act="softmax")
        loss = fluid.layers.mean(fluid.layers.cross_entropy(pred, label))
        fluid.optimizer.RMSPropOptimizer(learning_rate=0.1).minimize(loss)
        exe = fluid.Executor()
        exe.run(startup)
        av, bv = np.random.rand(5, 4).astype("float32"), np.random.rand(5, 4).astype("float32")
        exe.run(main, feed={"a": av, "b": bv, "label": np.zeros((5, 1), "int64")}, fetch_list=[loss])
        (ref,) = exe.run(
            main.clone(for_test=True), feed={"a": av, "b": bv, "label": np.zeros((5, 1), "int64")}, fetch_list=[pred]
        )
        names = fluid.io.save_inference_model(str(tmp_path), ["a", "b"], [pred], exe)
    assert names == [pred.name]
    return tmp_path, av, bv, ref


def _load(d, **kw):
    exe = fluid.Executor()
    with fluid.scope_guard(fluid.Scope()):
        prog, feeds, fetch = fluid.io.load_inference_model(str(d), exe, **kw)
        return prog, feeds, fetch, exe


def test_round_trip_is_pruned_and_in_test_mode(model):
    d, av, bv, ref = model
    exe = fluid.Executor()
    with fluid.scope_guard(fluid.Scope()):
        prog, feeds, fetch = fluid.io.load_inference_model(str(d), exe)
        (got,) = exe.run(prog, feed={"a": av, "b": bv}, fetch_list=fetch)
        scope_names = set(fluid.global_scope().local_var_names())
    np.testing.assert_array_equal(got, ref)
    assert feeds == ["a", "b"] and [v.name for v in fetch] == ["softmax_0.tmp_0"]
    ops = [op.type for op in prog.global_block().ops]
    assert ops == ["concat", "mul", "elementwise_add", "relu", "dropout", "mul", "elementwise_add", "softmax"]
    assert all(op.attr("is_test") for op in prog.global_block().ops if op.type == "dropout")
    assert "label" not in prog.global_block().vars  # pruned: only what the prediction needs
    assert scope_names == {"fc_0.w_0", "fc_0.b_0", "fc_1.w_0", "fc_1.b_0"}  # no optimizer state
    assert sorted(os.listdir(d)) == sorted(["__model__", "fc_0.w_0", "fc_0.b_0", "fc_1.w_0", "fc_1.b_0"])
    desc = json.loads((d / "__model__").read_text())
    assert desc["format"] == "torchfluid-inference-program" and desc["feed"] == ["a", "b"]


def test_program_file_is_plain_json_and_a_pickle_is_refused(model):
    d = model[0]
    (d / "__model__").write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(InferenceModelError, match="not a torchfluid inference program"):
        _load(d)


def test_parameter_file_with_code_is_refused(model):
    d = model[0]
    with open(d / "fc_0.w_0", "wb") as f:
        pickle.dump({"fc_0.w_0": _Boom()}, f)
    with pytest.raises(Exception, match="fc_0.w_0") as err:
        _load(d)
    assert "pwned" not in str(err.value)


@pytest.mark.parametrize(
    "edit,msg",
    [
        (
            lambda desc: desc["ops"].append(
                {"type": "initializer", "inputs": {}, "outputs": {"Out": ["x"]}, "attrs": {}}
            ),
            "not allowed in an inference program",
        ),
        (lambda desc: desc["ops"][0].update(type="no_such_op"), "unknown op type 'no_such_op'"),
        (lambda desc: desc.update(version=99), "version 99"),
        (lambda desc: desc.update(ops="x"), "field 'ops' must be a list"),
        (lambda desc: desc["vars"].pop(0), "malformed|not described"),
    ],
)
def test_bad_program_descriptions(model, edit, msg):
    d = model[0]
    desc = json.loads((d / "__model__").read_text())
    edit(desc)
    (d / "__model__").write_text(json.dumps(desc))
    with pytest.raises((InferenceModelError, KeyError), match=msg):
        _load(d)


def test_parameter_shape_checked_before_anything_is_set(model):
    d = model[0]
    from torchfluid.checkpoint import format as ckpt

    ckpt.save({"fc_1.b_0": torch.zeros(7)}, str(d / "fc_1.b_0"))
    scope = fluid.Scope()
    with fluid.scope_guard(scope), pytest.raises(InferenceModelError, match=r"fc_1.b_0.*expects float32\[3\]"):
        fluid.io.load_inference_model(str(d), fluid.Executor())
    assert scope.local_var_names() == []


def test_combined_files(tmp_path):
    main, startup = fluid.Program(), fluid.Program()
    with fluid.scope_guard(fluid.Scope()), fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[3], dtype="float32")
        y = fluid.layers.fc(x, size=2)
        exe = fluid.Executor()
        exe.run(startup)
        xv = np.ones((2, 3), "float32")
        (ref,) = exe.run(main, feed={"x": xv}, fetch_list=[y])
        fluid.io.save_inference_model(str(tmp_path), [x], y, exe, model_filename="m.json", params_filename="p")
    assert sorted(os.listdir(tmp_path)) == ["m.json", "p"]
    prog, feeds, fetch, exe = _load(tmp_path, model_filename="m.json", params_filename="p")
    with fluid.scope_guard(fluid.Scope()):
        prog, feeds, fetch = fluid.io.load_inference_model(str(tmp_path), exe, "m.json", "p")
        np.testing.assert_array_equal(exe.run(prog, feed={"x": xv}, fetch_list=fetch)[0], ref)


@pytest.mark.parametrize(
    "saved_as,load_as,files",
    [
        ("params", None, ["__model__", "params"]),  # recorded in __model__, read back without naming it
        ("params", "params", ["__model__", "params"]),
        ("sub/params", None, ["__model__", "params"]),  # Paddle keeps the base name, in dirname
        (None, None, ["__model__", "fc_0.b_0", "fc_0.w_0"]),  # one file per variable
    ],
)
def test_params_filename_is_recorded(tmp_path, saved_as, load_as, files):
    main, startup = fluid.Program(), fluid.Program()
    with fluid.scope_guard(fluid.Scope()), fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[3], dtype="float32")
        y = fluid.layers.fc(x, size=2)
        exe = fluid.Executor()
        exe.run(startup)
        xv = np.arange(6, dtype="float32").reshape(2, 3)
        (ref,) = exe.run(main, feed={"x": xv}, fetch_list=[y])
        fluid.io.save_inference_model(str(tmp_path), [x], y, exe, params_filename=saved_as)
    assert sorted(os.listdir(tmp_path)) == files
    with open(tmp_path / "__model__", encoding="utf-8") as f:
        assert json.load(f)["params_filename"] == (None if saved_as is None else "params")
    exe = fluid.Executor()
    with fluid.scope_guard(fluid.Scope()):
        prog, feeds, fetch = fluid.io.load_inference_model(str(tmp_path), exe, params_filename=load_as)
        np.testing.assert_array_equal(exe.run(prog, feed={"x": xv}, fetch_list=fetch)[0], ref)


@pytest.mark.parametrize("recorded", ["../elsewhere", "/etc/passwd", 3, ""])
def test_recorded_params_filename_must_be_a_plain_name(model, recorded):
    d = model[0]
    with open(d / "__model__", encoding="utf-8") as f:
        desc = json.load(f)
    desc["params_filename"] = recorded
    with open(d / "__model__", "w", encoding="utf-8") as f:
        json.dump(desc, f)
    with pytest.raises(InferenceModelError, match="params_filename"):
        _load(d)


def test_save_errors(tmp_path):
    main, startup = fluid.Program(), fluid.Program()
    with fluid.scope_guard(fluid.Scope()), fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[3], dtype="float32")
        z = fluid.layers.data(name="z", shape=[3], dtype="float32")
        y = fluid.layers.fc(fluid.layers.elementwise_add(x, z), size=2)
        exe = fluid.Executor()
        with pytest.raises(InferenceModelError, match="depend on variable 'z', which is neither fed"):
            fluid.io.save_inference_model(str(tmp_path / "a"), ["x"], [y], exe)
        with pytest.raises(InferenceModelError, match="'nope' is not in the program"):
            fluid.io.save_inference_model(str(tmp_path / "b"), ["nope"], [y], exe)
        with pytest.raises(RuntimeError, match="run the startup program first"):
            fluid.io.save_inference_model(str(tmp_path / "c"), ["x", "z"], [y], exe)
        with pytest.raises(ValueError, match="target_vars must not be empty"):
            fluid.io.save_inference_model(str(tmp_path / "d"), ["x", "z"], [], exe)


@pytest.mark.parametrize("checked", [True, False])
def test_a_loaded_program_checks_feeds_as_its_data_variables_did(tmp_path, checked):
    """``fluid.data`` feeds are checked, ``fluid.layers.data`` feeds are taken as they are,
    before saving and after loading alike (the flag is in the file)."""
    main, startup, scope = fluid.Program(), fluid.Program(), fluid.Scope()
    with fluid.scope_guard(scope), fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.data("x", [None, 4], "float32") if checked else fluid.layers.data("x", [4], dtype="float32")
        pred = fluid.layers.fc(x, 2)
        exe = fluid.Executor()
        exe.run(startup)
        fluid.io.save_inference_model(str(tmp_path), ["x"], [pred], exe)
    desc = json.loads((tmp_path / "__model__").read_text())
    assert [v["need_check_feed"] for v in desc["vars"] if v["name"] == "x"] == [checked]
    exe = fluid.Executor()
    with fluid.scope_guard(fluid.Scope()):
        prog, _, fetch = fluid.io.load_inference_model(str(tmp_path), exe)
        wide = np.ones((3, 1, 4), "float32")  # not [-1, 4]: mul flattens it to [3, 4]
        if checked:
            with pytest.raises(fluid.static.FeedError, match=r"should have shape \[-1, 4\]"):
                exe.run(prog, feed={"x": wide}, fetch_list=fetch)
        else:
            (got,) = exe.run(prog, feed={"x": wide}, fetch_list=fetch)
            (want,) = exe.run(prog, feed={"x": wide.reshape(3, 4)}, fetch_list=fetch)
            np.testing.assert_array_equal(got, want)


def _trained_line(steps=5):
    """A linear regression trained a few SGD steps in its own programs and scope:
    (main, x, y, cost, exe, scope, feed)."""
    main, startup, scope = fluid.Program(), fluid.Program(), fluid.Scope()
    with fluid.scope_guard(scope), fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[2], dtype="float32")
        y = fluid.layers.data(name="y", shape=[1], dtype="float32")
        cost = fluid.layers.mean(fluid.layers.square_error_cost(fluid.layers.fc(x, size=1), y))
        fluid.optimizer.SGD(learning_rate=0.01).minimize(cost)
        exe = fluid.Executor()
        exe.run(startup)
        feed = {"x": np.array([[1, 1], [1, 2], [3, 4]], "float32"), "y": np.array([[-2], [-3], [-7]], "float32")}
        for _ in range(steps):
            exe.run(main, feed=feed, fetch_list=[cost])
    return main, x, y, cost, exe, scope, feed


def test_prune_with_input_keeps_the_ops_from_the_feeds_to_the_targets():
    main, x, y, cost, exe, scope, feed = _trained_line()
    pruned = main.clone()._prune_with_input(feeded_var_names=["x", "y"], targets=[cost])
    block = pruned.global_block()
    assert [op.type for op in block.ops] == ["mul", "elementwise_add", "elementwise_sub", "square", "mean"]
    assert not any(v.endswith("@GRAD") for v in block.vars) and "learning_rate_0" not in block.vars
    assert sorted(v.name for v in block.vars.values() if v.persistable) == ["fc_0.b_0", "fc_0.w_0"]
    assert len(main.global_block().ops) > len(block.ops)  # the source program is untouched
    with fluid.scope_guard(scope):
        (want,) = exe.run(main.clone(for_test=True), feed=feed, fetch_list=[cost])
        (got,) = exe.run(pruned, feed=feed, fetch_list=[cost.name])
    np.testing.assert_array_equal(got, want)
    # a fed intermediate cuts the ops that compute it
    mul_out = block.ops[0].output_arg_names[0]
    cut = main._prune_with_input([mul_out, "y"], cost.name)
    assert cut.global_block().ops[0].type != "mul" and "x" not in cut.global_block().vars


@pytest.mark.parametrize(
    "feeds,targets,msg",
    [
        ([3], "cost", "feeded_var_names must be names"),
        (["x"], [1.5], "targets must be Variables or names, got float"),
        (["nope"], None, "'nope' is not a variable of the program's global block"),
    ],
)
def test_prune_with_input_refuses_bad_names(feeds, targets, msg):
    main, x, y, cost, exe, scope, feed = _trained_line(steps=0)
    with pytest.raises(ValueError, match=msg):
        main._prune_with_input(feeds, cost if targets is None or targets == "cost" else targets)


def test_save_to_memory_and_load_inference_model_from_bytes(tmp_path):
    main, x, y, cost, exe, scope, feed = _trained_line()
    with fluid.scope_guard(scope):
        fluid.io.save_inference_model(str(tmp_path), ["x", "y"], [cost], exe, main, "model", "params")
        params = fluid.io.save_persistables(exe, None, main._prune_with_input(["x", "y"], [cost]), None)
        (want,) = exe.run(main.clone(for_test=True), feed=feed, fetch_list=[cost])
    assert isinstance(params, bytes)
    model = (tmp_path / "model").read_bytes()
    with fluid.scope_guard(fluid.Scope()):
        prog, feeds, fetch = fluid.io.load_inference_model(None, exe, model, params)
        (got,) = exe.run(prog, feed=feed, fetch_list=fetch)
        assert feeds == ["x", "y"] and len(fetch) == 1
    np.testing.assert_array_equal(got, want)
    # the same bytes load into a program's variables with load_vars / load_persistables
    target = main._prune_with_input(["x", "y"], [cost])
    with fluid.scope_guard(fluid.Scope()):
        fluid.io.load_persistables(exe, None, target, filename=params)
        w = fluid.global_scope().find_var("fc_0.w_0").get_tensor()
    with fluid.scope_guard(scope):
        np.testing.assert_array_equal(np.array(w), np.array(fluid.global_scope().find_var("fc_0.w_0").get_tensor()))


def test_memory_load_and_missing_directory_errors(tmp_path):
    main, x, y, cost, exe, scope, feed = _trained_line(steps=1)
    with fluid.scope_guard(scope):
        fluid.io.save_inference_model(str(tmp_path), ["x", "y"], [cost], exe, main, "model", "params")
        with pytest.raises(ValueError, match="dirname is None, so filename must be None too"):
            fluid.io.save_persistables(exe, None, main, "params")
    model = (tmp_path / "model").read_bytes()
    cases = [
        ((None, exe, model, None), ValueError, "with dirname None, params_filename must be the saved bytes, got None"),
        ((None, exe, None, b"x"), ValueError, "with dirname None, model_filename must be the saved bytes, got None"),
        ((None, exe, "model", b"x"), TypeError, "model_filename must be the saved bytes, got str"),
        ((None, exe, b"not json", b"x"), InferenceModelError, "not a torchfluid inference program"),
        ((None, exe, model, b"junk"), ValueError, "not a torchfluid checkpoint"),
        ((str(tmp_path / "absent"), exe), InferenceModelError, "there is no directory"),
    ]
    for args, exc, msg in cases:
        with fluid.scope_guard(fluid.Scope()):
            with pytest.raises(exc, match=msg):
                fluid.io.load_inference_model(*args)
            assert fluid.global_scope().find_var("fc_0.w_0") is None  # nothing half-loaded


def test_fluid_executor_and_compiler_are_importable_modules():
    import importlib

    import torchfluid.compiler as compiler
    import torchfluid.executor as executor

    assert importlib.reload(executor).Executor is fluid.Executor
    assert executor.global_scope is fluid.global_scope and executor.scope_guard is fluid.scope_guard
    assert compiler.CompiledProgram is fluid.CompiledProgram and fluid.compiler is compiler
    with pytest.raises(AttributeError, match="fluid.executor.ParallelExecutor is not implemented"):
        executor.ParallelExecutor  # noqa: B018
