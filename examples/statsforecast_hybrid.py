"""StatsForecast and the Mamba models in one cross-validation on the same data frame, scored together.

    python examples/statsforecast_hybrid.py                        # ~1 minute on an idle 2-core CPU
    MAMBA_FORECAST_FAST=1 python examples/statsforecast_hybrid.py  # seconds: tiny models, short data

Both libraries take the same long frame (unique_id, ds, y) and, with the same h, n_windows and step_size,
produce the same (unique_id, ds, cutoff) rows, so their cross-validation results merge on those keys.
``utilsforecast.evaluation.evaluate`` then scores every model per series; a simple hybrid (the mean of
AutoETS and FMamba) is scored next to them. Data: the ETTh1 copy bundled with mamba-forecast (ETDataset,
Zhou et al., AAAI 2021; CC BY-ND 4.0).
"""

from __future__ import annotations

import logging
import os
import warnings

import pandas as pd
from neuralforecast import NeuralForecast
from statsforecast import StatsForecast
from statsforecast.models import AutoETS, SeasonalNaive
from utilsforecast.evaluation import evaluate
from utilsforecast.losses import mae, rmse

from mamba_forecast.datasets import load_demo_data, to_long
from mamba_forecast.neuralforecast import FMamba, SMamba

# Print only this script's own lines: the trainer switches (enable_progress_bar, enable_model_summary, logger)
# turn off the progress bar, the model summary and the log files; Lightning's "Seed set", "GPU available" and
# "max_steps reached" lines are INFO logs; three warnings (a Lightning deprecation under torch 2.13, pin_memory
# without a GPU, an empty validation list) say nothing about the forecasts.
for _logger in ("pytorch_lightning", "lightning_fabric"):
    logging.getLogger(_logger).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=r".*(LeafSpec|pin_memory|Total length of)")

FAST = os.environ.get("MAMBA_FORECAST_FAST") == "1"
H, SEASON = 24, 24
if FAST:
    HISTORY, WINDOWS, STEPS, ARCH = 24 * 12, 2, 5, dict(d_model=16, d_ff=16, e_layers=1)
else:
    HISTORY, WINDOWS, STEPS, ARCH = 24 * 7 * 12, 4, 300, dict(d_model=64, d_ff=64, e_layers=2)
TRAINER = dict(
    val_check_steps=min(100, STEPS),
    accelerator="cpu",
    devices=1,
    enable_progress_bar=False,
    logger=False,
    enable_model_summary=False,
)


def main() -> pd.DataFrame:
    df = to_long(load_demo_data()).groupby("unique_id").tail(HISTORY)
    print(f"ETTh1: {df['unique_id'].nunique()} series x {HISTORY} hours; {WINDOWS} windows of {H} hours")

    sf = StatsForecast(models=[SeasonalNaive(season_length=SEASON), AutoETS(season_length=SEASON)], freq="h", n_jobs=1)
    cv_stats = sf.cross_validation(df=df, h=H, n_windows=WINDOWS, step_size=H)

    nf = NeuralForecast(
        models=[
            SMamba(h=H, input_size=4 * H, max_steps=STEPS, scaler_type="standard", **ARCH, **TRAINER),
            FMamba(h=H, input_size=4 * H, max_steps=STEPS, scaler_type="standard", **ARCH, **TRAINER),
        ],
        freq="h",
    )
    cv_neural = nf.cross_validation(df=df, n_windows=WINDOWS, step_size=H)

    keys = ["unique_id", "ds", "cutoff"]
    cv = cv_stats.merge(cv_neural.drop(columns="y"), on=keys, validate="one_to_one")
    assert len(cv) == len(cv_stats) == len(cv_neural), "the two cross-validations cover different windows"
    cv["AutoETS+FMamba"] = (cv["AutoETS"] + cv["FMamba"]) / 2

    scores = evaluate(cv.drop(columns="cutoff"), metrics=[mae, rmse])  # one row per (series, metric)
    summary = scores.drop(columns="unique_id").groupby("metric").mean().T.sort_values("mae")
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    return scores


if __name__ == "__main__":
    main()
