"""Hostile input through both hosts: a catalogue of what users get wrong and what they must get back.

Every refused case checks three things: (a) a ValueError/TypeError whose message names the problem (or the
host's own error where the host rejects the input before our adapter sees it; each such case says so),
(b) nothing ran through the network (no forward call, so no training step) before the error, and (c) the
user's data is unchanged. Cases that should work (one series, misaligned series in Darts) check finite
forecasts. Then determinism: same seed and data give bit-identical forecasts through both hosts.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("neuralforecast")
pytest.importorskip("darts")

from darts import TimeSeries
from neuralforecast import NeuralForecast

from conftest import QUIET
from mamba_forecast import darts as mdarts
from mamba_forecast import neuralforecast as mnf
from mamba_forecast.darts._base import _MambaForecastModule
from mamba_forecast.neuralforecast._base import MambaForecaster

PL = dict(QUIET)
H, L = 4, 8  # NeuralForecast horizon and look-back
ICL, OCL = 8, 4  # Darts chunks


@pytest.fixture
def forward_calls(monkeypatch):
    """Counts calls of both adapters' forward: any training step (or prediction) goes through one of them."""
    calls = []

    def counting(original):
        def forward(self, *args, **kwargs):
            calls.append(type(self).__name__)
            return original(self, *args, **kwargs)

        return forward

    monkeypatch.setattr(MambaForecaster, "forward", counting(MambaForecaster.forward))
    monkeypatch.setattr(_MambaForecastModule, "forward", counting(_MambaForecastModule.forward))
    return calls


# ----------------------------------------------------------------------------------------------------
# helpers


def nf_model(cls=mnf.SMamba, **kwargs):
    arch = dict(d_model=16, e_layers=1, d_state=4)
    if cls is not mnf.TSM2:
        arch["d_ff"] = 16
    else:
        arch.update(patch_len=4, stride=2)
    return cls(**{"h": H, "input_size": L, "max_steps": 2, "val_check_steps": 1, **arch, **QUIET, **kwargs})


def nf_panel(n_series=2, length=30, exog=False, seed=0):
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=length, freq="h")
    frames = []
    for i in range(n_series):
        frame = pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": 10.0 * (i + 1) + rng.standard_normal(length)})
        if exog:
            frame["f"] = np.sin(np.arange(length) / 3)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def nf_fitted(model=None, df=None):
    nf = NeuralForecast(models=[model or nf_model()], freq="h")
    nf.fit(nf_panel() if df is None else df)
    return nf


def darts_model(cls=mdarts.SMambaModel, **kwargs):
    arch = dict(d_model=8, e_layers=1, d_state=2)
    arch.update(dict(patch_len=4, stride=2) if cls is mdarts.TSM2Model else dict(d_ff=8))
    return cls(ICL, OCL, **{**arch, "n_epochs": 1, "random_state": 0, "pl_trainer_kwargs": PL, **kwargs})


def ts(n_components=2, length=30, start="2024-01-01", seed=0):
    values = 10 + np.random.default_rng(seed).normal(size=(length, n_components)).astype(np.float32)
    return TimeSeries.from_times_and_values(pd.date_range(start, periods=length, freq="h"), values)


def with_value(series: TimeSeries, row: int, value: float) -> TimeSeries:
    values = series.values().copy()
    values[row, 0] = value
    return series.with_values(values)


def snapshot(obj):
    return obj.read_bytes() if isinstance(obj, Path) else copy.deepcopy(obj)


def assert_unchanged(obj, snap):
    if isinstance(obj, Path):  # a checkpoint file: loading must not rewrite it
        assert obj.read_bytes() == snap
    elif isinstance(obj, pd.DataFrame):
        pd.testing.assert_frame_equal(obj, snap)
    elif isinstance(obj, TimeSeries):
        assert obj == snap
        np.testing.assert_array_equal(obj.all_values(copy=False), snap.all_values(copy=False))
    elif isinstance(obj, (list, tuple)):
        assert len(obj) == len(snap)
        for a, b in zip(obj, snap, strict=True):
            assert_unchanged(a, b)
    elif isinstance(obj, np.ndarray):
        np.testing.assert_array_equal(obj, snap)
    else:
        assert obj == snap


# ----------------------------------------------------------------------------------------------------
# the catalogue: each case sets up (fitting first where the case is about predict), then returns
# (data the user owns, the call that must fail, expected error type, regex on the message)


def _nf_fit_case(df, model=None, **fit_kwargs):
    nf = NeuralForecast(models=[model or nf_model()], freq="h")
    return df, lambda: nf.fit(df, **fit_kwargs)


def nf_empty():
    # NeuralForecast's own error, raised in NeuralForecast.fit while it builds its dataset, before the model is
    # called: a ValueError, but its message ("zero-size array ...") does not say the frame is empty, and no
    # model-side check can run earlier.
    return (*_nf_fit_case(nf_panel().iloc[:0]), ValueError, r"zero-size array")


def nf_nan():
    df = nf_panel()
    df.loc[3, "y"] = np.nan
    return (*_nf_fit_case(df), ValueError, r"missing values in \['y'\]")  # NeuralForecast's own check


def nf_inf():
    df = nf_panel()
    df.loc[3, "y"] = np.inf
    return (*_nf_fit_case(df), ValueError, r"Column 'y' has 1 non-finite value\(s\).*Fill or drop them")


def nf_duplicated_timestamp():
    df = nf_panel()
    df = pd.concat([df, df.iloc[[5]]], ignore_index=True)  # one row of s0 twice
    return (
        *_nf_fit_case(df),
        ValueError,
        r"Series 's0' has 1 duplicated timestamp\(s\) \(first 2024-01-01 05:00.*drop_duplicates",
    )


def nf_duplicated_timestamp_same_length():
    df = nf_panel()
    df.loc[5, "ds"] = df.loc[4, "ds"]  # s0 has a repeated hour and misses another
    return (*_nf_fit_case(df), ValueError, r"Series 's0' has 1 duplicated timestamp\(s\) \(first 2024-01-01 04:00")


def nf_gap():
    df = nf_panel().drop(index=[5]).reset_index(drop=True)  # one missing hour in s0 only
    return (*_nf_fit_case(df), ValueError, r"same time steps.*'s0' has 29 rows.*fill the gaps")


def nf_same_gap_in_every_series():
    df = nf_panel()
    df = df[df["ds"] != pd.Timestamp("2024-01-01 07:00")].reset_index(drop=True)  # the same hour gone from both
    return (
        *_nf_fit_case(df),
        ValueError,
        r"shared by every series, are not consecutive freq='h' steps: "
        r"after 2024-01-01 06:00:00 comes 2024-01-01 08:00:00.*fill_gaps",
    )


def nf_freq_disagrees_with_timestamps():
    weeks = dict(
        zip(
            pd.date_range("2024-01-01", periods=30, freq="h"),
            pd.date_range("2024-01-01", periods=30, freq="W-MON"),
            strict=True,
        )
    )
    df = nf_panel().assign(ds=lambda d: d["ds"].map(weeks))  # weekly rows, on Mondays
    nf = NeuralForecast(models=[nf_model()], freq="D")
    return df, lambda: nf.fit(df), ValueError, r"given freq='D', but the data's step is 'W-MON'.*freq='W-MON'"


def nf_freq_disagrees_in_cross_validation():
    df = nf_panel()
    nf = NeuralForecast(models=[nf_model()], freq="15min")
    return df, lambda: nf.cross_validation(df, n_windows=2, step_size=H), ValueError, r"given freq='15min'.*'h'"


def nf_integer_ds_with_other_step():
    df = nf_panel().assign(ds=lambda d: 2 * d.groupby("unique_id").cumcount())
    nf = NeuralForecast(models=[nf_model()], freq=1)
    return df, lambda: nf.fit(df), ValueError, r"given freq=1, but the data's step is 2.*freq=2"


def nf_too_many_cv_windows():
    df = nf_panel()
    nf = NeuralForecast(models=[nf_model()], freq="h")
    return (
        df,
        lambda: nf.cross_validation(df, n_windows=10, step_size=H),
        ValueError,
        r"hold out the last test_size=40 time steps.*cross_validation, h \+ step_size \* \(n_windows - 1\) "
        r"with h=4.*leaves 0 of the 30 time steps.*needs at least 12.*Hold out at most 18: at most n_windows=4 "
        r"with step_size=4",
    )


def nf_misaligned():
    df = nf_panel(length=40)
    df = df[~((df["unique_id"] == "s1") & (df["ds"] < "2024-01-01 05:00"))]  # s1 starts 5 h later
    return (*_nf_fit_case(df), ValueError, r"same time steps.*'s1' has 35 rows")


def nf_misaligned_same_length():
    df = nf_panel()
    df = df.assign(ds=df["ds"] + pd.Timedelta(hours=3) * (df["unique_id"] == "s1"))
    return (*_nf_fit_case(df), ValueError, r"same timestamps.*'s1' runs from")


def nf_too_short():
    return (*_nf_fit_case(nf_panel(length=L + H - 1)), ValueError, r"needs at least 12 time steps.*have 11")


def nf_y_strings():
    df = nf_panel().astype({"y": str})
    return (*_nf_fit_case(df), ValueError, r"target column \('y'\) should have a numeric")  # NeuralForecast's


def nf_ds_strings():
    df = nf_panel().astype({"ds": str})
    return (*_nf_fit_case(df), ValueError, r"time column \('ds'\) should have either timestamps")  # NeuralForecast's


def nf_numpy_container():
    array = nf_panel().to_numpy()
    return (*_nf_fit_case(array), ValueError, r"`df` must be a pandas")  # NeuralForecast's own check


def nf_missing_futr_column():
    # NeuralForecast's own check, a bare Exception (not a ValueError), raised in NeuralForecast.fit
    model = nf_model(futr_exog_list=["price"])
    return (*_nf_fit_case(nf_panel(), model), Exception, r"\{'price'\} future exogenous variables not found")


def nf_missing_hist_column():
    model = nf_model(hist_exog_list=["load"])  # NeuralForecast's own check, a bare Exception
    return (*_nf_fit_case(nf_panel(), model), Exception, r"\{'load'\} historical exogenous variables not found")


def nf_futr_df_too_short():
    df = nf_panel(exog=True)
    nf = nf_fitted(nf_model(futr_exog_list=["f"]), df)
    futr = nf.make_future_dataframe(df).assign(f=0.0).groupby("unique_id").head(H - 1)
    # NeuralForecast's own check
    return (
        [df, futr],
        lambda: nf.predict(futr_df=futr),
        ValueError,
        r"missing combinations of ids and times in `futr_df`",
    )


def nf_predict_inf():
    nf = nf_fitted()
    df = nf_panel()
    df.loc[29, "y"] = -np.inf  # last step of s0: in the look-back
    return df, lambda: nf.predict(df=df), ValueError, r"Column 'y' has 1 infinite value.*would be NaN"


def nf_predict_too_short():
    nf = nf_fitted()
    df = nf_panel(length=5)
    return df, lambda: nf.predict(df=df), ValueError, r"needs the last 8 time steps.*have 5.*at least 8 rows"


def _saved(tmp_path, cls=mnf.SMamba):
    path = tmp_path / cls.__name__
    nf_fitted(nf_model(cls)).save(str(path), overwrite=True)
    return path


def nf_truncated_checkpoint(tmp_path):
    path = _saved(tmp_path)
    file = path / "SMamba_0.safetensors"
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    return file, lambda: NeuralForecast.load(str(path)), ValueError, r"SMamba_0.safetensors.*truncated or corrupted"


def nf_garbage_checkpoint(tmp_path):
    path = _saved(tmp_path)
    (path / "SMamba_0.safetensors").write_bytes(b"not a checkpoint" * 64)
    # NeuralForecast's own check
    return (
        path / "SMamba_0.safetensors",
        lambda: NeuralForecast.load(str(path)),
        ValueError,
        r"is not a neuralforecast checkpoint",
    )


def nf_foreign_checkpoint(tmp_path):
    path, other = _saved(tmp_path), _saved(tmp_path, mnf.TSM2)
    shutil.copy(other / "TSM2_0.safetensors", path / "SMamba_0.safetensors")
    # NeuralForecast's own check
    return (
        path / "SMamba_0.safetensors",
        lambda: NeuralForecast.load(str(path)),
        ValueError,
        r"holds a TSM2 checkpoint.*loaded as SMamba",
    )


def darts_fit_case(data, match, error=ValueError, model=None, **fit_kwargs):
    model = model or darts_model()
    return data, lambda: model.fit(data, **fit_kwargs), error, match


def darts_empty_series():
    return darts_fit_case(ts()[:0], r"`series` has 0 points, too short")


def darts_empty_list():
    return darts_fit_case([], r"`series` must be a darts TimeSeries or a non-empty list.*empty sequence")


def darts_nan():
    return darts_fit_case(with_value(ts(), 3, np.nan), r"`series` has NaN values at 1 time steps.*fill_missing_values")


def darts_inf():
    return darts_fit_case(with_value(ts(), 3, np.inf), r"`series` has infinite values at 1 time steps")


def darts_inf_covariates():
    target, past = ts(), with_value(ts(1), 7, -np.inf)
    model = darts_model()
    return (
        [target, past],
        lambda: model.fit(target, past_covariates=past),
        ValueError,
        r"`past_covariates` has infinite",
    )


def darts_predict_inf():
    model = darts_model().fit(ts())
    target = with_value(ts(), 29, np.inf)
    return target, lambda: model.predict(OCL, series=target), ValueError, r"infinite values in its last 8 points"


def darts_predict_inf_future_covariates():
    target, future = ts(), ts(1, length=40, seed=1)
    model = darts_model().fit(target, future_covariates=future)
    bad = with_value(future, 31, np.inf)  # inside the horizon
    return (
        bad,
        lambda: model.predict(OCL, series=target, future_covariates=bad),
        ValueError,
        r"`future_covariates` have infinite values from 2024-01-01 22:00",
    )


def darts_duplicated_timestamps():
    # The user's whole step, from their rows to model.fit. Darts' TimeSeries constructor refuses the index
    # before the model sees it; if a Darts release let such a series through, the model would have to refuse it.
    index = pd.DatetimeIndex(
        list(pd.date_range("2024-01-01", periods=29, freq="h")) + [pd.Timestamp("2024-01-01 05:00")]
    )
    values = np.ones((30, 2))
    model = darts_model()
    return (
        values,
        lambda: model.fit(TimeSeries.from_times_and_values(index, values)),
        ValueError,
        r"frequency could not be",
    )


def darts_gap_filled_with_nan():
    frame = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=31, freq="h").delete(5), "y": 1.0})
    target = TimeSeries.from_dataframe(frame, time_col="t", value_cols="y", fill_missing_dates=True, freq="h")
    return darts_fit_case(target, r"NaN values at 1 time steps \(first at 2024-01-01 05:00")


def darts_freq_finer_than_the_data():
    # weekly rows read with freq="D": Darts fills the six days between two rows with NaN
    frame = pd.DataFrame({"t": pd.date_range("2024-01-07", periods=30, freq="W"), "a": 1.0, "b": 2.0})
    target = TimeSeries.from_dataframe(frame, time_col="t", freq="D")
    return darts_fit_case(
        target,
        r"NaN in every component at 174 of its 204 time steps.*freq \(D\) is probably "
        r"finer than the data's.*freq=None",
    )


def darts_too_short():
    return darts_fit_case(ts(length=ICL + OCL - 1), r"has 11 points, too short.*= 12 points")


def darts_predict_too_short():
    model = darts_model().fit(ts())
    short = ts(length=5)
    # Darts' own check
    return short, lambda: model.predict(OCL, series=short), ValueError, r"too short to extract the model input"


def darts_dataframe_container():
    frame = ts().to_dataframe()
    return darts_fit_case(frame, r"must be a darts TimeSeries.*got a DataFrame", TypeError)


def darts_numpy_container():
    return darts_fit_case(np.ones((30, 2), dtype=np.float32), r"must be a darts TimeSeries.*got a ndarray", TypeError)


def darts_covariates_wrong_type():
    target, past = ts(), ts(1).values()
    model = darts_model()
    return (
        [target, past],
        lambda: model.fit(target, past_covariates=past),
        TypeError,
        r"`past_covariates` must be a darts TimeSeries",
    )


def darts_string_values():
    # The user's whole step, from their rows to model.fit; Darts' TimeSeries constructor refuses the strings
    values = np.array([["a", "b"]] * 30, dtype=object)
    index = pd.date_range("2024-01-01", periods=30, freq="h")
    model = darts_model()
    return (
        values,
        lambda: model.fit(TimeSeries.from_times_and_values(index, values)),
        ValueError,
        r"could not convert string",
    )


def darts_predict_without_covariates():
    targets = [ts(), ts(start="2024-03-01")]
    model = darts_model().fit(targets, past_covariates=[ts(1), ts(1, start="2024-03-01")])
    new = ts(start="2024-05-01")
    # Darts' own check
    return new, lambda: model.predict(OCL, series=new), ValueError, r"trained with past covariates"


def darts_future_covariates_too_short():
    target = ts()
    model = darts_model().fit(target, future_covariates=ts(1, length=40))
    short = ts(1, length=31)
    # Darts' own check
    return (
        short,
        lambda: model.predict(OCL, series=target, future_covariates=short),
        ValueError,
        r"`future_covariates` .* do not extend far enough into the future",
    )


def _darts_saved(tmp_path, cls=mdarts.SMambaModel, name="model.pt"):
    path = str(tmp_path / name)
    darts_model(cls).fit(ts()).save(path)
    return path


def darts_garbage_file(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"not a model" * 64)
    return path, lambda: mdarts.SMambaModel.load(str(path)), ValueError, r"could not read .*garbage.pt.*corrupted"


def darts_truncated_file(tmp_path):
    path = _darts_saved(tmp_path)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    return Path(path), lambda: mdarts.SMambaModel.load(path), ValueError, r"could not read .*model.pt.*truncated"


def darts_other_class_file(tmp_path):
    path = _darts_saved(tmp_path, mdarts.TSM2Model)
    return Path(path), lambda: mdarts.SMambaModel.load(path), TypeError, r"holds a TSM2Model, not a SMambaModel"


def darts_other_checkpoint(tmp_path):
    path, other = _darts_saved(tmp_path), _darts_saved(tmp_path, mdarts.FMambaModel, "other.pt")
    os.replace(other + ".ckpt", path + ".ckpt")
    return (
        Path(path + ".ckpt"),
        lambda: mdarts.SMambaModel.load(path),
        TypeError,
        r"holds a FMamba network.*does not belong",
    )


CASES = {
    "nf-empty-frame": nf_empty,
    "nf-nan-target": nf_nan,
    "nf-inf-target": nf_inf,
    "nf-duplicated-timestamp": nf_duplicated_timestamp,
    "nf-duplicated-timestamp-same-length": nf_duplicated_timestamp_same_length,
    "nf-gap-in-one-series": nf_gap,
    "nf-same-gap-in-every-series": nf_same_gap_in_every_series,
    "nf-freq-disagrees-with-timestamps": nf_freq_disagrees_with_timestamps,
    "nf-freq-disagrees-in-cross-validation": nf_freq_disagrees_in_cross_validation,
    "nf-integer-ds-with-other-step": nf_integer_ds_with_other_step,
    "nf-too-many-cv-windows": nf_too_many_cv_windows,
    "nf-misaligned-start": nf_misaligned,
    "nf-misaligned-same-length": nf_misaligned_same_length,
    "nf-too-short": nf_too_short,
    "nf-y-strings": nf_y_strings,
    "nf-ds-strings": nf_ds_strings,
    "nf-numpy-container": nf_numpy_container,
    "nf-missing-futr-column": nf_missing_futr_column,
    "nf-missing-hist-column": nf_missing_hist_column,
    "nf-futr-df-too-short": nf_futr_df_too_short,
    "nf-predict-inf": nf_predict_inf,
    "nf-predict-too-short": nf_predict_too_short,
    "nf-truncated-checkpoint": nf_truncated_checkpoint,
    "nf-garbage-checkpoint": nf_garbage_checkpoint,
    "nf-foreign-checkpoint": nf_foreign_checkpoint,
    "darts-empty-series": darts_empty_series,
    "darts-empty-list": darts_empty_list,
    "darts-nan-target": darts_nan,
    "darts-inf-target": darts_inf,
    "darts-inf-covariates": darts_inf_covariates,
    "darts-predict-inf": darts_predict_inf,
    "darts-predict-inf-future-covariates": darts_predict_inf_future_covariates,
    "darts-duplicated-timestamps": darts_duplicated_timestamps,
    "darts-gap-filled-with-nan": darts_gap_filled_with_nan,
    "darts-freq-finer-than-the-data": darts_freq_finer_than_the_data,
    "darts-too-short": darts_too_short,
    "darts-predict-too-short": darts_predict_too_short,
    "darts-dataframe-container": darts_dataframe_container,
    "darts-numpy-container": darts_numpy_container,
    "darts-covariates-wrong-type": darts_covariates_wrong_type,
    "darts-string-values": darts_string_values,
    "darts-predict-without-covariates": darts_predict_without_covariates,
    "darts-future-covariates-too-short": darts_future_covariates_too_short,
    "darts-garbage-file": darts_garbage_file,
    "darts-truncated-file": darts_truncated_file,
    "darts-other-class-file": darts_other_class_file,
    "darts-other-checkpoint": darts_other_checkpoint,
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input_is_refused_clearly_before_training(case, forward_calls, tmp_path):
    setup = CASES[case]
    data, call, error, match = setup(tmp_path) if "tmp_path" in setup.__code__.co_varnames else setup()
    before = snapshot(data)
    forward_calls.clear()  # forward calls of a fit done while setting up are not the case's
    with pytest.raises(error, match=match) as raised:
        call()
    if error is Exception:  # a host check that raises a bare Exception: make sure it is that one
        assert type(raised.value) is Exception
    assert forward_calls == [], "the network ran before the error"
    assert_unchanged(data, before)


# ----------------------------------------------------------------------------------------------------
# absurd hyperparameters: refused at construction, so nothing can train


NF_HYPERPARAMETERS = [
    (dict(h=0), ValueError, r"h must be >= 1, got 0"),
    (dict(input_size=-3), ValueError, r"input_size must be >= 1, got -3.*input_size=96"),  # NF alone: 3*h, a warning
    (dict(d_model=0), ValueError, r"d_model must be >= 1, got 0"),
    (dict(dropout=2), ValueError, r"dropout must be in \[0, 1\), got 2.*dropout=0.1"),
    (dict(e_layers=1.5), TypeError, r"e_layers must be an integer, got 1.5.*e_layers=1"),
    (dict(h="4"), TypeError, r"h must be an integer, got '4'"),
    (dict(max_steps=0), ValueError, r"max_steps must be >= 1, got 0.*max_steps=1000"),  # NF alone: trains nothing
    (dict(learning_rate=-1.0), ValueError, r"learning_rate must be a positive finite float.*learning_rate=1e-3"),
    (dict(batch_size=0), ValueError, r"batch_size must be >= 1, got 0"),
    (dict(windows_batch_size=0), ValueError, r"windows_batch_size must be >= 1, got 0"),
    (dict(inference_windows_batch_size=0), ValueError, r"inference_windows_batch_size must be >= 1.*or -1"),
    (dict(d_state=-1), ValueError, r"d_state must be >= 1, got -1"),
]


@pytest.mark.parametrize("kwargs, error, match", NF_HYPERPARAMETERS, ids=[str(k) for k, *_ in NF_HYPERPARAMETERS])
def test_nf_absurd_hyperparameters_fail_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        nf_model(**kwargs)


DARTS_HYPERPARAMETERS = [
    (dict(output_chunk_length=0), r"`output_chunk_length` must be a positive integer, got 0"),
    (dict(input_chunk_length=-3), r"`input_chunk_length` must be a positive integer, got -3"),
    (dict(d_model=0), r"d_model must be >= 1, got 0"),
    (dict(dropout=2), r"dropout must be in \[0, 1\), got 2"),
    (dict(e_layers=1.5), r"e_layers must be an integer, got 1.5"),
    (dict(n_epochs=0), r"`n_epochs` must be a positive integer, got 0.*n_epochs=100"),  # Darts alone: no training
    (dict(n_epochs=-1), r"`n_epochs` must be a positive integer, got -1"),  # Darts alone: trains forever
    (dict(batch_size=0), r"`batch_size` must be a positive integer, got 0"),
]


@pytest.mark.parametrize("kwargs, match", DARTS_HYPERPARAMETERS, ids=[str(k) for k, _ in DARTS_HYPERPARAMETERS])
def test_darts_absurd_hyperparameters_fail_at_construction(kwargs, match):
    arch = dict(d_model=8, d_ff=8, e_layers=1, d_state=2, n_epochs=1, pl_trainer_kwargs=PL)
    arguments = {"input_chunk_length": ICL, "output_chunk_length": OCL, **arch, **kwargs}
    with pytest.raises(ValueError, match=match):
        mdarts.SMambaModel(**arguments)


# ----------------------------------------------------------------------------------------------------
# inputs that must work


@pytest.mark.parametrize("cls", [mnf.SMamba, mnf.AttentionMamba])
def test_nf_one_series_trains_and_forecasts(cls):
    """A multivariate model on a panel of one series: a valid (if degenerate) panel, finite forecasts."""
    df = nf_panel(n_series=1)
    before = df.copy(deep=True)
    nf = nf_fitted(nf_model(cls), df)
    forecast = nf.predict()
    assert len(forecast) == H and np.isfinite(forecast[cls.__name__]).all()
    assert abs(forecast[cls.__name__].mean() - 10.0) < 5.0  # the level of the series, not the zero padding
    pd.testing.assert_frame_equal(df, before)


def test_darts_one_component_and_misaligned_series_work():
    """Darts is a global model over a list: series with one component, or other start and end, are valid."""
    targets = [ts(1), ts(1, length=40, start="2024-02-01", seed=1)]
    before = snapshot(targets)
    model = darts_model().fit(targets)
    forecasts = model.predict(OCL, series=targets)
    assert [f.start_time() for f in forecasts] == [t.end_time() + pd.Timedelta(hours=1) for t in targets]
    assert all(np.isfinite(f.values()).all() and f.shape == (OCL, 1, 1) for f in forecasts)
    assert_unchanged(targets, before)


# ----------------------------------------------------------------------------------------------------
# determinism: same seed, same data -> bit-identical forecasts on the CPU


@pytest.mark.parametrize("cls", [mnf.SMamba, mnf.TSM2])
def test_nf_same_seed_gives_identical_forecasts(cls):
    df = nf_panel(n_series=3, length=40)
    forecasts = []
    for seed in (3, 3, 4):
        nf = NeuralForecast(models=[nf_model(cls, random_seed=seed, max_steps=3)], freq="h")
        nf.fit(df, val_size=H)
        forecasts.append(nf.predict()[cls.__name__].to_numpy())
    np.testing.assert_array_equal(forecasts[0], forecasts[1])
    assert not np.array_equal(forecasts[0], forecasts[2])  # the seed matters, so the test can fail


@pytest.mark.parametrize("cls", [mdarts.SMambaModel, mdarts.AttentionMambaModel])
def test_darts_same_seed_gives_identical_forecasts(cls):
    target, future = ts(2, length=40), ts(1, length=40 + OCL, seed=2)
    forecasts = []
    for seed in (3, 3, 4):
        model = darts_model(cls, random_state=seed, n_epochs=2)
        model.fit(target, future_covariates=future)
        forecasts.append(model.predict(OCL).values())
    np.testing.assert_array_equal(forecasts[0], forecasts[1])
    assert not np.array_equal(forecasts[0], forecasts[2])
