"""A minimal optimizer implementing the static-mode hooks (test double for the
optimizer facade): RMSProp/SGD through the reference kernels."""

from __future__ import annotations

import torch

from torchfluid.kernels import rmsprop_, sgd_


class HookRMSProp:
    _static_op_type = "rmsprop"

    def __init__(self, learning_rate, rho=0.95, epsilon=1e-6, momentum=0.0, centered=False,
                 regularization=None, grad_clip=None):
        self._learning_rate = learning_rate
        self.defaults = dict(rho=rho, epsilon=epsilon, momentum=momentum, centered=centered)
        self.regularization = regularization
        self._grad_clip = grad_clip

    def _accumulator_names(self):
        names = ["momentum", "mean_square"]
        return names + ["mean_grad"] if self.defaults["centered"] else names

    def _new_state(self, p):
        return {n: torch.zeros_like(p) for n in self._accumulator_names()}

    def _kernel_update(self, param, grad, state, *, lr, group):
        rmsprop_(param, grad, state["mean_square"], state.get("mean_grad"), state["momentum"],
                 lr=lr, rho=group["rho"], epsilon=group["epsilon"], momentum=group["momentum"])

    def _lr_value_for_update(self):
        return float(self._learning_rate)


class HookSGD:
    _static_op_type = "sgd"

    def __init__(self, learning_rate, regularization=None, grad_clip=None):
        self._learning_rate = learning_rate
        self.defaults = {}
        self.regularization = regularization
        self._grad_clip = grad_clip

    def _accumulator_names(self):
        return []

    def _new_state(self, p):
        return {}

    def _kernel_update(self, param, grad, state, *, lr, group):
        sgd_(param, grad, lr=lr)

    def _lr_value_for_update(self):
        return float(self._learning_rate)
