"""The Triton selective scan (``backend="triton"``), the backend choice, and the CUDA-path plumbing.

Parity of the Triton kernels with the reference runs on CPU under Triton's interpreter. ``TRITON_INTERPRET=1``
only takes effect if it is set before ``triton`` is first imported, and ``import mamba_forecast.ssm`` already
imports it where it is installed (through ``torch.compiler.disable``, which loads torch._dynamo, which probes
triton), as do other tests in a full ``pytest`` run; so the interpreted cases run in one subprocess
started by a module-scoped fixture (``python tests/test_triton_scan.py --worker``); every case is then
asserted by its own test. The worker speeds up the interpreter's generic ``associative_scan`` (which calls
the combine function once per element) by calling the same combine function once per position along the
scanned axis, on whole slices; ``test_interpreter_speed_up_changes_nothing`` checks on one case that the
results are identical with and without it. The kernels' code is the same either way.

The rest runs in this process without triton's interpreter: the choice among backends (with the
availability probes replaced), mamba-ssm's import check, what the CUDA path hands to the kernels, the Mamba
block's convolution and fused-path plumbing, and importing the package without triton. GPU tests
(``@pytest.mark.gpu``) compare the Triton and CUDA backends with the torch backend on CUDA.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from conftest import rel_err

ROOT = Path(__file__).resolve().parents[1]
GRAD_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
FULL = dict(use_d=True, use_z=True, use_bias=True, softplus=True)
BARE = dict(use_d=False, use_z=False, use_bias=False, softplus=False)

# id: (batch, channels, length, d_state), options, dtype, extra
# The kernels walk the length in chunks (32 steps up to d_state 16, 16 up to 32, 8 beyond) and the channels in
# blocks (2 to 64, fewer for large d_state, fewer in the backward): lengths 37, 45, 70 end in a partial chunk;
# 5 channels with d_state 16, or 3 with d_state 64, span several channel blocks.
CASES = {
    "all-options": ((2, 5, 37, 16), FULL, "float32", {}),
    "length-1": ((1, 3, 1, 1), FULL, "float32", {}),
    "no-options": ((2, 4, 70, 5), BARE, "float32", {"last_state": False}),
    "d_state-64": ((1, 3, 40, 64), FULL, "float32", {}),
    "d_state-33-blocks": ((2, 5, 40, 33), FULL, "float32", {}),
    "d_state-3-D-only": ((1, 6, 33, 3), dict(BARE, use_d=True, softplus=True), "float32", {}),
    "z-and-bias": ((3, 3, 16, 7), dict(BARE, use_z=True, use_bias=True), "float32", {}),
    "length-2-batch-1": ((1, 2, 2, 2), FULL, "float32", {}),
    "large-decays": (
        (1, 3, 50, 16),
        dict(FULL, softplus=False, use_bias=False),
        "float32",
        {"delta_scale": 60.0, "A_scale": 8.0},
    ),
    "last-state-loss-only": ((2, 3, 35, 4), FULL, "float32", {"loss": "last"}),
    "bf16": ((2, 4, 45, 8), FULL, "bfloat16", {}),
    "fp64": ((1, 3, 20, 4), FULL, "float64", {}),
    "fp32-under-bf16-autocast": ((2, 3, 20, 4), FULL, "float32", {"autocast": True}),
}


def _fuzz_cases(n, seed=2026):
    """Seeded random shapes and options (batch 1-3, channels 1-9, length 1-80, d_state 1-40)."""
    g = torch.Generator().manual_seed(seed)

    def pick(lo, hi):
        return int(torch.randint(lo, hi + 1, (1,), generator=g))

    cases = {}
    for i in range(n):
        shape = (pick(1, 3), pick(1, 9), pick(1, 80), pick(1, 40))
        flags = dict(zip(("use_d", "use_z", "use_bias", "softplus"), (bool(pick(0, 1)) for _ in range(4)), strict=True))
        cases[f"fuzz-{i}"] = (shape, flags, "float32", {"last_state": bool(pick(0, 1))})
    return cases


CASES.update(_fuzz_cases(6))


def make_inputs(batch, channels, length, d_state, *, seed=0, dtype=torch.float32, delta_scale=0.5, A_scale=1.0):
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)

    return {
        "u": rnd(batch, channels, length),
        "delta": (torch.rand(batch, channels, length, generator=g, dtype=torch.float64) * delta_scale).to(dtype),
        "A": ((-torch.rand(channels, d_state, generator=g, dtype=torch.float64) * 2 - 0.05) * A_scale).to(dtype),
        "B": rnd(batch, d_state, length),
        "C": rnd(batch, d_state, length),
        "D": rnd(channels),
        "z": rnd(batch, channels, length),
        "delta_bias": (rnd(channels).abs() * 0.3),
    }


def run_scan(
    selective_scan,
    inputs,
    backend,
    *,
    use_d,
    use_z,
    use_bias,
    softplus,
    last_state=True,
    loss="both",
    seed=1,
    cotangent_dtype=None,
):
    """Forward and backward with fixed random cotangents; the outputs, the last state and the input gradients."""
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    out, last = selective_scan(
        leaves["u"],
        leaves["delta"],
        leaves["A"],
        leaves["B"],
        leaves["C"],
        D=leaves["D"] if use_d else None,
        z=leaves["z"] if use_z else None,
        delta_bias=leaves["delta_bias"] if use_bias else None,
        delta_softplus=softplus,
        return_last_state=True,
        backend=backend,
    )
    g = torch.Generator().manual_seed(seed)
    # rounded to cotangent_dtype: a bf16 output then gets the same cotangent as the fp64 reference
    w_out = (
        torch.randn(out.shape, generator=g, dtype=torch.float64)
        .to(cotangent_dtype or out.dtype)
        .double()
        .to(out.device)
    )
    w_last = torch.randn(last.shape, generator=g, dtype=torch.float64).to(last.device)
    terms = []
    if loss in ("both", "out"):
        terms.append((out.double() * w_out).sum())
    if loss in ("both", "last") and last_state:
        terms.append((last.double() * w_last).sum())
    sum(terms).backward()
    grads = {k: leaves[k].grad for k in GRAD_NAMES if leaves[k].grad is not None}
    return out.detach(), last.detach(), grads


# ------------------------------------------------------------------------------------ the interpreted worker


def _speed_up_interpreter_scan():
    """Evaluate the interpreter's generic associative_scan one position of the scanned axis at a time."""
    import numpy as np
    from triton.runtime import interpreter

    ops = interpreter.ScanOps
    if getattr(ops, "_mamba_forecast_fast", False):
        return
    slow = ops.generic_scan

    def generic_scan(self, inputs):
        if os.environ.get("MAMBA_FORECAST_SLOW_INTERPRETER") == "1":
            return slow(self, inputs)
        datas = [x.handle.data for x in inputs]
        outs = [np.empty_like(d) for d in datas]

        def at(k):
            index = [slice(None)] * datas[0].ndim
            index[self.axis] = k
            return tuple(index)

        for o, d in zip(outs, datas, strict=True):
            o[at(0)] = d[at(0)]
        for k in range(1, datas[0].shape[self.axis]):
            acc = [
                self.to_tensor(np.ascontiguousarray(o[at(k - 1)]), x.dtype) for o, x in zip(outs, inputs, strict=True)
            ]
            cur = [self.to_tensor(np.ascontiguousarray(d[at(k)]), x.dtype) for d, x in zip(datas, inputs, strict=True)]
            ret = self.combine_fn.fn(*acc, *cur)
            for o, r in zip(outs, ret if isinstance(ret, tuple) else (ret,), strict=True):
                o[at(k)] = r.handle.data.reshape(o[at(k)].shape)
        return [self.to_tensor(o, x.dtype) for o, x in zip(outs, inputs, strict=True)]

    ops.generic_scan = generic_scan
    ops._mamba_forecast_fast = True


def _worker() -> None:
    """Run every case with the triton and reference backends; print a JSON report on the last line."""
    assert os.environ.get("TRITON_INTERPRET") == "1"  # set before this process imported triton
    torch.set_num_threads(1)
    _speed_up_interpreter_scan()
    from mamba_forecast.ssm import selective_scan, triton_scan_available

    report = {"available_cpu": triton_scan_available("cpu")}
    for name, (shape, flags, dtype_name, extra) in CASES.items():
        dtype = getattr(torch, dtype_name)
        inputs = make_inputs(
            *shape, seed=len(name), delta_scale=extra.get("delta_scale", 0.5), A_scale=extra.get("A_scale", 1.0)
        )
        # bf16 activations; A, D and delta_bias stay fp32 parameters, as in the Mamba block
        low = {
            k: (v.float() if k in ("A", "D", "delta_bias") and dtype == torch.bfloat16 else v.to(dtype))
            for k, v in inputs.items()
        }
        kw = dict(
            flags, last_state=extra.get("last_state", True), loss=extra.get("loss", "both"), cotangent_dtype=dtype
        )
        if extra.get("autocast"):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out_t, last_t, g_t = run_scan(selective_scan, low, "triton", **kw)
        else:
            out_t, last_t, g_t = run_scan(selective_scan, low, "triton", **kw)
        # the oracle: the sequential recurrence on the same (rounded) values, in fp64
        exact = {k: v.double() for k, v in low.items()}
        out_r, last_r, g_r = run_scan(selective_scan, exact, "reference", **kw)
        out_torch, _, g_torch = run_scan(selective_scan, low, "torch", **kw)
        report[name] = {
            "out_dtype": str(out_t.dtype),
            "last_dtype": str(last_t.dtype),
            "last_shape": list(last_t.shape),
            "out": rel_err(out_t, out_r),
            "last": rel_err(last_t, last_r),
            "grads": {k: rel_err(g_t[k], g_r[k]) for k in g_r if k in g_t},
            "grad_dtypes": {k: str(v.dtype) for k, v in g_t.items()},
            "input_dtypes": {k: str(v.dtype) for k, v in low.items()},
            "grad_names": sorted(g_t),
            "ref_grad_names": sorted(g_r),
            # inputs outside the reference's graph (C, D, z for a loss on the last state alone): zero gradients
            "extra_grads_max": max([float(g_t[k].abs().max()) for k in g_t if k not in g_r], default=0.0),
            "finite": bool(torch.isfinite(out_t).all()) and all(bool(torch.isfinite(v).all()) for v in g_t.values()),
            "out_vs_torch": rel_err(out_t, out_torch),
            "grads_vs_torch": {k: rel_err(g_t[k], g_torch[k]) for k in g_torch if k in g_t},
        }
    # the sped-up interpreter scan against the interpreter's own, on one small case
    inputs = make_inputs(1, 2, 9, 3, seed=5)
    fast = run_scan(selective_scan, inputs, "triton", **FULL)
    os.environ["MAMBA_FORECAST_SLOW_INTERPRETER"] = "1"
    slow = run_scan(selective_scan, inputs, "triton", **FULL)
    os.environ.pop("MAMBA_FORECAST_SLOW_INTERPRETER")
    report["fast_vs_slow"] = max(
        [rel_err(fast[0], slow[0]), rel_err(fast[1], slow[1])] + [rel_err(fast[2][k], slow[2][k]) for k in slow[2]]
    )
    report["autotuned"] = _autotuned_case(selective_scan)
    print(json.dumps(report))


def _autotuned_case(selective_scan) -> dict:
    """The device's launch path, ``triton.autotune`` over the candidate configurations, run by the interpreter:
    autotune's timing is replaced by one that runs each candidate once and calls the later ones faster, so the
    chosen channel block differs from the interpreter's fixed one and dB, dC (summed with atomic adds) must be
    zeroed between the timed runs."""
    from mamba_forecast.ssm import triton_scan as ts

    timed = []

    def bench(kernel_call, quantiles):
        kernel_call()
        timed.append(1)
        return [-float(len(timed))] * len(quantiles)

    for tuned in (ts._scan_fwd_tuned, ts._scan_bwd_tuned):
        tuned._do_bench = bench
    ts._AUTOTUNE = True
    try:
        inputs = make_inputs(2, 5, 37, 16, seed=3)
        out, last, grads = run_scan(selective_scan, inputs, "triton", **FULL)
    finally:
        ts._AUTOTUNE = False
    out_r, last_r, grads_r = run_scan(selective_scan, {k: v.double() for k, v in inputs.items()}, "reference", **FULL)
    return {
        "timed": len(timed),
        "chosen": [
            (t.best_config.kwargs["BLOCK_D"], t.best_config.num_warps) for t in (ts._scan_fwd_tuned, ts._scan_bwd_tuned)
        ],
        "candidates": [
            ts._candidates(5, 16, 37, ts._FWD_TILE_PER_WARP),
            ts._candidates(5, 16, 37, ts._BWD_TILE_PER_WARP),
        ],
        "fixed": [ts._blocks(5, 16, 37, ts._FWD_TILE)[0], ts._blocks(5, 16, 37, ts._BWD_TILE)[0]],
        "errors": [rel_err(out, out_r), rel_err(last, last_r)] + [rel_err(grads[k], grads_r[k]) for k in grads_r],
    }


@pytest.fixture(scope="module")
def interpreted():
    if importlib.util.find_spec("triton") is None:
        pytest.skip("needs triton (pip install triton)")
    env = dict(
        os.environ,
        TRITON_INTERPRET="1",
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    env.pop("MAMBA_FORECAST_SCAN", None)
    proc = subprocess.run(
        [sys.executable, __file__, "--worker"], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# tolerances (relative L2 error against the fp64 recurrence on the same inputs)
FP32_TOL = 1e-5
BF16_OUT_TOL = 8e-3  # the output and the activations' gradients are rounded once to bf16 (2^-8 relative)


@pytest.mark.parametrize("name", list(CASES))
def test_triton_matches_reference_under_the_interpreter(interpreted, name):
    r = interpreted[name]
    shape, flags, dtype_name, extra = CASES[name]
    batch, channels, _, d_state = shape
    assert r["finite"]
    assert r["out_dtype"] == f"torch.{dtype_name}"  # the output keeps u's dtype
    assert r["last_dtype"] == ("torch.float64" if dtype_name == "float64" else "torch.float32")
    assert r["last_shape"] == [batch, channels, d_state]
    # every input that takes part gets a gradient, in its own dtype
    assert set(r["ref_grad_names"]) <= set(r["grad_names"])
    assert r["extra_grads_max"] == 0.0
    expected = {"u", "delta", "A", "B", "C"} | {
        k for k, f in (("D", "use_d"), ("z", "use_z"), ("delta_bias", "use_bias")) if flags[f]
    }
    assert set(r["grad_names"]) == expected
    assert r["grad_dtypes"] == {k: r["input_dtypes"][k] for k in r["grad_names"]}
    if dtype_name == "float64":
        tol_out = tol_last = tol_grad = 1e-11
    elif dtype_name == "bfloat16":
        tol_out, tol_last = BF16_OUT_TOL, FP32_TOL
        tol_grad = {k: (FP32_TOL if k in ("A", "D", "delta_bias") else BF16_OUT_TOL) for k in GRAD_NAMES}
    else:
        tol_out = tol_last = tol_grad = FP32_TOL
    assert r["out"] < tol_out
    if extra.get("last_state", True):
        assert r["last"] < tol_last
    for k, err in r["grads"].items():
        tol = tol_grad[k] if isinstance(tol_grad, dict) else tol_grad
        assert err < tol, (k, err)


def test_triton_agrees_with_the_torch_backend(interpreted):
    # Both backends accumulate in fp32 from the same inputs: for bf16 inputs they differ only by the final roundings.
    for name, (_, _, dtype_name, _) in CASES.items():
        r = interpreted[name]
        tol = 1e-2 if dtype_name == "bfloat16" else 1e-5
        assert r["out_vs_torch"] < tol, name
        assert all(err < tol for err in r["grads_vs_torch"].values()), (name, r["grads_vs_torch"])


def test_triton_runs_on_cpu_only_under_the_interpreter(interpreted):
    assert interpreted["available_cpu"] is True


def test_interpreter_speed_up_changes_nothing(interpreted):
    assert interpreted["fast_vs_slow"] < 1e-7


def test_autotuned_launch_matches_the_reference(interpreted):
    r = interpreted["autotuned"]
    fwd, bwd = (set(map(tuple, c)) for c in r["candidates"])
    assert r["timed"] == len(fwd) + len(bwd)  # every candidate ran once, forward and backward
    assert r["chosen"] == [list(max(fwd, key=lambda c: (c[1], c[0]))), list(max(bwd, key=lambda c: (c[1], c[0])))]
    assert r["chosen"][0][0] != r["fixed"][0] and r["chosen"][1][0] != r["fixed"][1]
    assert max(r["errors"]) < FP32_TOL  # dB and dC zeroed between the timed runs: not summed four times


# ------------------------------------------------------------------------------------ backend choice (no triton)

from mamba_forecast.ssm import BACKENDS, Mamba, resolve_backend, selective_scan  # noqa: E402
from mamba_forecast.ssm import mamba as mamba_module  # noqa: E402
from mamba_forecast.ssm import scan as scan_module  # noqa: E402

CUDA = torch.device("cuda")


@pytest.fixture
def scan_env(monkeypatch):
    """``scan_env(value)`` sets $MAMBA_FORECAST_SCAN (None: unset) as a new process would see it: the scan reads
    it again at its next call. The process's setting comes back after the test."""

    def set_(value):
        if value is None:
            monkeypatch.delenv("MAMBA_FORECAST_SCAN", raising=False)
        else:
            monkeypatch.setenv("MAMBA_FORECAST_SCAN", value)
        monkeypatch.setattr(scan_module, "_default", None)

    return set_


@pytest.fixture
def probes(monkeypatch, scan_env):
    """Set what is 'available' without a GPU: probes(cuda=..., triton=...)."""
    scan_env(None)

    def set_(cuda: bool, triton: bool):
        monkeypatch.setattr(scan_module, "cuda_scan_available", lambda: cuda)
        monkeypatch.setattr(scan_module, "triton_scan_available", lambda device="cuda": triton)
        fake = (lambda *a, **k: None) if cuda else ImportError("no mamba-ssm here")
        monkeypatch.setattr(scan_module, "_mamba_ssm_scan", lambda: fake)

    return set_


def test_auto_prefers_cuda_then_triton_then_torch(probes):
    assert "triton" in BACKENDS
    probes(cuda=True, triton=True)
    assert resolve_backend("auto", CUDA, torch.float32, 16) == "cuda"
    assert resolve_backend("auto", CUDA, torch.bfloat16, 16) == "cuda"
    assert resolve_backend("auto", CUDA, torch.float64, 16) == "triton"  # the CUDA kernel has no fp64
    assert resolve_backend("auto", CUDA, torch.float32, 300) == "triton"  # nor more than 256 states
    assert resolve_backend("auto", torch.device("cpu"), torch.float32, 16) == "torch"
    probes(cuda=False, triton=True)
    assert resolve_backend("auto", CUDA, torch.float32, 16) == "triton"
    probes(cuda=True, triton=False)
    assert resolve_backend("auto", CUDA, torch.float64, 16) == "torch"
    probes(cuda=False, triton=False)
    assert resolve_backend("auto", CUDA, torch.float32, 16) == "torch"


def test_explicit_cuda_falls_back_for_dtypes_the_kernel_rejects(probes):
    probes(cuda=True, triton=True)
    assert resolve_backend("cuda", CUDA, torch.float32, 16) == "cuda"
    with pytest.warns(UserWarning, match="fp32, fp16 or bf16.*'triton'"):
        assert resolve_backend("cuda", CUDA, torch.float64, 16) == "triton"
    probes(cuda=True, triton=False)
    with pytest.warns(UserWarning, match="'torch'"):
        assert resolve_backend("cuda", CUDA, torch.float64, 16) == "torch"


def test_env_var_selects_triton(probes, scan_env):
    probes(cuda=True, triton=True)
    scan_env("triton")
    assert resolve_backend("auto", CUDA, torch.float32, 16) == "triton"
    assert resolve_backend("torch", CUDA, torch.float32, 16) == "torch"  # an explicit argument wins
    probes(cuda=True, triton=False)
    scan_env("triton")
    with pytest.raises(RuntimeError, match="triton"):
        resolve_backend("auto", CUDA, torch.float32, 16)


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1", reason="checks the message outside the interpreter")
def test_triton_on_cpu_says_to_use_torch(scan_env):
    scan_env(None)
    x = {
        "u": torch.randn(1, 2, 5),
        "delta": torch.rand(1, 2, 5),
        "A": -torch.rand(2, 3),
        "B": torch.randn(1, 3, 5),
        "C": torch.randn(1, 3, 5),
    }
    with pytest.raises(RuntimeError, match="backend='torch'"):
        selective_scan(**x, backend="triton")
    scan_env("triton")
    with pytest.raises(RuntimeError, match="backend='torch'"):
        selective_scan(**x)


def _fake_mamba_ssm(monkeypatch, compiled):
    """Install a fake mamba_ssm whose interface module has ``selective_scan_cuda = compiled``."""
    interface = types.ModuleType("mamba_ssm.ops.selective_scan_interface")
    interface.selective_scan_fn = lambda *a, **k: "ran"
    interface.selective_scan_cuda = compiled
    pkg, ops = types.ModuleType("mamba_ssm"), types.ModuleType("mamba_ssm.ops")
    pkg.ops, ops.selective_scan_interface = ops, interface
    monkeypatch.setitem(sys.modules, "mamba_ssm", pkg)
    monkeypatch.setitem(sys.modules, "mamba_ssm.ops", ops)
    monkeypatch.setitem(sys.modules, "mamba_ssm.ops.selective_scan_interface", interface)
    monkeypatch.setitem(sys.modules, "selective_scan_cuda", None)  # `import selective_scan_cuda` fails
    scan_module._mamba_ssm_scan.cache_clear()


def test_cuda_scan_needs_the_compiled_kernel_not_just_the_import(monkeypatch):
    # mamba-ssm after 2.3.2.post1 imports with selective_scan_cuda = None unless built with MAMBA_KEEP_CUDA_BUILD
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    try:
        _fake_mamba_ssm(monkeypatch, compiled=None)
        probe = scan_module._mamba_ssm_scan()
        assert isinstance(probe, ImportError) and "selective_scan_cuda" in str(probe)
        assert not scan_module.cuda_scan_available()
        with pytest.raises(RuntimeError, match="selective_scan_cuda"):
            resolve_backend("cuda", CUDA, torch.float32, 16)
        _fake_mamba_ssm(monkeypatch, compiled=types.SimpleNamespace(fwd=None, bwd=None))
        assert scan_module._mamba_ssm_scan()() == "ran"
        assert scan_module.cuda_scan_available()
    finally:
        scan_module._mamba_ssm_scan.cache_clear()


def test_cuda_path_hands_contiguous_inputs_of_the_kernels_dtypes(monkeypatch):
    seen = {}

    def kernel(u, delta, A, B, C, D, z=None, delta_bias=None, delta_softplus=False, return_last_state=False):
        seen.update(u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=delta_bias)
        return scan_module.selective_scan_reference(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state
        )

    monkeypatch.setattr(scan_module, "resolve_backend", lambda *a, **k: "cuda")
    monkeypatch.setattr(scan_module, "_mamba_ssm_scan", lambda: kernel)
    x = make_inputs(2, 3, 7, 4, dtype=torch.bfloat16)
    # the layouts the Mamba block hands over: B and C are transposed views of x_proj's output
    bc = torch.randn(2, 7, 8, dtype=torch.bfloat16)
    B, C = bc[..., :4].transpose(1, 2), bc[..., 4:].transpose(1, 2)
    assert not B.is_contiguous()
    out = selective_scan(
        x["u"],
        x["delta"].float(),
        x["A"].double(),
        B,
        C,
        x["D"],
        z=x["z"].transpose(1, 2).contiguous().transpose(1, 2),
        delta_bias=x["delta_bias"],
        delta_softplus=True,
    )
    assert out.dtype == torch.bfloat16
    for k in ("u", "delta", "B", "C", "z"):
        assert seen[k].is_contiguous() and seen[k].dtype == torch.bfloat16, k
    for k in ("A", "D", "delta_bias"):
        assert seen[k].is_contiguous() and seen[k].dtype == torch.float32, k


# ------------------------------------------------------------------------------------ the Mamba block's plumbing


def test_fused_convolution_gets_a_channel_first_contiguous_input(monkeypatch):
    calls = []

    def fake_conv(x, weight, bias, activation=None):
        calls.append((x.is_contiguous(), x.stride(), tuple(weight.shape)))
        out = torch.nn.functional.conv1d(x, weight.unsqueeze(1), bias, padding=weight.shape[1] - 1, groups=x.shape[1])[
            ..., : x.shape[-1]
        ]
        return torch.nn.functional.silu(out)

    torch.manual_seed(0)
    block = Mamba(d_model=5, d_state=3, d_conv=3, expand=1, scan_backend="torch")  # 5 channels: not a multiple of 8
    x = torch.randn(2, 9, 5)
    expected = block(x)
    monkeypatch.setattr(mamba_module, "_causal_conv1d_fn", lambda: fake_conv)
    monkeypatch.setattr(mamba_module, "_fused_conv_usable", lambda x, width: True)
    got = block(x)
    assert calls == [(True, (5 * 9, 9, 1), (5, 3))]
    assert torch.allclose(got, expected, atol=1e-6)


def _mamba_inner_semantics(
    xz, conv_w, conv_b, x_proj_w, dt_proj_w, out_proj_w, out_proj_b, A, B, C, D, delta_bias=None, delta_softplus=True
):
    """What mamba-ssm documents for mamba_inner_fn, written out with torch ops (a stand-in for the CUDA op)."""
    assert B is None and C is None
    length = xz.shape[-1]
    x, z = xz.chunk(2, dim=1)
    x = torch.nn.functional.silu(
        torch.nn.functional.conv1d(x, conv_w, conv_b, padding=conv_w.shape[-1] - 1, groups=x.shape[1])[..., :length]
    )
    x_dbl = torch.nn.functional.linear(x.transpose(1, 2), x_proj_w)
    rank, n = dt_proj_w.shape[1], A.shape[1]
    dt = (x_dbl[..., :rank] @ dt_proj_w.t()).transpose(1, 2)
    Bm, Cm = x_dbl[..., rank : rank + n].transpose(1, 2), x_dbl[..., -n:].transpose(1, 2)
    y = scan_module.selective_scan_reference(x, dt, A, Bm, Cm, D, z, delta_bias, delta_softplus)
    return torch.nn.functional.linear(y.transpose(1, 2), out_proj_w, out_proj_b)


def test_fused_block_passes_the_blocks_own_weights(monkeypatch):
    torch.manual_seed(0)
    block = Mamba(d_model=6, d_state=4, d_conv=3, expand=2, bias=True, scan_backend="reference")
    x = torch.randn(2, 11, 6)
    expected = block(x)
    xz = block.in_proj(x).transpose(1, 2).contiguous()
    assert torch.allclose(mamba_module._fused_block(_mamba_inner_semantics, xz, block), expected, atol=1e-5)


def test_fast_path_is_taken_only_where_it_can_run(monkeypatch):
    monkeypatch.setattr(mamba_module, "_mamba_inner_fn", lambda: _mamba_inner_semantics)
    block = Mamba(d_model=4, d_state=2)
    assert block._fast_path(torch.randn(1, 3, 4)) is None  # a CPU input
    assert Mamba(d_model=4, use_fast_path=False)._fast_path(torch.randn(1, 3, 4)) is None


def test_import_without_triton():
    code = (
        "import sys; sys.modules['triton'] = None\n"  # `import triton` now raises ImportError
        "import torch, mamba_forecast.ssm as ssm, mamba_forecast.models, mamba_forecast.layers\n"
        "assert sys.modules['triton'] is None\n"
        "assert ssm.resolve_backend('auto', torch.device('cpu')) == 'torch'\n"
        "assert not ssm.triton_scan_available('cpu') and not ssm.triton_scan_available('cuda')\n"
        "u = torch.randn(1, 2, 5, requires_grad=True)\n"
        "y = ssm.selective_scan(u, torch.rand(1, 2, 5), -torch.rand(2, 3), torch.randn(1, 3, 5), "
        "torch.randn(1, 3, 5))\n"
        "y.sum().backward(); assert u.grad is not None\n"
        "ssm.Mamba(d_model=4)(torch.randn(1, 3, 4))\n"
        "try:\n"
        "    ssm.resolve_backend('triton', torch.device('cpu'))\n"
        "except RuntimeError as e:\n"
        "    assert 'pip install triton' in str(e), e\n"
        "else:\n"
        "    raise AssertionError('no error')\n"
        "print('ok')\n"
    )
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    env.pop("MAMBA_FORECAST_SCAN", None)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


# ------------------------------------------------------------------------------------ compiling without a GPU


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1", reason="compiles the real kernels")
@pytest.mark.parametrize(
    "dtype, channels, d_state, length, options, every_candidate",
    [
        ("fp32", 512, 16, 321, (True, True, True, True), True),
        ("bf16", 512, 64, 96, (True, True, True, True), False),
        ("fp64", 64, 2, 11, (False, False, False, False), False),
    ],
)
def test_kernels_compile_for_sm90_without_a_gpu(dtype, channels, d_state, length, options, every_candidate):
    """The interpreter runs the kernels' Python; this compiles them to sm_90 machine code (H100/H200), which
    catches what only the compiler rejects (types, layouts, unsupported ops). No GPU is needed. The interpreter's
    fixed block sizes always; at the acceptance shape (32, 321, 512, 16) also every configuration autotune may
    time on the device."""
    triton = pytest.importorskip("triton")
    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError:
        pytest.skip("this triton has no ahead-of-time compile API")
    if importlib.util.find_spec("triton.backends.nvidia") is None:
        pytest.skip("this triton has no NVIDIA backend")
    from mamba_forecast.ssm import triton_scan

    tl = triton.language
    acc = "*fp64" if dtype == "fp64" else "*fp32"
    activations = {
        "u_ptr",
        "delta_ptr",
        "B_ptr",
        "C_ptr",
        "z_ptr",
        "out_ptr",
        "dout_ptr",
        "du_ptr",
        "ddelta_ptr",
        "dz_ptr",
    }
    has_d, has_z, has_bias, softplus = options
    runs = []
    for kernel, tile, per_warp in (
        (triton_scan._scan_fwd_kernel, triton_scan._FWD_TILE, triton_scan._FWD_TILE_PER_WARP),
        (triton_scan._scan_bwd_kernel, triton_scan._BWD_TILE, triton_scan._BWD_TILE_PER_WARP),
    ):
        fixed = (triton_scan._blocks(channels, d_state, length, tile)[0], triton_scan._NUM_WARPS)
        tuned = triton_scan._candidates(channels, d_state, length, per_warp) if every_candidate else []
        runs += [(kernel, block_d, warps) for block_d, warps in dict.fromkeys([fixed, *tuned])]
    for kernel, block_d, warps in runs:
        block_n, chunk = triton_scan._state_and_chunk(d_state, length)
        constexprs = dict(
            HAS_D=has_d,
            HAS_Z=has_z,
            HAS_BIAS=has_bias,
            SOFTPLUS=softplus,
            ACC=tl.float64 if dtype == "fp64" else tl.float32,
            BLOCK_D=block_d,
            BLOCK_N=block_n,
            CHUNK=chunk,
        )
        if "HAS_DLAST" in kernel.arg_names:
            constexprs["HAS_DLAST"] = True
        signature = {
            name: "constexpr"
            if name in constexprs
            else "i32"
            if name in ("n_ch", "n_st", "length", "n_chunks")
            else f"*{dtype}"
            if name in activations
            else acc
            for name in kernel.arg_names
        }
        compiled = triton.compile(
            ASTSource(fn=kernel, signature=signature, constexprs=constexprs),
            target=GPUTarget("cuda", 90, 32),
            options={"num_warps": warps},
        )
        assert compiled.asm.get("cubin"), (kernel.__name__, block_d, warps)


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1", reason="reads the module outside the interpreter")
def test_autotune_candidates_fit_their_register_budget():
    pytest.importorskip("triton")
    from mamba_forecast.ssm import triton_scan as ts

    configs = [ts.triton.Config({"BLOCK_D": b}, num_warps=w) for w in ts._WARPS for b in ts._BLOCKS_D]
    for channels, d_state, length in itertools.product([1, 5, 128, 512], [1, 2, 16, 33, 64, 256], [1, 11, 321]):
        block_n, chunk = ts._state_and_chunk(d_state, length)
        for per_warp in (ts._FWD_TILE_PER_WARP, ts._BWD_TILE_PER_WARP):
            candidates = ts._candidates(channels, d_state, length, per_warp)
            assert candidates and len(candidates) <= 3
            for block_d, warps in candidates:
                assert warps in ts._WARPS and block_d in ts._BLOCKS_D and block_d <= max(2, 2 * channels - 1)
                # every tile fits its warps' budget unless even two channels are too many (d_state 256 and up)
                assert block_d * block_n * chunk <= per_warp * warps or (block_d, warps) == (2, 8)
            kept = ts._prune(per_warp)(configs, {"n_ch": channels, "n_st": d_state, "length": length})
            assert sorted((c.kwargs["BLOCK_D"], c.num_warps) for c in kept) == sorted(candidates)


@pytest.mark.parametrize(
    "env, expected", [({}, True), ({"MAMBA_FORECAST_TRITON_AUTOTUNE": "0"}, False), ({"TRITON_INTERPRET": "1"}, False)]
)
def test_autotune_is_on_by_default_and_off_under_the_interpreter_or_the_switch(env, expected):
    pytest.importorskip("triton")
    base = {k: v for k, v in os.environ.items() if k not in ("MAMBA_FORECAST_TRITON_AUTOTUNE", "TRITON_INTERPRET")}
    env = dict(base, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **env)
    code = "from mamba_forecast.ssm import triton_scan as ts; print(ts._AUTOTUNE)"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == str(expected)


# ------------------------------------------------------------------------------------------------------ GPU

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs triton")


@pytest.mark.gpu
@needs_cuda
@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_triton_matches_torch_backend_on_cuda(dtype):
    gen = torch.Generator().manual_seed(0)
    for trial in range(6):
        batch, channels, length = (int(torch.randint(1, hi, (1,), generator=gen)) for hi in (5, 70, 400))
        d_state = int(torch.randint(1, 65, (1,), generator=gen))
        x = make_inputs(batch, channels, length, d_state, seed=trial)
        low = {
            k: (v.float() if k in ("A", "D", "delta_bias") and dtype == torch.bfloat16 else v.to(dtype)).cuda()
            for k, v in x.items()
        }
        # the same (rounded) cotangent for both: a bf16 output's gradient arrives in bf16
        out_t, last_t, g_t = run_scan(selective_scan, low, "triton", **FULL, cotangent_dtype=dtype)
        exact = {k: v.double() for k, v in low.items()}
        out_r, last_r, g_r = run_scan(selective_scan, exact, "torch", **FULL, cotangent_dtype=dtype)
        tol = 8e-3 if dtype == torch.bfloat16 else 1e-5
        shape = (batch, channels, length, d_state)
        assert rel_err(out_t, out_r) < tol, shape
        assert rel_err(last_t, last_r) < 1e-5, shape
        for k in g_r:
            assert rel_err(g_t[k], g_r[k]) < (1e-5 if k in ("A", "D", "delta_bias") else tol), (k, shape)


@pytest.mark.gpu
@needs_cuda
@needs_triton
def test_auto_runs_fp64_on_cuda():
    x = {k: v.cuda() for k, v in make_inputs(2, 8, 50, 16, dtype=torch.float64).items()}
    backend = resolve_backend("auto", x["u"].device, torch.float64, 16)
    assert backend in ("triton", "torch")
    out = selective_scan(**x, delta_softplus=True)
    ref = selective_scan(**x, delta_softplus=True, backend="reference")
    assert out.dtype == torch.float64 and rel_err(out, ref) < 1e-10


@pytest.mark.gpu
@needs_cuda
@pytest.mark.skipif(
    importlib.util.find_spec("mamba_ssm") is None or importlib.util.find_spec("causal_conv1d") is None,
    reason="needs mamba-ssm and causal-conv1d",
)
@pytest.mark.parametrize("d_model, d_conv", [(16, 4), (5, 3), (12, 2)])
def test_fused_block_matches_op_by_op_on_cuda(d_model, d_conv):
    torch.manual_seed(0)
    fused = Mamba(d_model=d_model, d_state=16, d_conv=d_conv, expand=1).cuda()  # d_inner 5: not a multiple of 8
    assert fused._fast_path(torch.randn(1, 2, d_model, device="cuda")) is not None
    plain = Mamba(
        d_model=d_model, d_state=16, d_conv=d_conv, expand=1, use_fast_path=False, scan_backend="torch"
    ).cuda()
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(3, 37, d_model, device="cuda")
    outs = []
    for block in (fused, plain):
        block.zero_grad()
        x_leaf = x.clone().requires_grad_()
        y = block(x_leaf)
        y.square().sum().backward()
        outs.append((y.detach(), x_leaf.grad, {k: p.grad.clone() for k, p in block.named_parameters()}))
    (yf, gxf, gpf), (yp, gxp, gpp) = outs
    assert rel_err(yf, yp) < 1e-4 and rel_err(gxf, gxp) < 1e-4
    for k in gpp:
        assert rel_err(gpf[k], gpp[k]) < 1e-3, k


if __name__ == "__main__" and "--worker" in sys.argv:
    _worker()
