"""Do the models' defaults beat AutoETS on panels whose series have very different scales?

    python benchmarks/defaults_vs_ets.py                           # both panels, all four models, both scalers
    python benchmarks/defaults_vs_ets.py --panels synthetic --scalers standard --max-steps 100
    python benchmarks/defaults_vs_ets.py --host darts --scalers none,Scaler     # the Darts models

Two panels of 7 series each:

* ``synthetic``: hourly series with a daily cycle, a slow wave and noise, each a different shape, multiplied
  by 1, 10, ..., 1e6 (and offset by 3 times that scale), 1,200 steps;
* ``etth1``: the last 1,200 hours of the ETTh1 copy bundled with mamba-forecast (ETDataset, Zhou et al., AAAI
  2021; CC BY-ND 4.0), raw scale.

Each panel is scored by a 3-window cross-validation (h=24, step 24, ``refit=False``): the same windows for
StatsForecast's ``AutoETS(season_length=24)`` and for each NeuralForecast model trained with its class defaults
(architecture, learning rate, batch sizes, ...) except ``max_steps`` (short, to keep the run small), with
``scaler_type`` set to each value of ``--scalers`` ("default" means not passing it). The metric is the z-scored
MSE: each series' errors divided by the standard deviation of its part before the first cutoff, squared,
averaged over series, steps and windows. One torch thread; on a shared CPU the times are noisy.

With ``--host darts`` the Darts models (defaults, ``input_chunk_length=96``, 6 epochs of 32 batches) are
trained on the part before the first cutoff and forecast the same windows with ``historical_forecasts``
(no retraining), without (``none``) and with (``Scaler``) a ``darts.dataprocessing.transformers.Scaler``
fitted on the training part.

NeuralForecast's point losses are computed on the scale the model's inputs were scaled to (``scaler_type``);
with ``"identity"`` that is the raw scale, so the largest series dominates the training loss.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import warnings

import numpy as np
import pandas as pd

H, N_WINDOWS, LENGTH = 24, 3, 1200
MODELS = ("SMamba", "AttentionMamba", "FMamba", "TSM2")


def synthetic_panel(n_series: int = 7, length: int = LENGTH, seed: int = 0) -> pd.DataFrame:
    """Seven hourly series of scale 1 to 1e6: a daily cycle of its own shape, a slow wave, AR(1) noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    ds = pd.date_range("2023-01-01", periods=length, freq="h")
    frames = []
    for i in range(n_series):
        scale = 10.0**i
        daily = np.sin(2 * np.pi * t / 24 + i) + 0.5 * np.sin(4 * np.pi * t / 24 + 2 * i) * (i % 2)
        slow = 0.5 * np.sin(2 * np.pi * t / (24 * 7) + i / 2)
        noise = np.zeros(length)
        eps = rng.standard_normal(length)
        for k in range(1, length):
            noise[k] = 0.6 * noise[k - 1] + 0.3 * eps[k]
        frames.append(pd.DataFrame({"unique_id": f"x{scale:.0e}", "ds": ds, "y": scale * (3 + daily + slow + noise)}))
    return pd.concat(frames, ignore_index=True)


def etth1_panel(length: int = LENGTH) -> pd.DataFrame:
    from mamba_forecast.datasets import load_demo_data, to_long

    return to_long(load_demo_data()).groupby("unique_id").tail(length).reset_index(drop=True)


def zscored_mse(cv: pd.DataFrame, df: pd.DataFrame, column: str) -> float:
    first_cutoff = cv["cutoff"].min()
    std = df[df["ds"] <= first_cutoff].groupby("unique_id")["y"].std()
    err = (cv[column] - cv["y"]) / cv["unique_id"].map(std)
    return float((err**2).groupby(cv["unique_id"]).mean().mean())


def darts_zscored_mse(df: pd.DataFrame, name: str, scaled: bool, epochs: int) -> float:
    """The Darts model ``name`` (defaults, ``input_chunk_length=96``, ``output_chunk_length=24``) trained on the
    part before the first cutoff, then ``historical_forecasts`` over the same 3 windows without retraining;
    with ``scaled``, the documented pattern: a ``Scaler`` fitted on the training part around the model."""
    from darts import TimeSeries
    from darts.dataprocessing.transformers import Scaler

    import mamba_forecast.darts as mdarts

    wide = df.pivot(index="ds", columns="unique_id", values="y")
    series = TimeSeries.from_dataframe(wide.reset_index(), time_col="ds", freq="h")
    train = series[: len(series) - H * N_WINDOWS]
    scaler = Scaler().fit(train) if scaled else None
    model = getattr(mdarts, f"{name}Model")(
        96,
        H,
        n_epochs=epochs,
        random_state=1,
        pl_trainer_kwargs=dict(accelerator="cpu", enable_progress_bar=False, logger=False, enable_model_summary=False),
    )
    model.fit(scaler.transform(train) if scaled else train)
    forecasts = model.historical_forecasts(
        scaler.transform(series) if scaled else series,
        start=len(train),
        start_format="position",
        forecast_horizon=H,
        stride=H,
        retrain=False,
        last_points_only=False,
    )
    std = train.to_dataframe().std()
    errors = []
    for forecast in forecasts:
        forecast = scaler.inverse_transform(forecast) if scaled else forecast
        truth = series.slice_intersect(forecast).to_dataframe()
        errors.append(((forecast.to_dataframe() - truth) / std) ** 2)
    return float(pd.concat(errors).mean().mean())


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--panels", default="synthetic,etth1")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--scalers", default="identity,standard", help='comma-separated; "default" = not passed')
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--out", default=None, help="CSV to write the rows to")
    parser.add_argument(
        "--host",
        default="neuralforecast",
        choices=("neuralforecast", "darts"),
        help='darts: the Darts models, "--scalers none,Scaler" (without / with a Scaler)',
    )
    parser.add_argument("--epochs", type=int, default=6, help="Darts epochs (6 x 32 batches ~ 200 steps)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from neuralforecast import NeuralForecast
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    import mamba_forecast.neuralforecast as mnf

    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    quiet = dict(accelerator="cpu", devices=1, enable_progress_bar=False, logger=False, enable_model_summary=False)
    rows = []
    for panel in args.panels.split(","):
        df = synthetic_panel() if panel == "synthetic" else etth1_panel()
        t0 = time.perf_counter()
        sf = StatsForecast(models=[AutoETS(season_length=24)], freq="h", n_jobs=1)
        cv = sf.cross_validation(df=df, h=H, n_windows=N_WINDOWS, step_size=H)
        ets = zscored_mse(cv, df, "AutoETS")
        rows.append(dict(panel=panel, model="AutoETS", scaler_type="-", zmse=ets, seconds=time.perf_counter() - t0))
        print(f"{panel:<10} AutoETS                         z-MSE {ets:.3f}  ({rows[-1]['seconds']:.0f}s)", flush=True)
        for name in args.models.split(","):
            if args.host == "darts":
                for scaler in args.scalers.split(","):
                    t0 = time.perf_counter()
                    score = darts_zscored_mse(df, name, scaler == "Scaler", args.epochs)
                    rows.append(
                        dict(
                            panel=panel,
                            model=f"{name}Model",
                            scaler_type=scaler,
                            zmse=score,
                            seconds=time.perf_counter() - t0,
                        )
                    )
                    verdict = "beats" if score < ets else "LOSES to"
                    print(
                        f"{panel:<10} {name + 'Model':<20} {scaler:<13} z-MSE {score:.3f}  {verdict} AutoETS "
                        f"({rows[-1]['seconds']:.0f}s)",
                        flush=True,
                    )
                continue
            for scaler in args.scalers.split(","):
                kwargs = {} if scaler == "default" else {"scaler_type": scaler}
                model = getattr(mnf, name)(h=H, max_steps=args.max_steps, **kwargs, **quiet)
                t0 = time.perf_counter()
                nf = NeuralForecast(models=[model], freq="h")
                cv_m = nf.cross_validation(df=df, n_windows=N_WINDOWS, step_size=H)
                score = zscored_mse(cv_m, df, name)
                used = model.hparams["scaler_type"]
                rows.append(
                    dict(
                        panel=panel,
                        model=name,
                        scaler_type=used if scaler != "default" else f"default ({used})",
                        zmse=score,
                        seconds=time.perf_counter() - t0,
                    )
                )
                verdict = "beats" if score < ets else "LOSES to"
                print(
                    f"{panel:<10} {name:<15} {rows[-1]['scaler_type']:<18} z-MSE {score:.3f}  {verdict} AutoETS "
                    f"({rows[-1]['seconds']:.0f}s)",
                    flush=True,
                )
    table = pd.DataFrame(rows)
    if args.out:
        table.to_csv(args.out, index=False)
    return table


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
