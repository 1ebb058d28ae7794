"""Readers of the benchmark files and the protocol's split borders."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mamba_forecast.datasets import BENCHMARKS, load_benchmark, n_windows, resolve_data_dir, split_borders

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def needs_data(test):
    """Reads the benchmark files in ../shared/datasets: integration tier (CI runs it with ../shared beside it)."""
    skip = pytest.mark.skipif(not SHARED.is_dir(), reason="benchmark files (../shared/datasets) not present")
    return pytest.mark.integration(skip(test))


EXPECTED = {  # rows, series, last column
    "ETTh1": (17420, 7, "OT"),
    "ETTh2": (17420, 7, "OT"),
    "ETTm1": (69680, 7, "OT"),
    "Weather": (52696, 21, "OT"),
    "Exchange": (7588, 8, "OT"),
    "SML2010": (2764 + 1373, 18, "Temperature_Comedor_Sensor"),
}


@needs_data
@pytest.mark.parametrize("name", list(EXPECTED))
def test_reader_parses_file(name):
    rows, n_series, last = EXPECTED[name]
    df = load_benchmark(name, SHARED)
    assert df.shape == (rows, n_series + 1)
    assert df.columns[0] == "date" and df.columns[-1] == last
    assert pd.api.types.is_datetime64_any_dtype(df["date"])
    assert df["date"].is_monotonic_increasing
    values = df.drop(columns="date").to_numpy()
    assert values.dtype == np.float64 and np.isfinite(values).all()
    assert BENCHMARKS[name].n_series == n_series


@needs_data
def test_weather_quirks_survive():
    df = load_benchmark("weather", SHARED)  # case-insensitive name
    assert "\r" not in "".join(df.columns)  # CRLF stripped
    assert df["date"].duplicated().sum() == 1  # 2020-05-12 06:00 kept twice, as the official loader does
    assert any("\ufffd" in c for c in df.columns)  # the header's U+FFFD characters are read, not fatal


@needs_data
def test_sml2010_concatenates_both_files_in_time():
    df = load_benchmark("SML2010", SHARED)
    assert df["date"].iloc[0] == pd.Timestamp("2012-03-13 11:45")
    assert df["date"].iloc[-1] == pd.Timestamp("2012-05-02 07:30")
    assert "Day_Of_Week" not in df.columns and "Exterior_Entalpic_1" not in df.columns
    assert (df.drop(columns="date").std() > 0).all()


def test_ett_hour_borders_and_window_counts():
    b = split_borders("ETTh1", 17420, input_size=96)
    assert b == {"train": (0, 8640), "val": (8544, 11520), "test": (11424, 14400)}
    # test segment = 2880 target rows + 96 look-back rows; windows = 2880 + 96 - 96 - 96 + 1
    assert n_windows(b["test"], 96, 96) == 2785
    assert n_windows(b["train"], 96, 96) == 8640 - 96 - 96 + 1
    assert n_windows(b["test"], 96, 720) == 2880 + 96 - 96 - 720 + 1


def test_ett_minute_and_ratio_borders():
    assert split_borders("ETTm1", 69680, 96)["test"] == (46080 - 96, 57600)
    b = split_borders("Weather", 52696, 96)
    n_train, n_test = int(52696 * 0.7), int(52696 * 0.2)
    assert b["train"] == (0, n_train)
    assert b["val"] == (n_train - 96, 52696 - n_test)
    assert b["test"] == (52696 - n_test - 96, 52696)
    # every target row after the training segment is scored exactly once
    assert b["val"][1] - b["val"][0] - 96 + b["test"][1] - b["test"][0] - 96 == 52696 - n_train


def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMBA_FORECAST_DATA", str(tmp_path))
    assert resolve_data_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_data_dir(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="ETTh1.csv"):
        load_benchmark("ETTh1", tmp_path)
    with pytest.raises(KeyError, match="known"):
        load_benchmark("nope", tmp_path)


@needs_data
@pytest.mark.parametrize("name", ["Weather", "SML2010"])
def test_gzip_copies_read_the_same(name, tmp_path):
    """A folder of ``.gz`` copies (the small data folder sent to a GPU machine) gives the same frame."""
    import gzip
    import shutil

    for f in BENCHMARKS[name].files:
        with open(SHARED / f, "rb") as src, gzip.open(tmp_path / f"{f}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
    pd.testing.assert_frame_equal(load_benchmark(name, tmp_path), load_benchmark(name, SHARED))
