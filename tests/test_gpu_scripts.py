"""What the GPU grid scripts ask the harness for: each part's ``mamba-forecast`` commands, read through a stand-in
``python3`` that records its arguments instead of running them."""

import os
import shlex
import stat
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAPER_PARTS = ("tsm2-ett-h", "tsm2-rest", "tsm2-weather", "smamba", "grid", "weather")
HORIZONS = ("96", "192", "336", "720")
CONVERGE_PARTS = {
    "tsm2-converge-etth": {(d, h) for d in ("ETTh1", "ETTh2") for h in HORIZONS},
    "tsm2-converge-exchange": {("Exchange", h) for h in HORIZONS},
    "tsm2-converge-ettm1": {("ETTm1", h) for h in HORIZONS},
    "tsm2-converge-weather": {("Weather", h) for h in HORIZONS},
}


@pytest.fixture
def recorded(tmp_path):
    """``recorded(script, *args)`` runs a script with ``python3`` replaced; returns the harness commands it ran."""
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.txt"
    shim = bin_dir / "python3"
    # one write per call: the grid's cells run side by side
    shim.write_text(f'#!/usr/bin/env bash\nline=$(printf "%q " "$@")\necho "$line" >> {shlex.quote(str(log))}\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)

    def run(script, *args):
        log.write_text("")
        out = tmp_path / "out"
        env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", OUT=str(out), DEVICE="cpu")
        env.update(GPU_TESTS="0", BUDGET_S="30")
        proc = subprocess.run(["bash", script, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        calls = [shlex.split(line) for line in log.read_text().splitlines() if line.strip()]
        return [c for c in calls if c[:2] == ["-m", "mamba_forecast.cli"] and c[2:3] in (["bench"], ["tune"])]

    return run


def _option(call, name):
    return call[call.index(name) + 1] if name in call else None


@pytest.mark.parametrize("part", PAPER_PARTS)
def test_paper_parts_keep_the_official_protocol(recorded, part):
    """bench defaults to the converge protocol now: the reproductions must ask for the papers' loop, or they would
    neither resume from nor match the official rows already in results/bench_results.csv."""
    (call,) = recorded("benchmarks/gpu_sweep.sh", part)
    assert call[2] == "bench" and _option(call, "--protocol") == "official"


@pytest.mark.parametrize("part, cells", CONVERGE_PARTS.items())
def test_tsm2_converge_parts_run_each_cell_at_input_512_in_a_process_of_its_own(recorded, part, cells):
    calls = recorded("benchmarks/gpu_sweep.sh", part)
    assert {(_option(c, "--dataset"), _option(c, "--horizon")) for c in calls} == cells and len(calls) == len(cells)
    for call in calls:
        assert _option(call, "--protocol") == "converge" and _option(call, "--model") == "TSM2"
        assert _option(call, "--input-size") == "512" and _option(call, "--preset") == "official"
        assert "--set" not in call  # the replication's preset: batch and learning rate as in the official rows


def test_the_tuned_grid_searches_and_scores_under_the_official_protocol(recorded):
    calls = recorded("benchmarks/gpu_grid.sh", "tsm2-ETTh1")
    assert [c[2] for c in calls] == ["tune"] + ["bench"] * 6  # four horizons and two more seeds
    assert all(_option(c, "--protocol") == "official" for c in calls)
