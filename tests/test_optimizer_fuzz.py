"""Fuzzing the public optimizer API (hypothesis state machine): random sequences of
step/minimize/set_lr/state_dict/set_state_dict/clear_gradients/add_param_group with random,
often hostile inputs (NaN, inf, wrong shapes and dtypes, meta-device tensors, empty
tensors, huge values, garbage state dicts). After every call the optimizer is either
unchanged with a clear exception, or in a valid state (every state tensor matches its
parameter's shape, dtype and device; the state dict round-trips)."""

import math

import hypothesis.strategies as st
import torch
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from torchfluid.clip import ClipGradByGlobalNorm
from torchfluid.optimizer import RMSProp

CLEAR_ERRORS = (ValueError, TypeError, RuntimeError)
SHAPES = [(3, 4), (5,), (0,), (2, 1, 3)]
VALUES = st.sampled_from([0.0, 1.0, -1.0, 1e-30, 1e30, float("nan"), float("inf"), -float("inf"), 3.4e38])


def snapshot(opt, params):
    state = {k: v.clone() for k, v in opt.state_dict().items() if torch.is_tensor(v)}
    return (
        [p.detach().clone() for p in params],
        state,
        [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups],
    )


def same(a, b):
    pa, sa, ga = a
    pb, sb, gb = b
    return (
        all(
            torch.equal(x, y) or (torch.isnan(x).any() and torch.equal(x.nan_to_num(), y.nan_to_num()))
            for x, y in zip(pa, pb, strict=False)
        )
        and sa.keys() == sb.keys()
        and all(torch.equal(sa[k].nan_to_num(), sb[k].nan_to_num()) for k in sa)
        and len(ga) == len(gb)
    )


class OptimizerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.params = [torch.nn.Parameter(torch.randn(*s)) for s in SHAPES[:2]]
        self.opt = RMSProp(
            0.01,
            momentum=0.9,
            centered=True,
            parameters=[("a", self.params[0]), ("b", self.params[1])],
            grad_clip=ClipGradByGlobalNorm(1.0),
            weight_decay=0.01,
        )
        self.saved = None

    def attempt(self, fn):
        before = snapshot(self.opt, self.params)
        try:
            fn()
        except CLEAR_ERRORS as e:
            assert str(e), "errors must say what is wrong"
            assert same(before, snapshot(self.opt, self.params)), f"state changed by a failed call: {e}"

    @rule(fill=VALUES, which=st.integers(0, 3), kind=st.sampled_from(["ok", "shape", "dtype", "meta", "int"]))
    def apply_gradients(self, fill, which, kind):
        pairs = []
        for i, p in enumerate(self.params):
            g = torch.full_like(p, fill) if i == which % len(self.params) else torch.randn_like(p)
            if i == which % len(self.params):
                g = {
                    "ok": g,
                    "shape": torch.full((7,), fill),
                    "dtype": g.double(),
                    "meta": g.to("meta"),
                    "int": torch.ones_like(p, dtype=torch.int32),
                }[kind]
            pairs.append((p, g))
        self.attempt(lambda: self.opt.apply_gradients(pairs))

    @rule(value=st.one_of(VALUES, st.just(None), st.just("x"), st.just(torch.ones(2)), st.just(torch.tensor([0.5]))))
    def set_lr(self, value):
        self.attempt(lambda: self.opt.set_lr(value))

    @rule()
    def clear(self):
        self.opt.clear_gradients()

    @rule()
    def save(self):
        self.saved = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in self.opt.state_dict().items()}

    @precondition(lambda self: self.saved is not None)
    @rule(mutation=st.sampled_from(["none", "drop", "shape", "dtype", "extra", "junk", "group"]), strict=st.booleans())
    def load(self, mutation, strict):
        sd = dict(self.saved)
        keys = [k for k in sd if torch.is_tensor(sd[k])]
        if keys and mutation == "drop":
            del sd[keys[0]]
        elif keys and mutation == "shape":
            sd[keys[0]] = torch.zeros(9)
        elif keys and mutation == "dtype":
            sd[keys[0]] = sd[keys[0]].to(torch.float16)
        elif mutation == "extra":
            sd["zz_mean_square_0"] = torch.zeros(1)
        elif mutation == "junk":
            sd["not a key"] = object()
        elif mutation == "group":
            sd["param_groups"] = [{"lr": -1.0}]
        self.attempt(lambda: self.opt.set_state_dict(sd, strict=strict))

    @rule(shape=st.sampled_from(SHAPES[2:]))
    def add_group(self, shape):
        if len(self.params) >= 4:
            return
        p = torch.nn.Parameter(torch.randn(*shape))
        self.attempt(lambda: self.opt.add_param_group({"params": [(f"p{len(self.params)}", p)], "lr": 0.02}))
        if any(p is q for g in self.opt.param_groups for q in g["params"]):
            self.params.append(p)

    @invariant()
    def state_is_valid(self):
        managed = {id(q) for g in self.opt.param_groups for q in g["params"]}
        for p in self.params:
            assert id(p) in managed
            for acc, t in (self.opt.state.get(p) or {}).items():
                assert t.shape == p.shape and t.dtype == p.dtype and t.device == p.device, acc
        for g in self.opt.param_groups:
            assert g["lr"] >= 0 and math.isfinite(g["lr"])
        sd = self.opt.state_dict()
        assert self.opt.set_state_dict(sd).ok


TestOptimizerFuzz = OptimizerMachine.TestCase
TestOptimizerFuzz.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
)
