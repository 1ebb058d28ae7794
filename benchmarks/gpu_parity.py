"""Section 1 of ``benchmarks/gpu_check.py``: every scan backend against the sequential reference in fp64.

Fuzzed and large shapes, fp32 and bf16 inputs: the largest relative error of the output, the last state and
the gradients of u, delta, A, B, C, D, z, delta_bias, against tolerances of 1e-4 (fp32) and 2e-2 (bf16).
"""

from __future__ import annotations

import time

GRAD_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def _fuzzed_shapes(n: int, tiny: bool, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)

    def pick(lo, hi):
        return int(torch.randint(lo, hi + 1, (1,), generator=g))

    if tiny:
        fixed = [(1, 3, 1, 1), (2, 5, 37, 16)]
    else:  # (batch, channels, length, d_state); the last two: long and wide, as the benchmark's scans are
        fixed = [(1, 3, 1, 1), (4, 64, 321, 16), (1, 8, 2048, 64), (2, 512, 325, 16)]
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


def parity(device: str, backends: list[str], tiny: bool, deadline: float, figures: dict) -> list[str]:
    import torch

    from mamba_forecast.ssm import selective_scan

    rows = [
        "| backend | inputs | cases | max rel. error: output | last state | gradients | worst gradient | "
        "tolerance | result |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    cases = _fuzzed_shapes(5 if tiny else 9, tiny)
    for backend in backends:
        for dtype in (torch.float32, torch.bfloat16):
            name = str(dtype)[6:]
            if time.monotonic() > deadline:
                rows.append(f"| {backend} | {name} | skipped: out of time | | | | | | |")
                figures["skipped"].append(f"parity {backend} {name}")
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
            ok = bool(not failures and ran and max(worst.values()) < tol)
            result = "pass" if ok else "FAIL" + (f" ({'; '.join(failures[:2])})" if failures else "")
            rows.append(
                f"| {backend} | {name} | {ran} | {worst['out']:.1e} | {worst['last']:.1e} | "
                f"{worst['grad']:.1e} | {worst_grad} | {tol:.0e} | {result} |"
            )
            figures["parity"].append(
                {"backend": backend, "dtype": name, "cases": ran, "max_rel_out": worst["out"]}
                | {"max_rel_last": worst["last"], "max_rel_grad": worst["grad"], "worst": worst_grad, "tol": tol}
                | {"pass": ok, "failures": failures[:5]}
            )
    shapes = ", ".join(str(s) for s, _ in cases)
    rows.append("")
    rows.append(
        f"Shapes (batch, channels, length, d_state): {shapes}; D, z, delta_bias and the softplus switched "
        "on and off at random. Reference: the sequential recurrence in fp64 on the same (rounded) inputs; "
        "bf16 rows: bf16 activations with fp32 A, D, delta_bias, as in the Mamba block (their outputs and "
        "activation gradients are rounded to bf16 once). `cuda`: the loss leaves the last state out. `triton`: "
        "its fixed block sizes (the autotuned ones are checked with the speed below)."
    )
    return rows
