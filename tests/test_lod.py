"""LoD of one level in static programs: sequence_pool (every pool type, its grad), feeding
sequences (LoDTensor, create_lod_tensor, DataFeeder), fetching them, and the errors."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import torchfluid as fluid
from torchfluid import layers as L
from torchfluid._unsupported import UnsupportedFluidAPIError
from torchfluid.ops import get_op
from torchfluid.static import FeedError
from torchfluid.static.lod import LoDError

POOLS = ["sum", "average", "sqrt", "max", "last", "first"]


def np_pool(x, lengths, pool, pad=0.0):
    """Paddle's sequence_pool written with loops over numpy rows: (out, max index)."""
    out, index, start = [], [], 0
    for h in lengths:
        seq = x[start : start + h]
        if h == 0:
            out.append(np.full(x.shape[1:], pad, x.dtype))
            index.append(np.full(x.shape[1:], -1))
        elif pool == "max":
            flat = seq.reshape(h, -1)
            best = np.array([start + int(np.argmax(flat[:, c])) for c in range(flat.shape[1])])  # first max
            out.append(flat.max(axis=0).reshape(x.shape[1:]))
            index.append(best.reshape(x.shape[1:]))
        else:
            value = {
                "sum": seq.sum(0),
                "average": seq.sum(0) / h,
                "sqrt": seq.sum(0) / np.sqrt(h),
                "last": seq[-1],
                "first": seq[0],
            }[pool]
            out.append(value)
            index.append(np.full(x.shape[1:], -1))
        start += h
    return np.stack(out).astype(x.dtype), np.stack(index)


rng = np.random.default_rng(0)
# (sequence lengths, row shape): empty sequences first, last and in the middle; one-row sequences
LAYOUTS = [
    ([2, 3, 2], (1,)),
    ([2, 0, 3, 1], (3,)),
    ([0, 4], (2, 2)),
    ([1, 1, 1], (4,)),
    ([5], (3,)),
    ([3, 0], (2,)),
    ([0, 0], (3,)),
]


def pooled_program(pool, row_shape, pad=0.0, dtype="float32", extra=None):
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = L.data("x", list(row_shape), dtype=dtype, lod_level=1)
        x.stop_gradient = False
        y = L.scale(x, 1.0) if extra is None else extra(x)
        out = L.sequence_pool(y, pool, pad_value=pad)
        w = L.data("w", list(row_shape), dtype=dtype)
        loss = L.reduce_sum(L.elementwise_mul(out, w))
        fluid.backward.append_backward(loss)
    return main, start, out, loss


def test_lod_tensor_is_exported_where_paddle_has_it():
    assert fluid.LoDTensor is fluid.core.LoDTensor
    t = fluid.LoDTensor()
    t.set(np.zeros((3, 1), "int64"), fluid.CPUPlace())
    t.set_recursive_sequence_lengths([[1, 2]])
    assert t.lod() == [[0, 1, 3]]


def feed_of(x, lengths):
    t = fluid.core.LoDTensor()
    t.set(x, fluid.CPUPlace())
    t.set_recursive_sequence_lengths([lengths])
    return t


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("lengths,row_shape", LAYOUTS)
def test_sequence_pool_matches_numpy(pool, lengths, row_shape):
    x = rng.standard_normal((sum(lengths),) + row_shape).astype("float32")
    main, start, out, loss = pooled_program(pool, row_shape, pad=-2.5)
    exe = fluid.Executor()
    exe.run(start)
    w = np.ones((len(lengths),) + row_shape, "float32")
    (got,) = exe.run(main, feed={"x": feed_of(x, lengths), "w": w}, fetch_list=[out])
    ref, _ = np_pool(x, lengths, pool, pad=-2.5)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("lengths,row_shape", LAYOUTS)
def test_max_index_is_the_first_max_row(lengths, row_shape):
    x = rng.integers(0, 3, (sum(lengths),) + row_shape).astype("float64")  # many ties
    out, index = get_op("sequence_pool").forward(
        torch.from_numpy(x), pooltype="MAX", offsets=tuple(np.cumsum([0] + lengths).tolist())
    )
    ref, ref_index = np_pool(x, lengths, "max")
    np.testing.assert_array_equal(out.numpy(), ref)
    np.testing.assert_array_equal(index.numpy(), ref_index)
    assert index.dtype == torch.int32


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 5), min_size=1, max_size=6),
    width=st.integers(1, 4),
    pool=st.sampled_from(POOLS),
    pad=st.floats(-3, 3, allow_nan=False),
    seed=st.integers(0, 2**16),
)
def test_sequence_pool_op_matches_numpy_on_any_layout(lengths, width, pool, pad, seed):
    x = np.random.default_rng(seed).standard_normal((sum(lengths), width))
    offsets = tuple(np.cumsum([0] + lengths).tolist())
    out, index = get_op("sequence_pool").forward(
        torch.from_numpy(x), pooltype=pool.upper(), pad_value=pad, offsets=offsets
    )
    ref, ref_index = np_pool(x, lengths, pool, pad=pad)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(index.numpy(), ref_index)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("pool", POOLS)
def test_sequence_pool_on_the_gpu_matches_the_cpu(pool):
    x = torch.from_numpy(rng.standard_normal((9, 3)))
    offsets, attrs = (0, 2, 2, 7, 9), {"pooltype": pool.upper(), "pad_value": 0.5}
    fwd, grad = get_op("sequence_pool").forward, get_op("sequence_pool_grad").forward
    outs = [fwd(x.to(d), offsets=offsets, **attrs) for d in ("cpu", "cuda")]
    dout = torch.from_numpy(rng.standard_normal((4, 3)))
    grads = [
        grad(x.to(d), *o, dout.to(d), None, offsets=offsets, **attrs)
        for d, o in zip(("cpu", "cuda"), outs, strict=True)
    ]
    torch.testing.assert_close(outs[1][0].cpu(), outs[0][0])
    torch.testing.assert_close(outs[1][1].cpu(), outs[0][1])
    torch.testing.assert_close(grads[1].cpu(), grads[0])


def central_difference(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        hi, lo = x.copy(), x.copy()
        hi[i] += eps
        lo[i] -= eps
        g[i] = (f(hi) - f(lo)) / (2 * eps)
    return g


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("lengths,row_shape", [([2, 0, 3, 1], (3,)), ([0, 4], (2, 2)), ([1, 1], (2,))])
def test_sequence_pool_grad_matches_central_differences(pool, lengths, row_shape):
    x = rng.standard_normal((sum(lengths),) + row_shape)
    w = rng.standard_normal((len(lengths),) + row_shape)
    main, start, out, loss = pooled_program(pool, row_shape, pad=0.7, dtype="float64", extra=L.tanh)
    exe = fluid.Executor()
    exe.run(start)
    (gx,) = exe.run(main, feed={"x": feed_of(x, lengths), "w": w}, fetch_list=["x@GRAD"])

    def f(v):
        return float((np_pool(np.tanh(v), lengths, pool, pad=0.7)[0] * w).sum())

    np.testing.assert_allclose(gx, central_difference(f, x), rtol=1e-6, atol=1e-8)


def test_lod_passes_through_row_wise_ops_and_fetches_with_it():
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        words = L.data("words", [1], dtype="int64", lod_level=1)
        emb = L.embedding(words, size=[10, 4])
        hidden = L.fc(L.tanh(emb), 3, act="relu")
        pooled = L.sequence_pool(hidden, "average")
    exe = fluid.Executor()
    exe.run(start)
    t = fluid.create_lod_tensor(np.array([[1], [2], [3], [4], [5]], "int64"), [[3, 2]], fluid.CPUPlace())
    fetched = exe.run(main, feed={"words": t}, fetch_list=[words, emb, hidden, pooled], return_numpy=False)
    assert [f.recursive_sequence_lengths() for f in fetched] == [[[3, 2]], [[3, 2]], [[3, 2]], []]
    assert [f.lod() for f in fetched[:3]] == [[[0, 3, 5]]] * 3
    h = np.array(fetched[2])
    np.testing.assert_allclose(np.array(fetched[3]), np.stack([h[:3].mean(0), h[3:].mean(0)]), rtol=1e-6)
    (dense,) = exe.run(main, feed={"words": t}, fetch_list=[pooled])  # return_numpy: a plain array
    np.testing.assert_allclose(dense, np.array(fetched[3]))


def test_programs_with_sequence_pool_clone_serialize_and_save_for_inference(tmp_path):
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        words = fluid.data("words", [-1, 1], "int64", lod_level=1)
        label = fluid.data("label", [-1, 1], "int64")
        pooled = L.sequence_pool(L.embedding(words, size=[20, 4]), "max")
        prediction = L.fc(pooled, 2, act="softmax")
        loss = L.mean(L.cross_entropy(prediction, label))
        test_program = main.clone(for_test=True)
        fluid.optimizer.RMSProp(0.01).minimize(loss)
    exe = fluid.Executor()
    exe.run(start)
    feed = fluid.DataFeeder([words, label], program=main).feed([([1, 2, 3], [0]), ([4], [1])])
    (want,) = exe.run(test_program, feed=feed, fetch_list=[prediction])
    again = fluid.Program.parse_from_string(test_program.desc.serialize_to_string())
    np.testing.assert_array_equal(exe.run(again, feed=feed, fetch_list=[prediction.name])[0], want)
    fluid.io.save_inference_model(str(tmp_path), ["words"], [prediction], exe, main_program=main)
    with fluid.scope_guard(fluid.Scope()):
        program, feed_names, fetch_targets = fluid.io.load_inference_model(str(tmp_path), exe)
        (got,) = exe.run(program, feed={"words": feed["words"]}, fetch_list=fetch_targets)
    np.testing.assert_array_equal(got, want)
    assert "lod=[[0, 3, 4]]" in repr(feed["words"])


# ---------------------------------------------------------------- making and feeding LoDTensors


def test_lod_tensor_lengths_and_offsets():
    t = fluid.core.LoDTensor()
    assert t.lod() == [] and t.recursive_sequence_lengths() == [] and t.has_valid_recursive_sequence_lengths()
    t.set(np.arange(10, dtype="float32").reshape(5, 2), fluid.CPUPlace())
    t.set_recursive_sequence_lengths([[2, 0, 3]])
    assert t.lod() == [[0, 2, 2, 5]] and t.recursive_sequence_lengths() == [[2, 0, 3]]
    t.set_lod([[0, 1, 5]])
    assert t.recursive_sequence_lengths() == [[1, 4]] and t.has_valid_recursive_sequence_lengths()
    t.set(np.zeros((4, 2), "float32"))  # set keeps the LoD, which no longer fits (Paddle's behaviour)
    assert t.lod() == [[0, 1, 5]] and not t.has_valid_recursive_sequence_lengths()
    t.set_lod([])
    assert t.lod() == [] and t.has_valid_recursive_sequence_lengths()
    scope = fluid.Scope()
    v = scope.var("v").get_tensor()
    v.set(np.ones((3, 1), "int64"))
    v.set_recursive_sequence_lengths([[1, 2]])
    assert scope.find_var("v").get_tensor().lod() == [[0, 1, 3]]
    scope.erase(["v"])
    assert scope.var("v").get_tensor().lod() == []


@pytest.mark.parametrize(
    "data,lens,expected,lod",
    [
        (np.arange(6, dtype="float32").reshape(3, 2), [[1, 2]], np.arange(6, dtype="float32").reshape(3, 2), [0, 1, 3]),
        ([[1, 2], [3]], [[2, 1]], np.array([[1], [2], [3]]), [0, 2, 3]),
        ([[1.5], [], [2.0, 3.0]], [[1, 0, 2]], np.array([[1.5], [2.0], [3.0]]), [0, 1, 1, 3]),
        ([[[1, 2]], [[3, 4], [5, 6]]], [[1, 2]], np.array([[[1], [2]], [[3], [4]], [[5], [6]]]), [0, 1, 3]),
    ],
)
def test_create_lod_tensor(data, lens, expected, lod):
    t = fluid.create_lod_tensor(data, lens, fluid.CPUPlace())
    np.testing.assert_array_equal(np.array(t), expected)
    assert np.array(t).dtype == expected.dtype and t.lod() == [lod] and t.recursive_sequence_lengths() == lens
    again = fluid.create_lod_tensor(t, [[len(expected)]], fluid.CPUPlace())  # from a LoDTensor: its data
    np.testing.assert_array_equal(np.array(again), expected)
    assert again.recursive_sequence_lengths() == [[len(expected)]]


def test_create_random_int_lodtensor():
    np.random.seed(3)
    t = fluid.create_random_int_lodtensor([[2, 3]], [4], fluid.CPUPlace(), low=2, high=5)
    a = np.array(t)
    assert a.shape == (5, 4) and a.dtype == np.int64 and a.min() >= 2 and a.max() <= 5 and len(np.unique(a)) == 4
    assert t.recursive_sequence_lengths() == [[2, 3]]
    np.random.seed(3)
    np.testing.assert_array_equal(np.random.randint(2, 6, size=(5, 4)), a)  # numpy's global generator, as Paddle
    t = fluid.create_random_int_lodtensor([[1, 1, 1]], [1], None, low=0, high=0)
    np.testing.assert_array_equal(np.array(t), np.zeros((3, 1)))


@pytest.mark.parametrize(
    "declare",
    [
        lambda: L.data("words", [1], dtype="int64", lod_level=1),
        lambda: fluid.data("words", [-1, 1], "int64", lod_level=1),
    ],
)
def test_data_feeder_flattens_sequences(declare):
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        words = declare()
        label = L.data("label", [1], dtype="int64")
        pooled = L.sequence_pool(L.cast(words, "float32"), "sum")
    feeder = fluid.DataFeeder(feed_list=[words, label], place=fluid.CPUPlace(), program=main)
    batch = [([1, 2, 3], [0]), (np.array([4, 5], "int64"), [1]), ([], [1]), ([6], [0])]
    feed = feeder.feed(batch)
    assert feed["words"].recursive_sequence_lengths() == [[3, 2, 0, 1]]
    np.testing.assert_array_equal(np.array(feed["words"]), np.arange(1, 7).reshape(6, 1))
    np.testing.assert_array_equal(feed["label"], [[0], [1], [1], [0]])
    exe = fluid.Executor()
    exe.run(start)
    (got,) = exe.run(main, feed=feed, fetch_list=[pooled])
    np.testing.assert_array_equal(got, [[6.0], [9.0], [0.0], [6.0]])


def test_data_feeder_sequences_of_vectors():
    main = fluid.Program()
    with fluid.program_guard(main):
        x = L.data("x", [2], lod_level=1)
    feed = fluid.DataFeeder([x], program=main).feed([([[1, 2], [3, 4]],), ([[5, 6]],)])
    np.testing.assert_array_equal(np.array(feed["x"]), [[1, 2], [3, 4], [5, 6]])
    assert feed["x"].lod() == [[0, 2, 3]] and np.array(feed["x"]).dtype == np.float32


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call,error,message",
    [
        (lambda t: t.set_lod([[1, 2, 5]]), ValueError, r"set_lod.*must start at 0"),
        (lambda t: t.set_lod([[0, 3, 2, 5]]), ValueError, r"decrease"),
        (lambda t: t.set_lod([[0, 2, 4]]), ValueError, r"end at row 4 but the tensor has 5 rows"),
        (lambda t: t.set_lod([[0]]), ValueError, r"at least two entries"),
        (lambda t: t.set_recursive_sequence_lengths([[2, 2]]), ValueError, r"end at row 4 but the tensor has 5"),
        (lambda t: t.set_recursive_sequence_lengths([[6, -1]]), ValueError, r"negative"),
        (lambda t: t.set_recursive_sequence_lengths([[2, 3], [1, 1]]), NotImplementedError, r"2 levels.*one level"),
        (lambda t: t.set_lod([[0, 2, 5], [0, 1, 2]]), NotImplementedError, r"'t': set_lod: a LoD of 2 levels"),
        (lambda t: t.set_lod([0, 2, 5]), TypeError, r"list of lists of ints"),
        (lambda t: t.set_recursive_sequence_lengths([[2.0, 3.0]]), TypeError, r"must be ints"),
        (lambda t: fluid.create_lod_tensor(np.ones((5, 1)), [[2, 2]], None), ValueError, r"end at row 4"),
        (lambda t: fluid.create_lod_tensor([[1, 2], [3]], [[1, 2]], None), ValueError, r"lengths \[\[2, 1\]\]"),
        (lambda t: fluid.create_lod_tensor([[1], [2]], [[1], [1]], None), NotImplementedError, r"2 levels"),
        (lambda t: fluid.create_lod_tensor([1, 2], [[1, 1]], None), TypeError, r"one list of items per sequence"),
        (lambda t: fluid.create_lod_tensor("abc", [[3]], None), TypeError, r"LoDTensor, an ndarray or a list"),
        (lambda t: fluid.create_random_int_lodtensor([[2]], 3, None, 0, 1), TypeError, r"base_shape"),
        (lambda t: fluid.create_random_int_lodtensor([[2]], [1], None, 3, 1), ValueError, r"low must be <= high"),
        (lambda t: fluid.data("d", [-1, 1], "int64", lod_level=2), NotImplementedError, r"'d'.*lod_level=2.*0 .*1"),
    ],
)
def test_bad_lods_raise_clear_errors(call, error, message):
    t = fluid.core.LoDTensor(name="t")
    t.set(np.zeros((5, 1), "float32"))
    t.set_recursive_sequence_lengths([[5]])
    with pytest.raises(error, match=message):
        call(t)
    assert t.recursive_sequence_lengths() == [[5]]  # a refused LoD leaves the old one


def test_data_feeder_refuses_two_levels_and_non_sequences():
    main = fluid.Program()
    with fluid.program_guard(main):
        deep = main.global_block().create_var("deep", [-1, 1], "int64", is_data=True, lod_level=2)
        words = L.data("words", [1], dtype="int64", lod_level=1)
    with pytest.raises(NotImplementedError, match=r"variable 'deep' has lod_level=2"):
        fluid.DataFeeder([deep], program=main)
    with pytest.raises(ValueError, match=r"'words' has lod_level=1.*sample 1 gives int 7"):
        fluid.DataFeeder([words], program=main).feed([([1, 2],), (7,)])


def bow_program(dict_dim, optimizer):
    """A bag-of-words net minimised by ``optimizer``, its startup run in a fresh scope."""
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        words = L.data("words", [1], dtype="int64", lod_level=1)
        label = L.data("label", [1], dtype="int64")
        cost = bow_net(words, label, dict_dim=dict_dim)
        optimizer.minimize(cost)
    scope, exe = fluid.Scope(), fluid.Executor()
    exe.run(start, scope=scope)
    return main, scope, exe, cost, words, label


@pytest.fixture()
def bow():
    return bow_program(20, fluid.optimizer.RMSProp(learning_rate=0.05))[:4]


def test_bad_lod_feeds_are_feed_errors_and_leave_the_scope_unchanged(bow):
    main, scope, exe, cost = bow
    before = {n: np.array(scope.find_var(n).get_tensor()) for n in scope.local_var_names()}
    label = np.zeros((2, 1), "int64")
    stale = fluid.core.LoDTensor()
    stale.set_recursive_sequence_lengths([[2, 3]])  # no value yet: not checked against rows
    stale.set(np.ones((4, 1), "int64"))
    raw = fluid.Scope()  # Scope.set_lod stores offsets unchecked: the executor checks them when fed
    for name, offsets in (("down", (0, 3, 2, 5)), ("late", (1, 3, 5))):
        raw.var(name).get_tensor().set(np.ones((5, 1), "int64"))
        raw.set_lod(name, offsets)
    for feed, message in [
        ({"words": np.ones((5, 1), "int64"), "label": label}, r"feed 'words': op sequence_pool .* without any"),
        ({"words": raw.find_var("down").get_tensor(), "label": label}, r"feed 'words': .*\[0, 3, 2, 5\] decrease"),
        ({"words": raw.find_var("late").get_tensor(), "label": label}, r"feed 'words': .*must start at 0"),
        (
            {"words": stale, "label": label},
            r"feed 'words': the LoD .* \[0, 2, 5\] end at row 5 but the tensor has 4 rows",
        ),
    ]:
        with pytest.raises(FeedError, match=message):
            exe.run(main, feed=feed, fetch_list=[cost], scope=scope)
    for n, v in before.items():
        np.testing.assert_array_equal(np.array(scope.find_var(n).get_tensor()), v)


def test_sequence_pool_of_an_input_without_lod_is_refused():
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start):
        x = L.data("x", [3], lod_level=1)
        w = L.create_parameter([4, 3], "float32")
        pooled = L.sequence_pool(L.elementwise_add(w, L.reduce_sum(x, dim=0)), "sum")  # a parameter's rows
    exe = fluid.Executor()
    exe.run(start)
    with pytest.raises(
        LoDError, match=r"op sequence_pool \(built at .*test_lod.py.*input X .*does not come from a fed"
    ):
        exe.run(main, feed={"x": fluid.create_lod_tensor(np.ones((4, 3), "float32"), [[4]], None)}, fetch_list=[pooled])


def test_sequence_pool_layer_checks_its_arguments():
    with fluid.program_guard(fluid.Program()):
        x = L.data("x", [3], lod_level=1)
        ids = L.data("ids", [1], dtype="int64", lod_level=1)
        with pytest.raises(ValueError, match=r"pool_type must be one of average, sum, .*got 'median'"):
            L.sequence_pool(x, "median")
        with pytest.raises(TypeError, match=r"input 'ids' must be float32 or float64, got int64"):
            L.sequence_pool(ids, "sum")
    with pytest.raises(ValueError, match="pooltype must be one of"):
        get_op("sequence_pool").forward(torch.ones(2, 1), pooltype="MEDIAN", offsets=(0, 2))
    with pytest.raises(ValueError, match=r"offsets \[0, 3\] do not split X's 2 rows"):
        get_op("sequence_pool").forward(torch.ones(2, 1), pooltype="SUM", offsets=(0, 3))


def test_sequence_pool_refuses_eager_tensors():
    with fluid.dygraph.guard():
        x = fluid.dygraph.to_variable(np.ones((3, 2), "float32"))
        with pytest.raises(UnsupportedFluidAPIError, match="static programs only: an eager .*carries no LoD"):
            L.sequence_pool(x, "sum")
    with pytest.raises(ValueError, match="a tensor alone carries none"):
        get_op("sequence_pool").forward(torch.ones(2, 1), pooltype="SUM")


# ---------------------------------------------------------------- a bag-of-words net trained with RMSProp


def bow_net(data, label, dict_dim, emb_dim=8, hid_dim=8, hid_dim2=6, class_dim=2):
    emb = L.embedding(input=data, is_sparse=True, size=[dict_dim, emb_dim])
    bow_tanh = L.tanh(L.sequence_pool(input=emb, pool_type="sum"))
    fc_1 = L.fc(input=bow_tanh, size=hid_dim, act="tanh")
    fc_2 = L.fc(input=fc_1, size=hid_dim2, act="tanh")
    prediction = L.fc(input=[fc_2], size=class_dim, act="softmax")
    return L.mean(L.cross_entropy(input=prediction, label=label))


def torch_bow_step(params, state, ids, lengths, label, lr, rho=0.95, eps=1e-6, momentum=0.9):
    """One step of the same net and RMSProp (Paddle's maths) in plain torch, autograd for the grads."""
    p = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in params.items()}
    seg = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    emb = p["embedding_0.w_0"][torch.tensor(ids).reshape(-1)]
    h = torch.tanh(torch.zeros(len(lengths), emb.shape[1], dtype=torch.float64).index_add(0, seg, emb))
    h = torch.tanh(h @ p["fc_0.w_0"] + p["fc_0.b_0"])
    h = torch.tanh(h @ p["fc_1.w_0"] + p["fc_1.b_0"])
    prob = torch.softmax(h @ p["fc_2.w_0"] + p["fc_2.b_0"], -1)
    loss = -torch.log(prob.gather(1, torch.tensor(label).reshape(-1, 1))).mean()
    loss.backward()
    out = {}
    for n, t in p.items():
        g = t.grad.numpy()
        ms, mom = state.setdefault(n, (np.zeros_like(g), np.zeros_like(g)))
        ms = rho * ms + (1 - rho) * g * g
        mom = momentum * mom + lr * g / np.sqrt(ms + eps)
        state[n] = (ms, mom)
        out[n] = params[n] - mom
    return out, float(loss.detach())


def test_bow_net_trains_with_rmsprop_as_a_torch_reimplementation():
    opt = fluid.optimizer.RMSProp(learning_rate=0.02, rho=0.95, epsilon=1e-6, momentum=0.9)
    main, scope, exe, cost, words, label = bow_program(30, opt)
    names = [p.name for p in main.global_block().all_parameters()]
    assert sorted(names) == sorted(["embedding_0.w_0"] + [f"fc_{i}.{k}_0" for i in range(3) for k in "wb"])
    params = {n: np.array(scope.find_var(n).get_tensor()).astype("float64") for n in names}
    feeder = fluid.DataFeeder(feed_list=[words, label], place=fluid.CPUPlace(), program=main)
    data_rng = np.random.default_rng(1)
    state, losses = {}, []
    for _ in range(4):
        lengths = [int(n) for n in data_rng.integers(1, 6, size=3)]
        batch = [(list(data_rng.integers(0, 30, size=n)), [int(data_rng.integers(0, 2))]) for n in lengths]
        (got_loss,) = exe.run(main, feed=feeder.feed(batch), fetch_list=[cost], scope=scope)
        ids = np.concatenate([np.array(s) for s, _ in batch])
        params, ref_loss = torch_bow_step(params, state, ids, lengths, np.array([b[1] for b in batch]), lr=0.02)
        np.testing.assert_allclose(got_loss, [ref_loss], rtol=1e-5)
        losses.append(ref_loss)
        for n in names:
            np.testing.assert_allclose(np.array(scope.find_var(n).get_tensor()), params[n], rtol=1e-4, atol=2e-5)
    assert len(set(losses)) == 4
