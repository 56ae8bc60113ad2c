"""fluid.io.PyReader (iterable form) in dygraph and static mode."""

import numpy as np
import pytest

import torchfluid as fluid


def samples():
    for i in range(5):
        yield np.full((2,), i, "float32"), np.array([i], "int64")


def test_dygraph_batches_are_variables():
    with fluid.dygraph.guard():
        reader = fluid.io.PyReader(capacity=1)
        reader.decorate_sample_list_generator(fluid.batch(samples, batch_size=2, drop_last=True))
        got = list(reader())
    assert len(got) == 2
    img, label = got[1]
    assert isinstance(img, fluid.dygraph.VarBase)
    np.testing.assert_array_equal(img.numpy(), [[2, 2], [3, 3]])
    np.testing.assert_array_equal(label.numpy(), [[2], [3]])


def test_static_batches_are_feed_dicts():
    main = fluid.Program()
    with fluid.program_guard(main, fluid.Program()):
        x = fluid.layers.data(name="x", shape=[2], dtype="float32")
        y = fluid.layers.data(name="y", shape=[1], dtype="int64")
        s = fluid.layers.reduce_sum(x)
    reader = fluid.io.PyReader(feed_list=[x, y], capacity=4)
    reader.decorate_sample_generator(samples, batch_size=3, drop_last=False)
    feeds = [f for (f,) in reader()]
    assert [sorted(f) for f in feeds] == [["x", "y"], ["x", "y"]]
    (total,) = fluid.Executor().run(main, feed=feeds[0], fetch_list=[s])
    assert total[0] == 2 * (0 + 1 + 2)


def test_batch_generator_and_errors():
    reader = fluid.io.PyReader(feed_list=["a"], return_list=True)
    with pytest.raises(RuntimeError, match="decorate_"):
        list(reader())
    reader.decorate_batch_generator(lambda: iter([(np.ones((2, 2)),)]))
    with fluid.dygraph.guard():
        (batch,) = list(reader())
    assert batch[0].shape == [2, 2] or tuple(batch[0].shape) == (2, 2)
    with pytest.raises(ValueError, match="iterable=False"):
        fluid.io.PyReader(iterable=False)
