"""``mamba-forecast demo``: the four Mamba forecasters next to classical baselines, in about two minutes.

On the bundled ETTh1 data (or any CSV you pass) it trains SMamba, AttentionMamba, FMamba and TSM2 through
NeuralForecast with a short schedule, fits StatsForecast's SeasonalNaive and AutoETS, scores all of them by
cross-validation on a held-out tail (the same windows for every model), prints a ranked MSE/MAE table and
writes ``metrics.csv``, ``forecasts.csv`` and ``forecast.png`` to an output folder.

The series are z-scored with the mean and standard deviation of the part before the held-out tail, so the
metrics are comparable across series (as in the forecasting literature).

Bundled data: ETTh1 from the ETDataset (Zhou et al., "Informer: Beyond Efficient Transformer for Long
Sequence Time-Series Forecasting", AAAI 2021), shipped unmodified as a gzip under its licence, CC BY-ND 4.0.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .datasets import DEMO_CREDIT, load_demo_data, to_long


def neural_models() -> tuple[str, ...]:
    """The Mamba models the demo trains: every registered model spec (``mamba_forecast.models.spec``)."""
    from .models import model_names

    return model_names()


def demo_config(name: str) -> dict:
    """Model ``name``'s demo settings (its spec's ``demo``): small and fast for a 2-core laptop; the benchmark
    presets (``mamba-forecast bench``) are the full ones."""
    from .models import get_spec

    return dict(get_spec(name).demo)


# --device -> Lightning accelerator (anything else is refused by argparse, never silently run on the CPU)
_ACCELERATORS = {"cpu": "cpu", "cuda": "gpu", "gpu": "gpu", "mps": "mps", "auto": "auto"}


def season_for(freq) -> int:
    """The usual season length, in steps, for a pandas frequency: one day of sub-daily steps (24 hourly, 96 for
    15 minutes; an hour of minutes, a minute of seconds), a week of days (7, or 5 business days), a year of
    weeks (52), months (12) or quarters (4); 1 (no season) otherwise."""
    from pandas.tseries.frequencies import to_offset
    from pandas.tseries.offsets import (
        BusinessDay,
        BusinessMonthBegin,
        BusinessMonthEnd,
        Day,
        MonthBegin,
        MonthEnd,
        QuarterBegin,
        QuarterEnd,
        Tick,
        Week,
    )

    try:
        offset = to_offset(freq)
    except (TypeError, ValueError):
        return 1
    if isinstance(offset, Day) and offset.n == 1:
        return 7
    if isinstance(offset, Tick):  # hours, minutes, seconds: a day of steps (an hour or a minute if that is >288)
        for period in ("1D", "1h", "1min"):
            steps = pd.Timedelta(period) / pd.Timedelta(offset)
            if 1 < steps <= 288 and float(steps).is_integer():
                return int(steps)
        return 1
    if isinstance(offset, BusinessDay) and offset.n == 1:
        return 5
    if isinstance(offset, Week) and offset.n == 1:
        return 52
    if isinstance(offset, (MonthEnd, MonthBegin, BusinessMonthEnd, BusinessMonthBegin)) and offset.n == 1:
        return 12
    if isinstance(offset, (QuarterEnd, QuarterBegin)) and offset.n == 1:
        return 4
    return 1


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="mamba-forecast demo", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return parser.parse_args(argv)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=None, help="CSV: a date column + series columns, or unique_id/ds/y")
    parser.add_argument(
        "--models",
        default=None,
        help="comma-separated Mamba models (default: all: SMamba, AttentionMamba, FMamba, TSM2 and "
        "any other registered model)",
    )
    parser.add_argument("--horizon", type=int, default=24, help="forecast horizon in steps (default 24)")
    parser.add_argument("--input-size", type=int, default=96, help="look-back in steps (default 96)")
    parser.add_argument("--windows", type=int, default=4, help="held-out windows of `horizon` steps (default 4)")
    parser.add_argument(
        "--history", type=int, default=2000, help="training steps per series before the held-out tail (default 2000)"
    )
    parser.add_argument("--max-steps", type=int, default=150, help="training steps per model (default 150)")
    parser.add_argument(
        "--season",
        type=int,
        default=None,
        help="season length for the classical models (default: from the data's frequency: "
        "24 for hourly, 7 for daily, 52 for weekly, 12 for monthly, ...)",
    )
    parser.add_argument("--freq", default=None, help="pandas frequency (default: inferred)")
    parser.add_argument(
        "--device", default="cpu", choices=sorted(_ACCELERATORS), help="cpu, cuda (or gpu), mps or auto (default cpu)"
    )
    parser.add_argument("--out", default="mamba_forecast_output", help="output folder")
    parser.add_argument("--seed", type=int, default=1)


def run(args) -> pd.DataFrame:
    """Run the demo for parsed ``args``; returns the ranked metrics table."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    try:
        from neuralforecast import NeuralForecast
        from statsforecast import StatsForecast
        from statsforecast.models import AutoETS, SeasonalNaive
    except ImportError as exc:
        raise SystemExit(
            f"The demo needs NeuralForecast and StatsForecast ({exc}). Install them with mamba-forecast's `all` "
            'extra: `pip install ".[all]"` in a clone of it, or its wheel with `[all]` after the file name.'
        ) from exc
    from . import neuralforecast as mf_nf

    # Lightning's "Seed set to", "GPU available" and "max_steps reached" lines; NeuralForecast's import may
    # set these loggers' levels itself, so this comes after it.
    for name in ("pytorch_lightning", "lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)

    known = neural_models()
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else list(known)
    unknown = sorted(set(models) - set(known))
    if unknown:
        raise SystemExit(f"--models: unknown {unknown}; choose from {', '.join(known)}.")
    for name in ("horizon", "input_size", "windows", "history", "max_steps", "season"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}.")

    t_start = time.perf_counter()
    out = Path(args.out)
    if args.data:
        source = args.data
        try:
            long = to_long(pd.read_csv(args.data))
        except (OSError, ValueError) as exc:  # a missing or unreadable file, or one in neither layout
            raise SystemExit(f"--data {args.data}: {exc}") from None
    else:
        source = DEMO_CREDIT
        long = to_long(load_demo_data())
    tail = args.horizon * args.windows
    keep = args.history + tail
    long = long.groupby("unique_id", sort=False).tail(keep).reset_index(drop=True)
    lengths = long.groupby("unique_id").size()
    if lengths.min() < args.input_size + args.horizon + tail:
        raise SystemExit(
            f"--data: the shortest series has {lengths.min()} steps; the demo needs at least "
            f"input_size + horizon + horizon * windows = {args.input_size + args.horizon + tail}."
        )
    # z-score each series with statistics of the part before the held-out tail
    train_part = long.groupby("unique_id", sort=False).head(lengths.min() - tail)
    stats = train_part.groupby("unique_id")["y"].agg(["mean", "std"])
    long["y"] = (long["y"] - long["unique_id"].map(stats["mean"])) / long["unique_id"].map(stats["std"]).replace(0, 1)
    long["y"] = long["y"].astype("float32")
    freq = args.freq or pd.infer_freq(long.loc[long["unique_id"] == long["unique_id"].iloc[0], "ds"])
    if freq is None:
        raise SystemExit(
            "--data: the time steps are irregular (a date missing, or repeated), so the frequency cannot be "
            "inferred. Fill the missing dates, or pass --freq (a pandas frequency such as h, D, W)."
        )
    season = args.season if args.season is not None else season_for(freq)
    out.mkdir(parents=True, exist_ok=True)  # only once the input is known to be usable
    n_series = long["unique_id"].nunique()
    print(
        f"data: {source}\n      {n_series} series x {lengths.min()} steps (freq {freq}, season {season}"
        f"{'' if args.season is not None else ' from the frequency'}); "
        f"held-out tail {args.windows} windows x {args.horizon} steps",
        flush=True,
    )

    accelerator = _ACCELERATORS[args.device]
    trainer = dict(
        accelerator=accelerator,
        devices=1,
        enable_progress_bar=False,
        logger=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    results = []

    print("[1/2] classical baselines (StatsForecast): SeasonalNaive, AutoETS", flush=True)
    t0 = time.perf_counter()
    sf = StatsForecast(models=[SeasonalNaive(season_length=season), AutoETS(season_length=season)], freq=freq, n_jobs=1)
    cv = sf.cross_validation(df=long, h=args.horizon, n_windows=args.windows, step_size=args.horizon)
    print(f"      done in {time.perf_counter() - t0:.1f}s", flush=True)

    print(f"[2/2] Mamba models (NeuralForecast, {args.max_steps} steps each): {', '.join(models)}", flush=True)
    for i, name in enumerate(models, 1):
        t0 = time.perf_counter()
        cls = getattr(mf_nf, name)
        model = cls(
            h=args.horizon,
            input_size=args.input_size,
            max_steps=args.max_steps,
            learning_rate=1e-3,
            batch_size=32,
            windows_batch_size=64,
            random_seed=args.seed,
            **demo_config(name),
            **trainer,
        )
        nf = NeuralForecast(models=[model], freq=freq)
        cv_m = nf.cross_validation(df=long, n_windows=args.windows, step_size=args.horizon)
        cv = cv.merge(cv_m[["unique_id", "ds", "cutoff", name]], on=["unique_id", "ds", "cutoff"], how="left")
        print(f"      {i}/{len(models)} {name:<15} trained and forecast in {time.perf_counter() - t0:.1f}s", flush=True)

    for col in [c for c in cv.columns if c not in ("unique_id", "ds", "cutoff", "y")]:
        err = cv[col].to_numpy(dtype=float) - cv["y"].to_numpy(dtype=float)
        results.append({"model": col, "mse": float(np.mean(err**2)), "mae": float(np.mean(np.abs(err)))})
    table = pd.DataFrame(results).sort_values("mse").reset_index(drop=True)
    table.index = table.index + 1
    table.to_csv(out / "metrics.csv", index_label="rank")
    cv.to_csv(out / "forecasts.csv", index=False)
    _plot(long, cv, out / "forecast.png", args)

    print("\nHeld-out MSE / MAE (z-scored series, lower is better):")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(
        f"\nwrote {out / 'metrics.csv'}, {out / 'forecasts.csv'} and {out / 'forecast.png'}"
        f"  ({time.perf_counter() - t_start:.0f}s in all)"
    )
    return table


def _plot(long: pd.DataFrame, cv: pd.DataFrame, path: Path, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    uid = "OT" if (long["unique_id"] == "OT").any() else long["unique_id"].iloc[0]
    last_cutoff = cv["cutoff"].max()
    window = cv[(cv["unique_id"] == uid) & (cv["cutoff"] == last_cutoff)]
    history = long[(long["unique_id"] == uid) & (long["ds"] <= last_cutoff)].tail(3 * args.horizon)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(history["ds"], history["y"], color="black", lw=1.2, label="history")
    ax.plot(window["ds"], window["y"], color="black", lw=1.2, ls="--", label="truth")
    for col in [c for c in cv.columns if c not in ("unique_id", "ds", "cutoff", "y")]:
        ax.plot(window["ds"], window[col], lw=1.3, label=col)
    ax.axvline(last_cutoff, color="grey", lw=0.8)
    ax.set_xlabel("time")
    ax.set_ylabel(f"{uid} (z-scored)")
    ax.set_title(f"Last held-out window of series {uid}: {args.horizon}-step forecasts")
    ax.legend(ncol=4, fontsize=8, loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    run(_parse_args(sys.argv[1:] if argv is None else argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
