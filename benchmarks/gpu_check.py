"""GPU evidence in one run: backend parity, scan speed, the GPU tests, training steps, a whole benchmark cell and
bf16 against fp32.

    python benchmarks/gpu_check.py --device cuda --out /tmp/gpu_check.md     # via benchmarks/gpu_check.sh
    TRITON_INTERPRET=1 python benchmarks/gpu_check.py --device cpu           # dry run: tiny shapes and models

Sections (each a markdown table; the report goes to stdout and ``--out``, the figures as JSON to ``--json``):

1. Parity: each scan backend (``cuda`` = mamba-ssm's kernel, ``triton``, ``torch``) against the sequential
   reference in fp64 on the same inputs, on fuzzed and large shapes, fp32 and bf16 inputs (tolerances 1e-4 and
   2e-2): the largest relative error of the output, the last state and the gradients of u, delta, A, B, C, D, z,
   delta_bias. For ``cuda`` the loss leaves the last state out (mamba-ssm ignores its gradient). Triton runs its
   fixed block sizes here (``MAMBA_FORECAST_TRITON_AUTOTUNE=0``: many shapes, each compiled once); the
   autotuned configurations are checked in section 2.
2. Scan speed: forward+backward of ``selective_scan`` at the GPU notes' shapes (batch, length, channels, d_state
   16) per backend, next to the notes' H100 figure for mamba-ssm's scan, with each backend's error against the
   fp64 torch scan at that shape; and the acceptance: Triton within 1.5x of mamba-ssm's kernel at
   (32, 321, 512, 16) and (16, 862, 512, 16).
3. Training steps: one Adam step of each model's official configuration per scan backend (``auto`` runs
   mamba-ssm's fused block where it can), time, peak memory, kernels per step and their GPU time, next to the
   official code's figures.
4. One cell end to end: SMamba on ETTh1, horizon 96, official preset and protocol (load, train with early
   stopping, test), its seconds and test MSE, next to the official pipeline's 285 s.
5. bf16-mixed against fp32: the four models on ETTh1-96 (official presets, ``--bf16-epochs`` epochs each):
   seconds per epoch after the first, peak memory, test MSE.
6. GPU tests: ``pytest -m gpu`` over the test files that import with torch alone, with the time left.

A time budget (``--budget``, seconds) keeps the run inside one 10-minute call; each section has a deadline (parity
14% of the budget, scan speed 28%, steps 46%, the cell 58%, bf16 82%, the tests the rest), what does not fit is
listed as skipped. The report and the JSON are rewritten after every section, so a call
cut short still returns what ran.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
import time

from _common import machine, run_child
from gpu_parity import parity

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MEASURE = os.path.join(HERE, "gpu_measure.py")

# The GPU notes' figures (H100, fp32): mamba-ssm's scan, fwd+bwd, d_state 16, keyed by (batch, length, channels)
REFERENCE_SCAN_MS = {(32, 7, 128): 0.47, (32, 21, 512): 0.51, (32, 321, 512): 0.92, (16, 862, 512): 1.03}
# ... the official research code's Adam step (ms, peak MiB) and its ETTh1-96 pipeline end to end (s, MSE)
REFERENCE_MODELS = {
    "smamba-etth1": (12.7, 98),
    "smamba-ecl": (15.7, 636),
    "smamba-traffic": (37.7, 1922),
    "smamba-pems07": (19.2, 1076),
    "attentionmamba-pems07": (18.4, 1111),
    "attentionmamba-ecl": (9.3, 516),
}
REFERENCE_CELL = (285.0, 0.3878)
SCAN_SHAPES = [(32, 7, 128, 16), (32, 21, 512, 16), (32, 321, 512, 16), (16, 862, 512, 16)]
ACCEPTANCE = {"shapes": [(32, 321, 512, 16), (16, 862, 512, 16)], "ratio": 1.5}
STEP_CONFIGS = ["smamba-etth1", "smamba-ecl", "attentionmamba-ecl", "fmamba-ecl", "tsm2-etth1"]
MODELS = ["SMamba", "AttentionMamba", "FMamba", "TSM2"]
# the dry run's stand-ins: small models, two batches, one epoch, input 96 for TSM2
TINY = {"d_model": 16, "d_ff": 16, "d_state": 2, "e_layers": 1, "input_size": 96}


def _versions() -> str:
    parts = []
    for name in ("torch", "triton", "mamba_ssm", "causal_conv1d"):
        try:
            mod = importlib.import_module(name)
            parts.append(f"{name} {getattr(mod, '__version__', '?')}")
        except Exception as exc:  # noqa: BLE001 - report whatever stops the import
            parts.append(f"{name} absent ({type(exc).__name__})")
    return ", ".join(parts)


# a measuring process stops starting new work at its section's deadline; this long more lets the item under way
# finish before it is killed (the default budget, 520 s, leaves the call's last 80 s for this and the set-up)
GRACE_S = 30


def _child(spec: dict, timeout: float) -> dict:
    return run_child(MEASURE, spec, timeout=timeout)


def _f(value, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


# ------------------------------------------------------------------------------------------------ speed


def scan_speed(device: str, backends: list[str], shapes, reps: int, deadline: float, figures: dict) -> list[str]:
    rows = [
        "| backend | shape (batch, length, channels), d_state | fwd+bwd median ms | min ms | peak MiB | "
        "rel. error vs fp64 | GPU notes: mamba-ssm scan (H100) |",
        "|---|---|---|---|---|---|---|",
    ]
    by_shape: dict = {}
    for backend in backends:
        left = deadline - time.monotonic()
        if left < 20:
            figures["skipped"].append(f"scan speed {backend}")
            rows.append(f"| {backend} | skipped: out of time | | | | | |")
            continue
        spec = {"what": "scan", "backend": backend, "shapes": [list(s) for s in shapes], "reps": reps}
        result = _child(dict(spec, device=device, seconds=left), timeout=left + GRACE_S)
        for r in result.get("rows", [{"backend": backend, "shape": [], "error": result.get("error")}]):
            shape = tuple(r["shape"])
            ref = REFERENCE_SCAN_MS.get(shape[:3])
            ref_s = f"{ref} ms" if ref else "-"
            where = f"{shape[:3]}, {shape[3]}" if shape else "every shape"
            if "error" in r:
                rows.append(f"| {backend} | {where} | failed: {str(r['error'])[:100]} | | | | {ref_s} |")
                continue
            figures["scan"].append(r)
            by_shape.setdefault(shape, {})[backend] = r["fwd_bwd_ms"]
            rows.append(
                f"| {backend} | {where} | {r['fwd_bwd_ms']:.2f} | {r['min_ms']:.2f} | {r['peak_mib']:.0f} | "
                f"{r['max_rel_err_vs_fp64']:.1e} | {ref_s} |"
            )
    rows.append("")
    rows.append(
        f"Median of {reps} forward+backward passes after one warm-up (which also runs Triton's autotuning), every "
        "shape of a backend in one process; Mamba-like inputs as in `benchmarks/scan.py`. Error: output and "
        "all gradients against the `torch` backend in fp64 on the same inputs."
    )
    rows.extend(["", "Acceptance: Triton within 1.5x of mamba-ssm's kernel.", ""])
    rows.extend(["| shape | triton ms | cuda ms | ratio | result |", "|---|---|---|---|---|"])
    for shape in ACCEPTANCE["shapes"]:
        t, c = by_shape.get(shape, {}).get("triton"), by_shape.get(shape, {}).get("cuda")
        ratio = t / c if t is not None and c else None
        ok = ratio is not None and ratio <= ACCEPTANCE["ratio"]
        verdict = "not measured" if ratio is None else ("pass" if ok else "FAIL")
        rows.append(f"| {shape} | {_f(t)} | {_f(c)} | {_f(ratio)} | {verdict} |")
        figures["acceptance"].append({"shape": list(shape), "triton_ms": t, "cuda_ms": c, "ratio": ratio, "pass": ok})
    return rows


def gpu_tests(deadline: float, figures: dict) -> list[str]:
    candidates = ["tests/test_ssm.py", "tests/test_triton_scan.py", "tests/test_precision.py"]
    candidates.append("tests/test_train_device.py")
    env = dict(os.environ, MAMBA_FORECAST_TRITON_AUTOTUNE="0")  # many shapes, each once: no autotuning
    rows = ["| command | result |", "|---|---|"]
    if deadline - time.monotonic() < 30:
        rows.append("| `python -m pytest -q -m gpu` | skipped: out of time |")
        figures["skipped"].append("pytest -m gpu")
        return rows
    usable, unusable = [], []
    for path in candidates:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider", path],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        (usable if proc.returncode == 0 else unusable).append(path)
    select = ["-m", "gpu", "-p", "no:cacheprovider", "-k", "not neuralforecast and not darts"]
    shown = "python -m pytest -q -m gpu -k 'not neuralforecast and not darts' " + " ".join(usable)
    left = deadline - time.monotonic()
    if left < 30 or not usable:
        rows.append(f"| `{shown}` | skipped: {'out of time' if usable else 'no test file imports'} |")
        figures["skipped"].append("pytest -m gpu")
        return rows
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", *select, *usable],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=min(left, 300),
            check=False,
            env=env,
        )
        lines = proc.stdout.strip().splitlines()
        summary = lines[-1] if lines else f"exit {proc.returncode}"
        failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    except subprocess.TimeoutExpired:
        summary, failed = "timed out", []
    rows.append(f"| `{shown}` | {summary.strip('= ')} |")
    for line in failed[:10]:
        rows.append(f"| | {line[:160]} |")
    if unusable:
        rows.append(f"| not collected (they import host libraries) | {', '.join(unusable)} |")
    figures["tests"] = {"summary": summary.strip("= "), "failed": failed[:10], "not_collected": unusable}
    return rows


def steps(device: str, configs: list, backends: list, batch: int, reps: int, deadline: float, figures: dict):
    rows = [
        "| configuration | scan backend | batch | parameters | Adam step median ms | min ms | peak MiB | "
        "kernels / step | their GPU ms | GPU notes: official code ms / MiB (H100) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend in backends:  # every configuration with one backend (one process) before the next backend
        left = deadline - time.monotonic()
        if left < 25:
            figures["skipped"].append(f"steps {backend}")
            rows.append(f"| every configuration | {backend} | skipped: out of time | | | | | | | |")
            continue
        spec = {"what": "steps", "backend": backend, "configs": configs, "batch": batch, "reps": reps}
        result = _child(dict(spec, device=device, seconds=left), timeout=left + GRACE_S)
        for r in result.get("rows", [{"config": ", ".join(configs), "error": result.get("error")}]):
            ref = REFERENCE_MODELS.get(r["config"])
            ref_s = f"{ref[0]} / {ref[1]}" if ref else "-"
            if "error" in r:
                rows.append(f"| {r['config']} | {backend} | failed: {str(r['error'])[:100]} | | | | | | | {ref_s} |")
                continue
            figures["steps"].append(r)
            rows.append(
                f"| {r['config']} | {backend} | {r['batch']} | {r['params']:,} | {r['ms']:.1f} | {r['min_ms']:.1f} | "
                f"{r['peak_mib']:.0f} | {_f(r['kernels'], 'd')} | {_f(r['gpu_ms'])} | {ref_s} |"
            )
    rows.append("")
    rows.append(
        f"One step = zero_grad, forward, MSE loss, backward, Adam update (fused on CUDA, as the harness runs it), "
        f"fp32, median of {reps} after one warm-up, every configuration of a backend in one process; peak = "
        "torch's peak allocated memory above the model and inputs (on CPU: peak RSS growth). Kernels: what one "
        "step runs on the GPU (kernels, copies, fills) and their summed time, from torch.profiler: a step much "
        "longer than its GPU time is bound by launching, not by arithmetic. `auto` runs mamba-ssm's fused block "
        "(`mamba_inner_fn`) where it loads, else the first usable scan backend."
    )
    return rows


def _cells(device: str, model: str, precisions: list, tiny: bool, epochs, deadline: float) -> dict:
    spec = {"what": "cell", "model": model, "precisions": precisions, "epochs": epochs, "device": device}
    if tiny:
        spec.update(max_train_batches=2, overrides=TINY, epochs=1)
    left = deadline - time.monotonic()
    if left < 30:
        return {"error": "skipped: out of time"}
    return _child(spec, timeout=left + GRACE_S)


def cell(device: str, tiny: bool, deadline: float, figures: dict) -> list[str]:
    rows = [
        "| model | data | precision | seconds (load, train, test) | epochs (best) | s / epoch after the first | "
        "test s | test MSE | peak MiB | official pipeline (H100) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    result = _cells(device, "SMamba", ["fp32"], tiny, None, deadline)
    ref = f"{REFERENCE_CELL[0]:.0f} s, MSE {REFERENCE_CELL[1]}"
    for r in result.get("rows", []):
        figures["cells"].append(r)
        rows.append(
            f"| {r['model']} | {r['dataset']}-{r['horizon']} | {r['precision']} | {r['seconds']:.1f} | "
            f"{r['epochs_run']} ({r['best_epoch']}) | {r['steady_epoch_sec']:.2f} | {r['test_sec']:.2f} | "
            f"{r['mse']:.4f} | {_f(r['peak_mib'], '.0f')} | {ref} |"
        )
    if "error" in result:
        figures["skipped"].append("cell SMamba ETTh1-96")
        rows.append(f"| SMamba | ETTh1-96 | fp32 | {str(result['error'])[:120]} | | | | | | {ref} |")
    rows.append("")
    rows.append(
        "The harness's cell as `mamba-forecast bench --model SMamba --dataset ETTh1 --horizon 96 --preset official "
        "--protocol official` runs it (seed 2023, up to 10 epochs, patience 3, test at batch 256), timed in its "
        "process from reading the bundled ETTh1 to the test score."
        + (" Dry run: a small model, two batches, one epoch." if tiny else "")
    )
    return rows


def bf16(device: str, tiny: bool, epochs: int, deadline: float, figures: dict) -> list[str]:
    ran = epochs
    rows = [
        "| model | fp32 s / epoch | bf16 s / epoch | speed-up | fp32 peak MiB | bf16 peak MiB | fp32 test MSE | "
        "bf16 test MSE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in MODELS:
        result = _cells(device, model, ["fp32", "bf16-mixed"], tiny, epochs, deadline)
        runs = {r["precision"]: r for r in result.get("rows", [])}
        if len(runs) < 2:
            figures["skipped"].append(f"bf16 {model}")
            rows.append(f"| {model} | {str(result.get('error', 'incomplete'))[:120]} | | | | | | |")
            continue
        a, b = runs["fp32"], runs["bf16-mixed"]
        ran = a["epochs_run"]
        speedup = a["steady_epoch_sec"] / b["steady_epoch_sec"]
        figures["bf16"].append(
            {"model": model, "mse_fp32": a["mse"], "mse_bf16": b["mse"], "speedup": speedup}
            | {"sec_per_epoch_fp32": a["steady_epoch_sec"], "sec_per_epoch_bf16": b["steady_epoch_sec"]}
            | {"peak_mib_fp32": a["peak_mib"], "peak_mib_bf16": b["peak_mib"], "epochs": a["epochs_run"]}
        )
        rows.append(
            f"| {model} | {a['steady_epoch_sec']:.2f} | {b['steady_epoch_sec']:.2f} | {speedup:.2f} | "
            f"{_f(a['peak_mib'], '.0f')} | {_f(b['peak_mib'], '.0f')} | {a['mse']:.4f} | {b['mse']:.4f} |"
        )
    rows.append("")
    rows.append(
        f"ETTh1, horizon 96, each model's official preset (TSM2 at input 512) and protocol, {ran} epoch(s) "
        "each (the same budget for both precisions, not the converged score), fp32 then bf16-mixed in one "
        "process; speed from the epochs after the first (compiling, autotuning); bf16-mixed: the forward passes "
        "under bf16 autocast, the loss and the scan's state in fp32."
        + (" Dry run: small models, two batches, input 96." if tiny else "")
    )
    return rows


# ------------------------------------------------------------------------------------------------ report


def _save(report: list[str], figures: dict, paths: list[str]) -> None:
    for path in paths:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            if path.endswith(".json"):
                json.dump(figures, f, indent=1)
                f.write("\n")
            else:
                f.write("\n".join(report) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda, or cpu for a dry run (tiny shapes)")
    parser.add_argument("--out", default=None, help="also write the markdown report here")
    parser.add_argument("--json", default=None, help="write the figures here as JSON (several paths: comma-separated)")
    parser.add_argument("--budget", type=float, default=float(os.environ.get("BUDGET_S", 520)))
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--bf16-epochs", type=int, default=int(os.environ.get("BF16_EPOCHS", 2)))
    args = parser.parse_args(argv)
    start = time.monotonic()

    def deadline(fraction: float) -> float:
        return start + fraction * args.budget

    # This process runs the parity section, on many shapes once each: Triton's fixed block sizes (the variable is
    # read when triton_scan is imported, just below). The measuring processes started later autotune.
    saved = os.environ.get("MAMBA_FORECAST_TRITON_AUTOTUNE")
    os.environ["MAMBA_FORECAST_TRITON_AUTOTUNE"] = "0"
    import torch

    from mamba_forecast.ssm import cuda_scan_available, triton_scan_available
    from mamba_forecast.ssm.scan import _triton_module

    _triton_module()
    if saved is None:
        os.environ.pop("MAMBA_FORECAST_TRITON_AUTOTUNE")
    else:
        os.environ["MAMBA_FORECAST_TRITON_AUTOTUNE"] = saved

    tiny = args.device != "cuda"
    if not tiny and not torch.cuda.is_available():
        parser.error("no CUDA device; use --device cpu for a dry run")
    dev = torch.device(args.device)
    have = {"cuda": not tiny and cuda_scan_available(), "triton": triton_scan_available(dev), "torch": True}
    scan_backends = [b for b in ("cuda", "triton", "torch") if have[b]]
    missing = [b for b in ("cuda", "triton") if not have[b]]
    name = torch.cuda.get_device_name() if not tiny else machine("cpu")
    figures: dict = {"device": name, "dry_run": tiny, "date": datetime.date.today().isoformat()}
    figures.update(versions=_versions(), python=platform.python_version(), budget_s=args.budget)
    for key in ("scan", "steps", "cells", "bf16", "parity", "acceptance", "skipped"):
        figures[key] = []
    paths = [p for p in [args.out, *(args.json.split(",") if args.json else [])] if p]

    report = [f"### GPU check ({'dry run on CPU, tiny shapes' if tiny else machine('cuda')})", ""]
    report.append(
        f"{figures['date']}, `bash benchmarks/gpu_check.sh`{' with DEVICE=cpu' if tiny else ''}; "
        f"{figures['versions']}; Python {figures['python']}. Scan backends here: {', '.join(scan_backends)}"
        f"{'; not available: ' + ', '.join(missing) if missing else ''}."
    )
    print("\n".join(report), flush=True)

    def section(title, rows):
        report.extend(["", f"#### {title}", "", *rows])
        figures["took_s"] = round(time.monotonic() - start, 1)
        _save(report, figures, paths)
        print("\n".join(["", f"#### {title}", "", *rows]), flush=True)

    section(
        "Backend parity (against the fp64 sequential reference)",
        parity(args.device, scan_backends, tiny, deadline(0.14), figures),
    )
    shapes = [(2, 9, 8, 4)] if tiny else SCAN_SHAPES
    reps = 2 if tiny else args.reps
    section(
        "Selective scan, forward + backward",
        scan_speed(args.device, scan_backends, shapes, reps, deadline(0.28), figures),
    )
    configs, model_backends, batch = STEP_CONFIGS, ["auto"] + [b for b in ("triton", "torch") if have[b]], 0
    if tiny:
        configs, model_backends, batch = ["smamba-etth1"], ["auto"], 2
    section(
        "Training steps (official configurations)",
        steps(args.device, configs, model_backends, batch, 1 if tiny else args.reps, deadline(0.46), figures),
    )
    section("One benchmark cell end to end", cell(args.device, tiny, deadline(0.58), figures))
    section("bf16-mixed against fp32", bf16(args.device, tiny, args.bf16_epochs, deadline(0.82), figures))
    section("GPU tests", gpu_tests(deadline(1.0), figures))
    took = time.monotonic() - start
    report.append(f"\nThe whole check took {took:.0f} s.")
    figures["took_s"] = round(took, 1)
    _save(report, figures, paths)
    print(f"\nThe whole check took {took:.0f} s.")


if __name__ == "__main__":
    main()
