"""Hyperparameter search for FMamba with Optuna (``AutoFMamba``), then forecasts from the best model.

    python examples/auto_search.py                        # 8 trials: tens of minutes on a 2-core CPU
    MAMBA_FORECAST_FAST=1 python examples/auto_search.py  # seconds: 2 tiny trials, short data

``AutoFMamba(h, backend="optuna")`` searches its default space (token width, depth, Mamba state size,
fast-attention kernel, look-back, learning rate, scaler, ...) on a validation split of ``h`` steps, then refits
the best configuration. No ``n_series`` is needed. Here the default space is narrowed and the training
shortened, the usual way: call ``get_default_config`` and override entries of the sampled dict. With
``backend="ray"`` the config is a dict of Ray Tune domains instead. Data: the ETTh1 copy bundled with
mamba-forecast (ETDataset, Zhou et al., AAAI 2021; CC BY-ND 4.0).
"""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np
import optuna
import pandas as pd
from neuralforecast import NeuralForecast

from mamba_forecast.datasets import load_demo_data, to_long
from mamba_forecast.neuralforecast import AutoFMamba

# Print only this script's own lines: the trainer switches (enable_progress_bar, enable_model_summary, logger)
# turn off the progress bar, the model summary and the log files; Lightning's "Seed set", "GPU available" and
# "max_steps reached" lines are INFO logs; three warnings (a Lightning deprecation under torch 2.13, pin_memory
# without a GPU, an empty validation list) say nothing about the forecasts.
for _logger in ("pytorch_lightning", "lightning_fabric"):
    logging.getLogger(_logger).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=r".*(LeafSpec|pin_memory|Total length of)")

FAST = os.environ.get("MAMBA_FORECAST_FAST") == "1"
H = 24
if FAST:
    HISTORY, TRIALS, OVERRIDES = 24 * 10, 2, dict(max_steps=3, d_model=16, d_ff=16, e_layers=1, input_size=2 * H)
else:
    HISTORY, TRIALS, OVERRIDES = 24 * 7 * 12, 8, dict(max_steps=200)
TRAINER = dict(accelerator="cpu", devices=1, enable_progress_bar=False, logger=False, enable_model_summary=False)


def main() -> pd.DataFrame:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    df = to_long(load_demo_data()).groupby("unique_id").tail(HISTORY + H)
    train, test = df.groupby("unique_id").head(HISTORY), df.groupby("unique_id").tail(H)

    default_space = AutoFMamba.get_default_config(h=H, backend="optuna")

    def space(trial):
        config = default_space(trial)  # d_model, e_layers, kernel, input_size, learning_rate, ...
        return {**config, **OVERRIDES, "val_check_steps": OVERRIDES["max_steps"], "scaler_type": "standard", **TRAINER}

    model = AutoFMamba(
        h=H, backend="optuna", num_samples=TRIALS, config=space, search_alg=optuna.samplers.TPESampler(seed=0)
    )
    nf = NeuralForecast(models=[model], freq="h")
    nf.fit(train)

    study = nf.models[0].results
    best = study.best_trial.user_attrs["ALL_PARAMS"]  # the configuration the trial trained, overrides included
    shown = ("d_model", "e_layers", "d_state", "kernel", "input_size", "learning_rate")
    print(
        f"{len(study.trials)} trials; best validation loss {study.best_value:.4f} with "
        + ", ".join(f"{k}={best[k]:.2g}" if isinstance(best[k], float) else f"{k}={best[k]}" for k in shown)
    )
    forecast = nf.predict().merge(test, on=["unique_id", "ds"])
    print(f"best model, held-out day: MAE {np.mean(np.abs(forecast['AutoFMamba'] - forecast['y'])):.3f}")
    return forecast


if __name__ == "__main__":
    main()
