"""GPU evidence in one run: backend parity, scan speed, model training steps, and the GPU tests.

    python benchmarks/gpu_check.py --device cuda --out /tmp/gpu_check.md      # via benchmarks/gpu_check.sh
    TRITON_INTERPRET=1 python benchmarks/gpu_check.py --device cpu            # dry run: tiny shapes

Sections (each a markdown table; the whole report goes to stdout and to ``--out``):

1. Parity: each scan backend (``cuda`` = mamba-ssm's kernel, ``triton``, ``torch``) against the sequential
   reference in fp64 on the same inputs, on fuzzed shapes, fp32 and bf16 inputs: the largest relative error of
   the output, the last state and the gradients of u, delta, A, B, C, D, z, delta_bias. For ``cuda`` the loss
   leaves the last state out (mamba-ssm ignores its gradient).
2. Scan speed: forward+backward of ``selective_scan`` (``benchmarks/scan.py``'s measurement) at the GPU notes'
   shapes, (batch, scanned length, channels) with d_state 16, median and peak memory, next to the notes'
   H100 figure for mamba-ssm's scan.
3. GPU tests: ``pytest -m gpu`` over the test files that import with torch alone.
4. Models: one training step with an Adam update (``benchmarks/models.py --adam``) for the official
   configurations, per scan backend (``auto`` runs mamba-ssm's fused block where it can), median and peak
   memory, next to the notes' figures for the official code.

A time budget (``--budget``, seconds) keeps the run inside one 10-minute call: what does not fit is listed
as skipped.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import subprocess
import sys
import time

from _common import machine, run_child

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The GPU notes' figures (H100, fp32): mamba-ssm's scan, fwd+bwd, d_state 16, keyed by (batch, length, channels)
REFERENCE_SCAN_MS = {(32, 7, 128): 0.47, (32, 21, 512): 0.51, (32, 321, 512): 0.92, (16, 862, 512): 1.03}
# ... and the official research code's Adam step (ms, peak MiB)
REFERENCE_MODELS = {
    "smamba-etth1": (12.7, 98),
    "smamba-ecl": (15.7, 636),
    "smamba-traffic": (37.7, 1922),
    "smamba-pems07": (19.2, 1076),
    "attentionmamba-pems07": (18.4, 1111),
    "attentionmamba-ecl": (9.3, 516),
}
GRAD_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def _versions() -> str:
    parts = []
    for name in ("torch", "triton", "mamba_ssm", "causal_conv1d"):
        try:
            mod = importlib.import_module(name)
            parts.append(f"{name} {getattr(mod, '__version__', '?')}")
        except Exception as exc:  # noqa: BLE001 - report whatever stops the import
            parts.append(f"{name} absent ({type(exc).__name__})")
    return ", ".join(parts)


# ------------------------------------------------------------------------------------------------ parity


def _fuzzed_shapes(n: int, tiny: bool, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)

    def pick(lo, hi):
        return int(torch.randint(lo, hi + 1, (1,), generator=g))

    fixed = [(1, 3, 1, 1), (2, 5, 37, 16)] if tiny else [(1, 3, 1, 1), (4, 64, 321, 16), (1, 8, 2048, 64)]
    shapes = list(fixed)
    while len(shapes) < n:
        if tiny:
            shapes.append((pick(1, 2), pick(1, 6), pick(1, 40), pick(1, 17)))
        else:
            shapes.append((pick(1, 4), pick(1, 96), pick(1, 400), pick(1, 64)))
    flags = []
    for i in range(len(shapes)):
        bits = [bool(int(torch.randint(0, 2, (1,), generator=g))) for _ in range(4)] if i else [True] * 4
        flags.append(dict(zip(("use_d", "use_z", "use_bias", "softplus"), bits, strict=True)))
    return list(zip(shapes, flags, strict=True))


def _inputs(shape, dtype, device, seed):
    import torch

    batch, channels, length, d_state = shape
    g = torch.Generator().manual_seed(seed)

    def rnd(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64)

    x = {
        "u": rnd(batch, channels, length),
        "delta": torch.rand(batch, channels, length, generator=g, dtype=torch.float64) * 0.5,
        "A": -torch.rand(channels, d_state, generator=g, dtype=torch.float64) * 2 - 0.05,
        "B": rnd(batch, d_state, length),
        "C": rnd(batch, d_state, length),
        "D": rnd(channels),
        "z": rnd(batch, channels, length),
        "delta_bias": rnd(channels).abs() * 0.3,
    }
    # activations in dtype; A, D, delta_bias are fp32 parameters as in the Mamba block
    return {k: (v.float() if k in ("A", "D", "delta_bias") else v.to(dtype)).to(device) for k, v in x.items()}


def _run(selective_scan, x, backend, flags, with_last, cot_dtype):
    import torch

    leaves = {k: v.clone().requires_grad_() for k, v in x.items()}
    out, last = selective_scan(
        leaves["u"],
        leaves["delta"],
        leaves["A"],
        leaves["B"],
        leaves["C"],
        D=leaves["D"] if flags["use_d"] else None,
        z=leaves["z"] if flags["use_z"] else None,
        delta_bias=leaves["delta_bias"] if flags["use_bias"] else None,
        delta_softplus=flags["softplus"],
        return_last_state=True,
        backend=backend,
    )
    g = torch.Generator().manual_seed(1)
    w = torch.randn(out.shape, generator=g, dtype=torch.float64).to(cot_dtype).double().to(out.device)
    loss = (out.double() * w).sum()
    if with_last:
        loss = loss + (last.double() * torch.randn(last.shape, generator=g, dtype=torch.float64).to(out.device)).sum()
    loss.backward()
    return out.detach(), last.detach(), {k: leaves[k].grad for k in GRAD_NAMES if leaves[k].grad is not None}


def _rel(a, b):
    """Relative error (norm ratio); a reference that is zero (A's gradient at length 1) is compared in absolute
    terms instead of dividing by a zero norm."""
    diff, ref = (a.double() - b.double()).norm(), b.double().norm()
    return float(diff if ref < 1e-12 else diff / ref)


def parity(device: str, backends: list[str], tiny: bool, deadline: float) -> list[str]:
    import torch

    from mamba_forecast.ssm import selective_scan

    rows = [
        "| backend | inputs | cases | max rel. error: output | last state | gradients | worst gradient | "
        "tolerance | result |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    cases = _fuzzed_shapes(4 if tiny else 8, tiny)
    for backend in backends:
        for dtype in (torch.float32, torch.bfloat16):
            if time.monotonic() > deadline:
                rows.append(f"| {backend} | {str(dtype)[6:]} | skipped: out of time | | | | | | |")
                continue
            worst = {"out": 0.0, "last": 0.0, "grad": 0.0}
            worst_grad, failures, ran = "-", [], 0
            for i, (shape, flags) in enumerate(cases):
                x = _inputs(shape, dtype, device, seed=i)
                try:
                    out, last, grads = _run(selective_scan, x, backend, flags, backend != "cuda", dtype)
                except Exception as exc:  # noqa: BLE001 - a crash is a result here
                    failures.append(f"{shape}: {type(exc).__name__}: {str(exc)[:80]}")
                    continue
                exact = {k: v.double() for k, v in x.items()}
                r_out, r_last, r_grads = _run(selective_scan, exact, "reference", flags, backend != "cuda", dtype)
                ran += 1
                worst["out"] = max(worst["out"], _rel(out, r_out))
                worst["last"] = max(worst["last"], _rel(last, r_last))
                for k, ref in r_grads.items():
                    if k not in grads:
                        failures.append(f"{shape}: no gradient for {k}")
                        continue
                    err = _rel(grads[k], ref)
                    if err > worst["grad"]:
                        worst["grad"], worst_grad = err, f"{k} {shape}"
            tol = 1e-4 if dtype == torch.float32 else 2e-2
            ok = not failures and ran and max(worst.values()) < tol
            result = "pass" if ok else "FAIL" + (f" ({'; '.join(failures[:2])})" if failures else "")
            rows.append(
                f"| {backend} | {str(dtype)[6:]} | {ran} | {worst['out']:.1e} | {worst['last']:.1e} | "
                f"{worst['grad']:.1e} | {worst_grad} | {tol:.0e} | {result} |"
            )
    shapes = ", ".join(str(s) for s, _ in cases)
    rows.append("")
    rows.append(
        f"Shapes (batch, channels, length, d_state): {shapes}; D, z, delta_bias and the softplus switched "
        "on and off at random. Reference: the sequential recurrence in fp64 on the same (rounded) inputs; "
        "bf16 rows: bf16 activations with fp32 A, D, delta_bias, as in the Mamba block (their outputs and "
        "activation gradients are rounded to bf16 once). `cuda`: the loss leaves the last state out."
    )
    return rows


# ------------------------------------------------------------------------------------------------ speed


def scan_speed(device: str, backends: list[str], shapes, reps: int, deadline: float) -> list[str]:
    rows = [
        "| backend | shape (batch, length, channels), d_state | fwd+bwd median ms | min ms | peak MiB | "
        "GPU notes: mamba-ssm scan (H100) |",
        "|---|---|---|---|---|---|",
    ]
    script = os.path.join(HERE, "scan.py")
    for shape in shapes:
        ref = REFERENCE_SCAN_MS.get(tuple(shape[:3]))
        ref_s = f"{ref} ms" if ref else "-"
        for backend in backends:
            left = deadline - time.monotonic()
            if left < 20:
                rows.append(f"| {backend} | {tuple(shape[:3])}, {shape[3]} | skipped: out of time | | | {ref_s} |")
                continue
            r = run_child(
                script,
                {"backend": backend, "shape": list(shape), "reps": reps, "device": device},
                timeout=min(left, 180),
            )
            if "error" in r:
                rows.append(
                    f"| {backend} | {tuple(shape[:3])}, {shape[3]} | failed: {r['error'][:100]} | | | {ref_s} |"
                )
            else:
                rows.append(
                    f"| {backend} | {tuple(shape[:3])}, {shape[3]} | {r['ms']:.2f} | {r['min_ms']:.2f} | "
                    f"{r['peak_mb']:.0f} | {ref_s} |"
                )
    rows.append("")
    rows.append(
        f"Median of {reps} forward+backward passes after one warm-up, each (backend, shape) in its own "
        "process; Mamba-like inputs as in `benchmarks/scan.py`."
    )
    return rows


def models(device: str, configs: list[str], backends: list[str], batch: int, reps: int, deadline: float) -> list[str]:
    rows = [
        "| configuration | scan backend | batch | parameters | Adam step median ms | min ms | peak MiB | "
        "GPU notes: official code ms / MiB (H100) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    script = os.path.join(HERE, "models.py")
    for backend in backends:  # every configuration with one backend before the next backend
        for name in configs:
            ref = REFERENCE_MODELS.get(name)
            ref_s = f"{ref[0]} / {ref[1]}" if ref else "-"
            left = deadline - time.monotonic()
            if left < 25:
                rows.append(f"| {name} | {backend} | skipped: out of time | | | | | {ref_s} |")
                continue
            spec = {
                "name": name,
                "batch": batch,
                "reps": reps,
                "device": device,
                "scan_backend": backend,
                "threads": 0,
                "adam": True,
            }
            r = run_child(script, spec, timeout=min(left, 150))
            if "error" in r:
                rows.append(f"| {name} | {backend} | failed: {r['error'][:100]} | | | | | {ref_s} |")
            else:
                rows.append(
                    f"| {name} | {backend} | {r['batch']} | {r['params']:,} | {r['ms']:.1f} | "
                    f"{r['min_ms']:.1f} | {r['peak_mb']:.0f} | {ref_s} |"
                )
    rows.append("")
    rows.append(
        f"One step = forward, MSE loss, backward, Adam update (`benchmarks/models.py --adam`), fp32, median "
        f"of {reps} after one warm-up, each cell in its own process; peak = torch's peak allocated memory "
        "above the model and inputs (on CPU: peak RSS growth). `auto` runs mamba-ssm's fused block "
        "(`mamba_inner_fn`) where it loads, else the first usable scan backend."
    )
    return rows


def gpu_tests(deadline: float) -> list[str]:
    candidates = ["tests/test_ssm.py", "tests/test_triton_scan.py", "tests/test_precision.py"]
    usable, unusable = [], []
    for path in candidates:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider", path],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        (usable if proc.returncode == 0 else unusable).append(path)
    rows = ["| command | result |", "|---|---|"]
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-m",
        "gpu",
        "-p",
        "no:cacheprovider",
        "-k",
        "not neuralforecast and not darts",
        *usable,
    ]
    left = deadline - time.monotonic()
    shown = "python -m pytest -q -m gpu -k 'not neuralforecast and not darts' " + " ".join(usable)
    if left < 30 or not usable:
        rows.append(f"| `{shown}` | skipped: {'out of time' if usable else 'no test file imports'} |")
        return rows
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=min(left, 300), check=False)
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
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda, or cpu for a dry run (tiny shapes)")
    parser.add_argument("--out", default=None, help="also write the report here")
    parser.add_argument("--budget", type=float, default=float(os.environ.get("BUDGET_S", 540)))
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args(argv)
    start = time.monotonic()
    deadline = start + args.budget

    import torch

    from mamba_forecast.ssm import cuda_scan_available, triton_scan_available

    tiny = args.device != "cuda"
    if not tiny and not torch.cuda.is_available():
        parser.error("no CUDA device; use --device cpu for a dry run")
    dev = torch.device(args.device)
    have = {"cuda": not tiny and cuda_scan_available(), "triton": triton_scan_available(dev), "torch": True}
    scan_backends = [b for b in ("cuda", "triton", "torch") if have[b]]
    missing = [b for b in ("cuda", "triton") if not have[b]]

    report = [f"### GPU check ({'dry run on CPU, tiny shapes' if tiny else machine('cuda')})", ""]
    report.append(
        f"{datetime.date.today().isoformat()}, `bash benchmarks/gpu_check.sh`"
        f"{' with DEVICE=cpu' if tiny else ''}; {_versions()}; Python {platform.python_version()}. "
        f"Scan backends here: {', '.join(scan_backends)}"
        f"{'; not available: ' + ', '.join(missing) if missing else ''}."
    )

    def section(title, rows):
        report.extend(["", f"#### {title}", "", *rows])
        print("\n".join(["", f"#### {title}", "", *rows]), flush=True)

    print("\n".join(report), flush=True)
    section(
        "Backend parity (against the fp64 sequential reference)",
        parity(args.device, scan_backends, tiny, start + 0.3 * args.budget),
    )
    shapes = [(2, 9, 8, 4)] if tiny else [(32, 7, 128, 16), (32, 21, 512, 16), (32, 321, 512, 16), (16, 862, 512, 16)]
    section(
        "Selective scan, forward + backward",
        scan_speed(args.device, scan_backends, shapes, 2 if tiny else args.reps, start + 0.5 * args.budget),
    )
    section("GPU tests", gpu_tests(start + 0.7 * args.budget))
    if tiny:
        configs, model_backends, batch, reps = ["smamba-etth1"], ["auto"], 2, 1
    else:
        configs = [
            "smamba-etth1",
            "smamba-ecl",
            "smamba-traffic",
            "smamba-pems07",
            "attentionmamba-pems07",
            "attentionmamba-ecl",
            "fmamba-ecl",
            "tsm2-etth1",
        ]
        model_backends = ["auto"] + [b for b in ("triton", "torch") if have[b]]
        batch, reps = 0, args.reps
    section("Models: one training step", models(args.device, configs, model_backends, batch, reps, deadline))
    took = time.monotonic() - start
    footer = f"\nThe whole check took {took:.0f} s."
    report.append(footer)
    print(footer)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
