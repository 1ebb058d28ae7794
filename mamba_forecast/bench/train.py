"""The official training loop, as a lean plain-PyTorch loop (no Lightning: faster on CPU, no dependency).

Mirrors ``experiments/exp_long_term_forecasting.py`` of the S-Mamba / iTransformer code:

* ``Adam(lr)``, no weight decay, ``MSELoss`` on the z-scored targets;
* train windows shuffled, ``drop_last=True``; validation windows also shuffled with ``drop_last=True``
  (the official loader does that) and the validation loss is the mean of the per-batch losses;
* early stopping on the validation MSE, patience 3, delta 0; the best weights are restored before testing;
* ``lradj='type1'``: after epoch ``e`` (1-indexed) the LR is set to ``lr0 * 0.5 ** (e - 1)``; the official
  code calls ``adjust_learning_rate(optim, epoch + 1)`` after epoch index ``epoch``, so epochs 1 and 2 both run
  at ``lr0``, epoch 3 at ``lr0 / 2``, epoch 4 at ``lr0 / 4`` ... (see :func:`type1_lr`);
* test: every window of the test segment (no drop-last), MSE and MAE over windows x H x N.

:func:`train` is the loop up to the restored best epoch and never reads the test segment (the tuner calls it);
:func:`fit_and_test` is :func:`train` followed by the test score. Besides the official ``Adam`` + ``type1``, the
loop offers ``AdamW`` (weight decay 0.01) and a per-epoch cosine schedule (``lradj="cosine"``), the optimiser of
TSM2's third-party replication, as options the tuner can choose.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from .protocol import ProtocolData, n_batches, window_batches


OPTIMIZERS = ("adam", "adamw")
LR_SCHEDULES = ("type1", "cosine", "constant")


def type1_lr(lr0: float, epoch: int) -> float:
    """Learning rate used during epoch ``epoch`` (1-indexed) under the official ``type1`` schedule."""
    return lr0 * 0.5 ** max(0, epoch - 2)


def epoch_lr(lr0: float, epoch: int, epochs: int, lradj: str = "type1") -> float:
    """Learning rate of epoch ``epoch`` (1-indexed) of ``epochs`` under schedule ``lradj``.

    ``type1``: the official halving; ``cosine``: ``lr0 (1 + cos(pi (epoch - 1) / epochs)) / 2``, from ``lr0`` at
    the first epoch towards 0; ``constant``: ``lr0`` throughout.
    """
    if lradj == "type1":
        return type1_lr(lr0, epoch)
    if lradj == "cosine":
        return lr0 * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / epochs))
    if lradj == "constant":
        return lr0
    raise ValueError(f"lradj must be one of {LR_SCHEDULES}, got {lradj!r}")


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


class EarlyStopping:
    """Stop after ``patience`` epochs in a row whose validation loss is above the best; keep the best weights.

    As the official ``EarlyStopping`` (delta 0): a loss equal to the best counts as an improvement.
    """

    def __init__(self, patience: int = 3):
        self.patience = patience
        self.best = math.inf
        self.best_epoch = 0
        self.best_state: dict | None = None
        self.counter = 0
        self.stop = False

    def step(self, val_loss: float, model: nn.Module, epoch: int) -> None:
        if val_loss <= self.best or self.best_state is None:
            self.best, self.best_epoch, self.counter = val_loss, epoch, 0
            self.best_state = copy.deepcopy({k: v.detach().clone() for k, v in model.state_dict().items()})
        else:
            self.counter += 1
            self.stop = self.counter >= self.patience

    def restore(self, model: nn.Module) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


class Progress:
    """A small progress line on stderr; uses tqdm when it is importable."""

    def __init__(self, total: int, desc: str, enabled: bool = True):
        self.enabled = enabled
        self.total, self.desc, self.n, self.t0 = total, desc, 0, time.time()
        self._bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False, mininterval=2.0)
            except ImportError:
                self._last = 0.0

    def update(self, n: int = 1, **postfix) -> None:
        self.n += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
        elif time.time() - self._last > 2.0 or self.n == self.total:
            self._last = time.time()
            extra = " ".join(f"{k}={v}" for k, v in postfix.items())
            print(f"\r{self.desc}: {self.n}/{self.total} {time.time() - self.t0:.0f}s {extra}",
                  end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            print(file=sys.stderr, flush=True)


@dataclass
class FitResult:
    mse: float
    mae: float
    epochs_run: int
    best_epoch: int
    sec_per_epoch: float
    train_sec: float
    test_sec: float
    n_test_windows: int
    history: list = field(default_factory=list)  # per epoch: {epoch, lr, train_loss, val_loss, sec}
    sample: dict | None = None  # one test window: history / truth / forecast of every variate
    val_loss: float = math.nan  # the restored epoch's validation criterion


def _to(t, device):
    return None if t is None else t.to(device, non_blocking=True)


@torch.no_grad()
def evaluate(model, forward_fn, data: ProtocolData, split: str, horizon: int, batch_size: int, device,
             *, shuffle=False, drop_last=False, generator=None, keep_window: int | None = None):
    """Mean-of-batch MSE (the validation criterion) and exact MSE / MAE over every window x H x N."""
    model.eval()
    values, marks = data.segment(split)
    L = data.input_size
    sq = ab = 0.0
    count = 0
    batch_losses = []
    sample = None
    seen = 0
    for x, xm, y in window_batches(values, marks, L, horizon, batch_size, shuffle=shuffle,
                                   drop_last=drop_last, generator=generator):
        pred = forward_fn(model, _to(x, device), _to(xm, device)).float()
        y = y.to(device)
        diff = pred - y
        batch_losses.append(float((diff**2).mean()))
        sq += float((diff.double() ** 2).sum())
        ab += float(diff.double().abs().sum())
        count += diff.numel()
        if keep_window is not None and sample is None and seen <= keep_window < seen + x.shape[0]:
            j = keep_window - seen
            sample = {"history": x[j].numpy(), "truth": y[j].cpu().numpy(), "forecast": pred[j].cpu().numpy()}
        seen += x.shape[0]
    mean_batch = float(np.mean(batch_losses)) if batch_losses else math.nan
    return mean_batch, sq / max(count, 1), ab / max(count, 1), sample


@dataclass
class TrainResult:
    epochs_run: int
    best_epoch: int
    best_val_loss: float
    sec_per_epoch: float
    train_sec: float
    history: list = field(default_factory=list)  # per epoch: {epoch, lr, train_loss, val_loss, sec}


def train(
    model: nn.Module,
    data: ProtocolData,
    horizon: int,
    *,
    forward_fn,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int = 3,
    optimizer: str = "adam",
    lradj: str = "type1",
    device: str | torch.device = "cpu",
    seed: int = 2023,
    max_train_batches: int | None = None,
    progress: bool = True,
    log=print,
    on_epoch=None,
) -> TrainResult:
    """Train with the official loop on the train split, select on the validation split, restore the best epoch.

    Reads only the train and validation segments. ``on_epoch(epoch, val_loss)`` is called after each epoch's
    validation (the tuner reports to Optuna there, and may raise to prune the run).
    """
    data.check_windows(horizon)
    device = torch.device(device)
    model.to(device)
    optim = make_optimizer(optimizer, model.parameters(), learning_rate)
    criterion = nn.MSELoss()
    gen = torch.Generator().manual_seed(seed)
    stopper = EarlyStopping(patience)
    values, marks = data.segment("train")
    L = data.input_size
    n_train = data.n_windows("train", horizon)
    steps = n_batches(n_train, batch_size, drop_last=True)
    if steps == 0:  # fewer training windows than one batch: train on the one partial batch
        steps = 1
    drop_last = n_train >= batch_size
    if max_train_batches:
        steps = min(steps, max_train_batches)
    history = []
    t_train = time.time()
    for epoch in range(1, epochs + 1):
        lr = epoch_lr(learning_rate, epoch, epochs, lradj)
        for group in optim.param_groups:
            group["lr"] = lr
        model.train()
        t0 = time.time()
        losses = []
        bar = Progress(steps, f"epoch {epoch}/{epochs}", enabled=progress)
        for i, (x, xm, y) in enumerate(window_batches(values, marks, L, horizon, batch_size, shuffle=True,
                                                      drop_last=drop_last, generator=gen)):
            if i >= steps:
                break
            optim.zero_grad(set_to_none=True)
            pred = forward_fn(model, _to(x, device), _to(xm, device))
            loss = criterion(pred, y.to(device))
            loss.backward()
            optim.step()
            losses.append(loss.item())
            bar.update(1, loss=f"{np.mean(losses[-50:]):.4f}")
        bar.close()
        val_loss, _, _, _ = evaluate(model, forward_fn, data, "val", horizon, batch_size, device,
                                     shuffle=True, drop_last=True, generator=gen)
        if math.isnan(val_loss):  # fewer validation windows than one batch: score every window
            val_loss = evaluate(model, forward_fn, data, "val", horizon, batch_size, device)[1]
        sec = time.time() - t0
        history.append({"epoch": epoch, "lr": lr, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
                        "sec": sec})
        log(f"epoch {epoch}: lr {lr:.3g} train {np.mean(losses):.5f} val {val_loss:.5f} ({sec:.1f}s)")
        stopper.step(val_loss, model, epoch)
        if on_epoch is not None:
            on_epoch(epoch, val_loss)
        if stopper.stop:
            log(f"early stopping after epoch {epoch} (best epoch {stopper.best_epoch})")
            break
    train_sec = time.time() - t_train
    stopper.restore(model)
    return TrainResult(
        epochs_run=len(history), best_epoch=stopper.best_epoch, best_val_loss=stopper.best,
        sec_per_epoch=float(np.mean([h["sec"] for h in history])), train_sec=train_sec, history=history,
    )


def fit_and_test(
    model: nn.Module,
    data: ProtocolData,
    horizon: int,
    *,
    forward_fn,
    device: str | torch.device = "cpu",
    test_batch_size: int = 256,
    sample_window: int = 0,
    **train_kwargs,
) -> FitResult:
    """:func:`train` (official loop, best validation epoch restored), then score every test window."""
    trained = train(model, data, horizon, forward_fn=forward_fn, device=device, **train_kwargs)
    t0 = time.time()
    _, mse, mae, sample = evaluate(model, forward_fn, data, "test", horizon, test_batch_size, torch.device(device),
                                   keep_window=sample_window)
    test_sec = time.time() - t0
    return FitResult(
        mse=mse, mae=mae, epochs_run=trained.epochs_run, best_epoch=trained.best_epoch,
        sec_per_epoch=trained.sec_per_epoch, train_sec=trained.train_sec, test_sec=test_sec,
        n_test_windows=data.n_windows("test", horizon), history=trained.history, sample=sample,
        val_loss=trained.best_val_loss,
    )
