"""The RMSProp step benchmark behind ``torchfluid bench`` (and ``benchmarks/``)."""

from .core import CASES, QUICK_CASES, BenchResult, available_methods, bench_case, run
from .memory import memory_rows

__all__ = ["CASES", "QUICK_CASES", "BenchResult", "available_methods", "bench_case", "run", "memory_rows"]
