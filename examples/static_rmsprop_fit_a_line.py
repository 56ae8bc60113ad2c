# The static-mode example of Paddle's RMSPropOptimizer page, run on torchfluid.
# Changed from the page: the two import lines (paddle -> torchfluid) and the reader
# line, restored from Paddle's source (the page's text lost it). The loss printing at
# the end is an addition so that the run can be checked.
#
# Data: the real UCI housing data (never downloaded), as Paddle's reader gives it: from
# $TORCHFLUID_UCI_HOUSING if set, else Paddle's cache
# ~/.cache/paddle/dataset/uci_housing/housing.data, else the copy bundled with
# torchfluid (torchfluid/data/boston_house_prices.csv, see torchfluid/data/LICENSES.md).
# The rows are in the file's order (Paddle's reader does not shuffle), so the loss of
# single steps jumps between neighbourhoods; the added summary uses medians.
import torchfluid as paddle
import torchfluid as fluid
import numpy as np

place = fluid.CPUPlace()
main = fluid.Program()
with fluid.program_guard(main):
    x = fluid.layers.data(name="x", shape=[13], dtype="float32")
    y = fluid.layers.data(name="y", shape=[1], dtype="float32")
    y_predict = fluid.layers.fc(input=x, size=1, act=None)
    cost = fluid.layers.square_error_cost(input=y_predict, label=y)
    avg_cost = fluid.layers.mean(cost)

    rms_optimizer = fluid.optimizer.RMSProp(learning_rate=0.1)
    rms_optimizer.minimize(avg_cost)

    fetch_list = [avg_cost]
    train_reader = paddle.batch(paddle.dataset.uci_housing.train(), batch_size=1)
    feeder = fluid.DataFeeder(place=place, feed_list=[x, y])
    exe = fluid.Executor(place)
    exe.run(fluid.default_startup_program())
    losses = []  # (added) collect the loss of every step
    for data in train_reader():
        losses.append(exe.run(main, feed=feeder.feed(data), fetch_list=fetch_list)[0][0])

# (added) the median loss of the first and last 50 steps
print("first50 %.4f last50 %.4f steps %d" % (np.median(losses[:50]), np.median(losses[-50:]), len(losses)))
