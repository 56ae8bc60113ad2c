"""append_backward: gradients of whole programs against torch.autograd, fan-in, stop
gradients, no_grad_set, callbacks and the non-scalar loss error."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import layers as L
from torchfluid.static import append_backward

RNG = np.random.default_rng(3)


def run_grads(build, feed, names):
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        loss = build()
        pg = append_backward(loss)
    scope, exe = fluid.Scope(), fluid.Executor()
    exe.run(start, scope=scope)
    params = {p.name: np.array(scope.find_var(p.name).get_tensor()) for p, _ in pg}
    outs = exe.run(main, feed=feed, fetch_list=[loss] + [g for _, g in pg] + names, scope=scope)
    return pg, params, outs


def test_mlp_with_softmax_ce_matches_autograd():
    x = RNG.normal(size=(6, 5)).astype("float32")
    lbl = RNG.integers(0, 3, size=(6, 1)).astype("int64")

    def build():
        h = L.fc(L.data("x", [5]), 4, act="relu")
        h2 = L.fc(h, 4, act="tanh")
        logits = L.fc([h, h2], 3)  # two inputs: fan-in on h
        return L.mean(L.softmax_with_cross_entropy(logits, L.data("lbl", [1], dtype="int64")))

    pg, params, outs = run_grads(build, {"x": x, "lbl": lbl}, [])
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    h = torch.relu(torch.from_numpy(x) @ t["fc_0.w_0"] + t["fc_0.b_0"])
    h2 = torch.tanh(h @ t["fc_1.w_0"] + t["fc_1.b_0"])
    logits = h @ t["fc_2.w_0"] + h2 @ t["fc_2.w_1"] + t["fc_2.b_0"]
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(lbl[:, 0]))
    loss.backward()
    assert [p.name for p, _ in pg] == [
        "fc_0.w_0",
        "fc_0.b_0",
        "fc_1.w_0",
        "fc_1.b_0",
        "fc_2.w_0",
        "fc_2.w_1",
        "fc_2.b_0",
    ]
    np.testing.assert_allclose(outs[0], [loss.item()], rtol=1e-6)
    for (p, g), got in zip(pg, outs[1:], strict=False):
        assert g.name == p.name + "@GRAD"
        np.testing.assert_allclose(got, t[p.name].grad.numpy(), rtol=1e-5, atol=1e-6)


def test_fan_in_is_summed_by_a_sum_op():
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        w = L.create_parameter([3], "float32", name="w")
        loss = L.reduce_sum(L.elementwise_mul(w, w) + L.sigmoid(w))
        pg = append_backward(loss)
    types = [o.type for o in main.global_block().ops]
    assert "sum" in types
    sum_op = [o for o in main.global_block().ops if o.type == "sum"][-1]
    assert sum_op.output("Out") == ["w@GRAD"]
    assert all("@RENAME@" in n for n in sum_op.input("X")) and len(sum_op.input("X")) == 3
    scope, exe = fluid.Scope(), fluid.Executor()
    scope.var("w").get_tensor().set(np.array([0.5, -1.0, 2.0], "float32"), None)
    (g,) = exe.run(main, fetch_list=[pg[0][1]], scope=scope)
    wt = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    (wt * wt + torch.sigmoid(wt)).sum().backward()
    np.testing.assert_allclose(g, wt.grad.numpy(), rtol=1e-6)


def test_fan_in_on_a_fed_variable_is_summed_too():
    # x is no parameter: nothing asks for its gradient after the walk, yet x@GRAD must hold the sum
    x_np = np.array([[0.5, -1.0, 2.0]], "float32")
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()):
        x = fluid.data("x", [-1, 3], "float32")
        x.stop_gradient = False
        append_backward(L.reduce_sum(L.elementwise_mul(x, x) + L.tanh(x)))
    assert [o.output("Out") for o in main.global_block().ops if o.type == "sum"] == [["x@GRAD"]]
    (g,) = fluid.Executor().run(main, feed={"x": x_np}, fetch_list=["x@GRAD"], scope=fluid.Scope())
    xt = torch.tensor(x_np, requires_grad=True)
    (xt * xt + torch.tanh(xt)).sum().backward()
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-6)


def test_stop_gradient_no_grad_set_and_callbacks():
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        x = L.data("x", [4])
        h = L.fc(x, 3)
        loss = L.mean(L.fc(h, 1))
        seen = []
        pg = append_backward(
            loss, no_grad_set={"fc_1.b_0"}, callbacks=[lambda block, context: seen.append(len(context))]
        )
    names = [p.name for p, _ in pg]
    assert names == ["fc_0.w_0", "fc_0.b_0", "fc_1.w_0"]
    assert "x@GRAD" not in main.global_block().vars
    assert seen and seen == sorted(seen)
    with fluid.program_guard(main):
        pg2 = append_backward(loss, parameter_list=["fc_1.w_0"])
    assert [p.name for p, _ in pg2] == ["fc_1.w_0"]


def test_non_trainable_parameter_gets_no_gradient():
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()), fluid.unique_name.guard():
        x = L.data("x", [4])
        loss = L.mean(L.fc(x, 1, param_attr=_frozen()))
        pg = append_backward(loss)
    assert [p.name for p, _ in pg] == ["fc_0.b_0"]


def _frozen():
    return fluid.ParamAttr(trainable=False)


@pytest.mark.parametrize("shape", [[4], [2, 4]])
def test_non_scalar_loss_is_a_clear_error(shape):
    with fluid.program_guard(fluid.Program(), fluid.Program()), fluid.unique_name.guard():
        x = L.data("x", shape, append_batch_size=False)
        cost = L.fc(x, 1) if len(shape) == 2 else L.scale(x, 2.0)
        with pytest.raises(
            ValueError,
            match=r"loss '.*' must hold exactly one element \(shape \[1\]\), but its "
            r"shape is \[\d, 1\]|shape is \[4\].*fluid.layers.mean",
        ):
            append_backward(cost)
    with fluid.program_guard(fluid.Program(), fluid.Program()):
        with pytest.raises(ValueError, match=r"shape is \[-1, 1\]"):
            append_backward(L.square_error_cost(L.data("a", [1]), L.data("b", [1])))
    with pytest.raises(TypeError, match="loss must be a static Variable"):
        append_backward(torch.ones(1))
