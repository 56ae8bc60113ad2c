"""Data-parallel training on ``torch.distributed`` (gloo on CPU, NCCL on GPU).

* Any torchfluid optimizer works under ``torch.nn.parallel.DistributedDataParallel``
  unchanged: DDP averages the gradients, every rank runs the same update.
* ``RMSProp(..., shard_state=True)`` (any torchfluid optimizer): ZeRO stage 1, the
  optimizer state divided among the ranks (:mod:`.sharding`), global-norm clipping
  over all ranks, ``grad_reduction='reduce'`` to average gradients without DDP.
* Checkpoints per rank, resumable at any world size, and a consolidated export
  (:mod:`.checkpoint`).

See docs/distributed.md for the design and the communication volume per step.
"""

from .checkpoint import ShardedCheckpointer, consolidated_state_dict, merge_shards, state_nbytes
from .sharding import GRAD_REDUCTIONS, ShardingError, partition

__all__ = [
    "GRAD_REDUCTIONS",
    "ShardingError",
    "ShardedCheckpointer",
    "consolidated_state_dict",
    "merge_shards",
    "partition",
    "state_nbytes",
]
