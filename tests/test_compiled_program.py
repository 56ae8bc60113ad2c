"""fluid.CompiledProgram and with_data_parallel on one process, against independent references:
the same program run on the whole batch (a mean loss, an even split), and per-place runs of the
program on each slice with the gradients combined as Paddle's ParallelExecutor combines them
(each place's loss gradient 1/N, summed) and a numpy RMSProp step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid.static.compiler import split_sizes

RHO, EPS = 0.95, 1e-6


def _build(opt="rmsprop", bn=False, lr=None, seed=7):
    fluid.unique_name.switch()
    main, start = fluid.Program(), fluid.Program()
    main.random_seed = start.random_seed = seed
    with fluid.program_guard(main, start):
        x = fluid.layers.data("x", [4], dtype="float32")
        y = fluid.layers.data("y", [1], dtype="float32")
        h = fluid.layers.fc(x, 3, act="tanh")
        if bn:
            h = fluid.layers.batch_norm(h)
        p = fluid.layers.fc(h, 1)
        loss = fluid.layers.mean(fluid.layers.square_error_cost(p, y))
        if lr is None:
            lr = fluid.layers.exponential_decay(0.05, 2, 0.5)
        if opt == "rmsprop":
            fluid.optimizer.RMSProp(lr, rho=RHO, epsilon=EPS).minimize(loss)
        else:
            fluid.optimizer.SGD(lr).minimize(loss)
    params = sorted(q.name for q in main.global_block().all_parameters() if q.trainable)
    return main, start, loss, params


def _data(rows, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rows, 4)).astype("float32"), rng.standard_normal((rows, 1)).astype("float32")


def _start(start):
    scope, exe = fluid.Scope(), fluid.Executor(fluid.CPUPlace())
    exe.run(start, scope=scope)
    return scope, exe


def _value(scope, name):
    return np.array(scope.var(name).get_tensor())


def _copy(scope):
    out = fluid.Scope()
    for n in scope.local_var_names():
        v = scope.value(n)
        if v is not None:
            out.set_value(n, v.clone())
    return out


# ---------------------------------------------------------------- the split rule


@pytest.mark.parametrize(
    "batch, places, sizes",
    [
        (12, 4, [3, 3, 3, 3]),
        (10, 4, [3, 3, 3, 1]),
        (10, 3, [4, 4, 2]),
        (5, 4, [2, 2, 1]),
        (3, 4, [1, 1, 1]),
        (7, 1, [7]),
        (0, 3, [0, 0, 0]),
    ],
)
def test_split_sizes_follow_paddles_split_lod_tensor(batch, places, sizes):
    assert split_sizes(batch, places) == sizes


# ---------------------------------------------------------------- equal to the whole batch


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("opt", ["rmsprop", "sgd"])
def test_even_split_equals_the_whole_batch_run(n, opt):
    x, y = _data(12)
    main, start, loss, params = _build(opt)
    ref_scope, exe = _start(start)
    ref_losses = [exe.run(main, feed={"x": x, "y": y}, fetch_list=[loss], scope=ref_scope)[0] for _ in range(4)]
    main, start, loss, params = _build(opt)
    scope, exe = _start(start)
    compiled = fluid.CompiledProgram(main).with_data_parallel(loss_name=loss.name, places=fluid.cpu_places(n))
    for step in range(4):
        (got,) = exe.run(compiled, feed={"x": x, "y": y}, fetch_list=[loss], scope=scope)
        assert got.shape == (n,)  # one loss per place, as Paddle's merged fetch
        np.testing.assert_allclose(got.mean(), ref_losses[step][0], rtol=1e-5, atol=1e-6)
    for p in params:
        np.testing.assert_allclose(_value(scope, p), _value(ref_scope, p), rtol=1e-5, atol=1e-6)
    for i, local in enumerate(compiled._executor.local_scopes()):
        for p in params:
            np.testing.assert_array_equal(_value(local, p), _value(scope, p), err_msg=f"place {i}")


def test_compiled_program_alone_runs_as_the_program():
    x, y = _data(6)
    main, start, loss, params = _build()
    ref_scope, exe = _start(start)
    ref = [exe.run(main, feed={"x": x, "y": y}, fetch_list=[loss], scope=ref_scope)[0] for _ in range(3)]
    main, start, loss, params = _build()
    scope, exe = _start(start)
    compiled = fluid.CompiledProgram(main)
    got = [exe.run(compiled, feed={"x": x, "y": y}, fetch_list=[loss.name], scope=scope)[0] for _ in range(3)]
    np.testing.assert_array_equal(np.array(got), np.array(ref))
    for p in params:
        np.testing.assert_array_equal(_value(scope, p), _value(ref_scope, p))
    (local,) = compiled._executor.local_scopes()
    np.testing.assert_array_equal(_value(local, params[0]), _value(scope, params[0]))


# ---------------------------------------------------------------- per-place reference


def _reference_step(main, loss, params, scope, pieces, scale, lr):
    """One data-parallel step by hand: each piece run alone (in a copy of the scope) for its
    gradients and loss; gradients combined as sum(scale * g_p); numpy RMSProp on the scope's values."""
    exe = fluid.Executor(fluid.CPUPlace())
    grads, losses, scopes = [], [], []
    for xp, yp in pieces:
        s = _copy(scope)
        out = exe.run(main, feed={"x": xp, "y": yp}, fetch_list=[loss] + [p + "@GRAD" for p in params], scope=s)
        losses.append(out[0])
        grads.append(out[1:])
        scopes.append(s)
    new = {}
    for i, p in enumerate(params):
        g = sum(scale * gp[i].astype(np.float64) for gp in grads)
        ms = RHO * _value(scope, p + "_mean_square_0").astype(np.float64) + (1 - RHO) * g * g
        new[p] = _value(scope, p).astype(np.float64) - lr * g / np.sqrt(ms + EPS)
        new[p + "_mean_square_0"] = ms
    return new, np.concatenate(losses), scopes


@pytest.mark.parametrize(
    "rows, n, bn, strategy",
    [
        (10, 4, False, "CoeffNumDevice"),  # 3, 3, 3, 1 rows: the mean of the places' means
        (10, 3, False, "CoeffNumDevice"),  # 4, 4, 2
        (12, 4, True, "CoeffNumDevice"),  # batch_norm: each place's own batch statistics
        (9, 3, True, "CoeffNumDevice"),
        (8, 2, False, "One"),  # GradientScaleStrategy.One: the sum of the places' gradients
    ],
)
def test_data_parallel_step_matches_the_per_place_reference(rows, n, bn, strategy):
    x, y = _data(rows, seed=rows)
    lr = 0.01
    main, start, loss, params = _build(bn=bn, lr=lr)
    scope, exe = _start(start)
    bs = fluid.BuildStrategy()
    bs.gradient_scale_strategy = getattr(fluid.BuildStrategy.GradientScaleStrategy, strategy)
    compiled = fluid.CompiledProgram(main).with_data_parallel(
        loss_name=loss.name, build_strategy=bs, places=[fluid.CPUPlace()] * n
    )
    bounds = np.cumsum([0] + split_sizes(rows, n))
    pieces = [(x[a:b], y[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    scale = 1.0 / n if strategy == "CoeffNumDevice" else 1.0
    for _ in range(3):
        want, want_loss, piece_scopes = _reference_step(main, loss, params, scope, pieces, scale, lr)
        (got_loss,) = exe.run(compiled, feed={"x": x, "y": y}, fetch_list=[loss], scope=scope)
        np.testing.assert_allclose(got_loss, want_loss, rtol=1e-5, atol=1e-6)
        for name, value in want.items():
            np.testing.assert_allclose(_value(scope, name), value, rtol=1e-4, atol=1e-6, err_msg=name)
        if bn:  # the moving statistics keep place 0's update
            for stat in ("batch_norm_0.w_1", "batch_norm_0.w_2"):
                np.testing.assert_allclose(_value(scope, stat), _value(piece_scopes[0], stat), rtol=1e-6)


# ---------------------------------------------------------------- fetches and feeds


def test_fetch_merges_the_places_values():
    x, y = _data(8)
    main, start, loss, params = _build(lr=0.01)
    scope, exe = _start(start)
    compiled = fluid.CompiledProgram(main).with_data_parallel(loss_name=loss.name, places=fluid.cpu_places(2))
    w = params[-1]
    before = _value(scope, w)
    lr_name = next(n for n in main.global_block().vars if n.startswith("learning_rate"))
    got_x, got_w, got_lr, got_g = exe.run(
        compiled, feed={"x": x, "y": y}, fetch_list=["x", w, lr_name, w + "@GRAD"], scope=scope
    )
    np.testing.assert_array_equal(got_x, x)  # the places' slices put back together
    assert got_w.shape == (2 * before.shape[0], *before.shape[1:])  # a shared variable comes once per place
    np.testing.assert_array_equal(got_w[: before.shape[0]], got_w[before.shape[0] :])
    np.testing.assert_allclose(got_lr, [0.01, 0.01])
    half = got_g.shape[0] // 2
    np.testing.assert_array_equal(got_g[:half], got_g[half:])  # the summed gradient, on every place
    (as_tensor,) = exe.run(compiled, feed={"x": x, "y": y}, fetch_list=[loss], scope=scope, return_numpy=False)
    assert isinstance(as_tensor, fluid.LoDTensor) and np.array(as_tensor).shape == (2,)


def test_a_list_feed_gives_each_place_its_own_dict():
    x, y = _data(8)
    runs = []
    for feed in ({"x": x, "y": y}, [{"x": x[:4], "y": y[:4]}, {"x": x[4:], "y": y[4:]}]):
        main, start, loss, params = _build()
        scope, exe = _start(start)
        compiled = fluid.CompiledProgram(main).with_data_parallel(loss_name=loss.name, places=fluid.cpu_places(2))
        losses = [exe.run(compiled, feed=feed, fetch_list=[loss], scope=scope)[0] for _ in range(2)]
        runs.append((losses, [_value(scope, p) for p in params]))
    np.testing.assert_array_equal(np.array(runs[0][0]), np.array(runs[1][0]))
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_2x_scheduler_sets_the_lr_on_every_place():
    fluid.unique_name.switch()
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start):
        x = fluid.layers.data("x", [4], dtype="float32")
        loss = fluid.layers.mean(fluid.layers.fc(x, 2))
        sched = fluid.optimizer.lr.StepDecay(0.5, step_size=2, gamma=0.1)
        opt = fluid.optimizer.RMSProp(learning_rate=sched)
        opt.minimize(loss)
    lr_name = main.lr_sheduler._var_name
    scope, exe = _start(start)
    compiled = fluid.CompiledProgram(main).with_data_parallel(loss_name=loss.name, places=fluid.cpu_places(4))
    for epoch in range(5):
        exe.run(compiled, feed={"x": np.ones((12, 4), "float32")}, fetch_list=[lr_name], scope=scope)
        for local in compiled._executor.local_scopes():
            np.testing.assert_allclose(_value(local, lr_name), [0.5 * 0.1 ** (epoch // 2)], rtol=1e-6)
        sched.step()


# ---------------------------------------------------------------- places


def test_cpu_places_reads_cpu_num(monkeypatch):
    monkeypatch.setenv("CPU_NUM", "3")
    assert fluid.cpu_places() == [fluid.CPUPlace()] * 3
    assert len(fluid.cpu_places(2)) == 2
    monkeypatch.delenv("CPU_NUM")
    with (
        pytest.warns(UserWarning, match="CPU_NUM is not set") if (__import__("os").cpu_count() or 1) > 1 else _nothing()
    ):
        assert fluid.cpu_places() == [fluid.CPUPlace()]
    monkeypatch.setenv("CPU_NUM", "zero")
    with pytest.raises(ValueError, match="CPU_NUM must be an integer >= 1, got 'zero'"):
        fluid.cpu_places()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_default_places_come_from_cpu_num(monkeypatch):
    monkeypatch.setenv("CPU_NUM", "2")
    main, start, loss, params = _build()
    scope, exe = _start(start)
    compiled = fluid.CompiledProgram(main).with_data_parallel(loss_name=loss.name)
    x, y = _data(4)
    (got,) = exe.run(compiled, feed={"x": x, "y": y}, fetch_list=[loss], scope=scope)
    assert got.shape == (2,) and len(compiled._executor.local_scopes()) == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without CUDA")
def test_cuda_places_need_cuda():
    with pytest.raises(RuntimeError, match="needs CUDA"):
        fluid.cuda_places()
    with pytest.raises(RuntimeError, match="needs CUDA"):
        fluid.CompiledProgram(fluid.Program()).with_data_parallel(places=[fluid.CUDAPlace(0)])


# ---------------------------------------------------------------- errors


def _compiled(**kw):
    main, start, loss, params = _build()
    scope, exe = _start(start)
    kw.setdefault("loss_name", loss.name)
    return fluid.CompiledProgram(main).with_data_parallel(**kw), exe, scope, params


BUILD_ERRORS = [
    ("loss not in program", {"loss_name": "nope"}, ValueError, "loss_name 'nope' is not a variable of the program"),
    ("no loss name", {"loss_name": None}, ValueError, "loss_name\nmust be given|so loss_name must be given"),
    ("not the backward's loss", {"loss_name": "x"}, ValueError, "is not the loss the program's backward pass starts"),
    ("empty places", {"places": []}, ValueError, "places is empty"),
    ("junk place", {"places": [5]}, TypeError, r"places\[0\] must be a CPUPlace"),
    ("junk places", {"places": 5}, TypeError, "places must be a list of places"),
    ("unknown device", {"places": ["tpu"]}, ValueError, r"places\[0\] must be 'cpu'"),
    ("loss name type", {"loss_name": 3}, TypeError, "loss_name must be a str"),
    ("build strategy type", {"build_strategy": {}}, TypeError, "build_strategy must be a fluid.BuildStrategy"),
    ("exec strategy type", {"exec_strategy": 1}, TypeError, "exec_strategy must be a fluid.ExecutionStrategy"),
    ("share_vars_from type", {"share_vars_from": 1}, TypeError, "share_vars_from must be a CompiledProgram"),
]


@pytest.mark.parametrize("kw, exc, match", [r[1:] for r in BUILD_ERRORS], ids=[r[0] for r in BUILD_ERRORS])
def test_with_data_parallel_refuses_bad_arguments(kw, exc, match):
    with pytest.raises(exc, match=match):
        _compiled(**kw)


def test_refusals_of_program_and_reuse():
    with pytest.raises(TypeError, match="program_or_graph must be a Program"):
        fluid.CompiledProgram("main")
    compiled, exe, scope, params = _compiled(places=fluid.cpu_places(2))
    with pytest.raises(ValueError, match="data-parallel already"):
        compiled.with_data_parallel()
    x, y = _data(4)
    exe.run(compiled, feed={"x": x, "y": y}, scope=scope)
    with pytest.raises(ValueError, match="another scope"):
        exe.run(compiled, feed={"x": x, "y": y}, scope=fluid.Scope())
    other = fluid.CompiledProgram(fluid.Program()).with_data_parallel(share_vars_from=_compiled()[0])
    with pytest.raises(ValueError, match="share_vars_from has not run yet"):
        exe.run(other, scope=scope)
    with pytest.raises(ValueError, match="share_vars_from is not data-parallel"):
        fluid.CompiledProgram(fluid.Program()).with_data_parallel(
            share_vars_from=fluid.CompiledProgram(fluid.Program())
        )


def _strategy(kind, **settings):
    s = kind()
    for k, v in settings.items():
        setattr(s, k, v)
    return s


RUN_ERRORS = [
    ("3 rows on 4 places", {}, {"rows": 3}, ValueError, r"its 3 rows split into 3 piece\(s\).*fewer than the 4 places"),
    ("5 rows on 4 places", {}, {"rows": 5}, ValueError, r"its 5 rows split into 3 piece\(s\)"),
    ("list feed length", {}, {"feed": "list3"}, ValueError, "one dict per place: 4 places, got 3"),
    ("list feed keys", {}, {"feed": "keys"}, ValueError, r"feed\[1\] feeds \['x'\] but feed\[0\] feeds"),
    ("unknown feed", {}, {"feed": "unknown"}, ValueError, "feed 'z': no variable of that name"),
    ("feed type", {}, {"feed": "junk"}, TypeError, "expected a dict name -> array or a list"),
    (
        "customized scale",
        {"build_strategy": _strategy(fluid.BuildStrategy, gradient_scale_strategy=2)},
        {},
        NotImplementedError,
        "gradient_scale_strategy=Customized",
    ),
    (
        "sync batch norm",
        {"build_strategy": _strategy(fluid.BuildStrategy, sync_batch_norm=True)},
        {},
        NotImplementedError,
        "sync_batch_norm=True",
    ),
    (
        "trainers",
        {"build_strategy": _strategy(fluid.BuildStrategy, num_trainers=2)},
        {},
        NotImplementedError,
        "num_trainers=2",
    ),
    (
        "reduce strategy",
        {"build_strategy": _strategy(fluid.BuildStrategy, reduce_strategy=5)},
        {},
        ValueError,
        "reduce_strategy must be ReduceStrategy.AllReduce",
    ),
    (
        "iterations per run",
        {"exec_strategy": _strategy(fluid.ExecutionStrategy, num_iteration_per_run=2)},
        {},
        NotImplementedError,
        "num_iteration_per_run=2",
    ),
]


@pytest.mark.parametrize("kw, run, exc, match", [r[1:] for r in RUN_ERRORS], ids=[r[0] for r in RUN_ERRORS])
def test_a_refused_run_changes_nothing(kw, run, exc, match):
    compiled, exe, scope, params = _compiled(places=fluid.cpu_places(4), **kw)
    before = {n: _value(scope, n) for n in scope.local_var_names()}
    x, y = _data(run.get("rows", 8))
    feed = {
        None: {"x": x, "y": y},
        "list3": [{"x": x[:2], "y": y[:2]}] * 3,
        "keys": [{"x": x[:2], "y": y[:2]}, {"x": x[2:4]}] + [{"x": x[:2], "y": y[:2]}] * 2,
        "unknown": {"x": x, "y": y, "z": x},
        "junk": 3,
    }[run.get("feed")]
    with pytest.raises(exc, match=match):
        exe.run(compiled, feed=feed, scope=scope)
    for n, v in before.items():
        np.testing.assert_array_equal(_value(scope, n), v, err_msg=n)


def test_strategies_are_checked_records():
    bs = fluid.BuildStrategy()
    assert bs.reduce_strategy == fluid.BuildStrategy.ReduceStrategy.AllReduce
    assert bs.gradient_scale_strategy == fluid.BuildStrategy.GradientScaleStrategy.CoeffNumDevice
    bs.fuse_all_reduce_ops = True
    bs.memory_optimize = True
    with pytest.raises(AttributeError, match="BuildStrategy has no setting 'fuse_everything'"):
        bs.fuse_everything = True
    with pytest.raises(TypeError, match="BuildStrategy.enable_inplace must be of type bool, got 'yes'"):
        bs.enable_inplace = "yes"
    es = fluid.ExecutionStrategy()
    es.num_threads = 4
    with pytest.raises(TypeError, match="num_threads must be of type int, got True"):
        es.num_threads = True
    # settings without effect on the numbers run as the defaults do
    x, y = _data(8)
    out = []
    for strategy in (None, bs):
        compiled, exe, scope, params = _compiled(places=fluid.cpu_places(2), build_strategy=strategy, exec_strategy=es)
        out.append(exe.run(compiled, feed={"x": x, "y": y}, fetch_list=[params[0]], scope=scope)[0])
    np.testing.assert_array_equal(out[0], out[1])


def test_executor_still_refuses_junk_programs():
    with pytest.raises(TypeError, match="expected a Program or CompiledProgram, got str"):
        fluid.Executor().run("main")


def _fake_gpu(monkeypatch):
    """Make torch report one GPU, so that a GPU executor can be made; nothing runs on it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def test_a_compiled_program_keeps_the_place_of_its_first_run(monkeypatch):
    compiled, exe, scope, params = _compiled(places=fluid.cpu_places(2))
    x, y = _data(4)
    exe.run(compiled, feed={"x": x, "y": y}, scope=scope)
    _fake_gpu(monkeypatch)
    with pytest.raises(ValueError, match=r"run by an executor on CPUPlace; this executor's place is CUDAPlace\(0\)"):
        fluid.Executor(fluid.CUDAPlace(0)).run(compiled, feed={"x": x, "y": y}, scope=scope)


def test_places_must_be_of_the_executors_kind(monkeypatch):
    compiled, exe, scope, params = _compiled(places=fluid.cpu_places(2))
    _fake_gpu(monkeypatch)
    x, y = _data(4)
    with pytest.raises(ValueError, match=r"places\[0\] is CPUPlace but the executor runs on CUDAPlace\(0\)"):
        fluid.Executor(fluid.CUDAPlace(0)).run(compiled, feed={"x": x, "y": y}, scope=scope)


def test_a_test_program_shares_the_trained_variables():
    x, y = _data(8)
    fluid.unique_name.switch()
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start):
        xv = fluid.layers.data("x", [4], dtype="float32")
        yv = fluid.layers.data("y", [1], dtype="float32")
        pred = fluid.layers.fc(fluid.layers.batch_norm(fluid.layers.fc(xv, 3)), 1)
        loss = fluid.layers.mean(fluid.layers.square_error_cost(pred, yv))
        test_prog = main.clone(for_test=True)
        fluid.optimizer.RMSProp(0.01).minimize(loss)
    scope, exe = _start(start)
    train = fluid.CompiledProgram(main).with_data_parallel(loss_name=loss.name, places=fluid.cpu_places(2))
    test = fluid.CompiledProgram(test_prog).with_data_parallel(share_vars_from=train, places=fluid.cpu_places(2))
    for _ in range(3):
        exe.run(train, feed={"x": x, "y": y}, scope=scope)
    (got,) = exe.run(test, feed={"x": x, "y": y}, fetch_list=[pred.name], scope=fluid.Scope())  # scope: train's
    (want,) = exe.run(test_prog, feed={"x": x, "y": y}, fetch_list=[pred.name], scope=scope)
    np.testing.assert_allclose(got, want, rtol=1e-6)  # is_test batch_norm: per-row, so the split changes nothing


def test_a_fed_parameter_goes_whole_to_every_place():
    x, y = _data(8)
    out = []
    for n in (1, 2):
        main, start, loss, params = _build(lr=0.01)
        scope, exe = _start(start)
        w = np.full(_value(scope, params[-1]).shape, 0.3, "float32")
        compiled = fluid.CompiledProgram(main).with_data_parallel(loss_name=loss.name, places=fluid.cpu_places(n))
        (got,) = exe.run(compiled, feed={"x": x, "y": y, params[-1]: w}, fetch_list=[loss], scope=scope)
        out.append(got.mean())
        np.testing.assert_array_equal(w, np.full_like(w, 0.3))  # the caller's array is not updated
    np.testing.assert_allclose(out[0], out[1], rtol=1e-6)


def test_sub_block_ops_and_sparse_gradients_are_refused():
    fluid.unique_name.switch()
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start):
        ids = fluid.layers.data("ids", [1], dtype="int64")
        emb = fluid.layers.embedding(ids, size=[10, 3], is_sparse=True)
        loss = fluid.layers.mean(emb)
        fluid.optimizer.SGD(0.1).minimize(loss)
    scope, exe = _start(start)
    compiled = fluid.CompiledProgram(main).with_data_parallel(loss_name=loss.name, places=fluid.cpu_places(2))
    with pytest.raises(NotImplementedError, match="sparse .*is_sparse=False"):
        exe.run(compiled, feed={"ids": np.arange(4).reshape(4, 1)}, scope=scope)
    main, start, loss, params = _build()
    with fluid.program_guard(main, start):
        main._create_block()
        fluid.layers.fill_constant([1], "float32", 1.0)
        main._rollback()
    scope, exe = _start(start)
    compiled = fluid.CompiledProgram(main).with_data_parallel(loss_name=loss.name, places=fluid.cpu_places(2))
    x, y = _data(4)
    with pytest.raises(NotImplementedError, match="ops in sub-blocks"):
        exe.run(compiled, feed={"x": x, "y": y}, scope=scope)
