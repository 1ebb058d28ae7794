"""The training protocols (official, converge) and NeuralForecast's forecasters as harness baselines."""

import math

import pytest
import torch

from conftest import synthetic_ett
from mamba_forecast.bench import prepare
from mamba_forecast.bench.models import LinearBaseline
from mamba_forecast.bench.train import (
    PLATEAU_EPOCHS, PROTOCOLS, LearningRate, evaluate, fit_and_test, get_protocol, train,
)


def linear_forward(model, x, xm):
    return model(x)


@pytest.fixture(scope="module")
def data():
    return prepare("ETTh1", 24, frame=synthetic_ett(n_rows=900))


def test_plateau_keeps_the_rate_while_the_model_improves_and_halves_it_when_it_stalls():
    schedule = LearningRate(1e-3, 100, "plateau")
    rates = []
    for val in (1.0, 0.9, 0.8, 0.85, 0.86, 0.87, 0.7, 0.71, 0.72, 0.73, 0.74):
        rates.append(schedule.at(len(rates) + 1))
        schedule.observe(val)
    # improving for 3 epochs: lr0; then 2 epochs without a new best halve it, 2 more halve it again only while
    # no new best comes; a new best (0.7) resets the count, not the rate
    assert PLATEAU_EPOCHS == 2
    assert rates == [1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 5e-4, 2.5e-4, 2.5e-4]


def test_an_unknown_schedule_or_protocol_is_refused_before_training(data):
    with pytest.raises(ValueError, match="lradj must be one of"):
        LearningRate(1e-3, 10, "halving")
    with pytest.raises(ValueError, match="protocol must be one of official, converge"):
        get_protocol("fast")
    with pytest.raises(ValueError, match="validation must be one of"):
        train(LinearBaseline(24, 24), data, 24, forward_fn=linear_forward, epochs=1, batch_size=8,
              learning_rate=1e-3, validation="every", progress=False, log=lambda *_: None)


def test_protocols_differ_in_what_the_issue_asks_and_nothing_else():
    official, converge = PROTOCOLS["official"], PROTOCOLS["converge"]
    from mamba_forecast.bench.presets import get_preset

    preset = get_preset("SMamba", "ETTh1", 96, "official")  # 10 epochs, patience 3, type1
    assert official.settings(preset) == {"epochs": 10, "patience": 3, "lradj": "type1"}
    assert converge.settings(preset) == {"epochs": 100, "patience": 5, "lradj": "plateau"}
    assert (official.validation, converge.validation) == ("shuffled", "full")


def test_full_validation_scores_every_window_in_order_the_same_each_time(data):
    """The converge protocol's criterion is a function of the weights alone: the exact MSE over every validation
    window, so two epochs with the same weights score the same (the official shuffled drop-last pass does not)."""
    torch.manual_seed(0)
    model = LinearBaseline(24, 24)
    losses = []
    result = train(model, data, 24, forward_fn=linear_forward, epochs=3, batch_size=8, learning_rate=0.0,
                   optimizer="adam", lradj="constant", validation="full", progress=False, log=lambda *_: None,
                   on_epoch=lambda epoch, val: losses.append(val))
    assert losses[0] == losses[1] == losses[2]  # learning rate 0: the same weights every epoch
    exact = evaluate(model, linear_forward, data, "val", 24, 1000, "cpu")[1]
    assert losses[0] == pytest.approx(exact, rel=1e-6)
    shuffled = []
    train(LinearBaseline(24, 24), data, 24, forward_fn=linear_forward, epochs=3, batch_size=8, learning_rate=0.0,
          lradj="constant", validation="shuffled", progress=False, log=lambda *_: None,
          on_epoch=lambda epoch, val: shuffled.append(val))
    assert len(set(shuffled)) > 1  # a different drop-last subset each epoch
    assert result.epochs_run == 3


def test_converge_runs_until_early_stopping_not_the_cap(data):
    torch.manual_seed(0)
    protocol = PROTOCOLS["converge"]
    result = fit_and_test(LinearBaseline(24, 24), data, 24, forward_fn=linear_forward, epochs=protocol.max_epochs,
                          batch_size=16, learning_rate=3e-2, patience=protocol.patience, lradj="plateau",
                          validation="full", progress=False, log=lambda *_: None)
    assert result.epochs_run < protocol.max_epochs  # early stopping ended it
    assert result.epochs_run - result.best_epoch == protocol.patience
    assert math.isfinite(result.mse) and result.n_test_windows == data.n_windows("test", 24)


# -- NeuralForecast's forecasters as baselines ------------------------------------------------------------------

pytest.importorskip("neuralforecast")
from mamba_forecast.bench.baselines import BASELINES, build_baseline, default_learning_rate, network_arguments  # noqa: E402


@pytest.mark.parametrize("name", list(BASELINES))
def test_each_baseline_forecasts_every_series_of_a_window(name):
    model = build_baseline(name, 48, 12, 3, seed=1)
    x = torch.randn(5, 48, 3)
    y = model(x)
    assert y.shape == (5, 12, 3)
    y.pow(2).mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    if not BASELINES[name].multivariate:  # channel-independent: a series' forecast depends on that series only
        x2 = x.clone()
        x2[:, :, 1] += 1.0
        model.eval()
        with torch.no_grad():
            a, b = model(x), model(x2)
        assert torch.allclose(a[:, :, 0], b[:, :, 0], atol=1e-6) and not torch.allclose(a[:, :, 1], b[:, :, 1])


def test_a_baseline_s_weights_follow_its_seed():
    first = next(build_baseline("DLinear", 48, 12, 3, seed=1).parameters())
    again = next(build_baseline("DLinear", 48, 12, 3, seed=1).parameters())
    other = next(build_baseline("DLinear", 48, 12, 3, seed=2).parameters())
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_baselines_use_neuralforecast_s_defaults_and_refuse_unknown_arguments():
    assert default_learning_rate("PatchTST") == 1e-4 and default_learning_rate("iTransformer") == 1e-3
    assert network_arguments("PatchTST")["hidden_size"] == 128
    assert network_arguments("DLinear")["window_norm"] is True
    with pytest.raises(ValueError, match=r"iTransformer does not take d_state; its arguments here: .*hidden_size"):
        build_baseline("iTransformer", 48, 12, 3, d_state=16)


def test_window_norm_makes_a_forecast_follow_the_level_of_its_window():
    model = build_baseline("DLinear", 48, 12, 2, seed=0).eval()
    x = torch.randn(4, 48, 2)
    with torch.no_grad():
        shifted = model(x + 100.0) - model(x)
    assert torch.allclose(shifted, torch.full_like(shifted, 100.0), atol=1e-3)


def test_a_baseline_trains_and_is_scored_by_the_harness(data):
    model = build_baseline("TSMixer", 24, 24, data.n_series, seed=0, dropout=0.1)
    result = fit_and_test(model, data, 24, forward_fn=linear_forward, epochs=2, batch_size=16, learning_rate=1e-3,
                          lradj="plateau", validation="full", progress=False, log=lambda *_: None)
    assert result.epochs_run == 2 and math.isfinite(result.mse)
    assert result.history[1]["val_loss"] < result.history[0]["val_loss"] * 1.5
