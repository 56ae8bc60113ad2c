"""Checkpoints across tools: a real Paddle run continued in torchfluid from Paddle's own
.pdopt format, static-mode files resumed eagerly, and every load entry point refusing
a malicious pickle without running it."""

import os
import pickle
import warnings

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import layers as L
from torchfluid.checkpoint import CheckpointError, Checkpointer
from torchfluid.ops import math_ops

from .conftest import load_reference


class WritesAFile:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("case_name", ["grid_centered1_mom0.9_rho0.9", "grid_centered0_mom0.9_rho0.95"])
def test_a_real_paddle_run_continues_in_torchfluid_from_paddle_files(tmp_path, case_name):
    """Paddle's params and accumulators after step 2 (from a real Paddle run), written the
    way Paddle writes .pdparams/.pdopt (protocol-2 pickles of numpy arrays, all three
    RMSProp accumulators, the name table), loaded with load_dygraph, continued for steps
    3-5: equal to what real Paddle computed."""
    case = next(c for c in load_reference("paddle_rmsprop_trajectories.json")["cases"] if c["name"] == case_name)
    names, cfg, after2 = case["param_names"], case["config"], case["steps"][1]
    pdparams = {names[k]: np.array(after2["params"][k], np.float32) for k in names}
    pdparams["StructuredToParameterName@@"] = {k: names[k] for k in names}
    pdopt = {
        f"{names[k]}_{acc}_0": np.array(after2[acc][k], np.float32)
        for k in names
        for acc in ("mean_square", "mean_grad", "momentum")
    }
    (tmp_path / "run.pdparams").write_bytes(pickle.dumps(pdparams, protocol=2))
    (tmp_path / "run.pdopt").write_bytes(pickle.dumps(pdopt, protocol=2))

    params, opt_state = fluid.load_dygraph(str(tmp_path / "run"))
    tensors = {k: torch.nn.Parameter(torch.from_numpy(np.array(params[names[k]]))) for k in names}
    opt = fluid.optimizer.RMSProp(
        cfg["lr"],
        rho=cfg["rho"],
        epsilon=cfg["epsilon"],
        momentum=cfg["momentum"],
        centered=cfg["centered"],
        parameters=[(names[k], t) for k, t in tensors.items()],
    )
    assert opt.set_state_dict(opt_state).ok
    for t in (2, 3, 4):
        for k, p in tensors.items():
            p.grad = torch.tensor(case["grads_fed"][t][k], dtype=torch.float32)
        opt.step()
        for k, p in tensors.items():
            np.testing.assert_allclose(p.detach().numpy(), case["steps"][t]["params"][k], rtol=1e-5, atol=1e-6)


def _static_program():
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x, y = L.data("x", [13]), L.data("y", [1])
        loss = L.mean(L.square_error_cost(L.fc(x, 1), y))
        fluid.optimizer.RMSProp(0.01, momentum=0.9, centered=True).minimize(loss)
    return main, start, loss


def test_static_checkpoint_resumes_in_dygraph_mode(tmp_path):
    rng = np.random.default_rng(3)
    xs = rng.normal(size=(10, 4, 13)).astype("float32")
    ys = rng.normal(size=(10, 4, 1)).astype("float32")
    main, start, loss = _static_program()
    scope = fluid.Scope()
    exe = fluid.Executor(fluid.CPUPlace())
    with fluid.scope_guard(scope):
        exe.run(start)
        for i in range(5):
            exe.run(main, feed={"x": xs[i], "y": ys[i]}, fetch_list=[loss])
        fluid.save(main, str(tmp_path / "static"))
        for i in range(5, 10):
            exe.run(main, feed={"x": xs[i], "y": ys[i]}, fetch_list=[loss])
        w_static = np.array(scope.find_var("fc_0.w_0").get_tensor())

    params = fluid.load(str(tmp_path / "static.pdparams"))
    w = torch.nn.Parameter(params["fc_0.w_0"].clone())
    b = torch.nn.Parameter(params["fc_0.b_0"].clone())
    opt = fluid.optimizer.RMSProp(0.01, momentum=0.9, centered=True, parameters={"fc_0.w_0": w, "fc_0.b_0": b})
    report = opt.set_state_dict(fluid.load(str(tmp_path / "static.pdopt")), strict=False)
    assert not report.missing and not report.mismatched
    assert all("_mean_square_0" not in k and "_momentum_0" not in k for k in report.unexpected)
    for i in range(5, 10):  # the same ops, run eagerly
        pred = L.elementwise_add(math_ops.mul(torch.from_numpy(xs[i]), w), b, axis=1)
        out = L.mean(L.square_error_cost(pred, torch.from_numpy(ys[i])))
        out.backward()
        opt.minimize(out)
        opt.clear_gradients()
    np.testing.assert_array_equal(w.detach().numpy(), w_static)


def _entry_points(tmp_path, evil_bytes):
    """Every loader of files, each given the malicious file in the place it reads."""
    main, start, _ = _static_program()
    exe = fluid.Executor(fluid.CPUPlace())
    scope = fluid.Scope()
    with fluid.scope_guard(scope):
        exe.run(start)

    def write(path):
        path = str(path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(evil_bytes)
        return path

    def persistables():
        d = tmp_path / "persist"
        for v in main.list_vars():
            if v.persistable:
                write(d / v.name)
        with fluid.scope_guard(scope):
            fluid.io.load_persistables(exe, str(d), main)

    def checkpointer():
        write(tmp_path / "ck" / "ckpt-00000001.tfckpt")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert Checkpointer(tmp_path / "ck").resume() is None
        raise CheckpointError("skipped as damaged")

    return {
        "torchfluid.load": lambda: fluid.load(write(tmp_path / "a.tfckpt")),
        "fluid.load(program)": lambda: (write(tmp_path / "p.pdparams"), fluid.load(main, str(tmp_path / "p"), exe)),
        "load_dygraph": lambda: fluid.load_dygraph(write(tmp_path / "d.pdparams")[: -len(".pdparams")]),
        "fluid.io.load_persistables": persistables,
        "fluid.io.safe_load": lambda: fluid.io.safe_load(write(tmp_path / "s.pkl")),
        "Checkpointer.resume": checkpointer,
    }


@pytest.mark.parametrize("container", ["plain_pickle", "torch_zip"])
def test_every_load_entry_point_refuses_a_malicious_pickle(tmp_path, container):
    target = tmp_path / "pwned"
    if container == "plain_pickle":
        evil = pickle.dumps({"fc_0.w_0": WritesAFile(str(target))}, protocol=2)
    else:
        import io as _io

        buf = _io.BytesIO()
        torch.save({"fc_0.w_0": WritesAFile(str(target))}, buf)
        evil = buf.getvalue()
    for name, load in _entry_points(tmp_path, evil).items():
        with pytest.raises(Exception) as info:
            load()
        assert not isinstance(info.value, (AttributeError, NameError, AssertionError)), (name, info.value)
        assert str(info.value), name
        assert not target.exists(), f"{name} ran code from the file"
