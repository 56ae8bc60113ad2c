"""fluid.layers.ParallelDo and get_places: Paddle 1.x's parallel_do, unrolled once per place.

References are independent of the code under test: the row split is a hand table of Paddle's
``SplitLoDTensor`` rule, forward outputs are numpy, and training is checked against the same
program without ParallelDo (batches that split evenly) and against a float64 torch model of
Paddle's semantics (per-place losses concatenated, parameter gradients summed, Paddle's RMSProp).
"""

import os

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid.layers.control_flow import split_sizes
from torchfluid.layers.device import PlaceList
from torchfluid.static import OpRunError

# (rows, places) -> rows per running place, worked out by hand from Paddle's SplitLoDTensor:
# R = min(B, P) places get B // R rows, the last of all P places also gets B % P.
SPLITS = {
    (12, 1): [12],
    (12, 2): [6, 6],
    (12, 3): [4, 4, 4],
    (10, 3): [3, 3, 4],
    (10, 4): [2, 2, 2, 4],
    (7, 2): [3, 4],
    (7, 3): [2, 2, 3],
    (9, 4): [2, 2, 2, 3],
    (2, 3): [1, 1],
    (1, 2): [1],
    (1, 3): [1],
    (1, 4): [1],
    (5, 5): [1, 1, 1, 1, 1],
    (64, 2): [32, 32],
}


@pytest.mark.parametrize("rows,places", sorted(SPLITS))
def test_split_sizes_follow_paddle(rows, places):
    assert split_sizes(rows, places) == SPLITS[rows, places]


def test_split_of_no_rows_is_an_error():
    with pytest.raises(ValueError, match="an input has 0 rows; it needs at least one row to split across 3"):
        split_sizes(0, 3)


# ---------------------------------------------------------------- get_places


@pytest.mark.parametrize(
    "kwargs,count",
    [
        ({}, os.cpu_count()),
        ({"device_count": 0}, os.cpu_count()),
        ({"device_count": 3}, 3),
        ({"device_count": 2, "device_type": "CPU"}, 2),
        ({"device_count": 1, "device_type": "cpu"}, 1),
        ({"device_count": 4, "device_type": "AUTO"}, 4),
    ],
)
def test_get_places_cpu(kwargs, count):
    places = fluid.layers.get_places(**kwargs)
    assert isinstance(places, PlaceList) and len(places) == count
    assert all(p == fluid.CPUPlace() for p in places)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without a GPU")
def test_get_places_cuda_without_gpu():
    with pytest.raises(RuntimeError, match=r"get_places\(device_type='CUDA'\) needs CUDA, but this torch build"):
        fluid.layers.get_places(device_type="CUDA")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_get_places_cuda():
    n = torch.cuda.device_count()
    assert list(fluid.layers.get_places(device_type="CUDA")) == [fluid.CUDAPlace(i) for i in range(n)]
    with pytest.raises(RuntimeError, match=f"only {n} GPU"):
        fluid.layers.get_places(device_count=n + 1, device_type="CUDA")


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"device_count": -1}, ValueError, "device_count must be an int >= 0, got -1"),
        ({"device_count": 2.0}, TypeError, "device_count must be an int >= 0, got 2.0"),
        ({"device_count": True}, TypeError, "device_count must be an int >= 0, got True"),
        ({"device_type": "TPU"}, ValueError, "device_type must be 'CPU', 'CUDA', 'AUTO' or None, got 'TPU'"),
        ({"device_type": 1}, ValueError, "device_type must be 'CPU', 'CUDA', 'AUTO' or None, got 1"),
    ],
)
def test_get_places_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        fluid.layers.get_places(**kwargs)


# ---------------------------------------------------------------- forward values vs numpy

RNG = np.random.default_rng(1)
W = RNG.standard_normal((4, 3)).astype("float32")
B = RNG.standard_normal(3).astype("float32")


def _forward_program(places):
    """Per place: h = tanh(x @ W + b) (rows), m = mean(h) (one value), z2 = 2 z + 1 (a second input)."""
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[4], dtype="float32")
        z = fluid.layers.data(name="z", shape=[2], dtype="float32")
        pd = fluid.layers.ParallelDo(places)
        with pd.do():
            x_, z_ = pd.read_input(x), pd.read_input(z)
            h = fluid.layers.fc(
                input=x_,
                size=3,
                act="tanh",
                param_attr=fluid.ParamAttr(initializer=fluid.initializer.NumpyArrayInitializer(W)),
                bias_attr=fluid.ParamAttr(initializer=fluid.initializer.NumpyArrayInitializer(B)),
            )
            m = fluid.layers.mean(h)
            pd.write_output(h)
            pd.write_output(m)
            pd.write_output(fluid.layers.scale(z_, scale=2.0, bias=1.0))
        h, m, z2 = pd()
    return main, startup, [h, m, z2]


@pytest.mark.parametrize("rows,places", sorted(SPLITS))
def test_forward_outputs_match_numpy(rows, places):
    main, startup, fetch = _forward_program(fluid.layers.get_places(device_count=places))
    x = RNG.standard_normal((rows, 4)).astype("float32")
    z = RNG.standard_normal((rows, 2)).astype("float32")
    exe = fluid.Executor(fluid.CPUPlace())
    with fluid.scope_guard(fluid.Scope()):
        exe.run(startup)
        h, m, z2 = exe.run(main, feed={"x": x, "z": z}, fetch_list=fetch)
    full = np.tanh(x @ W + B)
    bounds = np.cumsum([0] + SPLITS[rows, places])
    means = [full[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    np.testing.assert_allclose(h, full, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(m, means, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(z2, 2 * z + 1, rtol=1e-6)
    assert h.shape == (rows, 3) and m.shape == (len(SPLITS[rows, places]),)


def test_merged_output_variables():
    main, _, (h, m, z2) = _forward_program(["cpu", "cpu"])
    assert (h.shape, m.shape, z2.shape) == ((-1, 3), (-1,), (-1, 2))
    assert main.num_blocks == 1  # the recorded block is unrolled into the global block
    types = [op.type for op in main.global_block().ops]
    assert types.count("parallel_do_slice") == 4 and types.count("parallel_do_merge") == 3
    assert types.count("mul") == 2  # the fc once per place


# ---------------------------------------------------------------- training vs references

X = RNG.standard_normal((12, 6)).astype("float32")
Y = RNG.integers(0, 5, (12, 1)).astype("int64")
LR = 0.01


def _mlp(places, seed=3):
    """fc(tanh) -> fc(softmax) -> cross_entropy -> mean, with or without ParallelDo (places None)."""
    main, startup = fluid.Program(), fluid.Program()
    main.random_seed = startup.random_seed = seed
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[6], dtype="float32")
        y = fluid.layers.data(name="y", shape=[1], dtype="int64")

        def net(x, y):
            h = fluid.layers.fc(input=x, size=8, act="tanh")
            p = fluid.layers.fc(input=h, size=5, act="softmax")
            return fluid.layers.mean(fluid.layers.cross_entropy(input=p, label=y)), p

        if places is None:
            loss, pred = net(x, y)
        else:
            pd = fluid.layers.ParallelDo(places)
            with pd.do():
                loss, pred = net(pd.read_input(x), pd.read_input(y))
                pd.write_output(loss)
                pd.write_output(pred)
            per_place, pred = pd()
            loss = fluid.layers.mean(per_place)
        test_program = main.clone(for_test=True)
        fluid.optimizer.RMSProp(learning_rate=LR).minimize(loss)
    return main, startup, test_program, loss, pred


PARAMS = ["fc_0.w_0", "fc_0.b_0", "fc_1.w_0", "fc_1.b_0"]


def _train(places, batches, steps=3):
    main, startup, test_program, loss, pred = _mlp(places)
    scope = fluid.Scope()
    exe = fluid.Executor(fluid.CPUPlace())
    with fluid.scope_guard(scope):
        exe.run(startup)
        init = {n: np.array(scope.find_var(n).get_tensor()) for n in PARAMS}
        losses, grads = [], []
        for step in range(steps):
            x, y = batches[step % len(batches)]
            lv, g = exe.run(main, feed={"x": x, "y": y}, fetch_list=[loss, "fc_0.w_0@GRAD"])
            losses.append(float(lv[0]))
            grads.append(g)
        (test_pred,) = exe.run(test_program, feed={"x": X, "y": Y}, fetch_list=[pred])
        final = {n: np.array(scope.find_var(n).get_tensor()) for n in PARAMS}
    return init, losses, grads, final, test_pred


def _reference(init, batches, places, steps=3, rho=0.95, eps=1e-6):
    """float64 torch: each place's mean loss on its rows, their mean is the loss; Paddle's RMSProp."""
    p = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in init.items()}
    ms = {n: torch.zeros_like(t) for n, t in p.items()}
    losses, grads = [], []
    for step in range(steps):
        x, y = batches[step % len(batches)]
        bounds = np.cumsum([0] + SPLITS[len(x), places])
        place_losses = []
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            xt = torch.tensor(x[a:b], dtype=torch.float64)
            h = torch.tanh(xt @ p["fc_0.w_0"] + p["fc_0.b_0"])
            prob = torch.softmax(h @ p["fc_1.w_0"] + p["fc_1.b_0"], dim=1)
            place_losses.append(-torch.log(prob[torch.arange(b - a), torch.tensor(y[a:b, 0])]).mean())
        loss = torch.stack(place_losses).mean()
        g = torch.autograd.grad(loss, [p[n] for n in PARAMS])
        losses.append(float(loss.detach()))
        grads.append(g[0].numpy().copy())
        with torch.no_grad():
            for n, gn in zip(PARAMS, g, strict=True):
                ms[n] = rho * ms[n] + (1 - rho) * gn * gn
                p[n] -= LR * gn / torch.sqrt(ms[n] + eps)
    return losses, grads, {n: t.detach().numpy() for n, t in p.items()}


@pytest.mark.parametrize("places", [1, 2, 3])
def test_training_equals_the_program_without_parallel_do(places):
    """12 rows split evenly: the mean of the places' mean losses is the batch mean, so the
    losses, gradients, parameters and test predictions are those of the plain program."""
    batches = [(X, Y)]
    plain = _train(None, batches)
    par = _train(fluid.layers.get_places(device_count=places), batches)
    for a, b in zip(plain[0].values(), par[0].values(), strict=True):
        np.testing.assert_array_equal(a, b)  # same seed, same initial parameters
    np.testing.assert_allclose(par[1], plain[1], rtol=1e-5)
    for ga, gb in zip(par[2], plain[2], strict=True):
        np.testing.assert_allclose(ga, gb, rtol=1e-4, atol=1e-6)
    for n in PARAMS:
        np.testing.assert_allclose(par[3][n], plain[3][n], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(par[4], plain[4], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "places,rows",
    [
        (1, [12]),
        (2, [12, 7]),
        (3, [12]),
        (3, [10, 10, 7]),  # uneven: 3, 3, 4 rows, then 2, 2, 3
        (4, [10, 9]),  # 2, 2, 2, 4 and 2, 2, 2, 3
        (3, [2, 1, 12]),  # fewer rows than places: the idle places add nothing
        (2, [1, 12, 1]),
    ],
)
def test_training_matches_paddle_semantics(places, rows):
    batches = [(X[:r], Y[:r]) for r in rows]
    init, losses, grads, final, _ = _train(fluid.layers.get_places(device_count=places), batches)
    ref_losses, ref_grads, ref_final = _reference(init, batches, places)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    for g, rg in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(g, rg, rtol=1e-4, atol=1e-6)
    for n in PARAMS:
        np.testing.assert_allclose(final[n], ref_final[n], rtol=1e-5, atol=1e-6)


def test_idle_places_leak_no_nan_into_gradients():
    """A block that reduces over its rows (a per-place statistic feeding a layer): with fewer
    rows than places the idle places' copies must not change the merged value or the gradient."""
    w0 = RNG.standard_normal((4, 2)).astype("float32")
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[4], dtype="float32")
        pd = fluid.layers.ParallelDo(["cpu"] * 3)
        with pd.do():
            s = fluid.layers.reduce_mean(pd.read_input(x), dim=0, keep_dim=True)
            out = fluid.layers.fc(
                input=s,
                size=2,
                bias_attr=False,
                param_attr=fluid.ParamAttr(name="w", initializer=fluid.initializer.NumpyArrayInitializer(w0)),
            )
            pd.write_output(out)
        loss = fluid.layers.mean(pd())
        fluid.backward.append_backward(loss)
    x = RNG.standard_normal((2, 4)).astype("float32")
    exe = fluid.Executor(fluid.CPUPlace())
    with fluid.scope_guard(fluid.Scope()):
        exe.run(startup)
        merged, grad = exe.run(main, feed={"x": x}, fetch_list=[out.name, "w@GRAD"])
    np.testing.assert_allclose(merged, x @ w0, rtol=1e-6)  # one row per running place
    np.testing.assert_allclose(grad, np.outer(x.sum(0), np.ones(2)) / 4, rtol=1e-6)


def test_batch_norm_moving_statistics_come_from_place_0():
    """Paddle's place 0 shares the parameters' memory and the other places get copies, so the
    moving statistics a run leaves are place 0's update, from its rows only."""
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[3], dtype="float32")
        pd = fluid.layers.ParallelDo(["cpu"] * 3)
        with pd.do():
            y = fluid.layers.batch_norm(
                pd.read_input(x), momentum=0.8, moving_mean_name="mm", moving_variance_name="mv"
            )
            pd.write_output(y)
        merged = pd()
    x = RNG.standard_normal((10, 3)).astype("float32") * 2 + 1
    exe = fluid.Executor(fluid.CPUPlace())
    scope = fluid.Scope()
    with fluid.scope_guard(scope):
        exe.run(startup)
        mm0, mv0 = (np.array(scope.find_var(n).get_tensor()) for n in ("mm", "mv"))
        (y,) = exe.run(main, feed={"x": x}, fetch_list=[merged])
        mm, mv = (np.array(scope.find_var(n).get_tensor()) for n in ("mm", "mv"))
    first = x[:3]  # place 0's rows (10 rows on 3 places: 3, 3, 4)
    np.testing.assert_allclose(mm, 0.8 * mm0 + 0.2 * first.mean(0), rtol=1e-5)
    np.testing.assert_allclose(mv, 0.8 * mv0 + 0.2 * first.var(0), rtol=1e-5)
    parts = [x[:3], x[3:6], x[6:]]  # each place normalises with its own batch statistics
    ref = np.concatenate([(p - p.mean(0)) / np.sqrt(p.var(0) + 1e-5) for p in parts])
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


def test_serialized_program_runs_the_same():
    main, startup, _, loss, _ = _mlp(["cpu", "cpu", "cpu"])
    again = fluid.Program.parse_from_string(main.desc.serialize_to_string())
    exe = fluid.Executor(fluid.CPUPlace())
    out = []
    for program in (main, again):
        with fluid.scope_guard(fluid.Scope()):
            exe.run(startup)
            out.append([exe.run(program, feed={"x": X[:10], "y": Y[:10]}, fetch_list=[loss.name])[0] for _ in range(2)])
    np.testing.assert_array_equal(out[0], out[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_and_cpu_places_give_the_cpu_numbers():
    batches = [(X[:10], Y[:10])]
    cpu = _train(["cpu", "cpu"], batches)
    mixed = _train([fluid.CUDAPlace(0), fluid.CPUPlace()], batches)
    np.testing.assert_allclose(mixed[1], cpu[1], rtol=1e-5)
    for n in PARAMS:
        np.testing.assert_allclose(mixed[3][n], cpu[3][n], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- errors


@pytest.fixture
def prog():
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[4], dtype="float32")
        yield main, x


def _summary(program):
    return [op.type for op in program.global_block().ops], list(program.global_block().vars), program.num_blocks


def _read_outside(pd, x):
    pd.read_input(x)


def _write_outside(pd, x):
    pd.write_output(x)


def _call_before(pd, x):
    pd()


def _no_output(pd, x):
    with pd.do():
        pd.read_input(x)
    pd()


def _do_twice(pd, x):
    with pd.do():
        pd.write_output(fluid.layers.scale(pd.read_input(x), scale=2.0))
    with pd.do():
        pass


def _nested(pd, x):
    with pd.do():
        inner = fluid.layers.ParallelDo(["cpu"])
        with inner.do():
            pass


def _no_input(pd, x):
    with pd.do():
        pd.write_output(fluid.layers.fill_constant([1], "float32", 1.0))


def _read_not_variable(pd, x):
    with pd.do():
        pd.read_input(np.ones((2, 4)))


def _read_inner(pd, x):
    with pd.do():
        pd.read_input(fluid.layers.scale(pd.read_input(x), scale=2.0))


def _read_lod(pd, x):
    seq = fluid.layers.data(name="seq", shape=[1], dtype="int64", lod_level=1)
    with pd.do():
        pd.read_input(seq)


def _write_outer(pd, x):
    with pd.do():
        pd.read_input(x)
        pd.write_output(x)


def _write_twice(pd, x):
    with pd.do():
        y = fluid.layers.scale(pd.read_input(x), scale=2.0)
        pd.write_output(y)
        pd.write_output(y)


def _minimize_inside(pd, x):
    with pd.do():
        loss = fluid.layers.mean(fluid.layers.fc(input=pd.read_input(x), size=1))
        fluid.optimizer.SGD(learning_rate=0.1).minimize(loss)
        pd.write_output(loss)


ERRORS = [
    (_read_outside, ValueError, r"read_input\(\) must be called inside `with pd.do\(\):`"),
    (_write_outside, ValueError, r"write_output\(\) must be called inside `with pd.do\(\):`"),
    (_call_before, ValueError, r"pd\(\) gives the outputs only after the `with pd.do\(\):` block has ended"),
    (_no_output, ValueError, r"has no output: call pd.write_output\(var\) inside do\(\)"),
    (_do_twice, ValueError, "do\\(\\) was entered already"),
    (_nested, NotImplementedError, "inside another block is not supported"),
    (_no_input, ValueError, r"has no input: call pd.read_input\(var\) inside do\(\)"),
    (_read_not_variable, TypeError, "read_input: expected a static Variable, got ndarray"),
    (_read_inner, ValueError, "is not a variable of the program's global block"),
    (_read_lod, NotImplementedError, "'seq' is a LoD tensor"),
    (_write_outer, ValueError, "'x' is not computed inside this do\\(\\) block"),
    (_write_twice, ValueError, "is written already"),
    (_minimize_inside, ValueError, "call minimize/append_backward on pd\\(\\)'s merged outputs after the block"),
]


@pytest.mark.parametrize("fn,error,match", ERRORS, ids=[e[0].__name__ for e in ERRORS])
def test_misuse_is_a_clear_error(prog, fn, error, match):
    main, x = prog
    pd = fluid.layers.ParallelDo(["cpu", "cpu"])
    with pytest.raises(error, match=match):
        fn(pd, x)
    assert main.current_block_idx == 0


@pytest.mark.parametrize("fn", [_no_input, _minimize_inside, _write_twice])
def test_a_failed_block_leaves_the_global_block_as_it_was(prog, fn):
    main, x = prog
    pd = fluid.layers.ParallelDo(["cpu", "cpu"])
    before = None
    try:
        before = _summary(main)
        fn(pd, x)
    except (ValueError, NotImplementedError):
        pass
    ops, names, blocks = _summary(main)
    assert blocks == 1 and main.current_block_idx == 0
    # only what layers put outside the block stays (parameters, the optimizer's global variables)
    assert not any(".place" in n for n in names) and not any(t.startswith("parallel_do") for t in ops)
    assert before[0] == [t for t in ops if t in before[0]]
    # and the same ParallelDo can record a block again
    with pd.do():
        pd.write_output(fluid.layers.scale(pd.read_input(x), scale=3.0))
    assert pd().shape == (-1, 4)


def test_an_exception_inside_the_block_drops_it(prog):
    main, x = prog
    pd = fluid.layers.ParallelDo(["cpu", "cpu"])
    before = _summary(main)
    with pytest.raises(ZeroDivisionError):
        with pd.do():
            fluid.layers.scale(pd.read_input(x), scale=2.0)
            1 / 0  # noqa: B018
    assert _summary(main) == before and main.current_block_idx == 0


@pytest.mark.parametrize(
    "places,kwargs,error,match",
    [
        ([], {}, ValueError, "places is empty; it needs at least one place"),
        ("cpu", {}, TypeError, "places must be what fluid.layers.get_places\\(\\) returns or a list of places"),
        (fluid.CPUPlace(), {}, TypeError, "a list of places"),
        (["tpu"], {}, ValueError, r"places\[0\] must be 'cpu', 'gpu', 'gpu:N' or 'cuda:N', got 'tpu'"),
        ([3], {}, TypeError, r"places\[0\] must be a CPUPlace, CUDAPlace"),
        (["cpu"], {"use_nccl": 1}, TypeError, "use_nccl must be True or False, got 1"),
        (["cpu"], {"name": ""}, TypeError, "name must be a non-empty str or None"),
    ],
)
def test_bad_parallel_do_arguments(places, kwargs, error, match):
    with pytest.raises(error, match=match):
        fluid.layers.ParallelDo(places, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without a GPU")
def test_gpu_place_without_gpu():
    with pytest.raises(RuntimeError, match=r"places\[1\]=CUDAPlace\(0\) needs CUDA"):
        fluid.layers.ParallelDo([fluid.CPUPlace(), fluid.CUDAPlace(0)])


def test_parallel_do_is_static_only():
    with fluid.dygraph.guard():
        with pytest.raises(RuntimeError, match="ParallelDo builds a static program"):
            fluid.layers.ParallelDo(["cpu"])


@pytest.mark.parametrize(
    "feed,match",
    [
        # 12 rows of x run on 3 places, 2 rows of z on 2: Paddle enforces one count
        ({"x": np.ones((12, 4)), "z": np.ones((2, 4))}, "the inputs split into different numbers of places"),
        ({"x": np.ones((0, 4)), "z": np.ones((0, 4))}, "an input has 0 rows"),
    ],
)
def test_bad_batches_at_run_time(feed, match):
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[4], dtype="float32")
        z = fluid.layers.data(name="z", shape=[4], dtype="float32")
        pd = fluid.layers.ParallelDo(["cpu"] * 3)
        with pd.do():
            pd.write_output(fluid.layers.elementwise_add(pd.read_input(x), pd.read_input(z)))
        out = pd()
    exe = fluid.Executor(fluid.CPUPlace())
    with pytest.raises(OpRunError, match=match):
        exe.run(main, feed={k: v.astype("float32") for k, v in feed.items()}, fetch_list=[out])


# ---------------------------------------------------------------- with the rest of fluid


def _encoder_program(places):
    """fc outside the block -> ParallelDo(fc, mean) -> mean: the gradient of the outside fc's
    weight flows back through read_input (the chain rule; Paddle's parallel_do_grad leaves the
    inputs' gradients unset)."""
    main, startup = fluid.Program(), fluid.Program()
    main.random_seed = startup.random_seed = 5
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[6], dtype="float32")
        h = fluid.layers.fc(input=x, size=4, act="tanh")
        if places is None:
            loss = fluid.layers.mean(fluid.layers.fc(input=h, size=1))
        else:
            pd = fluid.layers.ParallelDo(places)
            with pd.do():
                pd.write_output(fluid.layers.mean(fluid.layers.fc(input=pd.read_input(h), size=1)))
            loss = fluid.layers.mean(pd())
        fluid.optimizer.RMSProp(learning_rate=LR).minimize(loss)
    return main, startup, loss


def test_gradient_flows_back_through_read_input():
    out = []
    for places in (None, ["cpu", "cpu", "cpu"]):
        main, startup, loss = _encoder_program(places)
        with fluid.scope_guard(fluid.Scope()):
            exe = fluid.Executor(fluid.CPUPlace())
            exe.run(startup)
            runs = [exe.run(main, feed={"x": X}, fetch_list=[loss, "fc_0.w_0@GRAD"]) for _ in range(3)]
        out.append(runs)
    for (l0, g0), (l1, g1) in zip(*out, strict=True):
        np.testing.assert_allclose(l1, l0, rtol=1e-5)
        np.testing.assert_allclose(g1, g0, rtol=1e-4, atol=1e-7)
        assert np.abs(g0).max() > 0


def test_two_parallel_dos_in_a_row():
    """The second block reads the first one's merged output (10 rows: 3, 3, 4 on 3 places, 5, 5 on 2)."""
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.layers.data(name="x", shape=[4], dtype="float32")
        first = fluid.layers.ParallelDo(["cpu"] * 3)
        with first.do():
            first.write_output(fluid.layers.scale(first.read_input(x), scale=2.0))
        second = fluid.layers.ParallelDo(["cpu"] * 2)
        with second.do():
            second.write_output(fluid.layers.reduce_sum(second.read_input(first()), dim=0, keep_dim=True))
        out = second()
    x = RNG.standard_normal((10, 4)).astype("float32")
    with fluid.scope_guard(fluid.Scope()):
        (got,) = fluid.Executor(fluid.CPUPlace()).run(main, feed={"x": x}, fetch_list=[out])
    np.testing.assert_allclose(got, [2 * x[:5].sum(0), 2 * x[5:].sum(0)], rtol=1e-5)


def test_inference_model_of_a_parallel_program(tmp_path):
    main, startup, test_program, _, pred = _mlp(["cpu", "cpu", "cpu"])
    exe = fluid.Executor(fluid.CPUPlace())
    with fluid.scope_guard(fluid.Scope()):
        exe.run(startup)
        exe.run(main, feed={"x": X, "y": Y})
        (want,) = exe.run(test_program, feed={"x": X[:7], "y": Y[:7]}, fetch_list=[pred])
        fluid.io.save_inference_model(str(tmp_path), ["x"], [pred], exe, main_program=main)
    with fluid.scope_guard(fluid.Scope()):
        program, feed_names, targets = fluid.io.load_inference_model(str(tmp_path), exe)
        (got,) = exe.run(program, feed={feed_names[0]: X[:7]}, fetch_list=targets)
    np.testing.assert_array_equal(got, want)
    assert got.shape == (7, 5)
