"""What the benchmark scripts share: the machine's name, timing a step with its peak memory, and running one
measurement in a subprocess of its own (so that its peak memory is its own).

The scripts run as ``python benchmarks/<name>.py``, which puts this folder on ``sys.path``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable


def rss_mb() -> float:
    """The process's resident set size now, in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb(reset: bool = False) -> float:
    """The process's peak resident set size (``VmHWM``) in MiB; with ``reset``, first reset the peak to now.

    ``VmHWM`` belongs to the process's own address space, unlike ``getrusage``'s ``ru_maxrss``, which a
    subprocess inherits from the parent it was forked from (so a small child of a large parent would report
    the parent's size). Resetting writes ``5`` to ``/proc/self/clear_refs`` (Linux 4.0 and later).
    """
    if reset:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def machine(device: str) -> str:
    """The GPU's name, or the CPU model and torch's thread count."""
    import torch

    if device == "cuda":
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {torch.get_num_threads()} threads (torch {torch.__version__})"


def time_steps(step: Callable[[], None], reps: int, device: str, budget_s: float | None = None) -> dict:
    """Run ``step`` once to warm up, then ``reps`` times; median and min time in ms and the peak memory in MiB.

    With ``budget_s``, fewer (at least one) timed steps are run when ``reps`` warm-up-long steps would take
    longer than that; ``reps`` in the result says how many ran.

    Peak memory: on CUDA, torch's peak allocated bytes above what was allocated before the warm-up; on CPU,
    the process's peak RSS during the steps above its RSS before the warm-up (activations, gradients,
    optimiser state, workspace; see ``peak_rss_mb``).
    """
    import torch

    base_rss = rss_mb()
    peak_rss_mb(reset=True)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
    start = time.perf_counter()
    step()  # warm-up
    warm_up = time.perf_counter() - start
    if budget_s is not None:
        reps = max(1, min(reps, int(budget_s / max(warm_up, 1e-9))))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() - base_cuda) / 2**20 if device == "cuda" else peak_rss_mb() - base_rss
    return {"ms": 1000 * statistics.median(times), "min_ms": 1000 * min(times), "peak_mb": peak, "reps": reps}


def run_child(script: str, spec: dict, timeout: float | None = None) -> dict:
    """Run ``python script --child <spec as JSON>`` and parse the JSON its last stdout line holds.

    On failure returns ``{"error": <last stderr line>}`` (``"out of memory"`` when the child was killed).
    """
    try:
        proc = subprocess.run(
            [sys.executable, script, "--child", json.dumps(spec)],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        if proc.returncode in (-9, 137):
            return {"error": "killed (out of memory)"}
        return {"error": (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def use_package_copy(root: str) -> None:
    """Import ``mamba_forecast`` from the copy in ``root`` (put first on ``sys.path``), not an installed one; fails
    if another copy was imported instead (or already had been)."""
    sys.path.insert(0, os.path.abspath(root))
    import mamba_forecast

    assert os.path.abspath(mamba_forecast.__file__).startswith(os.path.abspath(root)), mamba_forecast.__file__


def scan_inputs(batch: int, length: int, channels: int, d_state: int, device: str = "cpu") -> list:
    """Leaves ``u, delta, A, B, C, D, z, delta_bias`` of one selective scan, seeded, with gradients on.

    ``delta_bias`` is mamba-ssm's initialisation (softplus^-1 of steps log-uniform in [1e-3, 0.1]) and
    ``A = -[1..d_state]`` per channel, so the decays are those of a freshly built Mamba block.
    """
    import math

    import torch

    g = torch.Generator().manual_seed(0)
    dt = torch.exp(torch.rand(channels, generator=g) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
    leaves = [
        torch.randn(batch, channels, length, generator=g),  # u
        torch.randn(batch, channels, length, generator=g) * 0.5,  # delta (before bias and softplus)
        -torch.arange(1, d_state + 1.0).repeat(channels, 1),  # A
        torch.randn(batch, d_state, length, generator=g),  # B
        torch.randn(batch, d_state, length, generator=g),  # C
        torch.ones(channels),  # D
        torch.randn(batch, channels, length, generator=g),  # z
        dt + torch.log(-torch.expm1(-dt)),  # delta_bias
    ]
    return [t.to(device).requires_grad_() for t in leaves]
