"""One epoch on ETTh1's whole training split with bf16-mixed against fp32: finite? how fast? how close?

    python benchmarks/precision.py --threads 1                 # CPU, the four models through Darts
    python benchmarks/precision.py --device cuda --precisions 32-true,bf16-mixed,16-mixed

Each model is trained through Darts for exactly one epoch (``n_epochs=1``) on the protocol's training split of
ETTh1 (the first 12 months, 8640 hourly rows, z-scored with their own statistics), input 96, horizon 96, batch
32, d_model 64 (d_ff 64), 2 layers, seed 0, once per precision. Reported: the wall time of ``fit``, the last
training loss Lightning logged, whether every weight and the forecast of the next 96 steps are finite, and
the largest absolute difference between that forecast and the fp32 one. The test suite checks the same on a
short slice of ETTh1 (``tests/test_precision.py``); this script is the full-size run.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
import warnings

from _common import machine

MODELS = ("SMambaModel", "AttentionMambaModel", "FMambaModel", "TSM2Model")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--precisions", default="32-true,bf16-mixed")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    from darts import TimeSeries

    from mamba_forecast import darts as mdarts
    from mamba_forecast.datasets import load_benchmark

    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)

    frame = load_benchmark("ETTh1").iloc[: 12 * 30 * 24].reset_index(drop=True)
    columns = list(frame.columns[1:])
    frame[columns] = (frame[columns] - frame[columns].mean()) / frame[columns].std(ddof=0)
    series = TimeSeries.from_dataframe(frame, time_col="date", value_cols=columns).astype(np.float32)
    accelerator = "gpu" if args.device == "cuda" else "cpu"

    print(f"machine: {machine(args.device)}; load average before: {os.getloadavg()[0]:.2f}")
    print(
        f"one epoch on ETTh1's training split ({len(series)} rows, {len(columns)} series), input 96, h 96, "
        "batch 32, d_model 64, 2 layers"
    )
    print("| model | precision | fit s | last train loss | weights finite | forecast finite | max abs diff vs fp32 |")
    print("|---|---|---|---|---|---|---|")
    for model_name in args.models.split(","):
        reference = None
        for precision in args.precisions.split(","):
            kwargs = dict(
                d_model=64,
                e_layers=2,
                n_epochs=1,
                batch_size=32,
                random_state=0,
                pl_trainer_kwargs=dict(
                    accelerator=accelerator,
                    devices=1,
                    precision=precision,
                    enable_progress_bar=False,
                    logger=False,
                    enable_model_summary=False,
                ),
            )
            if model_name != "TSM2Model":
                kwargs["d_ff"] = 64
            model = getattr(mdarts, model_name)(96, 96, **kwargs)
            start = time.perf_counter()
            model.fit(series)
            fit_s = time.perf_counter() - start
            loss = float(model.trainer.callback_metrics.get("train_loss", float("nan")))
            weights_ok = all(torch.isfinite(p).all().item() for p in model.model.parameters())
            forecast = model.predict(96, series=series).values()
            forecast_ok = bool(np.isfinite(forecast).all())
            if reference is None:
                reference, diff = forecast, "-"
            else:
                diff = f"{float(np.abs(forecast - reference).max()):.3f}"
            print(
                f"| {model_name} | {precision} | {fit_s:.1f} | {loss:.4f} | {weights_ok} | {forecast_ok} | {diff} |",
                flush=True,
            )
            if not (weights_ok and forecast_ok and math.isfinite(loss)):
                print(f"  !! {model_name} under {precision} produced non-finite values")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
