"""``multi_precision`` and ``nonfinite`` on every optimizer (Paddle 2.x's AMP-O2 option).

With ``multi_precision=True`` a float16/bfloat16 parameter's update runs on its float32
master weight with float32 state and the float32-widened gradient, then the parameter is
rewritten from the master (round to nearest). The independent reference: the same
optimizer on float32 parameters holding the master's start values, fed the same
gradients widened to float32, must end with the master's values bit for bit.
"""

import copy

import pytest
import torch

from torchfluid import optimizer as O

LOW = [torch.float16, torch.bfloat16]

# (class, constructor keyword arguments): every optimizer torchfluid has
OPTIMIZERS = {
    "sgd": (O.SGD, {"learning_rate": 0.1}),
    "momentum": (O.Momentum, {"learning_rate": 0.05, "momentum": 0.9, "use_nesterov": True}),
    "adam": (O.Adam, {"learning_rate": 0.01, "beta1": 0.8}),
    "adamw": (O.AdamW, {"learning_rate": 0.01, "weight_decay": 0.1}),
    "adamax": (O.Adamax, {"learning_rate": 0.01}),
    "adagrad": (O.Adagrad, {"learning_rate": 0.1, "initial_accumulator_value": 0.1}),
    "adadelta": (O.Adadelta, {"learning_rate": 1.0, "rho": 0.9}),
    "lamb": (O.Lamb, {"learning_rate": 0.01, "lamb_weight_decay": 0.05}),
    "rmsprop": (O.RMSProp, {"learning_rate": 0.01, "momentum": 0.5, "centered": True}),
}
STEPS = 5


def _grads(dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [
        [(torch.randn(4, 3, generator=gen) * 0.5).to(dtype), torch.randn(3, generator=gen).to(dtype)]
        for _ in range(STEPS)
    ]


def _params(dtype):
    gen = torch.Generator().manual_seed(7)
    return [
        torch.nn.Parameter(torch.randn(4, 3, generator=gen).to(dtype)),
        torch.nn.Parameter(torch.zeros(3, dtype=dtype)),
    ]


def _train(opt, params, grads):
    for step in grads:
        for p, g in zip(params, step, strict=True):
            p.grad = g.clone()
        opt.step()


@pytest.mark.parametrize("dtype", LOW, ids=str)
@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_the_master_follows_the_float32_update_bit_for_bit(kind, dtype):
    cls, kwargs = OPTIMIZERS[kind]
    low = _params(dtype)
    ref = [torch.nn.Parameter(p.detach().float()) for p in low]
    grads = _grads(dtype)
    opt = cls(parameters=[("w", low[0]), ("b", low[1])], multi_precision=True, **kwargs)
    ref_opt = cls(parameters=[("w", ref[0]), ("b", ref[1])], **kwargs)
    _train(opt, low, grads)
    _train(ref_opt, ref, [[g.float() for g in step] for step in grads])
    masters = opt.master_weights()
    for p, r in zip(low, ref, strict=True):
        assert p.dtype == dtype
        assert torch.equal(masters[p], r.detach()), kind
        assert torch.equal(p.detach(), r.detach().to(dtype))  # the parameter: its master, rounded
    assert not torch.equal(masters[low[0]], low[0].detach().float())  # the master keeps what the dtype loses
    sd, ref_sd = opt.state_dict(), ref_opt.state_dict()
    assert set(sd["master_weights"]) == {"w", "b"}
    for key, value in ref_sd.items():
        if isinstance(value, torch.Tensor) and key != "master_weights":
            assert sd[key].dtype == torch.float32 and torch.equal(sd[key], value), key


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_a_checkpoint_resumes_the_masters_bit_for_bit(kind):
    cls, kwargs = OPTIMIZERS[kind]
    grads = _grads(torch.bfloat16, seed=3)
    whole = _params(torch.bfloat16)
    opt = cls(parameters=[("w", whole[0]), ("b", whole[1])], multi_precision=True, **kwargs)
    _train(opt, whole, grads)

    first = _params(torch.bfloat16)
    opt = cls(parameters=[("w", first[0]), ("b", first[1])], multi_precision=True, **kwargs)
    _train(opt, first, grads[:2])
    saved = copy.deepcopy(opt.state_dict())
    resumed = [torch.nn.Parameter(p.detach().clone()) for p in first]
    opt = cls(parameters=[("w", resumed[0]), ("b", resumed[1])], multi_precision=True, **kwargs)
    report = opt.set_state_dict(saved)
    assert not (report.missing or report.unexpected or report.mismatched)
    _train(opt, resumed, grads[2:])
    for p, q in zip(resumed, whole, strict=True):
        assert torch.equal(p, q), kind


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_multi_precision_leaves_float32_parameters_alone(kind):
    cls, kwargs = OPTIMIZERS[kind]
    a, b = _params(torch.float32), _params(torch.float32)
    grads = _grads(torch.float32)
    opt_a = cls(parameters=a, multi_precision=True, **kwargs)
    _train(opt_a, a, grads)
    _train(cls(parameters=b, **kwargs), b, grads)
    assert opt_a.master_weights() == {}
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_nonfinite_skip_changes_nothing_and_raise_names_the_parameter(kind):
    cls, kwargs = OPTIMIZERS[kind]
    grads = _grads(torch.float16)
    params = _params(torch.float16)
    opt = cls(parameters=[("w", params[0]), ("b", params[1])], multi_precision=True, nonfinite="skip", **kwargs)
    _train(opt, params, grads[:2])
    before = copy.deepcopy(opt.state_dict()), [p.detach().clone() for p in params]
    bad = [grads[2][0].clone(), grads[2][1]]
    bad[0][1, 2] = float("inf")
    _train(opt, params, [bad])
    assert opt.skipped_steps == 1
    assert all(torch.equal(p, q) for p, q in zip(params, before[1], strict=True))
    after = opt.state_dict()
    for key, value in before[0].items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(after[key], value), key
    assert all(torch.equal(after["master_weights"][n], before[0]["master_weights"][n]) for n in ("w", "b"))

    opt = cls(parameters=[("w", params[0]), ("b", params[1])], multi_precision=True, nonfinite="raise", **kwargs)
    kept = [p.detach().clone() for p in params]
    with pytest.raises(FloatingPointError, match=r"'w' \(1 of 12 elements\)"):
        _train(opt, params, [bad])
    assert all(torch.equal(p, q) for p, q in zip(params, kept, strict=True))


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"multi_precision": 1}, TypeError, r"multi_precision must be True or False, got 1"),
        ({"nonfinite": "ignore"}, ValueError, r"nonfinite must be one of .*'propagate'.*got 'ignore'"),
    ],
)
def test_bad_precision_options_name_the_argument(kind, kwargs, error, match):
    cls, base = OPTIMIZERS[kind]
    with pytest.raises(error, match=match):
        cls(parameters=[torch.nn.Parameter(torch.zeros(2))], **base, **kwargs)


def _scaler_run(kind, scaled, overflow_step):
    """Five steps of float16 parameters with master weights, the loss ``sum(p * c)`` (so each
    gradient is ``c``, a float16 value), through ``torch.amp.GradScaler`` or without it; the
    loss of ``overflow_step`` is inf (without the scaler that step is left out)."""
    cls, kwargs = OPTIMIZERS[kind]
    params = _params(torch.float16)
    opt = cls(parameters=[("w", params[0]), ("b", params[1])], multi_precision=True, **kwargs)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8) if scaled else None
    for i, step in enumerate(_grads(torch.float16, seed=5)):
        opt.clear_grad()
        loss = sum((p.float() * c.float()).sum() for p, c in zip(params, step, strict=True))
        if i == overflow_step:
            loss = loss * float("inf")
        if scaler is None:
            loss.backward()
            if i != overflow_step:
                opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    return params, opt, scaler


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_grad_scaler_with_master_weights_equals_the_unscaled_run(kind):
    """The optimizer takes the scale from ``scaler.step`` (``_step_supports_amp_scaling``) and
    unscales the float16 gradients into float32 (exact: the scale is a power of two); the
    overflowed step is skipped and counted."""
    ref, ref_opt, _ = _scaler_run(kind, scaled=False, overflow_step=2)
    got, opt, scaler = _scaler_run(kind, scaled=True, overflow_step=2)
    assert opt.skipped_steps == 1 and scaler.get_scale() == 2.0**8 * 0.5
    masters, ref_masters = opt.master_weights(), ref_opt.master_weights()
    for p, r in zip(got, ref, strict=True):
        assert torch.equal(p, r), kind
        assert torch.equal(masters[p], ref_masters[r]), kind


SPARSE = {
    **{kind: OPTIMIZERS[kind] for kind in OPTIMIZERS},
    "adam_lazy": (O.Adam, {"learning_rate": 0.01, "lazy_mode": True}),
    "adamw_lazy": (O.AdamW, {"learning_rate": 0.01, "weight_decay": 0.1, "lazy_mode": True}),
    "rmsprop_lazy": (O.RMSProp, {"learning_rate": 0.01, "lazy_mode": True}),
}


@pytest.mark.parametrize("kind", list(SPARSE))
def test_row_sparse_gradients_update_the_master_as_the_float32_run(kind):
    """An Embedding(is_sparse=True)-style gradient (COO rows, a duplicate row) of a
    bfloat16 parameter: widened to float32 and applied to the master (every row, or the
    rows present in lazy mode) exactly as the float32 run applies it."""
    cls, kwargs = SPARSE[kind]
    gen = torch.Generator().manual_seed(11)
    low = torch.nn.Parameter(torch.randn(10, 4, generator=gen).to(torch.bfloat16))
    ref = torch.nn.Parameter(low.detach().float())
    opt = cls(parameters=[("emb", low)], multi_precision=True, **kwargs)
    ref_opt = cls(parameters=[("emb", ref)], **kwargs)
    for _ in range(3):
        rows = torch.tensor([[1, 3, 3, 7]])
        values = torch.randn(4, 4, generator=gen).to(torch.bfloat16)
        low.grad = torch.sparse_coo_tensor(rows, values, (10, 4))
        ref.grad = torch.sparse_coo_tensor(rows, values.float(), (10, 4))
        opt.step()
        ref_opt.step()
    assert torch.equal(opt.master_weights()[low], ref.detach())
    assert torch.equal(low.detach(), ref.detach().to(torch.bfloat16))


@pytest.mark.parametrize("kind", ["adam", "adamw", "sgd", "momentum", "adagrad", "rmsprop"])
def test_grad_scaler_on_the_fused_kernels_equals_the_unscaled_run(kind):
    """float32 parameters on the fused CPU kernels: GradScaler unscales the gradients and skips
    the overflowed step without calling step() (as for torch.optim's optimizers); the run
    equals the unscaled one bit for bit (a power-of-two scale)."""
    cls, kwargs = OPTIMIZERS[kind]

    def run(scaled):
        params = _params(torch.float32)
        opt = cls(parameters=[("w", params[0]), ("b", params[1])], **kwargs)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8) if scaled else None
        for i, step in enumerate(_grads(torch.float32, seed=6)):
            opt.clear_grad()
            loss = sum((p * c).sum() for p, c in zip(params, step, strict=True))
            if i == 3:
                loss = loss * float("inf")
            if scaler is None:
                loss.backward()
                if i != 3:
                    opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
        return params, opt

    (ref, _), (got, opt) = run(False), run(True)
    assert opt.skipped_steps == 0 and opt._fused.flat  # the fused kernel ran; GradScaler skipped
    for p, r in zip(got, ref, strict=True):
        assert torch.equal(p, r), kind


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_a_0d_parameter_keeps_its_shape_and_moves_as_a_1_element_one(kind):
    """A scalar parameter (a learnable temperature, say) of every optimizer: the update of
    a ``[1]`` parameter with the same values, in its own shape."""
    cls, kwargs = OPTIMIZERS[kind]
    scalar, vector = torch.nn.Parameter(torch.tensor(0.75)), torch.nn.Parameter(torch.tensor([0.75]))
    opts = [cls(parameters=[("t", q)], **kwargs) for q in (scalar, vector)]
    for step in range(3):
        scalar.grad, vector.grad = torch.tensor(0.5 - step), torch.tensor([0.5 - step])
        for opt in opts:
            opt.step()
    assert scalar.shape == () and torch.equal(scalar.detach().reshape(1), vector.detach()), kind
    assert scalar.item() != 0.75
