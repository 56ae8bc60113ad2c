"""A training process for the kill -9 tests: trains with checkpoints every step and
resumes from the newest valid one. Faults are injected from outside the library:
KILL_STEP / KILL_AT ('update': after optimizer.step, before the save; 'fsync': inside the
save, after the temp file is written but before it is renamed; 'replace': at the rename)."""

import os
import random
import signal
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from torchfluid.checkpoint import Checkpointer  # noqa: E402
from torchfluid.clip import ClipGradByGlobalNorm  # noqa: E402
from torchfluid.optimizer import RMSProp  # noqa: E402
from torchfluid.optimizer.lr import StepDecay  # noqa: E402


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def main(ckdir: str, total: int, out: str, kill_step: int, kill_at: str) -> None:
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Dropout(0.2), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    g = torch.Generator().manual_seed(123)
    x, y = torch.randn(64, 6, generator=g), torch.randn(64, 1, generator=g)
    sched = StepDecay(learning_rate=0.01, step_size=4, gamma=0.5)
    opt = RMSProp(
        sched, momentum=0.9, centered=True, parameters=model.named_parameters(), grad_clip=ClipGradByGlobalNorm(1.0)
    )
    ck = Checkpointer(ckdir, every=1, keep=2)
    state = ck.resume(model=model, optimizer=opt)
    start = state["step"] if state else 0
    for step in range(start, total):
        idx = torch.randperm(64)[:16]
        noise = torch.tensor(np.random.randn(16, 1) * 0.01 + random.random() * 0.01, dtype=torch.float32)
        opt.clear_grad(set_to_zero=False)
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx] + noise)
        loss.backward()
        opt.step()
        sched.step()
        if step == kill_step:
            if kill_at == "update":
                die()
            real = {"fsync": os.fsync, "replace": os.replace}[kill_at]

            def fault(*args, _real=real):
                die()

            setattr(os, kill_at, fault)
        ck.save(step + 1, model=model, optimizer=opt)
    torch.save(dict(model.state_dict().items()), out)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5])
