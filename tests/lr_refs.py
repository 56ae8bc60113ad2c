"""Independent numpy references for the learning-rate formulas (vectorised over steps).

Written from Paddle's documented formulas, deliberately in a different style from
torchfluid.lr.formulas (array ops, searchsorted, explicit periods), so a shared mistake
is unlikely.
"""

import numpy as np


def steps(n=12, start=0, stride=1):
    return start + stride * np.arange(n, dtype=np.float64)


def piecewise(t, boundaries, values):
    return np.asarray(values, dtype=np.float64)[np.searchsorted(boundaries, t, side="right")]


def noam(t, d_model, warmup_steps, lr=1.0):
    with np.errstate(divide="ignore"):
        a = np.where(t > 0, np.power(np.where(t > 0, t, 1.0), -0.5), np.inf)
    return lr * d_model**-0.5 * np.minimum(a, t * warmup_steps**-1.5)


def _r(t, decay_steps, staircase):
    r = t / decay_steps
    return np.floor(r) if staircase else r


def exponential(t, lr, decay_steps, decay_rate, staircase=False):
    return lr * np.power(decay_rate, _r(t, decay_steps, staircase))


def natural_exp(t, lr, decay_steps, decay_rate, staircase=False):
    return lr * np.exp(-decay_rate * _r(t, decay_steps, staircase))


def inverse_time(t, lr, decay_steps, decay_rate, staircase=False):
    return lr / (1.0 + decay_rate * _r(t, decay_steps, staircase))


def polynomial(t, lr, decay_steps, end_lr=1e-4, power=1.0, cycle=False):
    if cycle:
        horizon = decay_steps * np.maximum(np.ceil(t / decay_steps), 1.0)
        frac = t / horizon
    else:
        frac = np.minimum(t, decay_steps) / decay_steps
    return (lr - end_lr) * (1.0 - frac) ** power + end_lr


def cosine_epochs(t, lr, step_each_epoch, epochs):
    return lr * 0.5 * (np.cos(np.floor(t / step_each_epoch) * np.pi / epochs) + 1.0)


def warmup(t, warmup_steps, start_lr, end_lr, after):
    return np.where(t < warmup_steps, start_lr + (end_lr - start_lr) * t / warmup_steps, after)


def step_decay(t, lr, step_size, gamma):
    return lr * gamma ** np.floor(t / step_size)


def multistep(t, lr, milestones, gamma):
    return lr * gamma ** np.searchsorted(milestones, t, side="right").astype(np.float64)


def cosine_annealing(t, lr, T_max, eta_min=0.0):
    return eta_min + (lr - eta_min) * (1.0 + np.cos(np.pi * t / T_max)) / 2.0


def triangle(t, base, peak, up, down, scale=lambda k, t: 1.0):
    """Cyclic LR: piecewise-linear triangle per period, amplitude scaled per (cycle k, step t)."""
    period = up + down
    out = []
    for s in np.atleast_1d(t):
        k = int(s // period) + 1
        x = s - (k - 1) * period
        h = x / up if x <= up else (period - x) / down
        out.append(base + (peak - base) * h * scale(k, s))
    return np.array(out)
