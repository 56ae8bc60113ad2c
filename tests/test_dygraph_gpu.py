"""Dygraph facade on a GPU place (skipped without CUDA)."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid.dygraph import Embedding, Linear, guard, to_variable
from torchfluid.initializer import Normal, NumpyArrayInitializer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_guard_on_cuda_place_puts_data_and_parameters_on_the_gpu(tmp_path):
    with guard(fluid.CUDAPlace(0)):
        x = to_variable(np.ones((2, 3), np.float32))
        lin = Linear(3, 4, act="relu")
        assert x.device.type == "cuda" and lin.weight.device.type == "cuda"
        assert x.place == fluid.CUDAPlace(0) and repr(lin.weight.place) == "CUDAPlace(0)"
        out = lin(x)
        out.backward()
        assert lin.weight.gradient().shape == (3, 4)
        fluid.save_dygraph(lin.state_dict(), str(tmp_path / "g"))
        params, _ = fluid.load_dygraph(str(tmp_path / "g"))
        fresh = Linear(3, 4)
        fresh.set_dict(params)
        assert torch.equal(fresh.weight, lin.weight)
        with pytest.raises(ValueError, match="zero_copy=True works only on CPUPlace"):
            to_variable(np.ones(2), zero_copy=True)


def test_seeded_initializer_gives_the_same_values_on_cpu_and_gpu():
    cpu = Normal(seed=11)(torch.empty(5, 7))
    gpu = Normal(seed=11)(torch.empty(5, 7, device="cuda"))
    assert torch.equal(cpu, gpu.cpu())


def test_sparse_padded_embedding_on_gpu_matches_cpu():
    table = np.arange(24, dtype=np.float32).reshape(6, 4)
    ids = np.array([[3, 1, 3], [0, 3, 4]])
    grads = []
    for place in (fluid.CPUPlace(), fluid.CUDAPlace(0)):
        with guard(place):
            emb = Embedding([6, 4], is_sparse=True, padding_idx=3, param_attr=NumpyArrayInitializer(table))
            out = emb(to_variable(ids))
            out.backward(to_variable(np.arange(24, dtype=np.float32).reshape(2, 3, 4)))
            grads.append((out.numpy(), *emb.weight.gradient()))
    for a, b in zip(*grads, strict=False):
        np.testing.assert_array_equal(a, b)


def test_rmsprop_training_on_gpu_is_bit_identical_to_plain_torch():
    optimizer = pytest.importorskip("torchfluid.optimizer")
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    with guard(fluid.CUDAPlace(0)):
        lin = Linear(5, 3, param_attr=NumpyArrayInitializer(w), bias_attr=NumpyArrayInitializer(b))
        opt = optimizer.RMSProp(0.01, momentum=0.9, centered=True, parameter_list=lin.parameters())
        ref_w = torch.nn.Parameter(torch.tensor(w, device="cuda"))
        ref_b = torch.nn.Parameter(torch.tensor(b, device="cuda"))
        ref_opt = optimizer.RMSProp(0.01, momentum=0.9, centered=True, parameters=[ref_w, ref_b])
        for _ in range(5):
            x = rng.normal(size=(8, 5)).astype(np.float32)
            loss = (lin(to_variable(x)) ** 2).mean()
            loss.backward()
            opt.minimize(loss)
            lin.clear_gradients()
            xt = torch.tensor(x, device="cuda")
            ((torch.matmul(xt, ref_w) + ref_b) ** 2).mean().backward()
            ref_opt.step()
            ref_opt.zero_grad()
        assert torch.equal(lin.weight.as_subclass(torch.Tensor), ref_w.detach())
        assert torch.equal(lin.bias.as_subclass(torch.Tensor), ref_b.detach())
