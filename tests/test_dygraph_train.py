"""Training through the dygraph facade is bit-identical to the same model as plain torch modules.

The facade model (``Embedding`` + ``Linear`` with ParamAttr, to_variable data, Paddle-style
``backward`` / ``minimize`` / ``clear_gradients``) and a plain torch model (``nn.Embedding``,
``nn.Parameter`` weights carrying the optimizer's attributes by hand, ``step`` /
``zero_grad``) start from the same values and run the same core optimizer: every
parameter and every accumulator must match exactly, step by step.
"""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid.dygraph import Embedding, Layer, Linear, guard, to_variable
from torchfluid.initializer import NumpyArrayInitializer
from torchfluid import regularizer
from torchfluid.param_attr import ParamAttr

VOCAB, EMB, OUT, STEPS = 20, 8, 4, 6
rng = np.random.default_rng(42)
TABLE = rng.normal(size=(VOCAB, EMB)).astype(np.float32)
W = rng.normal(size=(EMB, OUT)).astype(np.float32)
B = rng.normal(size=OUT).astype(np.float32)
BATCHES = [(rng.integers(0, VOCAB, size=(5, 3)), rng.normal(size=(5, 3, OUT)).astype(np.float32)) for _ in range(STEPS)]


class FacadeNet(Layer):
    def __init__(self, sparse):
        super().__init__()
        self.emb = Embedding([VOCAB, EMB], is_sparse=sparse, param_attr=NumpyArrayInitializer(TABLE))
        attr = ParamAttr(initializer=NumpyArrayInitializer(W), learning_rate=0.5, regularizer=regularizer.L2Decay(0.01))
        self.fc = Linear(EMB, OUT, param_attr=attr, bias_attr=NumpyArrayInitializer(B), act="tanh")

    def forward(self, ids):
        return self.fc(self.emb(ids))


class PlainNet(torch.nn.Module):
    def __init__(self, sparse):
        super().__init__()
        self.emb = torch.nn.Embedding(VOCAB, EMB, sparse=sparse, _weight=torch.tensor(TABLE))
        self.w = torch.nn.Parameter(torch.tensor(W))
        self.b = torch.nn.Parameter(torch.tensor(B))
        self.w.optimize_attr = {"learning_rate": 0.5}  # what ParamAttr sets, by hand
        self.w.regularizer = regularizer.L2Decay(0.01)

    def forward(self, ids):
        return torch.tanh(torch.matmul(self.emb(ids), self.w) + self.b)


def _mse(out, y):
    return ((out - y) ** 2).mean()


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("centered,momentum", [(False, 0.0), (True, 0.9)])
def test_facade_training_is_bit_identical_to_plain_torch(sparse, centered, momentum):
    with guard():
        net = FacadeNet(sparse)
        names = [p.name for p in net.parameters()]
        assert names == ["embedding_0.w_0", "linear_0.w_0", "linear_0.b_0"]
        opt = fluid.optimizer.RMSProp(
            learning_rate=0.05,
            rho=0.9,
            momentum=momentum,
            centered=centered,
            parameter_list=net.parameters(),
            regularization=regularizer.L2Decay(0.001),
        )
        ref = PlainNet(sparse)
        ref_opt = fluid.optimizer.RMSProp(
            learning_rate=0.05,
            rho=0.9,
            momentum=momentum,
            centered=centered,
            parameters=list(zip(names, [ref.emb.weight, ref.w, ref.b], strict=False)),
            regularization=regularizer.L2Decay(0.001),
        )
        for ids, y in BATCHES:
            loss = _mse(net(to_variable(ids)), to_variable(y))
            loss.backward()
            opt.minimize(loss)
            net.clear_gradients()

            ref_loss = _mse(ref(torch.tensor(ids)), torch.tensor(y))
            ref_loss.backward()
            ref_opt.step()
            ref_opt.zero_grad()

            assert torch.equal(loss.detach().as_subclass(torch.Tensor), ref_loss.detach())
            for mine, theirs in zip(net.parameters(), [ref.emb.weight, ref.w, ref.b], strict=False):
                assert torch.equal(mine.as_subclass(torch.Tensor), theirs.detach()), mine.name
        state, ref_state = opt.state_dict(), ref_opt.state_dict()
        accumulators = [k for k in state if isinstance(state[k], torch.Tensor)]
        assert "linear_0.w_0_mean_square_0" in accumulators and len(accumulators) >= 3
        for key in accumulators:
            assert torch.equal(torch.as_tensor(state[key]), torch.as_tensor(ref_state[key])), key
        assert (net.fc.weight.numpy() != W).all()  # it did train


def test_plain_torch_linear_agrees_to_rounding():
    """torch.nn.Linear (weight [out, in], fused addmm) gives the same function up to rounding."""
    lin = Linear(EMB, OUT, param_attr=NumpyArrayInitializer(W), bias_attr=NumpyArrayInitializer(B))
    ref = torch.nn.Linear(EMB, OUT)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(W).T)
        ref.bias.copy_(torch.tensor(B))
    x = torch.tensor(rng.normal(size=(7, EMB)).astype(np.float32))
    torch.testing.assert_close(lin(to_variable(x)).as_subclass(torch.Tensor), ref(x), rtol=1e-6, atol=1e-6)
