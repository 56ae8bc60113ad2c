"""fluid.layers.auc (op auc): the ROC AUC of bucketed scores, accumulated over runs and over a
sliding window of batches, against the exact pairwise AUC (scores on the bucket grid,
where bucketing loses nothing) and against a numpy sweep of the buckets (scores anywhere);
dygraph mode, the refused arguments, and save_inference_model's warning for a program with it."""

import warnings

import numpy as np
import pytest
import torchfluid as fluid


def roc_auc_score(labels, scores):
    """The exact ROC AUC by its pair definition (Mann-Whitney): over every (positive, negative)
    pair, 1 when the positive scores higher, 1/2 on a tie, averaged."""
    labels, scores = np.asarray(labels), np.asarray(scores, np.float64)
    pos, neg = scores[labels > 0], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


def _program(num_thresholds, slide_steps, label_dtype="int64"):
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup):
        p = fluid.layers.data("p", [2], dtype="float32")
        y = fluid.layers.data("y", [1], dtype=label_dtype)
        auc, batch_auc, states = fluid.layers.auc(p, y, num_thresholds=num_thresholds, slide_steps=slide_steps)
    return main, startup, auc, batch_auc, states


def _batches(rng, n_batches, size, grid):
    out = []
    for _ in range(n_batches):
        score = rng.integers(0, grid + 1, size) / grid if grid else rng.random(size)
        label = (rng.random(size) < score).astype("int64")
        label[:2] = [0, 1]  # both classes in every batch
        out.append((score.astype("float32"), label))
    return out


def _numpy_bucket_auc(scores, labels, num_thresholds):
    """Bucket each float32 score at int(score * T), sweep thresholds from the top bucket down and
    sum the trapezoids of (false positives, true positives), normalised by #pos * #neg."""
    bins = (np.asarray(scores, np.float32) * np.float32(num_thresholds)).astype(np.int64)
    pos = np.bincount(bins[labels > 0], minlength=num_thresholds + 1)
    neg = np.bincount(bins[labels == 0], minlength=num_thresholds + 1)
    area, tp, fp = 0.0, 0.0, 0.0
    for i in range(num_thresholds, -1, -1):
        tp_new, fp_new = tp + pos[i], fp + neg[i]
        area += (fp_new - fp) * (tp_new + tp) / 2.0
        tp, fp = tp_new, fp_new
    return area / tp / fp if tp > 0 and fp > 0 else area


# (label, num_thresholds, slide_steps, batches, score grid: 0 = anywhere in [0, 1))
CASES = [
    ("grid-window1", 1024, 1, 3, 1024),
    ("grid-window2", 256, 2, 5, 256),
    ("grid-all-batches", 512, 0, 4, 64),
    ("anywhere-default", 4095, 1, 3, 0),
    ("anywhere-window3", 200, 3, 6, 0),
]


@pytest.mark.parametrize("label,num_thresholds,slide_steps,n_batches,grid", CASES, ids=[c[0] for c in CASES])
def test_auc_over_runs_and_window(label, num_thresholds, slide_steps, n_batches, grid):
    rng = np.random.default_rng(num_thresholds + slide_steps)
    main, startup, auc, batch_auc, states = _program(num_thresholds, slide_steps)
    exe, scope = fluid.Executor(), fluid.Scope()
    batches = _batches(rng, n_batches, 40, grid)
    with fluid.scope_guard(scope):
        exe.run(startup)
        for i, (score, lab) in enumerate(batches):
            p = np.stack([1 - score, score], 1)
            got, got_batch = exe.run(main, feed={"p": p, "y": lab[:, None]}, fetch_list=[auc, batch_auc])
            seen = batches[: i + 1]
            window = seen if slide_steps == 0 else seen[-slide_steps:]
            for value, part in ((got, seen), (got_batch, window)):
                s, y = np.concatenate([b[0] for b in part]), np.concatenate([b[1] for b in part])
                assert value.dtype == np.float64 and value.shape == (1,)
                want = roc_auc_score(y, s) if grid else _numpy_bucket_auc(s, y, num_thresholds)
                np.testing.assert_allclose(value[0], want, rtol=1e-12)
        stat_pos = np.array(scope.find_var(states[2].name).get_tensor())
    assert stat_pos.shape == (1, num_thresholds + 1) and stat_pos.sum() == sum(b[1].sum() for b in batches)


def test_one_class_only_gives_zero_and_int32_labels_work():
    main, startup, auc, batch_auc, _ = _program(100, 1, label_dtype="int32")
    exe = fluid.Executor()
    with fluid.scope_guard(fluid.Scope()):
        exe.run(startup)
        p = np.array([[0.2, 0.8], [0.6, 0.4]], "float32")
        (got,) = exe.run(main, feed={"p": p, "y": np.ones((2, 1), "int32")}, fetch_list=[auc])
        assert got[0] == 0.0
        (got,) = exe.run(main, feed={"p": p, "y": np.array([[1], [0]], "int32")}, fetch_list=[auc])
        # both runs count: positives 0.8, 0.4, 0.8 against the negative 0.4 (a tie counts half)
        np.testing.assert_allclose(got[0], roc_auc_score([1, 1, 1, 0], [0.8, 0.4, 0.8, 0.4]), rtol=1e-12)
        assert abs(got[0] - 2.5 / 3) < 1e-12


def test_dygraph_auc_is_this_batch():
    score = np.array([0.1, 0.4, 0.35, 0.8], "float32")
    label = np.array([0, 0, 1, 1])
    with fluid.dygraph.guard():
        p = fluid.dygraph.to_variable(np.stack([1 - score, score], 1))
        y = fluid.dygraph.to_variable(label[:, None])
        auc, batch_auc, states = fluid.layers.auc(p, y)
        assert len(states) == 4
        np.testing.assert_allclose(auc.numpy()[0], roc_auc_score(label, score), rtol=1e-12)
        np.testing.assert_allclose(batch_auc.numpy()[0], roc_auc_score(label, score), rtol=1e-12)
        assert int(states[2].numpy().sum()) == 2 and int(states[3].numpy().sum()) == 2


@pytest.mark.parametrize(
    "kwargs,exc,msg",
    [
        ({"curve": "PR"}, ValueError, "curve must be 'ROC'"),
        ({"num_thresholds": 0}, ValueError, "num_thresholds must be an int >= 1, got 0"),
        ({"slide_steps": -1}, ValueError, "slide_steps must be an int >= 0, got -1"),
        ({"slide_steps": 1.5}, ValueError, "slide_steps must be an int >= 0, got 1.5"),
    ],
)
def test_auc_refuses_arguments(kwargs, exc, msg):
    with fluid.program_guard(fluid.Program(), fluid.Program()):
        p = fluid.layers.data("p", [2], dtype="float32")
        y = fluid.layers.data("y", [1], dtype="int64")
        with pytest.raises(exc, match=msg):
            fluid.layers.auc(p, y, **kwargs)
        with pytest.raises(TypeError, match="label must be int32 or int64, got float32"):
            fluid.layers.auc(p, p)


def test_auc_refuses_scores_outside_0_1_and_keeps_its_counts():
    main, startup, auc, _, states = _program(10, 1)
    exe, scope = fluid.Executor(), fluid.Scope()
    with fluid.scope_guard(scope):
        exe.run(startup)
        bad = np.array([[0.0, 1.5]], "float32")
        with pytest.raises(Exception, match=r"auc: Predict values must be in \[0, 1\]"):
            exe.run(main, feed={"p": bad, "y": np.ones((1, 1), "int64")}, fetch_list=[auc])
        for v in states:
            assert not np.array(scope.find_var(v.name).get_tensor()).any()


def test_save_inference_model_warns_for_a_program_with_auc(tmp_path):
    main, startup = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, startup):
        x = fluid.layers.data("x", [2], dtype="float32")
        y = fluid.layers.data("y", [1], dtype="int64")
        pred = fluid.layers.fc(x, size=2, act="softmax")
        fluid.layers.auc(pred, y)
        cost = fluid.layers.mean(fluid.layers.cross_entropy(pred, y))
    exe = fluid.Executor()
    with fluid.scope_guard(fluid.Scope()):
        exe.run(startup)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            fluid.io.save_inference_model(str(tmp_path), ["x", "y"], [cost], exe, main)
    assert [str(m.message) for m in w] == [
        "please ensure that you have set the auc states to zeros before saving inference model"
    ]
