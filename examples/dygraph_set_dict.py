# Example of Optimizer.set_dict / set_state_dict, from the RMSPropOptimizer page
# (Paddle 2.0-rc). Changed from the page only in the import lines; the lines the
# page's text lost (disable_static, the saves, the scheduler and optimizer, the load)
# are restored from Paddle's source. Writes paddle_dy.pdparams / paddle_dy.pdopt here.
import torchfluid as paddle
import torchfluid as fluid

paddle.disable_static()

emb = paddle.nn.Embedding(10, 10)

state_dict = emb.state_dict()
fluid.save_dygraph(state_dict, "paddle_dy")

scheduler = paddle.optimizer.lr_scheduler.NoamLR(d_model=0.01, warmup_steps=100, verbose=True)
adam = paddle.optimizer.Adam(learning_rate=scheduler, parameters=emb.parameters())
state_dict = adam.state_dict()
fluid.save_dygraph(state_dict, "paddle_dy")

para_state_dict, opti_state_dict = fluid.load_dygraph("paddle_dy")
