"""Readers for the standard long-horizon benchmark files and the protocol's split borders.

Every reader returns a ``pandas.DataFrame`` with a ``date`` column (``datetime64``) followed by the series
columns in file order, the target last (``OT`` where the file has one). Nothing is resampled, de-duplicated or
filled: the benchmark protocol works on row positions, exactly as the official loaders do.

Where the files are: ``data_dir`` argument, else ``$MAMBA_FORECAST_DATA``, else ``../shared/datasets`` relative
to the current directory or to the repository root (the directory above the installed package).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

ENV_VAR = "MAMBA_FORECAST_DATA"


@dataclass(frozen=True)
class BenchmarkSpec:
    """How to read one benchmark and how the protocol splits it.

    ``split`` is ``"ett_hour"`` / ``"ett_minute"`` (fixed 12/4/4-month borders), ``"ratio"`` (7:1:2) or
    ``"recordings"`` (two separate recordings joined in one frame: train / validation 7:3 within the first,
    test = the second; no window crosses the gap between them).
    """

    name: str
    files: tuple[str, ...]
    split: str
    freq: str  # the data's own step (informational: the calendar tokens always use freq 'h')
    n_series: int
    horizons: tuple[int, ...] = (96, 192, 336, 720)


BENCHMARKS: dict[str, BenchmarkSpec] = {
    s.name: s
    for s in [
        BenchmarkSpec("ETTh1", ("ETTh1.csv",), "ett_hour", "h", 7),
        BenchmarkSpec("ETTh2", ("ETTh2.csv",), "ett_hour", "h", 7),
        BenchmarkSpec("ETTm1", ("ETTm1.csv",), "ett_minute", "15min", 7),
        BenchmarkSpec("Weather", ("weather.csv",), "ratio", "10min", 21),
        BenchmarkSpec("Exchange", ("exchange_rate.csv",), "ratio", "D", 8),
        BenchmarkSpec("SML2010", ("NEW-DATA-1.T15.txt", "NEW-DATA-2.T15.txt"), "recordings", "15min", 18),
    ]
}

_ALIASES = {"weather": "Weather", "exchange": "Exchange", "exchange_rate": "Exchange", "sml": "SML2010"}

# SML2010: the target (dining-room indoor temperature, the series the SML2010 literature forecasts) goes last;
# dropped: Date/Time (become `date`), Day_Of_Week (a calendar feature, not a measured series) and the three
# Exterior_Entalpic_* columns, which are constant 0 in both files (a z-score would divide by zero).
SML2010_TARGET = "Temperature_Comedor_Sensor"
SML2010_DROPPED = ("Exterior_Entalpic_1", "Exterior_Entalpic_2", "Exterior_Entalpic_turbo", "Day_Of_Week")


def canonical_name(name: str) -> str:
    """``"etth1"`` -> ``"ETTh1"``; raises ``KeyError`` listing the known names."""
    for key in BENCHMARKS:
        if key.lower() == name.lower():
            return key
    if name.lower() in _ALIASES:
        return _ALIASES[name.lower()]
    raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")


def default_data_dir() -> Path | None:
    """The first existing candidate among ``$MAMBA_FORECAST_DATA``, ``./../shared/datasets`` and
    ``<repo root>/../shared/datasets``; ``None`` when none exists."""
    candidates = []
    if os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    candidates.append(Path.cwd().parent / "shared" / "datasets")
    repo_root = Path(__file__).resolve().parents[2]
    candidates.append(repo_root.parent / "shared" / "datasets")
    for c in candidates:
        if c.is_dir():
            return c
    return None


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    if data_dir is not None:
        path = Path(data_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"data directory {path} does not exist")
        return path
    path = default_data_dir()
    if path is None:
        raise FileNotFoundError(
            "benchmark files not found: pass data_dir / --data-dir, or set $MAMBA_FORECAST_DATA "
            "to the folder holding ETTh1.csv, weather.csv, ..."
        )
    return path


def _open_text(path: Path, **kwargs):
    """Open a benchmark file as text; a ``.gz`` file is decompressed on the fly."""
    opener = gzip.open if path.suffix == ".gz" else open
    return opener(path, "rt", encoding="utf-8", errors="replace", **kwargs)


def _read_csv(path: Path) -> pd.DataFrame:
    # utf-8 with errors replaced: weather.csv's header carries U+FFFD characters; CRLF is handled by pandas.
    with _open_text(path, newline="") as fh:
        df = pd.read_csv(fh)
    df.columns = [c.strip() for c in df.columns]
    df["date"] = pd.to_datetime(df["date"], format="mixed")
    return df


def _read_sml2010(paths: list[Path]) -> pd.DataFrame:
    frames = []
    for path in paths:
        with _open_text(path) as fh:
            header = fh.readline().lstrip("#").split()
            names = [h.split(":", 1)[1] for h in header]
            frame = pd.read_csv(fh, sep=r"\s+", header=None, names=names)
        frames.append(frame)
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "date", pd.to_datetime(df.pop("Date") + " " + df.pop("Time"), format="%d/%m/%Y %H:%M"))
    df = df.drop(columns=list(SML2010_DROPPED))
    df = df.sort_values("date", kind="stable").reset_index(drop=True)
    target = df.pop(SML2010_TARGET)
    df[SML2010_TARGET] = target
    return df


def load_benchmark(name: str, data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read one benchmark file as ``date`` + series columns (float64), rows in file (time) order.

    Args:
        name: ``ETTh1``, ``ETTh2``, ``ETTm1``, ``Weather``, ``Exchange`` or ``SML2010`` (case-insensitive).
        data_dir: folder holding the files (see the module docstring for the default).
    """
    spec = BENCHMARKS[canonical_name(name)]
    root = resolve_data_dir(data_dir)
    paths = []
    for f in spec.files:
        path, packed = root / f, root / f"{f}.gz"
        if not path.exists() and packed.exists():
            path = packed  # a gzip copy (e.g. the smaller data folder sent to a GPU machine)
        if not path.exists():
            raise FileNotFoundError(f"{root / f} not found (benchmark {spec.name}; {f}.gz is read too)")
        paths.append(path)
    if spec.name == "SML2010":
        df = _read_sml2010(paths)
    else:
        df = _read_csv(paths[0])
    value_cols = [c for c in df.columns if c != "date"]
    df[value_cols] = df[value_cols].astype("float64")
    return df


def recording_break(dates) -> int:
    """Row index where the second recording starts: the largest step between consecutive timestamps.

    SML2010's two files are 11 April and 18 April 2012 with a 7-day gap between them (every other step is
    15 or 30 minutes), so the largest step is the join.
    """
    steps = pd.Series(pd.DatetimeIndex(dates)).diff().dt.total_seconds().to_numpy()[1:]
    if len(steps) == 0:
        raise ValueError("a 'recordings' split needs at least two rows")
    return int(steps.argmax()) + 1


def split_borders(
    name_or_split: str, n_rows: int, input_size: int, recording_start: int | None = None
) -> dict[str, tuple[int, int]]:
    """Row ranges ``[start, end)`` of the train / val / test segments under the standard protocol.

    Val and test start ``input_size`` rows early (look-back borrowing), so every target row of a segment is
    scored exactly once. ETT files use fixed 12/4/4-month borders (rows past 20 months are unused); the other
    files use 7:1:2 with ``n_train = int(0.7 T)``, ``n_test = int(0.2 T)``, ``n_val = T - n_train - n_test``.

    ``"recordings"`` (SML2010: two recordings a week apart, joined in one frame) needs ``recording_start``, the
    first row of the second recording (:func:`recording_break`). Train and validation split the first recording
    7:3 (validation borrows its look-back from the end of train, within the same recording); the test segment is
    the whole second recording, whose first ``input_size`` rows are look-back only. No segment contains the
    gap, so no window crosses it. (A 7:1:2 split of the joined rows leaves validation 415 rows, fewer than one
    720-step window, and 7-39% of training windows straddle the gap.)
    """
    split = BENCHMARKS[canonical_name(name_or_split)].split if name_or_split not in (
        "ett_hour", "ett_minute", "ratio", "recordings") else name_or_split
    if split == "recordings":
        if recording_start is None or not 0 < recording_start < n_rows:
            raise ValueError(
                f"the 'recordings' split needs recording_start, the first row of the second recording, "
                f"inside (0, {n_rows}); got {recording_start!r}. Pass recording_break(df['date'])."
            )
        b1 = recording_start * 7 // 10
        return {"train": (0, b1), "val": (b1 - input_size, recording_start), "test": (recording_start, n_rows)}
    if split in ("ett_hour", "ett_minute"):
        unit = 30 * 24 * (4 if split == "ett_minute" else 1)
        b1, b2, b3 = 12 * unit, 16 * unit, 20 * unit
        if n_rows < b3:  # truncated copies (tests): scale the borders, keep the 12/4/4 proportions
            b1, b2, b3 = int(n_rows * 0.6), int(n_rows * 0.8), n_rows
    elif split == "ratio":
        n_train = int(n_rows * 0.7)
        n_test = int(n_rows * 0.2)
        b1, b2, b3 = n_train, n_rows - n_test, n_rows
    else:
        raise ValueError(f"unknown split rule {split!r}")
    return {"train": (0, b1), "val": (b1 - input_size, b2), "test": (b2 - input_size, b3)}


def n_windows(segment: tuple[int, int], input_size: int, horizon: int) -> int:
    """Stride-1 windows in a segment: ``len - input_size - horizon + 1`` (never negative)."""
    start, end = segment
    return max(0, end - start - input_size - horizon + 1)
