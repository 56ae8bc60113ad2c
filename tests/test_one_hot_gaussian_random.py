"""fluid.layers.one_hot against numpy (eager and in a program, out-of-range ids, no gradient to
the ids) and fluid.layers.gaussian_random (moments against N(mean, std^2), seeds, a new draw per
run, no gradient), with the refused arguments."""

import numpy as np
import pytest

import torchfluid as fluid
from torchfluid import layers as L


def _one_hot_ref(ids, depth):
    ids = np.asarray(ids).reshape(np.asarray(ids).shape[:-1])
    out = np.zeros((*ids.shape, depth), "float32")
    ok = (ids >= 0) & (ids < depth)
    idx = np.nonzero(ok)
    out[(*idx, ids[ok])] = 1.0
    return out


ONE_HOT_CASES = [
    ("column", np.array([[0], [3], [2], [3]]), 4, False),
    ("batch-of-sequences", np.array([[[1], [0]], [[4], [2]]]), 5, False),
    ("int32", np.array([[2], [0]], dtype="int32"), 3, False),
    ("out-of-range-allowed", np.array([[5], [-1], [1]]), 4, True),
]


@pytest.mark.parametrize("label,ids,depth,allow", ONE_HOT_CASES, ids=[c[0] for c in ONE_HOT_CASES])
def test_one_hot_matches_numpy_in_both_modes(label, ids, depth, allow):
    want = _one_hot_ref(ids, depth)
    with fluid.dygraph.guard():
        got = L.one_hot(fluid.dygraph.to_variable(ids), depth, allow_out_of_range=allow)
        assert got.stop_gradient and got.numpy().dtype == np.float32
        np.testing.assert_array_equal(got.numpy(), want)
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup):
        x = fluid.layers.data("ids", list(ids.shape[1:]), dtype=str(ids.dtype))
        out = L.one_hot(x, depth, allow_out_of_range=allow)
    assert list(out.shape) == [-1, *want.shape[1:]] and out.dtype == "float32" and out.stop_gradient
    (static,) = fluid.Executor().run(main, feed={"ids": ids}, fetch_list=[out])
    np.testing.assert_array_equal(static, want)


def test_one_hot_cuts_the_gradient_like_paddle():
    """Paddle's auto-prune case: linear -> cast to int64 -> one_hot -> mean; backward reaches no parameter."""
    with fluid.dygraph.guard():
        lin = fluid.dygraph.Linear(1, 1)
        label = fluid.layers.cast(lin(fluid.dygraph.to_variable(np.zeros((1, 1), "float32"))), "int64")
        loss = L.mean(L.one_hot(label, depth=10, allow_out_of_range=True))
        loss.backward()
        assert lin.weight._grad_ivar() is None


@pytest.mark.parametrize(
    "ids,kwargs,exc,msg",
    [
        (np.array([[4]]), {"depth": 4}, ValueError, r"ids must be in \[0, 4\), got 4"),
        (np.array([[-2]]), {"depth": 4}, ValueError, r"ids must be in \[0, 4\), got -2"),
        (np.array([1, 2]), {"depth": 4}, ValueError, r"last dim must be 1, got shape \[2\]"),
        (np.array([[1.0]], "float32"), {"depth": 4}, TypeError, "must be int32 or int64 ids, got float32"),
        (np.array([[1]]), {"depth": 0}, ValueError, "depth must be an int >= 1, got 0"),
        (np.array([[1]]), {"depth": 2.0}, ValueError, "depth must be an int >= 1, got 2.0"),
        (np.array([[1]]), {"depth": 3, "allow_out_of_range": 1}, TypeError, "allow_out_of_range must be a bool"),
    ],
)
def test_one_hot_refuses(ids, kwargs, exc, msg):
    with fluid.dygraph.guard():
        with pytest.raises(exc, match=msg):
            L.one_hot(fluid.dygraph.to_variable(ids), **kwargs)


@pytest.mark.parametrize("mean,std,dtype", [(0.0, 1.0, "float32"), (2.5, 0.5, "float64"), (-1.0, 3.0, "float32")])
def test_gaussian_random_moments_and_dtype(mean, std, dtype):
    with fluid.dygraph.guard():
        t = L.gaussian_random([400, 50], mean=mean, std=std, dtype=dtype)
        v = t.numpy()
    assert v.dtype == np.dtype(dtype) and v.shape == (400, 50) and t.stop_gradient
    # 20000 draws: the sample mean is within 5 standard errors, the sample std within 3%
    assert abs(v.mean() - mean) < 5 * std / np.sqrt(v.size)
    assert abs(v.std() - std) < 0.03 * std


def test_gaussian_random_seed_and_fresh_draws_per_run():
    with fluid.dygraph.guard():
        a = L.gaussian_random([5], seed=7).numpy()
        b = L.gaussian_random([5], seed=7).numpy()
        c = L.gaussian_random([5]).numpy()
        d = L.gaussian_random([5]).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(c, d)
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup):
        g = L.gaussian_random([3, 4], mean=1.0, std=2.0)
        loss = L.mean(g)
    assert list(g.shape) == [3, 4] and g.stop_gradient
    exe = fluid.Executor()
    first, second = (exe.run(main, fetch_list=[g])[0] for _ in range(2))
    assert first.shape == (3, 4) and not np.array_equal(first, second)
    assert loss.shape is not None


def test_gaussian_random_no_gradient_in_dygraph():
    with fluid.dygraph.guard():
        out = L.gaussian_random(shape=[20, 30])
        loss = L.mean(out)
        loss.backward()
        assert out._grad_ivar() is None


@pytest.mark.parametrize(
    "kwargs,exc,msg",
    [
        ({"shape": [2, -1]}, ValueError, r"shape must be all >= 0 at run time, got \[2, -1\]"),
        ({"shape": "3"}, TypeError, "shape must be a list of ints"),
        ({"shape": [2], "std": -1.0}, ValueError, "std must be >= 0, got -1.0"),
        ({"shape": [2], "mean": "0"}, TypeError, "mean must be a number, got str"),
    ],
)
def test_gaussian_random_refuses(kwargs, exc, msg):
    with fluid.dygraph.guard():
        with pytest.raises(exc, match=msg):
            L.gaussian_random(**kwargs)
