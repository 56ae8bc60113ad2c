"""A process for the two-process checkpoint-folder tests.

``save DIR N STOP``: one run saving steps 1, 2, ... (keep=3), at least N of them and
until the file STOP exists; prints ``saved K`` when every save succeeded. ``resume DIR
N STOP``: N attempts to resume the folder while the other process writes it, then
creates STOP; prints how many were refused because the folder is in use, how many
states ``latest()`` (which takes no lock) read, and how many of those were wrong.
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from torchfluid.checkpoint import Checkpointer, CheckpointFolderError  # noqa: E402


def main(role: str, ckdir: str, n: int, stop: str) -> None:
    if role == "save":
        ck = Checkpointer(ckdir, keep=3, run_id="writer")
        w = torch.zeros(64)
        step = 0
        while step < n or not os.path.exists(stop):
            step += 1
            w += 1
            ck.save(step, extra={"w": w.clone()})
            assert os.path.exists(ck.path_for(step))
        print(f"saved {step}", flush=True)
        return
    refused, read, bad = 0, 0, 0
    for _ in range(n):
        try:
            Checkpointer(ckdir).resume()
        except CheckpointFolderError as e:
            refused += "is in use by process" in str(e)
        state = Checkpointer(ckdir).latest()
        if state is not None:
            read += 1
            bad += not torch.equal(state["extra"]["w"], torch.full((64,), float(state["step"])))
    open(stop, "w").close()
    print(f"refused {refused} read {read} bad {bad}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
