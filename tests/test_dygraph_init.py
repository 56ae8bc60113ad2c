"""Initializers: fans and distribution statistics against Paddle's formulas."""

import math

import numpy as np
import pytest
import torch

from torchfluid import initializer as I

# ----------------------------------------------------------------------------- fans
# Paddle's _compute_fans, written out independently for each case.
FAN_CASES = [
    ([], (1, 1)),
    ([7], (7, 7)),
    ([300, 100], (300, 100)),  # Linear weight [in, out]: fan_in = in
    ([16, 8, 3, 3], (8 * 9, 16 * 9)),  # conv [out_c, in_c, kh, kw]
    ([4, 2, 5], (2 * 5, 4 * 5)),
]


@pytest.mark.parametrize("shape,fans", FAN_CASES)
def test_compute_fans(shape, fans):
    assert I.compute_fans(shape) == fans


# ----------------------------------------------------------------------------- statistics
N = 200_000  # elements per sample: standard errors ~0.3% of the std


def _draw(init, shape=(400, 500), dtype=torch.float32, seed=1234):
    return init(torch.empty(shape, dtype=dtype), generator=torch.Generator().manual_seed(seed)).double().numpy()


# (initializer, shape, support bound or None, expected mean, expected std)
STAT_CASES = [
    ("uniform", I.Uniform(-0.5, 1.5), (400, 500), (-0.5, 1.5), 0.5, 2.0 / math.sqrt(12)),
    ("normal", I.Normal(1.0, 2.0), (400, 500), None, 1.0, 2.0),
    (
        "xavier-uniform [in,out]",
        I.Xavier(),
        (400, 500),
        (-math.sqrt(6 / 900), math.sqrt(6 / 900)),
        0.0,
        math.sqrt(6 / 900) / math.sqrt(3),
    ),
    ("xavier-normal", I.Xavier(uniform=False), (400, 500), None, 0.0, math.sqrt(2 / 900)),
    (
        "xavier given fans",
        I.Xavier(fan_in=10, fan_out=20),
        (400, 500),
        (-math.sqrt(0.2), math.sqrt(0.2)),
        0.0,
        math.sqrt(0.2 / 3),
    ),
    (
        "msra-uniform",
        I.MSRA(),
        (400, 500),
        (-math.sqrt(6 / 400), math.sqrt(6 / 400)),
        0.0,
        math.sqrt(6 / 400) / math.sqrt(3),
    ),
    ("msra-normal conv", I.MSRA(uniform=False), (50, 40, 10, 10), None, 0.0, math.sqrt(2 / 4000)),
    ("kaiming-normal", I.KaimingNormal(), (400, 500), None, 0.0, math.sqrt(2 / 400)),
    # N(0, 1) truncated to [-2, 2]: std = sqrt(1 - 2*2*phi(2)/(Phi(2)-Phi(-2)))
    (
        "truncated-normal",
        I.TruncatedNormal(0.5, 2.0),
        (400, 500),
        (0.5 - 4.0, 0.5 + 4.0),
        0.5,
        2.0 * math.sqrt(1 - 4 * math.exp(-2) / math.sqrt(2 * math.pi) / math.erf(2 / math.sqrt(2))),
    ),
]


@pytest.mark.parametrize("label,init,shape,bounds,mean,std", STAT_CASES, ids=[c[0] for c in STAT_CASES])
def test_distribution_statistics(label, init, shape, bounds, mean, std):
    x = _draw(init, shape)
    n = x.size
    assert abs(x.mean() - mean) < 5 * std / math.sqrt(n)
    assert abs(x.std() - std) < 0.01 * std
    if bounds is not None:
        lo, hi = bounds
        assert x.min() >= lo and x.max() <= hi
        assert x.min() < lo + 0.01 * (hi - lo) and x.max() > hi - 0.01 * (hi - lo)  # the whole range is used


def test_constant_and_numpy_array():
    t = torch.empty(2, 3)
    assert I.Constant(2.5)(t) is t and (t == 2.5).all()
    ints = I.Constant(7)(torch.empty(3, dtype=torch.int64))
    assert ints.tolist() == [7, 7, 7]
    value = np.arange(6, dtype=np.float64).reshape(2, 3)
    out = I.NumpyArrayInitializer(value)(torch.empty(2, 3, dtype=torch.float32))
    assert out.tolist() == value.tolist()
    value[0, 0] = 99  # the initializer does not alias its array into the parameter
    assert out[0, 0] == 0


def test_seed_is_per_call_and_generator_is_honoured():
    a = I.Normal(seed=7)(torch.empty(5))
    b = I.Normal(seed=7)(torch.empty(5))
    assert torch.equal(a, b)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(I.Xavier()(torch.empty(4, 4), generator=g1), I.Xavier()(torch.empty(4, 4), generator=g2))
    assert not torch.equal(I.Xavier()(torch.empty(4, 4), generator=g1), I.Xavier(seed=3)(torch.empty(4, 4)))


def test_float64_parameters_are_drawn_in_float64():
    g = torch.Generator().manual_seed(0)
    x = I.Uniform()(torch.empty(1000, dtype=torch.float64), generator=g)
    assert (x.numpy() != x.numpy().astype(np.float32)).any()


def test_uniform_diagonal():
    x = I.Uniform(-1.0, 1.0, diag_num=3, diag_step=2, diag_val=5.0)(torch.empty(3, 3))
    flat = x.view(-1)
    assert flat[[0, 3, 6]].tolist() == [5.0, 5.0, 5.0]


@pytest.mark.parametrize(
    "make,error,match",
    [
        (lambda: I.Uniform(1.0, -1.0), ValueError, "high must be >= low"),
        (lambda: I.Normal(scale=-1.0), ValueError, "scale must be >= 0, got -1.0"),
        (lambda: I.Normal(loc=None), TypeError, "loc must be a real number, got None"),
        (lambda: I.Xavier(uniform=1), TypeError, "uniform must be True or False, got 1"),
        (lambda: I.Xavier(fan_in=0), ValueError, "fan_in must be > 0, got 0"),
        (lambda: I.MSRA(seed=-2), ValueError, "seed must be an int >= 0, got -2"),
        (lambda: I.NumpyArrayInitializer([1, 2]), TypeError, "value must be a numpy.ndarray, got list"),
        (
            lambda: I.NumpyArrayInitializer(np.ones(2))(torch.empty(3)),
            ValueError,
            r"value has shape \[2\], the parameter has shape \[3\]",
        ),
        (lambda: I.Xavier()(np.ones(3)), TypeError, "fills a torch tensor in place, got ndarray"),
        (lambda: I.Normal()(torch.empty(3, dtype=torch.int64)), TypeError, "is not floating point"),
        (lambda: I.Uniform(diag_num=5, diag_step=2)(torch.empty(3, 3)), ValueError, "reaches position 12"),
    ],
)
def test_bad_input(make, error, match):
    with pytest.raises(error, match=match):
        make()
