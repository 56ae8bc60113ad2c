"""append_regularization_ops in a program: Paddle's op sequence (L2: scale + sum; L1: sign +
scale + sum), results bit-identical to the regularizer applied eagerly."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import initializer as I
from torchfluid import regularizer as R
from torchfluid.backward import append_backward


class HalfL2(R.L2Decay):
    """A user regularizer: not one of Paddle's two, so it runs as one regularization op."""

    def term(self, param):
        return param * (self.coeff / 2)


def _param_values(dtype):
    rng = np.random.default_rng(3)
    p = rng.standard_normal((5, 10)).astype(dtype)
    p[0, :3] = [0.0, -0.0, 1e-30]  # zeros of both signs, a tiny value
    return p


def _regularized_grad(dtype, own_reg, global_reg, apply):
    """Build mean(x * p), its backward, optionally regularization; return (op types added, grad)."""
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup):
        x = fluid.data(name="x", shape=[5, 10], dtype=dtype)
        p = fluid.layers.create_parameter(
            [5, 10],
            dtype,
            attr=fluid.ParamAttr(name="p", regularizer=own_reg),
            default_initializer=I.NumpyArrayInitializer(_param_values(dtype)),
        )
        loss = fluid.layers.mean(fluid.layers.elementwise_mul(x, p))
        params_grads = append_backward(loss)
        before = len(main.global_block().ops)
        if apply:
            params_grads = fluid.optimizer.SGD(learning_rate=0.1).append_regularization_ops(params_grads, global_reg)
        added = [op.type for op in main.global_block().ops[before:]]
    ((param, grad),) = params_grads
    assert param.name == "p"
    exe = fluid.Executor(fluid.CPUPlace())
    scope = fluid.Scope()
    feed = {"x": np.random.default_rng(4).standard_normal((5, 10)).astype(dtype)}
    with fluid.scope_guard(scope):
        exe.run(startup)
        (g,) = exe.run(main, feed=feed, fetch_list=[grad])
    return added, g


# (own regularizer, optimizer regularization, expected ops, regularizer that applies)
CASES = [
    ("L2 global", None, R.L2Decay(0.5), ["scale", "sum"], R.L2Decay(0.5)),
    ("L1 global", None, R.L1Decay(0.25), ["sign", "scale", "sum"], R.L1Decay(0.25)),
    ("own L1 wins", R.L1Decay(0.1), R.L2Decay(0.5), ["sign", "scale", "sum"], R.L1Decay(0.1)),
    ("own L2, no global", R.L2Decay(3e-4), None, ["scale", "sum"], R.L2Decay(3e-4)),
    ("user regularizer", HalfL2(0.3), None, ["regularization"], HalfL2(0.3)),
    ("none", None, None, [], None),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("label,own,glob,ops,applied", CASES, ids=[c[0] for c in CASES])
def test_regularization_ops_and_bits(label, own, glob, ops, applied, dtype):
    added, g = _regularized_grad(dtype, own, glob, apply=True)
    assert added == ops
    _, g0 = _regularized_grad(dtype, own, glob, apply=False)
    p = torch.from_numpy(_param_values(dtype))
    expected = g0 if applied is None else applied(p, torch.from_numpy(g0)).numpy()
    # bit for bit, including the sign of zeros
    assert g.dtype == expected.dtype
    np.testing.assert_array_equal(
        g.view(np.uint64 if dtype == "float64" else np.uint32),
        expected.view(np.uint64 if dtype == "float64" else np.uint32),
    )
    if applied is not None:  # the regularization changed something: the test can fail
        assert not np.array_equal(g, g0)


def test_sign_op_matches_numpy():
    x = np.array([-2.0, -0.0, 0.0, 3.5, -1e-38], np.float32)
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup):
        v = fluid.data(name="v", shape=[5], dtype="float32")
        out = main.global_block().create_var("v_sign", [5], "float32")
        main.global_block().append_op("sign", {"X": [v]}, {"Out": [out]})
    (got,) = fluid.Executor(fluid.CPUPlace()).run(main, feed={"v": x}, fetch_list=[out])
    np.testing.assert_array_equal(got, np.sign(x))
