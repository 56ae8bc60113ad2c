"""The optimizer API as Paddle's own tests use it (fluid keywords and attributes)."""

import pytest
import torch

import torchfluid as fluid
from torchfluid.regularizer import L1Decay, L1DecayRegularizer, L2Decay, L2DecayRegularizer


@pytest.mark.parametrize("cls,coeff,term", [
    (L2Decay, 0.5, lambda p: 0.5 * p), (L2DecayRegularizer, 0.25, lambda p: 0.25 * p),
    (L1Decay, 0.1, lambda p: 0.1 * torch.sign(p)), (L1DecayRegularizer, 2.0, lambda p: 2.0 * torch.sign(p)),
])
def test_regularization_coeff_keyword(cls, coeff, term):
    reg = cls(regularization_coeff=coeff)
    assert reg.coeff == coeff and reg == cls(coeff)
    p, g = torch.tensor([-2.0, 0.0, 3.0]), torch.tensor([1.0, 1.0, 1.0])
    torch.testing.assert_close(reg(p, g), g + term(p))


@pytest.mark.parametrize("kwargs,exc,msg", [
    ({"coeff": 0.1, "regularization_coeff": 0.2}, TypeError, "not both"),
    ({"regularization_coeff": -1.0}, ValueError, "regularization_coeff"),
])
def test_regularization_coeff_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        fluid.regularizer.L2Decay(**kwargs)
