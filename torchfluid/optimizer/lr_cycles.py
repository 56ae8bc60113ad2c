"""Cycle-style 2.x schedulers: ``OneCycleLR``, ``CyclicLR``, ``LinearLR``,
``CosineAnnealingWarmRestarts`` (re-exported by :mod:`torchfluid.optimizer.lr`)."""

from __future__ import annotations

import math

from .. import lr_math as M
from ._lr_base import LRScheduler, check_callable

__all__ = ["OneCycleLR", "CyclicLR", "LinearLR", "CosineAnnealingWarmRestarts"]


class OneCycleLR(LRScheduler):
    """One-cycle policy (``lr_math.one_cycle``); starts at ``max_learning_rate / divide_factor``."""

    def __init__(self, max_learning_rate, total_steps, divide_factor=25.0, end_learning_rate=0.0001,
                 phase_pct=0.3, anneal_strategy="cos", three_phase=False, last_epoch=-1, verbose=False):
        M.check_non_negative("max_learning_rate", max_learning_rate)
        M.check_non_negative("end_learning_rate", end_learning_rate)
        self.total_steps = M.check_positive_int("total_steps", total_steps)
        M.check_number("phase_pct", phase_pct)
        if not 0.0 <= phase_pct <= 1.0:
            raise ValueError(f"phase_pct must be in [0, 1], got {phase_pct!r}")
        if three_phase and phase_pct >= 0.5:
            raise ValueError(f"phase_pct must be < 0.5 when three_phase is True, got {phase_pct!r}")
        M.check_positive("divide_factor", divide_factor)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.max_learning_rate, self.divide_factor = float(max_learning_rate), divide_factor
        self.end_learning_rate, self.phase_pct = float(end_learning_rate), phase_pct
        self.anneal_strategy, self.three_phase = anneal_strategy, bool(three_phase)
        super().__init__(max_learning_rate / float(divide_factor), last_epoch, verbose)

    def get_lr(self):
        return M.one_cycle(self.last_epoch, max_learning_rate=self.max_learning_rate,
                           total_steps=self.total_steps, divide_factor=self.divide_factor,
                           end_learning_rate=self.end_learning_rate, phase_pct=self.phase_pct,
                           anneal_strategy=self.anneal_strategy, three_phase=self.three_phase)


class CyclicLR(LRScheduler):
    """Cyclic LR (``lr_math.cyclic``) with modes ``'triangular'`` (scale 1), ``'triangular2'``
    (``1 / 2**(cycle - 1)``), ``'exp_range'`` (``exp_gamma ** iterations``) or a custom ``scale_fn``."""

    def __init__(self, base_learning_rate, max_learning_rate, step_size_up, step_size_down=None,
                 mode="triangular", exp_gamma=1.0, scale_fn=None, scale_mode="cycle",
                 last_epoch=-1, verbose=False):
        M.check_non_negative("max_learning_rate", max_learning_rate)
        self.step_size_up = M.check_positive_int("step_size_up", step_size_up)
        self.step_size_down = (None if step_size_down is None
                               else M.check_positive_int("step_size_down", step_size_down))
        self.gamma = float(M.check_number("exp_gamma", exp_gamma))
        if scale_fn is None and mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(f"mode must be 'triangular', 'triangular2' or 'exp_range' when scale_fn "
                             f"is None, got {mode!r}")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
        self.mode, self.max_lr = mode, float(max_learning_rate)
        if scale_fn is not None:
            self.scale_fn, self.scale_mode = check_callable("scale_fn", scale_fn, "CyclicLR"), scale_mode
        elif mode == "triangular":
            self.scale_fn, self.scale_mode = (lambda x: 1.0), "cycle"
        elif mode == "triangular2":
            self.scale_fn, self.scale_mode = (lambda x: 1 / (2.0 ** (x - 1))), "cycle"
        else:
            self.scale_fn, self.scale_mode = (lambda x: self.gamma ** x), "iterations"
        super().__init__(base_learning_rate, last_epoch, verbose)

    def get_lr(self):
        return M.cyclic(self.last_epoch, base_learning_rate=self.base_lr, max_learning_rate=self.max_lr,
                        step_size_up=self.step_size_up, step_size_down=self.step_size_down,
                        scale_fn=self.scale_fn, scale_mode=self.scale_mode)


class LinearLR(LRScheduler):
    """Linear ramp from ``start_factor * learning_rate`` to ``end_factor * learning_rate`` over ``total_steps``."""

    def __init__(self, learning_rate, total_steps, start_factor=1.0 / 3, end_factor=1.0,
                 last_epoch=-1, verbose=False):
        M.check_number("start_factor", start_factor)
        if not 0 < start_factor <= 1.0:
            raise ValueError(f"start_factor must be in (0, 1], got {start_factor!r}")
        M.check_number("end_factor", end_factor)
        if not 0 <= end_factor <= 1.0:
            raise ValueError(f"end_factor must be in [0, 1], got {end_factor!r}")
        self.total_steps = M.check_positive_int("total_steps", total_steps)
        self.start_factor, self.end_factor = start_factor, end_factor
        super().__init__(learning_rate, last_epoch, verbose)

    def get_lr(self):
        return M.linear_lr_step(self.last_epoch, last_lr=self.last_lr, learning_rate=self.base_lr,
                                total_steps=self.total_steps, start_factor=self.start_factor,
                                end_factor=self.end_factor)


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR with restarts: cosine from ``learning_rate`` to ``eta_min`` over ``T_i`` steps,
    ``T_0`` first, each period ``T_mult`` times longer."""

    def __init__(self, learning_rate, T_0, T_mult=1, eta_min=0, last_epoch=-1, verbose=False):
        self.T_0 = M.check_positive_int("T_0", T_0)
        self.T_mult = M.check_positive_int("T_mult", T_mult)
        self.eta_min = M.check_number("eta_min", eta_min)
        self.T_i = self.T_0
        self.T_cur = last_epoch
        super().__init__(learning_rate, last_epoch, verbose)

    def state_keys(self):
        self.keys = ["last_epoch", "last_lr", "T_cur", "T_i"]

    def get_lr(self):
        return M.cosine_annealing_warm_restarts(self.T_cur, T_i=self.T_i, learning_rate=self.base_lr,
                                                eta_min=self.eta_min)

    def step(self, epoch=None):
        """Advance one step, or jump to ``epoch`` (restart position computed in closed form)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur - self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"epoch must be >= 0, got {epoch!r}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        self.last_lr = self.get_lr()
        self._report()
