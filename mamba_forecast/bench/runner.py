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
from .baselines import is_baseline, network_arguments
from .models import build_model, count_parameters, forward, uses_calendar_tokens
from .presets import _PRESET_FIELDS, LINEAR, SEARCHED, apply_settings, get_preset
from .protocol import prepare
from .records import append_csv_row, put_csv_row, read_rows
from .train import DEFAULT_PROTOCOL, fit_and_test, get_protocol

COLUMNS = [
    "dataset",
    "model",
    "input_size",
    "horizon",
    "seed",
    "mse",
    "mae",
    "epochs_run",
    "best_epoch",
    "max_epochs",
    "sec_per_epoch",
    "train_sec",
    "test_sec",
    "peak_mem_mb",
    "params",
    "n_test_windows",
    "batch_size",
    "learning_rate",
    "d_model",
    "d_ff",
    "e_layers",
    "d_state",
    "calendar_tokens",
    "device",
    "machine",
    "via",
    "timestamp",
    "notes",
    "preset",
    "val_mse",
    "optimizer",
    "lradj",
    "protocol",
    "patience",
    "validation",
    "lookback",
    "precision",
]
# ``lookback``: the look-back asked for (a number, or "searched": the tuned entry's choice, run at ``input_size``)
# ``precision``: fp32 | bf16-mixed (the forward passes' autocast); torch.compile is not part of a cell's key (it
# changes how the same function is computed) and is recorded in the notes
KEY = (
    "dataset",
    "model",
    "input_size",
    "horizon",
    "seed",
    "via",
    "max_epochs",
    "preset",
    "protocol",
    "lookback",
    "precision",
)
# what rows written before a column existed ran with
_OLD_ROWS = {"preset": "official", "protocol": "official", "validation": "shuffled", "precision": "fp32"}
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
    input_size: int | str | None = None  # None: the preset's; "searched": the look-back the tuned entry chose
    epochs: int | None = None  # None: the protocol's cap (the preset's epochs under "official")
    via: str = "harness"
    preset: str = "tuned"  # preset table: tuned (falls back to official where nothing was tuned) | official
    tuned_path: str | None = None  # a tuned table read over the package's (its entries win); None: the package's
    protocol: str = DEFAULT_PROTOCOL  # training protocol: converge | official (mamba_forecast.bench.train)
    lookback: int | str | None = None  # filled by resolved(): the look-back asked for (a number or "searched")
    precision: str = "fp32"  # fp32 | bf16-mixed: bf16 autocast around the forward passes (mamba_forecast.bench.train)
    compile: bool | str = False  # torch.compile: True, an inductor mode or a backend name; not part of the key

    def get_preset(self):
        table = "tuned" if self.preset == "default" else self.preset  # a resolved cell names the table used
        return get_preset(
            self.model,
            canonical_name(self.dataset),
            self.horizon,
            table,
            self.tuned_path,
            input_size=self.lookback or self.input_size,
            protocol=self.protocol,
        )

    def resolved(self) -> Cell:
        """The cell with its dataset's canonical name, its look-back and epochs filled in, and ``preset`` the table
        really used: a tuned entry counts only where it was tuned at this look-back under this protocol, else the
        official row. A searched look-back resolves to the tuned entry's choice (``lookback`` keeps "searched")."""
        protocol = get_protocol(self.protocol)
        dataset = canonical_name(self.dataset)
        lookback = self.lookback or self.input_size or get_preset(self.model, dataset, self.horizon).input_size
        preset = replace(self, dataset=dataset, lookback=lookback).get_preset()
        return replace(
            self,
            dataset=dataset,
            preset=preset.table,
            lookback=lookback,
            input_size=preset.input_size if lookback == SEARCHED else lookback,
            epochs=self.epochs or protocol.epochs(preset.epochs),
        )

    def key(self) -> tuple:
        c = self.resolved()
        return (
            c.dataset,
            c.model,
            str(c.input_size),
            str(c.horizon),
            str(c.seed),
            c.via,
            str(c.epochs),
            c.preset,
            c.protocol,
            str(c.lookback),
            c.precision,
        )


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
    """The rows of a results CSV, with what rows from before a column existed ran with filled in (the official
    preset table and protocol, the look-back asked for = the one run)."""
    rows = read_rows(path)
    for row in rows:
        for column, old in _OLD_ROWS.items():
            row[column] = row.get(column) or old
        row["lookback"] = row.get("lookback") or row.get("input_size", "")
    return rows


def row_key(row: dict) -> tuple:
    """A results row's cell key (the CSV's text values of :data:`KEY`; a column the row predates counts as what
    such rows ran with)."""
    return tuple(str(row.get(k) or _OLD_ROWS.get(k, "")) for k in KEY)


_VARIANT_NOTES = ("overrides ", "max_train_batches=")


def variant_notes(overrides: dict | None = None, max_train_batches: int | None = None) -> list[str]:
    """The notes that make a run a variant of its cell: ``--set`` overrides and a smoke run's batch cap."""
    notes = [f"max_train_batches={max_train_batches}"] if max_train_batches else []
    if overrides:
        notes.append("overrides " + " ".join(f"{k}={v}" for k, v in overrides.items()))
    return notes


def row_variant(row: dict) -> tuple[str, ...]:
    """What of :func:`variant_notes` a results row ran with (empty for a plain run of its cell)."""
    return tuple(sorted(n for n in str(row.get("notes") or "").split("; ") if n.startswith(_VARIANT_NOTES)))


def run_id(row: dict) -> tuple:
    """A results row's cell key with its variant: resume and merging match on both, so a run under
    ``--set learning_rate=...`` beside the plain one is a run of its own, not a duplicate."""
    return row_key(row), row_variant(row)


def done_keys(path) -> set[tuple]:
    """The :func:`run_id` of every row of a results CSV."""
    return {run_id(r) for r in read_results(path)}


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
    peak = _vm_hwm_mb() if since_reset else None
    if peak is not None:
        return peak, "peak_mem = the cell's peak RSS (VmHWM reset at its start)"
    try:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return kb / (2**20 if sys.platform == "darwin" else 1024.0), "peak_mem = process-lifetime peak RSS"
    except ImportError:
        return float("nan"), ""


def save_sample(path, cell: Cell, data, result, variate: int = -1) -> None:
    """Put one test window of the last variate (OT) of ``cell``, in z-scored units to 4 decimals (look-back,
    truth, forecast: a figure's worth, and the file stays small), in the samples CSV at ``path``; a rerun of the
    cell replaces its window."""
    if result.sample is None:
        return
    hist, truth, fc = (
        " ".join(f"{v:.4f}" for v in result.sample[k][:, variate]) for k in ("history", "truth", "forecast")
    )
    row = dict(
        dataset=cell.dataset,
        model=cell.model,
        input_size=cell.input_size,
        horizon=cell.horizon,
        seed=cell.seed,
        via=cell.via,
        max_epochs=cell.epochs,
        preset=cell.preset,
        protocol=cell.protocol,
        lookback=cell.lookback,
        precision=cell.precision,
        variate=data.columns[variate],
        history=hist,
        truth=truth,
        forecast=fc,
    )
    put_csv_row(path, row, SAMPLE_COLUMNS, KEY, defaults=_OLD_ROWS)


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
    protocol = get_protocol(cell.protocol)
    tag = f"[{cell.dataset} {cell.model} L={cell.input_size} H={cell.horizon} seed={cell.seed}]"
    dev = resolve_device(device)
    preset = cell.get_preset()
    if asked == "tuned" and preset.table != "tuned":
        fallback = "the model's default entry" if preset.table == "default" else "the official preset"
        log(f"{tag} no tuned entry for this look-back, horizon and protocol ({cell.protocol}): {fallback}")
    training = protocol.settings(preset)  # epochs, patience, schedule; --set patience/lradj win over the protocol
    preset = apply_settings(preset, overrides or {}, input_size=cell.input_size)
    training.update({k: v for k, v in (overrides or {}).items() if k in training}, epochs=cell.epochs)
    input_size = int(cell.input_size or 0)  # resolved: the look-back run, a number
    data = prepare(cell.dataset, input_size, data_dir=data_dir)
    try:
        data.check_windows(cell.horizon)
    except ValueError as err:
        if cell.lookback != SEARCHED:
            raise
        raise ValueError(
            f"{err} The look-back {input_size} was chosen by a search at another horizon; choose one for "
            f"H={cell.horizon} on validation: `mamba-forecast tune --model {cell.model} --dataset {cell.dataset} "
            f"--horizon {cell.horizon} --per-horizon --input-size searched --only input_size`"
        ) from None
    notes = []
    if cell.lookback == SEARCHED:  # every model of the track scored on the same windows, whatever look-back it chose
        full = data.n_windows("test", cell.horizon)
        data = data.common_test(data.lookbacks_with_windows(cell.horizon))
        if data.n_windows("test", cell.horizon) < full:
            notes.append(
                f"test: the {data.n_windows('test', cell.horizon)} windows every searched look-back has "
                f"(of {full} at L={input_size})"
            )
    use_marks = uses_calendar_tokens(cell.model, preset) and data.calendar_tokens
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    peak_since_reset = dev.type == "cpu" and _reset_peak_rss()
    if cell.via == "harness":
        set_seed(cell.seed)
        model = build_model(cell.model, preset, data.n_series, input_size, cell.horizon, use_marks, seed=cell.seed)
        params = count_parameters(model)
        log(
            f"{tag} {params:,} parameters on {dev}; {data.n_windows('train', cell.horizon)} train / "
            f"{data.n_windows('val', cell.horizon)} val / {data.n_windows('test', cell.horizon)} test windows; "
            f"{cell.protocol} protocol ({training})"
        )
        result = fit_and_test(
            model,
            data,
            cell.horizon,
            forward_fn=lambda m, x, xm: forward(m, x, xm, use_marks),
            batch_size=preset.batch_size,
            learning_rate=preset.learning_rate,
            optimizer=preset.optimizer,
            validation=protocol.validation,
            device=dev,
            seed=cell.seed,
            max_train_batches=max_train_batches,
            precision=cell.precision,
            compile=cell.compile,
            progress=progress,
            log=log,
            **training,
        )
    elif cell.via == "neuralforecast":
        if is_baseline(cell.model):
            raise ValueError(
                f"--via neuralforecast runs our models through their NeuralForecast class; {cell.model} "
                "is NeuralForecast's own: run it with --via harness"
            )
        if cell.protocol != "official":
            raise ValueError(
                "--via neuralforecast trains with NeuralForecast's loop set up like the official "
                "protocol; pass --protocol official"
            )
        if cell.precision != "fp32" or cell.compile:
            raise ValueError(
                "--precision and --compile switch the harness loop; with --via neuralforecast train in "
                "NeuralForecast's loop at its defaults (pass precision to the model's trainer_kwargs yourself)"
            )
        from .via_neuralforecast import fit_and_test_neuralforecast

        set_seed(cell.seed)
        result, params = fit_and_test_neuralforecast(
            cell.model,
            data,
            cell.horizon,
            replace(preset, epochs=training["epochs"]),
            seed=cell.seed,
            device=dev,
            use_marks=use_marks,
            max_train_batches=max_train_batches,
            progress=progress,
            log=log,
        )
        notes.append("NeuralForecast BaseModel training loop")
    else:
        raise ValueError(f"unknown via {cell.via!r} (harness | neuralforecast)")
    if cell.compile:
        notes.append(f"torch.compile={cell.compile}")
    notes += variant_notes(overrides, max_train_batches)
    peak_mb, how = _peak_mem_mb(dev, peak_since_reset)
    ours = not is_baseline(cell.model)  # a baseline's sizes are NeuralForecast's, not the preset's fields
    row = dict(
        dataset=cell.dataset,
        model=cell.model,
        input_size=cell.input_size,
        horizon=cell.horizon,
        seed=cell.seed,
        mse=f"{result.mse:.6f}",
        mae=f"{result.mae:.6f}",
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        max_epochs=cell.epochs,
        sec_per_epoch=f"{result.sec_per_epoch:.2f}",
        train_sec=f"{result.train_sec:.1f}",
        test_sec=f"{result.test_sec:.1f}",
        peak_mem_mb=f"{peak_mb:.0f}",
        params=params,
        n_test_windows=result.n_test_windows,
        batch_size=preset.batch_size,
        learning_rate=preset.learning_rate,
        d_model=preset.d_model if ours else "",
        d_ff=preset.d_ff if ours else "",
        e_layers=preset.e_layers if ours else "",
        d_state=preset.d_state if ours else "",
        calendar_tokens=int(use_marks),
        device=str(dev),
        machine=machine_description(dev),
        via=cell.via,
        timestamp=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        notes="; ".join(notes + ([how] if how else [])),
        preset=preset.table,
        val_mse=f"{result.val_loss:.6f}",
        optimizer=preset.optimizer,
        lradj=training["lradj"],
        protocol=cell.protocol,
        patience=training["patience"],
        validation=protocol.validation,
        lookback=cell.lookback,
        precision=cell.precision,
    )
    if not ours:
        arguments = {**network_arguments(cell.model), **preset.extra}
        row["notes"] = "; ".join(
            filter(
                None,
                [row["notes"], "NeuralForecast network: " + " ".join(f"{k}={v}" for k, v in sorted(arguments.items()))],
            )
        )
    if samples is not None:
        save_sample(samples, cell, data, result)
    log(
        f"{tag} ({preset.table} preset, {cell.protocol} protocol) MSE {result.mse:.4f} MAE {result.mae:.4f}; "
        f"{result.epochs_run} epochs of {cell.epochs} (best {result.best_epoch}), {result.sec_per_epoch:.1f} s/epoch"
    )
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


# the preset fields that size our networks; a NeuralForecast baseline is sized by its own arguments instead
_OUR_SIZES = frozenset({"e_layers", "d_model", "d_ff", "d_state", "d_conv", "expand", "dropout", "use_norm"})


def model_arguments(model: str):
    """The arguments ``--set`` may give model ``model``: its spec's architecture arguments, or a NeuralForecast
    baseline's network arguments."""
    return network_arguments(model) if is_baseline(model) else get_spec(model).arguments


def check_overrides(models, overrides: dict | None) -> None:
    """Refuse, before anything trains, an override that is neither a preset field nor an argument of every model
    in ``models`` (a typo would otherwise be a TypeError deep inside, or silently dropped)."""
    preset_fields = _PRESET_FIELDS - {"extra", "source", "table", "network"}
    for key in overrides or {}:
        if key in ("epochs", "input_size"):
            raise ValueError(f"--set {key}=...: use --{key.replace('_', '-')} instead (it is part of the cell's key)")
        baselines = [m for m in models if is_baseline(m) and key in _OUR_SIZES and key not in model_arguments(m)]
        if baselines:
            raise ValueError(
                f"--set {key}=...: {key!r} sizes our models; NeuralForecast's {', '.join(baselines)} take their own "
                f"arguments ({', '.join(sorted(model_arguments(baselines[0])))})"
            )
        if key == "calendar_tokens" and any(is_baseline(m) for m in models):
            raise ValueError(
                f"--set calendar_tokens=...: NeuralForecast's {', '.join(m for m in models if is_baseline(m))} "
                "get no calendar features in the harness; the setting switches our models' calendar tokens"
            )
        if key in preset_fields:
            continue
        missing = [m for m in models if m == LINEAR or key not in model_arguments(m)]
        if missing:
            raise ValueError(
                f"--set {key}=...: {key!r} is not a preset field ({', '.join(sorted(preset_fields))}) nor an "
                f"argument of {', '.join(missing)}; check the name (each model's arguments: its card in docs/models)"
            )


def _settings(cell: Cell):
    """What a resolved cell trains with, but for where it came from, its epoch cap and look-back (the cell's own)."""
    return replace(cell.get_preset(), source="", table="", epochs=0, input_size=0)


def reused_row(
    cell: Cell,
    rows: list[dict],
    *,
    device: str | None = None,
    data_dir=None,
    overrides: dict | None = None,
    max_train_batches: int | None = None,
    **_,
) -> dict | None:
    """A searched-track cell's row taken from the fixed look-back track, where the look-back the search chose
    already ran with the very same settings, seed, epoch cap, protocol and precision on this device kind, and
    scored the same test windows: training is the same function of those, so a rerun would only repeat it (the
    ``--only input_size`` search keeps the L=96 settings, and often chooses 96). The row is the earlier one,
    relabelled for the searched track and saying so in its ``notes``; ``None`` where anything differs or nothing
    ran."""
    c = cell.resolved()
    if c.lookback != SEARCHED or overrides or max_train_batches:
        return None
    twin = replace(cell, input_size=c.input_size, lookback=None).resolved()
    if twin.epochs != c.epochs or _settings(c) != _settings(twin):
        return None
    row = next((r for r in reversed(rows) if row_key(r) == twin.key()), None)
    if row is None or row.get("device", "").split(":")[0] != resolve_device(device).type or row_variant(row):
        return None
    data = prepare(c.dataset, int(c.input_size or 0), data_dir=data_dir)
    if data.common_test(data.lookbacks_with_windows(c.horizon)) is not data or str(row["n_test_windows"]) != str(
        data.n_windows("test", c.horizon)
    ):
        return None  # the track's windows are not the ones the fixed look-back scored
    reuse = f"the L={c.input_size} track's row of {row['timestamp']} (same settings, seed and test windows: not rerun)"
    return {**row, "lookback": SEARCHED, "preset": c.preset, "notes": "; ".join(filter(None, [reuse, row["notes"]]))}


def run_cells(cells, out, *, resume: bool = True, log=_log, **kwargs) -> list[dict]:
    """Run every cell not already in ``out`` (matched on its key, :meth:`Cell.key`, and on the ``overrides`` and
    ``max_train_batches`` it runs with: a variant of a done cell runs).

    The CSV is re-read before each cell and a lock file marks a cell in progress, so several sweeps can share
    one CSV (each skips what another has finished or is running). A searched-track cell that the fixed look-back
    track already ran as it would run takes that row (:func:`reused_row`) unless ``resume`` is off.
    """
    out = Path(out)
    check_overrides(sorted({c.model for c in cells}), kwargs.get("overrides"))
    rows = []
    variant = tuple(sorted(variant_notes(kwargs.get("overrides"), kwargs.get("max_train_batches"))))
    for i, cell in enumerate(cells, 1):
        key = cell.key()
        done = read_results(out) if resume else []
        if (key, variant) in {run_id(r) for r in done}:
            log(f"[{i}/{len(cells)}] skip {key + variant} (already in {out})")
            continue
        lock = _claim(out, key + tuple(v.replace(" ", "_") for v in variant))
        if lock is None:
            log(f"[{i}/{len(cells)}] skip {key + variant} (running in another process)")
            continue
        try:
            log(f"[{i}/{len(cells)}] run {key}")
            t0 = time.time()
            row = reused_row(cell, done, **kwargs) if resume else None
            if row is not None:
                log(f"[{i}/{len(cells)}] {row['notes'].split(';')[0]}")
            else:
                row = run_cell(cell, log=log, **kwargs)
            append_row(out, row)
            rows.append(row)
            log(f"[{i}/{len(cells)}] done in {time.time() - t0:.0f}s -> {out}")
        finally:
            lock.unlink(missing_ok=True)
    return rows
