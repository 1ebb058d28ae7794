"""Where the harness keeps its results and run records, and how it writes them so that parallel writers lose nothing.

The commands write under one results folder: ``--results-dir DIR``, else ``$MAMBA_FORECAST_RESULTS``, else
``./mamba_forecast_results`` in the working folder; never inside the installed package. The folder holds

* ``bench_results.csv``: one row per benchmark cell (``bench``; a rerun skips the cells already there);
* ``samples.csv``: one test window per cell, one row each, for the report's forecast figures;
* ``tuning_trials.csv`` and ``tuning_studies.journal``: every trial of ``tune`` and its Optuna studies (a search
  that was cut off resumes from the journal);
* ``tuned_presets.json``: the tuned presets ``tune`` wrote; ``bench`` reads them over the table shipped in the
  package, and an entry here wins over a shipped one;
* ``benchmarks.md`` and ``figures/``: the page ``report`` writes.

Several processes may share these files (``tune --jobs``, sweeps run side by side): every write holds an exclusive
lock on ``<file>.lock`` (POSIX ``flock``; on Windows the writes are not locked), and a file that is rewritten is
replaced in one step, so a reader never sees half of it.
"""

from __future__ import annotations

import contextlib
import csv
import os
from pathlib import Path

RESULTS_ENV = "MAMBA_FORECAST_RESULTS"
DEFAULT_RESULTS_DIR = "mamba_forecast_results"
RESULTS_FILE = "bench_results.csv"
SAMPLES_FILE = "samples.csv"
TRIALS_FILE = "tuning_trials.csv"
STUDY_FILE = "tuning_studies.journal"
TUNED_FILE = "tuned_presets.json"
REPORT_FILE = "benchmarks.md"


def results_dir(path: str | os.PathLike | None = None) -> Path:
    """The results folder: ``path``, else ``$MAMBA_FORECAST_RESULTS``, else ``./mamba_forecast_results``."""
    if path is not None and str(path).strip():
        return Path(path)
    env = os.environ.get(RESULTS_ENV, "").strip()
    return Path(env) if env else Path(DEFAULT_RESULTS_DIR)


@contextlib.contextmanager
def locked(path: str | os.PathLike):
    """Hold an exclusive lock on ``<path>.lock`` while the block runs; other holders, in this process or another,
    wait. Each call opens the lock file anew, so threads exclude each other as processes do."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows: no lock
            pass
        yield


def read_rows(path: str | os.PathLike) -> list[dict]:
    """The rows of a CSV file as dicts (none when it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _replace_with(path: Path, columns: list[str], rows) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: r.get(k, "") for k in columns} for r in rows)
    os.replace(tmp, path)


def write_rows(path: str | os.PathLike, rows, columns: list[str]) -> None:
    """Replace the CSV at ``path`` with ``rows`` (in ``columns``), under the file's lock."""
    with locked(path):
        _replace_with(Path(path), columns, rows)


def _append_unlocked(path: Path, row: dict, columns: list[str]) -> None:
    fresh = not path.exists() or path.stat().st_size == 0
    if not fresh:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            old_rows = list(reader) if reader.fieldnames != columns else None
        if old_rows is not None:  # written before a column was added: realign the old rows first
            _replace_with(path, columns, old_rows)
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        if fresh:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in columns})


def append_csv_row(path: str | os.PathLike, row: dict, columns: list[str]) -> None:
    """Append ``row`` to the CSV at ``path`` (header first in a new file), holding the file's lock. A file whose
    header is not ``columns`` (written before a column was added) is rewritten with ``columns`` first, so old rows
    stay aligned; columns ``row`` lacks stay empty."""
    path = Path(path)
    with locked(path):
        _append_unlocked(path, row, columns)


def put_csv_row(
    path: str | os.PathLike, row: dict, columns: list[str], key: tuple[str, ...], defaults: dict | None = None
) -> None:
    """Like :func:`append_csv_row`, but a row with the same values of ``key`` is replaced, not kept beside it.
    ``defaults``: the value an empty key column stands for (in rows written before the column existed)."""
    path = Path(path)
    defaults = defaults or {}

    def ident(r: dict) -> tuple:
        return tuple(str(r.get(k) or defaults.get(k, "")) for k in key)

    new = ident(row)
    with locked(path):
        rows = read_rows(path)
        kept = [r for r in rows if ident(r) != new]
        if len(kept) < len(rows):
            _replace_with(path, columns, kept)
        _append_unlocked(path, row, columns)
