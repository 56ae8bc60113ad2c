"""Checkpoints that resume bit-exactly and load safely (see :mod:`.format`, :mod:`.checkpointer`)."""

from .atomic import atomic_write
from .checkpointer import Checkpointer, CheckpointFolderError
from .format import CheckpointError, load, save
from .rng import get_rng_state, set_rng_state

__all__ = [
    "atomic_write",
    "Checkpointer",
    "CheckpointError",
    "CheckpointFolderError",
    "load",
    "save",
    "get_rng_state",
    "set_rng_state",
]
