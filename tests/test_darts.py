"""The Darts models: what Darts checks for its own torch models, plus what users of these models rely on.

Fit/predict on one and several series, univariate and multivariate, with each covariate kind; likelihoods and
sample shapes; reversible instance norm; save/load; historical forecasts and backtests; seeds; ensembles with
classical models; NeuralForecastModel with the NF classes; clear errors before training; the docstring examples.
"""

from __future__ import annotations

import copy
import doctest
import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("darts")

from darts import TimeSeries
from darts.metrics import mae
from darts.models import (
    AutoETS,
    ConformalNaiveModel,
    ExponentialSmoothing,
    MultivariateModel,
    NaiveEnsembleModel,
    RegressionEnsembleModel,
)
from darts.models.forecasting.pl_forecasting_module import PLForecastingModule
from darts.models.forecasting.torch_forecasting_model import TorchForecastingModel
from darts.utils import likelihood_models as lm

import mamba_forecast.darts as mdarts
from conftest import MODEL_NAMES, count_darts_quantile_crossings, small_arguments
from mamba_forecast.darts import AttentionMambaModel, FMambaModel, SMambaModel, TSM2Model
from mamba_forecast.darts._base import _MambaForecastModule
from mamba_forecast.models import get_spec

ROOT = Path(__file__).resolve().parents[1]
PL = {"accelerator": "cpu", "enable_progress_bar": False, "logger": False, "enable_model_summary": False}
ICL, OCL = 16, 4

# tiny architectures: each fit below takes well under a second on one core (every registered model; a model
# with no entry here runs with its spec's example settings, shrunk)
_SMALL_OVERRIDES = {"TSM2": dict(patch_len=8, stride=4)}
SMALL = {
    getattr(mdarts, f"{name}Model"): {
        **get_spec(name).example,
        **small_arguments(name, width=8, d_state=2),
        **_SMALL_OVERRIDES.get(name, {}),
    }
    for name in MODEL_NAMES
}
MODELS = list(SMALL)
IDS = [cls.__name__ for cls in MODELS]


def make(cls=SMambaModel, icl=ICL, ocl=OCL, n_epochs=1, random_state=0, **kwargs):
    return cls(icl, ocl, **{**SMALL[cls], **kwargs}, n_epochs=n_epochs, random_state=random_state, pl_trainer_kwargs=PL)


def series(
    n_components=2,
    length=60,
    level=10.0,
    seed=0,
    start=pd.Timestamp("2024-01-01"),
    freq="h",
    dtype=np.float32,
    static=None,
):
    """Sines with noise, one level per component (level, level + 10, ...)."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)[:, None]
    values = level + 10 * np.arange(n_components) + np.sin(2 * np.pi * t / 12 + np.arange(n_components))
    values = values + 0.1 * rng.normal(size=values.shape)
    ts = TimeSeries.from_times_and_values(
        pd.date_range(start, periods=length, freq=freq),
        values.astype(dtype),
        columns=[f"y{i}" for i in range(n_components)],
    )
    return ts if static is None else ts.with_static_covariates(static)


def covariates(length, n_components, seed=1, start=pd.Timestamp("2024-01-01"), dtype=np.float32):
    rng = np.random.default_rng(seed)
    return TimeSeries.from_times_and_values(
        pd.date_range(start, periods=length, freq="h"), rng.normal(size=(length, n_components)).astype(dtype)
    )


def snapshot(ts: TimeSeries):
    return (ts.all_values(copy=True), ts.time_index.copy(), copy.deepcopy(ts.static_covariates), list(ts.components))


def assert_unchanged(ts: TimeSeries, snap):
    values, index, static, components = snap
    np.testing.assert_array_equal(ts.all_values(copy=False), values)
    assert ts.time_index.equals(index)
    assert list(ts.components) == components
    if static is None:
        assert ts.static_covariates is None
    else:
        pd.testing.assert_frame_equal(ts.static_covariates, static)


# ------------------------------------------------------------------------------------------------------------
# the classes: signatures, docstrings, registration


@pytest.mark.parametrize("cls", MODELS, ids=IDS)
def test_architecture_arguments_are_the_core_arguments_with_its_defaults(cls):
    """Every core argument the data does not determine is an explicit argument, with the core's default."""
    params = inspect.signature(cls.__init__).parameters
    own = {
        n: p.default
        for n, p in params.items()
        if n
        not in (
            "self",
            "kwargs",
            "input_chunk_length",
            "output_chunk_length",
            "output_chunk_shift",
            "use_static_covariates",
        )
    }
    assert own == get_spec(cls.spec.name).defaults()
    assert issubclass(cls, TorchForecastingModel)
    assert cls.__name__ == cls.spec.name + "Model" and cls._core_cls is cls.spec.core


@pytest.mark.parametrize("cls", MODELS, ids=IDS)
def test_docstring_documents_every_argument(cls):
    doc = cls.__init__.__doc__
    names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    tfm = [n for n in inspect.signature(TorchForecastingModel.__init__).parameters if n != "self"]
    pl = [
        n
        for n in inspect.signature(PLForecastingModule.__init__).parameters
        if n not in ("self", "input_chunk_length", "output_chunk_length", "output_chunk_shift", "train_sample_shape")
    ]
    for name in ["**kwargs" if n == "kwargs" else n for n in names] + tfm + pl:
        assert f"\n        {name}\n" in doc, f"{cls.__name__} does not document {name}"
    for section in ("Parameters\n        ----------", "References\n        ----------", "Examples\n        --------"):
        assert section in doc


@pytest.mark.parametrize("cls", MODELS, ids=IDS)
def test_docstring_example_runs(cls):
    """The `Examples` section is a doctest (also run by `pytest --doctest-modules mamba_forecast/darts`)."""
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    for test in doctest.DocTestFinder().find(cls.__init__, f"{cls.__name__}.__init__", module=False, globs={}):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_classes_are_registered_for_safe_loading():
    from darts.utils.serialization import get_safe_globals

    registered = set(get_safe_globals())
    assert {SMambaModel, AttentionMambaModel, FMambaModel, TSM2Model, _MambaForecastModule} <= registered
    assert set(mdarts.__all__) == {"SMambaModel", "AttentionMambaModel", "FMambaModel", "TSM2Model"}


# ------------------------------------------------------------------------------------------------------------
# fit / predict


@pytest.mark.parametrize("cls", MODELS, ids=IDS)
def test_fit_predict_multivariate_with_every_covariate_kind(cls):
    static = pd.DataFrame({"s0": [1.0, -1.0], "s1": [0.5, 2.0]}, index=["y0", "y1"])
    target = series(2, static=static)
    past, future = covariates(60, 3), covariates(60 + OCL, 2, seed=2)
    snaps = [snapshot(ts) for ts in (target, past, future)]

    model = make(cls).fit(target, past_covariates=past, future_covariates=future)
    pred = model.predict(OCL)

    assert pred.shape == (OCL, 2, 1)
    assert list(pred.components) == ["y0", "y1"]
    assert pred.start_time() == target.end_time() + target.freq
    assert np.isfinite(pred.values()).all()
    assert model.uses_past_covariates and model.uses_future_covariates and model.uses_static_covariates
    core = model.model.model
    assert (core.hist_exog_size, core.futr_exog_size, core.stat_exog_size) == (3, 2, 2)
    for ts, snap in zip((target, past, future), snaps, strict=True):
        assert_unchanged(ts, snap)


@pytest.mark.parametrize("cls", MODELS, ids=IDS)
def test_univariate_and_several_series(cls):
    a, b = series(1, seed=0), series(1, length=50, level=30.0, seed=1, start=pd.Timestamp("2024-02-01"))
    model = make(cls).fit([a, b])
    preds = model.predict(OCL, series=[a, b])
    assert [p.shape for p in preds] == [(OCL, 1, 1)] * 2
    assert [p.start_time() for p in preds] == [a.end_time() + a.freq, b.end_time() + b.freq]
    # a model trained on several series needs `series` at prediction time
    with pytest.raises(ValueError, match="series"):
        model.predict(OCL)


def test_univariate_single_series_and_autoregressive_horizon():
    target = series(1)
    model = make().fit(target)
    assert model.predict(OCL).shape == (OCL, 1, 1)
    long = model.predict(3 * OCL + 1)  # beyond output_chunk_length: fed back auto-regressively
    assert long.shape == (3 * OCL + 1, 1, 1)
    np.testing.assert_allclose(long.values()[:OCL], model.predict(OCL).values(), rtol=1e-6)


def test_each_covariate_kind_changes_the_forecast():
    """The covariates reach the network: other covariate values give another forecast."""
    target = series(2, length=50)
    past, future = covariates(50, 1), covariates(50 + OCL, 1, seed=2)

    model = make(n_epochs=2).fit(target, past_covariates=past)
    base = model.predict(OCL, series=target, past_covariates=past).values()
    other = model.predict(OCL, series=target, past_covariates=past * 3 + 1).values()
    assert not np.allclose(base, other)

    model = make(n_epochs=2).fit(target, future_covariates=future)
    base = model.predict(OCL, series=target, future_covariates=future).values()
    shifted_future_only = future.with_values(
        np.concatenate([future.values()[:50], future.values()[50:] * 3 + 1]).astype(np.float32)
    )
    assert not np.allclose(base, model.predict(OCL, series=target, future_covariates=shifted_future_only).values())

    static = pd.DataFrame({"s": [1.0, 2.0]}, index=["y0", "y1"])
    model = make(n_epochs=2).fit(target.with_static_covariates(static))
    base = model.predict(OCL, series=target.with_static_covariates(static)).values()
    other = model.predict(OCL, series=target.with_static_covariates(static * -3)).values()
    assert not np.allclose(base, other)


def test_global_static_covariates_are_given_to_every_component():
    """One row of static covariates for a 3-component series: the core gets a copy for each component."""
    target = series(3, static=pd.DataFrame({"s0": [1.0], "s1": [2.0]}))
    snap = snapshot(target)
    model = make().fit(target)
    assert model.model.model.stat_exog_size == 2
    assert model.predict(OCL).shape == (OCL, 3, 1)
    assert_unchanged(target, snap)


def test_use_static_covariates_false_ignores_them():
    static = pd.DataFrame({"s": [1.0, 2.0]}, index=["y0", "y1"])
    target = series(2, static=static)
    model = make(use_static_covariates=False).fit(target)
    assert not model.uses_static_covariates
    assert model.model.model.stat_exog_size == 0
    a = model.predict(OCL, series=target).values()
    b = model.predict(OCL, series=target.with_static_covariates(static * 5)).values()
    np.testing.assert_array_equal(a, b)


def test_output_chunk_shift():
    target, future = series(2), covariates(60 + 2 + OCL, 1)
    model = make(output_chunk_shift=2).fit(target, future_covariates=future)
    pred = model.predict(OCL)
    assert pred.shape == (OCL, 2, 1)
    assert pred.start_time() == target.end_time() + 3 * target.freq


def test_float64_series_train_and_predict_in_float64():
    model = make().fit(series(2, dtype=np.float64))
    assert next(model.model.parameters()).dtype == torch.float64
    assert model.predict(OCL).dtype == np.float64


def test_attention_mamba_is_tied_to_the_number_of_components():
    model = make(AttentionMambaModel).fit(series(2))
    with pytest.raises(
        ValueError, match=r"equal number of components .* Received number of components: `3`, expected: `2`"
    ):
        model.predict(OCL, series=series(3))


# ------------------------------------------------------------------------------------------------------------
# probabilistic forecasts


@pytest.mark.parametrize("cls", MODELS, ids=IDS)
def test_quantile_regression_samples_and_parameters(cls):
    target = series(2)
    model = make(cls, likelihood=lm.QuantileRegression([0.1, 0.5, 0.9])).fit(target)
    assert model.model.model.n_outputs == 3
    samples = model.predict(OCL, num_samples=50)
    assert samples.shape == (OCL, 2, 50)
    assert samples.n_samples == 50
    params = model.predict(OCL, predict_likelihood_parameters=True)
    assert list(params.components) == ["y0_q0.100", "y0_q0.500", "y0_q0.900", "y1_q0.100", "y1_q0.500", "y1_q0.900"]
    assert count_darts_quantile_crossings(params) == 0
    long = model.predict(2 * OCL, num_samples=10)  # samples fed back auto-regressively
    assert long.shape == (2 * OCL, 2, 10)


@pytest.mark.parametrize(
    "likelihood",
    [
        lm.GaussianLikelihood(),
        lm.LaplaceLikelihood(),
        lm.CauchyLikelihood(),
        lm.PoissonLikelihood(),
        lm.NegativeBinomialLikelihood(),
        lm.GammaLikelihood(),
        lm.LogNormalLikelihood(),
        lm.WeibullLikelihood(),
    ],
    ids=lambda lik: type(lik).__name__,
)
def test_other_likelihoods(likelihood):
    target = series(2, level=5.0)  # positive, as the count and positive likelihoods need
    if isinstance(likelihood, (lm.PoissonLikelihood, lm.NegativeBinomialLikelihood)):
        target = target.with_values(np.round(target.values()))
    model = make(likelihood=likelihood).fit(target)
    assert model.model.model.n_outputs == likelihood.num_parameters
    pred = model.predict(OCL, num_samples=20)
    assert pred.shape == (OCL, 2, 20)
    assert np.isfinite(pred.all_values()).all()
    params = model.predict(OCL, predict_likelihood_parameters=True)
    assert params.n_components == 2 * likelihood.num_parameters


class _Descending(torch.nn.Module):
    """Stands in for a core: quantile output k of component c is 100 c - k, so every quantile crosses."""

    def __init__(self, ocl, n_params):
        super().__init__()
        self.ocl, self.n_params = ocl, n_params
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, hist_exog=None, futr_exog=None, stat_exog=None):
        batch, _, n = x.shape
        label = 100 * torch.arange(n).view(1, 1, n, 1) - torch.arange(self.n_params).view(1, 1, 1, self.n_params)
        return label.to(x.dtype).expand(batch, self.ocl, n, self.n_params) + 0 * self.unused


@pytest.mark.parametrize("rin", [False, True], ids=["plain", "reversible-instance-norm"])
def test_quantile_outputs_never_cross(rin):
    """Quantile outputs that come out of the network in the wrong order are sorted at prediction: the
    likelihood parameters, the samples drawn from them and historical forecasts are all ordered."""
    target = series(2)
    model = make(likelihood=lm.QuantileRegression([0.1, 0.5, 0.9]), use_reversible_instance_norm=rin).fit(target)
    model.model.model = _Descending(OCL, 3)
    params = model.predict(OCL, predict_likelihood_parameters=True)
    assert count_darts_quantile_crossings(params) == 0
    if not rin:  # component y1's outputs 100, 99, 98, handed out lowest quantile first
        np.testing.assert_allclose(params.values()[:, 3:], [[98, 99, 100]] * OCL)
    hist = model.historical_forecasts(
        target,
        start=40,
        start_format="position",
        forecast_horizon=OCL,
        stride=OCL,
        retrain=False,
        last_points_only=False,
        predict_likelihood_parameters=True,
    )
    assert all(count_darts_quantile_crossings(f) == 0 for f in hist)
    samples = model.predict(OCL, num_samples=200)
    assert (np.diff(samples.quantile([0.1, 0.5, 0.9]).all_values()[..., 0].reshape(OCL, 2, 3), axis=-1) >= 0).all()


@pytest.mark.parametrize("cls", MODELS, ids=IDS)
def test_conformal_naive_model(cls):
    """Darts' conformal wrapper calibrates intervals for every model from its historical forecasts."""
    target = series(2, length=80)
    model = make(cls).fit(target[:50])
    conformal = ConformalNaiveModel(model, quantiles=[0.1, 0.5, 0.9], cal_length=5)
    params = conformal.predict(OCL, series=target, predict_likelihood_parameters=True)
    assert params.n_components == 6 and np.isfinite(params.values()).all()
    assert count_darts_quantile_crossings(params) == 0
    assert (params["y0_q0.900"].values() > params["y0_q0.100"].values()).all()
    samples = conformal.predict(OCL, series=target, num_samples=50)
    assert samples.shape == (OCL, 2, 50)


def test_quantile_forecast_learns_per_component_levels():
    """The output layout is component-major: each component's quantiles sit at its own level."""
    target = series(3, length=120, level=10.0)  # levels 10, 20, 30
    model = make(
        likelihood=lm.QuantileRegression([0.1, 0.5, 0.9]), n_epochs=15, batch_size=16, optimizer_kwargs={"lr": 3e-3}
    )
    model.fit(target)
    median = model.predict(OCL, num_samples=200).quantile(0.5).values().mean(axis=0)
    np.testing.assert_allclose(median, [10.0, 20.0, 30.0], atol=2.0)


# ------------------------------------------------------------------------------------------------------------
# reversible instance norm


def test_reversible_instance_norm_makes_forecasts_shift_equivariant():
    target = series(2)
    model = make(use_reversible_instance_norm=True, use_norm=False, n_epochs=2).fit(target)
    assert model.model.rin is not None
    base = model.predict(OCL, series=target).values()
    shifted = model.predict(OCL, series=target + 1000.0).values()
    np.testing.assert_allclose(shifted - 1000.0, base, atol=1e-2)

    # without either normalisation the same shift is not absorbed
    plain = make(use_norm=False, n_epochs=2).fit(target)
    base = plain.predict(OCL, series=target).values()
    assert not np.allclose(plain.predict(OCL, series=target + 1000.0).values() - 1000.0, base, atol=1.0)


# ------------------------------------------------------------------------------------------------------------
# save / load, seeds


@pytest.mark.parametrize("cls", MODELS, ids=IDS)
def test_save_load_reproduces_forecasts(cls, tmp_path):
    target = series(2, static=pd.DataFrame({"s": [1.0, 2.0]}, index=["y0", "y1"]))
    past, future = covariates(60, 1), covariates(60 + OCL, 1, seed=2)
    model = make(cls, likelihood=lm.QuantileRegression([0.1, 0.5, 0.9]))
    model.fit(target, past_covariates=past, future_covariates=future)
    expected = model.predict(OCL, num_samples=20, random_state=3)

    path = str(tmp_path / "model.pt")
    model.save(path)
    loaded = cls.load(path)  # safe loading (trusted=False): works because the classes are registered
    assert type(loaded) is cls and type(loaded.model) is _MambaForecastModule
    got = loaded.predict(OCL, num_samples=20, random_state=3)
    np.testing.assert_array_equal(got.all_values(), expected.all_values())

    model.save(str(tmp_path / "clean.pt"), clean=True)
    clean = cls.load(str(tmp_path / "clean.pt"))
    got = clean.predict(
        OCL, series=target, past_covariates=past, future_covariates=future, num_samples=20, random_state=3
    )
    np.testing.assert_array_equal(got.all_values(), expected.all_values())


def test_load_a_model_saved_under_the_package_path(tmp_path, monkeypatch):
    """Models saved before the classes had modules of their own name their class by the package's path
    (``mamba_forecast.darts.SMambaModel``); safe loading still accepts them."""
    model = make(SMambaModel).fit(series(2))
    monkeypatch.setattr(SMambaModel, "__module__", "mamba_forecast.darts")  # how such a file names the class
    model.save(str(tmp_path / "old.pt"))
    monkeypatch.undo()
    assert b"mamba_forecast.darts\nSMambaModel" in (tmp_path / "old.pt").read_bytes()
    loaded = SMambaModel.load(str(tmp_path / "old.pt"))
    np.testing.assert_array_equal(loaded.predict(OCL).values(), model.predict(OCL).values())


def test_automatic_checkpoints_reload(tmp_path):
    target, val = series(2, length=60), series(2, length=40, seed=5)
    model = make(n_epochs=2, save_checkpoints=True, work_dir=str(tmp_path), model_name="smamba")
    model.fit(target, val_series=val)
    expected = model.predict(OCL).values()
    last = SMambaModel.load_from_checkpoint("smamba", work_dir=str(tmp_path), best=False)
    np.testing.assert_array_equal(last.predict(OCL, series=target).values(), expected)
    best = SMambaModel.load_from_checkpoint("smamba", work_dir=str(tmp_path), best=True)
    assert best.predict(OCL, series=target).shape == (OCL, 2, 1)


def test_sample_weights_and_validation_series():
    target = series(2)
    weighted = make(n_epochs=2).fit(
        target, sample_weight="linear", val_series=series(2, seed=4), val_sample_weight="linear"
    )
    plain = make(n_epochs=2).fit(target)
    assert not np.allclose(weighted.predict(OCL).values(), plain.predict(OCL).values())


def _run_python(code: str, **env) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_load_in_a_fresh_process_without_neuralforecast(tmp_path):
    """A Darts-only user: NeuralForecast is not importable, the import registers the classes, loading works."""
    target, future = series(2), covariates(60 + OCL, 1)
    model = make(FMambaModel).fit(target, future_covariates=future)
    model.save(str(tmp_path / "fmamba.pt"))
    np.save(tmp_path / "expected.npy", model.predict(OCL).values())
    code = f"""
import sys
sys.modules["neuralforecast"] = None  # as if NeuralForecast were not installed
import numpy as np
from darts.utils.serialization import get_safe_globals
from mamba_forecast.darts import FMambaModel
assert not any("neuralforecast" in (c[0] if isinstance(c, tuple) else c).__module__ for c in get_safe_globals())
loaded = FMambaModel.load({str(tmp_path / "fmamba.pt")!r})
np.testing.assert_array_equal(loaded.predict({OCL}).values(), np.load({str(tmp_path / "expected.npy")!r}))
"""
    _run_python(code)


@pytest.mark.parametrize("cls", MODELS, ids=IDS)
def test_same_seed_same_forecasts(cls):
    target, future = series(2), covariates(60 + OCL, 1)
    preds = [
        make(cls, random_state=seed).fit(target, future_covariates=future).predict(OCL).values() for seed in (7, 7, 8)
    ]
    np.testing.assert_array_equal(preds[0], preds[1])
    assert not np.array_equal(preds[0], preds[2])


def test_same_seed_same_random_features():
    """FMamba's performer kernel draws random features when the network is built: the seed fixes them too."""
    target = series(2)
    preds = [
        make(FMambaModel, kernel="performer", n_heads=2, random_state=seed).fit(target).predict(OCL).values()
        for seed in (7, 7, 8)
    ]
    np.testing.assert_array_equal(preds[0], preds[1])
    assert not np.array_equal(preds[0], preds[2])


def test_construction_does_not_consume_the_global_rng():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    make(FMambaModel, kernel="performer", n_heads=2)  # the performer kernel draws random features at build
    np.testing.assert_array_equal(torch.rand(3), expected)


# ------------------------------------------------------------------------------------------------------------
# historical forecasts, backtest


@pytest.mark.parametrize("cls", MODELS, ids=IDS)
def test_historical_forecasts_without_retraining(cls):
    target, past, future = series(2, length=80), covariates(80, 1), covariates(80 + OCL, 1, seed=2)
    model = make(cls).fit(target[:60], past_covariates=past, future_covariates=future)
    hfc = model.historical_forecasts(
        target,
        past_covariates=past,
        future_covariates=future,
        start=60,
        start_format="position",
        forecast_horizon=OCL,
        stride=OCL,
        retrain=False,
        last_points_only=False,
    )
    assert len(hfc) == (80 - 60) // OCL
    assert all(f.shape == (OCL, 2, 1) for f in hfc)
    assert hfc[0].start_time() == target.time_index[60]
    # the optimised batch path gives what predict gives at the same point
    direct = model.predict(OCL, series=target[:68], past_covariates=past, future_covariates=future)
    np.testing.assert_allclose(hfc[2].values(), direct.values(), rtol=1e-5, atol=1e-5)

    errors = model.backtest(target, historical_forecasts=hfc, metric=mae, last_points_only=False)
    assert np.isfinite(errors) and errors >= 0
    assert errors == pytest.approx(
        model.backtest(
            target,
            past_covariates=past,
            future_covariates=future,
            start=60,
            start_format="position",
            forecast_horizon=OCL,
            stride=OCL,
            retrain=False,
            last_points_only=False,
            metric=mae,
        )
    )


def test_historical_forecasts_refuse_nan_inputs_instead_of_returning_nan():
    target, past = series(2, length=80), covariates(80, 1)
    model = make(SMambaModel).fit(target[:60], past_covariates=past)
    values = target.values().copy()
    values[70, 1] = np.nan  # after the training part: only the historical forecasts read it
    holed = target.with_values(values)
    kw = dict(start=60, start_format="position", forecast_horizon=OCL, stride=OCL, retrain=False)
    with pytest.raises(ValueError, match=r"SMambaModel: `series` has NaN values; historical forecasts read"):
        model.historical_forecasts(holed, past_covariates=past, **kw)
    cov = past.values().copy()
    cov[75, 0] = np.inf
    with pytest.raises(ValueError, match=r"`past_covariates` has infinite values"):
        model.backtest(target, past_covariates=past.with_values(cov), metric=mae, **kw)
    assert np.isnan(holed.values()[70, 1]) and np.isinf(cov[75, 0])  # the user's data is left as it was
    hfc = model.historical_forecasts(target, past_covariates=past, **kw)  # finite inputs still work
    assert np.isfinite(hfc.values()).all()


def test_historical_forecasts_several_series_probabilistic():
    a, b = series(2, length=70), series(2, length=70, level=40.0, seed=3)
    model = make(likelihood=lm.GaussianLikelihood()).fit([a[:50], b[:50]])
    hfc = model.historical_forecasts(
        [a, b],
        start=50,
        start_format="position",
        forecast_horizon=OCL,
        retrain=False,
        num_samples=5,
        last_points_only=True,
    )
    assert len(hfc) == 2
    assert all(f.n_samples == 5 and f.n_components == 2 for f in hfc)
    assert all(len(f) == 70 - 50 - OCL + 1 for f in hfc)


# ------------------------------------------------------------------------------------------------------------
# ensembles with classical models


def test_naive_ensemble_with_exponential_smoothing_and_autoets_on_multivariate_series():
    target = series(2, length=72)
    train, test = target[:64], target[64:]
    ensemble = NaiveEnsembleModel(
        [
            make(FMambaModel, n_epochs=2),
            MultivariateModel(ExponentialSmoothing(seasonal_periods=12)),
            MultivariateModel(AutoETS(season_length=12)),
        ]
    )
    ensemble.fit(train)
    pred = ensemble.predict(8)
    assert pred.shape == (8, 2, 1)
    members = [m.predict(8).values() for m in ensemble.forecasting_models]
    np.testing.assert_allclose(pred.values(), np.mean(members, axis=0), rtol=1e-5)
    assert mae(test, pred) < 2.0


def test_regression_ensemble_with_exponential_smoothing_and_autoets():
    target = series(1, length=96)
    train = target[:88]
    ensemble = RegressionEnsembleModel(
        [make(FMambaModel, n_epochs=2), ExponentialSmoothing(seasonal_periods=12), AutoETS(season_length=12)],
        regression_train_n_points=12,
    )
    ensemble.fit(train)
    pred = ensemble.predict(8)
    assert pred.shape == (8, 1, 1)
    assert pred.start_time() == train.end_time() + train.freq
    assert mae(target[88:], pred) < 2.0


# ------------------------------------------------------------------------------------------------------------
# NeuralForecastModel with the NeuralForecast classes


NF_CLASSES = list(MODEL_NAMES)
NF_SMALL = {name: SMALL[getattr(mdarts, f"{name}Model")] for name in MODEL_NAMES}


@pytest.mark.parametrize("name", NF_CLASSES)
def test_neuralforecast_classes_in_neuralforecast_model(name, tmp_path):
    pytest.importorskip("neuralforecast")
    try:
        nf_adapter = importlib.import_module("mamba_forecast.neuralforecast")
    except ImportError as err:  # pragma: no cover - depends on the NF adapter being installed
        pytest.skip(f"mamba_forecast.neuralforecast is not importable: {err}")
    if not hasattr(nf_adapter, name):
        pytest.skip(f"mamba_forecast.neuralforecast.{name} has not landed")
    from darts.models import NeuralForecastModel
    from darts.utils.serialization import get_safe_globals

    nf_cls = getattr(nf_adapter, name)
    assert nf_cls in set(get_safe_globals())  # registered by `import mamba_forecast.darts`

    target = series(3, static=pd.DataFrame({"s": [1.0, 2.0, 3.0]}, index=["y0", "y1", "y2"]))
    past, future = covariates(60, 1), covariates(60 + OCL, 1, seed=2)
    model = NeuralForecastModel(
        ICL,
        OCL,
        model=nf_cls,
        model_kwargs=NF_SMALL[name],
        likelihood=lm.QuantileRegression([0.1, 0.5, 0.9]),
        n_epochs=1,
        random_state=0,
        pl_trainer_kwargs=PL,
    )
    model.fit(target, past_covariates=past, future_covariates=future)
    pred = model.predict(OCL, num_samples=10, random_state=1)
    assert pred.shape == (OCL, 3, 10)

    path = str(tmp_path / "nf.pt")
    model.save(path)
    loaded = NeuralForecastModel.load(path)
    np.testing.assert_array_equal(loaded.predict(OCL, num_samples=10, random_state=1).all_values(), pred.all_values())


@pytest.mark.parametrize("first", ["darts", "neuralforecast"])
def test_import_order_registers_neuralforecast_classes(first):
    """`import mamba_forecast.darts` does not import NeuralForecast (seconds of import for Darts users), yet the NF
    classes end up allow-listed for `NeuralForecastModel.load` whichever adapter is imported first."""
    pytest.importorskip("neuralforecast")
    order = ["mamba_forecast.darts", "mamba_forecast.neuralforecast"]
    if first == "neuralforecast":
        order.reverse()
    code = f"""
import importlib, sys
importlib.import_module({order[0]!r})
if {order[0]!r} == "mamba_forecast.darts":
    assert "neuralforecast" not in sys.modules, "mamba_forecast.darts imported NeuralForecast"
importlib.import_module({order[1]!r})
from darts.utils.serialization import get_safe_globals
from mamba_forecast.neuralforecast import AttentionMamba, FMamba, SMamba, TSM2
missing = {{SMamba, AttentionMamba, FMamba, TSM2}} - set(get_safe_globals())
assert not missing, missing
"""
    _run_python(code)


# ------------------------------------------------------------------------------------------------------------
# clear errors before training; the user's series are never modified


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (SMambaModel, dict(d_conv=7), "d_conv"),
        (SMambaModel, dict(dropout=1.5), "dropout"),
        (SMambaModel, dict(d_model=0), "d_model"),
        (SMambaModel, dict(e_layers=2.5), "e_layers"),
        (SMambaModel, dict(scan_backend="gpu"), "scan_backend"),
        (SMambaModel, dict(use_norm="yes"), "use_norm"),
        (SMambaModel, dict(use_static_covariates=None), "use_static_covariates"),
        (AttentionMambaModel, dict(d_model=10), "multiple of 4"),
        (AttentionMambaModel, dict(variant="new"), "variant"),
        (FMambaModel, dict(kernel="cosine"), "kernel"),
        (FMambaModel, dict(n_heads=3), "n_heads"),
        (TSM2Model, dict(patch_len=32), "patch_len"),
    ],
)
def test_invalid_hyper_parameters_fail_at_construction(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(ICL, OCL, **{**SMALL[cls], **kwargs})


@pytest.mark.parametrize("icl, ocl, shift", [(0, 4, 0), (16, 0, 0), (16, 4, -1), (16.0, 4, 0)])
def test_invalid_chunk_lengths_fail_at_construction(icl, ocl, shift):
    with pytest.raises(ValueError, match="chunk"):
        SMambaModel(icl, ocl, output_chunk_shift=shift)


def test_unknown_argument_fails_at_construction():
    with pytest.raises(ValueError, match="hidden_size"):
        SMambaModel(ICL, OCL, hidden_size=8)


def _fails_before_training(model, match, *args, **kwargs):
    with pytest.raises(ValueError, match=match):
        model.fit(*args, **kwargs)
    assert model.model is None and model.trainer is None


def test_too_short_series_fails_before_training():
    _fails_before_training(make(), "too short", series(2, length=ICL + OCL - 1))
    _fails_before_training(make(), r"at index 1 .*too short", [series(2), series(2, length=10)])
    _fails_before_training(make(output_chunk_shift=3), "too short", series(2, length=ICL + OCL + 2))
    _fails_before_training(make(), r"`val_series`.*too short", series(2), val_series=series(2, length=10))


def test_nan_in_target_or_covariates_fails_before_training():
    values = series(2).values().copy()
    values[5, 1] = np.nan
    bad = series(2).with_values(values)
    snap = snapshot(bad)
    _fails_before_training(make(), r"`series` has NaN values at 1 time steps \(first at 2024-01-01 05:00", bad)
    assert_unchanged(bad, snap)

    past = covariates(60, 1)
    past_values = past.values().copy()
    past_values[-1] = np.nan
    _fails_before_training(
        make(), "`past_covariates` has NaN", series(2), past_covariates=past.with_values(past_values)
    )


def test_nan_in_static_covariates_fails_before_training():
    target = series(2, static=pd.DataFrame({"s": [1.0, np.nan]}, index=["y0", "y1"]))
    _fails_before_training(make(), "static covariates of `series` have NaN", target)
    assert make(use_static_covariates=False).fit(target).predict(OCL).shape == (OCL, 2, 1)


def test_nan_in_prediction_input_fails():
    model = make().fit(series(2))
    values = series(2).values().copy()
    values[-1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN values in its last 16 points"):
        model.predict(OCL, series=series(2).with_values(values))
    values = series(2).values().copy()
    values[0, 0] = np.nan  # outside the input window: harmless
    assert model.predict(OCL, series=series(2).with_values(values)).shape == (OCL, 2, 1)


def test_covariates_not_covering_the_training_range_fail_before_training():
    target = series(2)  # 60 hourly points from 2024-01-01 00:00
    # past covariates start too late (Darts alone fails mid-training with a shape error)
    _fails_before_training(
        make(),
        r"`past_covariates` span 2024-01-01 10:00:00 .* needs values from "
        r"2024-01-01 00:00:00",
        target,
        past_covariates=covariates(60, 1)[10:],
    )
    # future covariates must cover the output windows up to the end of the series
    _fails_before_training(
        make(),
        r"`future_covariates` span .* to 2024-01-03 09:00:00.* to 2024-01-03 11:00:00",
        target,
        future_covariates=covariates(58, 1),
    )
    # the second series' covariates are too short (Darts alone fails on the first batch that needs them)
    _fails_before_training(
        make(),
        r"`past_covariates` at index 1",
        [target, target],
        past_covariates=[covariates(60, 1), covariates(30, 1)],
    )
    # enough when only the most recent samples are drawn
    model = make().fit(target, past_covariates=covariates(60, 1)[30:], max_samples_per_ts=10)
    assert model.predict(OCL, past_covariates=covariates(60, 1)).shape == (OCL, 2, 1)


def test_historical_forecasts_and_predict_leave_inputs_unchanged():
    target = series(2, length=70, static=pd.DataFrame({"s": [1.0]}))
    future = covariates(70 + OCL, 1)
    snaps = [snapshot(target), snapshot(future)]
    model = make().fit(target[:60], future_covariates=future)
    model.historical_forecasts(
        target, future_covariates=future, start=60, start_format="position", forecast_horizon=OCL, retrain=False
    )
    model.predict(OCL, series=target, future_covariates=future)
    assert_unchanged(target, snaps[0])
    assert_unchanged(future, snaps[1])


# ------------------------------------------------------------------------------------------------------------
# the example script


@pytest.mark.integration
def test_example_darts_backtest_ensemble_runs_in_fast_mode():
    env = {**os.environ, "MAMBA_FORECAST_FAST": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "darts_backtest_ensemble.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "backtest MAE" in proc.stdout and "NaiveEnsembleModel" in proc.stdout
    for noise in ("Seed set", "GPU available", "TPU available", "| Name", "LeafSpec", "Epoch"):
        assert noise not in proc.stdout + proc.stderr, f"the example printed Lightning's {noise!r} line"
