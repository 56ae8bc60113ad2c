"""Save -> load -> continue equals the uninterrupted run, bit for bit, for configurations
whose update draws random bits (bfloat16 state with stochastic rounding) or follows a
schedule: in a program (``save_persistables``/``load_persistables`` and ``fluid.save``/
``fluid.load`` into a freshly built program and scope) and eagerly (``state_dict`` /
``set_state_dict`` into a fresh optimizer)."""

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import layers as L
from torchfluid.static.optimize import accumulator_vars
from tests.optim_configs import B0, STEPS, W0, X, Y, _attr, bits

SPLIT = 3  # steps before the checkpoint

CASES = {
    "bf16_state": {"state_dtype": torch.bfloat16, "momentum": 0.9, "centered": True},
    "bf16_state_schedule": {"state_dtype": torch.bfloat16, "momentum": 0.9, "lr": "piecewise"},
    "bf16_state_skip": {"state_dtype": torch.bfloat16, "nonfinite": "skip"},
}


def _lr(options, static):
    if options.get("lr") != "piecewise":
        return 0.05
    if static:
        return L.piecewise_decay([2, 4], [0.05, 0.02, 0.01])
    return fluid.dygraph.learning_rate_scheduler.PiecewiseDecay([2, 4], [0.05, 0.02, 0.01], begin=0)


def _opt_kwargs(options):
    return {k: v for k, v in options.items() if k != "lr"}


def _batches(options):
    xs = X.copy()
    if options.get("nonfinite") == "skip":
        xs[1, 0, 0] = float("inf")  # one skipped step before the checkpoint
    return [(xs[i], Y[i]) for i in range(STEPS)]


class StaticRun:
    def __init__(self, options):
        self.main, start = fluid.Program(), fluid.Program()
        with fluid.program_guard(self.main, start), fluid.unique_name.guard():
            x = L.data("x", [13])
            y = L.data("y", [1])
            pred = L.fc(x, 1, param_attr=_attr(W0, {}, "float32"), bias_attr=_attr(B0, {}, "float32"))
            self.loss = L.mean(L.square_error_cost(pred, y))
            fluid.optimizer.RMSProp(_lr(options, True), **_opt_kwargs(options)).minimize(self.loss)
        self.scope = fluid.Scope()
        self.exe = fluid.Executor()
        self.exe.run(start, scope=self.scope)

    def step(self, x, y):
        self.exe.run(self.main, feed={"x": x, "y": y}, fetch_list=[self.loss], scope=self.scope)

    def values(self):
        names = ["fc_0.w_0", "fc_0.b_0"] + sorted(
            v for accs in accumulator_vars(self.main).values() for v in accs.values()
        )
        return {n: self.scope.value(n).detach().clone() for n in names}

    def save(self, path, how):
        with fluid.scope_guard(self.scope):
            if how == "persistables":
                fluid.io.save_persistables(self.exe, str(path), self.main)
            else:
                fluid.save(self.main, str(path / "model"))

    def load(self, path, how):
        with fluid.scope_guard(self.scope):
            if how == "persistables":
                fluid.io.load_persistables(self.exe, str(path), self.main)
            else:
                fluid.load(self.main, str(path / "model"), self.exe)


class EagerRun:
    def __init__(self, options):
        self.w = torch.nn.Parameter(torch.tensor(W0))
        self.b = torch.nn.Parameter(torch.tensor(B0))
        self.opt = fluid.optimizer.RMSProp(
            _lr(options, False), parameters={"fc_0.w_0": self.w, "fc_0.b_0": self.b}, **_opt_kwargs(options)
        )

    def step(self, x, y):
        loss = L.mean(L.square_error_cost(torch.from_numpy(x) @ self.w + self.b, torch.from_numpy(y)))
        loss.backward()
        self.opt.step()
        self.opt.clear_grad()

    def values(self):
        out = {"fc_0.w_0": self.w.detach().clone(), "fc_0.b_0": self.b.detach().clone()}
        out.update(
            {k: v.clone() for k, v in self.opt.state_dict().items() if isinstance(k, str) and k.startswith("fc_0.")}
        )
        return out

    def save(self, path, how):
        torch.save({"w": self.w.detach(), "b": self.b.detach(), "opt": self.opt.state_dict()}, path / "ckpt.pt")

    def load(self, path, how):
        ckpt = torch.load(path / "ckpt.pt")
        with torch.no_grad():
            self.w.copy_(ckpt["w"])
            self.b.copy_(ckpt["b"])
        self.opt.set_state_dict(ckpt["opt"])


RUNS = {
    "static-persistables": (StaticRun, "persistables"),
    "static-fluid.save": (StaticRun, "save"),
    "eager-state_dict": (EagerRun, "state_dict"),
}


def _assert_equal(got, ref, what):
    assert sorted(got) == sorted(ref)
    for k in ref:
        assert got[k].dtype == ref[k].dtype, k
        assert torch.equal(bits(got[k]), bits(ref[k])), f"{what}: {k} differs"


@pytest.mark.parametrize("run", sorted(RUNS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_save_load_continue_equals_the_uninterrupted_run(case, run, tmp_path):
    make, how = RUNS[run]
    options, batches = CASES[case], _batches(CASES[case])
    whole = make(options)
    for x, y in batches:
        whole.step(x, y)
    first = make(options)
    for x, y in batches[:SPLIT]:
        first.step(x, y)
    first.save(tmp_path, how)
    resumed = make(options)  # a fresh program / scope / optimizer
    resumed.load(tmp_path, how)
    for x, y in batches[SPLIT:]:
        resumed.step(x, y)
    _assert_equal(resumed.values(), whole.values(), f"{case} {run}")


def test_the_rounding_counter_is_what_makes_the_resumed_bf16_run_exact(tmp_path):
    """Resuming with the stochastic-rounding counter reset to 0 (the bits an optimizer
    that forgot it would draw) ends elsewhere: the comparison above can fail."""
    options = CASES["bf16_state"]
    whole = StaticRun(options)
    for x, y in _batches(options):
        whole.step(x, y)
    first = StaticRun(options)
    for x, y in _batches(options)[:SPLIT]:
        first.step(x, y)
    first.save(tmp_path, "persistables")
    resumed = StaticRun(options)
    resumed.load(tmp_path, "persistables")
    (counter,) = [n for n in resumed.main.global_block().vars if n.startswith("stochastic_rounding_step")]
    assert int(resumed.scope.value(counter)[0]) == SPLIT
    resumed.scope.value(counter).zero_()
    for x, y in _batches(options)[SPLIT:]:
        resumed.step(x, y)
    got, ref = resumed.values(), whole.values()
    assert any(not torch.equal(bits(got[k]), bits(ref[k])) for k in ref)


@pytest.mark.parametrize(
    "saved, error",
    [
        ({"step": -1}, "stochastic_rounding: expected {'step': int >= 0}"),
        ({"step": 1.5}, "stochastic_rounding: expected {'step': int >= 0}"),
        ({"step": True}, "stochastic_rounding: expected {'step': int >= 0}"),
        ({}, "stochastic_rounding: expected {'step': int >= 0}"),
        ([3], "stochastic_rounding: expected {'step': int >= 0}"),
    ],
)
def test_a_bad_rounding_counter_is_refused_and_nothing_changes(saved, error):
    run = EagerRun(CASES["bf16_state"])
    run.step(X[0], Y[0])
    before = run.values()
    sd = run.opt.state_dict()
    assert sd["stochastic_rounding"] == {"step": 1}
    with pytest.raises(ValueError, match=error.replace("{", r"\{").replace("}", r"\}")):
        run.opt.set_state_dict({**sd, "stochastic_rounding": saved})
    _assert_equal(run.values(), before, "after a refused load")
    assert run.opt.state_dict()["stochastic_rounding"] == {"step": 1}


@pytest.mark.parametrize("step", [4, np.int64(4), torch.tensor(4)])
def test_the_rounding_counter_loads_from_ints_numpy_and_tensors(step):
    run = EagerRun(CASES["bf16_state"])
    run.step(X[0], Y[0])
    run.opt.set_state_dict({**run.opt.state_dict(), "stochastic_rounding": {"step": step}})
    assert run.opt.state_dict()["stochastic_rounding"] == {"step": 4}


def test_a_rounding_counter_for_an_optimizer_without_bf16_state_is_unexpected():
    run = EagerRun({"momentum": 0.9})
    run.step(X[0], Y[0])
    sd = run.opt.state_dict()
    assert "stochastic_rounding" not in sd
    with pytest.raises(ValueError, match=r"unexpected \(1\): stochastic_rounding \(this optimizer's state is not"):
        run.opt.set_state_dict({**sd, "stochastic_rounding": {"step": 3}})
