"""Forward+backward time and peak memory of the selective scan, per backend and shape.

    python benchmarks/scan.py                      # every available backend, the four standard shapes
    python benchmarks/scan.py --backends torch --shapes 32,321,512,16 --reps 7
    python benchmarks/scan.py --device cpu --backends torch,torch-adaptive   # the CPU threading off / on
    python benchmarks/scan.py --device cpu --backends torch --roots /tmp/before,. --rounds 5   # two copies

Shapes are (batch, length, channels, d_state) with Mamba-like inputs: delta = softplus(x + dt_bias) with the
dt bias of a freshly initialised Mamba, A = -(1..d_state), D, z and delta_bias given. Each (backend, shape)
runs in its own subprocess so the peak memory is that run's alone: on CUDA torch's peak allocated bytes; on
CPU the growth of the process's peak RSS over its RSS once the inputs exist. Times are medians after one
warm-up. Prints a markdown table. ``torch-adaptive`` is the torch backend with its opt-in load-adaptive CPU
threading (``mamba_forecast.ssm.set_cpu_scan_threading(True)``); ``torch`` is the default, without it.

``--roots``: package copies to import (each put first on ``sys.path``; an export of the commit before a change,
say), run one after the other per (shape, backend) for ``--rounds`` rounds, so that a busy machine slows every
copy alike. The table then gives each copy's median over rounds of its per-round medians, and the ratio of
each copy's time to the first copy's (median of the per-round ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from _common import machine, run_child, scan_inputs, time_steps, use_package_copy

SHAPES = [(32, 7, 128, 16), (32, 21, 512, 16), (32, 321, 512, 16), (16, 862, 128, 16)]


def _one(
    backend: str, shape: tuple[int, int, int, int], reps: int, device: str, threads: int | None, root: str | None
) -> dict:
    if root:
        use_package_copy(root)
    import torch

    from mamba_forecast.ssm import selective_scan, set_cpu_scan_threading

    if threads:
        torch.set_num_threads(threads)
    if backend == "torch-adaptive":
        set_cpu_scan_threading(True)
        backend = "torch"
    batch, length, channels, d_state = shape
    leaves = scan_inputs(batch, length, channels, d_state, device)
    u, delta, A, B, C, D, z, bias = leaves

    def step():
        out = selective_scan(u, delta, A, B, C, D, z=z, delta_bias=bias, delta_softplus=True, backend=backend)
        out.backward(torch.ones_like(out))
        for t in leaves:
            t.grad = None
        if device == "cuda":
            torch.cuda.synchronize()

    return time_steps(step, reps, device)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--backends",
        default=None,
        help="comma-separated, of cuda, triton, torch, torch-adaptive, reference; default: every "
        "available one but torch-adaptive",
    )
    parser.add_argument("--shapes", default=None, help="batch,length,channels,d_state[;...]")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--reference-reps", type=int, default=2, help="reps for the slow sequential oracle")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--roots", default=None, help="comma-separated package copies to compare (see above)")
    parser.add_argument("--rounds", type=int, default=1, help="with --roots: interleaved rounds per copy")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        spec = json.loads(args.child)
        result = _one(
            spec["backend"], tuple(spec["shape"]), spec["reps"], spec["device"], spec["threads"], spec.get("root")
        )
        print(json.dumps(result))
        return

    import torch

    from mamba_forecast.ssm import cuda_scan_available, triton_scan_available

    if args.threads:
        torch.set_num_threads(args.threads)  # for the machine line; each child sets its own
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.backends:
        backends = args.backends.split(",")
    else:
        backends = (
            (["cuda"] if device == "cuda" and cuda_scan_available() else [])
            + (["triton"] if device == "cuda" and triton_scan_available(device) else [])
            + ["torch", "reference"]
        )
    shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes.split(";")] if args.shapes else SHAPES
    if args.roots:
        _compare_roots(args, device, backends, shapes)
        return

    print(f"machine: {machine(device)}; load average before: {os.getloadavg()[0]:.2f}")
    print("| backend | shape (batch, length, channels, d_state) | fwd+bwd median ms | min ms | peak MiB |")
    print("|---|---|---|---|---|")
    for shape in shapes:
        for backend in backends:
            reps = args.reference_reps if backend == "reference" else args.reps
            r = run_child(
                __file__, {"backend": backend, "shape": shape, "reps": reps, "device": device, "threads": args.threads}
            )
            if "error" in r:
                print(f"| {backend} | {shape} | failed: {r['error']} | | |")
                continue
            print(f"| {backend} | {shape} | {r['ms']:.1f} | {r['min_ms']:.1f} | {r['peak_mb']:.0f} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def _compare_roots(args, device: str, backends: list[str], shapes: list) -> None:
    """``--roots``: every copy on each (shape, backend), interleaved round by round; medians and ratios."""
    roots = args.roots.split(",")
    print(f"machine: {machine(device)}; load average before: {os.getloadavg()[0]:.2f}; {args.rounds} round(s)")
    print(
        "| backend | shape (batch, length, channels, d_state) | "
        + " | ".join(f"{r} ms" for r in roots)
        + " | "
        + " | ".join(f"{r} / {roots[0]}" for r in roots[1:])
        + " |"
    )
    print("|---|---|" + "---|" * (2 * len(roots) - 1))
    for shape in shapes:
        for backend in backends:
            times: dict[str, list[float]] = {r: [] for r in roots}
            for _ in range(args.rounds):
                for root in roots:
                    spec = {
                        "backend": backend,
                        "shape": shape,
                        "reps": args.reference_reps if backend == "reference" else args.reps,
                        "device": device,
                        "threads": args.threads,
                        "root": root,
                    }
                    r = run_child(__file__, spec)
                    if "error" in r:
                        sys.exit(f"{backend} {shape} in {root} failed: {r['error']}")
                    times[root].append(r["ms"])
            medians = [statistics.median(times[r]) for r in roots]
            first = times[roots[0]]
            ratios = [statistics.median(a / b for a, b in zip(times[r], first, strict=True)) for r in roots[1:]]
            print(
                f"| {backend} | {shape} | "
                + " | ".join(f"{m:.1f}" for m in medians)
                + " | "
                + " | ".join(f"{q:.3f}" for q in ratios)
                + " |",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
