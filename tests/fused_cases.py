"""Shared pieces of the fused-kernel tests: the reference pipeline, case strategies and
the ulp-level comparison."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from torchfluid.kernels.rmsprop import rmsprop_

STATE = ("mean_square", "mean_grad", "momentum")


@torch.no_grad()
def reference_step(
    params,
    grads,
    states,
    *,
    lr,
    rho,
    epsilon,
    momentum,
    eps_in_sqrt,
    lr_in_momentum,
    nesterov,
    grad_scale,
    clip,
    l2,
    l1,
):
    """Paddle's order with plain torch ops, then the reference kernel, per tensor.

    ``states[i]`` is a dict with 'mean_square' and optionally 'mean_grad'/'momentum';
    ``lr``, ``grad_scale``, ``l2``, ``l1`` are lists; ``clip`` a list of (lo, hi) or None.
    """
    for i, (p, g, s) in enumerate(zip(params, grads, states, strict=True)):
        if g is None:
            continue
        g = g.mul(grad_scale[i])
        if clip[i] is not None:
            g = g.clamp(*clip[i])
        if l2[i] != 0.0:
            g = g.add(p.mul(l2[i]))
        if l1[i] != 0.0:
            g = g.add(torch.sign(p).mul(l1[i]))
        rmsprop_(
            p,
            g,
            s["mean_square"],
            s.get("mean_grad"),
            s.get("momentum"),
            lr=lr[i],
            rho=rho,
            epsilon=epsilon,
            momentum=momentum,
            eps_in_sqrt=eps_in_sqrt,
            lr_in_momentum=lr_in_momentum,
            nesterov=nesterov,
            float32_attrs=False,  # the kernels' tables take the values as given
        )


def assert_ulp_close(actual: torch.Tensor, expected: torch.Tensor, *, ulps: float, scale: float, what: str) -> None:
    """``|actual - expected| <= ulps * eps * (|expected| + scale)`` elementwise.

    ``scale`` is the magnitude the rounding errors are relative to (the largest value
    the step combined), so cancellation cannot make a 1-ulp difference look large.
    """
    assert actual.shape == expected.shape and actual.dtype == expected.dtype, what
    eps = torch.finfo(expected.dtype).eps
    tol = ulps * eps * (expected.abs() + scale)
    same = (actual == expected) | (actual.isnan() & expected.isnan())
    bad = ~((actual - expected).abs() <= tol) & ~same
    assert not bad.any(), (
        f"{what}: {int(bad.sum())} elements differ, e.g. {actual[bad][:3].tolist()} vs {expected[bad][:3].tolist()}"
    )


def magnitude(*tensors: torch.Tensor) -> float:
    """Largest finite magnitude among the tensors (the scale of the step's roundings)."""
    finite = [t[t.isfinite()].abs() for t in tensors]
    return max([float(t.max()) for t in finite if t.numel()] + [1e-30])


shapes = st.lists(
    st.one_of(
        st.tuples(st.integers(0, 40)),
        st.tuples(st.integers(0, 7), st.integers(0, 9)),
        st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(0, 6)),
        st.just(()),
        st.just((5000,)),
    ),
    min_size=1,
    max_size=5,
)

per_tensor = st.one_of(st.just(0.0), st.floats(1e-4, 0.5))


@st.composite
def cases(draw, max_tensors: int = 5):
    """One random configuration: shapes, dtype, flags, hyper-parameters, extras."""
    shp = draw(shapes)[:max_tensors]
    n = len(shp)
    velocity = draw(st.sampled_from(["none", "zero", "some"]))
    has_mom = velocity != "none"
    case = {
        "shapes": shp,
        "dtype": draw(st.sampled_from([torch.float32, torch.float64])),
        "centered": draw(st.booleans()),
        "has_moment": has_mom,
        "seed": draw(st.integers(0, 2**31 - 1)),
        "missing_grad": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        "hyper": {
            "rho": draw(st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 1.0]), st.floats(0.0, 1.0))),
            "epsilon": draw(st.sampled_from([0.0, 1e-10, 1e-8, 1e-6, 1e-3, 0.1])),
            "momentum": {"none": 0.0, "zero": 0.0, "some": draw(st.floats(0.01, 0.99))}[velocity],
            "eps_in_sqrt": draw(st.booleans()),
            "lr_in_momentum": draw(st.booleans()),
            "nesterov": has_mom and draw(st.booleans()),
        },
        "lr": draw(st.lists(st.floats(1e-4, 1.0), min_size=n, max_size=n)),
        "grad_scale": draw(st.lists(st.one_of(st.just(1.0), st.floats(0.01, 1.0)), min_size=n, max_size=n)),
        "clip": draw(
            st.lists(st.one_of(st.none(), st.floats(0.1, 2.0).map(lambda c: (-c, c))), min_size=n, max_size=n)
        ),
        "l2": draw(st.lists(per_tensor, min_size=n, max_size=n)),
        "l1": draw(st.lists(per_tensor, min_size=n, max_size=n)),
    }
    return case


def make_tensors(case, device="cpu"):
    """params, grads (None where missing), states for a case, from its seed."""
    gen = torch.Generator().manual_seed(case["seed"])
    dt = case["dtype"]

    def rnd(shape, positive=False):
        x = torch.randn(shape, generator=gen, dtype=torch.float64)
        return (x.abs() if positive else x).to(dt).to(device)

    params = [rnd(s) for s in case["shapes"]]
    grads = [None if miss else rnd(s) for s, miss in zip(case["shapes"], case["missing_grad"], strict=True)]
    states = []
    for s in case["shapes"]:
        st_ = {"mean_square": rnd(s, positive=True)}
        if case["centered"]:
            st_["mean_grad"] = rnd(s) * 0.5
        if case["has_moment"]:
            st_["momentum"] = rnd(s) * 0.1
        states.append(st_)
    return params, grads, states


def extras(case):
    """The per-tensor extras as keyword arguments of the fused calls: ``lr`` and the
    folded gradient terms as one ``fold`` record."""
    from torchfluid.kernels.table import GradFold

    clip = case["clip"]
    fold = GradFold(
        grad_scale=case["grad_scale"],
        l2=case["l2"],
        l1=case["l1"],
        clip_min=[-float("inf") if c is None else c[0] for c in clip],
        clip_max=[float("inf") if c is None else c[1] for c in clip],
    )
    return {"lr": case["lr"], "fold": fold}


def reference_kwargs(case):
    return dict(
        case["hyper"], lr=case["lr"], grad_scale=case["grad_scale"], clip=case["clip"], l2=case["l2"], l1=case["l1"]
    )


def kernel_tables(params, grads, states, case, chunk):
    """The fused kernels' host tables (:mod:`torchfluid.kernels.table`) for a case's
    tensors: addresses (0 where a grad or state is absent), chunks, hyper, scalars."""
    from torchfluid.kernels import table

    addr = np.zeros((len(params), 5), np.int64)
    for i, (p, g, s) in enumerate(zip(params, grads, states, strict=True)):
        addr[i, table.P] = p.data_ptr()
        addr[i, table.G] = 0 if g is None else g.data_ptr()
        for col, name in zip((table.MS, table.MG, table.MOM), STATE, strict=True):
            addr[i, col] = s[name].data_ptr() if name in s else 0
    dt = table.DTYPES[case["dtype"]]
    h = case["hyper"]
    hyper = table.hyper_table(len(params), dt, **extras(case))
    scalars = table.scalar_table(
        dt, rho=h["rho"], epsilon=h["epsilon"], momentum=h["momentum"], eps_in_sqrt=h["eps_in_sqrt"]
    )
    chunks = table.chunk_table([p.numel() for p in params], chunk)
    return addr, chunks, hyper, scalars


STEPS = 3


def check_against_reference(case, fused_step, tensors=None, steps=STEPS, ulps=8):
    """Run ``steps`` steps of the fused path and of the reference from the same values
    (``tensors``: the case's params, grads, states), comparing after each and re-syncing
    the fused side to the reference (so rounding differences cannot compound)."""
    params, grads, states = make_tensors(case) if tensors is None else tensors
    for step in range(steps):
        ref_p = [p.clone() for p in params]
        ref_s = [{k: v.clone() for k, v in s.items()} for s in states]
        fused_step(params, grads, states)
        reference_step(ref_p, grads, ref_s, **reference_kwargs(case))
        for i in range(len(params)):
            scale = magnitude(ref_p[i], *ref_s[i].values(), params[i])
            assert_ulp_close(params[i], ref_p[i], ulps=ulps, scale=scale, what=f"step {step} param {i}")
            for k in ref_s[i]:
                assert_ulp_close(states[i][k], ref_s[i][k], ulps=ulps, scale=scale, what=f"step {step} {k} {i}")
        for i in range(len(params)):  # re-sync: continue from the reference values
            params[i].copy_(ref_p[i])
            for k in ref_s[i]:
                states[i][k].copy_(ref_s[i][k])
