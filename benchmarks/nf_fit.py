"""Training time in NeuralForecast: SMamba against NeuralForecast's iTransformer on the same data.

    python benchmarks/nf_fit.py                 # 3 interleaved repetitions each, torch's default threads
    python benchmarks/nf_fit.py --threads 1     # on a busy machine several intra-op threads only contend

Both models use their defaults (SMamba: d_model 256, 2 layers, d_state 2; iTransformer: hidden 512, d_ff 2048)
with h=24, input_size=96, max_steps=100, on 7 hourly series of 2000 points (a sine per series plus noise),
on the CPU. The time is the wall time of ``NeuralForecast.fit``; the runs alternate between the two models so
that a change in machine load hits both. CPU timings on a shared machine are noisy: the load average is
printed with the results.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
import warnings

import numpy as np
import pandas as pd
import torch


def make_panel(n_series: int = 7, length: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    ds = pd.date_range("2020-01-01", periods=length, freq="h")
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "unique_id": f"s{i}",
                    "ds": ds,
                    "y": 10 + i + np.sin(2 * np.pi * t / 24 + i) + 0.3 * rng.standard_normal(length),
                }
            )
            for i in range(n_series)
        ],
        ignore_index=True,
    )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)

    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    from neuralforecast import NeuralForecast
    from neuralforecast.models import iTransformer

    for logger in ("pytorch_lightning", "lightning_fabric"):  # NeuralForecast sets these on import
        logging.getLogger(logger).setLevel(logging.ERROR)

    from mamba_forecast.neuralforecast import SMamba

    df = make_panel()
    common = dict(
        h=24,
        input_size=96,
        max_steps=args.steps,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        logger=False,
        enable_model_summary=False,
    )
    builders = {
        "SMamba": lambda: SMamba(**common),
        "iTransformer": lambda: iTransformer(n_series=7, **common),
    }
    times = {name: [] for name in builders}
    params = {}
    load_before = os.getloadavg()
    for _ in range(args.reps):
        for name, build in builders.items():
            model = build()
            nf = NeuralForecast(models=[model], freq="h")
            start = time.perf_counter()
            nf.fit(df)
            times[name].append(time.perf_counter() - start)
            params[name] = sum(p.numel() for p in nf.models[0].parameters())
            print(f"  {name}: {times[name][-1]:.2f} s (load {os.getloadavg()[0]:.2f})", flush=True)
    load_after = os.getloadavg()

    print(
        f"NeuralForecast.fit, {args.steps} steps, 7 series x 2000 hourly points, h=24, input_size=96, CPU, "
        f"torch threads {torch.get_num_threads()}"
    )
    for name, values in times.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {name:<13} median {statistics.median(values):6.2f} s  (runs: {runs}; {params[name]:,} parameters)")
    ratio = statistics.median(times["SMamba"]) / statistics.median(times["iTransformer"])
    print(f"  SMamba / iTransformer: {ratio:.2f}")
    print(
        f"  load average (1, 5, 15 min) before {tuple(round(x, 2) for x in load_before)}, "
        f"after {tuple(round(x, 2) for x in load_after)}; {os.cpu_count()} CPUs"
    )
    return {name: statistics.median(values) for name, values in times.items()}


if __name__ == "__main__":
    main()
