# Example of Optimizer.state_dict, from the RMSPropOptimizer page (Paddle 2.0).
# Changed from the page only in the import line; the lines the page's text lost
# (the optimizer and the state_dict call) are restored from Paddle's source.
import torchfluid as fluid

with fluid.dygraph.guard():
    emb = fluid.dygraph.Embedding([10, 10])

    adam = fluid.optimizer.Adam(0.001, parameter_list=emb.parameters())
    state_dict = adam.state_dict()
