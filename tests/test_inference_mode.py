"""Every predict path runs under ``torch.inference_mode()`` on the CPU at 1, 2 and 4 torch threads, with the scan's
load-adaptive threading off (the default) and on, at sizes where it scans blocks of rows on several threads.

NeuralForecast's and Darts' predict run under inference mode (Lightning's default). Inference mode is per thread,
so the scan's row workers must enter it too: a worker outside it that writes into a tensor the caller created
inside it raises "Inplace update to inference tensor outside InferenceMode is not allowed".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import QUIET, rel_err, synthetic_ett
from mamba_forecast.ssm import Mamba, cpu_scan_threading, cpu_threads, selective_scan
from mamba_forecast.ssm import mamba as mamba_module

THREADS = [1, 2, 4]
SETTINGS = [(threads, threading) for threads in THREADS for threading in (False, True)]
SETTING_IDS = [f"{t}threads-{'adaptive' if on else 'plain'}" for t, on in SETTINGS]


@pytest.fixture
def scans(monkeypatch):
    """Records, for every scan a Mamba block runs, whether it ran in inference mode; and the block count of
    every row-block plan (more than one: the scan ran on several threads)."""
    seen = {"inference": [], "blocks": []}
    scan = mamba_module.selective_scan
    plan = cpu_threads._row_blocks

    def scan_spy(*args, **kwargs):
        seen["inference"].append(torch.is_inference_mode_enabled())
        return scan(*args, **kwargs)

    def plan_spy(*args):
        blocks = plan(*args)
        seen["blocks"].append(len(blocks))
        return blocks

    monkeypatch.setattr(mamba_module, "selective_scan", scan_spy)
    monkeypatch.setattr(cpu_threads, "_row_blocks", plan_spy)
    return seen


def reset(seen) -> None:
    for records in seen.values():
        records.clear()


def run_at(threads: int, threading: bool, fn):
    """``fn()`` with torch at ``threads`` intra-op threads and the adaptive threading ``threading``; both come
    back afterwards, and the thread count must be the one set (the scan restores what it changes)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with cpu_scan_threading(threading):
            result = fn()
        assert torch.get_num_threads() == threads
        return result
    finally:
        torch.set_num_threads(old)


def check_pool(seen, threads: int, threading: bool) -> None:
    """The scans ran on several row blocks exactly when the adaptive threading had threads to use."""
    several = any(n > 1 for n in seen["blocks"])
    assert several == (threading and threads > 1), seen["blocks"]


def scan_inputs(seed=0):
    # the shape that crashed: u [batch 64, channels 512, length 7], d_state 64
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(64, 512, 7, generator=g),
        torch.rand(64, 512, 7, generator=g),
        -torch.rand(512, 64, generator=g),
        torch.randn(64, 64, 7, generator=g),
        torch.randn(64, 64, 7, generator=g),
    )


@pytest.mark.parametrize("threads, threading", SETTINGS, ids=SETTING_IDS)
def test_selective_scan_under_inference_mode(threads, threading, scans):
    inputs = scan_inputs()
    with torch.no_grad():
        expected = selective_scan(*inputs)
    reset(scans)

    def predict():
        with torch.inference_mode():
            return selective_scan(*inputs)

    out = run_at(threads, threading, predict)
    check_pool(scans, threads, threading)
    assert out.is_inference()
    assert rel_err(out, expected) < 1e-6


@pytest.mark.parametrize("threads, threading", SETTINGS, ids=SETTING_IDS)
def test_mamba_block_under_inference_mode(threads, threading, scans):
    torch.manual_seed(0)
    block = Mamba(d_model=16, d_state=16, expand=2).eval()
    x = torch.randn(256, 16, 16)  # 256 rows of 16 steps: at least 2^19 elements of work, whatever the chunk
    with torch.no_grad():
        expected = block(x)
    reset(scans)

    def predict():
        with torch.inference_mode():
            return block(x)

    out = run_at(threads, threading, predict)
    check_pool(scans, threads, threading)
    assert scans["inference"] and all(scans["inference"])
    assert rel_err(out, expected) < 1e-6


# ------------------------------------------------------------------------------------ the hosts' predict

# TSM2's time mixer scans the patches of every series as one row: 96 series, 15 patches (one chunk of 15 steps),
# d_inner 32 and d_state 16 make 737,280 elements of work, which the adaptive threading splits into two blocks
# (2^18 elements at least per block).
N_SERIES = 96
TSM2_ARGS = dict(d_model=16, e_layers=1, d_state=16, expand=2, patch_len=8, stride=4)


def _check_predictions(predictions: dict, scans_by_setting: dict) -> None:
    expected = predictions[1, False]
    for (threads, threading), pred in predictions.items():
        assert np.isfinite(pred).all()
        np.testing.assert_allclose(pred, expected, rtol=1e-4, atol=1e-5)
        seen = scans_by_setting[threads, threading]
        assert seen["inference"] and all(seen["inference"]), "the host's predict ran outside inference mode"
        check_pool(seen, threads, threading)


def _predict_everywhere(scans, predict) -> tuple[dict, dict]:
    predictions, seen = {}, {}
    for threads, threading in SETTINGS:
        reset(scans)
        predictions[threads, threading] = run_at(threads, threading, predict)
        seen[threads, threading] = {k: list(v) for k, v in scans.items()}
    return predictions, seen


def test_neuralforecast_predict_under_inference_mode(scans):
    pytest.importorskip("neuralforecast")
    from neuralforecast import NeuralForecast

    from mamba_forecast.neuralforecast import TSM2

    rng = np.random.default_rng(0)
    ds = pd.date_range("2024-01-01", periods=100, freq="h")
    df = pd.concat(
        [
            pd.DataFrame(
                {"unique_id": f"s{i}", "ds": ds, "y": np.sin(np.arange(100) / 4 + i) + 0.1 * rng.standard_normal(100)}
            )
            for i in range(N_SERIES)
        ],
        ignore_index=True,
    )
    nf = NeuralForecast(models=[TSM2(h=8, input_size=64, max_steps=1, **TSM2_ARGS, **QUIET)], freq="h")
    nf.fit(df)
    predictions, seen = _predict_everywhere(scans, lambda: nf.predict()["TSM2"].to_numpy())
    _check_predictions(predictions, seen)


def test_darts_predict_under_inference_mode(scans):
    pytest.importorskip("darts")
    from darts import TimeSeries

    from mamba_forecast.darts import TSM2Model

    rng = np.random.default_rng(0)
    values = np.sin(np.arange(100)[:, None] / 4 + np.arange(N_SERIES)) + 0.1 * rng.standard_normal((100, N_SERIES))
    series = TimeSeries.from_times_and_values(
        pd.date_range("2024-01-01", periods=100, freq="h"), values.astype(np.float32)
    )
    model = TSM2Model(
        64, 8, **TSM2_ARGS, n_epochs=1, batch_size=8, random_state=0, pl_trainer_kwargs={k: v for k, v in QUIET.items()}
    )
    model.fit(series)
    predictions, seen = _predict_everywhere(scans, lambda: model.predict(8, series=series).values())
    _check_predictions(predictions, seen)


def test_harness_evaluate_under_inference_mode(scans):
    from mamba_forecast.bench.protocol import prepare
    from mamba_forecast.bench.train import evaluate
    from mamba_forecast.models import SMamba

    # SMamba scans its 16 series tokens in each of 64 windows: 64 rows, d_inner 64, d_state 16
    data = prepare("ETTh1", 24, frame=synthetic_ett(n_series=15))
    torch.manual_seed(0)
    model = SMamba(24, 8, d_model=32, d_ff=32, e_layers=1, d_state=16, expand=2)

    def forward(m, x, x_mark):
        return m(x, None, None, None)

    def predict():
        with torch.inference_mode():
            _, mse, mae, _ = evaluate(model, forward, data, "test", 8, 64, torch.device("cpu"))
        return np.array([mse, mae])

    predictions, seen = _predict_everywhere(scans, predict)
    _check_predictions(predictions, seen)
