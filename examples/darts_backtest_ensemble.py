"""Backtest Mamba forecasters in Darts, then ensemble one with classical models.

    python examples/darts_backtest_ensemble.py                        # minutes on a CPU
    MAMBA_FORECAST_FAST=1 python examples/darts_backtest_ensemble.py  # seconds: tiny models, short data

The data are ETTh1 (``mamba_forecast.datasets.load_benchmark("ETTh1")``: the copy bundled with the package, or
``ETTh1.csv`` in ``$MAMBA_FORECAST_DATA`` / the user cache when one is there).

1. ``SMambaModel`` and ``FMambaModel`` (with hour and weekday encodings as future covariates) are trained once,
   then ``historical_forecasts(retrain=False)`` forecasts every day of the test period and ``backtest`` scores
   them, next to a seasonal-naive baseline.
2. ``FMambaModel`` is combined with exponential smoothing and AutoETS (one local model per component through
   ``MultivariateModel``) in a ``NaiveEnsembleModel`` (the mean) and a ``RegressionEnsembleModel`` (a linear
   regression on the members' forecasts), scored on the last day.
"""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np
from darts import TimeSeries
from darts.dataprocessing.transformers import Scaler
from darts.metrics import mae
from darts.models import (
    AutoETS,
    ExponentialSmoothing,
    MultivariateModel,
    NaiveEnsembleModel,
    NaiveSeasonal,
    RegressionEnsembleModel,
)

from mamba_forecast.darts import FMambaModel, SMambaModel

# Print only this script's own lines: the trainer switches (enable_progress_bar, enable_model_summary, logger)
# turn off the progress bar, the model summary and the log files; Lightning's "Seed set", "GPU available" and
# "max_steps reached" lines are INFO logs; three warnings (a Lightning deprecation under torch 2.13, pin_memory
# without a GPU, an empty validation list) say nothing about the forecasts.
for _logger in ("pytorch_lightning", "lightning_fabric"):
    logging.getLogger(_logger).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=r".*(LeafSpec|pin_memory|Total length of)")

FAST = os.environ.get("MAMBA_FORECAST_FAST") == "1"
DAY = 24
HORIZON = DAY

if FAST:
    N_ROWS, TEST_DAYS, ENSEMBLE_ROWS = 24 * 14, 2, 24 * 10
    ARCH = dict(d_model=16, d_ff=16, e_layers=1, d_state=2)
    TRAIN = dict(n_epochs=1, batch_size=64)
else:
    N_ROWS, TEST_DAYS, ENSEMBLE_ROWS = 24 * 7 * 40, 28, 24 * 7 * 8
    ARCH = dict(d_model=64, d_ff=64, e_layers=2, d_state=2)
    TRAIN = dict(n_epochs=5, batch_size=32)

COMMON = dict(
    input_chunk_length=4 * DAY,
    output_chunk_length=HORIZON,
    add_encoders={"cyclic": {"future": ["hour", "dayofweek"]}},
    optimizer_kwargs={"lr": 1e-3},
    random_state=0,
    pl_trainer_kwargs={
        "accelerator": "cpu",
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
    },
    **TRAIN,
)


def load_series() -> tuple[TimeSeries, str]:
    """ETTh1: 7 hourly series, bundled with the package."""
    from mamba_forecast.datasets import load_benchmark

    df = load_benchmark("ETTh1").iloc[:N_ROWS]
    series = TimeSeries.from_dataframe(df, time_col="date", freq="h")
    return series.astype(np.float32), "ETTh1"


def main() -> None:
    series, name = load_series()
    test_start = len(series) - TEST_DAYS * DAY
    scaler = Scaler().fit(series[:test_start])  # statistics of the training part only
    scaled = scaler.transform(series)
    train = scaled[:test_start]
    print(
        f"data: {name}, {len(series)} hourly steps x {series.n_components} series, "
        f"test: the last {TEST_DAYS} days (scaled values)"
    )

    # 1. train once, forecast every test day without retraining, score
    scores = {}
    for cls in (SMambaModel, FMambaModel):
        model = cls(**COMMON, **ARCH).fit(train)
        forecasts = model.historical_forecasts(
            scaled,
            start=test_start,
            start_format="position",
            forecast_horizon=HORIZON,
            stride=HORIZON,
            retrain=False,
            last_points_only=False,
        )
        scores[cls.__name__] = model.backtest(
            scaled, historical_forecasts=forecasts, metric=mae, last_points_only=False
        )
    naive = NaiveSeasonal(K=DAY)
    scores["NaiveSeasonal(24)"] = naive.backtest(
        scaled,
        start=test_start,
        start_format="position",
        forecast_horizon=HORIZON,
        stride=HORIZON,
        metric=mae,
        last_points_only=False,
    )
    for model_name, score in scores.items():
        print(f"backtest MAE  {model_name:<20s} {score:.3f}")

    # 2. ensembles with classical models on the most recent weeks; score the last day
    recent = scaled[-ENSEMBLE_ROWS:]
    fit_part, holdout = recent[:-HORIZON], recent[-HORIZON:]

    def members():
        return [
            FMambaModel(**COMMON, **ARCH),
            MultivariateModel(ExponentialSmoothing(seasonal_periods=DAY)),
            MultivariateModel(AutoETS(season_length=DAY)),
        ]

    candidates = {
        "FMambaModel": members()[0],
        "ExponentialSmoothing": members()[1],
        "AutoETS": members()[2],
        # show_warnings=False: the classical members take no covariates, and Darts would say so at every fit
        "NaiveEnsembleModel": NaiveEnsembleModel(members(), show_warnings=False),
        "RegressionEnsembleModel": RegressionEnsembleModel(
            members(), regression_train_n_points=2 * DAY, show_warnings=False
        ),
    }
    for model_name, model in candidates.items():
        forecast = model.fit(fit_part).predict(HORIZON)
        print(f"last-day MAE  {model_name:<24s} {mae(holdout, forecast):.3f}")


if __name__ == "__main__":
    main()
