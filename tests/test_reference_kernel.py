"""The reference kernel in place: with a scratch buffer it allocates nothing the size of
the parameter, and it equals, bit for bit, the same maths written as plain tensor ops
(a new tensor per intermediate), for every flag combination."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from torchfluid.kernels import rmsprop_


def _sqrt(x):  # correctly rounded, as the kernel's docstring requires
    return torch.from_numpy(np.asarray(np.sqrt(x.numpy())))


def plain_ops(
    p,
    g,
    ms,
    mg,
    mom,
    *,
    lr,
    rho,
    epsilon,
    momentum=0.0,
    eps_in_sqrt=True,
    lr_in_momentum=True,
    nesterov=False,
    decoupled_weight_decay=0.0,
    bias_correction_step=0,
    float32_attrs=True,
):
    """The docstring's maths, one new tensor per intermediate (float64 state with
    ``float32_attrs``: rho, epsilon and momentum rounded to float32, Paddle's attributes;
    with ``float32_attrs`` Paddle's averages, ``rho * ms + ((1 - rho) * g) * g`` with
    ``1 - rho`` in the state's dtype, else torch's ``addcmul_``; with ``lr_in_momentum``
    Paddle's step ``(lr * g) / den``)."""
    if float32_attrs and ms.dtype == torch.float64:
        rho, epsilon, momentum = (float(np.float32(v)) for v in (rho, epsilon, momentum))
    if decoupled_weight_decay:
        p.mul_(1.0 - lr * decoupled_weight_decay)
    if float32_attrs:
        dt = np.float32 if ms.dtype == torch.float32 else np.float64
        om = float(dt(1) - dt(rho))
        ms.copy_(ms * rho + (g * om) * g)
        if mg is not None:
            mg.copy_(mg * rho + g * om)
    else:
        ms.mul_(rho).addcmul_(g, g, value=1.0 - rho)
        if mg is not None:
            mg.mul_(rho).add_(g, alpha=1.0 - rho)
    ms_hat, mg_hat = ms, mg
    if bias_correction_step:
        c = 1.0 - rho**bias_correction_step
        ms_hat = ms / c
        mg_hat = None if mg is None else mg / c
    var = ms_hat if mg_hat is None else torch.clamp_min(ms_hat - mg_hat * mg_hat, 0.0)
    den = _sqrt(var + epsilon) if eps_in_sqrt else _sqrt(var) + epsilon
    u = g / den
    if lr_in_momentum:
        step = (g * lr) / den
        if mom is None:
            p.sub_(step)
        else:
            mom.mul_(momentum).add_(step)
            p.sub_(mom if not nesterov else step.add(mom, alpha=momentum))
    elif mom is None:
        p.sub_(u * lr)
    else:
        mom.mul_(momentum).add_(u)
        p.sub_((mom if not nesterov else u.add(mom, alpha=momentum)) * lr)


FLAGS = list(
    itertools.product(
        [False, True], [False, True], ["none", "plain", "lr-out", "nesterov", "nesterov lr-out"], [0, 3], [0.0, 0.1]
    )
)
# the float64 cases run with Paddle's float32 attributes (the default) and without


def _tensors(shape, dtype, centered, velocity, seed=0):
    gen = torch.Generator().manual_seed(seed)
    rnd = lambda: torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)  # noqa: E731
    p, g = rnd(), rnd()
    ms = rnd().abs()
    mg = rnd() * 0.5 if centered else None
    mom = rnd() * 0.1 if velocity != "none" else None
    return [p, g, ms, mg, mom]


def _hyper(velocity, eps_in_sqrt, bc, wd):
    return {
        "lr": 0.01,
        "rho": 0.9,
        "epsilon": 1e-6,
        "momentum": 0.0 if velocity == "none" else 0.9,
        "eps_in_sqrt": eps_in_sqrt,
        "lr_in_momentum": "lr-out" not in velocity,
        "nesterov": "nesterov" in velocity,
        "bias_correction_step": bc,
        "decoupled_weight_decay": wd,
    }


@pytest.mark.parametrize(
    "dtype,float32_attrs",
    [(torch.float32, True), (torch.float32, False), (torch.float64, True), (torch.float64, False)],
)
@pytest.mark.parametrize("centered,eps_in_sqrt,velocity,bc,wd", FLAGS)
def test_in_place_kernel_equals_plain_ops_bit_for_bit(dtype, float32_attrs, centered, eps_in_sqrt, velocity, bc, wd):
    hyper = {**_hyper(velocity, eps_in_sqrt, bc, wd), "float32_attrs": float32_attrs}
    for shape in [(37, 11), (), (0,)]:
        want = _tensors(shape, dtype, centered, velocity)
        with_scratch = [None if t is None else t.clone() for t in want]
        without = [None if t is None else t.clone() for t in want]
        scratch = torch.full((500,), float("nan"), dtype=dtype)  # contents on entry are ignored
        for _ in range(3):
            plain_ops(*want, **hyper)
            rmsprop_(*with_scratch, **hyper, scratch=scratch)
            rmsprop_(*without, **hyper)
        for a, b, c in zip(want, with_scratch, without, strict=True):
            if a is not None:
                assert torch.equal(a, b) and torch.equal(a, c), (shape, a, b, c)


def test_non_contiguous_parameter_and_state():
    base = _tensors((8, 6), torch.float32, True, "plain")
    want = [t.t() for t in base]  # transposed views: strided
    got = [t.clone().t() for t in base]
    hyper = _hyper("plain", True, 0, 0.0)
    plain_ops(*want, **hyper)
    rmsprop_(*got, **hyper, scratch=torch.empty(48))
    assert all(torch.equal(a, b) for a, b in zip(want, got, strict=True))


def _largest_allocation(fn) -> int:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return max([e.cpu_memory_usage for e in prof.events() if e.cpu_memory_usage > 0], default=0)


@pytest.mark.parametrize("velocity", ["none", "plain", "lr-out", "nesterov"])
@pytest.mark.parametrize("centered", [False, True])
def test_scratch_means_no_allocation_of_parameter_size(velocity, centered):
    n = 100_000
    ts = _tensors((n,), torch.float32, centered, velocity)
    hyper = _hyper(velocity, True, 0, 0.0)
    scratch = torch.empty(2 * n)  # Paddle's numerator lr * g takes the second half
    assert _largest_allocation(lambda: rmsprop_(*ts, **hyper, scratch=scratch)) < 4 * n // 10
    assert _largest_allocation(lambda: rmsprop_(*ts, **hyper)) >= 4 * n  # the one it then makes


BAD_SCRATCH = [
    (
        "dtype",
        torch.empty(10, dtype=torch.float64),
        "scratch: torch.float64 (10,) on cpu; allowed: a contiguous "
        "1-D torch.float32 tensor on cpu with at least 10 elements",
    ),
    ("too small", torch.empty(9), "scratch: torch.float32 (9,) on cpu; allowed"),
    ("2-D", torch.empty(2, 5), "scratch: torch.float32 (2, 5) on cpu; allowed"),
    ("strided", torch.empty(20)[::2], "scratch: torch.float32 (10,) on cpu; allowed: a contiguous"),
]


@pytest.mark.parametrize("name,scratch,message", BAD_SCRATCH, ids=[c[0] for c in BAD_SCRATCH])
def test_bad_scratch_is_refused_before_anything_changes(name, scratch, message):
    ts = _tensors((10,), torch.float32, True, "plain")
    before = [t.clone() for t in ts]
    with pytest.raises(ValueError) as err:
        rmsprop_(*ts, **_hyper("plain", True, 0, 0.1), scratch=scratch)
    assert message in str(err.value)
    assert all(torch.equal(a, b) for a, b in zip(ts, before, strict=True))
