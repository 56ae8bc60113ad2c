"""Hostile and careless inputs against LoD sequences, ParallelDo/CompiledProgram, increment and
the build-time slot checks, each checked against an independent reference (numpy loops, or
the same program without the feature)."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import layers as L
from torchfluid.ops import get_op
from torchfluid.static._infer import OpBuildError
from torchfluid.static.plan import OpRunError

nan, inf = float("nan"), float("inf")


def np_max_pool(x, lengths, pad=0.0):
    """Paddle's CPU MaxSeqPoolFunctor as a numpy loop: start at the sequence's first row and
    move to a later row only when its value is greater (so a NaN first row stays, a later NaN
    is skipped, ties keep the first row); an empty sequence gives pad and index -1."""
    flat = x.reshape(len(x), -1)
    out = np.full((len(lengths), flat.shape[1]), pad, x.dtype)
    index = np.full(out.shape, -1)
    start = 0
    for i, h in enumerate(lengths):
        for k in range(flat.shape[1]):
            if h:
                out[i, k], index[i, k] = flat[start, k], start
            for j in range(start + 1, start + h):
                if flat[j, k] > out[i, k]:
                    out[i, k], index[i, k] = flat[j, k], j
        start += h
    return out.reshape((len(lengths),) + x.shape[1:]), index.reshape((len(lengths),) + x.shape[1:])


MAX_NONFINITE = [
    # (rows, sequence lengths)
    ([[1.0, nan, inf], [2.0, 3.0, -inf], [nan, 0.0, 1.0]], [3]),
    ([[1.0, nan, inf], [2.0, 3.0, -inf], [nan, 0.0, 1.0]], [1, 2]),
    ([[nan, nan], [nan, nan]], [2]),
    ([[-inf, nan], [nan, -inf]], [2, 0]),
    ([[nan], [5.0], [nan], [4.0]], [0, 2, 2]),
    ([[-inf], [-inf], [inf], [inf]], [2, 2]),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows,lengths", MAX_NONFINITE)
def test_max_pool_of_nan_and_inf_rows_scans_as_paddle_and_its_grad_runs(rows, lengths, dtype):
    x = np.array(rows, dtype)
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        xv = L.data("x", [x.shape[1]], dtype=dtype, lod_level=1)
        xv.stop_gradient = False
        out = L.sequence_pool(xv, "max", pad_value=-7.0)
        fluid.backward.append_backward(L.reduce_sum(out))
    (pool_op,) = [op for op in main.global_block().ops if op.type == "sequence_pool"]
    exe = fluid.Executor()
    exe.run(start)
    got, index, gx = exe.run(
        main,
        feed={"x": fluid.create_lod_tensor(x, [lengths])},
        fetch_list=[out, pool_op.outputs["MaxIndex"][0], "x@GRAD"],
    )
    ref, ref_index = np_max_pool(x, lengths, pad=-7.0)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(index, ref_index)
    ref_gx = np.zeros_like(x)
    for k in range(x.shape[1]):
        ref_gx[ref_index[:, k][ref_index[:, k] >= 0], k] = 1.0
    np.testing.assert_array_equal(gx, ref_gx)


@pytest.mark.parametrize("rows,lengths", MAX_NONFINITE)
def test_max_pool_op_on_nan_rows_matches_the_scan(rows, lengths):
    x = torch.tensor(rows, dtype=torch.float64)
    out, index = get_op("sequence_pool").forward(x, pooltype="MAX", offsets=tuple(np.cumsum([0] + lengths).tolist()))
    ref, ref_index = np_max_pool(x.numpy(), lengths)
    np.testing.assert_array_equal(out.numpy(), ref)
    np.testing.assert_array_equal(index.numpy(), ref_index)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("rows,lengths", MAX_NONFINITE)
def test_max_pool_of_nan_rows_on_the_gpu_matches_the_cpu_scan(rows, lengths):
    offsets = tuple(np.cumsum([0] + lengths).tolist())
    x = torch.tensor(rows, dtype=torch.float32)
    out, index = get_op("sequence_pool").forward(x.cuda(), pooltype="MAX", offsets=offsets)
    ref, ref_index = np_max_pool(x.numpy(), lengths)
    np.testing.assert_array_equal(out.cpu().numpy(), ref)
    np.testing.assert_array_equal(index.cpu().numpy(), ref_index)


def _xy_program():
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = L.data("x", [3], dtype="float32")
        y = L.data("y", [4], dtype="float32")
    return main, x, y


# (inputs, outputs, attrs, error, message): ops that cannot be built
BAD_APPEND_OPS = [
    ("elementwise_add", {"X": "x", "Y": "y"}, {"Out": ["new_out"]}, None, OpBuildError, "elementwise_add"),
    ("scale", {"X": "x"}, {"Out": ["new_out"]}, {"bogus": 1}, OpBuildError, "bogus"),
    ("sum", {"X": []}, {"Out": ["new_out"]}, None, OpBuildError, "sum: X must hold at least one tensor, got none"),
    (
        "sequence_pool",
        {"X": "x"},
        {"Out": ["new_out"], "MaxIndex": ["new_index"]},
        {"pooltype": "BOGUS"},
        OpBuildError,
        r"sequence_pool: pooltype must be one of AVERAGE, SUM, SQRT, MAX, LAST, FIRST, got 'BOGUS'",
    ),
    ("scale", ["x"], {"Out": ["new_out"]}, None, TypeError, r"op scale: inputs must be a dict slot -> .*got list"),
    ("scale", {"X": "x"}, ("new_out",), None, TypeError, r"op scale: outputs must be a dict slot -> .*got tuple"),
    ("scale", {"X": None}, {"Out": ["new_out"]}, None, OpBuildError, "op 'scale' needs input slot 'X'"),
    ("scale", {"X": ()}, {"Out": ("new_out",)}, None, OpBuildError, "op 'scale' needs input slot 'X'"),
]


@pytest.mark.parametrize("type_,inputs,outputs,attrs,error,message", BAD_APPEND_OPS)
def test_an_op_that_cannot_be_built_leaves_the_block_as_it_was(type_, inputs, outputs, attrs, error, message):
    main, x, y = _xy_program()
    block = main.global_block()
    names, n_ops = list(block.vars), len(block.ops)
    with pytest.raises(error, match=message):
        block.append_op(type=type_, inputs=inputs, outputs=outputs, attrs=attrs)
    assert list(block.vars) == names and len(block.ops) == n_ops
    # the output name is free: a correct op may take it, and runs
    block.append_op(type="scale", inputs={"X": (x,)}, outputs={"Out": ("new_out",)}, attrs={"scale": 2.0})
    xs = np.arange(6, dtype="float32").reshape(2, 3)
    (got,) = fluid.Executor().run(main, feed={"x": xs}, fetch_list=["new_out"])
    np.testing.assert_array_equal(got, 2 * xs)


def _regression(seed=3):
    main, start = fluid.Program(), fluid.Program()
    main.random_seed = start.random_seed = seed
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = L.data("x", [4], dtype="float32")
        y = L.data("y", [1], dtype="float32")
        pred = L.fc(x, 1)
        loss = L.mean(L.square_error_cost(pred, y))
        fluid.optimizer.RMSProp(0.05, momentum=0.5).minimize(loss)
    return main, start, loss, pred


_rng = np.random.default_rng(7)
XS = _rng.standard_normal((8, 4)).astype("float32")
YS = XS @ _rng.standard_normal((4, 1)).astype("float32")


def _persistables(program, scope):
    return {
        v.name: np.array(scope.find_var(v.name).get_tensor())
        for v in program.list_vars()
        if v.persistable and not v.is_data and scope.find_var(v.name) is not None
    }


# the io function pairs that take a program, and how each is called
IO_PAIRS = [
    (
        "persistables",
        lambda exe, d, p: fluid.io.save_persistables(exe, d, main_program=p),
        lambda exe, d, p: fluid.io.load_persistables(exe, d, main_program=p),
    ),
    (
        "params",
        lambda exe, d, p: fluid.io.save_params(exe, d, main_program=p),
        lambda exe, d, p: fluid.io.load_params(exe, d, main_program=p),
    ),
    (
        "vars",
        lambda exe, d, p: fluid.io.save_vars(exe, d, main_program=p, filename="all"),
        lambda exe, d, p: fluid.io.load_vars(exe, d, main_program=p, filename="all"),
    ),
    ("fluid.save", lambda exe, d, p: fluid.save(p, d + "/model"), lambda exe, d, p: fluid.load(p, d + "/model", exe)),
]


@pytest.mark.parametrize("what,save,load", IO_PAIRS, ids=[p[0] for p in IO_PAIRS])
def test_io_takes_a_data_parallel_compiled_program_as_paddle(tmp_path, what, save, load):
    main, start, loss, _ = _regression()
    scope = fluid.Scope()
    exe = fluid.Executor(fluid.CPUPlace())
    with fluid.scope_guard(scope):
        exe.run(start)
        train = fluid.CompiledProgram(main).with_data_parallel(loss_name=loss.name, places=fluid.cpu_places(2))
        for _ in range(3):
            exe.run(train, feed={"x": XS, "y": YS}, fetch_list=[loss])
        with pytest.warns(UserWarning, match="CompiledProgram, this is not recommended"):
            save(exe, str(tmp_path), train)
        saved = _persistables(main, scope)
        for _ in range(2):
            exe.run(train, feed={"x": XS, "y": YS}, fetch_list=[loss])
        assert any(not np.array_equal(saved[k], v) for k, v in _persistables(main, scope).items())
        with pytest.warns(UserWarning, match="CompiledProgram, this is not recommended"):
            load(exe, str(tmp_path), train)
        restored = _persistables(main, scope)
    names = {v.name for v in main.all_parameters()} if what == "params" else set(saved)
    for k in names:
        np.testing.assert_array_equal(restored[k], saved[k], err_msg=k)


def test_save_inference_model_takes_a_data_parallel_compiled_program_as_paddle(tmp_path):
    main, start, loss, pred = _regression()
    scope = fluid.Scope()
    exe = fluid.Executor(fluid.CPUPlace())
    with fluid.scope_guard(scope):
        exe.run(start)
        train = fluid.CompiledProgram(main).with_data_parallel(loss_name=loss.name, places=fluid.cpu_places(2))
        exe.run(train, feed={"x": XS, "y": YS}, fetch_list=[loss])
        with pytest.warns(UserWarning, match="CompiledProgram, this is not recommended"):
            fluid.io.save_inference_model(str(tmp_path), ["x"], [pred], exe, main_program=train)
        (want,) = exe.run(main, feed={"x": XS, "y": YS}, fetch_list=[pred])  # the forward before this update
    with fluid.scope_guard(fluid.Scope()):
        program, feeds, fetches = fluid.io.load_inference_model(str(tmp_path), exe)
        (got,) = exe.run(program, feed={feeds[0]: XS}, fetch_list=fetches)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(TypeError, match="save_inference_model: main_program must be a Program or CompiledProgram"):
        fluid.io.save_inference_model(str(tmp_path), ["x"], [pred], exe, main_program="main")


def _feeder():
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        w = L.data("w", [1], dtype="int64", lod_level=1)
        f = L.data("f", [2], dtype="float32", lod_level=1)
        y = L.data("y", [1], dtype="int64")
    return fluid.DataFeeder([w, f, y], fluid.CPUPlace(), program=main)


# (minibatch, error, message): each names the variable or the sample at fault
BAD_MINIBATCHES = [
    ([([1, 2], [[1, 2], [3]], [0])], ValueError, r"variable 'f' \(float32, shape \[-1, 2\]\): the sequences' items"),
    ([([1], [[1, 2]], [0, 1]), ([1], [[1, 2]], [0])], ValueError, r"variable 'y' \(int64, shape \[-1, 1\]\)"),
    ([([1], [[1, "a"]], [0])], ValueError, r"variable 'f' .*not numbers"),
    ([5], TypeError, r"sample 0 must be a tuple or list with one field per feed_list variable \(w, f, y\), got int 5"),
    ([([1], [[1, 2]], [0]), None], TypeError, r"sample 1 must be a tuple or list .* got NoneType"),
    ([], ValueError, r"variable 'w' has lod_level=1 but the minibatch has no samples"),
    ([("ab", [[1, 2]], [0])], ValueError, r"sample 0 gives str 'ab'"),
    ([([1], [[1, 2]])], ValueError, r"sample 0 has 2 fields but feed_list has 3 variables"),
]


@pytest.mark.parametrize("batch,error,message", BAD_MINIBATCHES)
def test_data_feeder_refuses_bad_minibatches_naming_the_variable_or_sample(batch, error, message):
    with pytest.raises(error, match=message):
        _feeder().feed(batch)


# (minibatch, expected rows of w, of f, lod)
GOOD_MINIBATCHES = [
    ([([], [], [0]), ([], [], [1])], np.zeros((0, 1)), np.zeros((0, 2)), [[0, 0, 0]]),
    ([((1, 2), ((1, 2), (3, 4)), [0])], [[1], [2]], [[1, 2], [3, 4]], [[0, 2]]),
    ([(np.array([4]), np.ones((1, 2)), [1]), ([], [], [0])], [[4]], [[1, 1]], [[0, 1, 1]]),
    ([([[1], [2]], [[1, 2], [3, 4]], [0])], [[1], [2]], [[1, 2], [3, 4]], [[0, 2]]),
]


@pytest.mark.parametrize("batch,w,f,lod", GOOD_MINIBATCHES)
def test_data_feeder_empty_tuple_and_array_sequences(batch, w, f, lod):
    feed = _feeder().feed(batch)
    np.testing.assert_array_equal(np.array(feed["w"]), np.array(w, "int64").reshape(-1, 1))
    np.testing.assert_array_equal(np.array(feed["f"]), np.array(f, "float32").reshape(-1, 2))
    assert feed["w"].lod() == lod and feed["f"].lod() == lod
    assert np.array(feed["y"]).shape == (len(batch), 1)


def test_create_lod_tensor_of_ragged_items_is_a_value_error():
    with pytest.raises(ValueError, match=r"create_lod_tensor: the sequences' items do not make one array"):
        fluid.create_lod_tensor([[1, 2], [3, [4]]], [[2, 2]], fluid.CPUPlace())


# (step, lr, start): increment of a trainable parameter before a loss reads it, trained by SGD
INCREMENT_PARAM_CASES = [(1.5, 0.1, 2.0), (-0.5, 0.5, 0.0), (0.0, 1.0, -3.0)]


@pytest.mark.parametrize("step,lr,start", INCREMENT_PARAM_CASES)
def test_increment_of_a_parameter_keeps_its_gradient(step, lr, start):
    xs = np.array([[1.0], [2.0], [4.0]], "float32")
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = L.data("x", [1], dtype="float32")
        p = L.create_parameter([1], "float32", default_initializer=fluid.initializer.Constant(start))
        L.increment(p, step)
        out = L.elementwise_mul(x, p)
        loss = L.mean(L.square(out))
        _, params_grads = fluid.optimizer.SGD(lr).minimize(loss)
    assert [(a.name, g.name) for a, g in params_grads] == [(p.name, p.name + "@GRAD")]
    scope, exe = fluid.Scope(), fluid.Executor()
    exe.run(startup, scope=scope)
    ref = np.float32(start)
    for _ in range(3):
        (got_out,) = exe.run(main, feed={"x": xs}, fetch_list=[out], scope=scope)
        ref = np.float32(ref + np.float32(step))  # the op's in-place update
        np.testing.assert_allclose(got_out, xs * ref, rtol=1e-5, atol=1e-5)
        grad = np.mean(2 * xs * xs * ref)  # d mean((x p)^2) / dp at the incremented p
        ref = np.float32(ref - np.float32(lr) * np.float32(grad))
        np.testing.assert_allclose(np.array(scope.find_var(p.name).get_tensor()), [ref], rtol=1e-5, atol=1e-5)


def test_increment_of_a_variable_of_unknown_size_is_checked_when_it_runs():
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()):
        c = L.data("c", [-1], dtype="float32", append_batch_size=False)
        e = L.increment(c, 2.0, in_place=False)
    assert e.shape == (-1,) and e.dtype == "float32"
    exe = fluid.Executor()
    (got,) = exe.run(main, feed={"c": np.array([1.5], "float32")}, fetch_list=[e])
    np.testing.assert_array_equal(got, [3.5])
    with pytest.raises(OpRunError, match=r"x must have exactly one element, got shape \[3\]"):
        exe.run(main, feed={"c": np.ones(3, "float32")}, fetch_list=[e])


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int16"])
def test_increment_refuses_dtypes_paddle_has_no_kernel_for(dtype):
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()):
        c = L.fill_constant([1], dtype, 1)
        n_ops = len(main.global_block().ops)
        with pytest.raises(TypeError, match=rf"increment: x must be of dtype float16, .*int64.*got {dtype}"):
            L.increment(c)
    assert len(main.global_block().ops) == n_ops
    with fluid.dygraph.guard(), pytest.raises(TypeError, match=rf"got {dtype}"):
        L.increment(fluid.dygraph.to_variable(np.ones(1, dtype)))


# (dtype, start, step, runs): float16 counters round as float16 (2048 + 1 stays 2048)
FLOAT16_COUNTERS = [(2048.0, 1.0, 3), (1.0, 0.1, 4), (65504.0, 1.0, 1), (0.0, 1e-8, 2)]


@pytest.mark.parametrize("start,step,runs", FLOAT16_COUNTERS)
def test_increment_of_a_float16_counter_rounds_as_float16(start, step, runs):
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup):
        c = L.create_global_var([1], start, "float16", persistable=True, name="c16")
        L.increment(c, step)
    scope, exe = fluid.Scope(), fluid.Executor()
    exe.run(startup, scope=scope)
    ref = np.float16(start)
    for _ in range(runs):
        (got,) = exe.run(main, fetch_list=[c], scope=scope)
        ref = np.float16(ref + np.float16(step))
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, [ref])


@pytest.mark.parametrize("places", [1, 2, 4])
def test_increment_in_a_data_parallel_program_advances_once_per_run(places):
    """A counter incremented in the forward pass of a data-parallel program counts runs, as
    the same program run plainly (the places share the scope's counter)."""
    results = []
    for compiled in (False, True):
        main, start, loss, _ = _regression()
        with fluid.program_guard(main, start):
            counter = L.create_global_var([1], 0, "int64", persistable=True, name="runs")
            L.increment(counter, 1)
        scope, exe = fluid.Scope(), fluid.Executor()
        exe.run(start, scope=scope)
        prog = main
        if compiled:
            prog = fluid.CompiledProgram(main).with_data_parallel(loss_name=loss.name, places=fluid.cpu_places(places))
        for _ in range(3):
            exe.run(prog, feed={"x": XS, "y": YS}, fetch_list=[loss], scope=scope)
        results.append(np.array(scope.find_var("runs").get_tensor()))
    np.testing.assert_array_equal(results[0], [3])
    np.testing.assert_array_equal(results[1], results[0])


def _lod_free(a):
    t = fluid.LoDTensor()
    t.set(a, fluid.CPUPlace())
    return t


# feed forms that must train exactly as the dict of ndarrays
FEED_FORMS = [
    ("LoDTensor without LoD", lambda x, y: {"x": _lod_free(x), "y": _lod_free(y)}),
    ("torch tensors", lambda x, y: {"x": torch.from_numpy(x), "y": torch.from_numpy(y)}),
    ("mixed", lambda x, y: {"x": _lod_free(x), "y": torch.from_numpy(y)}),
    ("list of LoDTensors", lambda x, y: [{"x": _lod_free(x[:4]), "y": _lod_free(y[:4])}, {"x": x[4:], "y": y[4:]}]),
]


def _train(feed, runs=3):
    main, start, loss, _ = _regression()
    scope, exe = fluid.Scope(), fluid.Executor()
    exe.run(start, scope=scope)
    train = fluid.CompiledProgram(main).with_data_parallel(loss_name=loss.name, places=fluid.cpu_places(2))
    losses = [exe.run(train, feed=feed, fetch_list=[loss], scope=scope)[0] for _ in range(runs)]
    return np.stack(losses), _persistables(main, scope)


@pytest.mark.parametrize("form,make", FEED_FORMS, ids=[f[0] for f in FEED_FORMS])
def test_data_parallel_feeds_of_lod_tensors_and_tensors_train_as_arrays(form, make):
    ref_losses, ref_state = _train({"x": XS, "y": YS})
    losses, state = _train(make(XS, YS))
    np.testing.assert_array_equal(losses, ref_losses)
    assert state.keys() == ref_state.keys()
    for k, v in ref_state.items():
        np.testing.assert_array_equal(state[k], v, err_msg=k)


@pytest.mark.parametrize("item", [None, 3, 2.5])
@pytest.mark.parametrize("compiled", [False, True])
def test_fetch_list_items_are_checked_alike_for_programs_and_compiled_programs(item, compiled):
    main, start, loss, _ = _regression()
    scope, exe = fluid.Scope(), fluid.Executor()
    exe.run(start, scope=scope)
    before = _persistables(main, scope)
    prog = main
    if compiled:
        prog = fluid.CompiledProgram(main).with_data_parallel(loss_name=loss.name, places=fluid.cpu_places(2))
    with pytest.raises(TypeError, match=rf"fetch_list item {item!r} is not a Variable, a variable name"):
        exe.run(prog, feed={"x": XS, "y": YS}, fetch_list=[loss, item], scope=scope)
    for k, v in _persistables(main, scope).items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def _features(kind):
    """A regression program with one feature of ``kind``: (main, startup, loss)."""
    main, start = fluid.Program(), fluid.Program()
    main.random_seed = start.random_seed = 5
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = L.data("x", [4], dtype="float32")
        y = L.data("y", [1], dtype="float32")
        ids = L.data("ids", [1], dtype="int64")
        h = x
        if kind == "embedding":
            h = L.elementwise_add(h, L.reshape(L.embedding(ids, size=[10, 4]), [-1, 4]))
        attr = fluid.ParamAttr(regularizer=fluid.regularizer.L1Decay(0.05)) if kind == "param L1" else None
        loss = L.mean(L.square_error_cost(L.fc(h, 1, param_attr=attr), y))
        lr = L.exponential_decay(0.1, 2, 0.5) if kind == "lr decay" else 0.1
        opt = fluid.optimizer.Momentum(
            lr,
            0.9,
            grad_clip=fluid.clip.GradientClipByGlobalNorm(0.5) if kind == "global norm clip" else None,
            regularization=fluid.regularizer.L2Decay(0.1) if kind == "L2" else None,
        )
        opt.minimize(loss)
    return main, start, loss


FEATURES = ["plain", "embedding", "param L1", "L2", "lr decay", "global norm clip"]
IDS = np.random.default_rng(3).integers(0, 10, (8, 1)).astype("int64")


@pytest.mark.parametrize("kind", FEATURES)
def test_data_parallel_on_an_even_split_trains_as_the_plain_program(kind):
    """A mean loss over 8 rows split 4 + 4: the summed 1/2-scaled gradients are the whole
    batch's, so every feature (clip, regularization, lr decay, embedding) gives the plain run."""
    runs = []
    for compiled in (False, True):
        main, start, loss = _features(kind)
        scope, exe = fluid.Scope(), fluid.Executor()
        exe.run(start, scope=scope)
        prog = main
        if compiled:
            prog = fluid.CompiledProgram(main).with_data_parallel(
                loss_name=loss.name, places=["cpu", torch.device("cpu")]
            )
        losses = [
            float(np.mean(exe.run(prog, feed={"x": XS, "y": YS, "ids": IDS}, fetch_list=[loss], scope=scope)[0]))
            for _ in range(4)
        ]
        runs.append((losses, _persistables(main, scope)))
    (ref_losses, ref_state), (losses, state) = runs
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-6, atol=1e-7)
    for k, v in ref_state.items():
        np.testing.assert_allclose(state[k], v, rtol=2e-5, atol=1e-6, err_msg=k)


# LoDs given as numpy arrays (Paddle's binding takes any sequence of ints): (call, lod, lengths)
ARRAY_LODS = [
    (lambda t: t.set_recursive_sequence_lengths([np.array([2, 3])]), [[0, 2, 5]], [[2, 3]]),
    (lambda t: t.set_recursive_sequence_lengths(np.array([[2, 3]])), [[0, 2, 5]], [[2, 3]]),
    (lambda t: t.set_recursive_sequence_lengths([np.array([5, 0], "int32")]), [[0, 5, 5]], [[5, 0]]),
    (lambda t: t.set_lod([np.array([0, 1, 5])]), [[0, 1, 5]], [[1, 4]]),
    (lambda t: t.set_lod(np.array([[0, 5]], "uint64")), [[0, 5]], [[5]]),
]


@pytest.mark.parametrize("call,lod,lengths", ARRAY_LODS)
def test_lods_given_as_int_arrays(call, lod, lengths):
    t = fluid.LoDTensor()
    t.set(np.zeros((5, 1), "float32"), fluid.CPUPlace())
    call(t)
    assert t.lod() == lod and t.recursive_sequence_lengths() == lengths
    assert all(type(n) is int for n in t.lod()[0])


@pytest.mark.parametrize("lens", [np.array([[2, 1]]), [np.array([2, 1])], ((2, 1),)])
def test_create_lod_tensor_of_lists_takes_lengths_as_arrays(lens):
    t = fluid.create_lod_tensor([[1, 2], [3]], lens, fluid.CPUPlace())
    assert t.recursive_sequence_lengths() == [[2, 1]]
    np.testing.assert_array_equal(np.array(t), [[1], [2], [3]])


@pytest.mark.parametrize(
    "lod,error,message",
    [
        ([np.array([0.0, 5.0])], TypeError, "list of lists of ints"),
        (np.array([0, 5]), TypeError, "list of lists of ints"),
        ([np.array([0, 2, 5]), np.array([0, 5])], NotImplementedError, "2 levels"),
        ([np.array([0, 3, 2, 5])], ValueError, r"decrease"),
    ],
)
def test_bad_array_lods_are_refused_and_keep_the_old_lod(lod, error, message):
    t = fluid.LoDTensor()
    t.set(np.zeros((5, 1), "float32"), fluid.CPUPlace())
    t.set_lod([[0, 5]])
    with pytest.raises(error, match=message):
        t.set_lod(lod)
    assert t.lod() == [[0, 5]]


# (DataFeeder arguments, then feed's minibatch or None, error, message)
BAD_FEEDERS = [
    (
        lambda w, y: {"feed_list": w},
        None,
        TypeError,
        r"feed_list=...\): expected a list of Variables or names, got Var",
    ),
    (lambda w, y: {"feed_list": [w, y], "place": "bogus"}, None, ValueError, r"DataFeeder: place must be 'cpu', 'gpu'"),
    (lambda w, y: {"feed_list": [w, y], "place": 3}, None, TypeError, r"DataFeeder: place must be a CPUPlace"),
    (lambda w, y: {"feed_list": [w, y]}, 5, TypeError, r"the minibatch must be an iterable of samples .*got int"),
    (lambda w, y: {"feed_list": [w, y]}, "ab", TypeError, r"the minibatch must be an iterable of samples .*got str"),
]


@pytest.mark.parametrize("kwargs,batch,error,message", BAD_FEEDERS)
def test_data_feeder_refuses_bad_arguments_up_front(kwargs, batch, error, message):
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        w = L.data("w", [1], dtype="int64", lod_level=1)
        y = L.data("y", [1], dtype="int64")
    with pytest.raises(error, match=message):
        feeder = fluid.DataFeeder(program=main, **kwargs(w, y))
        feeder.feed(batch)


@pytest.mark.parametrize("place", [None, "cpu", fluid.CPUPlace(), torch.device("cpu"), fluid.CUDAPinnedPlace()])
def test_data_feeder_places(place):
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        w = L.data("w", [1], dtype="int64", lod_level=1)
    feed = fluid.DataFeeder([w], place, program=main).feed([([1, 2],), ([3],)])
    np.testing.assert_array_equal(np.array(feed["w"]), [[1], [2], [3]])
    assert feed["w"].lod() == [[0, 2, 3]]


def test_removing_an_op_after_compiling_changes_what_runs():
    """Block._remove_op (Paddle's) of an op appended after a first run: the program and its
    CompiledProgram run without it, as a program built without it."""
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start):
        x = L.data("x", [2], dtype="float32")
        y = L.scale(x, 2.0)
        L.assign(L.scale(y, 10.0), output=y)  # appended, then removed
    block = main.global_block()
    exe = fluid.Executor()
    xs = np.arange(4, dtype="float32").reshape(2, 2)
    compiled = fluid.CompiledProgram(main).with_data_parallel(places=fluid.cpu_places(2))
    for prog in (main, compiled):
        np.testing.assert_array_equal(exe.run(prog, feed={"x": xs}, fetch_list=[y])[0], 20 * xs)
    n = len(block.ops)
    for bad in (n, -n - 1, 1.0, True):
        with pytest.raises(IndexError, match=rf"_remove_op: index must be an int in \[-{n}, {n}\)"):
            block._remove_op(bad)
    assert len(block.ops) == n
    block._remove_op(n - 1)
    block._remove_op(-1)
    assert [op.type for op in block.ops] == ["scale"]
    for prog in (main, compiled):
        np.testing.assert_array_equal(exe.run(prog, feed={"x": xs}, fetch_list=[y])[0], 2 * xs)
    temp = [n for n in block.vars if n.startswith("scale_1")]
    block._remove_var(temp[0])
    assert temp[0] not in block.vars
    with pytest.raises(ValueError, match=r"_remove_var: no variable 'nope' in block 0"):
        block._remove_var("nope")
