"""Run benchmark cells and append one CSV row per cell; cells already in the CSV are skipped (resume)."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..datasets import canonical_name
from ..models import get_spec
from .models import build_model, count_parameters, forward, uses_calendar_tokens
from .presets import _PRESET_FIELDS, LINEAR, apply_settings, get_preset
from .protocol import prepare
from .records import append_csv_row, put_csv_row, read_rows
from .train import fit_and_test

COLUMNS = [
    "dataset", "model", "input_size", "horizon", "seed", "mse", "mae", "epochs_run", "best_epoch",
    "max_epochs", "sec_per_epoch", "train_sec", "test_sec", "peak_mem_mb", "params", "n_test_windows",
    "batch_size", "learning_rate", "d_model", "d_ff", "e_layers", "d_state", "calendar_tokens", "device",
    "machine", "via", "timestamp", "notes", "preset", "val_mse", "optimizer", "lradj",
]
KEY = ("dataset", "model", "input_size", "horizon", "seed", "via", "max_epochs", "preset")
# one row per cell in the samples file: the cell's key, then its test window (space-separated values)
SAMPLE_COLUMNS = [*KEY, "variate", "history", "truth", "forecast"]


def _log(msg: str) -> None:
    print(msg, flush=True)


@dataclass(frozen=True)
class Cell:
    dataset: str
    model: str
    horizon: int
    seed: int = 2023
    input_size: int | None = None  # None: the preset's
    epochs: int | None = None  # None: the preset's
    via: str = "harness"
    preset: str = "tuned"  # preset table: tuned (falls back to official where nothing was tuned) | official
    tuned_path: str | None = None  # a tuned table read over the package's (its entries win); None: the package's

    def get_preset(self):
        return get_preset(self.model, canonical_name(self.dataset), self.horizon, self.preset, self.tuned_path,
                          input_size=self.input_size)

    def resolved(self) -> Cell:
        """The cell with its dataset's canonical name, its look-back and epochs filled in, and ``preset`` the table
        really used: a tuned entry counts only where it was tuned at this look-back, else the official row."""
        dataset = canonical_name(self.dataset)
        input_size = self.input_size or get_preset(self.model, dataset, self.horizon).input_size
        preset = replace(self, dataset=dataset, input_size=input_size).get_preset()
        return replace(self, dataset=dataset, preset=preset.table, input_size=input_size,
                       epochs=self.epochs or preset.epochs)

    def key(self) -> tuple:
        c = self.resolved()
        return (c.dataset, c.model, str(c.input_size), str(c.horizon), str(c.seed), c.via, str(c.epochs), c.preset)


def machine_description(device: torch.device) -> str:
    if device.type == "cuda":
        hw = torch.cuda.get_device_name(device)
    else:
        hw = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as fh:
                for line in fh:
                    if line.startswith("model name"):
                        hw = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        hw = f"{hw} x{torch.get_num_threads()} threads"
    return f"{platform.system()} {platform.machine()}; {hw}; torch {torch.__version__}"


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def read_results(path: str | os.PathLike) -> list[dict]:
    rows = read_rows(path)
    for row in rows:  # rows written before the tuned table existed used the official presets
        row["preset"] = row.get("preset") or "official"
    return rows


def row_key(row: dict) -> tuple:
    """A results row's cell key (the CSV's text values of :data:`KEY`)."""
    return tuple(str(row.get(k, "")) for k in KEY)


def done_keys(path) -> set[tuple]:
    return {row_key(r) for r in read_results(path)}


def append_row(path, row: dict, columns: list[str] = COLUMNS) -> None:
    """Append ``row`` to the results CSV at ``path`` under the file's lock (see
    :func:`~mamba_forecast.bench.records.append_csv_row`: a file from before a column was added is realigned)."""
    append_csv_row(path, row, columns)


def _vm_hwm_mb() -> float | None:
    """Linux: the process's peak RSS since it started or since :func:`_reset_peak_rss` (``VmHWM``), in MiB."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration, ValueError):
        return None


def _reset_peak_rss() -> bool:
    """Start a cell's CPU peak from the memory the process holds now: writing "5" to ``/proc/self/clear_refs``
    resets ``VmHWM`` (Linux 4.0+). False where that is not possible; the peak is then the process's lifetime
    peak, and the row's notes say so."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return _vm_hwm_mb() is not None


def _peak_mem_mb(device: torch.device, since_reset: bool) -> tuple[float, str]:
    """The cell's peak memory in MiB and how it was measured (for the notes column; "" on CUDA)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, ""
    if since_reset:
        return _vm_hwm_mb(), "peak_mem = the cell's peak RSS (VmHWM reset at its start)"
    try:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return kb / (2**20 if sys.platform == "darwin" else 1024.0), "peak_mem = process-lifetime peak RSS"
    except ImportError:
        return float("nan"), ""


def save_sample(path, cell: Cell, data, result, variate: int = -1) -> None:
    """Put one test window of the last variate (OT) of ``cell``, in z-scored units (look-back, truth, forecast),
    in the samples CSV at ``path``; a rerun of the cell replaces its window."""
    if result.sample is None:
        return
    hist, truth, fc = (" ".join(f"{v:.6f}" for v in result.sample[k][:, variate])
                       for k in ("history", "truth", "forecast"))
    row = dict(dataset=cell.dataset, model=cell.model, input_size=cell.input_size, horizon=cell.horizon,
               seed=cell.seed, via=cell.via, max_epochs=cell.epochs, preset=cell.preset,
               variate=data.columns[variate], history=hist, truth=truth, forecast=fc)
    put_csv_row(path, row, SAMPLE_COLUMNS, KEY)


def run_cell(
    cell: Cell,
    *,
    data_dir=None,
    device: str | None = None,
    overrides: dict | None = None,
    max_train_batches: int | None = None,
    progress: bool = True,
    samples: str | os.PathLike | None = None,
    log=_log,
) -> dict:
    """Train and score one cell; return its CSV row. ``samples``: the CSV that one test window is saved to."""
    asked = cell.preset
    cell = cell.resolved()
    dev = resolve_device(device)
    preset = cell.get_preset()
    if asked == "tuned" and preset.table != "tuned":
        log(f"[{cell.dataset} {cell.model} L={cell.input_size} H={cell.horizon}] no tuned entry for this look-back "
            "and horizon: the official preset")
    preset = apply_settings(preset, overrides or {}, epochs=cell.epochs, input_size=cell.input_size)
    data = prepare(cell.dataset, cell.input_size, data_dir=data_dir)
    data.check_windows(cell.horizon)
    use_marks = uses_calendar_tokens(cell.model) and data.calendar_tokens
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    peak_since_reset = dev.type == "cpu" and _reset_peak_rss()
    notes = []
    if cell.via == "harness":
        set_seed(cell.seed)
        model = build_model(cell.model, preset, data.n_series, cell.input_size, cell.horizon, use_marks)
        params = count_parameters(model)
        log(f"[{cell.dataset} {cell.model} L={cell.input_size} H={cell.horizon} seed={cell.seed}] "
            f"{params:,} parameters on {dev}; {data.n_windows('train', cell.horizon)} train / "
            f"{data.n_windows('val', cell.horizon)} val / {data.n_windows('test', cell.horizon)} test windows")
        result = fit_and_test(
            model, data, cell.horizon,
            forward_fn=lambda m, x, xm: forward(m, x, xm, use_marks),
            epochs=preset.epochs, batch_size=preset.batch_size, learning_rate=preset.learning_rate,
            patience=preset.patience, optimizer=preset.optimizer, lradj=preset.lradj, device=dev, seed=cell.seed, max_train_batches=max_train_batches,
            progress=progress, log=log,
        )
    elif cell.via == "neuralforecast":
        from .via_neuralforecast import fit_and_test_neuralforecast

        set_seed(cell.seed)
        result, params = fit_and_test_neuralforecast(
            cell.model, data, cell.horizon, preset, seed=cell.seed, device=dev, use_marks=use_marks,
            max_train_batches=max_train_batches, progress=progress, log=log,
        )
        notes.append("NeuralForecast BaseModel training loop")
    else:
        raise ValueError(f"unknown via {cell.via!r} (harness | neuralforecast)")
    if max_train_batches:
        notes.append(f"max_train_batches={max_train_batches}")
    if overrides:
        notes.append("overrides " + " ".join(f"{k}={v}" for k, v in overrides.items()))
    peak_mb, how = _peak_mem_mb(dev, peak_since_reset)
    row = dict(
        dataset=cell.dataset, model=cell.model, input_size=cell.input_size, horizon=cell.horizon,
        seed=cell.seed, mse=f"{result.mse:.6f}", mae=f"{result.mae:.6f}", epochs_run=result.epochs_run,
        best_epoch=result.best_epoch, max_epochs=cell.epochs, sec_per_epoch=f"{result.sec_per_epoch:.2f}",
        train_sec=f"{result.train_sec:.1f}", test_sec=f"{result.test_sec:.1f}",
        peak_mem_mb=f"{peak_mb:.0f}", params=params, n_test_windows=result.n_test_windows,
        batch_size=preset.batch_size, learning_rate=preset.learning_rate, d_model=preset.d_model,
        d_ff=preset.d_ff, e_layers=preset.e_layers, d_state=preset.d_state, calendar_tokens=int(use_marks),
        device=str(dev), machine=machine_description(dev), via=cell.via,
        timestamp=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        notes="; ".join(notes + ([how] if how else [])),
    )
    if samples is not None:
        save_sample(samples, cell, data, result)
    row.update(preset=preset.table, val_mse=f"{result.val_loss:.6f}", optimizer=preset.optimizer,
               lradj=preset.lradj)
    log(f"[{cell.dataset} {cell.model} L={cell.input_size} H={cell.horizon} seed={cell.seed}] "
        f"({preset.table} preset) MSE {result.mse:.4f} MAE {result.mae:.4f}; {result.epochs_run} epochs (best {result.best_epoch}), "
        f"{result.sec_per_epoch:.1f} s/epoch")
    return row


def _claim(out: Path, key: tuple) -> Path | None:
    """Create a lock file for a cell so parallel sweeps on the same CSV do not run it twice.

    Returns the lock path, or ``None`` when a live process holds it (a lock left by a dead process is taken over).
    """
    lock = Path(f"{out}.{'_'.join(key)}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
                os.kill(pid, 0)
                return None  # alive
            except (ValueError, ProcessLookupError, FileNotFoundError):
                lock.unlink(missing_ok=True)  # stale
                continue
            except PermissionError:
                return None
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return lock
    return None


def check_overrides(models, overrides: dict | None) -> None:
    """Refuse, before anything trains, an override that is neither a preset field nor an argument of every model
    in ``models`` (a typo would otherwise be a TypeError deep inside, or silently dropped)."""
    preset_fields = _PRESET_FIELDS - {"extra", "source", "table"}
    for key in overrides or {}:
        if key in ("epochs", "input_size"):
            raise ValueError(f"--set {key}=...: use --{key.replace('_', '-')} instead (it is part of the cell's key)")
        if key in preset_fields:
            continue
        missing = [m for m in models if m == LINEAR or key not in get_spec(m).arguments]
        if missing:
            raise ValueError(
                f"--set {key}=...: {key!r} is not a preset field ({', '.join(sorted(preset_fields))}) nor an "
                f"argument of {', '.join(missing)}; check the name (each model's arguments: its card in docs/models)")


def run_cells(cells, out, *, resume: bool = True, log=_log, **kwargs) -> list[dict]:
    """Run every cell not already in ``out`` (matched on dataset, model, input, horizon, seed, via, epochs).

    The CSV is re-read before each cell and a lock file marks a cell in progress, so several sweeps can share
    one CSV (each skips what another has finished or is running).
    """
    out = Path(out)
    check_overrides(sorted({c.model for c in cells}), kwargs.get("overrides"))
    rows = []
    for i, cell in enumerate(cells, 1):
        key = cell.key()
        if resume and key in done_keys(out):
            log(f"[{i}/{len(cells)}] skip {key} (already in {out})")
            continue
        lock = _claim(out, key)
        if lock is None:
            log(f"[{i}/{len(cells)}] skip {key} (running in another process)")
            continue
        try:
            log(f"[{i}/{len(cells)}] run {key}")
            t0 = time.time()
            row = run_cell(cell, log=log, **kwargs)
            append_row(out, row)
            rows.append(row)
            log(f"[{i}/{len(cells)}] done in {time.time() - t0:.0f}s -> {out}")
        finally:
            lock.unlink(missing_ok=True)
    return rows
