"""Train on one GPU with the fused kernels, or on the CPU with the same code.

    python examples/gpu_training.py                        # a GPU if there is one, else the CPU
    MAMBA_FORECAST_FAST=1 python examples/gpu_training.py  # seconds: tiny model, short data

What it shows:

* which selective-scan backend the models will use on this machine (`cuda` = mamba-ssm's fused kernel when
  the `cuda` extra (`pip install ".[cuda]"`) is installed and a GPU is present; `torch` otherwise);
* one GPU for NeuralForecast (`accelerator="gpu", devices=1`): NeuralForecast would otherwise take every
  visible GPU; mixed precision (`precision="bf16-mixed"`) with the scan accumulating in fp32;
* the same device choice for Darts (`pl_trainer_kwargs`).
"""

from __future__ import annotations

import logging
import os
import warnings

import pandas as pd
import torch
from neuralforecast import NeuralForecast

from mamba_forecast.datasets import load_demo_data, to_long
from mamba_forecast.neuralforecast import FMamba
from mamba_forecast.ssm import cuda_scan_available, resolve_backend

# Print only this script's own lines: the trainer switches (enable_progress_bar, enable_model_summary, logger)
# turn off the progress bar, the model summary and the log files; Lightning's "Seed set", "GPU available" and
# "max_steps reached" lines are INFO logs; three warnings (a Lightning deprecation under torch 2.13, pin_memory
# without a GPU, an empty validation list) say nothing about the forecasts.
for _logger in ("pytorch_lightning", "lightning_fabric"):
    logging.getLogger(_logger).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=r".*(LeafSpec|pin_memory|Total length of)")

FAST = os.environ.get("MAMBA_FORECAST_FAST") == "1"


def main() -> pd.DataFrame:
    on_gpu = torch.cuda.is_available()
    device = "cuda" if on_gpu else "cpu"
    print(
        f"GPU: {torch.cuda.get_device_name() if on_gpu else 'none'}; fused scan kernel: {cuda_scan_available()}; "
        f"backend the models will use: {resolve_backend('auto', device)}"
    )
    trainer = dict(
        accelerator="gpu" if on_gpu else "cpu",
        devices=1,
        precision="bf16-mixed" if on_gpu and torch.cuda.is_bf16_supported() else "32-true",
        enable_progress_bar=False,
        logger=False,
        enable_model_summary=False,
    )

    df = to_long(load_demo_data()).groupby("unique_id").tail(300 if FAST else 24 * 7 * 20)
    size = dict(d_model=16, d_ff=16, e_layers=1, max_steps=5) if FAST else dict(max_steps=500)
    model = FMamba(h=24, input_size=96, scaler_type="standard", **size, **trainer)
    nf = NeuralForecast(models=[model], freq="h")
    nf.fit(df)
    forecast = nf.predict()
    print(forecast.head())

    # The same choice in Darts: pl_trainer_kwargs={"accelerator": "gpu", "devices": [0]}
    return forecast


if __name__ == "__main__":
    main()
