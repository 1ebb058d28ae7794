"""The benchmark's training loop, as a lean plain-PyTorch loop (no Lightning: faster on CPU, no dependency).

Two protocols (:data:`PROTOCOLS`), recorded with every result row:

* ``"official"``: the loop of ``experiments/exp_long_term_forecasting.py`` in the S-Mamba / iTransformer code,
  kept to reproduce the papers: ``Adam(lr)``, ``MSELoss`` on the z-scored targets, train windows shuffled with
  ``drop_last=True``; the validation windows are also shuffled with ``drop_last=True`` (a different subset each
  epoch, as the official loader does) and the criterion is the mean of the per-batch losses; early stopping on
  it with patience 3 (delta 0); the preset's epoch cap (10 for most rows) and schedule. ``lradj='type1'`` halves
  the rate every epoch from the third on (:func:`type1_lr`): the official code calls
  ``adjust_learning_rate(optim, epoch + 1)`` after epoch index ``epoch``, so epochs 1 and 2 run at ``lr0``.
* ``"converge"``: training that early stopping ends, not a cap: every validation window in a fixed order
  (the criterion is the exact MSE over windows x H x N, the same number each time for the same weights), an
  epoch cap of 100, patience 5, and the ``"plateau"`` schedule where the preset names ``type1``: the rate is
  halved after every second epoch in a row without a new best, so it stays at ``lr0`` while the model improves
  and is halved twice before early stopping ends the run. (SAMFormer's protocol, which TSM2's baselines come
  from, trains up to 100 epochs with patience 5.)

Both restore the best epoch's weights before testing and score every window of the test segment (no drop-last):
MSE and MAE over windows x H x N. :func:`train` is the loop up to the restored best epoch and never reads the
test segment (the tuner calls it); :func:`fit_and_test` is :func:`train` followed by the test score. Besides
``Adam``, the loop offers ``AdamW`` (weight decay 0.01), a per-epoch cosine schedule over the epoch cap and a
constant rate, as options the tuner can choose.

On an accelerator the loop keeps the device busy: each segment is copied to the device once per run and windows
are gathered there (no host-to-device copy per batch, which would also wait for the queued work), losses and
evaluation sums stay on the device until the epoch ends, and evaluation runs in large batches. Two switches
change how, not what, it computes: ``precision="bf16-mixed"`` runs the forward passes under bf16 autocast (the
loss and the scan's state stay fp32) and ``compile`` runs the model through ``torch.compile``.
"""

from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch
import torch.nn as nn

from .protocol import ProtocolData, n_batches, window_batches

OPTIMIZERS = ("adam", "adamw")
PRECISIONS = ("fp32", "bf16-mixed")
LR_SCHEDULES = ("type1", "cosine", "constant", "plateau")
VALIDATIONS = ("shuffled", "full")
PLATEAU_EPOCHS = 2  # "plateau": halve the rate after this many epochs in a row without a new best


@dataclass(frozen=True)
class Protocol:
    """How a cell trains: what a result row records besides the preset (see the module docstring).

    ``max_epochs``/``patience``: None takes the preset's. ``validation``: ``"shuffled"`` (the official loader's
    shuffled, drop-last batches, mean of the batch losses) or ``"full"`` (every window, fixed order, exact MSE).
    ``schedules``: the schedule used in place of a preset's (``{"type1": "plateau"}``: the official halving
    becomes the plateau rule).
    """

    name: str
    max_epochs: int | None
    patience: int | None
    validation: str
    schedules: dict = field(default_factory=dict)

    def epochs(self, preset_epochs: int) -> int:
        return self.max_epochs if self.max_epochs is not None else preset_epochs

    def settings(self, preset) -> dict:
        """The training settings of ``preset`` under this protocol: ``epochs``, ``patience``, ``lradj``."""
        return {
            "epochs": self.epochs(preset.epochs),
            "patience": self.patience if self.patience is not None else preset.patience,
            "lradj": self.schedules.get(preset.lradj, preset.lradj),
        }


PROTOCOLS = {
    "official": Protocol("official", None, None, "shuffled"),
    "converge": Protocol("converge", 100, 5, "full", {"type1": "plateau"}),
}
DEFAULT_PROTOCOL = "converge"


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {name!r}") from None


def type1_lr(lr0: float, epoch: int) -> float:
    """Learning rate used during epoch ``epoch`` (1-indexed) under the official ``type1`` schedule."""
    return lr0 * 0.5 ** max(0, epoch - 2)


def epoch_lr(lr0: float, epoch: int, epochs: int, lradj: str = "type1") -> float:
    """Learning rate of epoch ``epoch`` (1-indexed) of ``epochs`` under schedule ``lradj``.

    ``type1``: the official halving; ``cosine``: ``lr0 (1 + cos(pi (epoch - 1) / epochs)) / 2``, from ``lr0`` at
    the first epoch towards 0; ``constant``: ``lr0`` throughout. (``plateau`` depends on the validation losses:
    :class:`LearningRate`.)
    """
    if lradj == "type1":
        return type1_lr(lr0, epoch)
    if lradj == "cosine":
        return lr0 * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / epochs))
    if lradj in ("constant", "plateau"):
        return lr0
    raise ValueError(f"lradj must be one of {LR_SCHEDULES}, got {lradj!r}")


def make_optimizer(name: str, params, lr: float, fused: bool = False) -> torch.optim.Optimizer:
    """``fused``: torch's single-kernel implementation (the same update; one or two launches per step on a GPU
    instead of a dozen multi-tensor kernels). The loop asks for it on CUDA only, so CPU results are unchanged."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, fused=fused or None)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.01, fused=fused or None)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


class LearningRate:
    """The rate of each epoch under schedule ``lradj``; ``plateau`` halves it after every
    :data:`PLATEAU_EPOCHS` epochs in a row without a new best validation loss (it is told each epoch's
    :meth:`observe`)."""

    def __init__(self, lr0: float, epochs: int, lradj: str):
        epoch_lr(lr0, 1, epochs, lradj)  # refuses an unknown schedule before training
        self.lr0, self.epochs, self.lradj = lr0, epochs, lradj
        self.halvings = 0
        self._best = math.inf
        self._since_best = 0

    def at(self, epoch: int) -> float:
        if self.lradj == "plateau":
            return self.lr0 * 0.5**self.halvings
        return epoch_lr(self.lr0, epoch, self.epochs, self.lradj)

    def observe(self, val_loss: float) -> None:
        if val_loss <= self._best:
            self._best, self._since_best = val_loss, 0
            return
        self._since_best += 1
        if self._since_best % PLATEAU_EPOCHS == 0:
            self.halvings += 1


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

    def update(self, n: int = 1) -> None:
        self.n += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
        elif time.time() - self._last > 2.0 or self.n == self.total:
            self._last = time.time()
            print(
                f"\r{self.desc}: {self.n}/{self.total} {time.time() - self.t0:.0f}s",
                end="",
                file=sys.stderr,
                flush=True,
            )

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


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}; bf16-mixed runs the forward "
            "passes under torch.autocast(dtype=torch.bfloat16) (CUDA, or CPU, where it is slower than fp32)."
        )
    return precision


def autocast(precision: str, device: torch.device):
    """The forward passes' context: bf16 autocast for ``"bf16-mixed"``, nothing for ``"fp32"``."""
    if check_precision(precision) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compiled(model: nn.Module, compile: bool | str) -> nn.Module:
    """``model``, or ``torch.compile(model)``: ``compile=True`` is inductor's default mode; a string is one of
    inductor's modes (:data:`COMPILE_MODES`; ``"reduce-overhead"`` replays CUDA graphs) or another backend's
    name (``"aot_eager"``, ...). The compiled module shares ``model``'s parameters, so weights, state dicts and
    the restored best epoch stay on ``model``."""
    if compile is False:
        return model
    if compile is True:
        return cast(nn.Module, torch.compile(model))  # an OptimizedModule; torch types it as a plain callable
    if isinstance(compile, str) and compile in COMPILE_MODES:
        return cast(nn.Module, torch.compile(model, mode=compile))
    if isinstance(compile, str) and compile:
        return cast(nn.Module, torch.compile(model, backend=compile))
    raise TypeError(
        f"compile must be True, False, an inductor mode ({', '.join(COMPILE_MODES)}) or a torch.compile backend "
        f"name such as 'aot_eager', got {compile!r}"
    )


@torch.no_grad()
def evaluate(
    model,
    forward_fn,
    data: ProtocolData,
    split: str,
    horizon: int,
    batch_size: int,
    device,
    *,
    shuffle=False,
    drop_last=False,
    generator=None,
    keep_window: int | None = None,
    precision: str = "fp32",
):
    """Mean-of-batch MSE (the validation criterion) and exact MSE / MAE over every window x H x N.

    The sums stay on the device and are read once at the end (reading each batch's would wait for it).
    """
    model.eval()
    device = torch.device(device)
    values, marks = data.device_segment(split, device)
    L = data.input_size
    sq = torch.zeros((), dtype=torch.float64, device=device)
    ab = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    batch_losses = []
    sample = None
    seen = 0
    for x, xm, y in window_batches(
        values, marks, L, horizon, batch_size, shuffle=shuffle, drop_last=drop_last, generator=generator
    ):
        with autocast(precision, device):
            pred = forward_fn(model, x, xm)
        diff = pred.float() - y
        batch_losses.append((diff**2).mean())
        sq += (diff.double() ** 2).sum()
        ab += diff.double().abs().sum()
        count += diff.numel()
        if keep_window is not None and sample is None and seen <= keep_window < seen + x.shape[0]:
            j = keep_window - seen
            sample = {
                "history": x[j].cpu().numpy(),
                "truth": y[j].cpu().numpy(),
                "forecast": pred[j].float().cpu().numpy(),
            }
        seen += x.shape[0]
    # float32 batch means averaged in float64, as np.mean over the per-batch floats
    mean_batch = float(np.mean(torch.stack(batch_losses).double().cpu().numpy())) if batch_losses else math.nan
    total = max(count, 1)
    return mean_batch, float(sq) / total, float(ab) / total, sample


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
    validation: str = "shuffled",
    eval_batch_size: int = 256,
    device: str | torch.device = "cpu",
    seed: int = 2023,
    max_train_batches: int | None = None,
    precision: str = "fp32",
    compile: bool | str = False,
    progress: bool = True,
    log=print,
    on_epoch=None,
) -> TrainResult:
    """Train on the train split, select on the validation split, restore the best epoch.

    Reads only the train and validation segments. ``validation``: ``"shuffled"`` (the official loader) or
    ``"full"`` (every window in order, scored in batches of ``eval_batch_size``; see the module docstring).
    ``precision``: ``"fp32"`` or ``"bf16-mixed"`` (bf16 autocast around the forward passes; the loss is taken in
    fp32). ``compile``: ``True``, an inductor mode or a backend name runs the model through ``torch.compile``
    (:func:`compiled`). On CUDA the optimiser is torch's fused implementation.
    ``on_epoch(epoch, val_loss)`` is called after each epoch's validation (the tuner reports to Optuna there, and
    may raise to prune the run).
    """
    if validation not in VALIDATIONS:
        raise ValueError(f"validation must be one of {VALIDATIONS}, got {validation!r}")
    check_precision(precision)
    net = compiled(model, compile)
    data.check_windows(horizon)
    device = torch.device(device)
    model.to(device)
    optim = make_optimizer(optimizer, model.parameters(), learning_rate, fused=device.type == "cuda")
    schedule = LearningRate(learning_rate, epochs, lradj)
    criterion = nn.MSELoss()
    gen = torch.Generator().manual_seed(seed)
    stopper = EarlyStopping(patience)
    values, marks = data.device_segment("train", device)
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
        lr = schedule.at(epoch)
        for group in optim.param_groups:
            group["lr"] = lr
        model.train()
        t0 = time.time()
        losses = []  # kept on the device: reading each one back would wait for every step (a GPU sync)
        bar = Progress(steps, f"epoch {epoch}/{epochs}", enabled=progress)
        for i, (x, xm, y) in enumerate(
            window_batches(values, marks, L, horizon, batch_size, shuffle=True, drop_last=drop_last, generator=gen)
        ):
            if i >= steps:
                break
            optim.zero_grad(set_to_none=True)
            with autocast(precision, device):
                pred = forward_fn(net, x, xm)
            loss = criterion(pred.float(), y)
            loss.backward()
            optim.step()
            losses.append(loss.detach())
            bar.update(1)
        bar.close()
        train_loss = float(torch.stack(losses).mean())
        if validation == "full":
            val_loss = evaluate(net, forward_fn, data, "val", horizon, eval_batch_size, device, precision=precision)[1]
        else:
            val_loss, _, _, _ = evaluate(
                net,
                forward_fn,
                data,
                "val",
                horizon,
                batch_size,
                device,
                shuffle=True,
                drop_last=True,
                generator=gen,
                precision=precision,
            )
            if math.isnan(val_loss):  # fewer validation windows than one batch: score every window
                val_loss = evaluate(net, forward_fn, data, "val", horizon, batch_size, device, precision=precision)[1]
        sec = time.time() - t0
        history.append({"epoch": epoch, "lr": lr, "train_loss": train_loss, "val_loss": val_loss, "sec": sec})
        log(f"epoch {epoch}: lr {lr:.3g} train {train_loss:.5f} val {val_loss:.5f} ({sec:.1f}s)")
        stopper.step(val_loss, model, epoch)
        schedule.observe(val_loss)
        if on_epoch is not None:
            on_epoch(epoch, val_loss)
        if stopper.stop:
            log(f"early stopping after epoch {epoch} (best epoch {stopper.best_epoch})")
            break
    train_sec = time.time() - t_train
    stopper.restore(model)
    return TrainResult(
        epochs_run=len(history),
        best_epoch=stopper.best_epoch,
        best_val_loss=stopper.best,
        sec_per_epoch=float(np.mean([h["sec"] for h in history])),
        train_sec=train_sec,
        history=history,
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
    precision: str = "fp32",
    compile: bool | str = False,
    **train_kwargs,
) -> FitResult:
    """:func:`train` (official loop, best validation epoch restored), then score every test window (with the same
    ``precision`` and ``compile``)."""
    trained = train(
        model, data, horizon, forward_fn=forward_fn, device=device, precision=precision, compile=compile, **train_kwargs
    )
    t0 = time.time()
    _, mse, mae, sample = evaluate(
        compiled(model, compile),  # torch.compile's cache is shared: the graphs compiled in training are reused
        forward_fn,
        data,
        "test",
        horizon,
        test_batch_size,
        torch.device(device),
        keep_window=sample_window,
        precision=precision,
    )
    test_sec = time.time() - t0
    return FitResult(
        mse=mse,
        mae=mae,
        epochs_run=trained.epochs_run,
        best_epoch=trained.best_epoch,
        sec_per_epoch=trained.sec_per_epoch,
        train_sec=trained.train_sec,
        test_sec=test_sec,
        n_test_windows=data.n_windows("test", horizon),
        history=trained.history,
        sample=sample,
        val_loss=trained.best_val_loss,
    )
