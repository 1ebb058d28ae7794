"""The standard long-horizon protocol (iTransformer / S-Mamba pipeline), torch + numpy + pandas only.

* splits: :func:`mamba_forecast.datasets.split_borders` (val/test borrow ``input_size`` rows of look-back;
  SML2010's two recordings are never joined inside a segment); a split with no window for the horizon is an
  error (:meth:`ProtocolData.check_windows`), never a silent score of 0;
* z-scoring per variate with the *training segment's* mean and population std (sklearn ``StandardScaler``);
* stride-1 windows ``x = z[i : i+L]``, ``y = z[i+L : i+L+H]``; ``len(segment) - L - H + 1`` windows per segment;
* calendar tokens (``timeF`` with freq ``'h'`` for every dataset, as the official scripts do):
  HourOfDay, DayOfWeek, DayOfMonth, DayOfYear, each scaled to [-0.5, 0.5]; every model gets them (as extra
  tokens), so the four models see the same inputs;
* MSE / MAE on the z-scored scale over every test window x H x N (no window dropped). On the searched look-back
  track every model is scored on the same test windows, those every look-back of the search has
  (:meth:`ProtocolData.common_test`): a split whose test targets start later at a longer look-back (SML2010's second
  recording, PEMS) scores the windows the longest look-back has, whatever look-back a model chose.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from ..datasets import canonical_name, get_spec, load_benchmark, n_windows, recording_break, split_borders

SPLITS = ("train", "val", "test")
LOOKBACKS = (96, 192, 336, 512, 720)  # the look-backs of a searched track


def time_features(dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """``[T, 4]`` float32: HourOfDay, DayOfWeek, DayOfMonth, DayOfYear in [-0.5, 0.5] (``timeF``, freq 'h')."""
    idx = pd.DatetimeIndex(dates)
    feats = [
        idx.hour / 23.0 - 0.5,
        idx.dayofweek / 6.0 - 0.5,
        (idx.day - 1) / 30.0 - 0.5,
        (idx.dayofyear - 1) / 365.0 - 0.5,
    ]
    return np.stack([np.asarray(f, dtype=np.float64) for f in feats], axis=1).astype(np.float32)


@dataclass
class ProtocolData:
    """One dataset prepared for one look-back length: z-scored values, calendar marks and split borders."""

    name: str
    input_size: int
    columns: list[str]
    dates: pd.DatetimeIndex
    values: np.ndarray  # [T, N] float32, z-scored with train statistics
    marks: np.ndarray  # [T, 4] float32
    mean: np.ndarray
    std: np.ndarray
    borders: dict[str, tuple[int, int]] = field(default_factory=dict)
    calendar_tokens: bool = True  # whether the official pipeline feeds the calendar tokens (not Solar, PEMS)
    recording_start: int | None = None  # first row of the second recording ("recordings" splits), else None
    # segments already copied to an accelerator, by (split, device): one copy per run, not one per batch
    _on_device: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def n_series(self) -> int:
        return self.values.shape[1]

    def n_windows(self, split: str, horizon: int) -> int:
        return n_windows(self.borders[split], self.input_size, horizon)

    def borders_at(self, input_size: int) -> dict[str, tuple[int, int]]:
        """The split borders this dataset has at look-back ``input_size``."""
        return split_borders(self.name, len(self.values), input_size, recording_start=self.recording_start)

    def lookbacks_with_windows(self, horizon: int, lookbacks: tuple[int, ...] = LOOKBACKS) -> tuple[int, ...]:
        """Those of ``lookbacks`` that leave a window of ``horizon`` in every split (a searched track's choices)."""
        return tuple(n for n in lookbacks if all(n_windows(self.borders_at(n)[s], n, horizon) > 0 for s in SPLITS))

    def common_test(self, lookbacks: tuple[int, ...]) -> ProtocolData:
        """This data with its test segment cut to the windows whose targets every look-back of ``lookbacks`` scores,
        so that models run at different look-backs are scored on the same windows. Unchanged where the test
        targets start at the same row at every look-back (the 7:1:2 and ETT splits borrow their look-back)."""
        first = max(
            [self.borders["test"][0] + self.input_size] + [self.borders_at(n)["test"][0] + n for n in lookbacks]
        )
        borders = {**self.borders, "test": (first - self.input_size, self.borders["test"][1])}
        if borders == self.borders:
            return self
        return replace(self, borders=borders)

    def check_windows(self, horizon: int) -> None:
        """Raise ``ValueError`` when a split has no window of ``input_size + horizon`` rows."""
        counts = {s: self.n_windows(s, horizon) for s in SPLITS}
        empty = [s for s, n in counts.items() if n <= 0]
        if empty:
            sizes = ", ".join(f"{s} {b[1] - b[0]} rows ({counts[s]} windows)" for s, b in self.borders.items())
            raise ValueError(
                f"{self.name}: the {' and '.join(empty)} split has no window for input_size={self.input_size} + "
                f"horizon={horizon} ({sizes}); use a shorter horizon or input_size for this dataset."
            )

    def segment(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self.borders[split]
        return torch.from_numpy(self.values[start:end]), torch.from_numpy(self.marks[start:end])

    def device_segment(self, split: str, device: str | torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`segment` on ``device``. Off the CPU the copy is made at the first call and kept (a benchmark
        set's segments are a few MiB), so windows are gathered where the model runs and no batch crosses from the
        host."""
        values, marks = self.segment(split)
        if torch.device(device).type == "cpu":
            return values, marks
        key = (split, str(torch.device(device)))
        if key not in self._on_device:
            self._on_device[key] = (values.to(device), marks.to(device))
        return self._on_device[key]


def prepare(
    name: str,
    input_size: int = 96,
    data_dir=None,
    frame: pd.DataFrame | None = None,
) -> ProtocolData:
    """Read (or take) a benchmark frame and apply the protocol's splits and train-statistics z-scoring.

    ``name`` is a registered set or a CSV registered with :func:`mamba_forecast.datasets.register_csv`; its
    registry spec gives the split rule."""
    name = canonical_name(name)
    spec = get_spec(name)
    df = load_benchmark(name, data_dir) if frame is None else frame
    columns = [c for c in df.columns if c != "date"]
    raw = df[columns].to_numpy(dtype=np.float64)
    start = recording_break(df["date"]) if spec.split == "recordings" else None
    borders = split_borders(name, len(df), input_size, recording_start=start)
    train = raw[borders["train"][0] : borders["train"][1]]
    mean = train.mean(axis=0)
    std = train.std(axis=0)  # population std, as StandardScaler
    std = np.where(std == 0, 1.0, std)  # StandardScaler leaves constant columns unscaled
    values = ((raw - mean) / std).astype(np.float32)
    return ProtocolData(
        name=name,
        input_size=input_size,
        columns=columns,
        dates=pd.DatetimeIndex(df["date"]),
        values=values,
        marks=time_features(df["date"]),
        mean=mean,
        std=std,
        borders=borders,
        calendar_tokens=spec.calendar_tokens,
        recording_start=start,
    )


def window_batches(
    values: torch.Tensor,
    marks: torch.Tensor | None,
    input_size: int,
    horizon: int,
    batch_size: int,
    *,
    shuffle: bool,
    drop_last: bool,
    generator: torch.Generator | None = None,
):
    """Yield ``(x [B, L, N], x_mark [B, L, 4] | None, y [B, H, N])`` over all stride-1 windows of a segment.

    Gathers windows by index instead of a DataLoader (no worker processes; much faster for small models), on the
    segment's device. The order is drawn on ``generator`` (a CPU generator: the same permutation on every
    device) and copied to that device once per pass.
    """
    n = values.shape[0] - input_size - horizon + 1
    if n <= 0:
        return
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(values.device)
    steps = torch.arange(input_size + horizon, device=values.device)
    stop = n - n % batch_size if drop_last else n
    for s in range(0, stop, batch_size):
        rows = order[s : s + batch_size, None] + steps  # [B, L + H]: every row of each window
        x = values[rows[:, :input_size]]
        y = values[rows[:, input_size:]]
        xm = marks[rows[:, :input_size]] if marks is not None else None
        yield x, xm, y


def n_batches(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else -(-n // batch_size)
