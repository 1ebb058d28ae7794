"""Training on several devices: Lightning's DDP in both hosts, and NeuralForecast's distributed fit on Spark.

DDP runs on the CPU here (``accelerator="cpu"``, two processes, gloo): the same code path as several GPUs,
except for the device. Lightning's ``ddp`` launcher re-runs the training script for rank 1, so each DDP test
runs a small script in a subprocess; each rank records its weights at the start and end of training, its
training losses and its forecasts, and the test compares the ranks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# Shared by both DDP scripts: a callback that records each rank's weights and losses.
_RECORDER = """
import os, sys
import numpy as np, pandas as pd, torch
import pytorch_lightning as pl

torch.set_num_threads(1)
OUT = sys.argv[1]


class Recorder(pl.Callback):
    def on_train_start(self, trainer, module):
        torch.save({k: v.detach().clone() for k, v in module.state_dict().items()},
                   f"{OUT}/start{trainer.global_rank}.pt")

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        with open(f"{OUT}/loss{trainer.global_rank}.txt", "a") as f:
            f.write(f"{float(outputs['loss'])}\\n")


def rank():
    return int(os.environ.get("LOCAL_RANK", 0))


def values(n_series=3, length=96):
    rng = np.random.default_rng(0)
    t = np.arange(length)[:, None]
    return np.hstack([10.0 * (i + 1) + np.sin(t / 4) + 0.3 * rng.standard_normal((length, 1))
                      for i in range(n_series)]).astype(np.float32)


QUIET = dict(accelerator="cpu", enable_progress_bar=False, logger=False, enable_model_summary=False)
"""

_NF_SCRIPT = (
    _RECORDER
    + """
from neuralforecast import NeuralForecast
from mamba_forecast.neuralforecast import SMamba

v = values()
ds = pd.date_range("2024-01-01", periods=len(v), freq="h")
df = pd.concat([pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": v[:, i]}) for i in range(v.shape[1])])
model = SMamba(h=12, input_size=24, d_model=16, d_ff=16, e_layers=1, d_state=4, max_steps=3, val_check_steps=3,
               strategy="ddp", devices=2, callbacks=[Recorder()], **QUIET)
nf = NeuralForecast(models=[model], freq="h")
nf.fit(df)
torch.save(nf.models[0].state_dict(), f"{OUT}/end{rank()}.pt")
nf.predict().to_csv(f"{OUT}/forecast{rank()}.csv", index=False)
"""
)

_DARTS_SCRIPT = (
    _RECORDER
    + """
from darts import TimeSeries
from mamba_forecast.darts import SMambaModel

v = values()
times = pd.date_range("2024-01-01", periods=len(v), freq="h")
series = [TimeSeries.from_times_and_values(times, v + 10.0 * k) for k in range(2)]
model = SMambaModel(24, 12, d_model=16, d_ff=16, e_layers=1, d_state=4, n_epochs=2, batch_size=16, random_state=0,
                    pl_trainer_kwargs={"strategy": "ddp", "devices": 2, "callbacks": [Recorder()], **QUIET})
model.fit(series)
torch.save(model.model.state_dict(), f"{OUT}/end{rank()}.pt")
forecasts = model.predict(12, series=series)
np.save(f"{OUT}/forecast{rank()}.npy", np.stack([f.values() for f in forecasts]))
"""
)


def _run_ddp(script: str, out: Path) -> None:
    path = out / "train.py"
    path.write_text(textwrap.dedent(script))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run(
        [sys.executable, str(path), str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]


def _check_ranks_in_sync(out: Path) -> None:
    """Both ranks trained on different data, ended with identical, finite weights that training changed."""
    start = [torch.load(out / f"start{r}.pt") for r in (0, 1)]
    end = [torch.load(out / f"end{r}.pt") for r in (0, 1)]
    assert start[0].keys() == end[0].keys() == end[1].keys()
    for name in end[0]:
        assert torch.equal(start[0][name], start[1][name]), name  # DDP starts both ranks from rank 0's weights
        assert torch.equal(end[0][name], end[1][name]), name  # and averages the gradients at every step
        assert torch.isfinite(end[0][name]).all(), name
    changed = [name for name in end[0] if not torch.equal(start[0][name], end[0][name])]
    assert len(changed) > len(end[0]) // 2, "training left most weights unchanged"
    losses = [np.loadtxt(out / f"loss{r}.txt", ndmin=1) for r in (0, 1)]
    assert len(losses[0]) == len(losses[1]) > 0
    assert losses[0][0] != losses[1][0], "both ranks trained on the same windows: no data parallelism"


# ----------------------------------------------------------------------------------------------------
# DDP
# ----------------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_neuralforecast_ddp_on_two_processes(tmp_path):
    """SMamba(strategy="ddp", devices=2): NeuralForecast shards the windows across the ranks (each sees every
    series), DDP keeps the weights identical, and predict after the fit gives every rank the whole forecast."""
    pytest.importorskip("neuralforecast")
    _run_ddp(_NF_SCRIPT, tmp_path)
    _check_ranks_in_sync(tmp_path)
    forecasts = [pd.read_csv(tmp_path / f"forecast{r}.csv") for r in (0, 1)]
    assert len(forecasts[0]) == 3 * 12 and set(forecasts[0]["unique_id"]) == {"s0", "s1", "s2"}
    assert np.isfinite(forecasts[0]["SMamba"]).all()
    pd.testing.assert_frame_equal(forecasts[0], forecasts[1])
    levels = forecasts[0].groupby("unique_id")["SMamba"].mean()
    assert levels["s0"] < levels["s1"] < levels["s2"]  # per-series levels 10/20/30 survive the short training


@pytest.mark.integration
def test_darts_ddp_on_two_processes(tmp_path):
    """SMambaModel with pl_trainer_kwargs strategy="ddp", devices=2: Darts' distributed sampler splits the
    samples, DDP keeps the weights identical, and predict returns every series on every rank (it runs on one
    device; Lightning's DDP predict would hand each rank only its share of the series)."""
    pytest.importorskip("darts")
    _run_ddp(_DARTS_SCRIPT, tmp_path)
    _check_ranks_in_sync(tmp_path)
    forecasts = [np.load(tmp_path / f"forecast{r}.npy") for r in (0, 1)]
    assert forecasts[0].shape == (2, 12, 3)  # both series, 12 steps, 3 components
    assert np.isfinite(forecasts[0]).all()
    np.testing.assert_array_equal(forecasts[0], forecasts[1])
    assert (forecasts[0][1] - forecasts[0][0]).mean() > 5  # the second series sits 10 above the first


def test_darts_predict_trainer_uses_one_device():
    """Which trainer settings make Darts' predict fall back to one device (and which are left alone)."""
    pytest.importorskip("darts")
    from mamba_forecast.darts._base import _one_device_trainer_params as one

    assert one({"accelerator": "cpu"}) is None
    assert one({"accelerator": "gpu", "devices": 1}) is None
    assert one({"accelerator": "gpu", "devices": [3]}) is None
    assert one({"accelerator": "cpu", "strategy": "ddp", "devices": 2}) == {
        "accelerator": "cpu",
        "strategy": "auto",
        "devices": 1,
    }
    assert one({"accelerator": "gpu", "devices": [2, 3]})["devices"] == [2]
    assert one({"accelerator": "gpu", "devices": "0,1"})["devices"] == [0]
    several_gpus = torch.cuda.device_count() > 1
    assert (one({"accelerator": "gpu", "devices": -1}) is not None) == several_gpus


# ----------------------------------------------------------------------------------------------------
# Spark (NeuralForecast's distributed fit)
# ----------------------------------------------------------------------------------------------------


def test_distributed_fit_refuses_models_sized_by_the_number_of_series():
    """A Spark worker sees only its partition's series: models whose layers depend on the number of series
    are refused before any worker starts, with the reason."""
    pytest.importorskip("neuralforecast")
    from neuralforecast import DistributedConfig
    from neuralforecast.tsdataset import TimeSeriesDataset

    from mamba_forecast.neuralforecast import AttentionMamba, SMamba

    ds = pd.date_range("2024-01-01", periods=60, freq="h")
    df = pd.concat([pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": np.arange(60.0), "x": 1.0}) for i in range(3)])
    dataset, *_ = TimeSeriesDataset.from_df(df)
    config = DistributedConfig(partitions_path="unused", num_nodes=1, devices=2)
    small = dict(h=12, input_size=24, d_model=16, e_layers=1, accelerator="cpu")
    with pytest.raises(ValueError, match="AttentionMamba has a layer sized by the number of series.*partition"):
        AttentionMamba(n_series=3, **small).fit(dataset, distributed_config=config)
    with pytest.raises(ValueError, match="SMamba has historical/future exogenous inputs.*partition"):
        SMamba(hist_exog_list=["x"], **small).fit(dataset, distributed_config=config)


@pytest.mark.integration
def test_spark_example_runs_in_fast_mode():
    """examples/spark_distributed.py: distributed fit on local[2] Spark, then local and Spark forecasts."""
    pytest.importorskip("pyspark")
    pytest.importorskip("fugue")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs a Java runtime")
    env = {**os.environ, "MAMBA_FORECAST_FAST": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "spark_distributed.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "7 series forecast locally, 7 on Spark" in proc.stdout, proc.stdout[-3000:]
    mae = float(proc.stdout.split("MAE ")[-1].split()[0])
    assert np.isfinite(mae) and mae < 10  # ETTh1 oil temperatures: a forecast, not garbage
