"""fluid.layers.slice / split / transpose: Paddle's semantics against numpy, eagerly and in a
program, their gradients through a program against dygraph autograd, and the refused inputs;
``VarBase.value().get_tensor()`` and ``fluid.core.VarBase``."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import layers as L

X = np.arange(2 * 5 * 4, dtype="float32").reshape(2, 5, 4) / 7.0

# (label, layer call on x, numpy reference on the same array: one array or a list of arrays)
CASES = [
    ("slice-mid", lambda x: L.slice(x, axes=[1], starts=[1], ends=[3]), lambda a: a[:, 1:3]),
    ("slice-negative", lambda x: L.slice(x, axes=[1, 2], starts=[-3, 0], ends=[-1, -2]), lambda a: a[:, 2:4, 0:2]),
    ("slice-clamped", lambda x: L.slice(x, axes=[2], starts=[-100], ends=[1000]), lambda a: a),
    ("slice-one-step", lambda x: L.slice(x, axes=[1], starts=[4], ends=[5]), lambda a: a[:, 4:5]),
    ("slice-last-axis", lambda x: L.slice(x, axes=[-1], starts=[1], ends=[2]), lambda a: a[:, :, 1:2]),
    ("split-equal", lambda x: L.split(x, 2, dim=-1), lambda a: [a[..., :2], a[..., 2:]]),
    ("split-sections", lambda x: L.split(x, [1, 3, 1], dim=1), lambda a: [a[:, :1], a[:, 1:4], a[:, 4:]]),
    ("split-inferred", lambda x: L.split(x, [-1, 3], dim=2), lambda a: [a[..., :1], a[..., 1:]]),
    ("split-one", lambda x: L.split(x, 1, dim=0), lambda a: [a]),
    ("transpose", lambda x: L.transpose(x, perm=[1, 0, 2]), lambda a: a.transpose(1, 0, 2)),
    ("transpose-rotate", lambda x: L.transpose(x, perm=[2, 0, 1]), lambda a: a.transpose(2, 0, 1)),
]


def _as_list(v):
    return list(v) if isinstance(v, (list, tuple)) else [v]


@pytest.mark.parametrize("label,call,ref", CASES, ids=[c[0] for c in CASES])
def test_layer_matches_numpy_in_both_modes(label, call, ref):
    want = _as_list(ref(X))
    with fluid.dygraph.guard():
        eager = _as_list(call(fluid.dygraph.to_variable(X)))
    assert len(eager) == len(want)
    for e, w in zip(eager, want, strict=True):
        assert isinstance(e, fluid.dygraph.VarBase)
        np.testing.assert_array_equal(e.numpy(), w)
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        x = fluid.data("x", [2, 5, 4], "float32")
        outs = _as_list(call(x))
    got = fluid.Executor().run(main, feed={"x": X}, fetch_list=outs, scope=fluid.Scope())
    for o, g, w in zip(outs, got, want, strict=True):
        assert tuple(o.shape) == w.shape  # build-time shape
        np.testing.assert_array_equal(g, w)


def _net(x, w):
    """A little LSTM-like step that uses the three layers (the output of split's last part unused)."""
    h = L.matmul(L.reshape(L.slice(x, axes=[1], starts=[1], ends=[4]), [2, 12]), w)  # [2, 8]
    i, j, _ = L.split(h, [3, 3, -1], dim=1)
    y = L.transpose(L.reshape(L.sigmoid(i) * L.tanh(j), [2, 3, 1]), perm=[2, 1, 0])
    return L.reduce_sum(L.square(y))


def test_static_gradients_equal_dygraph_autograd():
    W = np.linspace(-1, 1, 12 * 8, dtype="float32").reshape(12, 8)
    with fluid.dygraph.guard():
        w = fluid.dygraph.to_variable(W)
        w.stop_gradient = False
        x = fluid.dygraph.to_variable(X)
        x.stop_gradient = False
        loss = _net(x, w)
        loss.backward()
        eager = [loss.numpy(), w.gradient(), x.gradient()]
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        xs = fluid.data("x", [2, 5, 4], "float32")
        xs.stop_gradient = False
        ws = fluid.data("w", [12, 8], "float32")
        ws.stop_gradient = False
        loss_s = _net(xs, ws)
        fluid.backward.append_backward(loss_s)
    got = fluid.Executor().run(
        main, feed={"x": X, "w": W}, fetch_list=[loss_s, "w@GRAD", "x@GRAD"], scope=fluid.Scope()
    )
    assert np.abs(eager[2][:, 0]).sum() == 0 and np.abs(eager[2][:, 1:4]).sum() > 0  # only the slice gets one
    for g, e in zip(got, eager, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)


# (label, call on a [2, 5, 4] tensor or Variable, error type, message pattern)
BAD = [
    (
        "slice-empty",
        lambda x: L.slice(x, [1], [3], [3]),
        ValueError,
        r"slice of axis 1 \(dim 5\) from start 3 to end 3",
    ),
    ("slice-reversed", lambda x: L.slice(x, [1], [-1], [1]), ValueError, "end must be greater than start"),
    ("slice-start-past-end", lambda x: L.slice(x, [1], [7], [9]), ValueError, "is empty"),
    ("slice-lengths", lambda x: L.slice(x, [1, 2], [0], [1]), ValueError, "same length, got 2, 1 and 1"),
    ("slice-axis", lambda x: L.slice(x, [3], [0], [1]), ValueError, "axis 3 is out of range for a tensor of rank 3"),
    ("slice-twice", lambda x: L.slice(x, [1, -2], [0, 0], [1, 1]), ValueError, "appears twice"),
    ("slice-float", lambda x: L.slice(x, [1], [0.5], [2]), TypeError, r"starts must hold ints only, got \[0.5\]"),
    ("slice-scalar", lambda x: L.slice(x, 1, [0], [2]), TypeError, "axes must be a list or tuple of ints, got int"),
    ("split-indivisible", lambda x: L.split(x, 3, dim=1), ValueError, "size 5 cannot be split into 3 equal parts"),
    ("split-sum", lambda x: L.split(x, [2, 2], dim=1), ValueError, r"sections \[2, 2\] sum to 4, but .* size 5"),
    ("split-two-inferred", lambda x: L.split(x, [-1, -1], dim=1), ValueError, "at most one section may be -1"),
    ("split-nothing-left", lambda x: L.split(x, [5, -1], dim=1), ValueError, "leave nothing for the -1 section"),
    ("split-zero-section", lambda x: L.split(x, [0, 5], dim=1), ValueError, "positive ints or one -1"),
    ("split-zero", lambda x: L.split(x, 0), ValueError, "num_or_sections must be >= 1"),
    ("split-empty", lambda x: L.split(x, []), ValueError, "must not be an empty list"),
    ("split-dim", lambda x: L.split(x, 2, dim=3), ValueError, "axis 3 is out of range"),
    ("split-dim-type", lambda x: L.split(x, 2, dim=1.0), TypeError, "dim must be an int, got float"),
    ("transpose-length", lambda x: L.transpose(x, [1, 0]), ValueError, r"perm \[1, 0\] has 2 entries, but x has 3"),
    ("transpose-repeat", lambda x: L.transpose(x, [0, 0, 1]), ValueError, "is not a permutation of the 3 dims"),
    ("transpose-range", lambda x: L.transpose(x, [0, 1, 3]), ValueError, "is not a permutation"),
]


@pytest.mark.parametrize("label,call,error,match", BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("mode", ["dygraph", "static"])
def test_bad_input_is_refused_in_both_modes(label, call, error, match, mode):
    if mode == "dygraph":
        with fluid.dygraph.guard(), pytest.raises(error, match=match):
            call(fluid.dygraph.to_variable(X))
        return
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        x = fluid.data("x", [2, 5, 4], "float32")
        with pytest.raises(error, match=match):
            call(x)
    assert main.global_block().ops == []  # nothing appended


def test_varbase_value_get_tensor_set_writes_in_place():
    with fluid.dygraph.guard():
        lin = fluid.dygraph.Linear(3, 2)
        w = lin.weight
        assert isinstance(w, fluid.core.VarBase)
        t = w.value().get_tensor()
        assert t.shape() == [3, 2]
        new = np.arange(6, dtype="float32").reshape(3, 2)
        t.set(new, fluid.CPUPlace())
        np.testing.assert_array_equal(w.numpy(), new)  # the layer's own parameter changed
        np.testing.assert_array_equal(np.array(t), new)
        out = lin(fluid.dygraph.to_variable(np.ones((1, 3), "float32")))
        np.testing.assert_allclose(out.numpy(), new.sum(0, keepdims=True) + lin.bias.numpy())
        with pytest.raises(ValueError, match=r"shape \[2, 3\] does not match \[3, 2\]"):
            t.set(np.zeros((2, 3), "float32"))
        with pytest.raises(ValueError, match="dtype float64 does not match float32"):
            t.set(np.zeros((3, 2)))
        np.testing.assert_array_equal(w.numpy(), new)  # refused writes changed nothing
    assert not isinstance(torch.zeros(1), fluid.core.VarBase)


# (label, data shape, layer call, the build-time shape(s) of the result (-1 = unknown until fed), fed batch)
BUILD_SHAPES = [
    ("reshape-unknown-stays-unknown", [-1, 1], lambda x: L.reshape(x, [1, -1, 10]), [[1, -1, 10]], 20),
    ("reshape-copied-batch", [-1, 6], lambda x: L.reshape(x, [0, -1]), [[-1, 6]], 4),
    ("reshape-divides", [-1, 10], lambda x: L.reshape(x, [-1, 5, 2]), [[-1, 5, 2]], 4),
    ("reshape-known", [-1, 6], lambda x: L.reshape(x, [3, 2]), [[3, 2]], 1),
    ("slice-unknown-axis", [-1, 5], lambda x: L.slice(x, axes=[0], starts=[0], ends=[2]), [[-1, 5]], 4),
    ("slice-known-axis", [-1, 5], lambda x: L.slice(x, axes=[1], starts=[1], ends=[-1]), [[-1, 3]], 4),
    ("split-unknown-axis", [-1, 4], lambda x: L.split(x, 2, dim=0), [[-1, 4], [-1, 4]], 4),
    ("split-unknown-sections", [-1, 4], lambda x: L.split(x, [2, -1], dim=0), [[2, 4], [-1, 4]], 4),
    ("split-known-axis", [-1, 4], lambda x: L.split(x, [1, 3], dim=1), [[-1, 1], [-1, 3]], 4),
    ("transpose-unknown", [-1, 4, 3], lambda x: L.transpose(x, [2, 0, 1]), [[3, -1, 4]], 4),
]


@pytest.mark.parametrize("label,shape,call,want,batch", BUILD_SHAPES, ids=[b[0] for b in BUILD_SHAPES])
def test_build_time_shapes_keep_unknown_dims_unknown(label, shape, call, want, batch):
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        x = fluid.data("x", shape, "float32")
        outs = _as_list(call(x))
    assert [list(o.shape) for o in outs] == want
    fed = np.arange(batch * int(np.prod([d for d in shape if d > 0])), dtype="float32")
    fed = fed.reshape([batch if d < 0 else d for d in shape])
    got = fluid.Executor().run(main, feed={"x": fed}, fetch_list=outs, scope=fluid.Scope())
    for g, w in zip(got, want, strict=True):  # the run fills in the unknown dims
        assert len(g.shape) == len(w) and all(d == k for d, k in zip(g.shape, w, strict=True) if k >= 0)
