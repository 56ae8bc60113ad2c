"""Executor: feeds, fetches, pruning, plan cache, scopes and error messages."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import layers as L
from torchfluid.static import FeedError, OpRunError


@pytest.fixture()
def trained():
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = fluid.data("x", [None, 13])  # fluid.data: the executor checks the feeds
        y = fluid.data("y", [None, 1])
        pred = L.fc(x, 1)
        loss = L.mean(L.square_error_cost(pred, y))
        ops_pg = fluid.optimizer.RMSProp(0.1).minimize(loss)
    scope, exe = fluid.Scope(), fluid.Executor(fluid.static.scope.place_device(None))
    exe.run(start, scope=scope)
    return main, scope, exe, loss, pred, ops_pg


def snapshot(scope):
    return {n: np.array(scope.find_var(n).get_tensor()) for n in scope.local_var_names()}


GOOD = {"x": np.ones((4, 13), "float32"), "y": np.ones((4, 1), "float32")}
BAD_FEEDS = [
    ({**GOOD, "z": np.ones((4, 1), "float32")}, "feed 'z': no variable of that name.*data variables are: x, y"),
    ({"x": GOOD["x"]}, "data variable 'y' is needed .* not fed"),
    ({**GOOD, "y": np.ones((4, 1), "float64")}, "fed variable 'y' must be 'float32', but received 'float64'"),
    (
        {**GOOD, "x": np.ones((4, 12), "float32")},
        "variable 'x' should have shape \\[-1, 13\\].*received shape \\[4, 12\\]",
    ),
    ({**GOOD, "x": np.ones((13,), "float32")}, "variable 'x' should have shape"),
    ({**GOOD, "y": np.ones((4, 1), "int64")}, "fed variable 'y' must be 'float32', but received 'int64'"),
]


@pytest.mark.parametrize("feed,message", BAD_FEEDS)
def test_bad_feeds_raise_naming_the_variable_and_leave_scope_unchanged(trained, feed, message):
    main, scope, exe, loss, *_ = trained
    before = snapshot(scope)
    with pytest.raises(FeedError, match=message):
        exe.run(main, feed=feed, fetch_list=[loss], scope=scope)
    after = snapshot(scope)
    assert before.keys() == after.keys()
    for n in before:
        np.testing.assert_array_equal(before[n], after[n])


def test_feed_accepts_lists_and_tensors(trained):
    main, scope, exe, loss, *_ = trained
    (a,) = exe.run(
        main.clone(for_test=True), feed={"x": GOOD["x"].tolist(), "y": torch.ones(4, 1)}, fetch_list=[loss], scope=scope
    )
    (b,) = exe.run(main.clone(for_test=True), feed=GOOD, fetch_list=[loss], scope=scope)
    assert a == b


def test_fetch_by_name_variable_and_return_numpy_false(trained):
    main, scope, exe, loss, pred, _ = trained
    a, b, c = exe.run(main, feed=GOOD, fetch_list=[loss, pred.name, "fc_0.w_0"], scope=scope)
    assert a.shape == (1,) and b.shape == (4, 1) and c.shape == (13, 1)
    (t,) = exe.run(main, feed=GOOD, fetch_list=[loss], scope=scope, return_numpy=False)
    assert np.array(t).shape == (1,) and t.shape() == [1]
    with pytest.raises(ValueError, match="fetch_list: variable 'nope'"):
        exe.run(main, feed=GOOD, fetch_list=["nope"], scope=scope)


def test_fetched_persistables_are_copies(trained):
    main, scope, exe, loss, *_ = trained
    (w,) = exe.run(main, feed=GOOD, fetch_list=["fc_0.w_0"], scope=scope)
    w_copy = w.copy()
    exe.run(main, feed=GOOD, fetch_list=[loss], scope=scope)
    np.testing.assert_array_equal(w, w_copy)


def test_pruning_through_the_minimize_tuple(trained):
    main, scope, exe, loss, pred, ops_pg = trained
    with fluid.program_guard(main):
        # a branch the optimizer does not need; it would fail if it ran (unfed data var)
        L.mean(L.data("unused", [3]))
    before = np.array(scope.find_var("fc_0.w_0").get_tensor())
    out = exe.run(main, feed=GOOD, fetch_list=[ops_pg], scope=scope)
    assert out == []
    assert not np.array_equal(before, np.array(scope.find_var("fc_0.w_0").get_tensor()))
    with pytest.raises(FeedError, match="'unused'"):
        exe.run(main, feed=GOOD, fetch_list=[loss], scope=scope)  # no pruning: everything runs
    plan = next(p for p in main._plan_cache.values() if p.fetch_names == ())
    assert "mean" in [o.type for o in plan.ops] and len(plan.ops) < len(main.global_block().ops)


def test_plan_is_cached_per_program_version(trained):
    main, scope, exe, loss, *_ = trained
    exe.run(main, feed=GOOD, fetch_list=[loss], scope=scope)
    n = len(main._plan_cache)
    exe.run(main, feed=GOOD, fetch_list=[loss], scope=scope)
    assert len(main._plan_cache) == n
    with fluid.program_guard(main):
        L.scale(loss, 2.0)
    exe.run(main, feed=GOOD, fetch_list=[loss], scope=scope)
    assert len(main._plan_cache) == n + 1


def test_runtime_error_names_op_inputs_and_user_line():
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        ids = L.data("ids", [1], dtype="int64")
        emb = L.embedding(ids, size=[5, 2])  # ids out of range at run time
    scope, exe = fluid.Scope(), fluid.Executor()
    exe.run(start, scope=scope)
    with pytest.raises(
        OpRunError,
        match=r"op lookup_table \(built at .*test_static_executor.py:\d+ .*"
        r"L.embedding.*Ids=ids: int64\[2, 1\]",
    ):
        exe.run(main, feed={"ids": np.array([[1], [9]], "int64")}, fetch_list=[emb], scope=scope)


def test_missing_startup_run_is_reported(trained):
    main, _, exe, loss, *_ = trained
    with pytest.raises(RuntimeError, match="'fc_0.w_0' is read by this program but holds no value"):
        exe.run(main, feed=GOOD, fetch_list=[loss], scope=fluid.Scope())


def test_scope_api_and_global_scope_guard(trained):
    main, scope, exe, loss, *_ = trained
    t = scope.find_var("fc_0.w_0").get_tensor()
    t.set(np.full((13, 1), 0.5, "float32"), None)
    np.testing.assert_array_equal(np.array(t), np.full((13, 1), 0.5, "float32"))
    assert scope.find_var("nope") is None
    with fluid.scope_guard(scope):
        assert fluid.global_scope() is scope
        (p,) = exe.run(main.clone(for_test=True), feed=GOOD, fetch_list=["fc_0.tmp_1"])
    np.testing.assert_allclose(p, np.full((4, 1), 6.5, "float32"))
    assert fluid.global_scope() is not scope


def test_data_feeder_batch_and_errors():
    with fluid.program_guard(fluid.Program()):
        x = L.data("x", [3])
        y = L.data("y", [1], dtype="int64")
    feeder = fluid.DataFeeder(feed_list=[x, y], place=None)
    reader = fluid.batch(lambda: iter([(np.arange(3), [i]) for i in range(5)]), batch_size=2)
    batches = [feeder.feed(b) for b in reader()]
    assert [b["x"].shape for b in batches] == [(2, 3), (2, 3), (1, 3)]
    assert batches[0]["y"].dtype == np.int64 and batches[0]["x"].dtype == np.float32
    assert len(list(fluid.batch(lambda: iter(range(5)), 2, drop_last=True)())) == 2
    with pytest.raises(ValueError, match="sample 0 has 1 fields but feed_list has 2"):
        feeder.feed([(np.arange(3),)])
    with pytest.raises(ValueError, match="batch_size should be a positive integer, but got batch_size=0"):
        fluid.batch(lambda: iter(()), 0)


def _ptb_style_program(declare):
    """ids -> embedding -> fc -> softmax_with_cross_entropy, one RMSProp step; ``declare``
    makes the two data variables."""
    main, start = fluid.Program(), fluid.Program()
    main.random_seed = start.random_seed = 7
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        ids, label = declare()
        emb = L.embedding(ids, size=[10, 4])
        logits = L.fc(L.reshape(emb, [-1, 4]), 5)
        loss = L.mean(L.softmax_with_cross_entropy(logits, label))
        fluid.optimizer.RMSProp(0.1).minimize(loss)
    scope, exe = fluid.Scope(), fluid.Executor(fluid.static.scope.place_device(None))
    exe.run(start, scope=scope)
    return main, scope, exe, loss


def test_layers_data_takes_the_fed_value_as_it_is_as_paddle():
    """Paddle's classic programs declare ``[-1, T]`` ids and feed ``[N, T, 1]``, and declare
    float32 labels and feed int64: a ``fluid.layers.data`` variable runs on what is fed, with
    the numbers of a program whose declarations match the feed."""
    ids = (np.arange(12) % 10).reshape(4, 3, 1).astype("int64")
    label = (np.arange(12) % 5).reshape(12, 1).astype("int64")
    lax = _ptb_style_program(lambda: (L.data("ids", [-1, 3], dtype="int64"), L.data("label", [-1, 1])))
    exact = _ptb_style_program(
        lambda: (fluid.data("ids", [None, 3, 1], "int64"), fluid.data("label", [None, 1], "int64"))
    )
    results = []
    for main, scope, exe, loss in (lax, exact):
        losses = [exe.run(main, feed={"ids": ids, "label": label}, fetch_list=[loss], scope=scope)[0] for _ in range(3)]
        results.append((losses, snapshot(scope)))
    (lax_losses, lax_state), (exact_losses, exact_state) = results
    np.testing.assert_array_equal(lax_losses, exact_losses)
    assert lax_state.keys() == exact_state.keys()
    for n in lax_state:
        np.testing.assert_array_equal(lax_state[n], exact_state[n])
    main, scope, exe, loss = exact  # fluid.data checks the same feed against its declaration
    with pytest.raises(FeedError, match=r"fed variable 'ids' should have shape \[-1, 3, 1\]"):
        exe.run(main, feed={"ids": ids[:, :, 0], "label": label}, fetch_list=[loss], scope=scope)


def test_layers_data_value_an_op_cannot_take_raises_naming_the_op():
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = L.data("x", [13])
        loss = L.mean(L.fc(x, 1))
        fluid.optimizer.RMSProp(0.1).minimize(loss)
    scope, exe = fluid.Scope(), fluid.Executor(fluid.static.scope.place_device(None))
    exe.run(start, scope=scope)
    before = snapshot(scope)
    for bad in (np.ones((4, 12), "float32"), np.ones((4, 13), "float64")):
        with pytest.raises(OpRunError, match=r"op mul"):
            exe.run(main, feed={"x": bad}, fetch_list=[loss], scope=scope)
    after = snapshot(scope)
    assert before.keys() == after.keys() and all(np.array_equal(before[n], after[n]) for n in before)
