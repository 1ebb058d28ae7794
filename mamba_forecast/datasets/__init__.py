"""Benchmark datasets: the registry of the standard long-horizon sets, their readers and split borders, any CSV
in the standard layout, the bundled ETTh1, and ``mamba-forecast data download``.

>>> from mamba_forecast.datasets import load_benchmark, load_demo_data, split_borders, to_long
>>> df = load_benchmark("ETTh1")                  # date + 7 series, 17,420 rows (bundled)
>>> split_borders("ETTh1", len(df), input_size=96)
{'train': (0, 8640), 'val': (8544, 11520), 'test': (11424, 14400)}
>>> long = to_long(load_demo_data())              # unique_id / ds / y, NeuralForecast's format

Where the files are, the registered sets and ``mamba-forecast data download``: ``docs/guides/data.md``.
"""

from .download import DownloadError, download, file_status, sha256_of
from .readers import (
    DEMO_CREDIT,
    DEMO_DATA,
    ENV_VAR,
    default_data_dir,
    find_file,
    load_benchmark,
    load_demo_data,
    n_windows,
    read_csv_file,
    recording_break,
    register_csv,
    resolve_data_dir,
    split_borders,
    to_long,
)
from .registry import DATASETS, SPLIT_RULES, DataFile, DatasetSpec, canonical_name, get_spec, preset_stand_in

__all__ = [
    "DATASETS",
    "DEMO_CREDIT",
    "DEMO_DATA",
    "DataFile",
    "DatasetSpec",
    "DownloadError",
    "ENV_VAR",
    "SPLIT_RULES",
    "canonical_name",
    "default_data_dir",
    "download",
    "file_status",
    "find_file",
    "get_spec",
    "load_benchmark",
    "load_demo_data",
    "n_windows",
    "preset_stand_in",
    "read_csv_file",
    "recording_break",
    "register_csv",
    "resolve_data_dir",
    "sha256_of",
    "split_borders",
    "to_long",
]
