"""Parameter initializers with Paddle's ``fluid.initializer`` names, formulas and fans.

Each initializer is a callable that fills a torch tensor in place (under ``no_grad``)
and returns it::

    init(tensor)                       # torch's global RNG
    init(tensor, generator=g)          # a torch.Generator you control

A non-zero ``seed`` makes every call draw the same numbers (a fresh generator seeded
with it), like Paddle's per-op seed; ``seed=0`` (Paddle's default) uses ``generator`` or
the global RNG. Random numbers are drawn on the CPU in float32/float64 and copied to the
tensor's device and dtype, so a seed gives the same values on CPU and GPU.

Fans (Paddle's ``_compute_fans``): a scalar has fan_in = fan_out = 1; a 1-D ``[n]`` has
n and n; a 2-D ``[in, out]`` weight has fan_in = shape[0], fan_out = shape[1] (Paddle
stores Linear weights as [in, out], the transpose of torch's); an N-D conv kernel
``[out_c, in_c, *k]`` has fan_in = in_c * prod(k), fan_out = out_c * prod(k).

=================  ===================================================================
Xavier uniform     U(-x, x), x = sqrt(6 / (fan_in + fan_out))
Xavier normal      N(0, sqrt(2 / (fan_in + fan_out)))
MSRA uniform       U(-x, x), x = sqrt(6 / fan_in)
MSRA normal        N(0, sqrt(2 / fan_in))
TruncatedNormal    N(loc, scale) restricted to [loc - 2 scale, loc + 2 scale]
=================  ===================================================================

Static-mode code (whose variables are not tensors) calls the same object on the
startup tensor at run time.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._checks import check_bool, check_int, check_number
from ._unsupported import fluid_module_getattr

__all__ = [
    "Initializer",
    "Constant",
    "Uniform",
    "Normal",
    "TruncatedNormal",
    "Xavier",
    "MSRA",
    "NumpyArrayInitializer",
    "ConstantInitializer",
    "UniformInitializer",
    "NormalInitializer",
    "TruncatedNormalInitializer",
    "XavierInitializer",
    "MSRAInitializer",
    "XavierUniform",
    "XavierNormal",
    "KaimingUniform",
    "KaimingNormal",
    "Assign",
    "compute_fans",
]


def _seed(seed) -> int:
    return check_int("seed", seed, lo=0)  # 0: use the global RNG


def seeded_generator(seed) -> torch.Generator | None:
    """A fresh CPU generator seeded with ``seed``, or None for 0 (use the global RNG).

    Layers pass it for their program's ``random_seed`` (Paddle: an initializer whose own
    seed is 0 takes ``block.program.random_seed``); an initializer's own seed still wins."""
    seed = _seed(seed)
    return torch.Generator().manual_seed(seed) if seed else None


def _fan(name: str, value):
    if value is None:
        return None
    return check_number(name, value, lo=0.0, lo_open=True)


def compute_fans(shape) -> tuple[int, int]:
    """Paddle's (fan_in, fan_out) for a parameter of ``shape`` (see the module docstring)."""
    shape = list(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[2:]))
    return shape[1] * receptive, shape[0] * receptive


class Initializer:
    """Base class: subclasses implement ``_sample(shape, dtype, generator)`` (CPU tensor)."""

    _seed_value = 0

    def __call__(self, param, block=None, generator: torch.Generator | None = None):
        if not isinstance(param, torch.Tensor):
            raise TypeError(f"{type(self).__name__} fills a torch tensor in place, got {type(param).__name__}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        if self._seed_value:
            generator = torch.Generator().manual_seed(self._seed_value)
        work = torch.float64 if param.dtype == torch.float64 else torch.float32
        if not (param.is_floating_point() or param.is_complex()) and not isinstance(
            self, (ConstantInitializer, NumpyArrayInitializer)
        ):
            raise TypeError(
                f"{type(self).__name__} draws real numbers; parameter dtype {param.dtype} is not "
                "floating point (use Constant or NumpyArrayInitializer)"
            )
        with torch.no_grad():
            values = self._sample(list(param.shape), work, generator)
            param.copy_(values.to(device=param.device, dtype=param.dtype))
        return param

    def _sample(self, shape, dtype, generator):
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k.lstrip('_')}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class ConstantInitializer(Initializer):
    """Fill with ``value`` (Paddle's ``fill_constant``); ``force_cpu`` is accepted and ignored."""

    def __init__(self, value=0.0, force_cpu=False):
        self._value = check_number("value", value)
        self._force_cpu = bool(force_cpu)

    def _sample(self, shape, dtype, generator):
        return torch.full(shape, self._value, dtype=torch.float64)


class UniformInitializer(Initializer):
    """U(low, high); ``diag_num`` flattened positions ``i * (diag_step + 1)`` set to ``diag_val``."""

    def __init__(self, low=-1.0, high=1.0, seed=0, diag_num=0, diag_step=0, diag_val=1.0):
        self._low = check_number("low", low)
        self._high = check_number("high", high)
        if self._high < self._low:
            raise ValueError(f"high must be >= low, got low={self._low}, high={self._high}")
        self._seed_value = _seed(seed)
        self._diag = (
            check_int("diag_num", diag_num, lo=0),
            check_int("diag_step", diag_step, lo=0),
            check_number("diag_val", diag_val),
        )

    def _sample(self, shape, dtype, generator):
        out = torch.empty(shape, dtype=dtype).uniform_(self._low, self._high, generator=generator)
        num, step, val = self._diag
        if num:
            flat = out.view(-1)
            last = (num - 1) * (step + 1)
            if last >= flat.numel():
                raise ValueError(
                    f"diag_num={num} with diag_step={step} reaches position {last}, "
                    f"beyond the {flat.numel()} elements of shape {shape}"
                )
            flat[torch.arange(num) * (step + 1)] = val
        return out


class NormalInitializer(Initializer):
    """N(loc, scale)."""

    def __init__(self, loc=0.0, scale=1.0, seed=0):
        self._mean = check_number("loc", loc)
        self._std_dev = check_number("scale", scale, lo=0.0)
        self._seed_value = _seed(seed)

    def _sample(self, shape, dtype, generator):
        return torch.empty(shape, dtype=dtype).normal_(self._mean, self._std_dev, generator=generator)


class TruncatedNormalInitializer(NormalInitializer):
    """N(loc, scale) with values outside loc +- 2 scale redrawn (Paddle's truncated_gaussian_random)."""

    def _sample(self, shape, dtype, generator):
        out = torch.empty(shape, dtype=dtype)
        if self._std_dev == 0.0:
            return out.fill_(self._mean)
        lo, hi = self._mean - 2 * self._std_dev, self._mean + 2 * self._std_dev
        return torch.nn.init.trunc_normal_(out, self._mean, self._std_dev, lo, hi, generator=generator)


class XavierInitializer(Initializer):
    """Glorot: U(+-sqrt(6/(fan_in+fan_out))) or N(0, sqrt(2/(fan_in+fan_out)))."""

    def __init__(self, uniform=True, fan_in=None, fan_out=None, seed=0):
        self._uniform = check_bool("uniform", uniform)
        self._fan_in = _fan("fan_in", fan_in)
        self._fan_out = _fan("fan_out", fan_out)
        self._seed_value = _seed(seed)

    def _sample(self, shape, dtype, generator):
        f_in, f_out = compute_fans(shape)
        fan_in = f_in if self._fan_in is None else self._fan_in
        fan_out = f_out if self._fan_out is None else self._fan_out
        if fan_in + fan_out <= 0:
            raise ValueError(f"Xavier needs fan_in + fan_out > 0; shape {shape} gives {fan_in} + {fan_out}")
        out = torch.empty(shape, dtype=dtype)
        if self._uniform:
            limit = math.sqrt(6.0 / float(fan_in + fan_out))
            return out.uniform_(-limit, limit, generator=generator)
        return out.normal_(0.0, math.sqrt(2.0 / float(fan_in + fan_out)), generator=generator)


class MSRAInitializer(Initializer):
    """He/Kaiming: U(+-sqrt(6/fan_in)) or N(0, sqrt(2/fan_in))."""

    def __init__(self, uniform=True, fan_in=None, seed=0):
        self._uniform = check_bool("uniform", uniform)
        self._fan_in = _fan("fan_in", fan_in)
        self._seed_value = _seed(seed)

    def _sample(self, shape, dtype, generator):
        fan_in = compute_fans(shape)[0] if self._fan_in is None else self._fan_in
        if fan_in <= 0:
            raise ValueError(f"MSRA needs fan_in > 0; shape {shape} gives fan_in={fan_in}")
        out = torch.empty(shape, dtype=dtype)
        if self._uniform:
            limit = math.sqrt(6.0 / float(fan_in))
            return out.uniform_(-limit, limit, generator=generator)
        return out.normal_(0.0, math.sqrt(2.0 / float(fan_in)), generator=generator)


class NumpyArrayInitializer(Initializer):
    """Copy ``value`` (a numpy array of the parameter's shape) into the parameter."""

    def __init__(self, value):
        if not isinstance(value, np.ndarray):
            raise TypeError(f"value must be a numpy.ndarray, got {type(value).__name__}")
        if value.dtype.kind not in "biufc":
            raise TypeError(f"value must be a numeric array, got dtype {value.dtype}")
        self._value_array = value

    def _sample(self, shape, dtype, generator):
        if list(self._value_array.shape) != list(shape):
            raise ValueError(
                f"NumpyArrayInitializer: value has shape {list(self._value_array.shape)}, "
                f"the parameter has shape {list(shape)}"
            )
        return torch.from_numpy(np.array(self._value_array, copy=True))

    def __repr__(self) -> str:
        return f"NumpyArrayInitializer(shape={list(self._value_array.shape)}, dtype={self._value_array.dtype})"


# Paddle 2.x spellings (paddle.nn.initializer).
class XavierUniform(XavierInitializer):
    def __init__(self, fan_in=None, fan_out=None):
        super().__init__(uniform=True, fan_in=fan_in, fan_out=fan_out)


class XavierNormal(XavierInitializer):
    def __init__(self, fan_in=None, fan_out=None):
        super().__init__(uniform=False, fan_in=fan_in, fan_out=fan_out)


class KaimingUniform(MSRAInitializer):
    def __init__(self, fan_in=None):
        super().__init__(uniform=True, fan_in=fan_in)


class KaimingNormal(MSRAInitializer):
    def __init__(self, fan_in=None):
        super().__init__(uniform=False, fan_in=fan_in)


Constant = ConstantInitializer
Uniform = UniformInitializer
Normal = NormalInitializer
TruncatedNormal = TruncatedNormalInitializer
Xavier = XavierInitializer
MSRA = MSRAInitializer
Assign = NumpyArrayInitializer

# a fluid.initializer name torchfluid does not implement: say so, and what to use instead
__getattr__ = fluid_module_getattr("fluid.initializer")
