"""fluid.layers.mul (Paddle's flatten-then-matmul) against numpy in both modes, its gradients in a
program against torch autograd, its refused arguments; a dygraph layer's parameter used directly by
fluid.layers in static mode once the layer has been called on static Variables (the program's
Parameter of that name, as Paddle's static-mode layers have); fluid.backward._append_grad_suffix_."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import layers as L

RNG = np.random.default_rng(7)

# (label, x shape, y shape, x_num_col_dims, y_num_col_dims)
MUL_CASES = [
    ("2d", (3, 4), (4, 5), 1, 1),
    ("x3d-rows1", (2, 3, 4), (12, 5), 1, 1),
    ("x3d-rows2", (2, 3, 4), (4, 5), 2, 1),
    ("y3d", (3, 6), (2, 3, 5), 1, 2),
    ("both4d", (2, 2, 3, 2), (6, 2, 2), 2, 1),
]


def _mul_ref(x, y, xc, yc):
    x2 = x.reshape(int(np.prod(x.shape[:xc])), -1)
    y2 = y.reshape(int(np.prod(y.shape[:yc])), -1)
    return (x2 @ y2).reshape(x.shape[:xc] + y.shape[yc:])


@pytest.mark.parametrize("label,xs,ys,xc,yc", MUL_CASES, ids=[c[0] for c in MUL_CASES])
def test_mul_matches_numpy_in_both_modes(label, xs, ys, xc, yc):
    x = RNG.standard_normal(xs).astype("float32")
    y = RNG.standard_normal(ys).astype("float32")
    want = _mul_ref(x.astype("float64"), y.astype("float64"), xc, yc)
    with fluid.dygraph.guard():
        eager = L.mul(fluid.dygraph.to_variable(x), fluid.dygraph.to_variable(y), xc, yc).numpy()
    np.testing.assert_allclose(eager, want, rtol=1e-5, atol=1e-5)
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup):
        xv = fluid.data("x", list(xs), "float32")
        xv.stop_gradient = False
        yv = fluid.data("y", list(ys), "float32")
        yv.stop_gradient = False
        out = L.mul(xv, yv, x_num_col_dims=xc, y_num_col_dims=yc)
        loss = L.reduce_sum(L.square(out))
        fluid.backward.append_backward(loss)
    assert out.shape == tuple(want.shape) or list(out.shape) == list(want.shape)
    exe = fluid.Executor(fluid.CPUPlace())
    got, gx, gy = exe.run(main, feed={"x": x, "y": y}, fetch_list=[out, "x@GRAD", "y@GRAD"])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    tx, ty = (
        torch.tensor(x, dtype=torch.float64, requires_grad=True),
        torch.tensor(y, dtype=torch.float64, requires_grad=True),
    )
    tout = (tx.reshape(int(np.prod(xs[:xc])), -1) @ ty.reshape(int(np.prod(ys[:yc])), -1)).square().sum()
    rx, ry = torch.autograd.grad(tout, [tx, ty])
    np.testing.assert_allclose(gx, rx.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gy, ry.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs,exc,msg",
    [
        ({"x_num_col_dims": 0}, ValueError, r"x_num_col_dims must be in \[1, 2\) for a 2-D input, got 0"),
        ({"y_num_col_dims": 2}, ValueError, r"y_num_col_dims must be in \[1, 2\) for a 2-D input, got 2"),
        ({"x_num_col_dims": 1.0}, TypeError, "x_num_col_dims must be an int, got float"),
        ({"y_num_col_dims": True}, TypeError, "y_num_col_dims must be an int, got bool"),
    ],
)
def test_mul_refuses_bad_num_col_dims(kwargs, exc, msg):
    with fluid.dygraph.guard():
        x = fluid.dygraph.to_variable(np.ones((2, 3), "float32"))
        y = fluid.dygraph.to_variable(np.ones((3, 4), "float32"))
        with pytest.raises(exc, match=msg):
            L.mul(x, y, **kwargs)


def test_mul_inner_sizes_must_agree():
    with fluid.dygraph.guard():
        x = fluid.dygraph.to_variable(np.ones((2, 3), "float32"))
        y = fluid.dygraph.to_variable(np.ones((4, 4), "float32"))
        with pytest.raises(RuntimeError):
            L.mul(x, y)


class _TiedNet(fluid.dygraph.Layer):
    """Embedding rows scored against the whole table (``x_emb @ emb.weight^T``): the table is used by
    the layer call and directly by fluid.layers."""

    def __init__(self):
        super().__init__()
        self.emb = fluid.dygraph.Embedding([7, 3], param_attr=fluid.ParamAttr(name="tied_w"))

    def forward(self, ids):
        x = self.emb(ids)
        return L.reduce_sum(L.square(L.matmul(x, L.transpose(self.emb.weight, perm=[1, 0]))))


def test_layer_parameter_used_directly_in_static_mode_is_the_program_parameter():
    ids = np.array([[1], [5], [1]], dtype="int64")
    net = _TiedNet()
    w0 = net.emb.weight.detach().clone()
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup):
        iv = fluid.layers.data("ids", [1], dtype="int64")
        loss = net(iv)
        fluid.optimizer.SGD(0.1).minimize(loss)
    assert [op.type for op in main.global_block().ops][:4] == ["lookup_table", "transpose2", "matmul", "square"]
    transpose = main.global_block().ops[1]
    assert transpose.input("X") == ["tied_w"] and isinstance(
        main.global_block().var("tied_w"), fluid.framework.Parameter
    )
    exe = fluid.Executor(fluid.CPUPlace())
    scope = fluid.Scope()
    with fluid.scope_guard(scope):
        exe.run(startup)
        got_loss, got_w = exe.run(main, feed={"ids": ids}, fetch_list=[loss, "tied_w"])
    w = w0.clone().requires_grad_()
    x = w[torch.as_tensor(ids[:, 0])]
    ref = (x @ w.t()).square().sum()
    (g,) = torch.autograd.grad(ref, [w])
    np.testing.assert_allclose(got_loss.reshape(()), ref.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(got_w, (w0 - 0.1 * g).numpy(), rtol=1e-5, atol=1e-6)


def test_layer_parameter_the_program_does_not_hold_stays_eager_in_static_mode():
    lin = fluid.dygraph.Linear(2, 3)
    with fluid.program_guard(fluid.Program(), fluid.Program()):
        t = L.transpose(lin.weight, perm=[1, 0])
    assert isinstance(t, torch.Tensor)
    np.testing.assert_array_equal(t.detach().numpy(), lin.weight.detach().numpy().T)


@pytest.mark.parametrize("name,want", [("param_x", "param_x@GRAD"), ("fc_0.w_0", "fc_0.w_0@GRAD")])
def test_append_grad_suffix(name, want):
    assert fluid.backward._append_grad_suffix_(name) == want


@pytest.mark.parametrize("bad", ["", None, 3])
def test_append_grad_suffix_refuses_non_names(bad):
    with pytest.raises(TypeError, match="name must be a non-empty str"):
        fluid.backward._append_grad_suffix_(bad)
