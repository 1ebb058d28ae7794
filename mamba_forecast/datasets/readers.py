"""Readers for the standard long-horizon benchmark files, any CSV in the standard layout, the bundled ETTh1, and
the protocol's split borders.

Every reader returns a ``pandas.DataFrame`` with a ``date`` column (``datetime64``) followed by the series
columns in file order, the target last (``OT`` where the file has one). Nothing is resampled, de-duplicated or
filled (except PEMS, whose official loader fills its gaps): the benchmark protocol works on row positions,
exactly as the official loaders do. What each set is and how it splits: :mod:`mamba_forecast.datasets.registry`.

Where the files are (:func:`default_data_dir`): the ``data_dir`` argument (``--data-dir``), else
``$MAMBA_FORECAST_DATA``, else the user cache ``$XDG_CACHE_HOME/mamba_forecast`` (``~/.cache/mamba_forecast``),
where ``mamba-forecast data download NAME`` puts them. ETTh1 ships with the package: without a ``data_dir`` and
with no ``ETTh1.csv`` in the default folder, the bundled copy (byte-identical) is read.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .registry import _CUSTOM, SPLIT_RULES, DataFile, DatasetSpec, get_spec

ENV_VAR = "MAMBA_FORECAST_DATA"
CACHE_SUBDIR = "mamba_forecast"

DEMO_DATA = "ETTh1.csv.gz"
DEMO_CREDIT = (
    "ETTh1 (ETDataset, Zhou et al., Informer, AAAI 2021; CC BY-ND 4.0), bundled unmodified with mamba-forecast"
)

# SML2010: the target (dining-room indoor temperature, the series the SML2010 literature forecasts; the registry's
# `target`) goes last; dropped: Date/Time (become `date`), Day_Of_Week (a calendar feature, not a measured series)
# and the three Exterior_Entalpic_* columns, which are constant 0 in both files (a z-score would divide by zero).
SML2010_DROPPED = ("Exterior_Entalpic_1", "Exterior_Entalpic_2", "Exterior_Entalpic_turbo", "Day_Of_Week")


def default_data_dir() -> Path:
    """``$MAMBA_FORECAST_DATA`` when set, else ``$XDG_CACHE_HOME/mamba_forecast``, else
    ``~/.cache/mamba_forecast``. The folder may not exist yet (``mamba-forecast data download`` creates it)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    cache = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return cache / CACHE_SUBDIR


def resolve_data_dir(data_dir: str | os.PathLike | None = None, *, create: bool = False) -> Path:
    """The data folder: ``data_dir`` when given, else :func:`default_data_dir`.

    A folder named explicitly (``data_dir`` or ``$MAMBA_FORECAST_DATA``) must exist, unless ``create`` (then it is
    made); the default cache folder is returned even when it does not exist yet.
    """
    if data_dir is not None:
        path, what = Path(data_dir).expanduser(), "data directory"
    elif os.environ.get(ENV_VAR):
        path, what = default_data_dir(), f"${ENV_VAR}"
    else:
        path, what = default_data_dir(), None
    if create:
        path.mkdir(parents=True, exist_ok=True)
    elif what is not None and not path.is_dir():
        raise FileNotFoundError(
            f"{what} {path} does not exist; pass an existing folder (--data-dir), or create it "
            f"with `mamba-forecast data download NAME --data-dir {path}`"
        )
    return path


def find_file(root: Path, file: DataFile | str) -> Path | None:
    """``root/<name>``, else its gzip copy ``root/<name>.gz``; ``None`` when neither exists."""
    name = file.name if isinstance(file, DataFile) else file
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _open_text(path: Path, **kwargs):
    """Open a benchmark file as text; a ``.gz`` file is decompressed on the fly."""
    opener = gzip.open if path.suffix == ".gz" else open
    return opener(path, "rt", encoding="utf-8", errors="replace", **kwargs)


def _read_csv(path: Path) -> pd.DataFrame:
    # utf-8 with errors replaced: weather.csv's header carries U+FFFD characters; CRLF is handled by pandas.
    with _open_text(path, newline="") as fh:
        df = pd.read_csv(fh)
    df.columns = [str(c).strip() for c in df.columns]
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
    return df.sort_values("date", kind="stable").reset_index(drop=True)


def _with_dates(values: np.ndarray, spec: DatasetSpec) -> pd.DataFrame:
    """A headerless, dateless table (Solar, PEMS): series named by column number, dates from ``spec.start``."""
    df = pd.DataFrame(values, columns=[str(j) for j in range(values.shape[1])])
    df.insert(0, "date", pd.date_range(spec.start, periods=len(df), freq=spec.freq))
    return df


def _read_solar(path: Path, spec: DatasetSpec) -> pd.DataFrame:
    with _open_text(path) as fh:
        values = pd.read_csv(fh, header=None).to_numpy(dtype=np.float64)
    return _with_dates(values, spec)


def _read_pems(path: Path, spec: DatasetSpec) -> pd.DataFrame:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        flow = np.load(fh)["data"][:, :, 0].astype(np.float64)  # [T, N]: the flow channel, as Dataset_PEMS
    # Dataset_PEMS fills gaps forward, then backward
    filled = pd.DataFrame(flow).ffill().bfill().to_numpy()
    return _with_dates(filled, spec)


def _target_last(df: pd.DataFrame, target: str | None) -> pd.DataFrame:
    if target is not None and target in df.columns and df.columns[-1] != target:
        df[target] = df.pop(target)
    return df


def load_benchmark(name: str, data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read one benchmark set as ``date`` + series columns (float64), rows in file (time) order.

    Args:
        name: a registered name (``ETTh1``, ``ETTm2``, ``ECL``, ``Solar``, ``PEMS04``, ...; case-insensitive, see
            :data:`~mamba_forecast.datasets.DATASETS`) or a CSV registered with :func:`register_csv`.
        data_dir: folder holding the files (see the module docstring for the default).
    """
    spec = get_spec(name)
    if spec.name in _CUSTOM:
        return read_csv_file(spec.files[0].name, spec.target)
    if spec.name == "ETTh1" and data_dir is None:
        try:
            root = resolve_data_dir()
        except FileNotFoundError:
            root = None
        if root is None or find_file(root, spec.files[0]) is None:
            return load_demo_data()  # the bundled copy (byte-identical to the official file)
    root = resolve_data_dir(data_dir)
    paths = []
    for f in spec.files:
        path = find_file(root, f)
        if path is None:
            raise FileNotFoundError(
                f"{root / f.name} not found (benchmark {spec.name}; {f.name}.gz is read too). Fetch it with "
                f"`mamba-forecast data download {spec.name}{'' if data_dir is None else f' --data-dir {root}'}`, "
                f"or pass the folder holding it (--data-dir, ${ENV_VAR})."
            )
        paths.append(path)
    if spec.layout == "sml2010":
        df = _read_sml2010(paths)
    elif spec.layout == "solar_txt":
        df = _read_solar(paths[0], spec)
    elif spec.layout == "pems_npz":
        df = _read_pems(paths[0], spec)
    else:
        df = _read_csv(paths[0])
    df = _target_last(df, spec.target)
    value_cols = [c for c in df.columns if c != "date"]
    df[value_cols] = df[value_cols].astype("float64")
    return df


# ------------------------------------------------------------------------------------------ any CSV file
def read_csv_file(path: str | os.PathLike, target: str | None = None) -> pd.DataFrame:
    """Read a CSV in the standard layout: a ``date`` column, then numeric series columns.

    The target (``target``; default ``OT`` where present, else the last column) is moved last. Raises
    ``FileNotFoundError`` for a missing file and ``ValueError`` (naming the column and the fix) for a missing
    ``date`` or target column, non-numeric columns, unparseable dates, NaN values or fewer than 2 rows.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"--csv: {path} not found")
    with _open_text(path, newline="") as fh:
        df = pd.read_csv(fh)
    df.columns = [str(c).strip() for c in df.columns]
    if "date" not in df.columns:
        raise ValueError(
            f"--csv {path}: no 'date' column; the standard layout is a 'date' column followed by "
            f"numeric series columns, got columns {list(df.columns)[:8]}"
        )
    series = [c for c in df.columns if c != "date"]
    if not series:
        raise ValueError(f"--csv {path}: no series columns next to 'date'")
    bad = [c for c in series if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise ValueError(
            f"--csv {path}: non-numeric columns {bad[:5]}; drop them or convert them to numbers "
            "(every column besides 'date' is a series)"
        )
    if target is None:
        target = "OT" if "OT" in series else series[-1]
    elif target not in series:
        raise ValueError(f"--target {target!r} is not a column of {path}; choose one of {series[:10]}")
    try:
        df["date"] = pd.to_datetime(df["date"], format="mixed")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"--csv {path}: the 'date' column does not parse as dates ({exc})") from None
    if len(df) < 2:
        raise ValueError(
            f"--csv {path}: {len(df)} rows; a forecast needs at least input_size + horizon rows in "
            "each of the 7:1:2 train / validation / test parts"
        )
    if df[series].isna().any().any():
        missing = [c for c in series if df[c].isna().any()]
        raise ValueError(f"--csv {path}: NaN values in {missing[:5]}; fill or drop them first")
    df = _target_last(df, target)
    df[[c for c in df.columns if c != "date"]] = df[[c for c in df.columns if c != "date"]].astype("float64")
    return df


def register_csv(path: str | os.PathLike, target: str | None = None) -> str:
    """Check a CSV in the standard layout (:func:`read_csv_file`) and register it for the benchmark; returns its
    name, which ``load_benchmark``, ``split_borders``, ``bench`` and ``tune`` accept: the file's name and a short
    hash of its bytes and target column (``"sales.csv@1a2b3c4d"``). Two files of the same name in different
    folders (``a/sales.csv``, ``b/sales.csv``) are then two sets in one results CSV, and a copy of a file, or the
    file read again, is the same one. It splits 7:1:2 (train / validation / test, as the custom sets of the
    literature)."""
    path = Path(path).expanduser().resolve()
    df = read_csv_file(path, target)
    digest = hashlib.sha256(path.read_bytes())
    digest.update(b"\0" + str(df.columns[-1]).encode())  # the target goes last: another target, another set
    name = f"{path.name}@{digest.hexdigest()[:8]}"  # '@' is in no registered name: never shadows one
    # pandas needs 3 dates to infer a frequency; a shorter file is refused later, with the window sizes it lacks
    freq = pd.infer_freq(df["date"].iloc[:100]) if len(df) >= 3 else None
    _CUSTOM[name] = DatasetSpec(
        name,
        (DataFile(str(path)),),
        "ratio",
        freq or "unknown",
        df.shape[1] - 1,
        len(df),
        target=df.columns[-1],
        horizons=(),
        source=str(path),
    )
    return name


# ------------------------------------------------------------------------------------------ bundled data
def load_demo_data() -> pd.DataFrame:
    """The bundled ETTh1 table: a ``date`` column and 7 series columns, 17,420 hourly rows."""
    with (
        resources.files("mamba_forecast.datasets").joinpath("data", DEMO_DATA).open("rb") as raw,
        gzip.open(raw, "rt") as text,
    ):
        return pd.read_csv(text, parse_dates=["date"])


def to_long(frame: pd.DataFrame) -> pd.DataFrame:
    """Wide (a date column + one column per series) or long (unique_id, ds, y) -> long, sorted, float y."""
    if {"unique_id", "ds", "y"} <= set(frame.columns):
        long = frame[["unique_id", "ds", "y"]].copy()
        long["ds"] = pd.to_datetime(long["ds"])
    else:
        date_col = next((c for c in frame.columns if str(c).lower() in ("date", "ds", "time", "timestamp")), None)
        if date_col is None:
            raise ValueError(
                "--data: expected a 'date' column plus one column per series (the benchmark format), or "
                f"NeuralForecast's long format (unique_id, ds, y); got columns {list(frame.columns)[:8]}."
            )
        values = frame.drop(columns=[date_col]).select_dtypes("number")
        if values.empty:
            raise ValueError("--data: no numeric series columns next to the date column.")
        long = values.assign(ds=pd.to_datetime(frame[date_col])).melt(
            id_vars="ds", var_name="unique_id", value_name="y"
        )
    long["y"] = long["y"].astype("float32")
    if not np.isfinite(long["y"].to_numpy()).all():
        raise ValueError("--data: the series contain NaN or infinite values; fill or drop them first.")
    return long.sort_values(["unique_id", "ds"]).reset_index(drop=True)[["unique_id", "ds", "y"]]


# ------------------------------------------------------------------------------------------ the protocol
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

    ``name_or_split`` is a dataset name (its registry spec gives the rule) or a rule itself (``"ett_hour"``,
    ``"ett_minute"``, ``"ratio"``, ``"ratio_solar"``, ``"pems"``, ``"recordings"``).

    Val and test start ``input_size`` rows early (look-back borrowing), so every target row of a segment is
    scored exactly once. ETT files use fixed 12/4/4-month borders (rows past 20 months are unused); the custom
    sets use 7:1:2 with ``n_train = int(0.7 T)``, ``n_test = int(0.2 T)``, ``n_val = T - n_train - n_test``
    (Solar: validation ends at ``n_train + int(0.1 T)``, as ``Dataset_Solar`` cuts it). PEMS splits 6:2:2 with
    no borrowing: each segment's first ``input_size`` rows are look-back only, as ``Dataset_PEMS`` does.

    ``"recordings"`` (SML2010: two recordings a week apart, joined in one frame) needs ``recording_start``, the
    first row of the second recording (:func:`recording_break`). Train and validation split the first recording
    7:3 (validation borrows its look-back from the end of train, within the same recording); the test segment is
    the whole second recording, whose first ``input_size`` rows are look-back only. No segment contains the
    gap, so no window crosses it. (A 7:1:2 split of the joined rows leaves validation 415 rows, fewer than one
    720-step window, and 7-39% of training windows straddle the gap.)
    """
    split = name_or_split if name_or_split in SPLIT_RULES else get_spec(name_or_split).split
    if split == "recordings":
        if recording_start is None or not 0 < recording_start < n_rows:
            raise ValueError(
                f"the 'recordings' split needs recording_start, the first row of the second recording, "
                f"inside (0, {n_rows}); got {recording_start!r}. Pass recording_break(df['date'])."
            )
        b1 = recording_start * 7 // 10
        return {"train": (0, b1), "val": (b1 - input_size, recording_start), "test": (recording_start, n_rows)}
    if split == "pems":
        # Dataset_PEMS: int(0.6 T) and int((0.6 + 0.2) T), the sum in floating point exactly as written there
        b1, b2 = int(n_rows * 0.6), int(n_rows * (0.6 + 0.2))
        return {"train": (0, b1), "val": (b1, b2), "test": (b2, n_rows)}
    if split in ("ett_hour", "ett_minute"):
        unit = 30 * 24 * (4 if split == "ett_minute" else 1)
        b1, b2, b3 = 12 * unit, 16 * unit, 20 * unit
        if n_rows < b3:  # truncated copies (tests): scale the borders, keep the 12/4/4 proportions
            b1, b2, b3 = int(n_rows * 0.6), int(n_rows * 0.8), n_rows
    elif split == "ratio":
        n_train = int(n_rows * 0.7)
        n_test = int(n_rows * 0.2)
        b1, b2, b3 = n_train, n_rows - n_test, n_rows
    elif split == "ratio_solar":
        n_train, n_test, n_val = int(n_rows * 0.7), int(n_rows * 0.2), int(n_rows * 0.1)
        b1, b2, b3 = n_train, n_train + n_val, n_rows
        return {"train": (0, b1), "val": (b1 - input_size, b2), "test": (n_rows - n_test - input_size, b3)}
    else:
        raise ValueError(f"unknown split rule {split!r}; known: {', '.join(SPLIT_RULES)}")
    return {"train": (0, b1), "val": (b1 - input_size, b2), "test": (b2 - input_size, b3)}


def n_windows(segment: tuple[int, int], input_size: int, horizon: int) -> int:
    """Stride-1 windows in a segment: ``len - input_size - horizon + 1`` (never negative)."""
    start, end = segment
    return max(0, end - start - input_size - horizon + 1)
