"""The NeuralForecast adapter: what a NeuralForecast user relies on.

Signature and docs as NeuralForecast's own multivariate models; n_series inferred at fit; the output layout
every loss reads; exogenous inputs; save/load; Auto search; clear errors before training; the caller's data
left untouched; NeuralForecast's own `check_model`; the examples.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("neuralforecast")

from neuralforecast import NeuralForecast
from neuralforecast.losses.pytorch import MAE, DistributionLoss, HuberMQLoss, IQLoss, MQLoss
from neuralforecast.models import iTransformer
from neuralforecast.utils import PredictionIntervals

import mamba_forecast.neuralforecast as mnf
from conftest import MODEL_NAMES, QUIET, count_quantile_crossings, small_arguments
from mamba_forecast.neuralforecast import (
    TSM2,
    AttentionMamba,
    AutoFMamba,
    AutoSMamba,
    FMamba,
    SMamba,
)

ROOT = Path(__file__).resolve().parents[1]
MODELS = [getattr(mnf, name) for name in MODEL_NAMES]
AUTOS = [getattr(mnf, f"Auto{name}") for name in MODEL_NAMES]
H, L = 12, 24


def tiny(cls, **kwargs):
    """A small, fast model: a few thousand parameters, a handful of steps."""
    arch = small_arguments(cls.__name__)
    return cls(**{"h": H, "input_size": L, "max_steps": 3, "val_check_steps": 1, **arch, **QUIET, **kwargs})


def panel(n_series=3, length=120, levels=None, freq="h", seed=0, noise=0.3, exog=False):
    """Aligned series; level ``levels[i]`` plus a daily cycle and noise. With ``exog``: future column ``f`` and
    historical column ``x`` (same rows) and a static frame with ``s``."""
    rng = np.random.default_rng(seed)
    levels = levels or [10.0 * (i + 1) for i in range(n_series)]
    ds = pd.date_range("2024-01-01", periods=length, freq=freq)
    cycle = np.sin(2 * np.pi * np.arange(length) / 24)
    frames = []
    for i, level in enumerate(levels):
        frame = pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": level + cycle + noise * rng.standard_normal(length)})
        if exog:
            frame["f"] = cycle
            frame["x"] = rng.standard_normal(length)
        frames.append(frame)
    df = pd.concat(frames, ignore_index=True)
    if not exog:
        return df
    static = pd.DataFrame(
        {"unique_id": [f"s{i}" for i in range(len(levels))], "s": np.arange(len(levels), dtype=float)}
    )
    return df, static


def future_frame(nf, df, h=H):
    """The future ``f`` values for ``nf.predict(futr_df=...)`` (the daily cycle continued)."""
    futr = nf.make_future_dataframe(df)
    step = (futr["ds"] - df["ds"].min()) // pd.Timedelta(hours=1)
    return futr.assign(f=np.sin(2 * np.pi * step.to_numpy() / 24))


# ----------------------------------------------------------------------------------------------------
# signature, flags, docs
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", MODELS)
def test_signature_follows_itransformer(cls):
    """Same arguments, order and defaults as NeuralForecast's iTransformer, its architecture in the middle;
    only input_size (96) and n_series (optional) get defaults iTransformer lacks, scaler_type is "standard"
    where iTransformer's is "identity" (benchmarks/defaults_vs_ets.py: with "identity" the loss is on the raw
    scale, so the largest series dominates training), and the learning rate is 1e-4 for SMamba, AttentionMamba
    and FMamba (benchmarks/defaults_nf.py)."""
    ours = inspect.signature(cls).parameters
    theirs = inspect.signature(iTransformer).parameters
    names, ref = list(ours), list(theirs)
    lead = ref[: ref.index("exclude_insample_y") + 1]
    tail = ref[ref.index("loss") :]
    assert names[: len(lead)] == lead
    assert names[-len(tail) :] == tail
    for name in lead[2:] + tail:
        if name == "loss":
            assert type(ours[name].default) is type(theirs[name].default) is MAE
        elif name not in ("n_series", "trainer_kwargs", "scaler_type", "learning_rate"):
            assert ours[name].default == theirs[name].default, name
    assert ours["input_size"].default == 96 and ours["n_series"].default is None
    # the learning rate is the spec's: NeuralForecast's 1e-3 unless benchmarks/defaults_nf.py measured better
    assert ours["learning_rate"].default == cls.spec.learning_rate == cls(h=4).hparams["learning_rate"]
    measured = {"SMamba": 1e-4, "AttentionMamba": 1e-4, "FMamba": 1e-4, "TSM2": 1e-4}
    assert cls.spec.learning_rate == measured.get(cls.__name__, theirs["learning_rate"].default)
    assert ours["scaler_type"].default == "standard" and theirs["scaler_type"].default == "identity"
    assert cls(h=4).hparams["scaler_type"] == "standard"
    # the architecture arguments are exactly the core's, with the core's defaults
    arch = names[len(lead) : -len(tail)]
    assert sorted(arch) == sorted(cls.architecture_names())
    assert all(ours[a].default == cls.spec.defaults()[a] for a in arch)
    if cls.__name__ in ("SMamba", "AttentionMamba", "FMamba", "TSM2"):  # their cores list every argument
        core_params = inspect.signature(cls.core_class).parameters
        assert all(ours[a].default == core_params[a].default for a in arch)


@pytest.mark.parametrize("cls", MODELS + AUTOS)
def test_docstring_documents_every_argument(cls):
    doc = cls.__doc__
    assert not re.search(r"\{\w+_args\}|\{scan_backend\}", doc), "an unfilled placeholder"
    args = doc.split("Args:")[1]
    documented = set(re.findall(r"^\s{8}\**(\w+) \(", args, flags=re.M))
    params = {p for p in inspect.signature(cls).parameters}
    assert params <= documented, params - documented
    if cls in MODELS:
        assert "References:" in doc and "](https://" in doc
        assert "devices=1" in doc  # device choice is documented


@pytest.mark.parametrize("cls", MODELS)
def test_class_flags_and_default_construction(cls):
    model = cls(h=96)  # as written in the README
    assert cls.MULTIVARIATE and not cls.RECURRENT
    assert cls.EXOGENOUS_FUTR and cls.EXOGENOUS_HIST and cls.EXOGENOUS_STAT
    assert model.h == 96 and model.input_size == 96 and model.n_series is None


# ----------------------------------------------------------------------------------------------------
# n_series
# ----------------------------------------------------------------------------------------------------


def test_n_series_inferred_and_batches_raised():
    df = panel(n_series=5)
    model = tiny(SMamba, batch_size=2, valid_batch_size=3)
    nf = NeuralForecast(models=[model], freq="h")
    nf.fit(df, val_size=H)
    fitted = nf.models[0]
    assert fitted.n_series == 5 and fitted.hparams["n_series"] == 5
    assert fitted.batch_size == 5 and fitted.valid_batch_size == 5  # all series in every batch
    forecast = nf.predict()
    assert len(forecast) == 5 * H and forecast["SMamba"].notna().all()


@pytest.mark.parametrize("cls", MODELS)
def test_lazy_build_matches_explicit_n_series(cls):
    """Inferring n_series gives the very model that passing it gives: same weights, same forecasts."""
    df = panel()
    forecasts = []
    for n_series in (None, 3):
        nf = NeuralForecast(models=[tiny(cls, n_series=n_series)], freq="h")
        nf.fit(df)
        forecasts.append(nf.predict()[cls.__name__].to_numpy())
    np.testing.assert_allclose(forecasts[0], forecasts[1], rtol=1e-5, atol=1e-5)


def test_other_number_of_series_is_refused():
    with pytest.raises(ValueError, match="built for 4 series but the data has 3"):
        NeuralForecast(models=[tiny(SMamba, n_series=4)], freq="h").fit(panel(n_series=3))
    nf = NeuralForecast(models=[tiny(AttentionMamba)], freq="h")
    nf.fit(panel(n_series=3))
    with pytest.raises(ValueError, match="built for 3 series but the data has 2"):
        nf.predict(df=panel(n_series=2))
    # a fresh model (use_init_models) learns the new panel
    nf.fit(panel(n_series=2), use_init_models=True)
    assert nf.models[0].n_series == 2


# ----------------------------------------------------------------------------------------------------
# output layout for every kind of loss
# ----------------------------------------------------------------------------------------------------


class _Labelled(torch.nn.Module):
    """Stands in for a core: output [B, h, N, m] holding 100 * series + output index."""

    def __init__(self, h, m):
        super().__init__()
        self.h, self.m = h, m
        self.unused = torch.nn.Parameter(
            torch.zeros(())
        )  # something for an optimizer to hold; never changes the output

    def forward(self, x, hist_exog=None, futr_exog=None, stat_exog=None):
        batch, _, n = x.shape
        label = 100 * torch.arange(n).view(1, 1, n, 1) + torch.arange(self.m).view(1, 1, 1, self.m)
        return label.float().expand(batch, self.h, n, self.m) + 0 * self.unused


@pytest.mark.parametrize(
    "loss",
    [MQLoss(level=[80, 90]), HuberMQLoss(level=[80]), DistributionLoss("Normal"), DistributionLoss("StudentT")],
    ids=lambda loss: type(loss).__name__ + str(loss.outputsize_multiplier),
)
def test_output_layout_is_what_the_loss_reads(loss):
    n, m = 4, loss.outputsize_multiplier
    model = SMamba(h=3, input_size=8, n_series=n, loss=loss, **QUIET)
    assert model.core.n_outputs == m  # the head is sized by the loss
    model.core = _Labelled(3, m)
    out = model({"insample_y": torch.zeros(2, 8, n)})
    assert out.shape == (2, 3, n * m)
    mapped = loss.domain_map(out)
    if loss.is_distribution_output:  # a tuple of m parameter tensors [B, h, N]
        for k, param in enumerate(mapped):
            assert torch.equal(param[0, 0], torch.tensor([100.0 * i + k for i in range(n)]))
    else:  # [B, h, N, m]
        assert torch.equal(mapped[0, 0], torch.tensor([[100.0 * i + k for k in range(m)] for i in range(n)]))


@pytest.mark.parametrize("cls", MODELS)
def test_mqloss_per_series_levels_with_identity_scaler(cls):
    """The check that NeuralForecast's own iTransformer and TSMixer fail (their MQLoss medians mix series)."""
    df = panel(length=160, levels=[10.0, 20.0, 30.0])
    model = tiny(cls, loss=MQLoss(level=[80]), scaler_type="identity", max_steps=60, learning_rate=5e-3)
    nf = NeuralForecast(models=[model], freq="h")
    nf.fit(df)
    forecast = nf.predict()
    name = cls.__name__
    assert {f"{name}-median", f"{name}-lo-80", f"{name}-hi-80"} <= set(forecast.columns)
    medians = forecast.groupby("unique_id")[f"{name}-median"].mean().to_numpy()
    np.testing.assert_allclose(medians, [10.0, 20.0, 30.0], atol=1.0)
    assert count_quantile_crossings(forecast, name) == 0


@pytest.mark.parametrize(
    "loss", [MQLoss(level=[80, 90]), HuberMQLoss(level=[50, 80])], ids=lambda loss: type(loss).__name__
)
def test_multi_quantile_outputs_never_cross(loss):
    """A network whose quantile outputs cross (here: the median output below every other one) still gives
    ordered quantiles: the outputs are sorted into quantile order at prediction, in predict and in
    cross_validation."""
    df = panel(length=80)
    model = tiny(SMamba, n_series=3, loss=loss, max_steps=1, scaler_type="identity")  # outputs = forecasts
    model.core = _Labelled(H, loss.outputsize_multiplier)  # output k of series i = 100 i + k: the median is lowest
    nf = NeuralForecast(models=[model], freq="h")
    nf.fit(df)
    forecast = nf.predict()
    assert count_quantile_crossings(forecast, "SMamba") == 0
    # the rearranged outputs are the same values, handed out lowest quantile first
    first = forecast[forecast["unique_id"] == "s1"].iloc[0]
    names = ["SMamba" + n for n in loss.output_names]
    order = np.argsort(loss.quantiles.numpy())
    np.testing.assert_allclose([first[names[j]] for j in order], 100 + np.arange(len(names)))
    cv = nf.cross_validation(df, n_windows=2, step_size=H, refit=False)
    assert count_quantile_crossings(cv, "SMamba") == 0


@pytest.mark.parametrize("distribution", ["Normal", "StudentT"])
def test_distribution_losses(distribution):
    df = panel(length=160, levels=[10.0, 20.0, 30.0])
    loss = DistributionLoss(distribution, level=[80])
    nf = NeuralForecast(models=[tiny(SMamba, loss=loss, max_steps=60, learning_rate=5e-3)], freq="h")
    nf.fit(df)
    forecast = nf.predict()
    assert {"SMamba", "SMamba-median", "SMamba-lo-80", "SMamba-hi-80"} <= set(forecast.columns)
    means = forecast.groupby("unique_id")["SMamba"].mean().to_numpy()
    np.testing.assert_allclose(means, [10.0, 20.0, 30.0], atol=1.5)
    assert (forecast["SMamba-lo-80"] < forecast["SMamba-hi-80"]).all()
    assert count_quantile_crossings(forecast, "SMamba") == 0


def test_iqloss_predicts_requested_quantiles():
    nf = NeuralForecast(models=[tiny(SMamba, loss=IQLoss(), valid_loss=IQLoss())], freq="h")
    nf.fit(panel())
    forecast = nf.predict(quantiles=[0.1, 0.5, 0.9])
    assert {"SMamba_ql0.1", "SMamba_ql0.5", "SMamba_ql0.9"} <= set(forecast.columns)
    assert count_quantile_crossings(forecast, "SMamba") == 0


@pytest.mark.parametrize("cls", MODELS)
def test_conformal_prediction_intervals(cls):
    """NeuralForecast's conformal intervals (point loss + PredictionIntervals at fit, level at predict) work with
    every model: ordered bounds around the point forecast, in predict and in cross_validation."""
    df = panel(length=100)
    nf = NeuralForecast(models=[tiny(cls, max_steps=5)], freq="h")
    nf.fit(df, prediction_intervals=PredictionIntervals(n_windows=2))
    name = cls.__name__
    forecast = nf.predict(level=[80])
    assert {name, f"{name}-lo-80", f"{name}-hi-80"} <= set(forecast.columns) and len(forecast) == 3 * H
    assert np.isfinite(forecast.drop(columns=["unique_id", "ds"]).to_numpy(dtype=float)).all()
    assert (forecast[f"{name}-lo-80"] <= forecast[name]).all() and (forecast[name] <= forecast[f"{name}-hi-80"]).all()
    assert (forecast[f"{name}-hi-80"] > forecast[f"{name}-lo-80"]).any()
    assert count_quantile_crossings(forecast, name) == 0


# ----------------------------------------------------------------------------------------------------
# exogenous inputs
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", MODELS)
def test_all_exogenous_kinds_fit_and_predict(cls):
    df, static = panel(exog=True)
    model = tiny(cls, futr_exog_list=["f"], hist_exog_list=["x"], stat_exog_list=["s"])
    nf = NeuralForecast(models=[model], freq="h")
    nf.fit(df, static_df=static, val_size=H)
    core = nf.models[0].core
    # one token per exogenous column and series
    assert (core.futr_exog_size, core.hist_exog_size, core.stat_exog_size) == (3, 3, 1)
    forecast = nf.predict(futr_df=future_frame(nf, df))
    assert len(forecast) == 3 * H and np.isfinite(forecast[cls.__name__]).all()
    with pytest.raises(ValueError, match="future exogenous"):
        nf.predict()  # NeuralForecast's own check: the future values are needed


@pytest.mark.parametrize("kind", ["futr_exog", "hist_exog", "stat_exog"])
def test_each_exogenous_input_reaches_the_forecast(kind):
    n, batch = 3, 2
    model = SMamba(
        h=H,
        input_size=L,
        n_series=n,
        futr_exog_list=["f", "g"],
        hist_exog_list=["x"],
        stat_exog_list=["s"],
        d_model=16,
        d_ff=16,
        e_layers=1,
        **QUIET,
    ).eval()
    g = torch.Generator().manual_seed(0)
    batch_inputs = {
        "insample_y": torch.randn(batch, L, n, generator=g),
        "futr_exog": torch.randn(batch, 2, L + H, n, generator=g),  # NeuralForecast's multivariate shapes
        "hist_exog": torch.randn(batch, 1, L, n, generator=g),
        "stat_exog": torch.randn(n, 1, generator=g),
    }
    base = model(batch_inputs)
    changed = dict(batch_inputs)
    if kind == "futr_exog":  # only the future part of one column of one series
        changed[kind] = batch_inputs[kind].clone()
        changed[kind][:, 1, L:, 2] += 1.0
    else:
        changed[kind] = batch_inputs[kind] + 1.0
    assert not torch.allclose(model(changed), base)


def test_exclude_insample_y_ignores_the_history():
    df, _ = panel(exog=True)
    # scaler_type="identity": the default "standard" scaler would still scale each window by its look-back
    model = tiny(SMamba, futr_exog_list=["f"], exclude_insample_y=True, scaler_type="identity")
    nf = NeuralForecast(models=[model], freq="h")
    nf.fit(df)
    assert nf.models[0].core.use_norm is False  # nothing to normalise by
    futr = future_frame(nf, df)
    other = df.assign(y=df["y"] * -3.0 + 100.0)
    a = nf.predict(df=df, futr_df=futr)["SMamba"].to_numpy()
    b = nf.predict(df=other, futr_df=futr)["SMamba"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-6)


# ----------------------------------------------------------------------------------------------------
# save / load
# ----------------------------------------------------------------------------------------------------


def test_neuralforecast_save_load_gives_identical_forecasts(tmp_path):
    df, static = panel(exog=True)
    models = [
        tiny(SMamba, futr_exog_list=["f"], stat_exog_list=["s"], loss=MQLoss(level=[80])),
        tiny(AttentionMamba, hist_exog_list=["x"], alias="AM"),  # built lazily at fit
        tiny(TSM2, loss=DistributionLoss("Normal", level=[80])),
    ]
    nf = NeuralForecast(models=models, freq="h")
    nf.fit(df, static_df=static)
    futr = future_frame(nf, df)
    before = nf.predict(futr_df=futr)
    assert count_quantile_crossings(before, "SMamba") == count_quantile_crossings(before, "TSM2") == 0
    nf.save(str(tmp_path / "nf"), overwrite=True)
    loaded = NeuralForecast.load(str(tmp_path / "nf"))
    assert sorted(type(m).__name__ for m in loaded.models) == ["AttentionMamba", "SMamba", "TSM2"]
    after = loaded.predict(futr_df=futr)
    point = [c for c in before.columns if c not in ("unique_id", "ds") and not c.startswith("TSM2")]
    pd.testing.assert_frame_equal(before[point], after[point], rtol=1e-6)
    # DistributionLoss forecasts are sampled: same seed, same samples
    np.testing.assert_allclose(before["TSM2"], after["TSM2"], rtol=1e-5)


@pytest.mark.parametrize("cls", MODELS)
def test_model_save_load_round_trip(cls, tmp_path):
    nf = NeuralForecast(models=[tiny(cls)], freq="h")
    nf.fit(panel())
    model = nf.models[0].eval()
    model.save(str(tmp_path / "model.safetensors"))
    loaded = cls.load(str(tmp_path / "model.safetensors")).eval()
    assert loaded.n_series == 3 and loaded.hparams["n_series"] == 3
    batch = {"insample_y": torch.randn(4, L, 3)}
    torch.testing.assert_close(loaded(batch), model(batch))


@pytest.mark.parametrize(
    "model_name, auto_name, owner",
    [
        ("iTransformer", None, "iTransformer"),  # the model's own key
        ("MyMamba", "AutoPatchTST", "PatchTST"),  # an Auto key: NeuralForecast maps autopatchtst to PatchTST
    ],
)
def test_register_model_refuses_a_name_neuralforecast_owns(model_name, auto_name, owner):
    """``NeuralForecast.load`` picks a saved model's class by its lower-cased name: a class registered under
    one of NeuralForecast's own names would load that model's checkpoints. Refused, naming the owner, and
    nothing is registered."""
    import neuralforecast.models
    from neuralforecast.core import MODEL_FILENAME_DICT

    model = type(model_name, (SMamba,), {})
    auto = type(auto_name, (AutoSMamba,), {"model_class": model}) if auto_name else None
    before = dict(MODEL_FILENAME_DICT)
    owner_cls = getattr(neuralforecast.models, owner)
    with pytest.raises(
        ValueError,
        match=rf"{auto_name or model_name} cannot be registered .*"
        rf"'{(auto_name or model_name).lower()}', which belongs to "
        rf"{owner_cls.__module__}\.{owner}.*another name",
    ):
        mnf.register_model(model, auto)
    assert MODEL_FILENAME_DICT == before


def test_register_model_again_replaces_the_entry():
    """Registering a class again, or its re-created self (a reload of its module), is no clash."""
    from neuralforecast.core import MODEL_FILENAME_DICT

    mnf.register_model(SMamba, AutoSMamba)
    reloaded = type("SMamba", (SMamba,), {"__module__": SMamba.__module__, "__qualname__": SMamba.__qualname__})
    try:
        mnf.register_model(reloaded, AutoSMamba)
        assert MODEL_FILENAME_DICT["smamba"] is MODEL_FILENAME_DICT["autosmamba"] is reloaded
    finally:
        mnf.register_model(SMamba, AutoSMamba)
    assert MODEL_FILENAME_DICT["smamba"] is MODEL_FILENAME_DICT["autosmamba"] is SMamba


# ----------------------------------------------------------------------------------------------------
# NeuralForecast workflows
# ----------------------------------------------------------------------------------------------------


def test_cross_validation_with_and_without_refit():
    df = panel(length=140)
    nf = NeuralForecast(models=[tiny(FMamba)], freq="h")
    cv = nf.cross_validation(df, n_windows=2, step_size=H)
    assert len(cv) == 3 * 2 * H and cv["cutoff"].nunique() == 2 and cv["FMamba"].notna().all()
    cv_refit = NeuralForecast(models=[tiny(FMamba)], freq="h").cross_validation(
        df, n_windows=2, step_size=H, refit=True
    )
    assert cv_refit[["unique_id", "ds", "cutoff"]].equals(cv[["unique_id", "ds", "cutoff"]])


def test_users_data_is_not_modified():
    df, static = panel(exog=True)
    df = df.sample(frac=1.0, random_state=0)  # unsorted, as users often pass it
    originals = df.copy(deep=True), static.copy(deep=True)
    model = tiny(SMamba, futr_exog_list=["f"], hist_exog_list=["x"], stat_exog_list=["s"])
    nf = NeuralForecast(models=[model], freq="h")
    nf.fit(df, static_df=static, val_size=H)
    futr = future_frame(nf, df)
    futr_original = futr.copy(deep=True)
    nf.predict(futr_df=futr)
    nf.cross_validation(df, static_df=static, n_windows=1)
    pd.testing.assert_frame_equal(df, originals[0])
    pd.testing.assert_frame_equal(static, originals[1])
    pd.testing.assert_frame_equal(futr, futr_original)


# ----------------------------------------------------------------------------------------------------
# clear errors before training
# ----------------------------------------------------------------------------------------------------


def _fit_error(df, match, model=None, **fit_kwargs):
    """fit refuses ``df`` with a ValueError whose message matches ``match``, before any training step."""
    model = model or tiny(SMamba)
    nf = NeuralForecast(models=[model], freq="h")
    with pytest.raises(ValueError, match=match):
        nf.fit(df, **fit_kwargs)
    assert model.train_trajectories == []  # nothing was trained


def test_series_of_different_lengths_are_refused():
    df = panel()
    ragged = df.drop(df.index[(df["unique_id"] == "s1")][:5])
    _fit_error(ragged, r"'s1' has 115 rows")


def test_misaligned_timestamps_are_refused():
    df = panel()
    shifted = df.assign(ds=df["ds"] + pd.Timedelta(hours=1) * (df["unique_id"] == "s2"))
    _fit_error(shifted, r"same timestamps.*'s2'")


def test_panel_checks_find_the_timestamps_without_walking_the_heap(monkeypatch):
    """The timestamps come from the NeuralForecast object calling the model's fit, not from a scan of every live
    object (``gc.get_referrers`` took 50-80 ms a fit): with the heap scan unavailable, the checks still run."""
    import gc

    def heap_walk(*_):
        raise AssertionError("the panel lookup walked the heap")

    monkeypatch.setattr(gc, "get_referrers", heap_walk)
    df = panel()
    _fit_error(df.assign(ds=df["ds"] + pd.Timedelta(hours=1) * (df["unique_id"] == "s2")), r"same timestamps.*'s2'")
    _fit_error(df[df["ds"] != df["ds"].iloc[50]], r"not consecutive freq='h' steps.*missing")


def test_direct_fit_checks_the_timestamps_it_is_given():
    """``model.fit(TimeSeriesDataset)`` outside NeuralForecast: the dataset holds no timestamps, so the caller passes
    the ones ``TimeSeriesDataset.from_df`` returns, and the panel checks run as under ``NeuralForecast.fit``."""
    from neuralforecast.tsdataset import TimeSeriesDataset

    df = panel()
    shifted = df.assign(ds=df["ds"] + pd.Timedelta(hours=1) * (df["unique_id"] == "s2"))
    dataset, uids, _, ds = TimeSeriesDataset.from_df(shifted)
    model = tiny(SMamba)
    with pytest.raises(ValueError, match=r"same timestamps, but series 's2' runs from"):
        model.fit(dataset, ds=ds, uids=uids, freq="h")
    gappy = df[df["ds"] != df["ds"].iloc[50]]  # the same hour missing from every series
    dataset, uids, _, ds = TimeSeriesDataset.from_df(gappy)
    with pytest.raises(ValueError, match=r"not consecutive freq='h' steps.*missing"):
        model.fit(dataset, ds=ds, uids=uids, freq="h")
    assert model.train_trajectories == []  # nothing was trained


def test_direct_fit_without_timestamps_says_it_could_not_check_them():
    """Without ``ds`` a direct fit cannot see misaligned series (they look like aligned ones): it says so."""
    from neuralforecast.tsdataset import TimeSeriesDataset

    df = panel(length=60)
    shifted = df.assign(ds=df["ds"] + pd.Timedelta(hours=1) * (df["unique_id"] == "s2"))
    dataset, *_ = TimeSeriesDataset.from_df(shifted)
    with pytest.warns(UserWarning, match=r"could not check that all series share the same consecutive timestamps.*ds="):
        tiny(SMamba, max_steps=1).fit(dataset)


def test_auto_trials_get_the_timestamps_even_in_another_process(monkeypatch):
    """An Auto search fits its trials' models outside NeuralForecast (in Ray workers, on an unpickled copy of the
    dataset): the Auto hands them the timestamps with the dataset, so each trial checks the panel as
    ``NeuralForecast.fit`` does."""
    import pickle

    from mamba_forecast.neuralforecast._compat import BaseAuto

    df = panel(length=60)
    shifted = df.assign(ds=df["ds"] + pd.Timedelta(hours=1) * (df["unique_id"] == "s2"))
    handed = []
    monkeypatch.setattr(BaseAuto, "fit", lambda self, dataset, **kwargs: handed.append(dataset) or self)
    NeuralForecast(models=[AutoSMamba(h=H, backend="optuna", num_samples=1)], freq="h").fit(shifted)
    in_a_worker = pickle.loads(pickle.dumps(handed[0]))
    with pytest.raises(ValueError, match=r"same timestamps, but series 's2' runs from"):
        tiny(SMamba).fit(in_a_worker, val_size=0, test_size=0)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_targets_are_refused(bad):
    df = panel()
    df.loc[7, "y"] = bad
    _fit_error(df, r"missing values" if np.isnan(bad) else r"non-finite")  # NaN: NeuralForecast's own check


def test_too_short_series_are_refused():
    _fit_error(panel(length=L + H - 1), r"needs at least 36 time steps")
    _fit_error(panel(length=L + H + 5), r"needs at least 36.*val_size=12", val_size=H)


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (AttentionMamba, dict(d_model=30), "multiple of 4"),
        (SMamba, dict(d_conv=5), "d_conv must be in 2..4"),
        (FMamba, dict(d_conv=1), "d_conv must be in 2..4"),
        (TSM2, dict(input_size=12, patch_len=16), "patch_len must be <= input_size"),
        (FMamba, dict(kernel="softmax"), "kernel must be one of"),
        (SMamba, dict(n_series=0), "n_series must be >= 1"),
    ],
)
def test_invalid_hyperparameters_fail_at_construction(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(h=H, **kwargs)


def test_misspelt_argument_fails_at_construction():
    with pytest.raises(TypeError, match="d_modle"):
        SMamba(h=H, d_modle=64)


# ----------------------------------------------------------------------------------------------------
# Auto
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("auto", AUTOS)
def test_default_search_spaces(auto):
    from neuralforecast.common._base_auto import MockTrial
    from ray.tune.search.variant_generator import generate_variants

    ray_space = auto.get_default_config(h=H, backend="ray")
    assert "n_series" not in ray_space and "h" not in ray_space
    for _, config in generate_variants(ray_space):
        model = auto.model_class(h=H, **config, **QUIET)  # every sample builds a valid model
        if "d_ff" in config:
            assert config["d_ff"] == config["d_model"]
        assert model.input_size % H == 0
    optuna_space = auto.get_default_config(h=H, backend="optuna")
    assert callable(optuna_space) and "n_series" not in optuna_space(MockTrial())
    assert auto.get_default_config(h=H, backend="ray", n_series=7)["n_series"] == 7


def test_auto_keeps_n_series_with_a_user_optuna_config():
    from neuralforecast.common._base_auto import MockTrial

    from mamba_forecast.neuralforecast import AutoSMamba

    def space(trial):
        return {"learning_rate": 1e-3, "max_steps": 2}

    auto = AutoSMamba(h=H, n_series=3, config=space, backend="optuna", num_samples=1)
    config = auto.config(MockTrial())  # NeuralForecast's wrapper adds h and the losses
    assert config["n_series"] == 3 and config["learning_rate"] == 1e-3 and config["h"] == H
    assert AutoSMamba(h=H, n_series=3, config={"max_steps": 2}, backend="ray", num_samples=1).config["n_series"] == 3


def _small_space(auto, backend):
    space = auto.get_default_config(h=H, backend=backend)
    fixed = dict(max_steps=2, val_check_steps=1, input_size=L, d_model=16, e_layers=1, **QUIET)
    if backend == "ray":
        return {**space, **fixed}
    return lambda trial: {**space(trial), **fixed, "d_ff": 16}


def test_auto_optuna_search(tmp_path):
    pytest.importorskip("optuna")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    df = panel()
    auto = AutoFMamba(h=H, backend="optuna", num_samples=2, config=_small_space(AutoFMamba, "optuna"))
    nf = NeuralForecast(models=[auto], freq="h")
    nf.fit(df)
    assert len(nf.models[0].results.trials) == 2
    before = nf.predict()
    assert before["AutoFMamba"].notna().all() and nf.models[0].model.n_series == 3
    nf.save(str(tmp_path / "auto"), overwrite=True)
    after = NeuralForecast.load(str(tmp_path / "auto")).predict()
    np.testing.assert_allclose(before["AutoFMamba"], after["AutoFMamba"], rtol=1e-6)


@pytest.mark.integration
def test_auto_ray_search():
    pytest.importorskip("ray")
    from neuralforecast.common._base_auto import RayOptions

    auto = AutoSMamba(
        h=H, backend="ray", num_samples=2, config=_small_space(AutoSMamba, "ray"), ray_options=RayOptions(cpus=1)
    )
    nf = NeuralForecast(models=[auto], freq="h")
    nf.fit(panel())
    assert nf.predict()["AutoSMamba"].notna().all()
    best = nf.models[0].results.get_best_result().config
    assert best["d_ff"] == best["d_model"] == 16 and "n_series" not in best


# ----------------------------------------------------------------------------------------------------
# NeuralForecast's own contract test, and every loss it knows
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", MODELS)
def test_neuralforecast_check_model(cls):
    """NeuralForecast's own contract test on AirPassengers: fit/predict with static and future data, a
    longer-horizon prediction and cross-validation. Its other check, the loss sweep, is left out: it turns
    every error but a RuntimeError into "skipped", and in NeuralForecast 3.3 every loss errors there for every
    model (iTransformer included), so it cannot fail; test_every_loss runs the same losses so that they can."""
    from neuralforecast.common._model_checks import check_model

    check_model(cls, checks=["airpassengers"])


def _check_model_losses():
    """The losses NeuralForecast's check_model runs (neuralforecast/common/_model_checks.py, 3.3.0)."""
    from neuralforecast.losses import pytorch as nl

    return [
        nl.MAE(),
        nl.MSE(),
        nl.RMSE(),
        nl.MAPE(),
        nl.SMAPE(),
        nl.MASE(seasonality=7),
        nl.QuantileLoss(q=0.5),
        nl.MQLoss(),
        nl.IQLoss(),
        nl.HuberIQLoss(),
        nl.DistributionLoss("Normal"),
        nl.DistributionLoss("StudentT"),
        nl.DistributionLoss("Poisson"),
        nl.DistributionLoss("NegativeBinomial"),
        nl.DistributionLoss("Tweedie", rho=1.5),
        nl.DistributionLoss("ISQF"),
        nl.PMM(),
        nl.PMM(weighted=True),
        nl.GMM(),
        nl.GMM(weighted=True),
        nl.NBMM(),
        nl.NBMM(weighted=True),
        nl.HuberLoss(),
        nl.TukeyLoss(),
        nl.HuberQLoss(q=0.5),
        nl.HuberMQLoss(),
    ]


@pytest.mark.parametrize("cls", MODELS)
def test_every_loss(cls):
    """Every loss of check_model's list trains and predicts finite values.

    check_model's own "losses" check cannot tell: its panels have ragged starts and its first one is shorter
    than input_size + val_size, so in NeuralForecast 3.3 every model, iTransformer included, raises a
    ValueError there, which check_model reports as "skipped". This runs the same losses on an aligned panel.
    """
    losses = _check_model_losses()
    df = panel(n_series=2, length=80)
    failures = {}
    for loss in losses:
        name = type(loss).__name__
        valid_loss = loss if name in ("IQLoss", "HuberIQLoss", "MQLoss", "HuberMQLoss") else None
        model = tiny(cls, h=7, input_size=16, max_steps=2, loss=loss, valid_loss=valid_loss)
        try:
            nf = NeuralForecast(models=[model], freq="h")
            nf.fit(df, val_size=7)
            forecast = nf.predict()
            values = forecast.drop(columns=["unique_id", "ds"]).to_numpy(dtype=float)
            assert len(forecast) == 2 * 7 and np.isfinite(values).all()
            if any(c.startswith(("SMamba-", "AttentionMamba-", "FMamba-", "TSM2-")) for c in forecast.columns):
                assert count_quantile_crossings(forecast, cls.__name__) == 0, "quantiles cross"
        except Exception as error:  # noqa: BLE001 - collect them all, report together
            failures[repr(loss)] = f"{type(error).__name__}: {error}"
    assert not failures, failures


# ----------------------------------------------------------------------------------------------------
# examples (fast mode)
# ----------------------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("script", ["neuralforecast_quickstart", "statsforecast_hybrid", "auto_search", "gpu_training"])
def test_example_runs(script, monkeypatch, capfd):
    import logging

    # the test session quiets Lightning's loggers (conftest); here they start as a user's session has them
    for name in ("pytorch_lightning", "lightning_fabric"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.INFO)
    if script == "statsforecast_hybrid":
        pytest.importorskip("statsforecast")
    if script == "auto_search":
        pytest.importorskip("optuna")
    monkeypatch.setenv("MAMBA_FORECAST_FAST", "1")
    path = ROOT / "examples" / f"{script}.py"
    spec = importlib.util.spec_from_file_location(f"example_{script}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main()
    assert isinstance(result, pd.DataFrame) and len(result) > 0
    numbers = result.select_dtypes("number").to_numpy(dtype=float)
    assert numbers.size and np.isfinite(numbers).all()
    printed, errors = capfd.readouterr()
    for noise in ("Seed set", "GPU available", "TPU available", "max_steps", "| Name", "LeafSpec", "Epoch"):
        assert noise not in printed + errors, f"{script} printed Lightning's {noise!r} line"


# ----------------------------------------------------------------------------------------------------
# GPU
# ----------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("cls", MODELS)
def test_one_gpu_uses_the_fused_scan(cls, monkeypatch):
    """accelerator="gpu", devices=1 trains and predicts on one GPU, through mamba-ssm's fused scan when it is
    installed (scan_backend="auto"), without the user asking for it."""
    from mamba_forecast.ssm import scan

    used = set()
    resolve = scan.resolve_backend

    def spy(backend="auto", device=None):
        used.add(resolve(backend, device))
        return resolve(backend, device)

    monkeypatch.setattr(scan, "resolve_backend", spy)
    nf = NeuralForecast(models=[tiny(cls, accelerator="gpu", devices=1)], freq="h")
    nf.fit(panel())
    assert np.isfinite(nf.predict()[cls.__name__]).all()
    assert used == ({"cuda"} if scan.cuda_scan_available() else {"torch"})
