"""The classic fluid "book" programs, trained with RMSProp in static mode on bundled data.

Each program trains to a stated quality, saves an inference model, loads it into a fresh
scope and must predict exactly what the trained program predicted (test mode). Data:
``uci_housing`` (fit_a_line), the 8x8 ``digits`` as ``[N, 1, 8, 8]`` (recognize_digits)
and the bundled public-domain text (word2vec); nothing is downloaded.
"""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid.dataset import bundled, text_corpus, uci_housing


@pytest.fixture
def fresh():
    """New main/startup programs, scope and names; seeded torch RNG."""
    torch.manual_seed(0)
    main, startup, scope = fluid.Program(), fluid.Program(), fluid.Scope()
    with fluid.scope_guard(scope), fluid.program_guard(main, startup), fluid.unique_name.guard():
        yield main, startup


def _exe():
    return fluid.Executor(fluid.CPUPlace())


def _reload_and_predict(dirname, feed, model_filename=None, params_filename=None):
    exe = _exe()
    with fluid.scope_guard(fluid.Scope()):
        program, feed_names, fetch_targets = fluid.io.load_inference_model(
            dirname, exe, model_filename=model_filename, params_filename=params_filename
        )
        out = exe.run(program, feed={n: feed[n] for n in feed_names}, fetch_list=fetch_targets)
    return feed_names, out


# ---------------------------------------------------------------- fit_a_line


def test_fit_a_line(fresh, tmp_path):
    main, startup = fresh
    x = fluid.layers.data(name="x", shape=[13], dtype="float32")
    y = fluid.layers.data(name="y", shape=[1], dtype="float32")
    y_predict = fluid.layers.fc(input=x, size=1, act=None)
    avg_cost = fluid.layers.mean(fluid.layers.square_error_cost(input=y_predict, label=y))
    test_program = main.clone(for_test=True)
    fluid.optimizer.RMSPropOptimizer(learning_rate=0.1).minimize(avg_cost)
    exe = _exe()
    exe.run(startup)
    feeder = fluid.DataFeeder(place=fluid.CPUPlace(), feed_list=[x, y])
    reader = fluid.batch(uci_housing.train(), batch_size=20)
    for _ in range(50):
        for data in reader():
            exe.run(main, feed=feeder.feed(data), fetch_list=[avg_cost])
    test_rows = list(uci_housing.test()())
    tx = np.array([r[0] for r in test_rows], dtype="float32")
    ty = np.array([r[1] for r in test_rows], dtype="float32").reshape(-1, 1)
    (test_mse,) = exe.run(test_program, feed={"x": tx, "y": ty}, fetch_list=[avg_cost])
    # stated quality: test MSE < 45 (predicting the training mean gives 93.3, least squares 32.8)
    assert test_mse[0] < 45.0, test_mse
    (pred,) = exe.run(test_program, feed={"x": tx, "y": ty}, fetch_list=[y_predict])
    fluid.io.save_inference_model(str(tmp_path), ["x"], [y_predict], exe)
    names, (reloaded,) = _reload_and_predict(str(tmp_path), {"x": tx})
    assert names == ["x"]
    np.testing.assert_array_equal(reloaded, pred)


# ---------------------------------------------------------------- recognize_digits


def _digits():
    t = bundled.load("digits")
    x = (t.x / 16.0 * 2.0 - 1.0).astype("float32").reshape(-1, 1, 8, 8)  # pixels in [-1, 1], as the book
    y = t.y.astype("int64").reshape(-1, 1)
    return x[:1400], y[:1400], x[1400:], y[1400:]


def _mlp(img):
    hidden = fluid.layers.fc(input=img, size=64, act="tanh")
    return fluid.layers.fc(input=hidden, size=64, act="tanh")


def _conv_net(img):
    h = fluid.nets.simple_img_conv_pool(
        input=img, filter_size=3, num_filters=8, pool_size=2, pool_stride=2, act="relu", conv_padding=1
    )
    h = fluid.layers.batch_norm(h)
    return fluid.nets.simple_img_conv_pool(
        input=h, filter_size=3, num_filters=16, pool_size=2, pool_stride=2, act="relu", conv_padding=1
    )


@pytest.mark.parametrize("nn_type,combine", [("mlp", True), ("mlp", False), ("conv", True), ("conv", False)])
def test_recognize_digits(fresh, tmp_path, nn_type, combine):
    main, startup = fresh
    img = fluid.layers.data(name="img", shape=[1, 8, 8], dtype="float32")
    label = fluid.layers.data(name="label", shape=[1], dtype="int64")
    hidden = _mlp(img) if nn_type == "mlp" else _conv_net(img)
    prediction = fluid.layers.fc(input=hidden, size=10, act="softmax")
    avg_loss = fluid.layers.mean(fluid.layers.cross_entropy(input=prediction, label=label))
    acc = fluid.layers.accuracy(input=prediction, label=label)
    test_program = main.clone(for_test=True)
    fluid.optimizer.RMSPropOptimizer(learning_rate=0.003).minimize(avg_loss)
    exe = _exe()
    exe.run(startup)
    xtr, ytr, xte, yte = _digits()
    rng = np.random.RandomState(0)
    for _ in range(4):
        order = rng.permutation(len(xtr))
        for i in range(0, len(xtr), 64):
            b = order[i : i + 64]
            exe.run(main, feed={"img": xtr[b], "label": ytr[b]}, fetch_list=[avg_loss])
    test_acc, test_loss, pred = exe.run(
        test_program, feed={"img": xte, "label": yte}, fetch_list=[acc, avg_loss, prediction]
    )
    assert test_acc[0] > 0.85, (nn_type, test_acc, test_loss)  # stated quality: > 85% on 397 held-out digits
    kw = {"model_filename": "__model_combined__", "params_filename": "__params_combined__"} if combine else {}
    fluid.io.save_inference_model(str(tmp_path), ["img"], [prediction], exe, **kw)
    names, (reloaded,) = _reload_and_predict(str(tmp_path), {"img": xte}, **kw)
    assert names == ["img"]
    np.testing.assert_array_equal(reloaded, pred)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == sorted(kw.values()) if combine else "__model__" in files and len(files) > 2


def test_conv_batch_norm_test_program_uses_moving_statistics(fresh):
    main, startup = fresh
    img = fluid.layers.data(name="img", shape=[1, 8, 8], dtype="float32")
    out = fluid.layers.batch_norm(fluid.layers.conv2d(img, num_filters=2, filter_size=3), momentum=0.5)
    test_program = main.clone(for_test=True)
    exe = _exe()
    exe.run(startup)
    xtr = _digits()[0][:32]
    exe.run(main, feed={"img": xtr}, fetch_list=[out])  # moves the statistics once
    mean = np.array(fluid.global_scope().find_var("batch_norm_0.w_1").get_tensor())
    var = np.array(fluid.global_scope().find_var("batch_norm_0.w_2").get_tensor())
    conv, got = exe.run(test_program, feed={"img": xtr}, fetch_list=["conv2d_0.tmp_1", out])
    want = (conv - mean.reshape(1, -1, 1, 1)) / np.sqrt(var.reshape(1, -1, 1, 1) + 1e-5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # the test program leaves the moving statistics alone
    np.testing.assert_array_equal(np.array(fluid.global_scope().find_var("batch_norm_0.w_1").get_tensor()), mean)


# ---------------------------------------------------------------- word2vec


@pytest.mark.parametrize("is_sparse", [False, True], ids=["dense", "sparse"])
def test_word2vec_shared_embeddings(fresh, tmp_path, is_sparse):
    main, startup = fresh
    word_dict = text_corpus.build_dict()
    dict_size = len(word_dict)
    names = ["firstw", "secondw", "thirdw", "forthw", "nextw"]
    words = [fluid.layers.data(name=n, shape=[1], dtype="int64") for n in names]
    embeds = [
        fluid.layers.embedding(
            input=w, size=[dict_size, 16], dtype="float32", is_sparse=is_sparse, param_attr="shared_w"
        )
        for w in words[:4]
    ]
    concat = fluid.layers.concat(input=embeds, axis=1)
    hidden = fluid.layers.fc(input=concat, size=64, act="sigmoid")
    predict_word = fluid.layers.fc(input=hidden, size=dict_size, act="softmax")
    avg_cost = fluid.layers.mean(fluid.layers.cross_entropy(input=predict_word, label=words[4]))
    fluid.optimizer.RMSPropOptimizer(learning_rate=0.01).minimize(avg_cost)
    # one table, shared by the four lookups, and one gradient for it (summed over them)
    params = [p.name for p in main.all_parameters()]
    assert params.count("shared_w") == 1 and sum(n.startswith("embedding") for n in params) == 0
    lookups = [op for op in main.global_block().ops if op.type == "lookup_table"]
    assert [op.input("W") for op in lookups] == [["shared_w"]] * 4
    assert all(op.attr("is_sparse") is is_sparse for op in lookups)
    exe = _exe()
    exe.run(startup)
    grams = np.array(list(text_corpus.train(word_dict, 5)()), dtype="int64")
    feed_all = {n: grams[:, i : i + 1] for i, n in enumerate(names)}
    (first,) = exe.run(main, feed=feed_all, fetch_list=[avg_cost])
    for _ in range(60):
        (cost,) = exe.run(main, feed=feed_all, fetch_list=[avg_cost])
    assert cost[0] < 1.0 < first[0], (first, cost)  # stated quality: training cross entropy below 1.0 nats
    (pred,) = exe.run(main.clone(for_test=True), feed=feed_all, fetch_list=[predict_word])
    fluid.io.save_inference_model(str(tmp_path), names[:4], [predict_word], exe, params_filename="param")
    got_names, (reloaded,) = _reload_and_predict(str(tmp_path), feed_all, params_filename="param")
    assert got_names == names[:4]
    np.testing.assert_array_equal(reloaded, pred)
