"""How training cost grows with the number of series: our four models against NeuralForecast's iTransformer.

    python benchmarks/scaling.py --threads 1                  # CPU: 8, 64, 512, 2048 series; table and plot
    python benchmarks/scaling.py --device cuda --batch 32     # the same on a GPU
    python benchmarks/scaling.py --nf 2048 --threads 1        # NeuralForecast.fit with 2048 series

Core step (default): one training step (forward pass, MSE loss, backward pass, Adam update) of each model on
``--batch`` windows of input 96 and horizon 96 over N synthetic series, d_model 128 (d_ff 128, 2 layers; the
other arguments are each model's defaults). iTransformer is NeuralForecast's module with hidden_size 128,
d_ff 128, 8 heads, 2 layers; it is left out when NeuralForecast is not installed. Every (model, N) runs in its
own subprocess so that its peak memory is its own (see ``_common.time_steps``). Times are medians over
``--reps`` steps after one warm-up. Prints a markdown table and writes a log-log plot (``--plot``).

SMamba, FMamba and TSM2 treat the series as a sequence scanned by Mamba (or mix them with linear cost), so
time and memory grow linearly in N; iTransformer's attention across series grows as N squared.
AttentionMamba's adaptive-pooling attention is linear in N too (its pooled score matrix has a fixed size).

``--nf N``: wall time and peak RSS of ``NeuralForecast.fit`` (``--steps`` steps) for SMamba and iTransformer
on N hourly series of ``--length`` points, d_model/hidden_size 128, ``windows_batch_size=--batch``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from _common import machine, peak_rss_mb, rss_mb, run_child, time_steps

SERIES = (8, 64, 512, 2048)
MODELS = ("SMamba", "AttentionMamba", "FMamba", "TSM2", "iTransformer")
INPUT, H, WIDTH = 96, 96, 128


def _build(name: str, n_series: int):
    """The model called ``name`` for ``n_series`` series at the benchmark's sizes."""
    if name == "iTransformer":
        from neuralforecast.models import iTransformer

        return iTransformer(
            h=H,
            input_size=INPUT,
            n_series=n_series,
            hidden_size=WIDTH,
            d_ff=WIDTH,
            n_heads=8,
            e_layers=2,
            logger=False,
            enable_progress_bar=False,
        )
    import mamba_forecast.models as models

    kwargs = dict(d_model=WIDTH, e_layers=2)
    if name != "TSM2":
        kwargs["d_ff"] = WIDTH
    return getattr(models, name)(input_size=INPUT, h=H, n_series=n_series, **kwargs)


def _core_step(model: str, n_series: int, batch: int, reps: int, device: str, threads: int, budget_s: float) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = _build(model, n_series).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, INPUT, n_series, generator=g).to(device)
    target = torch.randn(batch, H, n_series, generator=g).to(device)
    if model == "iTransformer":

        def forward():
            return net({"insample_y": x})
    else:

        def forward():
            return net(x)

    def step():
        optimiser.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(forward(), target).backward()
        optimiser.step()

    result = time_steps(step, reps, device, budget_s=budget_s)
    result["params"] = sum(p.numel() for p in net.parameters())
    return result


def _panel(n_series: int, length: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    t = np.arange(length)
    ds = pd.date_range("2020-01-01", periods=length, freq="h")
    phase = rng.uniform(0, 2 * np.pi, n_series)[:, None]
    y = 10 + np.sin(2 * np.pi * t / 24 + phase) + 0.3 * rng.standard_normal((n_series, length))
    return pd.DataFrame(
        {
            "unique_id": np.repeat([f"s{i}" for i in range(n_series)], length),
            "ds": np.tile(ds, n_series),
            "y": y.ravel(),
        }
    )


def _nf_fit(model: str, n_series: int, length: int, steps: int, batch: int, threads: int) -> dict:
    import logging
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    if threads:
        torch.set_num_threads(threads)
    from neuralforecast import NeuralForecast
    from neuralforecast.models import iTransformer

    from mamba_forecast.neuralforecast import SMamba

    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    df = _panel(n_series, length)
    common = dict(
        h=H,
        input_size=INPUT,
        max_steps=steps,
        windows_batch_size=batch,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        logger=False,
        enable_model_summary=False,
        random_seed=0,
    )
    if model == "SMamba":
        est = SMamba(d_model=WIDTH, d_ff=WIDTH, **common)
    else:
        est = iTransformer(n_series=n_series, hidden_size=WIDTH, d_ff=WIDTH, n_heads=8, **common)
    rss_before = rss_mb()
    nf = NeuralForecast(models=[est], freq="h")
    start = time.perf_counter()
    nf.fit(df)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    forecast = nf.predict()
    predict_s = time.perf_counter() - start
    return {
        "fit_s": fit_s,
        "predict_s": predict_s,
        "rows": len(df),
        "finite": bool(forecast.select_dtypes("number").notna().all().all()),
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": rss_before,
    }


def _plot(results: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for model, rows in results.items():
        ok = [(n, r) for n, r in rows if "error" not in r]
        if not ok:
            continue
        xs = [n for n, _ in ok]
        axes[0].plot(xs, [r["ms"] / 1000 for _, r in ok], marker="o", label=model)
        axes[1].plot(xs, [max(r["peak_mb"], 1.0) for _, r in ok], marker="o", label=model)
    for ax, label in zip(axes, ("seconds per training step", "peak memory (MiB)"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("number of series N")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--series", default=",".join(map(str, SERIES)), help="comma-separated numbers of series")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of: " + ", ".join(MODELS))
    parser.add_argument("--batch", type=int, default=4, help="windows per step (default 4)")
    parser.add_argument("--reps", type=int, default=3, help="timed steps after the warm-up (at most)")
    parser.add_argument(
        "--budget",
        type=float,
        default=120,
        help="seconds of timed steps per measurement: fewer reps (at least 1) for slow steps",
    )
    parser.add_argument(
        "--max-step",
        type=float,
        default=150,
        help="skip a model's larger N once one of its steps took longer than this (seconds)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--plot", default=None, help="PNG path (default: docs/figures/scaling_<device>.png)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per measurement")
    parser.add_argument("--nf", type=int, default=0, help="time NeuralForecast.fit with this many series instead")
    parser.add_argument("--steps", type=int, default=20, help="--nf: training steps")
    parser.add_argument("--length", type=int, default=1000, help="--nf: points per series")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        spec = json.loads(args.child)
        job = spec.pop("job")
        print(json.dumps(_core_step(**spec) if job == "core" else _nf_fit(**spec)))
        return

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"machine: {machine(device)}; load average before: {os.getloadavg()[0]:.2f}", flush=True)

    if args.nf:
        print(
            f"NeuralForecast.fit: {args.nf} series x {args.length} hourly points, {args.steps} steps, "
            f"windows_batch_size {args.batch}, h {H}, input {INPUT}, width {WIDTH}; then predict"
        )
        print("| model | fit s | predict s | peak RSS MiB | finite forecasts |")
        print("|---|---|---|---|---|")
        for model in ("SMamba", "iTransformer"):
            spec = dict(
                job="nf",
                model=model,
                n_series=args.nf,
                length=args.length,
                steps=args.steps,
                batch=args.batch,
                threads=args.threads,
            )
            r = run_child(__file__, spec, timeout=args.timeout)
            if "error" in r:
                print(f"| {model} | failed: {r['error']} | | | |", flush=True)
                continue
            print(
                f"| {model} | {r['fit_s']:.1f} | {r['predict_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['finite']} |",
                flush=True,
            )
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        return

    series = [int(v) for v in args.series.split(",")]
    models = args.models.split(",")
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    try:
        import neuralforecast  # noqa: F401
    except ImportError:
        if "iTransformer" in models:
            print("NeuralForecast is not installed: iTransformer left out")
            models.remove("iTransformer")

    print(
        f"one training step (fwd, MSE, bwd, Adam) on {args.batch} windows, input {INPUT}, h {H}, "
        f"d_model {WIDTH}, 2 layers"
    )
    print("| model | series N | parameters | median ms/step | min ms | peak MiB |")
    print("|---|---|---|---|---|---|")
    results: dict[str, list] = {m: [] for m in models}
    too_slow: dict[str, str] = {}
    for n in series:  # the outer loop over N, so that a change in load hits every model alike
        for model in models:
            if model in too_slow:
                print(f"| {model} | {n} | skipped: {too_slow[model]} | | | |", flush=True)
                continue
            spec = dict(
                job="core",
                model=model,
                n_series=n,
                batch=args.batch,
                reps=args.reps,
                device=device,
                threads=args.threads,
                budget_s=args.budget,
            )
            r = run_child(__file__, spec, timeout=args.timeout)
            results[model].append((n, r))
            if "error" in r:
                print(f"| {model} | {n} | failed: {r['error']} | | | |", flush=True)
                too_slow[model] = f"failed at N={n}"
                continue
            print(
                f"| {model} | {n} | {r['params']:,} | {r['ms']:.1f} ({r['reps']} reps) | {r['min_ms']:.1f} | "
                f"{r['peak_mb']:.0f} |",
                flush=True,
            )
            if r["min_ms"] / 1000 > args.max_step:
                too_slow[model] = f"one step took {r['min_ms'] / 1000:.0f} s at N={n}"
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    plot = args.plot or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "docs", "figures", f"scaling_{device}.png"
    )
    _plot(
        results,
        os.path.normpath(plot),
        f"One training step, {args.batch} windows, input {INPUT}, h {H}, d_model {WIDTH}: {machine(device)}",
    )


if __name__ == "__main__":
    main()
