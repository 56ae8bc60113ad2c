"""The data of a run: a bundled set or a CSV, split, and encoded for the model."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from ..dataset import bundled
from .config import Config, ConfigError

__all__ = ["Prepared", "prepare", "to_tokens"]


@dataclasses.dataclass
class Prepared:
    """Arrays ready for a model: ``x`` float32 features or int64 tokens ``[N, F]``;
    ``y`` float32 ``[N, 1]`` (regression) or int64 ``[N, 1]`` (classification)."""

    name: str
    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_features: int
    num_outputs: int
    vocab: int = 0  # embedding models: number of token ids
    source: str = ""

    @property
    def classification(self) -> bool:
        return self.task == "classification"


def to_tokens(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, bins: int) -> np.ndarray:
    """Feature ``j`` of value ``v`` -> token ``j * bins + b``, ``b`` its bin in ``[lo_j, hi_j]``
    cut into ``bins`` equal parts (values outside go to the end bins)."""
    span = np.where(hi > lo, hi - lo, 1.0)
    b = np.clip(np.floor((x - lo) / span * bins), 0, bins - 1).astype(np.int64)
    return b + np.arange(x.shape[1], dtype=np.int64) * bins


def prepare(cfg: Config) -> Prepared:
    path = cfg["data.path"]
    try:
        if path is None:
            table = bundled.load(cfg["data.name"])
        else:
            table = bundled.load_csv(os.path.expanduser(path), cfg["data.target"], cfg["data.task"])
    except (ValueError, FileNotFoundError) as e:
        raise ConfigError(f"data.{'name' if path is None else 'path'}: {e}") from None
    task = table.task if cfg["data.task"] == "auto" else cfg["data.task"]
    if task != table.task:
        raise ConfigError(f"data.task={task!r} does not fit data set {table.name!r}, a {table.task} set")
    try:
        x_tr, y_tr, x_te, y_te = bundled.split(table, cfg["data.test_fraction"], cfg["seed"])
    except ValueError as e:
        raise ConfigError(f"data.test_fraction: {e}") from None
    if table.task == "classification":
        y_tr, y_te = y_tr.reshape(-1, 1), y_te.reshape(-1, 1)
    vocab = 0
    if cfg["model.kind"] == "embedding":
        bins = cfg["model.bins"]
        lo, hi = x_tr.min(axis=0), x_tr.max(axis=0)
        x_tr, x_te = to_tokens(x_tr, lo, hi, bins), to_tokens(x_te, lo, hi, bins)
        vocab = table.x.shape[1] * bins
    outputs = table.num_classes if table.task == "classification" else 1
    return Prepared(table.name, table.task, x_tr, y_tr, x_te, y_te, table.x.shape[1], outputs, vocab, table.source)
