"""Paddle 3's ``amsgrad=True`` for Adam and AdamW: the running maximum of the second moment
(``<param>_moment2_max_0``) in the denominator.

References: a numpy transcription of Paddle's CPU ``AdamFunctor`` with ``amsgrad``
(``phi/kernels/funcs/adam_functors.h``), float64; ``torch.optim.Adam(amsgrad=True)`` /
``AdamW(amsgrad=True)``, which is the same maths with eps placed differently (equal to
rounding); and the shared table's three modes (tests/optim_configs.py)."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import optimizer as O
from torchfluid.kernels import adam_

STEPS = 6
# float32-exact hyper-parameters: Paddle's beta1/beta2/epsilon/coeff are float32 attributes
# (a float64 update uses their float32 values), torch's are Python floats
B1, B2, EPS, COEFF = 0.875, 0.9921875, 2.0**-20, 0.125


def _paddle_amsgrad(p, grads, lr, beta1, beta2, eps, coeff=0.0):
    """Paddle's CPU functor, step by step (the powers start at beta and advance after)."""
    p = p.copy()
    m1, m2, m2_max = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    b1p, b2p = beta1, beta2
    for g in grads:
        p = p * (1 - lr * coeff)  # AdamW's decoupled decay (coeff 0: Adam)
        lr_t = lr * np.sqrt(1 - b2p) / (1 - b1p)
        m1 = beta1 * m1 + (1 - beta1) * g
        m2 = beta2 * m2 + (1 - beta2) * g * g
        m2_max = np.maximum(m2, m2_max)
        p = p - lr_t * (m1 / (np.sqrt(m2_max) + eps * np.sqrt(1 - b2p)))
        b1p, b2p = b1p * beta1, b2p * beta2
    return p, m2_max


def _grads(shape, seed=0):
    rng = np.random.default_rng(seed)
    # large then small gradients, so that the maximum differs from the moment
    return [rng.normal(size=shape) * (3.0 if i < 2 else 0.1) for i in range(STEPS)]


def test_the_kernel_keeps_the_running_maximum_as_paddles_functor():
    p0, grads = np.random.default_rng(1).normal(size=(5, 3)), _grads((5, 3))
    p = torch.tensor(p0)
    m1, m2, m2_max = (torch.zeros(5, 3, dtype=torch.float64) for _ in range(3))
    b1p, b2p = torch.tensor([B1], dtype=torch.float64), torch.tensor([B2], dtype=torch.float64)
    for g in grads:
        adam_(p, torch.tensor(g), m1, m2, b1p, b2p, lr=0.01, beta1=B1, beta2=B2, epsilon=EPS, moment2_max=m2_max)
    want_p, want_max = _paddle_amsgrad(p0, grads, 0.01, B1, B2, EPS)
    np.testing.assert_allclose(m2_max.numpy(), want_max, rtol=1e-12)
    assert (m2_max > m2).any()  # the maximum is not the moment itself
    np.testing.assert_allclose(p.numpy(), want_p, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (
            lambda ps: O.Adam(0.01, B1, B2, EPS, parameters=ps, amsgrad=True),
            lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(B1, B2), eps=EPS, amsgrad=True),
        ),
        (
            lambda ps: O.AdamW(0.01, B1, B2, EPS, parameters=ps, amsgrad=True, weight_decay=COEFF),
            lambda ps: torch.optim.AdamW(ps, lr=0.01, betas=(B1, B2), eps=EPS, amsgrad=True, weight_decay=COEFF),
        ),
    ],
    ids=["adam", "adamw"],
)
def test_amsgrad_trains_as_torchs(ours, theirs):
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(6, 4, dtype=torch.float64))
    b = torch.nn.Parameter(a.detach().clone())
    opt_a, opt_b = ours([a]), theirs([b])
    for g in _grads((6, 4), seed=2):
        a.grad, b.grad = torch.tensor(g), torch.tensor(g)
        opt_a.step()
        opt_b.step()
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    sd = opt_a.state_dict()
    torch.testing.assert_close(sd["param_0_moment2_max_0"], opt_b.state[b]["max_exp_avg_sq"], rtol=1e-12, atol=0)


def test_amsgrad_state_keys_are_paddles_and_a_checkpoint_resumes_bit_for_bit():
    def run(steps, saved=None):
        torch.manual_seed(0)
        w = torch.nn.Parameter(torch.randn(4, 3))
        opt = O.Adam(0.01, parameters=[("fc_0.w_0", w)], amsgrad=True)
        if saved is not None:
            w.data.copy_(saved[0])
            opt.set_state_dict(saved[1])
        for g in steps:
            w.grad = torch.tensor(g, dtype=torch.float32)
            opt.step()
        return w, opt

    grads = _grads((4, 3), seed=3)
    whole, opt = run(grads)
    assert [k for k in opt.state_dict() if k.startswith("fc_0")] == [
        "fc_0.w_0_moment1_0",
        "fc_0.w_0_moment2_0",
        "fc_0.w_0_moment2_max_0",
        "fc_0.w_0_beta1_pow_acc_0",
        "fc_0.w_0_beta2_pow_acc_0",
    ]
    half, opt = run(grads[:3])
    resumed, _ = run(grads[3:], (half.detach().clone(), opt.state_dict()))
    assert torch.equal(resumed, whole)


@pytest.mark.parametrize("cls", [O.Adam, O.AdamW])
def test_amsgrad_on_the_fused_kernel_keeps_its_maximum_in_a_flat_buffer(cls):
    """The fused kernel's AMSGrad variant: the same bits as the reference kernel, and the
    state record ``moment2_max`` is a view of the flat group's buffer."""
    runs = []
    for fused in (True, False):
        torch.manual_seed(5)
        w = torch.nn.Parameter(torch.randn(4, 3))
        opt = cls(0.01, parameters=[("w", w)], amsgrad=True, fused=fused)
        for g in _grads((4, 3), seed=6):
            w.grad = torch.tensor(g, dtype=torch.float32)
            opt.step()
        runs.append((w.detach().clone(), opt.state_dict()["w_moment2_max_0"].clone()))
        if fused:
            (fg,) = opt._fused.flat.values()
            assert opt.state[w]["moment2_max"].data_ptr() == fg.state(0)["moment2_max"].data_ptr()
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("lazy", [False, True])
def test_row_sparse_gradients_with_amsgrad(lazy):
    """Exact mode updates every row (absent rows: gradient 0, the maximum kept), lazy mode
    only the rows present: each as the dense kernel on those rows."""
    torch.manual_seed(4)
    w = torch.nn.Parameter(torch.randn(6, 2, dtype=torch.float64))
    ref = torch.nn.Parameter(w.detach().clone())
    opt = O.Adam(0.05, parameters=[w], amsgrad=True, lazy_mode=lazy)
    m1, m2, mx = (torch.zeros(6, 2, dtype=torch.float64) for _ in range(3))
    b1p, b2p = torch.tensor([0.9], dtype=torch.float64), torch.tensor([0.999], dtype=torch.float64)
    for step in range(4):
        rows = torch.tensor([[1, 4, 4]]) if step % 2 == 0 else torch.tensor([[0]])
        values = torch.randn(rows.shape[1], 2, dtype=torch.float64) * (5.0 if step == 0 else 0.1)
        w.grad = torch.sparse_coo_tensor(rows, values, (6, 2))
        opt.step()
        dense = torch.sparse_coo_tensor(rows, values, (6, 2)).to_dense()
        present = dense.abs().sum(1) > 0 if lazy else torch.ones(6, dtype=torch.bool)
        p, a, b, c = ref.data[present], m1[present], m2[present], mx[present]
        adam_(p, dense[present], a, b, b1p, b2p, lr=0.05, moment2_max=c)
        ref.data[present], m1[present], m2[present], mx[present] = p, a, b, c
    assert torch.equal(w.detach(), ref.detach())
    assert torch.equal(opt.state_dict()["param_0_moment2_max_0"], mx)


@pytest.mark.parametrize("cls", [O.Adam, O.AdamW])
def test_a_bad_amsgrad_names_the_argument(cls):
    with pytest.raises(TypeError, match="amsgrad must be True or False, got 1"):
        cls(0.01, parameters=[torch.nn.Parameter(torch.zeros(2))], amsgrad=1)


def test_use_multi_tensor_is_accepted_and_changes_nothing():
    a, b = (torch.nn.Parameter(torch.ones(3)) for _ in range(2))
    oa, ob = O.Adam(0.1, parameters=[a], use_multi_tensor=True), O.Adam(0.1, parameters=[b])
    a.grad, b.grad = torch.full((3,), 0.5), torch.full((3,), 0.5)
    oa.step()
    ob.step()
    assert torch.equal(a, b)
    with pytest.raises(TypeError, match="use_multi_tensor must be True or False"):
        O.Adam(0.1, parameters=[a], use_multi_tensor="yes")


def test_a_static_program_with_amsgrad_describes_and_trains_as_eager():
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup), fluid.unique_name.guard():
        x = fluid.data("x", [-1, 3], "float32")
        loss = fluid.layers.mean(fluid.layers.fc(x, 2))
        O.Adam(0.01, amsgrad=True).minimize(loss)
    text = main.desc.serialize_to_string()
    assert fluid.Program.parse_from_string(text).desc.serialize_to_string() == text
    assert "fc_0.w_0_moment2_max_0" in {v.name for v in main.list_vars()}
