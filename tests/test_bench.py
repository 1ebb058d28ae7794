"""The benchmark harness: protocol, training loop, presets, resume, CLI and report (fast, CPU)."""

import csv
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

from mamba_forecast.bench import (
    EarlyStopping, get_preset, prepare, read_results, time_features, type1_lr, window_batches,
)
from mamba_forecast.bench.models import LinearBaseline, forward
from mamba_forecast.bench.report import aggregate, write_report
from mamba_forecast.bench.train import fit_and_test
from mamba_forecast.cli import main


def synthetic_ett(n_rows=1200, n_series=3, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows)
    cols = {"date": pd.date_range("2016-07-01", periods=n_rows, freq="h")}
    for j in range(n_series):
        cols[f"s{j}"] = np.sin(2 * np.pi * t / 24 + j) + 0.01 * t + 0.1 * rng.standard_normal(n_rows)
    cols["OT"] = np.cos(2 * np.pi * t / 24) * 2 + 5 + 0.1 * rng.standard_normal(n_rows)
    return pd.DataFrame(cols)


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    synthetic_ett().to_csv(d / "ETTh1.csv", index=False)
    return d


def test_zscore_uses_training_statistics():
    df = synthetic_ett()
    data = prepare("ETTh1", 24, frame=df)
    b1 = data.borders["train"][1]
    train = data.values[:b1]
    np.testing.assert_allclose(train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(train.std(0), 1, atol=1e-4)
    raw = df.drop(columns="date").to_numpy()
    np.testing.assert_allclose(data.mean, raw[:b1].mean(0))
    # the trend makes later segments non-zero-mean: statistics did not leak from val/test
    assert data.values[data.borders["test"][0]:, 0].mean() > 0.5


def test_time_features_timef_hourly():
    marks = time_features(pd.to_datetime(["2016-01-01 00:00", "2016-12-31 23:00"]))
    assert marks.shape == (2, 4) and marks.min() >= -0.5 and marks.max() <= 0.5
    np.testing.assert_allclose(marks[0], [-0.5, 4 / 6 - 0.5, -0.5, -0.5], atol=1e-6)  # a Friday
    np.testing.assert_allclose(marks[1, 0], 0.5, atol=1e-6)


def test_windows_are_stride_one_and_test_keeps_every_window():
    values = torch.arange(50, dtype=torch.float32)[:, None]
    batches = list(window_batches(values, None, 8, 4, 16, shuffle=False, drop_last=False))
    xs = torch.cat([b[0] for b in batches])
    ys = torch.cat([b[2] for b in batches])
    assert xs.shape == (50 - 8 - 4 + 1, 8, 1)  # 39 windows, the last partial batch kept
    assert torch.equal(xs[:, 0, 0], torch.arange(39.0))
    assert torch.equal(ys[:, 0, 0], xs[:, -1, 0] + 1)
    dropped = list(window_batches(values, None, 8, 4, 16, shuffle=True, drop_last=True))
    assert sum(b[0].shape[0] for b in dropped) == 32


def test_type1_schedule_halves_each_epoch_after_the_second():
    assert [type1_lr(1e-3, e) for e in range(1, 6)] == [1e-3, 1e-3, 5e-4, 2.5e-4, 1.25e-4]


def test_early_stopping_restores_best_weights():
    model = nn.Linear(2, 1)
    stopper = EarlyStopping(patience=3)
    snapshots = {}
    for epoch, loss in enumerate([1.0, 0.5, 0.7, 0.5, 0.6, 0.8, 0.9, 0.1], 1):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        snapshots[epoch] = model.weight.clone()
        stopper.step(loss, model, epoch)
        if stopper.stop:
            break
    # epoch 4 ties the best (counts as an improvement, as the official code); 5, 6, 7 are worse
    assert stopper.stop and epoch == 7 and stopper.best_epoch == 4
    stopper.restore(model)
    assert torch.equal(model.weight, snapshots[4])


def test_fit_and_test_scores_every_window_and_applies_lr():
    data = prepare("ETTh1", 24, frame=synthetic_ett())
    torch.manual_seed(0)
    model = LinearBaseline(24, 12)
    res = fit_and_test(model, data, 12, forward_fn=lambda m, x, xm: forward(m, x, xm, False), epochs=3,
                       batch_size=32, learning_rate=1e-2, progress=False, log=lambda *_: None)
    assert res.n_test_windows == data.n_windows("test", 12) == 240 + 24 - 24 - 12 + 1
    assert [h["lr"] for h in res.history] == [1e-2, 1e-2, 5e-3][: res.epochs_run]
    assert 0 < res.mse < 1 and 0 < res.mae < 1
    assert res.sample["forecast"].shape == (12, 4)


def test_presets_follow_the_official_scripts():
    p = get_preset("SMamba", "ETTh1", 96)
    assert (p.e_layers, p.d_model, p.d_ff, p.d_state, p.learning_rate, p.batch_size, p.epochs) == (
        2, 256, 256, 2, 7e-5, 32, 10)
    assert (p.d_conv, p.expand, p.input_size) == (2, 1, 96)
    assert get_preset("SMamba", "Exchange", 96).batch_size == 16
    assert get_preset("SMamba", "Weather", 720).epochs == 5
    f = get_preset("FMamba", "ETTh2", 336)
    s = get_preset("SMamba", "ETTh2", 336)
    assert (f.d_model, f.learning_rate, f.d_state) == (s.d_model, s.learning_rate, s.d_state)
    t = get_preset("TSM2", "ETTh1", 96)
    assert (t.input_size, t.d_model, t.e_layers, t.extra["patch_len"], t.extra["stride"]) == (512, 32, 2, 16, 8)
    with pytest.raises(KeyError):
        get_preset("Nope", "ETTh1", 96)


def _bench(data_dir, out, *extra):
    return main(["bench", "--dataset", "ETTh1", "--model", "Linear", "--horizon", "12", "--input-size", "24",
                 "--epochs", "1", "--data-dir", str(data_dir), "--out", str(out), "--no-progress", *extra])


def test_cli_bench_appends_and_resume_skips_done_cells(data_dir, tmp_path, capsys):
    out = tmp_path / "results.csv"
    _bench(data_dir, out)
    rows = read_results(out)
    assert len(rows) == 1
    r = rows[0]
    assert (r["dataset"], r["model"], r["horizon"], r["seed"], r["via"]) == ("ETTh1", "Linear", "12", "2023", "harness")
    for col in ("mse", "mae", "epochs_run", "sec_per_epoch", "peak_mem_mb", "params", "device", "machine",
                "timestamp"):
        assert r[col] != ""
    _bench(data_dir, out)  # same cell: skipped
    assert len(read_results(out)) == 1
    assert "skip" in capsys.readouterr().out
    _bench(data_dir, out, "--seeds", "2023,7")  # only the new seed runs
    assert [r["seed"] for r in read_results(out)] == ["2023", "7"]
    assert (tmp_path / "figures" / "samples" / "ETTh1_Linear_L24_H12_s7_harness.csv").exists()


def test_tiny_smamba_end_to_end(data_dir, tmp_path):
    pytest.importorskip("mamba_forecast.models", reason="models not available")
    from mamba_forecast import models

    if not hasattr(models, "SMamba"):
        pytest.skip("SMamba not landed")
    out = tmp_path / "r.csv"
    main(["bench", "--dataset", "ETTh1", "--model", "SMamba", "--horizon", "12", "--input-size", "24",
          "--epochs", "1", "--max-train-batches", "3", "--set", "d_model=16,d_ff=16,e_layers=1,batch_size=16",
          "--data-dir", str(data_dir), "--out", str(out), "--no-progress", "--device", "cpu"])
    (row,) = read_results(out)
    assert math.isfinite(float(row["mse"])) and row["calendar_tokens"] == "1" and row["d_model"] == "16"
    assert "overrides" in row["notes"]


def test_bench_runs_with_torch_alone_on_gzip_data(tmp_path):
    """The GPU machine has torch, numpy and pandas but no NeuralForecast, Darts, statsforecast, Ray, Optuna or
    matplotlib: `python -m mamba_forecast.cli bench` must run there, on a folder of ``.gz`` copies."""
    import gzip
    import os
    import subprocess
    import sys

    data = tmp_path / "data"
    data.mkdir()
    with gzip.open(data / "ETTh1.csv.gz", "wt") as fh:
        synthetic_ett().to_csv(fh, index=False)
    out = tmp_path / "r.csv"
    blocked = ["neuralforecast", "darts", "statsforecast", "utilsforecast", "ray", "optuna", "matplotlib", "tqdm"]
    code = f"""
import runpy, sys
for name in {blocked!r}:
    sys.modules[name] = None  # as if not installed
sys.argv = ["mamba-forecast", "bench", "--dataset", "ETTh1", "--model", "SMamba", "--horizon", "12",
            "--input-size", "24", "--epochs", "1", "--max-train-batches", "2", "--device", "cpu", "--no-progress",
            "--set", "d_model=16,d_ff=16,e_layers=1", "--data-dir", {str(data)!r}, "--out", {str(out)!r}]
runpy.run_module("mamba_forecast.cli", run_name="__main__")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (row,) = read_results(out)
    assert math.isfinite(float(row["mse"])) and row["model"] == "SMamba"


def test_report_renders_from_a_tiny_csv(tmp_path):
    results = tmp_path / "bench_results.csv"
    with open(results, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["dataset", "model", "input_size", "horizon", "seed", "mse", "mae", "epochs_run", "best_epoch",
                    "max_epochs", "sec_per_epoch", "peak_mem_mb", "params", "device", "machine", "via"])
        w.writerow(["ETTh1", "SMamba", 96, 96, 2023, 0.3899, 0.4050, 7, 4, 10, 30.0, 500, 1170528, "cpu", "box", "harness"])
        w.writerow(["ETTh1", "SMamba", 96, 96, 2024, 0.3921, 0.4070, 6, 3, 10, 31.0, 510, 1170528, "cpu", "box", "harness"])
        w.writerow(["ETTh2", "SMamba", 96, 96, 2023, 0.3100, 0.3600, 5, 2, 10, 29.0, 505, 1170528, "cpu", "box", "harness"])
        w.writerow(["ETTh1", "FMamba", 96, 96, 2023, 0.3800, 0.4000, 7, 4, 10, 30.0, 500, 1323104, "cpu", "box", "harness"])
        w.writerow(["ETTh1", "SMamba", 96, 96, 2023, 0.3950, 0.4100, 7, 4, 10, 90.0, 900, 1170528, "cpu", "box",
                    "neuralforecast"])
    published = tmp_path / "published.csv"
    published.write_text("dataset,input_size,horizon,model,mse,mae,source\n"
                         "ETTh1,96,96,S-Mamba,0.386,0.405,paper\nETTh2,96,96,S-Mamba,0.296,0.348,paper\n")
    samples = tmp_path / "figures" / "samples"
    samples.mkdir(parents=True)
    with open(samples / "ETTh1_SMamba_L96_H96_s2023_harness.csv", "w") as fh:
        fh.write("step,history,truth,forecast,variate\n-2,0.1,,,OT\n-1,0.2,,,OT\n0,,0.3,0.25,OT\n1,,0.4,0.41,OT\n")
    md = write_report(results, tmp_path / "benchmarks.md", published=published)
    text = md.read_text()
    assert "| ETTh1 | SMamba | 96 | 96 | official | harness | 2023,2024 | 0.3910 ± 0.0011 | 0.386 | +1.3%" in text
    assert "| ETTh2 | SMamba |" in text and "**no**" in text  # 0.310 > 0.296 x 1.03
    assert "box" in text
    # the acceptance grid (seed 2023 only): ETTh1-96 passes, ETTh2-96 misses, 18 cells not run
    assert "**SMamba** (L = 96, seed 2023, MSE ≤ published × 1.03): 1 of 20 cells pass, 2 measured" in text
    assert "Over the target: ETTh2-96 (+4.7%)" in text and "Not run yet: ETTh1-192," in text
    assert "0.3950 against the harness's 0.3899 (+1.3%" in text
    assert "side by side" not in text  # the models' grid compares tuned presets: none in this CSV
    assert (tmp_path / "figures" / "relative_difference.png").stat().st_size > 1000
    assert (tmp_path / "figures" / "forecast_ETTh1.png").stat().st_size > 1000
    entries = aggregate(read_results(results), {})
    assert all(math.isnan(e["pub_mse"]) for e in entries)


@pytest.mark.slow
def test_via_neuralforecast_scores_the_same_windows(data_dir, tmp_path):
    pytest.importorskip("neuralforecast")
    nf_models = pytest.importorskip("mamba_forecast.neuralforecast")
    if not hasattr(nf_models, "SMamba"):
        pytest.skip("NeuralForecast SMamba adapter not landed")
    out = tmp_path / "r.csv"
    main(["bench", "--dataset", "ETTh1", "--model", "SMamba", "--horizon", "12", "--input-size", "24",
          "--epochs", "1", "--max-train-batches", "2", "--set", "d_model=16,d_ff=16,e_layers=1,batch_size=16",
          "--via", "neuralforecast", "--data-dir", str(data_dir), "--out", str(out), "--no-progress",
          "--device", "cpu"])
    (row,) = read_results(out)
    assert row["via"] == "neuralforecast" and row["n_test_windows"] == str(240 + 24 - 24 - 12 + 1)
    assert math.isfinite(float(row["mse"]))


def test_via_neuralforecast_passes_only_the_arguments_the_model_takes(data_dir, tmp_path):
    """TSM2 has no d_ff (a field of every preset): `--via neuralforecast` gives the NF class only the
    architecture arguments its spec lists, as the harness does, instead of failing on d_ff."""
    pytest.importorskip("neuralforecast")
    out = tmp_path / "r.csv"
    main(["bench", "--dataset", "ETTh1", "--model", "TSM2", "--horizon", "12", "--input-size", "24",
          "--epochs", "1", "--max-train-batches", "1",
          "--set", "d_model=8,e_layers=1,d_state=2,batch_size=16",
          "--via", "neuralforecast", "--data-dir", str(data_dir), "--out", str(out), "--no-progress",
          "--device", "cpu"])
    (row,) = read_results(out)
    assert row["model"] == "TSM2" and row["via"] == "neuralforecast" and math.isfinite(float(row["mse"]))


def test_cell_lock_blocks_a_second_claim(tmp_path):
    from mamba_forecast.bench.runner import _claim

    out = tmp_path / "r.csv"
    key = ("ETTh1", "Linear", "24", "12", "2023", "harness", "1")
    lock = _claim(out, key)
    assert lock is not None and _claim(out, key) is None  # held by this (live) process
    lock.write_text("999999999")  # a dead owner: taken over
    assert _claim(out, key) is not None
