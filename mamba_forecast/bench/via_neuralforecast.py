"""``--via neuralforecast``: train one cell through the NeuralForecast adapter, score it with the protocol.

Same data (z-scored with training statistics), same splits, same scoring (every test window, MSE / MAE on the
z-scored scale over windows x H x N). Training is NeuralForecast's own loop, configured to match the harness
as closely as its API allows:

* ``windows_batch_size`` = the preset batch size, ``max_steps`` = epochs x (train windows // batch);
* LR: ``StepLR(step_size=steps_per_epoch, gamma=0.5)`` stepped per optimisation step (halving per epoch);
* validation once per "epoch" on the whole validation segment, early stopping with patience 3 checks;
* ``loss=MSE()``, ``valid_loss=MSE()`` (the adapter's default loss is MAE);
* ``scaler_type="identity"`` (the data are already z-scored); for S-Mamba the calendar features go in as
  ``hist_exog_list``. The adapter treats historical exogenous columns per series, so they become
  4 x N extra tokens (identical across series) instead of the official code's 4 shared tokens.

Differences that remain: NF samples training windows at random each step rather than passing over a
permutation; its early stopping does not restore the best weights; the LR's first halving comes one epoch
earlier than the official type1 schedule.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from .presets import Preset
from .protocol import ProtocolData
from .train import FitResult

CALENDAR = ["hour_of_day", "day_of_week", "day_of_month", "day_of_year"]


def long_frame(data: ProtocolData, end: int, use_marks: bool) -> pd.DataFrame:
    """Rows ``[0, end)`` as NeuralForecast's long format: ``unique_id, ds, y`` (+ calendar columns)."""
    n = end
    frames = []
    for j, col in enumerate(data.columns):
        f = pd.DataFrame({"unique_id": str(col), "ds": data.dates[:n], "y": data.values[:n, j].astype(np.float64)})
        if use_marks:
            for k, name in enumerate(CALENDAR):
                f[name] = data.marks[:n, k]
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def _schedule(preset: Preset, steps_per_epoch: int) -> dict:
    """The preset's optimiser and per-epoch schedule as NeuralForecast arguments (stepped per optimisation step)."""
    out: dict[str, Any] = {}
    if preset.optimizer == "adamw":
        out.update(optimizer=torch.optim.AdamW, optimizer_kwargs={"weight_decay": 0.01})
    if preset.lradj == "type1":
        out.update(
            lr_scheduler=torch.optim.lr_scheduler.StepLR,
            lr_scheduler_kwargs={"step_size": steps_per_epoch, "gamma": 0.5},
        )
    elif preset.lradj == "cosine":
        out.update(
            lr_scheduler=torch.optim.lr_scheduler.CosineAnnealingLR,
            lr_scheduler_kwargs={"T_max": preset.epochs * steps_per_epoch},
        )
    else:  # constant
        out.update(lr_scheduler=torch.optim.lr_scheduler.StepLR, lr_scheduler_kwargs={"step_size": 1, "gamma": 1.0})
    return out


def fit_and_test_neuralforecast(
    model_name: str,
    data: ProtocolData,
    horizon: int,
    preset: Preset,
    *,
    seed: int,
    device: torch.device,
    use_marks: bool,
    max_train_batches=None,
    progress=True,
    log=print,
) -> tuple[FitResult, int]:
    try:
        from neuralforecast import NeuralForecast
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("--via neuralforecast needs `pip install mamba-forecast[neuralforecast]`") from exc
    from neuralforecast.losses.pytorch import MSE

    try:
        cls = getattr(importlib.import_module("mamba_forecast.neuralforecast"), model_name)
    except (ImportError, AttributeError) as exc:
        raise ImportError(f"mamba_forecast.neuralforecast.{model_name} is not available: {exc}") from exc

    b_train, b_val, b_test = (data.borders[s] for s in ("train", "val", "test"))
    if b_test[0] != b_val[1] - data.input_size:
        raise ValueError(
            f"--via neuralforecast needs contiguous validation and test segments; {data.name}'s split keeps its "
            "recordings apart (test starts a new recording). Use --via harness for it."
        )
    n_val = b_val[1] - b_train[1]  # validation target rows
    n_test = b_test[1] - b_val[1]  # test target rows
    steps_per_epoch = max(1, data.n_windows("train", horizon) // preset.batch_size)
    if max_train_batches:
        steps_per_epoch = min(steps_per_epoch, max_train_batches)
    df = long_frame(data, b_test[1], use_marks)
    architecture = dict(
        d_model=preset.d_model,
        d_ff=preset.d_ff,
        e_layers=preset.e_layers,
        d_state=preset.d_state,
        d_conv=preset.d_conv,
        expand=preset.expand,
        dropout=preset.dropout,
        use_norm=preset.use_norm,
        **preset.extra,
    )
    takes = cls.spec.arguments  # e.g. TSM2 has no d_ff
    kwargs = dict(
        h=horizon,
        input_size=data.input_size,
        n_series=data.n_series,
        **{k: v for k, v in architecture.items() if k in takes},
        learning_rate=preset.learning_rate,
        max_steps=preset.epochs * steps_per_epoch,
        val_check_steps=steps_per_epoch,
        early_stop_patience_steps=preset.patience,
        batch_size=data.n_series,
        windows_batch_size=preset.batch_size,
        valid_batch_size=data.n_series,
        inference_windows_batch_size=256,
        scaler_type="identity",
        random_seed=seed,
        loss=MSE(),
        valid_loss=MSE(),
        **_schedule(preset, steps_per_epoch),
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        enable_progress_bar=progress,
        enable_model_summary=False,
        logger=False,
    )
    if use_marks:
        kwargs["hist_exog_list"] = CALENDAR
    model = cls(**kwargs)
    nf = NeuralForecast(models=[model], freq=pd.infer_freq(data.dates[:50]) or "h")
    log(
        f"[via neuralforecast] {model_name}: max_steps {kwargs['max_steps']}, val every {steps_per_epoch} steps, "
        f"{n_val} val / {n_test} test target rows"
    )
    t0 = time.time()
    cv = nf.cross_validation(df=df, val_size=n_val, test_size=n_test, n_windows=None, step_size=1, refit=False)
    total = time.time() - t0
    pred_col = [c for c in cv.columns if c not in ("unique_id", "ds", "cutoff", "y")][0]
    diff = cv[pred_col].to_numpy(np.float64) - cv["y"].to_numpy(np.float64)
    n_windows = cv["cutoff"].nunique()
    fitted = nf.models[0]
    steps = int(getattr(getattr(fitted, "trainer", None), "global_step", 0) or kwargs["max_steps"])
    epochs_run = max(1, round(steps / steps_per_epoch))
    first = cv[cv["cutoff"] == cv["cutoff"].min()]
    target = str(data.columns[-1])
    sample = None
    t = first[first["unique_id"] == target]
    if len(t):
        cut_idx = int(np.searchsorted(data.dates, t["cutoff"].iloc[0]))
        hist = data.values[cut_idx - data.input_size + 1 : cut_idx + 1]
        sample = {
            "history": hist,
            "truth": np.tile(t["y"].to_numpy()[:, None], (1, data.n_series)),
            "forecast": np.tile(t[pred_col].to_numpy()[:, None], (1, data.n_series)),
        }
    result = FitResult(
        mse=float(np.mean(diff**2)),
        mae=float(np.mean(np.abs(diff))),
        epochs_run=epochs_run,
        best_epoch=0,
        sec_per_epoch=total / epochs_run,
        train_sec=total,
        test_sec=0.0,
        n_test_windows=int(n_windows),
        sample=sample,
    )
    if n_windows != data.n_windows("test", horizon):
        log(f"warning: NeuralForecast scored {n_windows} windows, the protocol has {data.n_windows('test', horizon)}")
    params = sum(p.numel() for p in fitted.parameters())
    return result, params
