"""Adam's ``lazy_mode`` on row-sparse gradients (Paddle's ``adam`` op for SelectedRows):
lazy updates only the rows present; the exact mode (default) updates every row as if
absent rows had gradient 0; a gradient with no rows changes nothing. Checked against a
numpy re-implementation of Paddle's formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torchfluid as fluid

LR, B1, B2, EPS = 0.01, 0.9, 0.999, 1e-8


def _numpy_adam(p, g, m1, m2, b1p, b2p):
    """One step of Paddle's Adam on float64 arrays (attributes rounded to float32, as Paddle's)."""
    b1, b2, eps = (float(np.float32(v)) for v in (B1, B2, EPS))
    m1 = b1 * m1 + (1 - b1) * g
    m2 = b2 * m2 + (1 - b2) * g * g
    lr_t = LR * np.sqrt(1 - b2p) / (1 - b1p)
    p = p - lr_t * (m1 / (np.sqrt(m2) + eps * np.sqrt(1 - b2p)))
    return p, m1, m2, b1p * b1, b2p * b2


def _sparse(rows, values, n):
    return torch.sparse_coo_tensor(torch.tensor([rows]), torch.tensor(values), (n, values.shape[1]))


ROWS = [[2, 0, 2], [4], [1, 3, 3, 1]]  # duplicates are summed first


@pytest.mark.parametrize("lazy", [True, False])
def test_sparse_adam_modes_match_paddle(lazy):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(6, 3))
    w = torch.nn.Parameter(torch.tensor(p0))
    opt = fluid.optimizer.Adam(learning_rate=LR, parameters=[("w", w)], lazy_mode=lazy)
    p, m1, m2 = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    b1p, b2p = B1, B2
    for rows in ROWS:
        values = rng.normal(size=(len(rows), 3))
        w.grad = _sparse(rows, values, 6)
        opt.step()
        dense = np.zeros_like(p0)
        np.add.at(dense, rows, values)
        present = sorted(set(rows)) if lazy else list(range(6))
        new = _numpy_adam(p[present], dense[present], m1[present], m2[present], b1p, b2p)
        p[present], m1[present], m2[present] = new[:3]
        b1p, b2p = new[3:]
    sd = opt.state_dict()
    np.testing.assert_allclose(w.detach().numpy(), p, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sd["w_moment1_0"].numpy(), m1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sd["w_moment2_0"].numpy(), m2, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sd["w_beta1_pow_acc_0"].numpy(), [b1p], rtol=1e-15)
    if lazy:
        assert np.array_equal(w.detach().numpy()[5], p0[5])  # row 5 never had a gradient


@pytest.mark.parametrize("lazy", [True, False])
def test_a_sparse_gradient_without_rows_changes_nothing(lazy):
    w = torch.nn.Parameter(torch.ones(4, 2, dtype=torch.float64))
    opt = fluid.optimizer.Adam(learning_rate=LR, parameters=[("w", w)], lazy_mode=lazy)
    w.grad = _sparse([1], np.ones((1, 2)), 4)
    opt.step()
    before = {k: v.clone() for k, v in opt.state_dict().items() if torch.is_tensor(v)}
    p_before = w.detach().clone()
    w.grad = torch.sparse_coo_tensor(
        torch.zeros((1, 0), dtype=torch.int64), torch.zeros((0, 2), dtype=torch.float64), (4, 2)
    )
    opt.step()
    assert torch.equal(w.detach(), p_before)
    for k, v in before.items():
        assert torch.equal(opt.state_dict()[k], v), k


def test_dense_gradients_ignore_lazy_mode():
    out = []
    for lazy in (True, False):
        w = torch.nn.Parameter(torch.linspace(-1, 1, 6, dtype=torch.float64).reshape(3, 2))
        opt = fluid.optimizer.Adam(learning_rate=LR, parameters=[("w", w)], lazy_mode=lazy)
        for k in range(3):
            w.grad = torch.full_like(w, 0.1 * (k + 1))
            opt.step()
        out.append(w.detach().clone())
    assert torch.equal(out[0], out[1])


def test_lazy_mode_is_checked_and_positional_as_in_fluid():
    w = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(TypeError, match="lazy_mode must be True or False, got 1"):
        fluid.optimizer.Adam(learning_rate=0.1, parameters=[w], lazy_mode=1)
    opt = fluid.optimizer.AdamOptimizer(0.1, 0.9, 0.999, 1e-8, [w], None, None, None, True)
    assert opt.lazy_mode is True
