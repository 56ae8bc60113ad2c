"""The RMSProp step benchmark behind ``torchfluid bench`` (and ``benchmarks/``)."""

from .core import CASES, QUICK_CASES, BenchResult, available_methods, bench_case, fused_unavailable, run
from .memory import memory_rows
