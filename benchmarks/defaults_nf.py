"""What users get from the class defaults: each model with no arguments but ``h``, ``input_size`` and
``n_series``, trained through NeuralForecast, scored with the benchmark protocol's test windows.

    python benchmarks/defaults_nf.py --data-dir DIR                                  # ETTh1, Exchange, SML2010
    python benchmarks/defaults_nf.py --data-dir DIR --datasets ETTh1 --models SMamba --set learning_rate=1e-4

Per dataset: ``NeuralForecast(models=[Model(h=96, input_size=96, n_series=N)]).fit(df)`` on the raw values of
every row before the test split (train + validation; the defaults have no early stopping, so the validation rows
are training data, as a user would use them), then ``cross_validation(df=test, refit=False, use_fitted=True,
step_size=1)`` over the protocol's test segment (with its look-back rows), so every test window of the
protocol is forecast by the fitted model without retraining. SML2010's test split is its second recording,
which ``use_fitted`` handles like any other segment. Errors are scored on the protocol's scale (z-scored with the
training split's statistics): MSE / MAE over windows x h x series, comparable with ``results/bench_results.csv``.
``--set KEY=VALUE`` overrides class arguments (e.g. to try a candidate default). Rows are appended to ``--out``;
``--markdown`` prints the table of each model's card from it instead of training.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from mamba_forecast.bench.protocol import prepare
from mamba_forecast.bench_commands import _overrides

QUIET = dict(enable_progress_bar=False, logger=False, enable_model_summary=False, accelerator="cpu", devices=1)
COLUMNS = [
    "dataset",
    "model",
    "input_size",
    "horizon",
    "seed",
    "overrides",
    "learning_rate",
    "mse",
    "mae",
    "n_windows",
    "train_rows",
    "fit_sec",
    "timestamp",
]


def long_frame(values: np.ndarray, dates, columns) -> pd.DataFrame:
    return pd.concat(
        [pd.DataFrame({"unique_id": str(c), "ds": dates, "y": values[:, j]}) for j, c in enumerate(columns)],
        ignore_index=True,
    )


def run_one(model_name: str, dataset: str, *, data_dir, horizon=96, input_size=96, seed=1, overrides=None) -> dict:
    from neuralforecast import NeuralForecast

    import mamba_forecast.neuralforecast as mfnf

    data = prepare(dataset, input_size, data_dir)
    raw = data.values.astype(np.float64) * data.std + data.mean
    (_, val_end), (test_start, test_end) = data.borders["val"], data.borders["test"]
    # contiguous: train on everything before the first test target; a split that keeps recordings apart: train on
    # the rows before the test recording
    train_end = val_end if test_start == val_end - input_size else test_start
    freq = pd.infer_freq(data.dates[:50]) or "h"
    train_df = long_frame(raw[:train_end], data.dates[:train_end], data.columns)
    test_df = long_frame(raw[test_start:test_end], data.dates[test_start:test_end], data.columns)
    n_test = test_end - test_start - input_size
    cls = getattr(mfnf, model_name)
    kwargs = dict(h=horizon, input_size=input_size, n_series=data.n_series, random_seed=seed, **QUIET)
    kwargs.update(overrides or {})
    model = cls(**kwargs)
    nf = NeuralForecast(models=[model], freq=freq)
    t0 = time.time()
    nf.fit(train_df)
    fit_sec = time.time() - t0
    cv = nf.cross_validation(df=test_df, n_windows=None, test_size=n_test, step_size=1, refit=False, use_fitted=True)
    pred = [c for c in cv.columns if c not in ("unique_id", "ds", "cutoff", "y")][0]
    scale = dict(zip(map(str, data.columns), data.std, strict=True))
    s = cv["unique_id"].astype(str).map(scale).to_numpy(np.float64)
    diff = (cv[pred].to_numpy(np.float64) - cv["y"].to_numpy(np.float64)) / s
    n_windows = cv["cutoff"].nunique()
    expected = data.n_windows("test", horizon)
    if n_windows != expected:
        raise RuntimeError(f"{dataset}: NeuralForecast forecast {n_windows} test windows, the protocol has {expected}")
    return dict(
        dataset=data.name,
        model=model_name,
        input_size=input_size,
        horizon=horizon,
        seed=seed,
        overrides=json.dumps(overrides or {}, sort_keys=True),
        learning_rate=model.hparams["learning_rate"],
        mse=round(float(np.mean(diff**2)), 6),
        mae=round(float(np.mean(np.abs(diff))), 6),
        n_windows=n_windows,
        train_rows=train_end,
        fit_sec=round(fit_sec, 1),
        timestamp=pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
    )


def markdown(path: Path, models) -> str:
    """The defaults table of each model's card from the rows of ``path``: the class defaults, each other learning
    rate tried, and each other argument tried (its own column)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))

    def others(row) -> str:
        extra = {k: v for k, v in json.loads(row["overrides"]).items() if k != "learning_rate"}
        return ", ".join(f"{k}={v!r}" for k, v in sorted(extra.items())) or "–"

    out = []
    for model in models:
        out += [
            f"### {model}",
            "",
            "| dataset (H = 96) | learning_rate | other arguments | MSE | MAE | test windows |",
            "|---|---|---|---|---|---|",
        ]
        mine = sorted(
            (r for r in rows if r["model"] == model),
            key=lambda r: (r["dataset"], others(r) != "–", others(r), -float(r["learning_rate"])),
        )
        out += [
            f"| {r['dataset']} | {float(r['learning_rate']):g} | {others(r)} | {float(r['mse']):.4f} | "
            f"{float(r['mae']):.4f} | {r['n_windows']} |"
            for r in mine
        ]
        out.append("")
    return "\n".join(out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=os.environ.get("MAMBA_FORECAST_DATA"))
    p.add_argument("--datasets", default="ETTh1,Exchange,SML2010")
    p.add_argument("--models", default="SMamba,AttentionMamba,FMamba,TSM2")
    p.add_argument("--horizon", type=int, default=96)
    p.add_argument("--input-size", type=int, default=96)
    p.add_argument("--seed", type=int, default=1, help="random_seed (the classes' default is 1)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="class arguments to override")
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results" / "defaults_nf.csv"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--markdown", action="store_true", help="print the model cards' tables from --out and stop")
    args = p.parse_args(argv)
    if args.markdown:
        print(markdown(Path(args.out), args.models.split(",")))
        return
    import torch

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    overrides = _overrides(args.set)
    out = Path(args.out)
    for dataset in args.datasets.split(","):
        for model in args.models.split(","):
            row = run_one(
                model,
                dataset,
                data_dir=args.data_dir,
                horizon=args.horizon,
                input_size=args.input_size,
                seed=args.seed,
                overrides=overrides,
            )
            print(
                f"{row['dataset']:>8} {model:>14} {row['overrides']} MSE {row['mse']:.4f} MAE {row['mae']:.4f} "
                f"({row['n_windows']} windows, fit {row['fit_sec']:.0f} s)",
                flush=True,
            )
            new = not out.exists()
            with open(out, "a", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=COLUMNS)
                if new:
                    writer.writeheader()
                writer.writerow(row)


if __name__ == "__main__":
    main()
