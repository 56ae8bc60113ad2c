"""fluid.set_flags / get_flags (FLAGS_retain_grad_for_all_tensor kept intermediate gradients,
FLAGS_sort_sum_gradient recorded), the refused inputs (none half-applied), a cleared row-sparse
gradient reading as None (Paddle's cleared SelectedRows), and clipping a sparse gradient without
torch's invariant-check warning. References: torch.autograd.grad of the same expression."""

import warnings

import numpy as np
import pytest
import torch

import torchfluid as fluid

FLAGS = ("FLAGS_retain_grad_for_all_tensor", "FLAGS_sort_sum_gradient")


@pytest.fixture(autouse=True)
def _restore_flags():
    before = fluid.get_flags(list(FLAGS))
    yield
    fluid.set_flags(before)


def test_defaults_and_round_trip():
    assert fluid.get_flags(list(FLAGS)) == dict.fromkeys(FLAGS, False)
    fluid.set_flags({"FLAGS_sort_sum_gradient": True})
    assert fluid.get_flags("FLAGS_sort_sum_gradient") == {"FLAGS_sort_sum_gradient": True}
    assert fluid.get_flags(("FLAGS_retain_grad_for_all_tensor",)) == {"FLAGS_retain_grad_for_all_tensor": False}
    assert fluid.framework.set_flags is fluid.set_flags and fluid.framework.get_flags is fluid.get_flags


BAD_SET = [
    ([("FLAGS_sort_sum_gradient", True)], TypeError, "flags must be a dict of flag name -> value, got list"),
    ({"FLAGS_sort_sum_gradient": True, "FLAGS_check_nan_inf": True}, ValueError, "unknown flag 'FLAGS_check_nan_inf'"),
    ({"FLAGS_sort_sum_gradient": True, "FLAGS_retain_grad_for_all_tensor": 1}, TypeError, "must be a bool, got 1"),
]


@pytest.mark.parametrize("flags,exc,msg", BAD_SET, ids=["not-dict", "unknown", "not-bool"])
def test_bad_set_flags_changes_nothing(flags, exc, msg):
    before = fluid.get_flags(list(FLAGS))
    with pytest.raises(exc, match=msg):
        fluid.set_flags(flags)
    assert fluid.get_flags(list(FLAGS)) == before


@pytest.mark.parametrize(
    "arg,exc,msg",
    [("FLAGS_nope", ValueError, "unknown flag 'FLAGS_nope'"), (3, TypeError, "a flag name or a list/tuple")],
)
def test_bad_get_flags(arg, exc, msg):
    with pytest.raises(exc, match=msg):
        fluid.get_flags(arg)


def _torch_reference(x, w, b):
    """d loss / d (h, a, a[:, :2]) of the same expression in plain torch (no Variables, no flag)."""
    h = (torch.as_tensor(x) @ torch.as_tensor(w) + torch.as_tensor(b)).requires_grad_()
    a = torch.tanh(h)
    p0, p1 = a[:, :2], a[:, 2:]
    loss = (p0 * p0).sum() + p1.mean()
    return [g.numpy() for g in torch.autograd.grad(loss, [h, a, p0])]


def _model_grads(retain):
    """(gradient() of three intermediate Variables after backward, the torch references, the weight's)."""
    fluid.set_flags({"FLAGS_retain_grad_for_all_tensor": retain})
    with fluid.dygraph.guard():
        lin = fluid.dygraph.Linear(3, 4)
        x_np = np.arange(6, dtype="float32").reshape(2, 3) / 5
        h = lin(fluid.dygraph.to_variable(x_np))
        a = fluid.layers.tanh(h)
        parts = fluid.layers.split(a, 2, dim=1)
        loss = fluid.layers.reduce_sum(parts[0] * parts[0]) + fluid.layers.reduce_mean(parts[1])
        loss.backward()
        refs = _torch_reference(x_np, lin.weight.numpy(), lin.bias.numpy())
        return [h.gradient(), a.gradient(), parts[0].gradient()], refs, lin.weight.gradient()


def test_retain_grad_for_all_tensor_keeps_intermediate_gradients():
    got, refs, wgrad = _model_grads(retain=True)
    for g, r in zip(got, refs, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-6)
    assert wgrad is not None


def test_without_the_flag_only_leaves_keep_gradients():
    got, _, wgrad = _model_grads(retain=False)
    assert got == [None, None, None] and wgrad is not None


def test_flag_applies_to_variables_made_while_it_is_on():
    with fluid.dygraph.guard():
        x = fluid.dygraph.to_variable(np.ones((2, 2), "float32"))
        x.stop_gradient = False
        before = x * 3.0
        fluid.set_flags({"FLAGS_retain_grad_for_all_tensor": True})
        after = before * before
        fluid.layers.reduce_sum(after).backward()
        assert before.gradient() is None
        np.testing.assert_array_equal(after.gradient(), np.ones((2, 2), "float32"))


def test_cleared_sparse_gradient_reads_none_and_accumulates_again():
    with fluid.dygraph.guard():
        emb = fluid.dygraph.Embedding([6, 2], is_sparse=True)
        ids = fluid.dygraph.to_variable(np.array([[4], [1], [4]]))
        fluid.layers.reduce_sum(emb(ids)).backward()
        values, rows = emb.weight.gradient()
        assert rows.tolist() == [4, 1, 4] and emb.weight._grad_ivar() is not None
        emb.clear_gradients()
        assert emb.weight.gradient() is None and emb.weight._grad_ivar() is None
        fluid.layers.reduce_sum(emb(ids) * 2.0).backward()
        values, rows = emb.weight.gradient()
        assert sorted(rows.tolist()) == [1, 4, 4] and (values == 2.0).all()


@pytest.mark.parametrize(
    "clip",
    [fluid.clip.GradientClipByGlobalNorm(0.5), fluid.clip.GradientClipByNorm(0.5), fluid.clip.GradientClipByValue(0.1)],
    ids=["global-norm", "norm", "value"],
)
def test_clipping_a_sparse_gradient_warns_nothing(clip):
    with fluid.dygraph.guard():
        emb = fluid.dygraph.Embedding([5, 3], is_sparse=True)
        before = emb.weight.numpy()
        opt = fluid.optimizer.SGD(0.5, parameter_list=emb.parameters(), grad_clip=clip)
        out = emb(fluid.dygraph.to_variable(np.array([[1], [3], [1]])))
        fluid.layers.reduce_sum(out).backward()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            opt.minimize(out)
        moved = np.abs(emb.weight.numpy() - before).sum(axis=1)
        assert moved[[0, 2, 4]].tolist() == [0.0, 0.0, 0.0] and (moved[[1, 3]] > 0).all()
