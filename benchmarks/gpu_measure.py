"""The measurements ``benchmarks/gpu_check.py`` runs, each in a process of its own (``--child``), or by hand:

    python benchmarks/gpu_measure.py scan --backend triton --shapes "32,321,512,16;16,862,512,16"
    python benchmarks/gpu_measure.py steps --backend auto --configs smamba-etth1,tsm2-etth1
    python benchmarks/gpu_measure.py cell --model SMamba --precisions fp32,bf16-mixed --epochs 2

* ``scan``: forward+backward of ``selective_scan`` per shape (batch, length, channels, d_state) on one backend
  (``benchmarks/scan.py``'s inputs and timing), and the largest relative error of its output and gradients
  against the ``torch`` backend in fp64 on the same inputs (for ``triton`` that checks the configuration
  autotune chose at that shape).
* ``steps``: one Adam training step of the official configurations (``benchmarks/models.py``'s ``CONFIGS``) on
  one scan backend: median time, peak memory, and on CUDA the kernels of one step and their summed GPU time
  (a step far longer than its GPU time is bound by launching, not by arithmetic).
* ``cell``: one benchmark cell through the harness (``mamba_forecast.bench``: the preset, protocol, windows and
  early stopping of ``mamba-forecast bench``) from loading the data to the test score, once per precision:
  seconds, test MSE / MAE, epochs, per-epoch seconds and peak memory. The data is the bundled ETTh1 copy unless
  ``--data-dir`` names a folder.

Each prints one JSON object; errors are reported per shape / configuration, so one failure does not lose the rest,
and ``seconds`` (a child's spec) stops it starting another shape or configuration after that long.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from _common import machine, scan_inputs, time_steps


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _rel(a, b) -> float:
    diff, ref = (a.double() - b.double()).norm(), b.double().norm()
    return float(diff if ref < 1e-12 else diff / ref)


def _scan_shape(backend: str, shape: list, reps: int, device: str) -> dict:
    import torch

    from mamba_forecast.ssm import selective_scan

    leaves = scan_inputs(*shape, device=device)

    def run(backend: str, leaves: list):
        u, delta, A, B, C, D, z, bias = leaves
        out = selective_scan(u, delta, A, B, C, D, z=z, delta_bias=bias, delta_softplus=True, backend=backend)
        out.backward(torch.ones_like(out))
        return [out.detach()] + [t.grad for t in leaves]

    def step():
        run(backend, leaves)
        for t in leaves:
            t.grad = None
        _sync(device)

    r = time_steps(step, reps, device)
    row = {"backend": backend, "shape": list(shape), "fwd_bwd_ms": r["ms"], "min_ms": r["min_ms"]}
    row["peak_mib"] = r["peak_mb"]
    got = run(backend, leaves)
    want = run("torch", [t.detach().double().requires_grad_() for t in leaves])
    row["max_rel_err_vs_fp64"] = max(_rel(a, b) for a, b in zip(got, want, strict=True))
    return row


def measure_scan(backend: str, shapes: list, reps: int, device: str, seconds: float | None = None) -> dict:
    import torch

    end = time.monotonic() + seconds if seconds else None
    rows = []
    for shape in shapes:
        if end is not None and time.monotonic() > end:
            rows.append({"backend": backend, "shape": list(shape), "error": "skipped: out of time"})
            continue
        try:
            rows.append(_scan_shape(backend, shape, reps, device))
        except Exception as exc:  # noqa: BLE001 - reported per shape
            rows.append({"backend": backend, "shape": list(shape), "error": f"{type(exc).__name__}: {str(exc)[:160]}"})
        if device == "cuda":
            torch.cuda.empty_cache()
    return {"rows": rows}


def _kernels_per_step(step) -> tuple[int | None, float | None]:
    """Kernels (and copies, fills) one step runs on the GPU and their summed time in ms, from torch.profiler."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    try:
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            step()
        device = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
        return len(device), sum(e.time_range.elapsed_us() for e in device) / 1000
    except Exception:  # noqa: BLE001 - the count is an extra; the timing stands without it
        torch.cuda.synchronize()
        return None, None


def measure_steps(
    backend: str, configs: list, batch: int, reps: int, device: str, seconds: float | None = None
) -> dict:
    import torch
    from models import CONFIGS  # benchmarks/models.py

    import mamba_forecast.models as forecasters

    end = time.monotonic() + seconds if seconds else None
    rows = []
    for name in configs:
        if end is not None and time.monotonic() > end:
            rows.append({"config": name, "backend": backend, "error": "skipped: out of time"})
            continue
        model_name, official_batch, input_size, h, n_series, kwargs = CONFIGS[name]
        b = batch or official_batch
        try:
            torch.manual_seed(0)
            model = getattr(forecasters, model_name)(
                input_size=input_size, h=h, n_series=n_series, scan_backend=backend, **kwargs
            ).to(device)
            g = torch.Generator().manual_seed(0)
            x = torch.randn(b, input_size, n_series, generator=g).to(device)
            k = model.hist_exog_size
            hist = torch.randn(b, input_size, k, generator=g).to(device) if k else None
            target = torch.randn(b, h, n_series, generator=g).to(device)
            optim = torch.optim.Adam(model.parameters(), lr=1e-4, fused=device == "cuda" or None)

            def step(model=model, x=x, hist=hist, target=target, optim=optim):
                optim.zero_grad(set_to_none=True)
                torch.nn.functional.mse_loss(model(x, hist_exog=hist), target).backward()
                optim.step()
                _sync(device)

            r = time_steps(step, reps, device)
            kernels, gpu_ms = _kernels_per_step(step) if device == "cuda" else (None, None)
            row = {"config": name, "backend": backend, "ms": r["ms"], "min_ms": r["min_ms"], "peak_mib": r["peak_mb"]}
            row.update(batch=b, params=sum(p.numel() for p in model.parameters()), kernels=kernels, gpu_ms=gpu_ms)
            del model, optim, x, hist, target
        except Exception as exc:  # noqa: BLE001 - reported per configuration
            row = {"config": name, "backend": backend, "error": f"{type(exc).__name__}: {str(exc)[:160]}"}
        rows.append(row)
        if device == "cuda":
            torch.cuda.empty_cache()
    return {"rows": rows}


def measure_cell(
    model: str,
    precisions: list,
    epochs: int | None,
    device: str,
    dataset: str = "ETTh1",
    horizon: int = 96,
    data_dir: str | None = None,
    max_train_batches: int | None = None,
    overrides: dict | None = None,
) -> dict:
    """The harness's cell: ``runner.run_cell``'s steps (official preset and protocol, its seed) without the CSV."""
    import torch

    from mamba_forecast.bench.models import build_model, forward, uses_calendar_tokens
    from mamba_forecast.bench.presets import apply_settings, get_preset
    from mamba_forecast.bench.protocol import prepare
    from mamba_forecast.bench.runner import set_seed
    from mamba_forecast.bench.train import fit_and_test, get_protocol

    protocol = get_protocol("official")
    preset = apply_settings(get_preset(model, dataset, horizon, "official"), overrides or {})
    training = protocol.settings(preset)
    if epochs:
        training["epochs"] = epochs
    rows = []
    for precision in precisions:
        start = time.perf_counter()
        data = prepare(dataset, preset.input_size, data_dir=data_dir)
        use_marks = uses_calendar_tokens(model) and data.calendar_tokens
        set_seed(2023)
        net = build_model(model, preset, data.n_series, preset.input_size, horizon, use_marks, seed=2023)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        result = fit_and_test(
            net,
            data,
            horizon,
            forward_fn=lambda m, x, xm, use_marks=use_marks: forward(m, x, xm, use_marks),
            batch_size=preset.batch_size,
            learning_rate=preset.learning_rate,
            optimizer=preset.optimizer,
            validation=protocol.validation,
            device=device,
            seed=2023,
            max_train_batches=max_train_batches,
            precision=precision,
            progress=False,
            log=lambda *_: None,
            **training,
        )
        _sync(device)
        seconds = time.perf_counter() - start
        epoch_sec = [h["sec"] for h in result.history]
        rows.append(
            {
                "model": model,
                "dataset": dataset,
                "horizon": horizon,
                "precision": precision,
                "seconds": seconds,
                "mse": result.mse,
                "mae": result.mae,
                "epochs_run": result.epochs_run,
                "best_epoch": result.best_epoch,
                "epoch_sec": epoch_sec,
                # the first epoch pays for compiling and autotuning: the speed is read from the later ones
                "steady_epoch_sec": statistics.median(epoch_sec[1:] or epoch_sec),
                "test_sec": result.test_sec,
                "peak_mib": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
                "batch_size": preset.batch_size,
                "input_size": preset.input_size,
            }
        )
    return {"rows": rows}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", choices=("scan", "steps", "cell"))
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    parser.add_argument("--backend", default="auto", help="scan backend (scan: cuda, triton or torch)")
    parser.add_argument("--shapes", default="32,321,512,16", help="batch,length,channels,d_state[;...]")
    parser.add_argument("--configs", default="smamba-etth1", help="configurations of benchmarks/models.py")
    parser.add_argument("--model", default="SMamba")
    parser.add_argument("--precisions", default="fp32")
    parser.add_argument("--epochs", type=int, default=None, help="cap the preset's epochs")
    parser.add_argument("--batch", type=int, default=0, help="steps: batch size (default: the official one)")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        what = spec.pop("what")
        threads = spec.pop("threads", 0)
        if threads:
            import torch

            torch.set_num_threads(threads)
        fn = {"scan": measure_scan, "steps": measure_steps, "cell": measure_cell}[what]
        print(json.dumps(fn(**spec)))
        return
    if args.what is None:
        parser.error("say what to measure: scan, steps or cell")
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.what == "scan":
        shapes = [[int(v) for v in s.split(",")] for s in args.shapes.split(";")]
        result = measure_scan(args.backend, shapes, args.reps, device)
    elif args.what == "steps":
        result = measure_steps(args.backend, args.configs.split(","), args.batch, args.reps, device)
    else:
        result = measure_cell(args.model, args.precisions.split(","), args.epochs, device)
    print(f"# {machine(device)}; load average {os.getloadavg()[0]:.1f}")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
