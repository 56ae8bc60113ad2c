"""Hostile and careless inputs against LoD sequences, ParallelDo/CompiledProgram, increment and
the build-time slot checks, each checked against an independent reference (numpy loops, or
the same program without the feature)."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import layers as L
from torchfluid.ops import get_op

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
