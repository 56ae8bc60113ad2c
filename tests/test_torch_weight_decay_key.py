"""torch's ``weight_decay`` in every param group of torchfluid.optim's Paddle-maths classes.

torch's groups all hold ``weight_decay`` and the ecosystem reads and writes it (timm's
``Scheduler(optimizer, param_group_field="weight_decay")`` copies it to ``initial_weight_decay``
at construction). torchfluid.optim's ``SGD``, ``Momentum``, ``Adam``, ``Adamax``, ``Adadelta``,
``Adagrad``, ``RMSProp`` and ``Lamb`` hold the group's coupled L2 coefficient there (the
optimizer's ``L2Decay`` coefficient where the group sets none, 0.0 without regularization);
``AdamW`` its decoupled ``coeff``, the two kept equal as ``betas`` and ``beta1``/``beta2``.
Where the optimizer's regularization is no coupled L2 (``L1Decay``, a custom regularizer) a group
that sets none holds no ``weight_decay`` and reading it raises a KeyError saying why. The
numbers are those of the Paddle-layout namesakes (torchfluid.optimizer.*), whose groups hold the
key only where given or written."""

import copy
import pickle

import pytest
import torch

import torchfluid.optim as O
import torchfluid.optimizer as F
from torchfluid.regularizer import L1Decay, L2Decay

ABSENT = object()  # the group holds no weight_decay

# class name -> its options besides the regularization (the same for both layouts)
COUPLED = {
    "SGD": {"learning_rate": 0.1},
    "Momentum": {"learning_rate": 0.05, "momentum": 0.9},
    "Adam": {"learning_rate": 0.01},
    "Adamax": {"learning_rate": 0.01},
    "Adadelta": {"learning_rate": 1.0},
    "Adagrad": {"learning_rate": 0.1},
    "RMSProp": {"learning_rate": 0.01, "momentum": 0.5},
    "Lamb": {"learning_rate": 0.01},
}


class HalfL2(L2Decay):
    """A custom regularizer (an L2Decay subclass with its own term): no torch weight_decay."""

    def term(self, param):
        return super().term(param) * 0.5


_TENSOR_WD = torch.tensor(3e-2)

# regularization config -> (its keyword arguments, the weight_decay a group that sets none holds)
REGULARIZATIONS = {
    "none": ({}, 0.0),
    "weight_decay": ({"weight_decay": 1e-2}, 1e-2),
    "L2Decay": ({"regularization": L2Decay(2e-2)}, 2e-2),
    "tensor": ({"weight_decay": _TENSOR_WD}, _TENSOR_WD),
    "L1Decay": ({"regularization": L1Decay(1e-2)}, ABSENT),
    "custom": ({"regularization": HalfL2(1e-2)}, ABSENT),
}

# AdamW: config -> (keyword arguments, the weight_decay and coeff a group that sets none holds)
ADAMW = {
    "default": ({}, 0.01),
    "weight_decay": ({"weight_decay": 0.1}, 0.1),
    "tensor": ({"weight_decay": _TENSOR_WD}, _TENSOR_WD),
}

CASES = [(name, reg) for name in COUPLED for reg in REGULARIZATIONS] + [("AdamW", reg) for reg in ADAMW]


def _case(name, reg):
    """(options, expected weight_decay of a group that sets none)."""
    if name == "AdamW":
        kwargs, expected = ADAMW[reg]
        return {"learning_rate": 0.01, **kwargs}, expected
    kwargs, expected = REGULARIZATIONS[reg]
    return {**COUPLED[name], **kwargs}, expected


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))


def _groups(model):
    """Two groups: the first sets no weight_decay, the second its own (0.05)."""
    return [
        {"params": list(model[0].parameters())},
        {"params": list(model[2].parameters()), "weight_decay": 0.05},
    ]


def _make(namespace, name, reg, model):
    kwargs, _ = _case(name, reg)
    return getattr(namespace, name)(parameters=_groups(model), **kwargs)


def _backward(model, seed):
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(seed))
    for p in model.parameters():
        p.grad = None
    model(x).pow(2).mean().backward()


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    return a == b


def _check_group(group, expected):
    if expected is ABSENT:
        assert "weight_decay" not in group
        with pytest.raises(KeyError, match="not a coupled L2 decay"):
            group["weight_decay"]
        return
    assert _same(group["weight_decay"], expected), (group["weight_decay"], expected)
    if "coeff" in group:  # AdamW: the decoupled coefficient is the same value
        assert group["coeff"] is group["weight_decay"] or group["coeff"] == group["weight_decay"]


def _check(opt, expected: list):
    assert len(opt.param_groups) == len(expected)
    for group, value in zip(opt.param_groups, expected, strict=True):
        _check_group(group, value)


@pytest.mark.parametrize(("name", "reg"), CASES)
def test_every_group_holds_weight_decay_after_each_event(name, reg):
    """After construction, add_param_group, steps, load_state_dict (torch's layout),
    set_state_dict (Paddle's layout), deepcopy and pickle, each group holds what its update uses."""
    _, default = _case(name, reg)
    model = _model()
    opt = _make(O, name, reg, model)
    _check(opt, [default, 0.05])  # construction
    opt.add_param_group({"params": [model[3].weight]})
    opt.add_param_group({"params": [model[3].bias], "weight_decay": 0.0})
    expected = [default, 0.05, default, 0.0]
    _check(opt, expected)  # add_param_group
    for seed in range(3):
        _backward(model, seed)
        opt.step()
    _check(opt, expected)  # steps
    opt.param_groups[1]["weight_decay"] = 0.07  # a scheduler's write, taken at the next step
    _backward(model, 3)
    opt.step()
    expected[1] = 0.07
    _check(opt, expected)

    def twin():
        other = _make(O, name, reg, model)
        other.add_param_group({"params": [model[3].weight]})
        other.add_param_group({"params": [model[3].bias], "weight_decay": 0.0})
        return other

    loaded = twin()
    loaded.load_state_dict(opt.state_dict())  # torch's layout
    _check(loaded, expected)
    loaded = twin()
    loaded.set_state_dict(opt.paddle_state_dict())  # Paddle's layout
    _check(loaded, expected)
    for copied in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        _check(copied, expected)
        if reg == "tensor":  # the tensor coefficient stays one object with the optimizer's own
            reg_coeff = copied.regularization.coeff if name != "AdamW" else copied.defaults["coeff"]
            assert copied.param_groups[0]["weight_decay"] is reg_coeff


@pytest.mark.parametrize(("name", "reg"), CASES)
def test_the_updates_are_the_paddle_layout_namesakes(name, reg):
    """Bit for bit the run of the Paddle-layout namesake (whose groups hold no key they were not
    given), with and without reading the key at every step, through a torch-layout reload midway."""
    runs = {}
    for label in ("paddle layout", "torch layout", "torch layout, read"):
        model = _model()
        opt = _make(F if label == "paddle layout" else O, name, reg, model)
        seen = []
        for seed in range(6):
            if seed == 3 and label != "paddle layout":  # a reload midway changes nothing
                fresh = _make(O, name, reg, model)
                fresh.load_state_dict(opt.state_dict())
                opt = fresh
            if label.endswith("read"):
                seen.append([g.get("weight_decay") for g in opt.param_groups])
            _backward(model, seed)
            opt.step()
        runs[label] = [p.detach().clone() for p in model.parameters()]
    for label in ("torch layout", "torch layout, read"):
        for a, b in zip(runs["paddle layout"], runs[label], strict=True):
            assert torch.equal(a, b), label
    assert not torch.equal(runs["paddle layout"][0], _model()[0].weight)  # the runs moved


@pytest.mark.parametrize("name", list(COUPLED) + ["AdamW"])
def test_the_paddle_layout_groups_stay_as_they_were(name):
    """torchfluid.optimizer.* groups hold weight_decay only where it was given."""
    opt = _make(F, name, "weight_decay" if name != "AdamW" else "default", _model())
    assert "weight_decay" not in opt.param_groups[0]
    assert ("weight_decay" in opt.param_groups[1]) == (name != "AdamW")  # AdamW: given as coeff


FACTORS = [1.0, 0.9, 0.5, 0.2, 0.0, 0.6, 1.0, 0.3]


class FieldScheduler:
    """What timm's ``Scheduler(optimizer, "weight_decay")`` does: ``initial_weight_decay`` from each
    group's ``weight_decay`` at construction, then ``initial * factor`` written at each update."""

    def __init__(self, opt):
        self.opt = opt
        for group in opt.param_groups:
            group["initial_weight_decay"] = group["weight_decay"]

    def step_update(self, t):
        for group in self.opt.param_groups:
            group["weight_decay"] = group["initial_weight_decay"] * FACTORS[t % len(FACTORS)]


def _scheduled_run(make, steps=10):
    model = _model()
    opt = make(list(model.parameters()))
    sched = FieldScheduler(opt)
    read = []
    for t in range(steps):
        read.append([g["weight_decay"] for g in opt.param_groups])
        _backward(model, t)
        opt.step()
        sched.step_update(t + 1)
    return [p.detach().clone() for p in model.parameters()], read


TORCH_TWINS = {
    "SGD": (
        lambda ps: O.SGD(ps, lr=0.05, weight_decay=0.1),
        lambda ps: torch.optim.SGD(ps, lr=0.05, weight_decay=0.1),
    ),
    "SGD momentum": (
        lambda ps: O.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.1),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.1),
    ),
    "Adagrad": (
        lambda ps: O.Adagrad(ps, lr=0.05, weight_decay=0.1, eps=1e-10),
        lambda ps: torch.optim.Adagrad(ps, lr=0.05, weight_decay=0.1, eps=1e-10),
    ),
    "AdamW": (
        lambda ps: O.AdamW(ps, lr=0.01, weight_decay=0.5, eps=1e-12),
        lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.5, eps=1e-12),
    ),
    "RMSprop (torch's maths)": (
        lambda ps: O.RMSprop(ps, lr=0.01, weight_decay=0.1),
        lambda ps: torch.optim.RMSprop(ps, lr=0.01, weight_decay=0.1),
    ),
}


@pytest.mark.parametrize("case", list(TORCH_TWINS))
def test_a_weight_decay_scheduler_drives_the_update_as_torchs(case):
    """A timm-like scheduler writing weight_decay before each update: the values read and the
    parameters are torch's namesake's where the maths coincide (to float32 rounding)."""
    ours, theirs = TORCH_TWINS[case]
    params, read = _scheduled_run(ours)
    ref_params, ref_read = _scheduled_run(theirs)
    assert read == ref_read
    assert [round(v[0], 6) for v in read[:8]] == [round(read[0][0] * f, 6) for f in FACTORS]
    for a, b in zip(params, ref_params, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-6)


@pytest.mark.parametrize("name", list(COUPLED))
def test_a_weight_decay_scheduler_is_the_coupled_l2_by_hand(name):
    """Paddle's maths (no torch namesake to compare with): the scheduled run equals, bit for
    bit, the same class without regularization whose gradients get ``+ weight_decay * p`` by hand
    (the value the scheduler wrote), as Paddle's coupled L2 applies it before the update."""
    kwargs = {**COUPLED[name], "weight_decay": 0.1}
    params, read = _scheduled_run(lambda ps: getattr(O, name)(ps, **kwargs))
    model = _model()
    opt = getattr(O, name)(list(model.parameters()), **COUPLED[name])
    assert opt.param_groups[0]["weight_decay"] == 0.0
    for t in range(len(read)):
        _backward(model, t)
        with torch.no_grad():
            for p in model.parameters():
                p.grad = p.grad + p * read[t][0]
        opt.step()
    assert [v[0] for v in read[:8]] == [0.1 * f for f in FACTORS]
    for a, p in zip(params, model.parameters(), strict=True):
        assert torch.equal(a, p)


def _adamw_pair(**kwargs):
    model = _model()
    return model, O.AdamW(list(model.parameters()), lr=0.01, **kwargs)


def test_adamw_weight_decay_and_coeff_follow_each_other():
    """Writing weight_decay sets coeff at the next step and writing coeff sets weight_decay;
    each run equals, bit for bit, a twin whose other key was written by hand."""
    for written, other in (("weight_decay", "coeff"), ("coeff", "weight_decay")):
        model, opt = _adamw_pair(weight_decay=0.1)
        twin_model, twin = _adamw_pair(weight_decay=0.1)
        for t, value in enumerate([0.3, 0.0, 0.2]):
            opt.param_groups[0][written] = value
            twin.param_groups[0][other] = value
            for m, o in ((model, opt), (twin_model, twin)):
                _backward(m, t)
                o.step()
                assert o.param_groups[0]["weight_decay"] == o.param_groups[0]["coeff"] == value
        for a, b in zip(model.parameters(), twin_model.parameters(), strict=True):
            assert torch.equal(a, b)
        reference = _model()  # and the Paddle-layout AdamW with its coefficient written
        ref = F.AdamW(parameters=list(reference.parameters()), learning_rate=0.01, weight_decay=0.1)
        for t, value in enumerate([0.3, 0.0, 0.2]):
            ref.param_groups[0]["coeff"] = value
            _backward(reference, t)
            ref.step()
        for a, b in zip(model.parameters(), reference.parameters(), strict=True):
            assert torch.equal(a, b)


def test_adamw_both_keys_written_apart_is_refused_and_changes_nothing():
    model, opt = _adamw_pair(weight_decay=0.1)
    _backward(model, 0)
    before = [p.detach().clone() for p in model.parameters()]
    opt.param_groups[0]["weight_decay"] = 0.3
    opt.param_groups[0]["coeff"] = 0.4
    with pytest.raises(ValueError, match=r"weight_decay=0\.3.*coeff=0\.4"):
        opt.step()
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
    opt.param_groups[0]["coeff"] = 0.3  # both the same: taken
    opt.step()
    assert opt.param_groups[0]["weight_decay"] == opt.param_groups[0]["coeff"] == 0.3


def test_adamw_add_param_group_and_reloads_keep_the_two_equal():
    model = _model()
    opt = O.AdamW(list(model[0].parameters()), lr=0.01, weight_decay=0.1)
    opt.add_param_group({"params": list(model[2].parameters()), "weight_decay": 0.2})
    opt.add_param_group({"params": [model[3].weight], "coeff": 0.3})
    opt.add_param_group({"params": [model[3].bias]})
    assert [(g["weight_decay"], g["coeff"]) for g in opt.param_groups] == [
        (0.1, 0.1),
        (0.2, 0.2),
        (0.3, 0.3),
        (0.1, 0.1),
    ]
    opt.param_groups[0]["weight_decay"] = 0.7  # written, no step yet: the dicts carry it
    for sd in (opt.state_dict(), opt.paddle_state_dict()):
        other = O.AdamW(list(model[0].parameters()), lr=0.01, weight_decay=0.1)
        other.add_param_group({"params": list(model[2].parameters())})
        other.add_param_group({"params": [model[3].weight]})
        other.add_param_group({"params": [model[3].bias]})
        other.load_state_dict(sd)
        assert [(g["weight_decay"], g["coeff"]) for g in other.param_groups] == [
            (0.7, 0.7),
            (0.2, 0.2),
            (0.3, 0.3),
            (0.1, 0.1),
        ]
    ref = torch.optim.AdamW(list(model.parameters()), lr=0.01, weight_decay=0.25)  # torch's checkpoint
    mine = O.AdamW(list(model.parameters()), lr=0.01)
    mine.load_state_dict(ref.state_dict())
    assert mine.param_groups[0]["weight_decay"] == mine.param_groups[0]["coeff"] == 0.25


def test_paddle_layout_adamw_keeps_coeff_only():
    model = _model()
    opt = F.AdamW(parameters=list(model.parameters()), learning_rate=0.01, weight_decay=0.1)
    assert "weight_decay" not in opt.param_groups[0]
    opt.param_groups[0]["weight_decay"] = 0.3  # torch's name written: its coefficient, as before
    _backward(model, 0)
    opt.step()
    assert "weight_decay" not in opt.param_groups[0] and opt.param_groups[0]["coeff"] == 0.3


@pytest.mark.parametrize("regularization", [L1Decay(0.02), HalfL2(0.02)], ids=["L1Decay", "custom"])
def test_a_regularization_torch_has_no_key_for(regularization):
    """No weight_decay is made up: the key is absent (reading it says why), timm's check sees it
    missing, the torch-layout dict writes torch's 0 and a reload keeps the regularization; a
    written weight_decay is the group's coupled L2 (replacing the regularization), and deleting
    it brings the optimizer's regularization back."""
    model = _model()
    opt = O.SGD(list(model.parameters()), lr=0.1, regularization=regularization)
    group = opt.param_groups[0]
    assert "weight_decay" not in group
    with pytest.raises(KeyError, match=type(regularization).__name__):
        group["weight_decay"]
    assert opt.state_dict()["param_groups"][0]["weight_decay"] == 0.0
    _backward(model, 0)
    opt.step()
    reloaded = O.SGD(list(model.parameters()), lr=0.1, regularization=regularization)
    reloaded.load_state_dict(opt.state_dict())
    assert "weight_decay" not in reloaded.param_groups[0]
    for copied in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        with pytest.raises(KeyError, match="not a coupled L2 decay"):
            copied.param_groups[0]["weight_decay"]
    # written: the group's coupled L2, as O.SGD(weight_decay=0.1)
    twin_model = _model()
    twin_model.load_state_dict(model.state_dict())
    twin = O.SGD(list(twin_model.parameters()), lr=0.1, weight_decay=0.1)
    group["weight_decay"] = 0.1
    for m, o in ((model, opt), (twin_model, twin)):
        _backward(m, 1)
        o.step()
    assert opt.param_groups[0]["weight_decay"] == 0.1
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin_model.parameters(), strict=True))
    del opt.param_groups[0]["weight_decay"]  # back to the optimizer's regularization
    _backward(model, 2)
    opt.step()
    assert "weight_decay" not in opt.param_groups[0]


def test_a_deleted_weight_decay_comes_back_as_the_optimizers():
    model = _model()
    opt = O.Adam(list(model.parameters()), lr=0.01, weight_decay=0.02)
    del opt.param_groups[0]["weight_decay"]
    _backward(model, 0)
    opt.step()
    assert opt.param_groups[0]["weight_decay"] == 0.02


def test_a_torch_layout_reload_keeps_the_groups_weight_decay():
    """A torch-layout dict's group weight_decay is the loaded group's, also where it equals the
    optimizer's own L2 (a group written to another value before the load takes it back); 0,
    torch's default, leaves a group as it is where the optimizer has a regularization of its own
    (a no-decay group keeps its 0, a decayed one the optimizer's L2), and is taken without one."""
    model = _model()
    params = [list(model[0].parameters()), list(model[2].parameters())]

    def sgd(**kwargs):
        return O.SGD([{"params": params[0]}, {"params": params[1], "weight_decay": 0.0}], lr=0.1, **kwargs)

    saved = sgd(weight_decay=1e-3).state_dict()
    assert [g["weight_decay"] for g in saved["param_groups"]] == [1e-3, 0.0]
    loaded = sgd(weight_decay=1e-3)
    loaded.param_groups[0]["weight_decay"] = 0.5
    loaded.load_state_dict(saved)
    assert [g["weight_decay"] for g in loaded.param_groups] == [1e-3, 0.0]
    theirs = torch.optim.SGD([{"params": params[0]}, {"params": params[1]}], lr=0.1, weight_decay=0.0)
    for kwargs, expected in (({"weight_decay": 1e-3}, [1e-3, 0.0]), ({}, [0.0, 0.0])):
        loaded = sgd(**kwargs)
        loaded.param_groups[1]["weight_decay"] = 0.5 if not kwargs else 0.0
        loaded.load_state_dict(theirs.state_dict())
        assert [g["weight_decay"] for g in loaded.param_groups] == expected
    theirs = torch.optim.SGD(list(model.parameters()), lr=0.1, weight_decay=0.05)
    mine = O.SGD(list(model.parameters()), lr=0.1)
    mine.load_state_dict(theirs.state_dict())
    assert mine.param_groups[0]["weight_decay"] == 0.05
    paddle = F.SGD(parameters=list(model.parameters()), learning_rate=0.1, weight_decay=1e-3)
    paddle.load_state_dict(torch.optim.SGD(list(model.parameters()), lr=0.1, weight_decay=1e-3).state_dict())
    assert "weight_decay" not in paddle.param_groups[0]  # Paddle's layout: the optimizer's L2, no key


FLOAT64_CASES = {
    "L2Decay without float32 rounding": lambda ns, ps: ns.SGD(
        parameters=ps, learning_rate=0.1, regularization=L2Decay(1 / 30, float32_attrs=False)
    ),
    "RMSProp.preset('torch')": lambda ns, ps: ns.RMSProp.preset(
        "torch", ps, lr=0.01, momentum=0.5, weight_decay=1 / 30
    ),
    "L2Decay with float32 rounding": lambda ns, ps: ns.Momentum(
        parameters=ps, learning_rate=0.05, momentum=0.9, weight_decay=1 / 30
    ),
}


@pytest.mark.parametrize("case", list(FLOAT64_CASES))
def test_float64_updates_keep_the_optimizers_l2_rounding(case):
    """The held weight_decay is the optimizer's L2Decay itself, its float32_attrs included (1/30 is
    no float32: a coefficient rounded to float32 or not changes float64 updates): bit for bit the
    Paddle-layout namesake in float64."""
    runs = []
    for ns in (F, O):
        model = _model().double()
        opt = FLOAT64_CASES[case](ns, list(model.parameters()))
        for seed in range(4):
            for p in model.parameters():
                p.grad = None
            x = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
            model(x).pow(2).mean().backward()
            opt.step()
        runs.append([p.detach().clone() for p in model.parameters()])
        if ns is O:
            assert opt.param_groups[0]["weight_decay"] == 1 / 30
    for a, b in zip(*runs, strict=True):
        assert torch.equal(a, b)
