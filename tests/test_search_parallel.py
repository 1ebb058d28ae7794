"""Hyperparameter search with trials running in parallel: Ray Tune on a local cluster, and Optuna threads.

The single-trial-at-a-time searches are in test_neuralforecast.py; here two tiny trials run at once (Optuna:
their intervals overlap; Ray: each in its own worker of a 2-CPU local cluster), and the refit best model must
forecast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("neuralforecast")

from neuralforecast import NeuralForecast

from mamba_forecast.neuralforecast import AutoFMamba, AutoSMamba

H, L = 12, 24
from conftest import QUIET as _QUIET  # noqa: E402

QUIET = {**_QUIET, "devices": 1}
FIXED = dict(max_steps=2, val_check_steps=1, input_size=L, d_model=16, d_ff=16, e_layers=1, d_state=4, **QUIET)


def panel(n_series=3, length=96):
    rng = np.random.default_rng(0)
    ds = pd.date_range("2024-01-01", periods=length, freq="h")
    cycle = np.sin(2 * np.pi * np.arange(length) / 24)
    return pd.concat(
        [
            pd.DataFrame(
                {"unique_id": f"s{i}", "ds": ds, "y": 10.0 * (i + 1) + cycle + 0.3 * rng.standard_normal(length)}
            )
            for i in range(n_series)
        ],
        ignore_index=True,
    )


def overlap(intervals) -> bool:
    """Whether all the (start, end) intervals share a common moment."""
    return max(start for start, _ in intervals) < min(end for _, end in intervals)


def interval_recorder(folder, parties=2, timeout=300.0):
    """A Lightning callback that writes ``<pid>.json`` = {start, end} (wall-clock training interval) into
    ``folder`` and, at the start of training, waits (up to ``timeout`` s) until ``parties`` processes have
    started training. Concurrent trials therefore overlap whatever their start-up costs; trials run one after
    the other do not (the first waits out the timeout alone, then ends before the second starts).

    The class is made here, not at module level, so that Ray pickles it by value for its worker processes."""
    import json
    import os
    import time
    from pathlib import Path

    from pytorch_lightning.callbacks import Callback

    class RecordInterval(Callback):
        def on_train_start(self, trainer, pl_module):
            started = time.time()
            path = Path(folder) / f"{os.getpid()}.json"
            path.write_text(json.dumps({"start": started}))
            while len(list(Path(folder).glob("*.json"))) < parties and time.time() - started < timeout:
                time.sleep(0.05)

        def on_train_end(self, trainer, pl_module):
            path = Path(folder) / f"{os.getpid()}.json"
            path.write_text(json.dumps({**json.loads(path.read_text()), "end": time.time()}))

    return RecordInterval()


@pytest.mark.integration
def test_ray_trials_run_concurrently_on_a_local_cluster(tmp_path):
    """ray.init(num_cpus=2) and RayOptions(cpus=1): Ray Tune runs the two trials at the same time, each in its
    own worker process (their recorded training intervals intersect), then NeuralForecast refits the best
    configuration and predicts."""
    import json

    ray = pytest.importorskip("ray")
    from neuralforecast.common._base_auto import RayOptions
    from ray import tune

    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        space = {
            **AutoSMamba.get_default_config(h=H, backend="ray"),
            **FIXED,
            "learning_rate": tune.choice([1e-3, 1e-2]),
            "callbacks": [interval_recorder(tmp_path)],
        }
        auto = AutoSMamba(h=H, backend="ray", num_samples=2, config=space, ray_options=RayOptions(cpus=1))
        nf = NeuralForecast(models=[auto], freq="h")
        nf.fit(panel())
        results = nf.models[0].results
        assert len(results) == 2 and not results.errors
        pids = set(results.get_dataframe()["pid"])
        assert len(pids) == 2  # two worker processes
        # the refit of the best configuration runs here, in this process, after the search
        intervals = {int(p.stem): json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
        trials = [(v["start"], v["end"]) for pid, v in intervals.items() if pid in pids]
        assert len(trials) == 2 and overlap(trials), intervals
        best = results.get_best_result().config
        assert best["d_model"] == 16 and best["learning_rate"] in (1e-3, 1e-2)
        forecast = nf.predict()
        assert len(forecast) == 3 * H and np.isfinite(forecast["AutoSMamba"]).all()
    finally:
        ray.shutdown()


def test_optuna_trials_run_in_parallel_threads():
    """Optuna runs trials in threads with study.optimize(n_jobs=...), which NeuralForecast forwards from
    OptunaOptions(study_kwargs=...): the two trials overlap, both complete, and the best model predicts."""
    optuna = pytest.importorskip("optuna")
    from neuralforecast.common._base_auto import OptunaOptions

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = AutoFMamba.get_default_config(h=H, backend="optuna")
    auto = AutoFMamba(
        h=H,
        backend="optuna",
        num_samples=2,
        config=lambda trial: {**space(trial), **FIXED},
        search_alg=optuna.samplers.RandomSampler(seed=0),
        optuna_options=OptunaOptions(study_kwargs={"n_jobs": 2}),
    )
    nf = NeuralForecast(models=[auto], freq="h")
    nf.fit(panel())
    trials = nf.models[0].results.trials
    assert len(trials) == 2 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert all(np.isfinite(t.value) for t in trials)
    assert overlap([(t.datetime_start, t.datetime_complete) for t in trials])
    forecast = nf.predict()
    assert len(forecast) == 3 * H and np.isfinite(forecast["AutoFMamba"]).all()
