"""The benchmark harness: protocol, training loop, presets, resume, CLI and report (fast, CPU)."""

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

from conftest import synthetic_ett, tiny_bench_results
from mamba_forecast.bench import (
    EarlyStopping,
    get_preset,
    prepare,
    read_results,
    time_features,
    type1_lr,
    window_batches,
)
from mamba_forecast.bench.models import LinearBaseline, forward
from mamba_forecast.bench.records import append_csv_row, read_rows
from mamba_forecast.bench.report import aggregate, write_report
from mamba_forecast.bench.runner import SAMPLE_COLUMNS
from mamba_forecast.bench.train import fit_and_test
from mamba_forecast.cli import main


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
    assert data.values[data.borders["test"][0] :, 0].mean() > 0.5


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
    res = fit_and_test(
        model,
        data,
        12,
        forward_fn=lambda m, x, xm: forward(m, x, xm, False),
        epochs=3,
        batch_size=32,
        learning_rate=1e-2,
        progress=False,
        log=lambda *_: None,
    )
    assert res.n_test_windows == data.n_windows("test", 12) == 240 + 24 - 24 - 12 + 1
    assert [h["lr"] for h in res.history] == [1e-2, 1e-2, 5e-3][: res.epochs_run]
    assert 0 < res.mse < 1 and 0 < res.mae < 1
    assert res.sample["forecast"].shape == (12, 4)


def test_presets_follow_the_official_scripts():
    p = get_preset("SMamba", "ETTh1", 96)
    assert (p.e_layers, p.d_model, p.d_ff, p.d_state, p.learning_rate, p.batch_size, p.epochs) == (
        2,
        256,
        256,
        2,
        7e-5,
        32,
        10,
    )
    assert (p.d_conv, p.expand, p.input_size) == (2, 1, 96)
    assert get_preset("SMamba", "Exchange", 96).batch_size == 16
    assert get_preset("SMamba", "Weather", 720).epochs == 5
    f = get_preset("FMamba", "ETTh2", 336)
    s = get_preset("SMamba", "ETTh2", 336)
    assert (f.d_model, f.learning_rate, f.d_state) == (s.d_model, s.learning_rate, s.d_state)
    t = get_preset("TSM2", "ETTh1", 96)
    assert (t.input_size, t.d_model, t.e_layers, t.extra["patch_len"], t.extra["stride"]) == (512, 32, 2, 16, 8)
    with pytest.raises(KeyError, match="unknown model 'Nope'; known: SMamba"):
        get_preset("Nope", "ETTh1", 96)


def _bench(data_dir, out, *extra):
    return main(
        [
            "bench",
            "--dataset",
            "ETTh1",
            "--model",
            "Linear",
            "--horizon",
            "12",
            "--input-size",
            "24",
            "--epochs",
            "1",
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
            "--no-progress",
            *extra,
        ]
    )


def test_cli_bench_appends_and_resume_skips_done_cells(data_dir, tmp_path, capsys):
    out = tmp_path / "results.csv"
    _bench(data_dir, out)
    rows = read_results(out)
    assert len(rows) == 1
    r = rows[0]
    assert (r["dataset"], r["model"], r["horizon"], r["seed"], r["via"]) == ("ETTh1", "Linear", "12", "2023", "harness")
    for col in ("mse", "mae", "epochs_run", "sec_per_epoch", "peak_mem_mb", "params", "device", "machine", "timestamp"):
        assert r[col] != ""
    _bench(data_dir, out)  # same cell: skipped
    assert len(read_results(out)) == 1
    assert "skip" in capsys.readouterr().out
    _bench(data_dir, out, "--seeds", "2023,7")  # only the new seed runs
    assert [r["seed"] for r in read_results(out)] == ["2023", "7"]
    samples = read_rows(tmp_path / "samples.csv")  # one test window per cell, beside the results CSV
    assert [(r["dataset"], r["model"], r["seed"]) for r in samples] == [
        ("ETTh1", "Linear", "2023"),
        ("ETTh1", "Linear", "7"),
    ]
    assert len(samples[1]["history"].split()) == 24 and len(samples[1]["forecast"].split()) == 12


def test_cli_bench_resume_tells_a_run_under_set_from_the_plain_one(data_dir, tmp_path, capsys):
    """A learning-rate sweep with --set into one results folder runs each value: resume matches a cell together with
    its overrides (and a smoke run's batch cap), so neither the plain run nor another value counts as done."""
    out = tmp_path / "results.csv"
    _bench(data_dir, out)
    _bench(data_dir, out, "--set", "learning_rate=0.0003")
    _bench(data_dir, out, "--set", "learning_rate=0.003")
    _bench(data_dir, out, "--max-train-batches", "2")
    rows = read_results(out)
    assert [float(r["learning_rate"]) for r in rows[:3]] == [float(rows[0]["learning_rate"]), 0.0003, 0.003]
    assert [r["notes"].count("overrides") for r in rows] == [0, 1, 1, 0] and "max_train_batches=2" in rows[3]["notes"]
    capsys.readouterr()
    _bench(data_dir, out, "--set", "learning_rate=0.003")  # this one is done: skipped
    _bench(data_dir, out)
    assert len(read_results(out)) == 4 and capsys.readouterr().out.count("skip") == 2


def test_cli_bench_precision_is_part_of_a_cell_and_compile_is_noted(data_dir, tmp_path):
    out = tmp_path / "results.csv"
    _bench(data_dir, out)
    # a row from before the precision column existed ran in fp32: drop the column, resume still skips the cell
    rows = read_rows(out)
    pd.DataFrame(rows).drop(columns="precision").to_csv(out, index=False)
    _bench(data_dir, out)
    assert len(read_results(out)) == 1 and read_results(out)[0]["precision"] == "fp32"
    _bench(data_dir, out, "--precision", "bf16-mixed", "--compile", "eager")  # another cell: it runs
    old, bf16 = read_results(out)
    assert (old["precision"], bf16["precision"]) == ("fp32", "bf16-mixed")
    assert math.isfinite(float(bf16["mse"])) and bf16["mse"] != old["mse"]
    assert "torch.compile=eager" in bf16["notes"] and "torch.compile" not in old["notes"]
    assert sorted(r["precision"] for r in read_rows(tmp_path / "samples.csv")) == ["bf16-mixed", "fp32"]
    with pytest.raises(SystemExit):
        _bench(data_dir, out, "--precision", "fp16")


def test_put_csv_row_replaces_a_row_written_before_a_key_column_existed(tmp_path):
    from mamba_forecast.bench.records import put_csv_row

    path = tmp_path / "samples.csv"
    append_csv_row(path, {"cell": "a", "value": "1"}, ["cell", "value"])  # an old file: no precision column
    put_csv_row(
        path,
        {"cell": "a", "precision": "fp32", "value": "2"},
        ["cell", "precision", "value"],
        ("cell", "precision"),
        defaults={"precision": "fp32"},
    )
    put_csv_row(
        path,
        {"cell": "a", "precision": "bf16-mixed", "value": "3"},
        ["cell", "precision", "value"],
        ("cell", "precision"),
        defaults={"precision": "fp32"},
    )
    assert [(r["precision"], r["value"]) for r in read_rows(path)] == [("fp32", "2"), ("bf16-mixed", "3")]


def test_via_neuralforecast_refuses_the_harness_compute_switches(data_dir, tmp_path):
    from mamba_forecast.bench.runner import Cell, run_cell

    cell = Cell("ETTh1", "SMamba", 12, input_size=24, epochs=1, via="neuralforecast", protocol="official")
    with pytest.raises(ValueError, match="--precision and --compile"):
        run_cell(replace(cell, precision="bf16-mixed"), data_dir=data_dir, device="cpu", progress=False)


def test_tiny_smamba_end_to_end(data_dir, tmp_path):
    pytest.importorskip("mamba_forecast.models", reason="models not available")
    from mamba_forecast import models

    if not hasattr(models, "SMamba"):
        pytest.skip("SMamba not landed")
    out = tmp_path / "r.csv"
    main(
        [
            "bench",
            "--dataset",
            "ETTh1",
            "--model",
            "SMamba",
            "--horizon",
            "12",
            "--input-size",
            "24",
            "--epochs",
            "1",
            "--max-train-batches",
            "3",
            "--set",
            "d_model=16,d_ff=16,e_layers=1,batch_size=16",
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
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
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (row,) = read_results(out)
    assert math.isfinite(float(row["mse"])) and row["model"] == "SMamba"


def test_report_renders_from_a_tiny_csv(tmp_path):
    results, published = tiny_bench_results(tmp_path)
    append_csv_row(
        tmp_path / "samples.csv",
        dict(
            dataset="ETTh1",
            model="SMamba",
            input_size=96,
            horizon=96,
            seed=2023,
            via="harness",
            max_epochs=10,
            preset="official",
            variate="OT",
            history="0.1 0.2",
            truth="0.3 0.4",
            forecast="0.25 0.41",
        ),
        SAMPLE_COLUMNS,
    )
    md = write_report(results, tmp_path / "benchmarks.md", published=published)
    text = md.read_text()
    assert "| ETTh1 | SMamba | 96 | 96 | official | harness | 2023,2024 | 0.3910 ± 0.0011 | 0.386 | +1.3%" in text
    assert "| ETTh2 | SMamba | 96 | 96 | official | harness | 2023 | 0.3100 | 0.296 | +4.7%" in text
    assert "| ETTh1 | FMamba | 96 | 96 | official | harness | 2023 | 0.3800 | – | – |" in text
    assert "Sources: paper A." in text and "box" in text
    # the library compares, it does not judge: no target, no pass/fail, no project tallies
    for verdict in ("within target", "**no**", "| yes |", "Target", "Acceptance", "side by side"):
        assert verdict not in text
    assert (tmp_path / "figures" / "relative_difference.png").stat().st_size > 1000
    assert (tmp_path / "figures" / "forecast_ETTh1.png").stat().st_size > 1000


def test_report_without_published_values_compares_nothing(tmp_path):
    """No published-results file: the page says so, and claims no comparison, target or verdict anywhere."""
    results, _ = tiny_bench_results(tmp_path)
    text = write_report(results, tmp_path / "b.md", published=tmp_path / "missing.csv").read_text()
    assert "no cell is compared with a published value" in text
    for claim in ("Δ = ours / published", "Target", "within", "**no**", "| yes |", "Acceptance", "Sources:"):
        assert claim not in text, claim
    assert "| ETTh2 | SMamba | 96 | 96 | official | harness | 2023 | 0.3100 | – | – |" in text
    assert not (tmp_path / "figures" / "relative_difference.png").exists()
    entries = aggregate(read_results(results), {})
    assert all(math.isnan(e["pub_mse"]) and math.isnan(e["rel_mse"]) for e in entries)


def test_report_never_compares_with_a_value_published_at_another_input_size(tmp_path):
    results, published = tiny_bench_results(tmp_path)
    published.write_text("dataset,input_size,horizon,model,mse,mae,source\nETTh1,512,96,S-Mamba,0.30,,paper B\n")
    text = write_report(results, tmp_path / "b.md", published=published, figures=False).read_text()
    assert "| 0.3910 ± 0.0011 | 0.300 (published at L=512) | – |" in text


def test_via_neuralforecast_scores_the_same_windows(data_dir, tmp_path):
    pytest.importorskip("neuralforecast")
    nf_models = pytest.importorskip("mamba_forecast.neuralforecast")
    if not hasattr(nf_models, "SMamba"):
        pytest.skip("NeuralForecast SMamba adapter not landed")
    out = tmp_path / "r.csv"
    main(
        [
            "bench",
            "--dataset",
            "ETTh1",
            "--model",
            "SMamba",
            "--horizon",
            "12",
            "--input-size",
            "24",
            "--epochs",
            "1",
            "--max-train-batches",
            "2",
            "--set",
            "d_model=16,d_ff=16,e_layers=1,batch_size=16",
            "--via",
            "neuralforecast",
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    (row,) = read_results(out)
    assert row["via"] == "neuralforecast" and row["n_test_windows"] == str(240 + 24 - 24 - 12 + 1)
    assert math.isfinite(float(row["mse"]))


def test_via_neuralforecast_passes_only_the_arguments_the_model_takes(data_dir, tmp_path):
    """TSM2 has no d_ff (a field of every preset): `--via neuralforecast` gives the NF class only the
    architecture arguments its spec lists, as the harness does, instead of failing on d_ff."""
    pytest.importorskip("neuralforecast")
    out = tmp_path / "r.csv"
    main(
        [
            "bench",
            "--dataset",
            "ETTh1",
            "--model",
            "TSM2",
            "--horizon",
            "12",
            "--input-size",
            "24",
            "--epochs",
            "1",
            "--max-train-batches",
            "1",
            "--set",
            "d_model=8,e_layers=1,d_state=2,batch_size=16",
            "--via",
            "neuralforecast",
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
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


# ----------------------------------------------------------------------------------------------------
# every registered set, any CSV, and the published numbers shipped in the package


def test_bench_runs_etTm2_end_to_end_from_a_data_dir(tmp_path):
    """A standard ETTm2.csv (15-minute steps) in a folder: the registry's 12/4/4-month rule, SMamba's official
    ETTm2 row."""
    data = tmp_path / "data"
    data.mkdir()
    synthetic_ett(n_rows=1600).assign(date=pd.date_range("2016-07-01", periods=1600, freq="15min")).to_csv(
        data / "ETTm2.csv", index=False
    )
    out = tmp_path / "r.csv"
    main(
        [
            "bench",
            "--dataset",
            "ETTm2",
            "--model",
            "SMamba",
            "--horizon",
            "24",
            "--input-size",
            "48",
            "--epochs",
            "1",
            "--max-train-batches",
            "2",
            "--set",
            "d_model=16,d_ff=16,e_layers=1",
            "--data-dir",
            str(data),
            "--out",
            str(out),
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    (row,) = read_results(out)
    assert row["dataset"] == "ETTm2" and math.isfinite(float(row["mse"]))
    assert row["learning_rate"] == str(get_preset("SMamba", "ETTm2", 24).learning_rate)
    # ETT 12/4/4 scaled to a short copy: test = rows [0.8 T - L, T)
    assert row["n_test_windows"] == str(1600 - int(1600 * 0.8) - 24 + 1)


def test_every_registered_set_has_a_preset_for_every_model():
    from mamba_forecast.datasets import DATASETS

    for name, spec in DATASETS.items():
        for model in ("SMamba", "AttentionMamba", "FMamba", "TSM2"):
            assert get_preset(model, name, spec.horizons[0]).batch_size > 0
    assert get_preset("SMamba", "PEMS04", 12).use_norm is False  # the official PEMS04 script
    assert "Exchange row" in get_preset("SMamba", "ILI", 24).source


def _shop_csv(path, n_rows=300):
    rng = np.random.default_rng(1)
    t = np.arange(n_rows)
    pd.DataFrame(
        {
            "date": pd.date_range("2021-01-01", periods=n_rows, freq="D"),
            "sales": np.sin(t / 7) + 0.1 * rng.standard_normal(n_rows),
            "visits": np.cos(t / 7) + 0.1 * rng.standard_normal(n_rows),
        }
    ).to_csv(path, index=False)
    return path


def test_bench_and_tune_take_any_csv(tmp_path):
    pytest.importorskip("optuna")
    csv_path = _shop_csv(tmp_path / "shop.csv")
    out = tmp_path / "r.csv"
    main(
        [
            "bench",
            "--csv",
            str(csv_path),
            "--target",
            "sales",
            "--model",
            "Linear",
            "--horizon",
            "12",
            "--input-size",
            "24",
            "--epochs",
            "1",
            "--out",
            str(out),
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    (row,) = read_results(out)
    assert row["dataset"].startswith("shop.csv@")  # the file's name and a short hash of it
    assert row["n_test_windows"] == str(int(300 * 0.2) + 24 - 24 - 12 + 1)  # 7:1:2: the last int(0.2 T) rows
    (sample,) = read_rows(tmp_path / "samples.csv")
    assert sample["dataset"] == row["dataset"] and sample["variate"] == "sales"  # the target is the last variate
    presets = tmp_path / "tuned.json"
    main(
        [
            "tune",
            "--csv",
            str(csv_path),
            "--target",
            "sales",
            "--model",
            "Linear",
            "--horizon",
            "12",
            "--input-size",
            "24",
            "--trials",
            "1",
            "--epochs",
            "1",
            "--presets-file",
            str(presets),
            "--trials-log",
            str(tmp_path / "trials.csv"),
            "--study-file",
            str(tmp_path / "study.journal"),
            "--device",
            "cpu",
            "--precision",
            "bf16-mixed",
        ]
    )
    assert row["dataset"] in json.loads(presets.read_text())["Linear"]
    (trial,) = read_rows(tmp_path / "trials.csv")
    assert trial["precision"] == "bf16-mixed" and math.isfinite(float(trial["val_mse"]))


@pytest.mark.parametrize(
    "args, match",
    [
        (["--csv", "{tmp}/missing.csv"], "not found"),
        (["--csv", "{tmp}/shop.csv", "--target", "price"], "--target 'price' is not a column"),
        (["--dataset", "ETTh1", "--csv", "{tmp}/shop.csv"], "either --dataset NAME or --csv PATH"),
        (["--dataset", "ETTh1", "--target", "OT"], "--target goes with --csv"),
        (["--dataset", "NoSuchSet"], "unknown benchmark 'NoSuchSet'; known: ETTh1"),
    ],
)
def test_bench_refuses_bad_data_arguments_before_training(tmp_path, args, match):
    _shop_csv(tmp_path / "shop.csv")
    with pytest.raises(SystemExit, match=match):
        main(["bench", "--model", "Linear", "--out", str(tmp_path / "r.csv"), *[a.format(tmp=tmp_path) for a in args]])
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("n_rows", [60, 2])  # 2 rows: too few for pandas to infer a frequency, the same refusal
def test_bench_csv_too_short_for_the_horizon_is_refused(tmp_path, n_rows):
    csv_path = _shop_csv(tmp_path / "short.csv", n_rows=n_rows)
    with pytest.raises(ValueError, match="no window for input_size=24 \\+ horizon=12"):
        main(
            [
                "bench",
                "--csv",
                str(csv_path),
                "--model",
                "Linear",
                "--horizon",
                "12",
                "--input-size",
                "24",
                "--out",
                str(tmp_path / "r.csv"),
                "--no-progress",
                "--device",
                "cpu",
            ]
        )
    assert not (tmp_path / "r.csv").exists()


def test_the_console_script_reports_bad_input_in_one_line(tmp_path, capsys, monkeypatch):
    """`mamba-forecast` (cli.run) prints the refusal as one error line and exits 2; the env switch keeps the
    traceback."""
    from importlib.metadata import entry_points

    from mamba_forecast.cli import TRACEBACK_ENV, run

    (script,) = entry_points(group="console_scripts", name="mamba-forecast")
    assert script.value == "mamba_forecast.cli:run"
    argv = [
        "bench",
        "--csv",
        str(_shop_csv(tmp_path / "short.csv", n_rows=60)),
        "--model",
        "Linear",
        "--horizon",
        "12",
        "--input-size",
        "24",
        "--out",
        str(tmp_path / "r.csv"),
        "--no-progress",
        "--device",
        "cpu",
    ]
    monkeypatch.delenv(TRACEBACK_ENV, raising=False)
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mamba-forecast: error: ") and "no window for input_size=24 + horizon=12" in err
    assert "Traceback" not in err and TRACEBACK_ENV in err
    monkeypatch.setenv(TRACEBACK_ENV, "1")
    with pytest.raises(ValueError, match="no window for input_size=24"):
        run(argv)
    assert not (tmp_path / "r.csv").exists()
    assert run(["tune", "--model", "Linear"]) == 2  # the command's own checks read the same
    assert capsys.readouterr().err == "mamba-forecast: error: pass either --dataset NAME or --csv PATH (one of them)\n"


def test_report_from_a_clean_install_compares_with_the_shipped_published_numbers(tmp_path):
    """The package copied alone to a fresh folder (no ../shared anywhere near it or the working directory):
    `mamba-forecast report` still compares every cell with the published number."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import mamba_forecast

    site = tmp_path / "site"
    shutil.copytree(
        Path(mamba_forecast.__file__).parent, site / "mamba_forecast", ignore=shutil.ignore_patterns("__pycache__")
    )
    work = tmp_path / "work"
    work.mkdir()
    from mamba_forecast.bench.runner import append_row

    common = dict(
        seed=2023,
        epochs_run=7,
        best_epoch=4,
        max_epochs=10,
        sec_per_epoch=30,
        peak_mem_mb=500,
        params=1000,
        device="cpu",
        machine="box",
        via="harness",
        preset="official",
    )
    append_row(
        work / "results.csv",
        dict(dataset="ETTh1", model="SMamba", input_size=96, horizon=96, mse=0.3899, mae=0.4050, **common),
    )
    append_row(
        work / "results.csv",
        dict(dataset="Weather", model="TSM2", input_size=512, horizon=96, mse=0.16, mae=0.21, **common),
    )
    env = {k: v for k, v in os.environ.items() if k != "MAMBA_FORECAST_DATA"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mamba_forecast.cli",
            "report",
            "--results",
            "results.csv",
            "--out",
            "bench.md",
            "--no-figures",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = (work / "bench.md").read_text()
    etth1 = next(line for line in text.splitlines() if line.startswith("| ETTh1 | SMamba | 96 | 96 |"))
    assert "| 0.386 | +1.0%" in etth1  # S-Mamba paper, ETTh1 L=96 H=96: MSE 0.386
    assert "No published results file" not in text


def test_make_published_keeps_only_the_implemented_models(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from mamba_forecast.bench.report import PUBLISHED_FILE, read_published

    full = tmp_path / "full.csv"
    full.write_text(
        "dataset,input_size,horizon,model,mse,mae,source\n"
        "ETTh1,96,96,S-Mamba,0.386,0.405,paper A\nETTh1,96,96,iTransformer,0.386,0.405,paper A\n"
        "ETTh1,512,96,TSM2,0.375,,paper B\n"
    )
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "make_published.py"
    out = tmp_path / "published.csv"
    subprocess.run(
        [sys.executable, str(script), "--from", str(full), "--out", str(out)], check=True, capture_output=True
    )
    assert set(read_published(out)) == {("ETTh1", 96, 96, "S-Mamba"), ("ETTh1", 512, 96, "TSM2")}
    shipped = read_published(PUBLISHED_FILE)
    assert shipped[("ETTh1", 96, 96, "S-Mamba")]["mse"] == 0.386
    assert {k[3] for k in shipped} <= {"S-Mamba", "TSM2", "Attention Mamba", "FMamba"}


def test_tune_refuses_several_datasets_or_none():
    with pytest.raises(SystemExit, match="one dataset at a time"):
        main(["tune", "--model", "Linear", "--dataset", "ETTh1,ETTh2"])
    with pytest.raises(SystemExit, match="either --dataset NAME or --csv PATH"):
        main(["tune", "--model", "Linear"])


def test_defaults_benchmark_forecasts_every_protocol_test_window_without_retraining():
    """benchmarks/defaults_nf.py: a fitted NeuralForecast model scores the protocol's test windows (use_fitted)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "defaults_nf.py"
    spec = importlib.util.spec_from_file_location("defaults_nf", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    row = module.run_one(
        "SMamba",
        "ETTh1",
        data_dir=None,
        horizon=24,
        input_size=48,
        overrides=dict(max_steps=2, d_model=8, d_ff=8, e_layers=1, inference_windows_batch_size=512),
    )
    from mamba_forecast.bench.protocol import prepare

    assert row["n_windows"] == prepare("ETTh1", 48).n_windows("test", 24)
    assert row["train_rows"] == 12 * 30 * 24 + 4 * 30 * 24  # train + validation months of the ETT split
    assert 0 < row["mse"] < 10 and 0 < row["mae"] < 3
    from mamba_forecast.models import get_spec

    assert row["learning_rate"] == get_spec("SMamba").learning_rate  # the rate the class really trained with


def test_bench_set_takes_model_arguments_and_refuses_unknown_names(tmp_path, monkeypatch):
    """`--set` takes preset fields and the model's own arguments; a typo is a ValueError before any training."""
    from mamba_forecast.bench import runner

    csv_path = _shop_csv(tmp_path / "shop.csv")
    base = [
        "bench",
        "--csv",
        str(csv_path),
        "--model",
        "FMamba",
        "--horizon",
        "12",
        "--input-size",
        "24",
        "--epochs",
        "1",
        "--max-train-batches",
        "1",
        "--out",
        str(tmp_path / "r.csv"),
        "--no-progress",
        "--device",
        "cpu",
    ]
    trained = []
    monkeypatch.setattr(runner, "fit_and_test", lambda *a, **k: trained.append(1))
    for bad, match in (
        (["--set", "kernal=performer"], r"'kernal' is not a preset field .* nor an argument of FMamba"),
        (["--set", "epochs=3"], "use --epochs instead"),
    ):
        with pytest.raises(ValueError, match=match):
            main(base + bad)
    assert trained == [] and not (tmp_path / "r.csv").exists()
    monkeypatch.undo()
    built = []
    real = runner.build_model
    monkeypatch.setattr(runner, "build_model", lambda *a, **k: built.append(a[1]) or real(*a, **k))
    main(base + ["--set", "kernel=performer,d_model=16,d_ff=16"])
    (row,) = read_results(tmp_path / "r.csv")
    assert built[0].extra["kernel"] == "performer" and built[0].d_model == 16
    assert "overrides kernel=performer d_model=16 d_ff=16" in row["notes"]
    # the calendar tokens: on where the dataset's pipeline feeds them, off with calendar_tokens=false (the series
    # alone, as a NeuralForecast user's model sees them); a NeuralForecast baseline has none to switch
    main(base + ["--set", "calendar_tokens=false,d_model=16,d_ff=16"])
    plain, bare = read_results(tmp_path / "r.csv")
    assert (plain["calendar_tokens"], bare["calendar_tokens"]) == ("1", "0")
    assert [b.calendar_tokens for b in built] == [True, False]
    with pytest.raises(ValueError, match="calendar_tokens.*NeuralForecast's DLinear"):
        main([*base[:3], "--model", "DLinear", *base[5:], "--set", "calendar_tokens=true"])
