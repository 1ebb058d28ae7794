"""The panel checks of the NeuralForecast adapter: what :class:`~._base.MambaForecaster` refuses before training.

A multivariate batch stacks the series by position, so they must share their timestamps; a gap or a wrong
``freq`` would silently join or misdate windows. These functions read only the dataset and, where
NeuralForecast keeps them beside it, its ids and timestamps (``_compat.panel_index``).
"""

from __future__ import annotations

import itertools
import numbers
import warnings
from typing import TYPE_CHECKING, cast

import numpy as np
import torch

from ._compat import PanelIndex, panel_index

if TYPE_CHECKING:
    from ._base import MambaForecaster


_UNRESOLVED = object()


def check_panel(
    model: MambaForecaster,
    dataset,
    *,
    val_size: int = 0,
    test_size: int = 0,
    training: bool,
    index: PanelIndex | None | object = _UNRESOLVED,
) -> None:
    """Raise ValueError for a panel the multivariate model would silently mislearn or mispredict.

    A multivariate batch stacks the series by position, so they must have equal lengths (NeuralForecast
    would left-pad the short ones with zeros the model takes for data) and, where the timestamps are known
    (``index``: NeuralForecast's ids, timestamps and ``freq`` for the dataset; looked up when not given), the
    same consecutive timestamps. Training also needs finite values and at least one full window
    (``input_size + h``) left after the validation and test splits.
    """
    indptr = getattr(dataset, "indptr", None)
    if indptr is None:  # a dataset streamed from files: nothing in memory to check
        return
    name = type(model).__name__
    lengths = np.diff(indptr)
    resolved: list[PanelIndex | None] = []  # the index, looked up at most once, and only when needed

    def known() -> PanelIndex | None:
        if not resolved:
            resolved.append(panel_index(dataset) if index is _UNRESOLVED else cast("PanelIndex | None", index))
        return resolved[0]

    def label(i):
        uids = getattr(known(), "uids", None)
        return repr(list(uids)[i]) if uids is not None and len(uids) == len(lengths) else f"#{i}"

    panel = known() if training else None
    stamps = getattr(panel, "ds", None)
    if stamps is not None:
        stamps = np.asarray(stamps)
    if stamps is not None and len(stamps) == int(indptr[-1]) and len(stamps) > 1:
        repeated = np.flatnonzero(stamps[1:] == stamps[:-1]) + 1  # rows repeating the row before (ds is sorted)
        repeated = repeated[~np.isin(repeated, indptr)]  # a series' first row may equal the last of the previous
        if repeated.size:
            i = int(np.searchsorted(indptr, repeated[0], side="right") - 1)
            raise ValueError(
                f"Series {label(i)} has {repeated.size} duplicated timestamp(s) (first {_stamp(stamps[repeated[0]])}); "
                f"{name} needs one row per series and time step. Drop or aggregate the duplicates before fitting, "
                f"e.g. df.drop_duplicates(['unique_id', 'ds'])."
            )
    if lengths.min() != lengths.max():
        short, long = int(lengths.argmin()), int(lengths.argmax())
        raise ValueError(
            f"{name} is multivariate and needs every series on the same time steps, but series {label(short)} "
            f"has {lengths[short]} rows and {label(long)} has {lengths[long]}. Keep the common time range "
            f"(or fill the gaps) before fitting."
        )
    if not training:
        _check_prediction_inputs(model, dataset, int(lengths[0]))
        return
    # A TimeSeriesDataset keeps no timestamps; NeuralForecast keeps them next to it (``ds``, sorted like the
    # rows), and the model's fit only receives the dataset: see ``_compat.panel_index``.
    if panel is not None and stamps is not None and len(stamps) == len(dataset.temporal):
        grid = stamps.reshape(len(lengths), -1)
        off = np.flatnonzero((grid != grid[:1]).any(axis=1))
        if off.size:
            i = int(off[0])
            raise ValueError(
                f"{name} is multivariate and needs every series on the same timestamps, but series {label(i)} "
                f"runs from {grid[i, 0]} to {grid[i, -1]} and {label(0)} from {grid[0, 0]} to {grid[0, -1]}. "
                f"Align the series (same start, end and frequency, no gaps) before fitting."
            )
        check_time_grid(name, grid[0], panel.freq)
    temporal = dataset.temporal
    columns = list(dataset.temporal_cols)
    available = temporal[:, columns.index("available_mask")] > 0 if "available_mask" in columns else None
    for j, column in enumerate(columns):
        values = temporal[:, j] if available is None else temporal[:, j][available]
        bad = ~torch.isfinite(values)
        if bad.any():
            raise ValueError(
                f"Column {column!r} has {int(bad.sum())} non-finite value(s) (NaN or inf); {name} cannot train "
                f"on them. Fill or drop them before fitting."
            )
    steps = int(lengths[0]) - val_size - test_size
    needed = (1 if model.start_padding_enabled else model.input_size) + model.h
    if steps < needed:
        if test_size:
            # NeuralForecast.cross_validation(n_windows, step_size) fits with test_size = h + step_size *
            # (n_windows - 1); the model is handed test_size only, so the advice covers both usual step sizes.
            h = model.h
            fits = int(lengths[0]) - val_size - needed  # the most time steps the test windows may take
            if fits >= h:
                advice = (
                    f"Hold out at most {fits}: at most n_windows={(fits - h) // h + 1} with step_size={h} (= h), "
                    f"or n_windows={fits - h + 1} with step_size=1"
                )
            else:
                advice = "The series are too short for even one window"
            raise ValueError(
                f"The test windows hold out the last test_size={test_size} time steps of each series (in "
                f"NeuralForecast.cross_validation, h + step_size * (n_windows - 1) with h={h})"
                f"{f' and val_size={val_size} before them' if val_size else ''}, which leaves "
                f"{max(steps, 0)} of the {int(lengths[0])} time steps to train on, but {name}(input_size="
                f"{model.input_size}, h={model.h}) needs at least {needed}. {advice}; or use a smaller "
                f"input_size or h, or more data."
            )
        splits = f" after holding out val_size={val_size} and test_size={test_size}" if val_size or test_size else ""
        raise ValueError(
            f"{name}(input_size={model.input_size}, h={model.h}) needs at least {needed} time steps per series "
            f"to train{splits}, but the series have {steps}. Use a smaller input_size or h, more data, or "
            f"start_padding_enabled=True."
        )


def check_time_grid(name: str, stamps: np.ndarray, freq) -> None:
    """Raise ValueError when the (shared) timestamps are not consecutive steps of ``freq``.

    NeuralForecast takes the rows of each series as consecutive steps whatever their timestamps say, and
    dates the forecasts ``freq`` steps after the last one. So a time step missing from every series (which
    the per-series alignment checks cannot see) silently joins the two sides of the gap into one window, and a
    ``freq`` other than the data's (``freq="D"`` on weekly data) trains normally and then dates the forecasts
    wrongly. NeuralForecast's own models accept both; a multivariate Mamba model refuses them before training.
    """
    if freq is None or len(stamps) < 2:
        return
    stamps = np.asarray(stamps)
    if np.issubdtype(stamps.dtype, np.datetime64):
        import pandas as pd

        try:
            offset = pd.tseries.frequencies.to_offset(freq)
        except (TypeError, ValueError):
            return  # NeuralForecast reports an invalid freq itself
        index = pd.DatetimeIndex(stamps)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas' PerformanceWarning for offsets it cannot vectorise
            expected = (index[:-1] + offset).to_numpy()
        shown = f"freq={freq!r}"
    elif np.issubdtype(stamps.dtype, np.integer) and isinstance(freq, numbers.Integral):
        expected, shown = stamps[:-1] + int(freq), f"freq={freq}"
    else:
        return  # NeuralForecast reports an integer ds with a string freq (and the reverse) itself
    bad = np.flatnonzero(stamps[1:] != expected)
    if not bad.size:
        return
    if bad.size > (len(stamps) - 1) / 2:  # most steps disagree: the data's own step is not `freq`
        inferred = _infer_freq(stamps)
        found = f"the data's step is {inferred!r}" if inferred is not None else "the data has another step"
        fix = f"freq={inferred!r}" if inferred is not None else "freq=<the data's frequency>"
        raise ValueError(
            f"NeuralForecast was given {shown}, but {found}: consecutive timestamps {_stamp(stamps[bad[0]])} and "
            f"{_stamp(stamps[bad[0] + 1])} are not one {shown} step apart ({bad.size} of {len(stamps) - 1} steps). "
            f"{name} would train on the rows as they are and date its forecasts one {shown} step apart. Create it "
            f"with NeuralForecast(models=..., {fix}) to match the timestamps."
        )
    i = int(bad[0])
    missing = "missing" if stamps[i + 1] > expected[i] else "off the grid"
    raise ValueError(
        f"The timestamps, shared by every series, are not consecutive {shown} steps: after {_stamp(stamps[i])} comes "
        f"{_stamp(stamps[i + 1])}, where {_stamp(expected[i])} was expected ({bad.size} such place(s), the same in "
        f"every series: time steps are {missing}). {name} would take the rows on either side for neighbours. "
        f"Fill the missing time steps (e.g. utilsforecast.preprocessing.fill_gaps(df, freq=...) and then fill "
        f"`y`, for instance by interpolation), or, if the rows are consecutive by design (trading days, say), "
        f"pass the freq they follow (freq='B', a CustomBusinessDay) or number them with an integer `ds` and freq=1."
    )


def _infer_freq(stamps: np.ndarray):
    """The pandas frequency of a run of timestamps, from the longest regular stretch at the start."""
    import pandas as pd

    if np.issubdtype(stamps.dtype, np.integer):
        steps, counts = np.unique(np.diff(stamps), return_counts=True)
        step = int(steps[counts.argmax()])
        return step if step > 0 else None
    for length in (len(stamps), 25, 8, 3):
        try:
            inferred = pd.infer_freq(pd.DatetimeIndex(stamps[:length]))
        except (TypeError, ValueError):
            inferred = None
        if inferred:
            return inferred
    return None


def _check_prediction_inputs(model: MambaForecaster, dataset, length: int) -> None:
    """Raise ValueError for a prediction panel that would give a silent NaN or zero-padded forecast.

    At prediction the last ``test_size`` rows of each series are the forecast span (future rows appended by
    ``NeuralForecast.predict``, or the test windows of a cross-validation) and the ``input_size`` rows before
    them are the look-back. NeuralForecast rejects NaN targets itself but lets infinite values through (the
    forecast is then NaN) and zero-pads a look-back shorter than ``input_size``.
    """
    name = type(model).__name__
    test_size = int(model.test_size or 0)
    history = length - test_size
    if not model.start_padding_enabled and 0 < history < model.input_size:
        raise ValueError(
            f"{name}(input_size={model.input_size}) needs the last {model.input_size} time steps of every series "
            f"to forecast, but the series passed to predict have {history}. Pass a `df` with at least "
            f"{model.input_size} rows per series (or a model with a smaller input_size, or "
            f"start_padding_enabled=True to pad with zeros)."
        )
    indptr = dataset.indptr
    first = max(history - model.input_size, 0)  # the first row each series' windows read
    rows = np.concatenate([np.arange(start + first, end) for start, end in itertools.pairwise(indptr)])
    temporal = dataset.temporal[rows]
    infinite = torch.isinf(temporal).any(dim=0)
    if infinite.any():
        column = list(dataset.temporal_cols)[int(infinite.nonzero()[0, 0])]
        count = int(torch.isinf(temporal[:, int(infinite.nonzero()[0, 0])]).sum())
        raise ValueError(
            f"Column {column!r} has {count} infinite value(s) in the rows {name} reads to forecast (the last "
            f"input_size={model.input_size} steps of each series and the forecast span); the forecast would be "
            f"NaN. Replace them with finite values before predicting."
        )


def _stamp(value) -> str:
    """A timestamp as users write it (``2024-01-01 05:00:00``), not as numpy prints it."""
    return (
        str(np.datetime_as_string(value, unit="s")).replace("T", " ")
        if isinstance(value, np.datetime64)
        else str(value)
    )
