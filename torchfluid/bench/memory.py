"""Optimizer memory by precision configuration (the memory side of ``torchfluid bench``).

For one parameter set, the bytes RMSProp (centered, momentum 0.9: three accumulators)
holds after a step under each precision option, from
:func:`torchfluid.optimizer.precision.optimizer_memory_bytes`:

* fp32 params, fp32 state (Paddle's default);
* fp32 params, ``state_dtype=torch.bfloat16`` (half the state bytes);
* fp16 params, ``multi_precision=True`` (fp32 state + fp32 master weights).
"""

from __future__ import annotations

import torch

from ..optimizer import RMSProp
from ..optimizer.precision import optimizer_memory_bytes

__all__ = ["CONFIGS", "memory_rows"]

CONFIGS = {
    "fp32 state": (torch.float32, {}),
    "bf16 state": (torch.float32, {"state_dtype": torch.bfloat16}),
    "fp16 params + fp32 master": (torch.float16, {"multi_precision": True}),
}


def memory_rows(shapes) -> list[list]:
    """``[config, param MiB, state MiB, master MiB, state+master vs fp32 state]`` rows."""
    rows, base = [], None
    for label, (dtype, kwargs) in CONFIGS.items():
        params = [torch.nn.Parameter(torch.zeros(s, dtype=dtype)) for s in shapes]
        for p in params:
            p.grad = torch.full_like(p, 0.5)
        opt = RMSProp(0.001, momentum=0.9, centered=True, parameters=params, **kwargs)
        opt.step()
        used = optimizer_memory_bytes(opt)
        total = used["state"] + used["master_weights"]
        base = total if base is None else base
        param_bytes = sum(p.numel() * p.element_size() for p in params)
        rows.append([label, param_bytes / 2**20, used["state"] / 2**20, used["master_weights"] / 2**20, total / base])
    return rows
