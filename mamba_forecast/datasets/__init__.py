"""Benchmark datasets: readers for the standard long-horizon files and the protocol's split borders.

>>> from mamba_forecast.datasets import load_benchmark, split_borders   # doctest: +SKIP
>>> df = load_benchmark("ETTh1")                  # date + 7 series, 17,420 rows
>>> split_borders("ETTh1", len(df), input_size=96)
{'train': (0, 8640), 'val': (8544, 11520), 'test': (11424, 14400)}
"""

from .readers import (
    BENCHMARKS,
    BenchmarkSpec,
    canonical_name,
    default_data_dir,
    load_benchmark,
    n_windows,
    recording_break,
    resolve_data_dir,
    split_borders,
)

__all__ = [
    "BENCHMARKS",
    "BenchmarkSpec",
    "canonical_name",
    "default_data_dir",
    "load_benchmark",
    "n_windows",
    "recording_break",
    "resolve_data_dir",
    "split_borders",
]
