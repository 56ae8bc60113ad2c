"""State written straight into ``optimizer.state[p]`` under torch.optim's names
(``exp_avg``, ``sum``, ``square_avg``, ``step``, ...), as torch's own code and tests write
it, is read as the rule's records at the next update, on the fused and the reference
kernel alike: the run equals one whose state was loaded from the same torch-layout dict."""

import copy

import pytest
import torch
from torch.autograd import gradcheck

import torchfluid.optim as O

# (class, call, torch-named entry to write); the entries as torch.optim's namesake keeps them
CASES = [
    (O.Adam, {"lr": 0.01}, {"step": 10.0, "exp_avg": 0.1, "exp_avg_sq": 0.2}),
    (O.Adam, {"lr": 0.01, "amsgrad": True}, {"step": 3.0, "exp_avg": 0.1, "exp_avg_sq": 0.2, "max_exp_avg_sq": 0.3}),
    (O.AdamW, {"lr": 0.01, "weight_decay": 0.1}, {"step": 5.0, "exp_avg": 0.1, "exp_avg_sq": 0.2}),
    (O.Adamax, {"lr": 0.02}, {"step": 4.0, "exp_avg": 0.1, "exp_inf": 0.5}),
    (O.Adadelta, {"lr": 1.0}, {"step": 2.0, "square_avg": 0.1, "acc_delta": 0.2}),
    (O.Adagrad, {"lr": 0.1}, {"step": 2.0, "sum": 0.3}),
    (O.Adagrad, {"lr": 0.1, "lr_decay": 0.1}, {"step": 2.0, "sum": 0.3}),
    (
        O.RMSProp,
        {"lr": 0.01, "momentum": 0.9, "centered": True},
        {"square_avg": 0.3, "grad_avg": 0.1, "momentum_buffer": 0.2},
    ),
    (O.Momentum, {"lr": 0.1, "momentum": 0.9}, {"momentum_buffer": 0.2}),
]
IDS = [f"{c[0].__name__}{sorted(c[1])}" for c in CASES]


def _entry(values, shape, seed):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, v in values.items():
        if name == "step":
            out[name] = torch.tensor(v)
        else:
            out[name] = v + 0.1 * torch.rand(shape, generator=g)
    return out


def _run(cls, kwargs, values, fused, write):
    g = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(4, 3, generator=g)), torch.nn.Parameter(torch.randn(3, generator=g))]
    opt = cls(params, fused=fused, **kwargs)
    entries = [_entry(values, p.shape, i) for i, p in enumerate(params)]
    write(opt, params, entries)
    for _ in range(3):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()
    return params, opt


def _written(opt, params, entries):
    for p, entry in zip(params, entries, strict=True):
        opt.state[p].update(entry)


def _loaded(opt, params, entries):
    sd = copy.deepcopy(opt.state_dict())
    sd["state"] = dict(enumerate(entries))
    opt.load_state_dict(sd)


@pytest.mark.parametrize("fused", [None, False], ids=["fused", "reference"])
@pytest.mark.parametrize("cls,kwargs,values", CASES, ids=IDS)
def test_state_written_under_torchs_names_is_read_as_a_loaded_one(cls, kwargs, values, fused):
    a, opt_a = _run(cls, kwargs, values, fused, _written)
    b, opt_b = _run(cls, kwargs, values, fused, _loaded)
    for p, q in zip(a, b, strict=True):
        assert torch.equal(p, q)
        assert opt_a.state[p].keys() == opt_b.state[q].keys()  # the rule's records, torch's names read
        for k in opt_a.state[p]:
            assert torch.equal(opt_a.state[p][k], opt_b.state[q][k])


@pytest.mark.parametrize("fused", [None, False], ids=["fused", "reference"])
def test_a_buffer_replaced_under_torchs_name_takes_effect_at_the_next_update(fused):
    p = torch.nn.Parameter(torch.ones(3))
    opt = O.Adam([p], lr=0.1, fused=fused)
    p.grad = torch.ones(3)
    opt.step()
    opt.state[p]["exp_avg"] = torch.full((3,), 5.0)  # as torch's code resets a moment
    opt.step()
    assert "exp_avg" not in opt.state[p]
    torch.testing.assert_close(opt.state[p]["moment1"], torch.full((3,), 0.9 * 5.0 + 0.1))


def test_a_step_through_injected_state_is_differentiable():
    """torch's TestDifferentiableOptimizer: gradcheck of one recorded step with respect to
    the parameter, its gradient and the state written under torch's names."""

    def one_step(p, grad, exp_avg, exp_avg_sq):
        p = p.clone()
        p.grad = grad
        opt = O.Adam([p], lr=0.9, differentiable=True)
        opt.state[p].update({"step": torch.tensor(10.0), "exp_avg": exp_avg.clone(), "exp_avg_sq": exp_avg_sq.clone()})
        opt.step()
        return (p, *[v for v in opt.state[p].values() if v.requires_grad])

    r = [torch.rand(5, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    assert gradcheck(one_step, tuple(r))


@pytest.mark.parametrize("fused", [None, False], ids=["fused", "reference"])
def test_a_written_step_that_is_no_count_is_refused_before_anything_changes(fused):
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = O.Adam([a, b], lr=0.1, fused=fused)
    a.grad, b.grad = torch.ones(3), torch.ones(2, dtype=torch.float64)
    opt.step()
    before = [a.detach().clone(), b.detach().clone()]
    opt.state[b]["step"] = torch.tensor(2.5)
    with pytest.raises(ValueError, match=r"optimizer.state\) must be a count >= 0, got tensor\(2.5000\)"):
        opt.step()
    assert torch.equal(a, before[0]) and torch.equal(b, before[1])


# (class, call, {torch's name: the rule's record}): reads under torch's names
READS = [
    (
        O.Adam,
        {"lr": 0.01, "amsgrad": True},
        {"exp_avg": "moment1", "exp_avg_sq": "moment2", "max_exp_avg_sq": "moment2_max"},
    ),
    (O.Adamax, {"lr": 0.01}, {"exp_avg": "moment", "exp_inf": "inf_norm"}),
    (O.Adadelta, {"lr": 1.0}, {"square_avg": "_avg_squared_grad", "acc_delta": "_avg_squared_update"}),
    (O.Adagrad, {"lr": 0.1}, {"sum": "moment"}),
    (O.SGD, {"lr": 0.1, "momentum": 0.9}, {"momentum_buffer": "velocity"}),
    (O.RMSProp, {"lr": 0.01, "centered": True}, {"square_avg": "mean_square", "grad_avg": "mean_grad"}),
]


@pytest.mark.parametrize("how", ["fused", "reference", "loaded"])
@pytest.mark.parametrize("cls,kwargs,names", READS, ids=[c[0].__name__ for c in READS])
def test_a_record_reads_under_torchs_names(cls, kwargs, names, how):
    p = torch.nn.Parameter(torch.linspace(-1, 1, 6))
    opt = cls([p], fused=None if how == "fused" else False, **kwargs)
    p.grad = torch.ones(6)
    opt.step()
    if how == "loaded":
        again = cls([p], **kwargs)
        again.load_state_dict(copy.deepcopy(opt.state_dict()))
        opt = again
    record = opt.state[p]
    for theirs, ours in names.items():
        assert record[theirs] is record[ours]  # the same tensor: reading only
        assert theirs not in record and theirs not in list(record)  # its keys stay the rule's
    with pytest.raises(KeyError, match="no_such_entry"):
        record["no_such_entry"]


def test_sgds_momentum_buffer_reads_as_torchs():
    ours, theirs = torch.nn.Parameter(torch.ones(4)), torch.nn.Parameter(torch.ones(4))
    opt, ref = O.SGD([ours], lr=0.1, momentum=0.9), torch.optim.SGD([theirs], lr=0.1, momentum=0.9)
    for k in range(3):
        ours.grad = theirs.grad = torch.full((4,), float(k + 1))
        opt.step()
        ref.step()
    assert torch.equal(opt.state[ours]["momentum_buffer"], ref.state[theirs]["momentum_buffer"])


@pytest.mark.parametrize("fused", [None, False], ids=["fused", "reference"])
@pytest.mark.parametrize(
    "name,value,match",
    [
        ("exp_avg", torch.zeros(5, dtype=torch.float64), r"'moment1' of parameter 'param_1' has shape \[5\], but"),
        ("moment2", torch.zeros(2, 2, dtype=torch.float64), r"'moment2' of parameter 'param_1' has shape \[2, 2\]"),
        ("exp_avg", [0.0] * 4, r"'moment1' of parameter 'param_1' is a list; allowed: a tensor"),
    ],
    ids=["torch's name, wrong shape", "the rule's name, wrong shape", "no tensor"],
)
def test_a_record_written_wrong_is_refused_before_anything_changes(fused, name, value, match):
    """Two parameters of two dtypes (two flat groups): the first one's update would run first."""
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    opt = O.Adam([a, b], lr=0.1, fused=fused)
    a.grad, b.grad = torch.ones(3), torch.ones(4, dtype=torch.float64)
    opt.step()
    before = [a.detach().clone(), b.detach().clone(), opt.state[a]["moment1"].clone()]
    opt.state[b][name] = value
    with pytest.raises(ValueError, match=match):
        opt.step()
    assert torch.equal(a, before[0]) and torch.equal(b, before[1]) and torch.equal(opt.state[a]["moment1"], before[2])


@pytest.mark.parametrize(
    "cls,kwargs,deleted",
    [
        (O.Adam, {}, "moment2"),
        (O.Adam, {}, "beta1_pow_acc"),
        (O.Adagrad, {}, "moment"),
        (O.Momentum, {"momentum": 0.9}, "velocity"),
        (O.Adadelta, {}, "_avg_squared_update"),
        (O.RMSProp, {"momentum": 0.9}, "momentum"),
    ],
)
def test_a_deleted_record_starts_fresh_alike_on_the_fused_and_reference_kernels(cls, kwargs, deleted):
    """As a record the group's options add later (RMSProp's ``centered``), at the rule's start value."""
    runs = []
    for fused in (None, False):
        gen = torch.Generator().manual_seed(0)
        ps = [torch.nn.Parameter(torch.randn(3, generator=gen)), torch.nn.Parameter(torch.randn(4, generator=gen))]
        opt = cls(ps, lr=0.1, fused=fused, **kwargs)
        for k in range(4):
            if k == 2:
                del opt.state[ps[1]][deleted]
            for p in ps:
                p.grad = torch.randn(p.shape, generator=gen)
            opt.step()
        runs.append([t.detach().clone() for p in ps for t in (p, *(opt.state[p][k] for k in sorted(opt.state[p])))])
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))
