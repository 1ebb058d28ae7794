"""How often do the prediction intervals hold? Coverage of 80% and 90% intervals on held-out windows.

    python benchmarks/interval_coverage.py                      # ETTh1 and Exchange, SMamba, 300 steps, 20 windows
    python benchmarks/interval_coverage.py --datasets etth1 --model FMamba --max-steps 200

For each dataset (the last 2,500 steps of each series, raw scale) one Mamba model with its default arguments
(``scaler_type="standard"``) and a short schedule is trained once on the part before the held-out tail, then
forecasts ``--windows`` consecutive held-out windows of h=24 steps (step 24) from the data up to each cutoff
without retraining (``cross_validation(refit=False)``), for four ways to get intervals:

* ``MQLoss(level=[80, 90])`` (quantile outputs, sorted at prediction so they never cross),
* ``DistributionLoss("Normal", level=[80, 90])`` and ``DistributionLoss("StudentT", level=[80, 90])``,
* conformal: the default point loss (MAE) fitted with
  ``prediction_intervals=PredictionIntervals(n_windows=20, step_size=24)`` (NeuralForecast's conformal
  intervals, calibrated on the absolute errors of the 20 non-overlapping windows of h steps before the held-out
  tail; ``--calibration-step 1`` is NeuralForecast's default, 20 windows one step apart), then
  ``predict(df=<data up to the cutoff>, level=[80, 90])`` for each window.

Coverage = share of held-out values inside the interval (nominal 80% / 90%); also the mean interval width
relative to the series' standard deviation, and the number of rows whose quantiles cross. Data: ETTh1
(bundled with mamba-forecast; ETDataset, Zhou et al., AAAI 2021; CC BY-ND 4.0) and Exchange
(``exchange_rate.csv`` from ``$MAMBA_FORECAST_DATA`` or ``../shared/datasets``; Lai et al., 2018).
One torch thread.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

H, LENGTH, LEVELS, CALIBRATION = 24, 2500, (80, 90), 20


def load(name: str) -> tuple[pd.DataFrame, str]:
    from mamba_forecast.datasets import load_demo_data, to_long

    if name == "etth1":
        return to_long(load_demo_data()).groupby("unique_id").tail(LENGTH).reset_index(drop=True), "h"
    root = Path(os.environ.get("MAMBA_FORECAST_DATA", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    frame = pd.read_csv(root / "exchange_rate.csv")
    frame["date"] = pd.to_datetime(frame["date"], format="%Y/%m/%d %H:%M")
    return to_long(frame).groupby("unique_id").tail(LENGTH).reset_index(drop=True), "D"


def coverage(cv: pd.DataFrame, name: str, df: pd.DataFrame) -> dict:
    std = cv["unique_id"].map(df.groupby("unique_id")["y"].std())
    row = {}
    for level in LEVELS:
        lo, hi = cv[f"{name}-lo-{level}"], cv[f"{name}-hi-{level}"]
        row[f"cov{level}"] = float(((cv["y"] >= lo) & (cv["y"] <= hi)).mean())
        row[f"width{level}"] = float(((hi - lo) / std).mean())
    cols = [f"{name}-lo-90", f"{name}-lo-80", f"{name}-hi-80", f"{name}-hi-90"]
    if f"{name}-median" in cv:
        cols.insert(2, f"{name}-median")
    row["crossing_rows"] = int((np.diff(cv[cols].to_numpy(dtype=float), axis=1) < 0).any(axis=1).sum())
    row["rows"] = len(cv)
    return row


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="etth1,exchange")
    parser.add_argument("--model", default="SMamba")
    parser.add_argument("--methods", default="MQLoss,Normal,StudentT,conformal")
    parser.add_argument("--windows", type=int, default=20)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument(
        "--calibration-step",
        type=int,
        default=H,
        help="step between the conformal calibration windows (NeuralForecast's default is 1)",
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import DistributionLoss, MQLoss
    from neuralforecast.utils import PredictionIntervals

    import mamba_forecast.neuralforecast as mnf

    for name in ("pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    quiet = dict(accelerator="cpu", devices=1, enable_progress_bar=False, logger=False, enable_model_summary=False)
    cls = getattr(mnf, args.model)
    rows = []
    for dataset in args.datasets.split(","):
        df, freq = load(dataset)
        for method in args.methods.split(","):
            t0 = time.perf_counter()
            levels = list(LEVELS)
            if method == "conformal":
                model = cls(h=H, max_steps=args.max_steps, **quiet)
                nf = NeuralForecast(models=[model], freq=freq)
                stamps = np.sort(df["ds"].unique())
                cutoffs = stamps[len(stamps) - H * args.windows - 1 :: H][: args.windows]
                intervals = PredictionIntervals(n_windows=CALIBRATION, step_size=args.calibration_step)
                nf.fit(df[df["ds"] <= cutoffs[0]], prediction_intervals=intervals)
                parts = []
                for cutoff in cutoffs:
                    part = nf.predict(df=df[df["ds"] <= cutoff], level=levels).assign(cutoff=cutoff)
                    parts.append(part.merge(df, on=["unique_id", "ds"]))
                cv = pd.concat(parts, ignore_index=True)
            else:
                loss = MQLoss(level=levels) if method == "MQLoss" else DistributionLoss(method, level=levels)
                model = cls(h=H, max_steps=args.max_steps, loss=loss, **quiet)
                cv = NeuralForecast(models=[model], freq=freq).cross_validation(df, n_windows=args.windows, step_size=H)
            row = dict(
                dataset=dataset,
                model=args.model,
                method=method,
                **coverage(cv, args.model, df),
                seconds=round(time.perf_counter() - t0, 1),
            )
            rows.append(row)
            print(
                f"{dataset:<9} {method:<10} 80%: {row['cov80']:6.1%} (width {row['width80']:.2f} sd)   "
                f"90%: {row['cov90']:6.1%} (width {row['width90']:.2f} sd)   crossing rows {row['crossing_rows']}"
                f"/{row['rows']}   ({row['seconds']:.0f}s)",
                flush=True,
            )
    table = pd.DataFrame(rows)
    if args.out:
        table.to_csv(args.out, index=False)
    return table


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
