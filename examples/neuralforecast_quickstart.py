"""Forecast ETTh1's 7 series with the Mamba models in NeuralForecast: fit, predict, cross-validate, save, load.

    python examples/neuralforecast_quickstart.py                        # ~1 minute on an idle 2-core CPU
    MAMBA_FORECAST_FAST=1 python examples/neuralforecast_quickstart.py  # seconds: tiny models, short data

Uses the ETTh1 data bundled with mamba-forecast (ETDataset, Zhou et al., AAAI 2021; CC BY-ND 4.0).

* ``SMamba`` with the default MAE loss, and ``FMamba`` with quantiles (``MQLoss``) and the hour of the day as a
  future exogenous input (known ahead, so ``predict`` takes it in ``futr_df``).
* ``n_series`` is not passed: the models read it from the data.
* ``accelerator``/``devices`` choose the device; NeuralForecast would otherwise take every visible GPU.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings

import numpy as np
import pandas as pd
from neuralforecast import NeuralForecast
from neuralforecast.losses.pytorch import MQLoss

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
H = 24  # forecast the next day, hour by hour
if FAST:
    HISTORY, STEPS, ARCH = 24 * 10, 5, dict(d_model=16, d_ff=16, e_layers=1)
else:
    HISTORY, STEPS, ARCH = 24 * 7 * 12, 300, dict(d_model=64, d_ff=64, e_layers=2)
TRAINER = dict(
    val_check_steps=min(100, STEPS),
    accelerator="cpu",
    devices=1,
    enable_progress_bar=False,
    logger=False,
    enable_model_summary=False,
)


def with_hour(df: pd.DataFrame) -> pd.DataFrame:
    """Add the hour of the day, encoded on the unit circle, as two columns known in advance."""
    angle = 2 * np.pi * df["ds"].dt.hour / 24
    return df.assign(hour_sin=np.sin(angle), hour_cos=np.cos(angle))


def make_models() -> list:
    return [
        SMamba(h=H, input_size=4 * H, max_steps=STEPS, scaler_type="standard", **ARCH, **TRAINER),
        FMamba(
            h=H,
            input_size=4 * H,
            futr_exog_list=["hour_sin", "hour_cos"],
            loss=MQLoss(level=[80]),
            max_steps=STEPS,
            scaler_type="standard",
            **ARCH,
            **TRAINER,
        ),
    ]


def main() -> pd.DataFrame:
    df = with_hour(to_long(load_demo_data()).groupby("unique_id").tail(HISTORY + H))
    train, test = df.groupby("unique_id").head(HISTORY), df.groupby("unique_id").tail(H)
    print(f"ETTh1: {df['unique_id'].nunique()} series; training on {HISTORY} hours, forecasting the next {H}")

    nf = NeuralForecast(models=make_models(), freq="h")
    nf.fit(train)
    forecast = nf.predict(futr_df=test.drop(columns="y"))
    scored = forecast.merge(test[["unique_id", "ds", "y"]], on=["unique_id", "ds"])
    for column in ("SMamba", "FMamba-median"):
        print(f"{column:>14}: MAE {np.mean(np.abs(scored[column] - scored['y'])):.3f} on the held-out day")
    inside = ((scored["FMamba-lo-80"] <= scored["y"]) & (scored["y"] <= scored["FMamba-hi-80"])).mean()
    print(f"{'':>14}  {inside:.0%} of the true values inside FMamba's 80% interval")

    # save and load: identical forecasts
    with tempfile.TemporaryDirectory() as folder:
        nf.save(folder, overwrite=True)
        reloaded = NeuralForecast.load(folder).predict(futr_df=test.drop(columns="y"))
    assert np.allclose(reloaded["SMamba"], forecast["SMamba"], rtol=1e-5)
    print("saved and reloaded: same forecasts")

    # cross-validation on the last 2 days of the training data, with new models
    cv = NeuralForecast(models=make_models(), freq="h").cross_validation(train, n_windows=2, step_size=H)
    print(
        f"cross-validation: {cv['cutoff'].nunique()} windows, "
        f"MAE SMamba {np.mean(np.abs(cv['SMamba'] - cv['y'])):.3f}, "
        f"FMamba {np.mean(np.abs(cv['FMamba-median'] - cv['y'])):.3f}"
    )
    return scored


if __name__ == "__main__":
    main()
