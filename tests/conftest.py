"""Settings every test shares: one torch thread, quiet Lightning, no warning noise; shared helpers."""

from __future__ import annotations

import logging
import os
import warnings

import pytest
import torch

from mamba_forecast.models import get_spec, model_names

# The models under test: every registered model spec (a model registered in its core file joins every test
# parametrised over MODEL_NAMES).
MODEL_NAMES = model_names()


def small_arguments(name: str, width: int = 16, d_state: int = 4, e_layers: int = 1) -> dict:
    """Small sizes for registered model ``name``: the usual size arguments, those it takes."""
    sizes = {"d_model": width, "d_ff": width, "e_layers": e_layers, "d_state": d_state}
    return {k: v for k, v in sizes.items() if k in get_spec(name).arguments}


# Trainer switches every host-library test uses: CPU, no progress bar, no logger, no model summary.
QUIET = dict(enable_progress_bar=False, logger=False, enable_model_summary=False, accelerator="cpu")

_LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric")


@pytest.fixture(autouse=True, scope="session")
def _one_thread_quiet():
    # The models under test are tiny and CI has two shared cores: extra intra-op threads only contend there
    # (10 to 100 times slower under load). Subprocesses the tests start get OMP_NUM_THREADS=1 themselves.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    torch.set_num_threads(threads)
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With ``MAMBA_FORECAST_NO_SKIPS=1`` (set by .ci/run), a skipped test fails unless it is marked ``gpu``: CI
    installs every optional dependency, so a skip there means a test silently stopped running."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("MAMBA_FORECAST_NO_SKIPS") == "1" and item.get_closest_marker("gpu") is None:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped ({reason}), but MAMBA_FORECAST_NO_SKIPS=1 allows skips only in gpu-marked tests"


def rel_err(a, b) -> float:
    """Relative error ``||a - b|| / ||b||`` of two tensors, in float64."""
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def bundled_etth1():
    """The ETTh1 copy shipped inside the package (``date`` + 7 float64 columns), so a test needs no data folder."""
    import importlib.resources

    import pandas as pd

    path = importlib.resources.files("mamba_forecast.datasets").joinpath("data", "ETTh1.csv.gz")
    with path.open("rb") as fh:
        df = pd.read_csv(fh, compression="gzip")
    df["date"] = pd.to_datetime(df["date"])
    value_cols = [c for c in df.columns if c != "date"]
    df[value_cols] = df[value_cols].astype("float64")
    return df


def synthetic_ett(n_rows=1200, n_series=3, seed=0):
    """An hourly frame in the benchmark files' layout (``date``, series ..., ``OT``): daily cycles plus a trend."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    t = np.arange(n_rows)
    cols = {"date": pd.date_range("2016-07-01", periods=n_rows, freq="h")}
    for j in range(n_series):
        cols[f"s{j}"] = np.sin(2 * np.pi * t / 24 + j) + 0.01 * t + 0.1 * rng.standard_normal(n_rows)
    cols["OT"] = np.cos(2 * np.pi * t / 24) * 2 + 5 + 0.1 * rng.standard_normal(n_rows)
    return pd.DataFrame(cols)


def bench_row(ds, model, h, mse, preset="tuned", seed=2023, **extra):
    """One row of a results CSV, as ``mamba-forecast bench`` appends it (harness, L = 96)."""
    return dict(
        dataset=ds,
        model=model,
        input_size=96,
        horizon=h,
        seed=seed,
        mse=mse,
        mae=mse,
        epochs_run=5,
        best_epoch=3,
        max_epochs=10,
        sec_per_epoch=1,
        train_sec=5,
        test_sec=1,
        peak_mem_mb=100,
        params=10,
        via="harness",
        preset=preset,
        notes="",
        **extra,
    )


def tiny_bench_results(folder):
    """A small results CSV and a published-results CSV in ``folder``: SMamba ETTh1-96 at seeds 2023 and 2024
    (+1.3% over the published 0.386 at seed 2023), ETTh2-96 (+4.7% over 0.296), FMamba ETTh1-96 (no published
    value) and SMamba ETTh1-96 through NeuralForecast; all official presets. Returns (results, published)."""
    import csv
    from pathlib import Path

    results, published = Path(folder) / "bench_results.csv", Path(folder) / "published.csv"
    with open(results, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "dataset",
                "model",
                "input_size",
                "horizon",
                "seed",
                "mse",
                "mae",
                "epochs_run",
                "best_epoch",
                "max_epochs",
                "sec_per_epoch",
                "peak_mem_mb",
                "params",
                "device",
                "machine",
                "via",
            ]
        )
        w.writerow(
            ["ETTh1", "SMamba", 96, 96, 2023, 0.3899, 0.4050, 7, 4, 10, 30.0, 500, 1170528, "cpu", "box", "harness"]
        )
        w.writerow(
            ["ETTh1", "SMamba", 96, 96, 2024, 0.3921, 0.4070, 6, 3, 10, 31.0, 510, 1170528, "cpu", "box", "harness"]
        )
        w.writerow(
            ["ETTh2", "SMamba", 96, 96, 2023, 0.3100, 0.3600, 5, 2, 10, 29.0, 505, 1170528, "cpu", "box", "harness"]
        )
        w.writerow(
            ["ETTh1", "FMamba", 96, 96, 2023, 0.3800, 0.4000, 7, 4, 10, 30.0, 500, 1323104, "cpu", "box", "harness"]
        )
        w.writerow(
            [
                "ETTh1",
                "SMamba",
                96,
                96,
                2023,
                0.3950,
                0.4100,
                7,
                4,
                10,
                90.0,
                900,
                1170528,
                "cpu",
                "box",
                "neuralforecast",
            ]
        )
    published.write_text(
        "dataset,input_size,horizon,model,mse,mae,source\n"
        "ETTh1,96,96,S-Mamba,0.386,0.405,paper A\nETTh2,96,96,S-Mamba,0.296,0.348,paper A\n"
    )
    return results, published


# ----------------------------------------------------------------------------------------------------
# probabilistic forecasts: quantiles must never cross


def _quantile_of(suffix: str) -> float | None:
    """The quantile a NeuralForecast output column suffix stands for (``-lo-80`` -> 0.1, ``_ql0.3`` -> 0.3)."""
    import re

    if suffix == "-median":
        return 0.5
    match = re.fullmatch(r"-(lo|hi)-(\d+(?:\.\d+)?)", suffix)
    if match:
        level = float(match.group(2)) / 100
        return (1 - level) / 2 if match.group(1) == "lo" else (1 + level) / 2
    match = re.fullmatch(r"_ql(\d*\.?\d+)", suffix)
    return float(match.group(1)) if match else None


def count_quantile_crossings(forecast, model: str) -> int:
    """Rows of a NeuralForecast forecast (``predict`` or ``cross_validation``) whose quantile columns of
    ``model`` are not in increasing order of their quantile (``-lo-90 <= -lo-80 <= -median <= -hi-80 ...``)."""
    import numpy as np

    columns = {}
    for column in forecast.columns:
        if str(column).startswith(model):
            q = _quantile_of(str(column)[len(model) :])
            if q is not None:
                columns[q] = column
    assert len(columns) >= 2, f"no quantile columns of {model} in {list(forecast.columns)}"
    values = forecast[[columns[q] for q in sorted(columns)]].to_numpy(dtype=float)
    return int((np.diff(values, axis=1) < 0).any(axis=1).sum())


def count_darts_quantile_crossings(series) -> int:
    """Time steps of a Darts forecast of quantile likelihood parameters (``predict_likelihood_parameters=True``,
    components ``<name>_q0.10`` ...) whose quantiles of some target component decrease."""
    import re

    import numpy as np

    groups: dict[str, list[tuple[float, int]]] = {}
    for j, name in enumerate(series.components):
        match = re.fullmatch(r"(.*)_q(\d*\.?\d+)", str(name))
        assert match, f"{name} is not a quantile component"
        groups.setdefault(match.group(1), []).append((float(match.group(2)), j))
    values = series.all_values(copy=False)[:, :, 0]
    bad = np.zeros(len(values), dtype=bool)
    for members in groups.values():
        ordered = values[:, [j for _, j in sorted(members)]]
        bad |= (np.diff(ordered, axis=1) < 0).any(axis=1)
    return int(bad.sum())
