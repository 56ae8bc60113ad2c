"""Static persistence: save/load persistables and fluid.save/load round trips, checks
before any change, safe formats."""

import os
import pickle

import numpy as np
import pytest

import torchfluid as fluid
from torchfluid import layers as L
from torchfluid.checkpoint import CheckpointError

FEED = {"x": np.ones((4, 13), "float32"), "y": np.zeros((4, 1), "float32")}


def trained_program():
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = L.data("x", [13])
        y = L.data("y", [1])
        loss = L.mean(L.square_error_cost(L.fc(x, 1), y))
        fluid.optimizer.RMSProp(0.1, momentum=0.5).minimize(loss)
    return main, start, loss


def state(scope, program):
    return {v.name: np.array(scope.find_var(v.name).get_tensor()) for v in program.list_vars() if v.persistable}


def train_and_save(tmp_path, kind):
    """Three runs of the trained program, its persistables then saved in the ``kind`` layout;
    returns (program, startup, loss, executor, the saved values, the next run's loss)."""
    main, start, loss = trained_program()
    scope, exe = fluid.Scope(), fluid.Executor()
    with fluid.scope_guard(scope):
        exe.run(start)
        for _ in range(3):
            exe.run(main, feed=FEED, fetch_list=[loss])
        saved = state(scope, main)
        if kind == "dir":
            fluid.io.save_persistables(exe, str(tmp_path), main)
            assert os.path.isfile(tmp_path / "fc_0.w_0_momentum_0")
        elif kind == "single_file":
            fluid.io.save_persistables(exe, str(tmp_path), main, filename="all")
        else:
            fluid.save(main, str(tmp_path / "model"))
            assert os.path.isfile(tmp_path / "model.pdparams") and os.path.isfile(tmp_path / "model.pdopt")
        next_loss = exe.run(main, feed=FEED, fetch_list=[loss])[0]
    return main, start, loss, exe, saved, next_loss


@pytest.mark.parametrize("kind", ["dir", "single_file", "fluid_save"])
def test_round_trip_restores_params_and_accumulators(tmp_path, kind):
    main, start, loss, exe, saved, next_loss = train_and_save(tmp_path, kind)
    scope2 = fluid.Scope()
    with fluid.scope_guard(scope2):
        exe.run(start)
        if kind == "dir":
            fluid.io.load_persistables(exe, str(tmp_path), main)
        elif kind == "single_file":
            fluid.io.load_persistables(exe, str(tmp_path), main, filename="all")
        else:
            fluid.load(main, str(tmp_path / "model"), exe)
        for n, v in saved.items():
            np.testing.assert_array_equal(np.array(scope2.find_var(n).get_tensor()), v)
        np.testing.assert_array_equal(exe.run(main, feed=FEED, fetch_list=[loss])[0], next_loss)


def test_bad_files_leave_the_scope_unchanged(tmp_path):
    main, start, loss = trained_program()
    scope, exe = fluid.Scope(), fluid.Executor()
    with fluid.scope_guard(scope):
        exe.run(start)
        fluid.io.save_params(exe, str(tmp_path), main)
        before = state(scope, main)
        # another program whose fc has another shape: the load must refuse before writing
        other, ostart = fluid.Program(), fluid.Program()
        with fluid.program_guard(other, ostart), fluid.unique_name.guard():
            L.fc(L.data("x", [5]), 1)
        with pytest.raises(ValueError, match="'fc_0.w_0' has shape \\[13, 1\\], the program expects \\[5, 1\\]"):
            fluid.io.load_params(exe, str(tmp_path), other)
        with pytest.raises(FileNotFoundError, match="no file for variable 'learning_rate_0'"):
            fluid.io.load_persistables(exe, str(tmp_path), main)
        after = state(scope, main)
    for n in before:
        np.testing.assert_array_equal(before[n], after[n])


def test_a_malicious_pickle_is_refused_without_running_it(tmp_path):
    main, start, loss = trained_program()
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "model.pdparams").write_bytes(pickle.dumps({"fc_0.w_0": Evil()}))
    with fluid.scope_guard(fluid.Scope()):
        with pytest.raises(CheckpointError):
            fluid.load(main, str(tmp_path / "model"), fluid.Executor())
    assert not marker.exists()


def test_fluid_save_load_still_take_plain_objects(tmp_path):
    fluid.save({"a": np.arange(3)}, str(tmp_path / "obj"))
    assert fluid.load(str(tmp_path / "obj"))["a"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("kind", ["dir", "single_file", "fluid_save", "fluid_save_suffix"])
def test_load_program_state_then_set_program_state_resumes_the_run(tmp_path, kind):
    main, start, loss, exe, saved, next_loss = train_and_save(tmp_path, kind.replace("_suffix", ""))
    path = str(tmp_path / "model") if kind.startswith("fluid_save") else str(tmp_path)
    path += ".pdparams" if kind == "fluid_save_suffix" else ""
    loaded = fluid.io.load_program_state(path)
    assert loaded.keys() == saved.keys()
    for n, v in saved.items():
        assert isinstance(loaded[n], np.ndarray)
        np.testing.assert_array_equal(loaded[n], v)
    only = fluid.load_program_state(path, var_list=[main.global_block().var("fc_0.w_0"), "fc_0.b_0"])
    assert list(only) == ["fc_0.w_0", "fc_0.b_0"]
    with fluid.scope_guard(fluid.Scope()):
        exe.run(start)
        with pytest.warns(UserWarning, match=r"no persistable variable of these names: \['not_in_the_program'\]"):
            fluid.set_program_state(main, {**loaded, "not_in_the_program": np.zeros(2)})
        np.testing.assert_array_equal(exe.run(main, feed=FEED, fetch_list=[loss])[0], next_loss)


def test_program_state_errors_name_the_variable_and_change_nothing(tmp_path):
    main, start, loss = trained_program()
    exe = fluid.Executor()
    with pytest.raises(FileNotFoundError, match=r"neither .*model.pdparams.* nor a directory"):
        fluid.io.load_program_state(str(tmp_path / "model"))
    with fluid.scope_guard(fluid.Scope()):
        with pytest.raises(RuntimeError, match="'fc_0.w_0' holds no value in the scope .*startup"):
            fluid.set_program_state(main, {"fc_0.w_0": np.zeros((13, 1), "float32")})
    scope = fluid.Scope()
    with fluid.scope_guard(scope):
        exe.run(start)
        fluid.save(main, str(tmp_path / "model"))
        with pytest.raises(ValueError, match=r"holds no variable \['nope'\]"):
            fluid.io.load_program_state(str(tmp_path / "model"), var_list=["nope"])
        before = state(scope, main)
        bad = {"fc_0.b_0": np.full((1,), 5.0, "float32"), "fc_0.w_0": np.zeros((5, 1), "float32")}
        with pytest.raises(ValueError, match=r"'fc_0.w_0' has shape \[5, 1\], the program expects \[13, 1\]"):
            fluid.set_program_state(main, bad)
        with pytest.raises(ValueError, match="'fc_0.b_0' has dtype torch.float64, the program expects float32"):
            fluid.set_program_state(main, {"fc_0.b_0": np.zeros(1)})
        with pytest.raises(TypeError, match="state_dict must be a dict, got list"):
            fluid.set_program_state(main, [])
        after = state(scope, main)
    for n in before:  # the valid fc_0.b_0 of the bad dict was not set either
        np.testing.assert_array_equal(before[n], after[n])
