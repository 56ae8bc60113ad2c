"""Steady-state steps replay the fused kernel calls (Optimizer._replay, FusedUpdate.replay).

Each case trains two identical models for six steps on the same gradients: one with
``step()`` (which replays the last plain update when nothing changed), one with
``apply_gradients`` (which always runs the whole pipeline). Between steps 3 and 4 the same
change is made to both. Parameters and accumulators must end bit-identical, and in the
unchanged case the replay must actually have run.
"""

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from torchfluid.optimizer import RMSProp
from torchfluid.optimizer.fused import FusedUpdate
from torchfluid.regularizer import L1Decay, L2Decay

pytest.importorskip("numba")


def _model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))


def _set_grads(model, step):
    gen = torch.Generator().manual_seed(100 + step)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen)


def _noncontiguous_grad(model, opt):
    w = model[0].weight
    g = torch.empty(w.shape[::-1]).t()
    g.copy_(w.grad)
    w.grad = g


def _new_group(model, opt):
    extra = torch.nn.Parameter(torch.full((2,), 0.5))
    opt.add_param_group({"params": [("extra", extra)], "lr": 0.02})
    model.extra = extra


def _set_attr(name, make):
    def change(model, opt):
        setattr(opt, name, make())

    return change


def _group(key, value):
    def change(model, opt):
        opt.param_groups[0][key] = value

    return change


def _param_attr(name, value):
    def change(model, opt):
        setattr(model[0].weight, name, value)

    return change


def _reload_state(model, opt):
    opt.set_state_dict(opt.state_dict())


def _replace_param_storage(model, opt):
    model[2].bias.data = model[2].bias.data.clone()


class _ScaledL2(L2Decay):
    """A regularizer subclass: no fused kernel folds it in (it may compute anything)."""

    def __call__(self, param, grad):
        return super().__call__(param, grad * 0.5)


def _replace_state_record(model, opt):
    p = model[0].bias
    opt.state[p] = {k: v.clone() for k, v in opt.state[p].items()}


CASES = [
    ("nothing changes", None),
    ("group lr edited", _group("lr", 0.05)),
    ("group momentum edited", _group("momentum", 0.5)),
    ("group turns centered", _group("centered", True)),
    ("group maximizes", _group("maximize", True)),
    ("parameter regularizer set", _param_attr("regularizer", L2Decay(0.1))),
    ("parameter lr multiplier set", _param_attr("optimize_attr", {"learning_rate": 0.5})),
    ("optimizer regularization set", _set_attr("regularization", lambda: L1Decay(0.01))),
    ("group weight_decay set", _group("weight_decay", 0.05)),
    ("parameter regularizer subclass set", _param_attr("regularizer", _ScaledL2(0.1))),
    ("GradScaler found_inf set", _set_attr("found_inf", lambda: torch.tensor(0.0))),
    ("state dict reloaded", _reload_state),
    ("state record replaced", _replace_state_record),
    ("parameter storage replaced", _replace_param_storage),
    ("gradient not contiguous", _noncontiguous_grad),
    ("param group added", _new_group),
]


def _train(change, replaying, steps=6):
    model = _model(0)
    opt = RMSProp(0.01, rho=0.9, epsilon=1e-6, momentum=0.9, parameters=list(model.named_parameters()))
    for step in range(steps):
        _set_grads(model, step)
        if step == 3 and change is not None:
            change(model, opt)
        if replaying:
            opt.step()
        else:
            opt.apply_gradients([(p, p.grad) for g in opt.param_groups for p in g["params"]])
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    state = {k: v.clone() for k, v in opt.state_dict().items() if isinstance(v, torch.Tensor)}
    return params, state


@pytest.mark.parametrize("label,change", CASES, ids=[c[0] for c in CASES])
def test_replayed_steps_equal_the_whole_pipeline(label, change):
    got_params, got_state = _train(change, replaying=True)
    want_params, want_state = _train(change, replaying=False)
    assert got_params.keys() == want_params.keys() and got_state.keys() == want_state.keys()
    for name in want_params:
        np.testing.assert_array_equal(got_params[name].numpy(), want_params[name].numpy(), err_msg=name)
    for key in want_state:
        np.testing.assert_array_equal(got_state[key].numpy(), want_state[key].numpy(), err_msg=key)


def _replay_outcomes(monkeypatch) -> list:
    """The list each FusedUpdate.replay call's outcome is appended to."""
    outcomes = []
    original = FusedUpdate.replay

    def spy(self, *args, **kwargs):
        outcomes.append(original(self, *args, **kwargs))
        return outcomes[-1]

    monkeypatch.setattr(FusedUpdate, "replay", spy)
    return outcomes


def test_unchanged_steps_are_replayed(monkeypatch):
    outcomes = _replay_outcomes(monkeypatch)
    _train(None, replaying=True)
    assert outcomes == [True] * 5  # steps 2..6 (the first step builds the flat groups)


@pytest.mark.parametrize(
    "options",
    [{"regularization": L2Decay(0.05)}, {"weight_decay": 0.01}, {"regularization": L1Decay(0.01)}],
    ids=["L2Decay", "weight_decay", "L1Decay"],
)
def test_steps_with_a_folded_regularizer_are_replayed_and_equal_the_pipeline(options, monkeypatch):
    """torch's weight_decay (an L2Decay) and Paddle's L1Decay fold into the kernel's pass:
    their steady steps replay too, with the same bits as the whole pipeline."""
    outcomes = _replay_outcomes(monkeypatch)
    runs = []
    for replaying in (True, False):
        model = _model(0)
        opt = RMSProp(0.01, momentum=0.9, parameters=list(model.named_parameters()), **options)
        for step in range(5):
            _set_grads(model, step)
            if replaying:
                opt.step()
            else:
                opt.apply_gradients([(p, p.grad) for g in opt.param_groups for p in g["params"]])
        runs.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    assert outcomes == [True] * 4
    assert torch.equal(runs[0], runs[1])


# changes the replay itself takes in (it reads the multipliers and the L2Decay/L1Decay
# regularizers, which the kernel folds in, and re-binds addresses each step)
REPLAYED = {
    "parameter lr multiplier set",
    "parameter storage replaced",
    "parameter regularizer set",
    "optimizer regularization set",
}
PIPELINE_CASES = [c for c in CASES[1:] if c[0] not in REPLAYED]


@pytest.mark.parametrize("label,change", PIPELINE_CASES, ids=[c[0] for c in PIPELINE_CASES])
def test_a_change_runs_the_whole_pipeline_for_that_step(label, change, monkeypatch):
    calls = []
    original = FusedUpdate.replay

    def spy(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        calls.append(result)
        return result

    monkeypatch.setattr(FusedUpdate, "replay", spy)
    model = _model(0)
    opt = RMSProp(0.01, rho=0.9, epsilon=1e-6, momentum=0.9, parameters=list(model.named_parameters()))
    for step in range(3):
        _set_grads(model, step)
        opt.step()
    calls.clear()
    _set_grads(model, 3)
    change(model, opt)
    opt.step()
    assert calls in ([], [False])  # not replayed: the change reached the pipeline


# ---------------------------------------------------------------------------- random change sequences
class ReplayMachine(RuleBasedStateMachine):
    """Two twins take the same gradients and the same changes in random order: one by
    ``step()`` (replaying where it may), one by ``apply_gradients`` (the whole pipeline
    every time); after every rule they hold the same bits."""

    def __init__(self):
        super().__init__()
        self.twins = []
        for _ in range(2):
            model = _model(1)
            opt = RMSProp(0.01, rho=0.9, epsilon=1e-6, momentum=0.9, parameters=list(model.named_parameters()))
            self.twins.append((model, opt))
        self.step_count = 0

    def _both(self, change):
        """The change on both twins; where it is refused, it is refused by both alike."""
        outcomes = []
        for model, opt in self.twins:
            try:
                change(model, opt)
                outcomes.append(None)
            except (ValueError, TypeError) as e:
                outcomes.append((type(e), str(e)))
        assert outcomes[0] == outcomes[1]

    # mostly plain steps, so that replays happen between the changes
    @rule(
        skip=st.sampled_from([frozenset()] * 4 + [frozenset({1}), frozenset({0, 3})]),
        transposed=st.sampled_from([False] * 5 + [True]),
    )
    def step(self, skip, transposed):
        self.step_count += 1
        for k, (model, opt) in enumerate(self.twins):
            _set_grads(model, self.step_count)
            for i, p in enumerate(model.parameters()):
                if i in skip:
                    p.grad = None
            if transposed and model[0].weight.grad is not None:
                _noncontiguous_grad(model, opt)
            if k == 0:
                opt.step()
            else:
                opt.apply_gradients([(p, p.grad) for g in opt.param_groups for p in g["params"]])

    @rule(key=st.sampled_from(["lr", "momentum", "rho", "centered", "maximize"]), pick=st.integers(0, 2))
    def edit_group(self, key, pick):
        value = {
            "lr": [0.01, 0.03, 0.0][pick],
            "momentum": [0.9, 0.0, 0.5][pick],
            "rho": [0.9, 0.5, 0.99][pick],
            "centered": [False, True, False][pick],
            "maximize": [False, True, False][pick],
        }[key]
        self._both(_group(key, value))

    @rule(which=st.integers(0, 3), reg=st.sampled_from([None, "l1", "l2"]))
    def set_param_regularizer(self, which, reg):
        def change(model, opt):
            p = list(model.parameters())[which]
            p.regularizer = None if reg is None else (L1Decay(0.01) if reg == "l1" else L2Decay(0.02))

        self._both(change)

    @rule(which=st.integers(0, 3), mult=st.sampled_from([1.0, 0.5, 2.0]))
    def set_lr_multiplier(self, which, mult):
        self._both(
            lambda model, opt: setattr(list(model.parameters())[which], "optimize_attr", {"learning_rate": mult})
        )

    @rule(reg=st.sampled_from([None, "l2"]))
    def set_regularization(self, reg):
        self._both(lambda model, opt: setattr(opt, "regularization", None if reg is None else L2Decay(0.01)))

    @rule(on=st.booleans())
    def found_inf(self, on):
        self._both(lambda model, opt: setattr(opt, "found_inf", torch.tensor(0.0) if on else None))

    @rule()
    def reload_state(self):
        self._both(_reload_state)

    @rule()
    def replace_storage(self):
        self._both(_replace_param_storage)

    @invariant()
    def twins_agree(self):
        (ma, oa), (mb, ob) = self.twins
        for (name, a), b in zip(ma.named_parameters(), mb.parameters(), strict=True):
            assert torch.equal(a, b), name
        sa, sb = oa.state_dict(), ob.state_dict()
        assert sa.keys() == sb.keys()
        for k in sa:
            if isinstance(sa[k], torch.Tensor):
                assert torch.equal(sa[k], sb[k]), k


ReplayMachine.TestCase.settings = settings(
    max_examples=120, stateful_step_count=30, deadline=None, suppress_health_check=list(HealthCheck)
)
TestReplayMachine = ReplayMachine.TestCase
