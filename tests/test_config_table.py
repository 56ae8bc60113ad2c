"""Every configuration of the shared table (tests/optim_configs.py) trains the same model
through eager ``step()``, fluid dygraph ``minimize()`` and a static ``Executor.run()``:
the three end with bit-identical parameters and accumulators, and raise at the same
steps with the same exception types."""

import dataclasses

import pytest
import torch

from tests.optim_configs import CONFIGS, CONFIGS_BY_NAME, INF_STEP, KINDS, RUNNERS, SCHEDULES, STEPS, bits, run_eager
from torchfluid.optimizer.fused import FusedUpdate


@pytest.fixture(scope="module")
def eager_results():
    return {}


def _eager(cache, cfg):
    if cfg.name not in cache:
        cache[cfg.name] = run_eager(cfg)
    return cache[cfg.name]


@pytest.mark.parametrize("mode", ["dygraph", "static"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name)
def test_mode_equals_eager_bit_for_bit(cfg, mode, eager_results):
    ref = _eager(eager_results, cfg)
    got = RUNNERS[mode](cfg)
    assert got.outcomes == ref.outcomes == cfg.expected_outcomes()
    for role in ("w", "b"):
        assert got[role].dtype == ref[role].dtype
        assert torch.equal(bits(got[role]), bits(ref[role])), f"{cfg.name}: {mode} {role} differs from eager"
    if ref.state:  # (an optimizer that never updated has no state records; a program has its variables)
        assert sorted(got.state) == sorted(ref.state)
    for key, value in ref.state.items():
        assert got.state[key].dtype == value.dtype, key
        assert torch.equal(bits(got.state[key].reshape(value.shape)), bits(value)), f"{cfg.name}: {mode} {key}"


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name)
def test_eager_training_moves_the_parameters(cfg):
    """No configuration is a no-op (which would make the comparison vacuous)."""
    from tests.optim_configs import B0, W0

    res = run_eager(cfg)
    if all(o is not None for o in res.outcomes):
        pytest.skip("every step raises")
    assert not torch.equal(res["w"], torch.tensor(W0))
    assert not torch.equal(res["b"], torch.tensor(B0))


# besides RMSProp, whose fused tables are tests/test_fused_*.py
FUSED_KINDS = ("momentum", "adagrad", "sgd", "adam", "adamw", "adamax", "adadelta")


@pytest.mark.parametrize(
    "cfg", [c for c in CONFIGS if c.kind in FUSED_KINDS and "fused" not in c.options], ids=lambda c: c.name
)
def test_the_default_fused_path_gives_the_reference_kernels_bits(cfg, eager_results):
    """fused=None (the fused kernel where it applies) against fused=False (the reference
    kernel always): the same parameters and accumulators, bit for bit."""
    got = _eager(eager_results, cfg)
    ref = run_eager(dataclasses.replace(cfg, options={**cfg.options, "fused": False}))
    assert got.outcomes == ref.outcomes
    for role in ("w", "b"):
        assert torch.equal(bits(got[role]), bits(ref[role])), f"{cfg.name}: {role} differs from the reference kernel's"
    assert sorted(got.state) == sorted(ref.state)
    for key, value in ref.state.items():
        assert torch.equal(bits(got.state[key]), bits(value)), f"{cfg.name}: {key}"


@pytest.mark.parametrize("mode", list(RUNNERS))
@pytest.mark.parametrize(
    "name",
    [
        "rmsprop_momentum",
        "momentum_nesterov",
        "momentum_fused_true",
        "adagrad_fused_true",
        "sgd_fused_true",
        "adam_fused_true",
        "adamw_fused_true",
        "adamax_fused_true",
        "adadelta_fused_true",
    ],
)
def test_every_mode_takes_the_fused_kernel(name, mode, monkeypatch):
    """Eager step(), dygraph minimize() and the static optimize op all update through
    the fused path (the table's bit-for-bit comparison then covers it in every mode)."""
    calls = []
    original = FusedUpdate._step

    def spy(self, fg, *args):
        calls.append(type(fg).__name__)
        return original(self, fg, *args)

    monkeypatch.setattr(FusedUpdate, "_step", spy)
    res = RUNNERS[mode](CONFIGS_BY_NAME[name])
    assert res.outcomes == [None] * STEPS
    kind = CONFIGS_BY_NAME[name].kind
    want = {
        "rmsprop": "FlatGroup",
        "momentum": "FlatMomentum",
        "adagrad": "FlatAdagrad",
        "sgd": "FlatSGD",
        "adam": "FlatAdam",
        "adamw": "FlatAdam",
        "adamax": "FlatAdamax",
        "adadelta": "FlatAdadelta",
    }[kind]
    assert calls and set(calls) == {want}


def test_the_table_covers_every_option():
    options = set()
    for cfg in CONFIGS:
        options.update(cfg.options)
        options.update(cfg.preset[1] if cfg.preset else ())
        options.update(f"attr:{k}" for k in (*cfg.w_attr, *cfg.b_attr))
    rmsprop = {
        "momentum",
        "centered",
        "rho",
        "epsilon",
        "eps_in_sqrt",
        "initial_mean_square",
        "lr_in_momentum",
        "nesterov",
        "decoupled_weight_decay",
        "maximize",
        "bias_correction",
        "multi_precision",
        "state_dtype",
        "nonfinite",
        "fused",
        "regularization",
        "weight_decay",
        "grad_clip",
    }
    assert rmsprop <= options
    assert {"beta1", "beta2", "attr:regularizer", "attr:need_clip", "attr:learning_rate"} <= options
    assert {"initial_accumulator_value"} <= options
    assert {"use_nesterov", "amsgrad", "weight_decay"} <= options
    assert {c.kind for c in CONFIGS} == set(KINDS)
    assert {c.kind for c in CONFIGS if c.options.get("maximize")} >= {"rmsprop", "sgd", "adam", "momentum", "adagrad"}
    for kind in KINDS:  # every optimizer: master weights for float16 parameters, a non-finite policy
        assert any(c.kind == kind and c.options.get("multi_precision") and c.dtype == "float16" for c in CONFIGS)
        assert any(c.kind == kind and c.inf_data and c.options.get("nonfinite") for c in CONFIGS), kind
    assert {c.preset[0] for c in CONFIGS if c.preset} == {"paddle", "torch", "tf1", "keras", "optax", "timm"}
    assert {c.options.get("nonfinite") for c in CONFIGS if c.inf_data} >= {None, "skip", "raise"}
    # a step that is skipped or raises must leave every schedule where it was, in every mode
    assert {c.lr for c in CONFIGS if c.inf_data and c.options.get("nonfinite") == "skip"} >= set(SCHEDULES)
    assert any(isinstance(c.lr, str) for c in CONFIGS if c.inf_data and c.options.get("nonfinite") == "raise")
    assert 0 <= INF_STEP < STEPS


def test_lambs_always_adapt_changes_the_run_where_the_weight_decay_is_0(eager_results):
    """The two table rows differ only in ``always_adapt``: the trust ratio it takes shows."""
    plain, adapt = (_eager(eager_results, CONFIGS_BY_NAME[n]) for n in ("lamb_no_decay", "lamb_no_decay_always_adapt"))
    assert not torch.equal(bits(plain["w"]), bits(adapt["w"]))
