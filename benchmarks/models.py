"""Forward+backward time and peak memory of the four forecasters in their official configurations.

    python benchmarks/models.py                          # every configuration, on CUDA when available
    python benchmarks/models.py --device cpu --batch 4 --threads 1   # CPU: smaller batches, one thread
    python benchmarks/models.py --only smamba-etth1,tsm2-etth1 --reps 7

Each configuration runs in its own subprocess so that its peak memory is its own: on CUDA, torch's peak
allocated bytes above what the model and inputs already hold; on CPU, the growth of the subprocess's peak RSS
(``VmHWM``, reset once the model and inputs exist; see ``_common.peak_rss_mb``) over its RSS at that point
(activations, gradients, workspace). One step is
a forward pass, an MSE loss against a random target and a backward pass (no optimiser update; with ``--adam``
also an Adam update, as in the GPU notes' reference figures). Times are medians over ``--reps`` steps after
one warm-up. Prints a markdown table.

The configurations are the official scripts' (S-Mamba: ETTh1, ECL, Traffic, PEMS07; Attention Mamba: PEMS07,
ECL; batch sizes as in those scripts), plus FMamba with S-Mamba's ECL widths and TSM2 with the replication's
ETTh1 setting at L=512. The S-Mamba runs on ETTh1/ECL/Traffic include the official code's 4 calendar-feature
tokens, given here as ``hist_exog_size=4``; PEMS runs have none and ``use_norm=False``, as officially.
"""

from __future__ import annotations

import argparse
import json
import os

from _common import machine, run_child, time_steps

# name: (model, batch, input_size, h, n_series, constructor arguments)
CONFIGS = {
    "smamba-etth1": ("SMamba", 32, 96, 96, 7, dict(d_model=256, d_ff=256, e_layers=2, d_state=2, hist_exog_size=4)),
    "smamba-ecl": ("SMamba", 16, 96, 96, 321, dict(d_model=512, d_ff=512, e_layers=3, d_state=16, hist_exog_size=4)),
    "smamba-traffic": (
        "SMamba",
        16,
        96,
        96,
        862,
        dict(d_model=512, d_ff=512, e_layers=4, d_state=32, hist_exog_size=4),
    ),
    "smamba-pems07": ("SMamba", 16, 96, 12, 883, dict(d_model=512, d_ff=512, e_layers=2, d_state=32, use_norm=False)),
    "attentionmamba-pems07": (
        "AttentionMamba",
        16,
        96,
        12,
        883,
        dict(d_model=512, d_ff=512, e_layers=1, d_state=64, use_norm=False),
    ),
    "attentionmamba-ecl": ("AttentionMamba", 16, 96, 96, 321, dict(d_model=512, d_ff=512, e_layers=1, d_state=64)),
    "fmamba-ecl": ("FMamba", 16, 96, 96, 321, dict(d_model=512, d_ff=512, e_layers=3, d_state=16)),
    "tsm2-etth1": ("TSM2", 128, 512, 96, 7, dict(d_model=32, e_layers=2, d_state=16, patch_len=16, stride=8)),
}


def _one(name: str, batch: int, reps: int, device: str, scan_backend: str, threads: int, adam: bool = False) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    import mamba_forecast.models as models

    model_name, official_batch, input_size, h, n_series, kwargs = CONFIGS[name]
    batch = batch or official_batch
    torch.manual_seed(0)
    model = getattr(models, model_name)(
        input_size=input_size, h=h, n_series=n_series, scan_backend=scan_backend, **kwargs
    ).to(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, input_size, n_series, generator=g).to(device)
    hist = (
        torch.randn(batch, input_size, model.hist_exog_size, generator=g).to(device) if model.hist_exog_size else None
    )
    target = torch.randn(batch, h, n_series, generator=g).to(device)

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4) if adam else None

    def step():
        loss = torch.nn.functional.mse_loss(model(x, hist_exog=hist), target)
        loss.backward()
        if optimizer is not None:
            optimizer.step()
        model.zero_grad(set_to_none=False)
        if device == "cuda":
            torch.cuda.synchronize()

    r = time_steps(step, reps, device)
    return {
        "model": model_name,
        "batch": batch,
        "shape": f"L={input_size}, h={h}, N={n_series}",
        "params": sum(p.numel() for p in model.parameters()),
        "ms": r["ms"],
        "min_ms": r["min_ms"],
        "peak_mb": r["peak_mb"],
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--batch", type=int, default=0, help="batch size for every configuration (default: official)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(CONFIGS)}")
    parser.add_argument("--scan-backend", default="auto", help="auto, cuda, triton, torch or reference")
    parser.add_argument("--adam", action="store_true", help="include an Adam update in each step")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(_one(**spec)))
        return

    import torch

    from mamba_forecast.ssm import resolve_backend

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    names = args.only.split(",") if args.only else list(CONFIGS)
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; choose from {', '.join(CONFIGS)}")
    backend = resolve_backend(args.scan_backend, torch.device(device))
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {machine(device)}; scan backend: {backend}; load average before: {os.getloadavg()[0]:.2f}")
    print("| configuration | model | shape | batch | parameters | fwd+bwd median ms | min ms | peak MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        spec = {
            "name": name,
            "batch": args.batch,
            "reps": args.reps,
            "device": device,
            "scan_backend": args.scan_backend,
            "threads": args.threads,
            "adam": args.adam,
        }
        r = run_child(__file__, spec)
        if "error" in r:
            print(f"| {name} | failed: {r['error']} | | | | | | |", flush=True)
            continue
        print(
            f"| {name} | {r['model']} | {r['shape']} | {r['batch']} | {r['params']:,} | {r['ms']:.1f} | "
            f"{r['min_ms']:.1f} | {r['peak_mb']:.0f} |",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
