"""Static clip(pairs) / append_gradient_clip_ops append Paddle's own op graph
(python/paddle/fluid/clip.py, 2.1/2.2 ``_static_clip``): the op lists are Paddle's, and
the clipped values match numpy."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid.clip import _allow_pure_fp16_global_norm_clip
from torchfluid.ops import get_op

GN_FP32 = ["squared_l2_norm", "squared_l2_norm", "sum", "sqrt", "fill_constant", "elementwise_max", "elementwise_div"]
GN_FP16 = ["square", "reduce_sum", "square", "reduce_sum", "sum"]
TAIL = ["fill_constant", "elementwise_max", "elementwise_div"]


def _program(dtypes, need_clip=None, shapes=None):
    """A program with parameters p<i> and fed gradient variables g<i> of ``dtypes``."""
    main, startup = fluid.Program(), fluid.Program()
    shapes = shapes or [[2, 3]] * len(dtypes)
    need_clip = need_clip or [True] * len(dtypes)
    pairs = []
    with fluid.program_guard(main, startup):
        block = main.global_block()
        for i, (dt, shape, nc) in enumerate(zip(dtypes, shapes, need_clip, strict=True)):
            p = block.create_parameter(name=f"p{i}", shape=shape, dtype=dt, need_clip=nc)
            g = fluid.data(name=f"g{i}", shape=shape, dtype=dt)
            pairs.append((p, g))
    return main, startup, pairs


def _ops(main):
    return [op.type for op in main.global_block().ops]


def _clip(clip, main, startup, pairs):
    with fluid.program_guard(main, startup):
        return clip(pairs)


@pytest.mark.parametrize(
    "clip,dtypes,pure,expected",
    [
        (fluid.clip.GradientClipByGlobalNorm(0.2), ["float32"] * 2, False, GN_FP32 + ["elementwise_mul"] * 2),
        (
            fluid.clip.GradientClipByGlobalNorm(0.2),
            ["float16"] * 2,
            False,
            GN_FP16 + ["cast", "sqrt"] + TAIL + ["cast", "elementwise_mul"] * 2,
        ),
        (
            fluid.clip.GradientClipByGlobalNorm(0.2),
            ["float16"] * 2,
            True,  # pure float16: no cast anywhere
            GN_FP16 + ["sqrt"] + TAIL + ["elementwise_mul"] * 2,
        ),
        (
            fluid.clip.GradientClipByGlobalNorm(0.2),
            ["float32", "float64"],
            False,  # float32 sum cast to float64, the two sums summed, the scale cast back for the float32 grad
            ["squared_l2_norm"] * 2
            + ["sum", "cast", "sum", "sum", "sqrt"]
            + TAIL
            + ["cast", "elementwise_mul", "elementwise_mul"],
        ),
        (
            fluid.clip.GradientClipByGlobalNorm(0.2),
            ["float16", "float32"],
            True,  # not pure: a float32 grad is there
            ["square", "reduce_sum", "squared_l2_norm", "sum", "cast", "sum", "sum", "sqrt"]
            + TAIL
            + ["cast", "elementwise_mul", "elementwise_mul"],
        ),
        (fluid.clip.GradientClipByNorm(0.2), ["float32"] * 3, False, ["clip_by_norm"] * 3),
        (fluid.clip.GradientClipByValue(0.2, -0.1), ["float32", "float64"], False, ["clip"] * 2),
    ],
)
def test_op_lists_are_paddles(clip, dtypes, pure, expected):
    main, startup, pairs = _program(dtypes)
    old = _allow_pure_fp16_global_norm_clip(pure)
    try:
        out = _clip(clip, main, startup, pairs + [(pairs[0][0], None)])  # None grad dropped
    finally:
        _allow_pure_fp16_global_norm_clip(old)
    assert _ops(main) == expected
    assert [p.name for p, _ in out] == [p.name for p, _ in pairs]
    assert all(g.dtype == p.dtype and g.name.endswith("@CLIP") for p, g in out)
    assert all(op.role & 0x0002 for op in main.global_block().ops)  # OpRole.Optimize, as Paddle


def _run(main, startup, feed, fetch):
    exe = fluid.Executor(fluid.CPUPlace())
    with fluid.scope_guard(fluid.Scope()):
        exe.run(startup)
        return exe.run(main, feed=feed, fetch_list=fetch)


def _ref_global(gs, nc, clip_norm):
    norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g, c in zip(gs, nc, strict=True) if c))
    scale = clip_norm / max(norm, clip_norm)
    return [g * scale if c else g for g, c in zip(gs, nc, strict=True)]


def _ref_norm(gs, nc, clip_norm):
    out = []
    for g, c in zip(gs, nc, strict=True):
        n = np.sqrt(np.sum(g.astype(np.float64) ** 2))
        out.append(g * (clip_norm / n) if c and n > clip_norm else g)
    return out


def _ref_value(gs, nc, lo, hi):
    return [np.clip(g, lo, hi) if c else g for g, c in zip(gs, nc, strict=True)]


VALUE_CASES = [
    # (clip, numpy reference, dtypes, need_clip, gradient magnitude)
    (fluid.clip.GradientClipByGlobalNorm(0.2), lambda gs, nc: _ref_global(gs, nc, 0.2), ["float32"] * 3, None, 1.0),
    (fluid.clip.GradientClipByGlobalNorm(50.0), lambda gs, nc: _ref_global(gs, nc, 50.0), ["float32"] * 2, None, 1.0),
    (
        fluid.clip.GradientClipByGlobalNorm(0.5),
        lambda gs, nc: _ref_global(gs, nc, 0.5),
        ["float32", "float64", "float32"],
        [True, True, False],
        2.0,
    ),
    (fluid.clip.GradientClipByGlobalNorm(1.0), lambda gs, nc: _ref_global(gs, nc, 1.0), ["float64"] * 2, None, 3.0),
    (fluid.clip.GradientClipByNorm(0.3), lambda gs, nc: _ref_norm(gs, nc, 0.3), ["float32", "float64"], None, 1.0),
    (fluid.clip.GradientClipByNorm(0.3), lambda gs, nc: _ref_norm(gs, nc, 0.3), ["float32"] * 2, [False, True], 0.05),
    (
        fluid.clip.GradientClipByValue(0.2, -0.1),
        lambda gs, nc: _ref_value(gs, nc, -0.1, 0.2),
        ["float32", "float64"],
        [True, False],
        1.0,
    ),
]


@pytest.mark.parametrize("clip,ref,dtypes,need_clip,mag", VALUE_CASES)
def test_clipped_values_match_numpy(clip, ref, dtypes, need_clip, mag):
    shapes = [[3, 4], [5], [2, 2, 2]][: len(dtypes)]
    main, startup, pairs = _program(dtypes, need_clip, shapes)
    out = _clip(clip, main, startup, pairs)
    rng = np.random.default_rng(len(dtypes))
    feed = {
        g.name: (rng.standard_normal(s) * mag).astype(dt) for (_, g), s, dt in zip(pairs, shapes, dtypes, strict=True)
    }
    got = _run(main, startup, feed, [g for _, g in out])
    want = ref([feed[g.name] for _, g in pairs], need_clip or [True] * len(dtypes))
    for (p, g), a, b in zip(out, got, want, strict=True):
        assert a.dtype == np.dtype(p.dtype)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9, err_msg=g.name)
    for (_, g), (_, g0), c in zip(out, pairs, need_clip or [True] * len(dtypes), strict=True):
        assert (g is g0) is not c  # need_clip=False: the grad variable itself


@pytest.mark.parametrize("pure", [False, True])
def test_float16_global_norm_follows_paddles_precision(pure):
    """Squares and their sums in float16 (reduce_sum accumulating in float32, rounded once),
    then the norm in float32 (or float16 when pure), the scale cast to float16."""
    main, startup, pairs = _program(["float16"] * 2)
    old = _allow_pure_fp16_global_norm_clip(pure)
    try:
        out = _clip(fluid.clip.GradientClipByGlobalNorm(0.5), main, startup, pairs)
    finally:
        _allow_pure_fp16_global_norm_clip(old)
    rng = np.random.default_rng(5)
    gs = [(rng.standard_normal((2, 3)) * 0.7).astype(np.float16) for _ in pairs]
    got = _run(main, startup, {g.name: v for (_, g), v in zip(pairs, gs, strict=True)}, [g for _, g in out])
    sq = [np.float16(np.sum((g * g).astype(np.float32))) for g in gs]  # square in fp16, sum rounded to fp16
    total = np.float16(sq[0] + sq[1])
    dt = np.float16 if pure else np.float32
    norm = np.sqrt(dt(total))
    scale = np.float16(dt(0.5) / np.maximum(dt(0.5), norm))
    for a, g in zip(got, gs, strict=True):
        assert a.dtype == np.float16
        np.testing.assert_array_equal(a, g * scale)


def test_all_pairs_without_need_clip_add_no_ops():
    main, startup, pairs = _program(["float32"] * 2, [False, False])
    out = _clip(fluid.clip.GradientClipByGlobalNorm(0.1), main, startup, pairs)
    assert _ops(main) == [] and out == pairs


def test_clip_by_norm_op_is_paddles_kernel():
    import torch

    fwd = get_op("clip_by_norm").forward
    x = torch.tensor([0.3, -0.4], dtype=torch.float32)  # norm 0.5
    assert torch.equal(fwd(x, max_norm=0.5), x)  # norm <= max_norm: unchanged, bit for bit
    np.testing.assert_allclose(fwd(x, max_norm=0.25).numpy(), [0.15, -0.2], rtol=1e-6)
    tiny = torch.tensor([1e-31], dtype=torch.float64)  # norm <= 1e-30: Paddle adds 1e-6 to it
    np.testing.assert_allclose(fwd(tiny, max_norm=1e-32).numpy(), [1e-31 * 1e-32 / (1e-31 + 1e-6)], rtol=1e-12)


def test_append_gradient_clip_ops_groups_by_clip():
    main, startup, pairs = _program(["float32"] * 3, shapes=[[4], [3], [2]])
    with fluid.program_guard(main, startup):
        fluid.clip.set_gradient_clip(fluid.clip.GradientClipByGlobalNorm(0.3), param_list=["p0", "p1"])
        fluid.clip.set_gradient_clip(fluid.clip.GradientClipByValue(0.05), param_list=["p2"])
        out = fluid.clip.append_gradient_clip_ops(pairs)
    assert _ops(main) == GN_FP32 + ["elementwise_mul"] * 2 + ["clip"]
    rng = np.random.default_rng(2)
    gs = [rng.standard_normal(s).astype(np.float32) for s in ([4], [3], [2])]
    got = _run(main, startup, {f"g{i}": g for i, g in enumerate(gs)}, [g for _, g in out])
    want = _ref_global(gs[:2], [True, True], 0.3) + [np.clip(gs[2], -0.05, 0.05)]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_append_gradient_clip_ops_group_needs_one_clip_norm():
    main, startup, pairs = _program(["float32"] * 2)
    with fluid.program_guard(main, startup):
        fluid.clip.set_gradient_clip(fluid.clip.GradientClipByGlobalNorm(0.3, group_name="a"), param_list=["p0"])
        fluid.clip.set_gradient_clip(fluid.clip.GradientClipByGlobalNorm(0.4, group_name="a"), param_list=["p1"])
        with pytest.raises(ValueError, match="group 'a' have clip_norm 0.3 and 0.4"):
            fluid.clip.append_gradient_clip_ops(pairs)


def test_allow_pure_fp16_flag():
    assert _allow_pure_fp16_global_norm_clip() is False
    assert _allow_pure_fp16_global_norm_clip(True) is False
    assert _allow_pure_fp16_global_norm_clip() is True
    assert _allow_pure_fp16_global_norm_clip(False) is True
    with pytest.raises(TypeError, match="takes one bool"):
        _allow_pure_fp16_global_norm_clip(1)
    assert fluid.clip._allow_pure_fp16_global_norm_clip is _allow_pure_fp16_global_norm_clip


@pytest.mark.parametrize("use_set_gradient_clip", [False, True])
def test_optimizer_grad_clip_stays_one_fused_op(use_set_gradient_clip):
    """minimize with the optimizer's grad_clip clips inside its one optimize op; with
    set_gradient_clip (and no grad_clip) Paddle's clip graph comes before it."""
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup):
        x = fluid.data("x", [-1, 3], "float32")
        loss = fluid.layers.mean(fluid.layers.fc(x, 2))
        clip = fluid.clip.GradientClipByGlobalNorm(0.1)
        if use_set_gradient_clip:
            fluid.clip.set_gradient_clip(clip)
            fluid.optimizer.RMSPropOptimizer(0.1).minimize(loss)
        else:
            fluid.optimizer.RMSPropOptimizer(0.1, grad_clip=clip).minimize(loss)
    types = _ops(main)
    assert types[-1] == "rmsprop" and types.count("rmsprop") == 1
    assert ("squared_l2_norm" in types) is use_set_gradient_clip
    assert "clip_gradients" not in types


def test_clip_graph_survives_program_text_and_clipping_twice():
    """The appended ops save and load with the program (same values after
    parse_from_string), and clipping the same pairs again makes new variables."""
    main, startup, pairs = _program(["float32", "float32"], shapes=[[3], [2, 2]])
    first = _clip(fluid.clip.GradientClipByGlobalNorm(0.1), main, startup, pairs)
    second = _clip(fluid.clip.GradientClipByNorm(0.1), main, startup, pairs)
    third = _clip(fluid.clip.GradientClipByValue(0.1), main, startup, pairs)
    names = [g.name for _, g in first + second + third]
    assert len(set(names)) == 6
    loaded = fluid.Program.parse_from_string(main.desc.serialize_to_string())
    assert _ops(loaded) == _ops(main)
    rng = np.random.default_rng(9)
    feed = {"g0": rng.standard_normal(3).astype(np.float32), "g1": rng.standard_normal((2, 2)).astype(np.float32)}
    for a, b in zip(_run(main, startup, feed, names), _run(loaded, startup, feed, names), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("float32_attrs", [True, False])
def test_clip_by_value_graph_bounds_for_float64_gradients(float32_attrs):
    """Paddle's graph clips each gradient with a ``clip`` op, whose bounds are float32
    attributes (a float64 gradient meets ``float64(float32(0.1))``); a clip with
    ``float32_attrs=False`` runs as one ``clip_gradients`` op with the bounds as given: the
    values of the eager clip either way."""
    main, startup, pairs = _program(["float64"], shapes=[[6]])
    clip = fluid.clip.ClipGradByValue(0.1, float32_attrs=float32_attrs)
    out = _clip(clip, main, startup, pairs)
    assert _ops(main) == (["clip"] if float32_attrs else ["clip_gradients"])
    g = np.array([0.1, 0.10000000149011612, 0.1000000014, 0.2, -0.1000000014, -0.3])
    (got,) = _run(main, startup, {pairs[0][1].name: g}, [out[0][1]])
    bound = float(np.float32(0.1)) if float32_attrs else 0.1
    np.testing.assert_array_equal(got, np.clip(g, -bound, bound))
    (eager,) = clip.clip_tensors([torch.tensor(g)], [True])
    np.testing.assert_array_equal(got, eager.numpy())
