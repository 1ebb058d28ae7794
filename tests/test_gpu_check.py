"""benchmarks/gpu_check.sh, the one prepared GPU call: its figures file and its dry run on a CPU (the GPU's own
numbers come only from a GPU)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("scan", "steps", "cells", "bf16")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("MAMBA_FORECAST_TRITON_AUTOTUNE", "TRITON_INTERPRET")}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    env.update(extra)
    return env


def _measure(spec: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, "benchmarks/gpu_measure.py", "--child", json.dumps(spec)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_out_of_time_every_section_is_listed_as_skipped_and_the_figures_file_keeps_its_schema(tmp_path):
    out = tmp_path / "check.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--device", "cpu", "--budget", "0.01", "--json", str(out)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["device"] and figures["dry_run"] is True
    assert all(figures[key] == [] for key in SECTIONS)
    skipped = " | ".join(figures["skipped"])
    for what in ("parity torch", "scan speed torch", "pytest -m gpu", "steps auto", "cell SMamba", "bf16 TSM2"):
        assert what in skipped


def test_the_measurements_report_the_schemas_fields():
    scan = _measure({"what": "scan", "backend": "torch", "shapes": [[2, 9, 8, 4]], "reps": 1, "device": "cpu"})
    (row,) = scan["rows"]
    assert row["backend"] == "torch" and row["shape"] == [2, 9, 8, 4] and row["fwd_bwd_ms"] > 0
    assert row["max_rel_err_vs_fp64"] < 1e-5  # against the same backend in fp64
    steps = _measure(
        {"what": "steps", "backend": "auto", "configs": ["smamba-etth1"], "batch": 2, "reps": 1, "device": "cpu"}
    )
    (row,) = steps["rows"]
    assert row["config"] == "smamba-etth1" and row["ms"] > 0 and "peak_mib" in row and row["kernels"] is None
    tiny = {"d_model": 16, "d_ff": 16, "d_state": 2, "e_layers": 1}
    cell = _measure(
        {
            "what": "cell",
            "model": "SMamba",
            "precisions": ["fp32", "bf16-mixed"],
            "epochs": 1,
            "device": "cpu",
            "max_train_batches": 2,
            "overrides": tiny,
        }
    )
    fp32, bf16 = cell["rows"]
    assert (fp32["precision"], bf16["precision"]) == ("fp32", "bf16-mixed")
    for row in (fp32, bf16):
        assert (row["model"], row["dataset"], row["horizon"]) == ("SMamba", "ETTh1", 96)
        assert row["seconds"] > 0 and math.isfinite(row["mse"]) and row["epochs_run"] == 1
    assert bf16["mse"] == pytest.approx(fp32["mse"], rel=0.05)


@pytest.mark.integration
def test_the_dry_run_goes_through_every_section(tmp_path):
    """``DEVICE=cpu bash benchmarks/gpu_check.sh``: tiny shapes and models, Triton's interpreter (about 2 minutes on
    two cores)."""
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh"],
        cwd=ROOT,
        env=_env(DEVICE="cpu", OUT=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    figures = json.loads((tmp_path / "gpu_check.json").read_text())
    report = (tmp_path / "gpu_check.md").read_text()
    assert figures["skipped"] == []
    assert all(p["pass"] for p in figures["parity"])
    assert {p["backend"] for p in figures["parity"]} == {"triton", "torch"}
    assert {r["backend"] for r in figures["scan"]} == {"triton", "torch"}
    assert all(r["max_rel_err_vs_fp64"] < 1e-5 for r in figures["scan"])
    assert [r["config"] for r in figures["steps"]] == ["smamba-etth1"]
    assert [c["model"] for c in figures["cells"]] == ["SMamba"] and math.isfinite(figures["cells"][0]["seconds"])
    assert [b["model"] for b in figures["bf16"]] == ["SMamba", "AttentionMamba", "FMamba", "TSM2"]
    assert all(math.isfinite(b["mse_bf16"]) and b["speedup"] > 0 for b in figures["bf16"])
    assert "skipped" in figures["tests"]["summary"]  # the GPU tests skip on a CPU
    for title in ("Backend parity", "Selective scan", "GPU tests", "Training steps", "end to end", "bf16-mixed"):
        assert title in report
