"""How much the selective scan slows down when another process competes for the CPU, beside mambapy.

    pip install mambapy
    python benchmarks/busy_cpu.py                                  # (32, 321, 512, 16), 3 reps, 2 rounds
    python benchmarks/busy_cpu.py --shape 32,321,512,16 --reps 5 --rounds 2 --competitors 1

Times forward+backward of three implementations of the same selective scan on the same inputs (Mamba-like,
as in ``benchmarks/scan.py``: delta = softplus(x + dt_bias), A = -(1..d_state), D, z and delta_bias given,
gradients of every input):

* ``torch``: this package's torch backend as it ships (the default): the whole batch in one loop whose every
  op runs on all of torch's threads;
* ``torch-adaptive``: the same backend with its opt-in load-adaptive threading
  (``mamba_forecast.ssm.cpu_scan_threading()``): on the CPU, blocks of rows scanned by parallel workers with
  one intra-op thread each (2 cores), the other ops on no more threads than there are free cores;
* ``mambapy``: mambapy's CPU path (``mambapy.mamba.MambaBlock.selective_scan``: ``exp(delta A)``,
  ``delta B x``, its Blelloch ``pscan`` autograd Function, ``<h, C>``, ``D x``) followed by the same
  ``silu(z)`` gate, built here from mambapy's ``pscan`` on inputs of the same values in its layouts.

A run alternates phases: "idle" (whatever else the machine is running) and "busy" (the same plus
``--competitors`` single-threaded CPU-burning subprocesses, ``python -c 'while True: pass'``, started by
this script before the phase and killed after it). The competitors start in a session of their own, as
another job would (with ``--same-session``, in this script's session). That matters on Linux with
``sched_autogroup_enabled=1`` (printed): the scheduler then shares the CPU fairly between sessions first and
between the threads of a session second, so a competitor inside our session takes half of a single-threaded
benchmark's share, but only a third of a two-threaded one's, whatever the code does, once other sessions
keep the cores busy. Inside a phase the implementations are interleaved rep by
rep, so slow drifts of the background load hit them alike. The load average and the instantaneous count of
runnable tasks (``/proc/loadavg``) are printed at the start and end of every phase. Prints medians per
implementation and phase, and the slowdown factor busy / idle. Timing targets are checked here, never in
the test suite.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time

from _common import machine, scan_inputs

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        fields = f.read().split()
    return f"load {fields[0]} {fields[1]} {fields[2]}, runnable now {fields[3]}"


def _autogroup() -> str:
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            return f"sched_autogroup_enabled={f.read().strip()}"
    except OSError:
        return "no sched_autogroup"


def _steps(leaves):
    """name -> a function running one forward+backward and clearing the gradients."""
    import torch
    import torch.nn.functional as F

    from mamba_forecast.ssm import cpu_scan_threading, selective_scan

    u, delta, A, B, C, D, z, bias = leaves

    def clear():
        for t in leaves:
            t.grad = None

    def ours():
        out = selective_scan(u, delta, A, B, C, D, z=z, delta_bias=bias, delta_softplus=True, backend="torch")
        out.backward(torch.ones_like(out))
        clear()

    def adaptive():
        with cpu_scan_threading():
            ours()

    steps = {"torch": ours, "torch-adaptive": adaptive}
    try:
        from mambapy.pscan import pscan
    except ImportError:
        print("mambapy is not installed (pip install mambapy): timing this package's scan only")
        return steps

    def mambapy():
        # mambapy's layouts: x, delta [b, l, ed]; B, C [b, l, n]; A [ed, n]
        x = u.transpose(1, 2)
        dl = F.softplus(delta + bias[:, None]).transpose(1, 2)
        Bm, Cm = B.transpose(1, 2), C.transpose(1, 2)
        delta_a = torch.exp(dl.unsqueeze(-1) * A)
        bx = dl.unsqueeze(-1) * Bm.unsqueeze(2) * x.unsqueeze(-1)
        hs = pscan(delta_a, bx)
        y = (hs @ Cm.unsqueeze(-1)).squeeze(3) + D * x
        out = y.transpose(1, 2) * F.silu(z)
        out.backward(torch.ones_like(out))
        clear()

    steps["mambapy"] = mambapy
    return steps


def _check_same_scan(leaves, steps) -> float:
    """Largest relative difference of mambapy's output from ours (they must compute the same scan)."""
    import torch
    import torch.nn.functional as F
    from mambapy.pscan import pscan

    from mamba_forecast.ssm import selective_scan

    u, delta, A, B, C, D, z, bias = (t.detach()[:2] if t.dim() == 3 else t.detach() for t in leaves)
    ours = selective_scan(u, delta, A, B, C, D, z=z, delta_bias=bias, delta_softplus=True, backend="torch")
    dl = F.softplus(delta + bias[:, None]).transpose(1, 2)
    bx = dl.unsqueeze(-1) * B.transpose(1, 2).unsqueeze(2) * u.transpose(1, 2).unsqueeze(-1)
    hs = pscan(torch.exp(dl.unsqueeze(-1) * A), bx)
    y = (hs @ C.transpose(1, 2).unsqueeze(-1)).squeeze(3) + D * u.transpose(1, 2)
    theirs = y.transpose(1, 2) * F.silu(z)
    return float((ours - theirs).abs().max() / theirs.abs().max())


def _per_op_ms(shape, threads: int, seconds: float = 1.0) -> float:
    """Median ms of one elementwise multiply on a fp32 tensor of ``shape`` at ``threads`` intra-op threads."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = torch.randn(*shape)
        out = torch.empty_like(x)
        torch.mul(x, x, out=out)
        times, end = [], time.perf_counter() + seconds
        while time.perf_counter() < end or len(times) < 3:
            start = time.perf_counter()
            torch.mul(x, x, out=out)
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times)
    finally:
        torch.set_num_threads(old)


def _per_op_report(shape, threads: int) -> str:
    """One small op (a per-chunk work tensor of the torch scan) and one big op (a mambapy-sized tensor)."""
    batch, length, channels, d_state = shape
    small = (batch, 4, d_state, channels)  # [b, T, n, c] with the chunk of 4 this shape gets
    big = (batch, 1 << math.ceil(math.log2(length)), channels, d_state)
    parts = []
    for name, op_shape in (("small", small), ("big", big)):
        for t in sorted({1, threads}):
            parts.append(f"{name} {op_shape} at {t} thread(s): {_per_op_ms(op_shape, t):.2f} ms")
    return "; ".join(parts)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="32,321,512,16", help="batch,length,channels,d_state")
    parser.add_argument("--reps", type=int, default=3, help="timed reps per implementation and phase")
    parser.add_argument("--rounds", type=int, default=2, help="idle/busy phase pairs")
    parser.add_argument("--competitors", type=int, default=1, help="CPU-burning processes in the busy phases")
    parser.add_argument(
        "--same-session",
        action="store_true",
        help="start the competitors in this process's session (default: a session of their own)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument(
        "--per-op",
        action="store_true",
        help="also time one small and one big elementwise op at 1 and N threads in every phase",
    )
    parser.add_argument("--impls", default=None, help="comma-separated subset of torch,torch-adaptive,mambapy")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    shape = tuple(int(v) for v in args.shape.split(","))
    leaves = scan_inputs(*shape)
    steps = _steps(leaves)
    if args.impls:
        steps = {name: steps[name] for name in args.impls.split(",")}
    print(f"machine: {machine('cpu')}, {len(os.sched_getaffinity(0))} cores usable")
    print(f"shape (batch, length, channels, d_state) = {shape}, fwd+bwd, {args.reps} reps x {args.rounds} rounds")
    print(
        f"busy phases: {args.competitors} competing process(es) in "
        f"{'this session' if args.same_session else 'a session of their own'}; {_autogroup()}"
    )
    if "mambapy" in steps:
        diff = _check_same_scan(leaves, steps)
        print(f"same scan: max relative difference of the outputs, ours vs mambapy = {diff:.1e}")
    for step in steps.values():  # warm-up
        step()

    times = {(name, phase): [] for name in steps for phase in ("idle", "busy")}
    for r in range(args.rounds):
        for phase in ("idle", "busy"):
            procs = []
            if phase == "busy":
                procs = [
                    subprocess.Popen(
                        [sys.executable, "-c", "while True: pass"], start_new_session=not args.same_session
                    )
                    for _ in range(args.competitors)
                ]
                time.sleep(1.0)
            print(f"round {r + 1} {phase}: start {_loadavg()}", flush=True)
            try:
                if args.per_op:
                    print(f"  per op: {_per_op_report(shape, torch.get_num_threads())}", flush=True)
                for _ in range(args.reps):
                    for name, step in steps.items():
                        start = time.perf_counter()
                        step()
                        times[name, phase].append(time.perf_counter() - start)
                        print(f"  {name}: {times[name, phase][-1]:.2f} s", flush=True)
            finally:
                print(f"round {r + 1} {phase}: end   {_loadavg()}", flush=True)
                for p in procs:
                    p.kill()
                    p.wait()
            time.sleep(1.0)

    print()
    print("| implementation | idle median s | busy median s | slowdown busy/idle | idle runs s | busy runs s |")
    print("|---|---|---|---|---|---|")
    for name in steps:
        idle, busy = statistics.median(times[name, "idle"]), statistics.median(times[name, "busy"])
        runs = [" ".join(f"{t:.2f}" for t in times[name, phase]) for phase in ("idle", "busy")]
        print(f"| {name} | {idle:.3f} | {busy:.3f} | {busy / idle:.2f}x | {runs[0]} | {runs[1]} |")


if __name__ == "__main__":
    main()
