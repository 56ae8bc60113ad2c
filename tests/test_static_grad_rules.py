"""Every grad rule of the op registry against torch.autograd of the op's forward."""

import pytest
import torch

import torchfluid.layers.control_flow  # noqa: F401  (registers ParallelDo's ops)
from torchfluid.ops import get_op, registered_types

g = torch.Generator().manual_seed(0)


def r(*shape, pos=False):
    t = torch.randn(*shape, generator=g, dtype=torch.float64)
    return t.abs() + 0.5 if pos else t


def ids(*shape, hi):
    return torch.randint(0, hi, shape, generator=g)


def probs(n, c):
    return torch.softmax(r(n, c), -1)


# (op type, inputs in slot order, attrs, which inputs are differentiable)
CASES = [
    ("elementwise_add", [r(4, 3), r(3)], {}, (1, 1)),
    ("elementwise_add", [r(4, 3), r(4)], {"axis": 0}, (1, 1)),
    ("elementwise_sub", [r(2, 4, 3), r(4, 3)], {}, (1, 1)),
    ("elementwise_mul", [r(4, 3), r(4, 3)], {}, (1, 1)),
    ("elementwise_mul", [r(2, 4, 3), r(4)], {"axis": 1}, (1, 1)),
    ("elementwise_div", [r(4, 3), r(3, pos=True)], {}, (1, 1)),
    ("elementwise_max", [r(4, 3), r(4, 3)], {}, (1, 1)),
    ("elementwise_min", [r(4, 3), r(3)], {}, (1, 1)),
    ("elementwise_pow", [r(4, 3, pos=True), r(4, 3)], {}, (1, 1)),
    ("mul", [r(4, 13), r(13, 2)], {}, (1, 1)),
    ("mul", [r(2, 3, 4, 5), r(20, 6)], {"x_num_col_dims": 2}, (1, 1)),
    ("mul", [r(3, 6), r(2, 3, 5)], {"y_num_col_dims": 2}, (1, 1)),
    ("matmul", [r(4, 3), r(3, 5)], {}, (1, 1)),
    ("matmul", [r(2, 3, 4), r(5, 4)], {"transpose_Y": True, "alpha": 0.5}, (1, 1)),
    ("matmul", [r(4, 3), r(2, 4, 5)], {"transpose_X": True}, (1, 1)),
    ("matmul", [r(3), r(3, 5)], {}, (1, 1)),
    ("relu", [r(4, 5)], {}, (1,)),
    ("sigmoid", [r(4, 5)], {}, (1,)),
    ("tanh", [r(4, 5)], {}, (1,)),
    ("sin", [r(4, 5)], {}, (1,)),
    ("cos", [r(4, 5)], {}, (1,)),
    ("increment", [r(1)], {"step": 2.5}, (1,)),
    ("square", [r(4, 5)], {}, (1,)),
    ("sqrt", [r(4, 5, pos=True)], {}, (1,)),
    ("exp", [r(4, 5)], {}, (1,)),
    ("log", [r(4, 5, pos=True)], {}, (1,)),
    ("abs", [r(4, 5)], {}, (1,)),
    ("sign", [r(4, 5)], {}, (1,)),
    ("softmax", [r(4, 5)], {}, (1,)),
    ("relu6", [r(4, 5) * 4], {}, (1,)),
    ("relu6", [r(4, 5)], {"threshold": 0.5}, (1,)),
    ("relu6", [torch.tensor([-1.0, 0.0, 0.3, 0.5, 0.9], dtype=torch.float64)], {"threshold": 0.5}, (1,)),
    ("leaky_relu", [r(4, 5)], {}, (1,)),
    ("leaky_relu", [torch.tensor([-2.0, 0.0, 3.0], dtype=torch.float64)], {"alpha": 0.3}, (1,)),
    ("leaky_relu", [r(4, 5)], {"alpha": 1.5}, (1,)),
    ("elu", [r(4, 5)], {}, (1,)),
    ("elu", [torch.tensor([-2.0, 0.0, 3.0], dtype=torch.float64)], {"alpha": 0.5}, (1,)),
    ("gelu", [r(4, 5) * 3], {}, (1,)),
    ("gelu", [r(4, 5) * 3], {"approximate": True}, (1,)),
    ("softplus", [r(4, 5) * 10], {}, (1,)),
    ("softsign", [r(4, 5)], {}, (1,)),
    ("softsign", [torch.tensor([-2.0, 0.0, 3.0], dtype=torch.float64)], {}, (1,)),
    ("softmax", [r(4, 5, 3)], {"axis": 1}, (1,)),
    ("scale", [r(4, 5)], {"scale": 2.5, "bias": 1.0}, (1,)),
    ("scale", [r(4, 5)], {"scale": -3.0, "bias": 1.0, "bias_after_scale": False}, (1,)),
    ("mean", [r(4, 5)], {}, (1,)),
    ("reduce_sum", [r(4, 5, 2)], {"dim": [1], "keep_dim": False, "reduce_all": False}, (1,)),
    ("reduce_sum", [r(4, 5, 2)], {"dim": [0, 2], "keep_dim": True, "reduce_all": False}, (1,)),
    ("reduce_mean", [r(4, 5, 2)], {"dim": [-1], "keep_dim": False, "reduce_all": False}, (1,)),
    ("reduce_mean", [r(4, 5)], {"dim": [0], "keep_dim": False, "reduce_all": True}, (1,)),
    ("sum", [[r(3, 2), r(3, 2), r(3, 2)]], {}, (1,)),
    ("squared_l2_norm", [r(4, 5)], {}, (1,)),
    ("clip", [r(4, 5)], {"min": -0.5, "max": 0.7}, (1,)),
    ("reshape2", [r(4, 6)], {"shape": [0, 2, -1]}, (1,)),
    ("concat", [[r(2, 3), r(4, 3)]], {"axis": 0}, (1,)),
    ("concat", [[r(2, 3), r(2, 1)]], {"axis": 1}, (1,)),
    ("slice", [r(4, 5, 6)], {"axes": [0, 2], "starts": [1, -4], "ends": [3, 100]}, (1,)),
    ("slice", [r(4, 5)], {"axes": [1], "starts": [2], "ends": [3], "decrease_axis": [1]}, (1,)),
    ("slice", [r(3, 1)], {"axes": [0], "starts": [-1], "ends": [3], "decrease_axis": [0, 1]}, (1,)),
    ("split", [r(4, 6)], {"axis": 1, "num": 3}, (1,)),
    ("split", [r(5, 2, 3)], {"axis": 0, "sections": [2, -1, 1]}, (1,)),
    ("split", [r(4, 8)], {"axis": -1, "num": 4}, (1,)),
    ("transpose2", [r(2, 3, 4)], {"axis": [1, 0, 2]}, (1,)),
    ("transpose2", [r(2, 3, 4, 5)], {"axis": [3, 0, -2, 1]}, (1,)),
    ("cast", [r(4, 3)], {"in_dtype": "float64", "out_dtype": "float32"}, (1,)),
    ("assign", [r(4, 3)], {}, (1,)),
    ("cross_entropy", [probs(5, 4), ids(5, 1, hi=4)], {}, (1, 0)),
    ("cross_entropy", [probs(5, 4), torch.tensor([[1], [-100], [3], [0], [2]])], {}, (1, 0)),
    ("cross_entropy", [probs(5, 4), probs(5, 4)], {"soft_label": True}, (1, 0)),
    ("softmax_with_cross_entropy", [r(5, 4), ids(5, 1, hi=4)], {}, (1, 0)),
    ("softmax_with_cross_entropy", [r(5, 4), torch.tensor([[1], [2], [-1], [0], [3]])], {"ignore_index": -1}, (1, 0)),
    ("softmax_with_cross_entropy", [r(5, 4), probs(5, 4)], {"soft_label": True}, (1, 0)),
    ("softmax_with_cross_entropy", [r(3, 4, 2), ids(3, 1, 2, hi=4)], {"axis": 1}, (1, 0)),
    ("lookup_table", [r(7, 3), ids(6, 1, hi=7)], {}, (1, 0)),
    ("lookup_table", [r(7, 3), torch.tensor([[0], [2], [2], [5], [6]])], {"padding_idx": 2}, (1, 0)),
    ("conv2d", [r(2, 3, 6, 6), r(4, 3, 3, 3)], {"paddings": [1, 1], "strides": [2, 2]}, (1, 1)),
    ("conv2d", [r(2, 4, 7, 7), r(6, 2, 3, 3)], {"groups": 2, "dilations": [2, 2]}, (1, 1)),
    ("pool2d", [r(2, 3, 6, 6)], {"pooling_type": "max", "ksize": [2, 2], "strides": [2, 2]}, (1,)),
    (
        "pool2d",
        [r(2, 3, 5, 5)],
        {"pooling_type": "max", "ksize": [3, 3], "strides": [2, 2], "paddings": [1, 1], "ceil_mode": True},
        (1,),
    ),
    ("pool2d", [r(2, 3, 5, 5)], {"pooling_type": "avg", "ksize": [3, 3], "strides": [2, 2], "paddings": [1, 1]}, (1,)),
    (
        "pool2d",
        [r(2, 3, 5, 5)],
        {"pooling_type": "avg", "ksize": [3, 3], "strides": [1, 1], "paddings": [1, 1], "exclusive": False},
        (1,),
    ),
    ("pool2d", [r(2, 3, 4, 5)], {"pooling_type": "avg", "global_pooling": True}, (1,)),
    ("pool2d", [r(2, 3, 4, 5)], {"pooling_type": "max", "global_pooling": True}, (1,)),
    ("batch_norm", [r(4, 3, 2, 2), r(3), r(3), r(3), r(3, pos=True)], {}, (1, 1, 1, 0, 0)),
    ("batch_norm", [r(5, 3), r(3), r(3), r(3), r(3, pos=True)], {"epsilon": 1e-3}, (1, 1, 1, 0, 0)),
    ("batch_norm", [r(4, 3, 2, 2), r(3), r(3), r(3), r(3, pos=True)], {"is_test": True}, (1, 1, 1, 0, 0)),
    *[
        ("sequence_pool", [r(7, 3)], {"pooltype": t, "offsets": (0, 2, 2, 6, 7), "pad_value": 0.5}, (1,))
        for t in ("SUM", "AVERAGE", "SQRT", "MAX", "LAST", "FIRST")
    ],
    ("sequence_pool", [r(5, 2, 2)], {"pooltype": "MAX", "offsets": (0, 0, 5)}, (1,)),
    ("sequence_pool", [r(4, 3)], {"pooltype": "SQRT", "offsets": (0, 1, 2, 3, 4)}, (1,)),
    ("dropout", [r(6, 5)], {"dropout_prob": 0.3}, (1,)),
    ("dropout", [r(6, 5)], {"dropout_prob": 0.3, "dropout_implementation": "upscale_in_train"}, (1,)),
    ("dropout", [r(6, 5)], {"dropout_prob": 0.3, "is_test": True}, (1,)),
    ("dropout", [r(6, 5)], {"dropout_prob": 0.3, "is_test": True, "dropout_implementation": "upscale_in_train"}, (1,)),
    # ParallelDo's ops (registered by fluid.layers.control_flow): 7 rows on 3 places are 2, 2, 3
    ("parallel_do_slice", [r(7, 3), r(7, 1)], {"index": 1, "devices": ["cpu"] * 3}, (1, 0)),
    ("parallel_do_slice", [r(7, 3), r(7, 1)], {"index": 2, "devices": ["cpu"] * 3}, (1, 0)),
    ("parallel_do_copy", [r(3, 2)], {"device": "cpu"}, (1,)),
    ("parallel_do_merge", [[r(2, 3), r(2, 3), r(3, 3)], r(7, 1)], {}, (1, 0)),
    ("parallel_do_merge", [[r(1, 3), r(1, 3), r(1, 3)], r(2, 1)], {}, (1, 0)),  # 2 rows: place 2 idle
    ("parallel_do_merge", [[r(1).reshape(()), r(1).reshape(())], r(4, 1)], {}, (1, 0)),  # 0-d: one row each
]


def _dout(o):
    return r(*o.shape).to(o.dtype) if o.is_floating_point() and o.requires_grad else None


def _flat(xs):
    out = []
    for x in xs:
        out.extend(x if isinstance(x, list) else [x])
    return out


def _rule_and_autograd(case, dtype):
    """(the grad rule's input gradients, torch.autograd's) for ``case`` with float inputs in ``dtype``."""
    op_type, ins, attrs, diff = case
    ins = [[_as(t, dtype) for t in x] if isinstance(x, list) else _as(x, dtype) for x in ins]
    opdef = get_op(op_type)
    # autograd reference
    leaves = [
        [t.clone().requires_grad_(bool(d)) for t in x]
        if isinstance(x, list)
        else x.clone().requires_grad_(bool(d) and x.is_floating_point())
        for x, d in zip(ins, diff, strict=False)
    ]
    outs = opdef.forward(*leaves, **attrs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    # an output slot holding a list (split's Out) gets a gradient per tensor, except its last one
    # (an output nothing used: the executor passes None there)
    douts = [
        [_dout(t) if i < len(o) - 1 else None for i, t in enumerate(o)] if isinstance(o, list) else _dout(o)
        for o in outs
    ]
    wrt = [t for t in _flat(leaves) if t.requires_grad]
    ref = torch.autograd.grad(
        [o for o, d in zip(_flat(outs), _flat(douts), strict=True) if d is not None],
        wrt,
        [d for d in _flat(douts) if d is not None],
        allow_unused=True,
    )
    # the grad rule, as the static executor calls it
    need = tuple([True] * len(x) if isinstance(x, list) else bool(d) for x, d in zip(ins, diff, strict=False))
    detached = [[t.detach() for t in o] if isinstance(o, list) else o.detach() for o in outs]
    got = get_op(op_type + "_grad").forward(*ins, *detached, *douts, need=need, **attrs)
    got = got if len(opdef.inputs) > 1 else (got,)
    got = [t for x, d, gr in zip(ins, diff, got, strict=False) if d for t in (gr if isinstance(x, list) else [gr])]
    assert len(got) == len(ref)
    return got, [torch.zeros_like(a) if b is None else b for a, b in zip(got, ref, strict=True)]


def _as(t, dtype):
    return t.to(dtype) if t.is_floating_point() else t


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_grad_rule_matches_autograd(case):
    for a, b in zip(*_rule_and_autograd(case, torch.float64), strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_grad_rule_is_bit_identical_to_autograd_in_float32(case):
    """A program's gradients equal those dygraph mode's autograd computes, to the last bit (Paddle's
    own dygraph-vs-static model tests compare them with assert_array_equal): each grad rule
    computes what autograd computes, in the same order."""
    for a, b in zip(*_rule_and_autograd(case, torch.float32), strict=True):
        assert a.dtype == b.dtype == torch.float32
        assert torch.equal(a, b), f"max difference {(a - b).abs().max().item()}"


def test_every_differentiable_op_has_a_case():
    covered = {c[0] for c in CASES}
    missing = [t for t in registered_types() if get_op(t).differentiable and t not in covered]
    assert missing == []


def test_registering_a_type_twice_fails():
    from torchfluid.ops import register

    with pytest.raises(ValueError, match="'mul' is already registered"):
        register("mul", ["Out"])(lambda X: X)


def test_unknown_op_type_names_it():
    with pytest.raises(KeyError, match="unknown op type 'nope'"):
        get_op("nope")
