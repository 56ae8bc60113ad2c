"""What the per-optimizer numpy tables share (tests/test_adagrad.py, tests/test_momentum.py):
three parameters (``w``, an embedding ``emb`` whose gradient may be row-sparse, ``b``),
four steps of gradients drawn from one seed, a training loop over them, raw-op scopes and
a small static program."""

import copy

import numpy as np
import torch

import torchfluid as fluid

from .optim_configs import mark

F32 = np.float32
PLACE = fluid.CPUPlace()
STEPS = 4
SHAPES = {"w": (5, 3), "emb": (6, 3), "b": (3,)}


def dense_of(rows, values, height):
    """A SelectedRows' matrix: zeros, each value row added into its row (duplicates summed)."""
    out = np.zeros((height,) + values.shape[1:], values.dtype)
    for r, v in zip(rows, values, strict=True):
        out[r] += v
    return out


class Steps:
    """Initial parameters ``p0`` and each step's gradients, drawn from ``seed``: dense ones for
    every parameter, and for ``emb`` the rows ``sparse_rows[step]`` (they may repeat)."""

    def __init__(self, seed, sparse_rows):
        rng = np.random.default_rng(seed)
        self.p0 = {n: rng.uniform(-1, 1, s).astype(F32) for n, s in SHAPES.items()}
        self.dense_g = [{n: rng.uniform(-1, 1, s).astype(F32) for n, s in SHAPES.items()} for _ in range(STEPS)]
        self.sparse_rows = sparse_rows
        self.sparse_values = [rng.uniform(-1, 1, (len(r), 3)).astype(F32) for r in sparse_rows]

    def grad(self, name, step, sparse):
        """The gradient of ``name`` at ``step``: a torch tensor (sparse COO for 'emb' if ``sparse``)."""
        if sparse and name == "emb":
            rows, values = self.sparse_rows[step], self.sparse_values[step]
            return torch.sparse_coo_tensor(
                torch.tensor([rows]), torch.tensor(values), SHAPES["emb"], check_invariants=True
            )
        return torch.tensor(self.dense_g[step][name])

    def train(self, cls, kwargs, sparse, attrs, steps=range(STEPS), params=None, opt=None):
        """``steps`` optimizer steps of ``cls(parameters=..., **kwargs)`` (or ``opt``) over fresh
        parameters marked with ``attrs`` (or ``params``); returns (params, opt)."""
        if params is None:
            params = {n: torch.nn.Parameter(torch.tensor(v)) for n, v in self.p0.items()}
            for n, t in params.items():
                mark(t, attrs.get(n, {}))
        if opt is None:
            opt = cls(parameters=list(params.items()), **copy.deepcopy(kwargs))
        for step in steps:
            for n, t in params.items():
                t.grad = self.grad(n, step, sparse)
            opt.step()
        return params, opt


def op_scope(values, sparse=None):
    """A scope holding ``values`` and, given ``(height, rows, value)``, a SelectedRows ``Grad``."""
    scope = fluid.Scope()
    for name, v in values.items():
        scope.var(name).get_tensor().set(v, PLACE)
    if sparse is not None:
        height, rows, value = sparse
        sr = scope.var("Grad").get_selected_rows()
        sr.set_height(height)
        sr.set_rows(rows)
        sr.get_tensor().set(value, PLACE)
    return scope


def static_program(opt_factory):
    """(main, startup, loss) of a one-fc program minimized by ``opt_factory()``."""
    main, start = fluid.Program(), fluid.Program()
    with fluid.program_guard(main, start), fluid.unique_name.guard():
        x = fluid.layers.data("x", [3], dtype="float32")
        loss = fluid.layers.mean(fluid.layers.fc(x, 2))
        opt_factory().minimize(loss)
    return main, start, loss
