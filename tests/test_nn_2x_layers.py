"""Paddle 2.x ``paddle.nn`` spellings: ``Conv2D``, ``BatchNorm2D`` (its three
``use_global_stats`` modes) and ``paddle.nn.initializer``, checked against torch's own
functional ops and a numpy batch-norm."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import torchfluid as fluid
from torchfluid import nn
from torchfluid.dygraph import guard, to_variable

X = np.random.RandomState(0).standard_normal((2, 4, 6, 5)).astype("float32")


@pytest.mark.parametrize(
    "kw",
    [
        {"in_channels": 4, "out_channels": 6, "kernel_size": 3},
        {"in_channels": 4, "out_channels": 2, "kernel_size": [3, 2], "stride": 2, "padding": 1},
        {"in_channels": 4, "out_channels": 4, "kernel_size": 3, "groups": 2, "dilation": 2, "padding": [2, 1]},
        {"in_channels": 4, "out_channels": 3, "kernel_size": 1, "bias_attr": False},
    ],
)
def test_conv2d_is_torch_conv2d_with_paddle_shapes_and_init(kw):
    with guard():
        conv = nn.Conv2D(**kw)
        out = conv(to_variable(X)).numpy()
    k = kw["kernel_size"] if isinstance(kw["kernel_size"], list) else [kw["kernel_size"]] * 2
    groups = kw.get("groups", 1)
    assert list(conv.weight.shape) == [kw["out_channels"], kw["in_channels"] // groups, *k]
    assert conv.weight.name.startswith("conv2d_") and conv.weight.dtype == torch.float32
    assert (conv.bias is None) == (kw.get("bias_attr") is False)
    if conv.bias is not None:
        assert not conv.bias.detach().any()  # zeros
    pad = kw.get("padding", 0)
    want = F.conv2d(
        torch.from_numpy(X),
        conv.weight.detach(),
        None if conv.bias is None else conv.bias.detach(),
        stride=kw.get("stride", 1),
        padding=pad,
        dilation=kw.get("dilation", 1),
        groups=groups,
    )
    np.testing.assert_allclose(out, want.numpy(), rtol=1e-5, atol=1e-6)


def test_conv2d_default_filter_is_normal_with_paddle_std():
    with guard():
        w = nn.Conv2D(64, 256, 3).weight.detach().numpy()
    assert abs(w.mean()) < 3e-3 and abs(w.std() / np.sqrt(2.0 / (3 * 3 * 64)) - 1) < 0.02


@pytest.mark.parametrize(
    "kw, error, match",
    [
        ({"padding_mode": "reflect"}, NotImplementedError, r"padding_mode='reflect' is not supported"),
        ({"padding_mode": "mirror"}, ValueError, r"padding_mode must be one of .*got 'mirror'"),
        ({"padding": "SAME"}, NotImplementedError, r"padding='SAME' is not supported"),
        ({"data_format": "NHWC"}, ValueError, r"data_format must be 'NCHW', got 'NHWC'"),
        ({"groups": 3}, ValueError, r"groups=3 must divide"),
    ],
)
def test_conv2d_refuses_what_it_does_not_do(kw, error, match):
    with guard(), pytest.raises(error, match=match):
        nn.Conv2D(4, 6, 3, **kw)


def _numpy_bn(x, mean, var, eps=1e-5):
    return (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + eps)


def _batch_stats(x):
    return x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))


# use_global_stats -> (train mode normalises with, eval mode normalises with, eval moves the statistics)
BN_MODES = [(None, "batch", "moving", False), (True, "moving", "moving", False), (False, "batch", "batch", True)]


@pytest.mark.parametrize("use_global_stats, train_with, eval_with, eval_moves", BN_MODES)
def test_batch_norm_2d_modes(use_global_stats, train_with, eval_with, eval_moves):
    with guard():
        bn = nn.BatchNorm2D(4, momentum=0.8, use_global_stats=use_global_stats)
        with torch.no_grad():
            bn._mean.copy_(torch.arange(4.0))
            bn._variance.copy_(torch.arange(1.0, 5.0))
        for mode, norm_with in (("train", train_with), ("eval", eval_with)):
            getattr(bn, mode)()
            mean0, var0 = bn._mean.detach().numpy().copy(), bn._variance.detach().numpy().copy()
            y = bn(to_variable(X)).numpy()
            bmean, bvar = _batch_stats(X.astype(np.float64))
            stats = (bmean, bvar) if norm_with == "batch" else (mean0, var0)
            np.testing.assert_allclose(y, _numpy_bn(X, *stats), rtol=1e-4, atol=1e-5)
            moved = norm_with == "batch" and (mode == "train" or eval_moves)
            want_mean = 0.8 * mean0 + 0.2 * bmean if moved else mean0
            np.testing.assert_allclose(bn._mean.detach().numpy(), want_mean, rtol=1e-5)


def test_fluid_batch_norm_trainable_statistics_keeps_batch_statistics_in_eval():
    with guard():
        bn = fluid.dygraph.BatchNorm(4, trainable_statistics=True)
        bn.eval()
        y = bn(to_variable(X)).numpy()
    np.testing.assert_allclose(y, _numpy_bn(X, *_batch_stats(X.astype(np.float64))), rtol=1e-4, atol=1e-5)


def test_batch_norm_2d_needs_4d_input_and_a_bool_mode():
    with guard():
        with pytest.raises(ValueError, match=r"input must be 4-D \[N, C, H, W\], got shape \[2, 4\]"):
            nn.BatchNorm2D(4)(to_variable(X[:, :, 0, 0]))
        with pytest.raises(TypeError, match="use_global_stats"):
            nn.BatchNorm2D(4, use_global_stats="yes")
        with pytest.raises(ValueError, match="data_format must be 'NCHW'"):
            nn.BatchNorm2D(4, data_format="NHWC")


@pytest.mark.parametrize(
    "init, check",
    [
        (nn.initializer.Constant(value=0.25), lambda w: np.all(w == 0.25)),
        (nn.initializer.Normal(mean=3.0, std=0.0), lambda w: np.all(w == 3.0)),
        (nn.initializer.TruncatedNormal(mean=1.0, std=0.1), lambda w: np.all(np.abs(w - 1.0) <= 0.2 + 1e-6)),
        (nn.initializer.Uniform(low=2.0, high=3.0), lambda w: w.min() >= 2.0 and w.max() < 3.0),
        (nn.initializer.XavierUniform(), lambda w: np.abs(w).max() <= np.sqrt(6.0 / (40 + 30))),
        (nn.initializer.XavierNormal(fan_in=1, fan_out=1), lambda w: 0.8 < w.std() < 1.2),
        (nn.initializer.KaimingUniform(), lambda w: np.abs(w).max() <= np.sqrt(6.0 / 40)),
        (nn.initializer.KaimingNormal(fan_in=2), lambda w: 0.8 < w.std() < 1.2),
        (nn.initializer.Assign(np.arange(1200.0).reshape(40, 30)), lambda w: np.all(w.ravel() == np.arange(1200))),
        (nn.initializer.Assign(torch.ones(40, 30)), lambda w: np.all(w == 1)),
    ],
)
def test_2x_initializers_as_weight_attr(init, check):
    with guard():
        w = nn.Linear(40, 30, weight_attr=init).weight.detach().numpy()
    assert check(w)
