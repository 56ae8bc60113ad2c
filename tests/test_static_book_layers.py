"""The book models' layers in static mode, against numpy references (and the same layers in
dygraph mode); reshape resolved at run time; clone(for_test); uniform_random."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid.static._infer import OpBuildError
from torchfluid.static.plan import OpRunError

rng = np.random.RandomState(0)


@pytest.fixture
def prog():
    torch.manual_seed(0)
    main, startup, scope = fluid.Program(), fluid.Program(), fluid.Scope()
    with fluid.scope_guard(scope), fluid.program_guard(main, startup), fluid.unique_name.guard():
        yield main, startup


def _run(main, startup, feed, fetch):
    exe = fluid.Executor(fluid.CPUPlace())
    exe.run(startup)
    return exe.run(main, feed=feed, fetch_list=fetch)


def _param(name):
    return np.array(fluid.global_scope().find_var(name).get_tensor())


# ---------------------------------------------------------------- numpy references


def np_conv2d(x, w, stride, pad, dilation=1, groups=1):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - dilation * (kh - 1) - 1) // stride + 1
    ow = (wd + 2 * pad - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, o, oh, ow), dtype=np.float64)
    per = o // groups
    for f in range(o):
        g = f // per
        for i in range(oh):
            for j in range(ow):
                patch = xp[
                    :,
                    g * cg : (g + 1) * cg,
                    i * stride : i * stride + dilation * (kh - 1) + 1 : dilation,
                    j * stride : j * stride + dilation * (kw - 1) + 1 : dilation,
                ]
                out[:, f, i, j] = (patch * w[f]).sum(axis=(1, 2, 3))
    return out


def np_pool2d(x, k, stride, pad, kind, exclusive=True):
    n, c, h, w = x.shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * stride - pad, j * stride - pad
            r1, c1 = min(r0 + k, h), min(c0 + k, w)
            r0, c0 = max(r0, 0), max(c0, 0)
            win = x[:, :, r0:r1, c0:c1]
            if kind == "max":
                out[:, :, i, j] = win.max(axis=(2, 3))
            else:
                out[:, :, i, j] = win.sum(axis=(2, 3)) / (win.shape[2] * win.shape[3] if exclusive else k * k)
    return out


# ---------------------------------------------------------------- conv2d / pool2d


@pytest.mark.parametrize("stride,pad,dilation,groups", [(1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 1), (1, 1, 1, 2)])
def test_conv2d_matches_numpy(prog, stride, pad, dilation, groups):
    main, startup = prog
    x = fluid.layers.data(name="x", shape=[4, 7, 7], dtype="float32")
    y = fluid.layers.conv2d(
        x,
        num_filters=6,
        filter_size=3,
        stride=stride,
        padding=pad,
        dilation=dilation,
        groups=groups,
        act="relu",
        bias_attr=fluid.ParamAttr(initializer=fluid.initializer.UniformInitializer(-1.0, 1.0)),
    )
    xv = rng.randn(2, 4, 7, 7).astype("float32")
    (got,) = _run(main, startup, {"x": xv}, [y])
    w, b = _param("conv2d_0.w_0"), _param("conv2d_0.b_0")
    assert w.shape == (6, 4 // groups, 3, 3)
    want = np.maximum(np_conv2d(xv, w, stride, pad, dilation, groups) + b.reshape(1, -1, 1, 1), 0)
    assert list(y.shape) == [-1] + list(want.shape[1:])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_conv2d_default_filter_init_is_paddles_normal(prog):
    main, startup = prog
    x = fluid.layers.data(name="x", shape=[8, 5, 5], dtype="float32")
    fluid.layers.conv2d(x, num_filters=64, filter_size=5)
    fluid.Executor().run(startup)
    w = _param("conv2d_0.w_0")
    std = np.sqrt(2.0 / (5 * 5 * 8))
    assert abs(w.mean()) < 0.05 * std * 10 and abs(w.std() / std - 1) < 0.05
    np.testing.assert_array_equal(_param("conv2d_0.b_0"), np.zeros(64, "float32"))


@pytest.mark.parametrize(
    "kind,k,stride,pad,exclusive",
    [
        ("max", 2, 2, 0, True),
        ("max", 3, 2, 1, True),
        ("avg", 2, 2, 0, True),
        ("avg", 3, 1, 1, True),
        ("avg", 3, 1, 1, False),
    ],
)
def test_pool2d_matches_numpy(prog, kind, k, stride, pad, exclusive):
    main, startup = prog
    x = fluid.layers.data(name="x", shape=[3, 6, 6], dtype="float32")
    y = fluid.layers.pool2d(x, pool_size=k, pool_type=kind, pool_stride=stride, pool_padding=pad, exclusive=exclusive)
    xv = rng.randn(2, 3, 6, 6).astype("float32")
    (got,) = _run(main, startup, {"x": xv}, [y])
    np.testing.assert_allclose(
        got, np_pool2d(xv.astype(np.float64), k, stride, pad, kind, exclusive), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_global_pooling(prog, kind):
    main, startup = prog
    x = fluid.layers.data(name="x", shape=[3, 4, 5], dtype="float32")
    y = fluid.layers.pool2d(x, pool_type=kind, global_pooling=True)
    xv = rng.randn(2, 3, 4, 5).astype("float32")
    (got,) = _run(main, startup, {"x": xv}, [y])
    xd = xv.astype(np.float64)
    want = xd.max(axis=(2, 3), keepdims=True) if kind == "max" else xd.mean(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_simple_img_conv_pool_is_conv_then_pool(prog):
    main, startup = prog
    x = fluid.layers.data(name="x", shape=[1, 8, 8], dtype="float32")
    y = fluid.nets.simple_img_conv_pool(input=x, num_filters=3, filter_size=3, pool_size=2, pool_stride=2, act="relu")
    xv = rng.randn(2, 1, 8, 8).astype("float32")
    (got,) = _run(main, startup, {"x": xv}, [y])
    conv = np.maximum(np_conv2d(xv, _param("conv2d_0.w_0"), 1, 0) + _param("conv2d_0.b_0").reshape(1, -1, 1, 1), 0)
    np.testing.assert_allclose(got, np_pool2d(conv, 2, 2, 0, "max"), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- batch_norm


def test_batch_norm_training_and_moving_statistics(prog):
    main, startup = prog
    x = fluid.layers.data(name="x", shape=[3, 2, 2], dtype="float32")
    y = fluid.layers.batch_norm(x, momentum=0.8, epsilon=1e-3)
    test_program = main.clone(for_test=True)
    exe = fluid.Executor()
    exe.run(startup)
    assert [p.name for p in main.all_parameters()] == [f"batch_norm_0.{s}" for s in ("w_0", "b_0", "w_1", "w_2")]
    np.testing.assert_array_equal(_param("batch_norm_0.w_2"), np.ones(3, "float32"))
    mean, var = np.zeros(3), np.ones(3)
    for _ in range(3):
        xv = (rng.randn(5, 3, 2, 2) * 3 + 1).astype("float32")
        (got,) = exe.run(main, feed={"x": xv}, fetch_list=[y])
        bm, bv = xv.mean(axis=(0, 2, 3)), xv.var(axis=(0, 2, 3))  # biased variance, as Paddle
        want = (xv - bm.reshape(1, -1, 1, 1)) / np.sqrt(bv.reshape(1, -1, 1, 1) + 1e-3)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        mean, var = 0.8 * mean + 0.2 * bm, 0.8 * var + 0.2 * bv
        np.testing.assert_allclose(_param("batch_norm_0.w_1"), mean, rtol=1e-5)
        np.testing.assert_allclose(_param("batch_norm_0.w_2"), var, rtol=1e-5)
    (got,) = exe.run(test_program, feed={"x": xv}, fetch_list=[y])
    np.testing.assert_allclose(
        got, (xv - mean.reshape(1, -1, 1, 1)) / np.sqrt(var.reshape(1, -1, 1, 1) + 1e-3), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(_param("batch_norm_0.w_1"), mean, rtol=1e-5)  # unchanged by the test program


def test_batch_norm_gets_gradients_for_scale_and_bias_only(prog):
    main, startup = prog
    x = fluid.layers.data(name="x", shape=[3, 2, 2], dtype="float32")
    loss = fluid.layers.mean(fluid.layers.batch_norm(x))
    pg = fluid.backward.append_backward(loss)
    assert [p.name for p, _ in pg] == ["batch_norm_0.w_0", "batch_norm_0.b_0"]


# ---------------------------------------------------------------- dropout


@pytest.mark.parametrize("impl", ["downgrade_in_infer", "upscale_in_train"])
def test_dropout_train_and_test(prog, impl):
    main, startup = prog
    x = fluid.layers.data(name="x", shape=[200, 50], dtype="float32", append_batch_size=False)
    x.stop_gradient = False
    y = fluid.layers.dropout(x, dropout_prob=0.3, dropout_implementation=impl)
    loss = fluid.layers.reduce_sum(y)
    fluid.backward.append_backward(loss)
    test_program = main.clone(for_test=True)
    xv = rng.rand(200, 50).astype("float32") + 1.0
    got, mask, gx = _run(main, startup, {"x": xv}, [y, y.name.replace("tmp_0", "tmp_1"), "x@GRAD"])
    keep = mask.astype(bool)
    scale = 1.0 / 0.7 if impl == "upscale_in_train" else 1.0
    assert abs(keep.mean() - 0.7) < 0.02
    np.testing.assert_allclose(got, np.where(keep, xv * scale, 0.0), rtol=1e-6)
    np.testing.assert_allclose(gx, np.where(keep, scale, 0.0), rtol=1e-6)
    (tst,) = fluid.Executor().run(test_program, feed={"x": xv}, fetch_list=[y])
    np.testing.assert_allclose(tst, xv * (0.7 if impl == "downgrade_in_infer" else 1.0), rtol=1e-6)


def test_dropout_seed_fixes_the_mask(prog):
    main, startup = prog
    x = fluid.layers.data(name="x", shape=[100], dtype="float32")
    a = fluid.layers.dropout(x, 0.5, seed=7)
    b = fluid.layers.dropout(x, 0.5, seed=7)
    xv = np.ones((4, 100), "float32")
    ga, gb = _run(main, startup, {"x": xv}, [a, b])
    np.testing.assert_array_equal(ga, gb)


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        ({"dropout_prob": 1.5}, r"dropout_prob must be in \[0, 1\], got 1.5"),
        ({"dropout_prob": 0.1, "dropout_implementation": "nope"}, "dropout_implementation must be one of"),
    ],
)
def test_dropout_bad_arguments(prog, kwargs, msg):
    x = fluid.layers.data(name="x", shape=[3], dtype="float32")
    with pytest.raises(ValueError, match=msg):
        fluid.layers.dropout(x, **kwargs)


# ---------------------------------------------------------------- activations, concat, reshape, uniform_random


@pytest.mark.parametrize(
    "name,ref",
    [
        ("relu", lambda v: np.maximum(v, 0)),
        ("tanh", np.tanh),
        ("sigmoid", lambda v: 1 / (1 + np.exp(-v))),
    ],
)
def test_activations(prog, name, ref):
    main, startup = prog
    x = fluid.layers.data(name="x", shape=[5], dtype="float32")
    y = getattr(fluid.layers, name)(x)
    xv = rng.randn(3, 5).astype("float32")
    (got,) = _run(main, startup, {"x": xv}, [y])
    np.testing.assert_allclose(got, ref(xv.astype(np.float64)), rtol=1e-5, atol=1e-7)


def test_concat(prog):
    main, startup = prog
    a = fluid.layers.data(name="a", shape=[2], dtype="float32")
    b = fluid.layers.data(name="b", shape=[3], dtype="float32")
    y = fluid.layers.concat([a, b], axis=1)
    assert list(y.shape) == [-1, 5]
    av, bv = rng.randn(4, 2).astype("float32"), rng.randn(4, 3).astype("float32")
    (got,) = _run(main, startup, {"a": av, "b": bv}, [y])
    np.testing.assert_array_equal(got, np.concatenate([av, bv], axis=1))


@pytest.mark.parametrize(
    "shape,feed_shape,want_build,want_run",
    [
        ([-1, 784], (3, 1, 28, 28), [-1, 784], (3, 784)),
        ([128, 784], (128, 1, 28, 28), [128, 784], (128, 784)),
        ([0, -1], (5, 1, 28, 28), [-1, 784], (5, 784)),
        ([-1, 28, 28], (2, 1, 28, 28), [-1, 28, 28], (2, 28, 28)),
    ],
)
def test_reshape_resolved_at_run_time(prog, shape, feed_shape, want_build, want_run):
    main, startup = prog
    img = fluid.layers.data(name="img", shape=[1, 28, 28], dtype="float32")
    y = fluid.layers.reshape(img, shape)
    assert list(y.shape) == want_build
    xv = rng.rand(*feed_shape).astype("float32")
    (got,) = _run(main, startup, {"img": xv}, [y])
    np.testing.assert_array_equal(got, xv.reshape(want_run))


def test_reshape_size_mismatch_fails_at_run_time_with_the_op(prog):
    main, startup = prog
    img = fluid.layers.data(name="img", shape=[1, 28, 28], dtype="float32")
    y = fluid.layers.reshape(img, [128, 784])
    with pytest.raises(OpRunError, match="op reshape2 .* failed on inputs"):
        _run(main, startup, {"img": np.zeros((3, 1, 28, 28), "float32")}, [y])


def test_reshape_impossible_known_size_fails_at_build_time(prog):
    x = fluid.layers.data(name="x", shape=[6], dtype="float32", append_batch_size=False)
    with pytest.raises(OpBuildError, match="reshape2"):
        fluid.layers.reshape(x, [4, -1])


def test_uniform_random(prog):
    main, startup = prog
    u = fluid.layers.uniform_random([1000, 20], min=-2.0, max=3.0)
    v = fluid.layers.uniform_random([4], seed=11)
    w = fluid.layers.uniform_random([4], seed=11)
    exe = fluid.Executor()
    a, va, wa = exe.run(main, fetch_list=[u, v, w])
    (b,) = exe.run(main, fetch_list=[u])
    assert a.shape == (1000, 20) and a.dtype == np.float32
    assert a.min() >= -2.0 and a.max() < 3.0 and abs(a.mean() - 0.5) < 0.05
    assert not np.array_equal(a, b)  # a fresh draw each run
    np.testing.assert_array_equal(va, wa)
    with pytest.raises(ValueError, match="min must be < max"):
        fluid.layers.uniform_random([2], min=1.0, max=1.0)
    with fluid.dygraph.guard():
        t = fluid.layers.uniform_random([3, 2])
        assert tuple(t.shape) == (3, 2)


def test_create_parameter_again_replaces_the_record():
    block = fluid.Program().global_block()
    p = block.create_parameter(name="x", shape=[2, 3], dtype="float32")
    q = block.create_parameter(name="x", shape=[2, 3], dtype="float32", need_clip=False)
    assert q is not p and block.var("x") is q and not q.need_clip and block.all_parameters() == [q]
    with pytest.raises(ValueError, match=r"already exists in block 0 .* shape \[3, 3\]"):
        block.create_parameter(name="x", shape=[3, 3], dtype="float32")
    block.create_var("v", [1], "float32")
    with pytest.raises(ValueError, match="'v' already exists"):
        block.create_parameter(name="v", shape=[1], dtype="float32")
