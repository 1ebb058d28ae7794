"""Ops and time of one training step of the official ETTh1 configurations, for finding launch overhead.

    python benchmarks/step_profile.py                                   # SMamba and AttentionMamba, this tree
    python benchmarks/step_profile.py --roots /tmp/before,. --rounds 3  # two copies of the package, interleaved
    python benchmarks/step_profile.py --top 25                           # also the most frequent ops

One step is what the harness runs per batch: ``zero_grad``, forward on 32 windows of ETTh1's shape (L = 96,
7 series, the 4 calendar tokens), MSE loss, backward, Adam update; the model is built from
``get_preset(model, "ETTh1", 96, "official")`` by the harness (``bench.models.build_model``).

Ops: one step under ``torch.profiler`` (CPU), counting the ATen ops that do work (an op none of whose children
does; views, ``empty``, no-op ``to`` and the like are left out), split into the model's ops outside the selective
scan, the scan's, and the optimiser's. On a GPU each of those is a kernel launch, and a small model's step is
bound by launches, so the first count is what the model's code decides. For the count the scan runs as one
opaque autograd function (what the ``cuda`` and ``triton`` backends are), so the torch backend's own ops and
their backward stay out of the model's count; the timing runs the code as it is.

Time: median ms per step of ``--reps`` steps after 3 warm-up steps, one torch thread, each (copy, model, round)
in its own process, the copies interleaved round by round (so a busy machine slows both alike); the table gives
the median over rounds of those medians. ``--roots``: package copies to import (each is put first on
``sys.path``), e.g. an export of the commit before a change.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys

from _common import use_package_copy

# Ops that do no arithmetic (metadata, allocation, no-op conversions): not counted as work.
NO_WORK = {
    "aten::as_strided",
    "aten::empty",
    "aten::empty_strided",
    "aten::empty_like",
    "aten::new_empty",
    "aten::new_empty_strided",
    "aten::view",
    "aten::_unsafe_view",
    "aten::_reshape_alias",
    "aten::reshape",
    "aten::detach",
    "aten::detach_",
    "aten::alias",
    "aten::resolve_conj",
    "aten::resolve_neg",
    "aten::as_strided_",
    "aten::resize_",
    "aten::lift_fresh",
    "aten::unsqueeze",
    "aten::squeeze",
    "aten::transpose",
    "aten::t",
    "aten::mT",
    "aten::permute",
    "aten::expand",
    "aten::slice",
    "aten::select",
    "aten::split",
    "aten::split_with_sizes",
    "aten::chunk",
    "aten::narrow",
    "aten::unbind",
    "aten::result_type",
    "aten::to",
    "aten::contiguous",
    "aten::_local_scalar_dense",
    "aten::item",
    "aten::is_nonzero",
}


def _opaque_scan(scan_module, torch):
    """Replace the scan by one autograd function around it (forward and a recomputing backward), inside a
    profiler range named ``selective_scan``."""
    run = scan_module._run_scan

    class Scan(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u, delta, A, B, C, D, z, bias, softplus, backend):
            ctx.save_for_backward(u, delta, A, B, C, D, z, bias)
            ctx.args = (softplus, backend)
            return run(u, delta, A, B, C, D, z, bias, softplus, False, backend)

        @staticmethod
        def backward(ctx, grad):
            leaves = [t.detach().requires_grad_() if t is not None else None for t in ctx.saved_tensors]
            with torch.enable_grad():
                out = run(*leaves, ctx.args[0], False, ctx.args[1])
            given = [t for t in leaves if t is not None]
            grads = iter(torch.autograd.grad(out, given, grad))
            return (*[next(grads) if t is not None else None for t in leaves], None, None)

    def opaque(u, delta, A, B, C, D, z, bias, softplus, last, backend):
        with torch.profiler.record_function("selective_scan"):
            return Scan.apply(u, delta, A, B, C, D, z, bias, softplus, backend)

    scan_module._run_scan = opaque
    return run


def _count(events) -> collections.Counter:
    """(part, op name) of every working op: part is scan, optimizer or model (everything else)."""

    def walk(event, part):
        name = event.name
        if name.startswith("Optimizer."):
            part = "optimizer"
        elif name == "selective_scan" or name.startswith("ScanBackward"):
            part = "scan"
        below = [item for child in event.cpu_children for item in walk(child, part)]
        if below:
            return below
        return [(part, name)] if name.startswith("aten::") and name not in NO_WORK else []

    return collections.Counter(item for e in events if e.cpu_parent is None for item in walk(e, "model"))


def _child(root: str, name: str, reps: int, top: int) -> dict:
    use_package_copy(root)
    import time

    import torch

    torch.set_num_threads(1)
    import mamba_forecast.ssm.scan as scan_module
    from mamba_forecast.bench.models import build_model
    from mamba_forecast.bench.presets import get_preset

    preset = get_preset(name, "ETTh1", 96, "official")
    torch.manual_seed(0)
    model = build_model(name, preset, 7, 96, 96, calendar_tokens=True)
    optim = torch.optim.Adam(model.parameters(), lr=preset.learning_rate)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 96, 7, generator=g)
    marks = torch.rand(32, 96, 4, generator=g) - 0.5
    y = torch.randn(32, 96, 7, generator=g)

    def step():
        optim.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x, marks, None, None), y)
        loss.backward()
        optim.step()

    run = _opaque_scan(scan_module, torch)
    for _ in range(2):
        step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step()
    ops = _count(prof.events())
    scan_module._run_scan = run
    for _ in range(3):
        step()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    parts = {p: sum(n for (q, _), n in ops.items() if q == p) for p in ("model", "scan", "optimizer")}
    model_ops = collections.Counter({op: n for (p, op), n in ops.items() if p == "model"})
    return {"ms": 1000 * statistics.median(times), "ops": parts, "top": model_ops.most_common(top)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="SMamba,AttentionMamba")
    parser.add_argument("--roots", default=".", help="comma-separated package copies (folders holding mamba_forecast)")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--top", type=int, default=0, help="list the model's N most frequent ops")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(_child(**spec)))
        return

    roots = args.roots.split(",")
    models = args.models.split(",")
    results: dict = collections.defaultdict(list)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH="")
    for _ in range(args.rounds):
        for name in models:
            for root in roots:
                spec = {"root": root, "name": name, "reps": args.reps, "top": args.top}
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, env=env
                )
                if proc.returncode:
                    sys.exit(f"{name} in {root} failed:\n{proc.stderr[-3000:]}")
                results[(name, root)].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"load average {os.getloadavg()[0]:.1f}; {args.rounds} round(s) of {args.reps} steps, one thread")
    print("| model | package | ms/step (median over rounds) | round medians | model ops | scan ops | Adam ops |")
    print("|---|---|---|---|---|---|---|")
    for (name, root), runs in results.items():
        ms = [r["ms"] for r in runs]
        ops = runs[0]["ops"]
        print(
            f"| {name} | {root} | {statistics.median(ms):.1f} | {', '.join(f'{m:.1f}' for m in ms)} | "
            f"{ops['model']} | {ops['scan']} | {ops['optimizer']} |"
        )
    if args.top:
        for (name, root), runs in results.items():
            print(f"\n{name} ({root}), the model's ops: " + ", ".join(f"{op[6:]} {n}" for op, n in runs[0]["top"]))


if __name__ == "__main__":
    main()
