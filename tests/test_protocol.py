"""The training protocols (official, converge) and NeuralForecast's forecasters as harness baselines."""

import json
import math

import pytest
import torch

from conftest import synthetic_ett
from mamba_forecast.bench import prepare
from mamba_forecast.bench.models import LinearBaseline
from mamba_forecast.bench.train import (
    PLATEAU_EPOCHS,
    PROTOCOLS,
    LearningRate,
    evaluate,
    fit_and_test,
    get_protocol,
    train,
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
        train(
            LinearBaseline(24, 24),
            data,
            24,
            forward_fn=linear_forward,
            epochs=1,
            batch_size=8,
            learning_rate=1e-3,
            validation="every",
            progress=False,
            log=lambda *_: None,
        )


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
    result = train(
        model,
        data,
        24,
        forward_fn=linear_forward,
        epochs=3,
        batch_size=8,
        learning_rate=0.0,
        optimizer="adam",
        lradj="constant",
        validation="full",
        progress=False,
        log=lambda *_: None,
        on_epoch=lambda epoch, val: losses.append(val),
    )
    assert losses[0] == losses[1] == losses[2]  # learning rate 0: the same weights every epoch
    exact = evaluate(model, linear_forward, data, "val", 24, 1000, "cpu")[1]
    assert losses[0] == pytest.approx(exact, rel=1e-6)
    shuffled = []
    train(
        LinearBaseline(24, 24),
        data,
        24,
        forward_fn=linear_forward,
        epochs=3,
        batch_size=8,
        learning_rate=0.0,
        lradj="constant",
        validation="shuffled",
        progress=False,
        log=lambda *_: None,
        on_epoch=lambda epoch, val: shuffled.append(val),
    )
    assert len(set(shuffled)) > 1  # a different drop-last subset each epoch
    assert result.epochs_run == 3


def test_converge_runs_until_early_stopping_not_the_cap(data):
    torch.manual_seed(0)
    protocol = PROTOCOLS["converge"]
    result = fit_and_test(
        LinearBaseline(24, 24),
        data,
        24,
        forward_fn=linear_forward,
        epochs=protocol.max_epochs,
        batch_size=16,
        learning_rate=3e-2,
        patience=protocol.patience,
        lradj="plateau",
        validation="full",
        progress=False,
        log=lambda *_: None,
    )
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
    result = fit_and_test(
        model,
        data,
        24,
        forward_fn=linear_forward,
        epochs=2,
        batch_size=16,
        learning_rate=1e-3,
        lradj="plateau",
        validation="full",
        progress=False,
        log=lambda *_: None,
    )
    assert result.epochs_run == 2 and math.isfinite(result.mse)
    assert result.history[1]["val_loss"] < result.history[0]["val_loss"] * 1.5


# -- the protocol and the baselines through the harness and the CLI ---------------------------------------------

from mamba_forecast.bench.runner import Cell, append_row, read_results  # noqa: E402


@pytest.fixture()
def ett_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    synthetic_ett().to_csv(d / "ETTh1.csv", index=False)
    return d


def _bench(ett_dir, out, *args):
    from mamba_forecast.cli import main

    main(
        [
            "bench",
            "--dataset",
            "ETTh1",
            "--horizon",
            "12",
            "--input-size",
            "24",
            "--data-dir",
            str(ett_dir),
            "--out",
            str(out),
            "--no-progress",
            "--device",
            "cpu",
            *args,
        ]
    )
    return read_results(out)


def test_every_row_records_its_protocol(ett_dir, tmp_path):
    out = tmp_path / "r.csv"
    _bench(ett_dir, out, "--model", "Linear", "--epochs", "2")
    rows = _bench(ett_dir, out, "--model", "Linear", "--protocol", "official", "--epochs", "2")
    assert [(r["protocol"], r["validation"], r["patience"], r["lradj"]) for r in rows] == [
        ("converge", "full", "5", "plateau"),
        ("official", "shuffled", "3", "type1"),
    ]
    # without --epochs a cell runs to the protocol's cap: 100 under converge, the preset's under official
    assert Cell("ETTh1", "SMamba", 96).resolved().epochs == 100
    assert Cell("ETTh1", "SMamba", 96, protocol="official").resolved().epochs == 10


def test_rows_from_before_the_protocol_columns_count_as_official_runs(ett_dir, tmp_path):
    """The grid run before the converge protocol existed stays done for `--protocol official` reruns (resume)."""
    out = tmp_path / "r.csv"
    old = dict(
        dataset="ETTh1",
        model="Linear",
        input_size=24,
        horizon=12,
        seed=2023,
        via="harness",
        max_epochs=1,
        preset="official",
        mse="0.5",
    )
    append_row(out, old, columns=list(old))
    rows = _bench(ett_dir, out, "--model", "Linear", "--protocol", "official", "--epochs", "1")
    assert len(rows) == 1 and rows[0]["mse"] == "0.5" and rows[0]["protocol"] == "official"
    rows = _bench(ett_dir, out, "--model", "Linear", "--epochs", "1")  # the converge cell is another cell
    assert [r["protocol"] for r in rows] == ["official", "converge"]


def test_a_neuralforecast_baseline_runs_in_the_harness_and_says_how_it_was_configured(ett_dir, tmp_path):
    out = tmp_path / "r.csv"
    (row,) = _bench(
        ett_dir,
        out,
        "--model",
        "PatchTST",
        "--epochs",
        "1",
        "--max-train-batches",
        "2",
        "--set",
        "hidden_size=16,dropout=0.3",
    )
    assert row["protocol"] == "converge" and row["calendar_tokens"] == "0" and row["d_model"] == ""
    assert row["learning_rate"] == "0.0001"  # PatchTST's NeuralForecast default
    # a network argument named like one of our preset fields (dropout) is NeuralForecast's, not the preset's
    assert "NeuralForecast network:" in row["notes"] and "hidden_size=16" in row["notes"]
    assert " dropout=0.3 " in row["notes"] and row["d_model"] == ""
    assert int(row["n_test_windows"]) > 0 and float(row["mse"]) > 0
    with pytest.raises(
        ValueError,
        match=r"--set d_state=\.\.\.: 'd_state' sizes our models; NeuralForecast's "
        r"DLinear take their own arguments \(.*window_norm",
    ):
        _bench(ett_dir, out, "--model", "DLinear", "--epochs", "1", "--set", "d_state=8")
    with pytest.raises(ValueError, match=r"'kernel' is not a preset field .* nor an argument of DLinear"):
        _bench(ett_dir, out, "--model", "DLinear", "--epochs", "1", "--set", "kernel=gaussian")
    with pytest.raises(ValueError, match="NeuralForecast's own: run it with --via harness"):
        _bench(ett_dir, out, "--model", "DLinear", "--epochs", "1", "--via", "neuralforecast")


def test_a_baseline_s_settings_reach_its_network_even_where_a_preset_field_has_their_name():
    from mamba_forecast.bench.models import build_model
    from mamba_forecast.bench.presets import apply_settings, get_preset

    preset = apply_settings(
        get_preset("iTransformer", "ETTh1", 96), {"e_layers": 1, "hidden_size": 128, "learning_rate": 3e-4}
    )
    assert preset.extra == {"e_layers": 1, "hidden_size": 128} and preset.learning_rate == 3e-4
    model = build_model("iTransformer", preset, 3, 48, 12)
    assert len(model.network.encoder.attn_layers) == 1


def test_seeds_move_a_baseline_s_weights(ett_dir, tmp_path):
    rows = _bench(ett_dir, tmp_path / "r.csv", "--model", "DLinear", "--epochs", "1", "--seeds", "1,2")
    assert rows[0]["mse"] != rows[1]["mse"]


# -- the search ---------------------------------------------------------------------------------------------------

optuna = pytest.importorskip("optuna")
from mamba_forecast.bench import spaces as tuning  # noqa: E402


def test_each_study_draws_its_own_first_settings():
    """One seed for every study made every dataset try the same random configurations first."""
    names = ["SMamba-ETTh1-L96-H96-s2023-e100-converge", "SMamba-ETTh2-L96-H96-s2023-e100-converge"]
    assert len({tuning.study_seed(2023, n) for n in names}) == 2
    assert tuning.study_seed(2023, names[0]) == tuning.study_seed(2023, names[0])
    assert tuning.startup_trials(20) == 5 and tuning.startup_trials(8) == 2 and tuning.startup_trials(2) == 1


def test_a_baseline_s_search_space_is_the_shared_one_plus_its_own():
    trial = optuna.trial.FixedTrial(
        {
            "learning_rate": 1e-3,
            "optimizer": "adam",
            "lradj": "plateau",
            "hidden_size": 16,
            "dropout": 0.1,
            "input_size": 192,
        }
    )
    settings = tuning.search_space("PatchTST", "converge", (96, 192))(trial)
    assert settings == {
        "learning_rate": 1e-3,
        "optimizer": "adam",
        "lradj": "plateau",
        "hidden_size": 16,
        "dropout": 0.1,
        "input_size": 192,
    }
    assert tuning.SCHEDULES["converge"] == ("plateau", "constant")  # none that decays while the model improves


def test_every_baseline_searches_its_own_network_arguments_and_timemixer_reaches_its_paper_s_architecture():
    """A search choice that is not an argument of the class would fail only once a trial built the network; and
    TimeMixer's search once held neither the down-sampling layers nor channel independence, the two settings in
    which its paper's ETT scripts differ most from NeuralForecast's defaults."""
    from mamba_forecast.bench.baselines import BASELINES, network_arguments

    for name, baseline in BASELINES.items():
        assert set(baseline.tune_space) <= set(network_arguments(name)), name
    paper = {"d_model": 16, "e_layers": 2, "down_sampling_layers": 3, "channel_independence": 1}
    trial = optuna.trial.FixedTrial({"learning_rate": 1e-3, "optimizer": "adam", "lradj": "plateau", **paper})
    assert tuning.search_space("TimeMixer", "converge")(trial) == {
        "learning_rate": 1e-3,
        "optimizer": "adam",
        "lradj": "plateau",
        **paper,
    }


def test_a_searched_look_back_is_chosen_on_validation_and_bench_runs_it(ett_dir, tmp_path, monkeypatch):
    from mamba_forecast.bench import presets
    from mamba_forecast.cli import main

    shipped = tmp_path / "shipped.json"  # an empty package table: only the entries this test writes count
    shipped.write_text("{}")
    monkeypatch.setattr(presets, "TUNED_PRESETS_FILE", shipped)

    table = tmp_path / "tuned.json"
    main(
        [
            "tune",
            "--dataset",
            "ETTh1",
            "--model",
            "Linear",
            "--horizon",
            "12",
            "--input-size",
            "searched",
            "--trials",
            "4",
            "--epochs",
            "2",
            "--data-dir",
            str(ett_dir),
            "--device",
            "cpu",
            "--presets-file",
            str(table),
            "--trials-log",
            str(tmp_path / "t.csv"),
            "--study-file",
            str(tmp_path / "s.journal"),
        ]
    )
    (entry,) = read_tuned_entries(table)
    assert entry["input_size"] == "searched" and entry["protocol"] == "converge"
    chosen = entry["settings"]["input_size"]
    assert chosen in (96, 192, 336, 512)  # 720 leaves no training window on 1200 rows at H=12
    trials = pd.read_csv(tmp_path / "t.csv")
    assert set(trials["lookback"]) == {"searched"} and set(trials["input_size"]) <= {96, 192, 336, 512}
    assert trials["val_mse"].min() == pytest.approx(entry["val_mse"], rel=1e-5)
    (row,) = _bench(
        ett_dir,
        tmp_path / "r.csv",
        "--model",
        "Linear",
        "--input-size",
        "searched",
        "--epochs",
        "1",
        "--presets-file",
        str(table),
    )
    assert (row["lookback"], row["input_size"], row["preset"]) == ("searched", str(chosen), "tuned")
    with pytest.raises(ValueError, match="no tuned entry of SMamba on ETTh1 chose a look-back"):
        _bench(
            ett_dir, tmp_path / "r.csv", "--model", "SMamba", "--input-size", "searched", "--presets-file", str(table)
        )


def read_tuned_entries(path):
    import json

    return json.loads(path.read_text())["Linear"]["ETTh1"]


import pandas as pd  # noqa: E402


def test_the_default_for_an_unseen_dataset_is_chosen_on_validation_across_searches(tmp_path):
    """Settings closest to each dataset's best validation MSE, among those searched on (nearly) every dataset; a
    setting tried on fewer datasets, however good there, is not eligible."""
    from mamba_forecast.bench.records import append_csv_row
    from mamba_forecast.bench.tune import TRIAL_COLUMNS, choose_default

    log = tmp_path / "trials.csv"
    val = {  # settings -> dataset -> validation MSE
        '{"learning_rate": 0.001}': {"A": 1.00, "B": 2.00, "C": 3.00, "D": 4.40},
        '{"learning_rate": 0.0001}': {"A": 1.01, "B": 2.02, "C": 3.03, "D": 4.00},
        '{"learning_rate": 0.01}': {"A": 0.90, "B": 1.90},
    }
    for settings, per in val.items():
        for dataset, mse in per.items():
            append_csv_row(
                log,
                dict(
                    dataset=dataset,
                    model="SMamba",
                    input_size=96,
                    horizon=96,
                    seed=1,
                    trial=0,
                    state="complete",
                    val_mse=mse,
                    settings=settings,
                ),
                TRIAL_COLUMNS,
            )
    append_csv_row(
        log,
        dict(
            dataset="A",
            model="SMamba",
            input_size=96,
            horizon=96,
            state="pruned",
            val_mse=0.1,
            settings='{"learning_rate": 0.1}',
        ),
        TRIAL_COLUMNS,
    )
    entry = choose_default(log, "SMamba")
    assert entry["settings"] == {"learning_rate": 0.0001} and entry["datasets"] == ["A", "B", "C", "D"]
    assert entry["default"] is True and "on validation" in entry["source"]
    assert choose_default(log, "SMamba", protocol="converge") is None  # no search ran under converge
    assert choose_default(log, "FMamba") is None


def test_a_dataset_without_a_tuned_entry_takes_the_model_s_default_entry(tmp_path, ett_dir):
    from mamba_forecast.bench.presets import DEFAULT, get_preset
    from mamba_forecast.bench.tune import write_tuned

    table = tmp_path / "t.json"
    entry = {
        "settings": {"learning_rate": 2e-4, "optimizer": "adamw"},
        "default": True,
        "input_size": 96,
        "protocol": "converge",
        "tuned_horizon": 96,
        "horizons": "all",
        "source": "default for a dataset ...",
    }
    write_tuned(table, "Toy", DEFAULT, entry)
    write_tuned(table, "SMamba", DEFAULT, entry)
    unseen = get_preset("SMamba", "ETTm2", 96, "tuned", tuned_path=table, protocol="converge")
    assert (unseen.table, unseen.learning_rate, unseen.optimizer) == ("default", 2e-4, "adamw")
    assert get_preset("SMamba", "ETTm2", 96, "official", tuned_path=table, protocol="converge").table == "official"
    # the default is for the protocol and look-back it was chosen for
    assert get_preset("SMamba", "ETTm2", 96, "tuned", tuned_path=table, protocol="official").learning_rate != 2e-4
    assert (
        get_preset("SMamba", "ETTm2", 96, "tuned", tuned_path=table, input_size=192, protocol="converge").table
        == "official"
    )
    write_tuned(table, "Linear", DEFAULT, {**entry, "input_size": 24})
    (row,) = _bench(ett_dir, tmp_path / "r.csv", "--model", "Linear", "--epochs", "1", "--presets-file", str(table))
    assert (row["preset"], row["learning_rate"], row["optimizer"]) == ("default", "0.0002", "adamw")


def test_the_shipped_defaults_train_every_model_at_a_rate_that_learns():
    """`bench --dataset ETTm2 --model AttentionMamba` used to run at 1e-5 halved every epoch (6e-7 by epoch 6)."""
    from mamba_forecast.bench.presets import get_preset
    from mamba_forecast.bench.train import PROTOCOLS
    from mamba_forecast.models import model_names

    for model in model_names():
        for protocol in PROTOCOLS:
            preset = get_preset(model, "ETTm2", 96, "tuned", input_size=96, protocol=protocol)
            assert preset.table == "default" and preset.learning_rate >= 5e-5, (model, protocol)


def _narrowed_search(tmp_path, only: tuple[str, ...], trials: int) -> dict:
    """``tune`` of Linear on synthetic ETTh1 searching ``only`` (its grid), from a default entry with learning rate
    3e-3 and AdamW; the trial log and the journal in ``tmp_path``, so a second call resumes the study."""
    from mamba_forecast.bench.presets import DEFAULT
    from mamba_forecast.bench.tune import tune, write_tuned

    table = tmp_path / "tuned.json"
    start = {"settings": {"learning_rate": 3e-3, "optimizer": "adamw"}, "default": True, "input_size": 96}
    write_tuned(table, "Linear", DEFAULT, {**start, "protocol": "converge", "horizons": "all", "source": "default"})
    return tune(
        "Linear",
        "ETTh1",
        12,
        frame=synthetic_ett(),
        input_size="searched" if "input_size" in only else None,
        only=only,
        trials=trials,
        epochs=1,
        device="cpu",
        presets_file=table,
        trials_log=tmp_path / "t.csv",
        study_file=tmp_path / "s.journal",
        log=lambda *_: None,
    )


def test_a_cut_off_look_back_sweep_resumes_with_the_look_backs_not_tried(tmp_path):
    """A grid search (`--only` over categorical settings) cut off and run again goes on with the combinations not
    tried yet, each once: the grid ids the journal records index one shuffle of the grid, the same on every run."""
    for trials in (1, 2, 20):  # cut off after one trial, then after two, then run to the end of the grid
        entry = _narrowed_search(tmp_path, ("input_size",), trials)
    tried = pd.read_csv(tmp_path / "t.csv")["input_size"].tolist()
    assert sorted(tried) == [96, 192, 336, 512] and entry["completed"] == 4


def test_a_search_over_the_optimizer_and_schedule_alone_walks_their_grid_and_keeps_the_learning_rate(tmp_path):
    """`tune --only optimizer,lradj`: a grid over those two, each combination tried once, the learning rate left as
    the cell's preset has it (the search used to ask every trial for a learning rate, which the grid refused)."""
    entry = _narrowed_search(tmp_path, ("optimizer", "lradj"), 20)
    tried = [json.loads(s) for s in pd.read_csv(tmp_path / "t.csv")["settings"]]
    assert sorted((s["optimizer"], s["lradj"]) for s in tried) == [
        ("adam", "constant"),
        ("adam", "plateau"),
        ("adamw", "constant"),
        ("adamw", "plateau"),
    ]
    assert all("learning_rate" not in s for s in tried)  # not searched: the preset's, carried into the entry
    assert entry["completed"] == 4 and entry["settings"]["learning_rate"] == 3e-3


def test_a_look_back_sweep_tries_each_look_back_once_and_keeps_the_cell_s_other_settings(ett_dir, tmp_path):
    """`tune --input-size searched --only input_size`: the look-back chosen on validation, nothing else searched;
    the entry carries the settings the cell had (here the default entry's) so bench reruns exactly the winner."""
    import json

    from mamba_forecast.bench.presets import DEFAULT
    from mamba_forecast.bench.tune import write_tuned
    from mamba_forecast.cli import main

    table = tmp_path / "tuned.json"
    default = {
        "settings": {"learning_rate": 3e-3, "optimizer": "adamw"},
        "default": True,
        "input_size": 96,
        "protocol": "converge",
        "tuned_horizon": 96,
        "horizons": "all",
        "source": "default ...",
    }
    write_tuned(table, "Linear", DEFAULT, default)
    main(
        [
            "tune",
            "--dataset",
            "ETTh1",
            "--model",
            "Linear",
            "--horizon",
            "12",
            "--input-size",
            "searched",
            "--only",
            "input_size",
            "--trials",
            "20",
            "--epochs",
            "2",
            "--data-dir",
            str(ett_dir),
            "--device",
            "cpu",
            "--presets-file",
            str(table),
            "--trials-log",
            str(tmp_path / "t.csv"),
            "--study-file",
            str(tmp_path / "s.journal"),
        ]
    )
    trials = pd.read_csv(tmp_path / "t.csv")
    assert sorted(trials["input_size"]) == [96, 192, 336, 512]  # each look-back with windows, once, none pruned
    assert set(trials["state"]) == {"complete"}
    (entry,) = [e for e in json.loads(table.read_text())["Linear"]["ETTh1"]]
    best = trials.loc[trials["val_mse"].idxmin()]
    assert entry["settings"]["input_size"] == best["input_size"]
    assert (entry["settings"]["learning_rate"], entry["settings"]["optimizer"]) == (3e-3, "adamw")
    assert "only input_size searched" in entry["source"]
    with pytest.raises(ValueError, match="only: Linear has no setting d_state to search"):
        main(
            [
                "tune",
                "--dataset",
                "ETTh1",
                "--model",
                "Linear",
                "--horizon",
                "12",
                "--only",
                "d_state",
                "--trials",
                "1",
                "--epochs",
                "1",
                "--data-dir",
                str(ett_dir),
                "--presets-file",
                str(table),
                "--trials-log",
                str(tmp_path / "t.csv"),
                "--study-file",
                str(tmp_path / "s.journal"),
            ]
        )


def _two_recordings(n1=2400, n2=1300):
    from test_tune import two_recordings

    return two_recordings(n1=n1, n2=n2)


def test_a_searched_track_scores_every_look_back_on_the_same_test_windows():
    """SML2010's test segment is its second recording, whose first rows are look-back only: at L=720 it has 624 fewer
    windows than at L=96. A searched track scores every model on the windows the longest look-back has."""
    df = _two_recordings()
    data = {n: prepare("SML2010", n, frame=df) for n in (96, 336, 720)}
    lookbacks = data[96].lookbacks_with_windows(96)
    assert lookbacks == (96, 192, 336, 512, 720)
    assert data[96].n_windows("test", 96) - data[720].n_windows("test", 96) == 720 - 96
    for n, d in data.items():
        common = d.common_test(lookbacks)
        assert common.n_windows("test", 96) == data[720].n_windows("test", 96)
        # the same target rows: the first window's forecast starts where L=720's does
        assert common.borders["test"][0] + n == data[720].borders["test"][0] + 720
        assert common.borders["test"][1] == d.borders["test"][1]
        assert common.borders["train"] == d.borders["train"] and common.borders["val"] == d.borders["val"]
    assert data[96].borders["test"][0] == 2400  # the data it was cut from is left as it was
    # a split that borrows its look-back (7:1:2, ETT) already scores the same targets at every look-back
    ett = prepare("ETTh1", 96, frame=synthetic_ett(n_rows=3000))
    assert ett.common_test(ett.lookbacks_with_windows(96)) is ett
    # a look-back with no window in some split is not one of the track's choices
    short = prepare("SML2010", 96, frame=_two_recordings(n1=2400, n2=700))
    assert short.lookbacks_with_windows(96) == (96, 192, 336, 512)


def test_a_searched_bench_cell_is_scored_on_the_track_s_common_windows(tmp_path, monkeypatch):
    import json

    from mamba_forecast.bench import runner

    df = _two_recordings()
    monkeypatch.setattr(runner, "prepare", lambda name, n, data_dir=None: prepare(name, n, frame=df))
    table = tmp_path / "tuned.json"
    entry = {
        "input_size": "searched",
        "horizons": "all",
        "protocol": "converge",
        "settings": {"input_size": 192},
        "val_mse": 1.0,
        "trials": 5,
        "seed": 2023,
        "source": "test",
    }
    table.write_text(json.dumps({"Linear": {"SML2010": [entry]}}))
    cell = Cell("SML2010", "Linear", 96, 2023, epochs=1, input_size="searched", tuned_path=str(table))
    row = runner.run_cell(cell, device="cpu", progress=False, log=lambda *_: None)
    assert (row["lookback"], int(row["input_size"])) == ("searched", 192)
    assert int(row["n_test_windows"]) == prepare("SML2010", 720, frame=df).n_windows("test", 96)
    assert "windows every searched look-back has" in row["notes"]


def test_a_searched_look_back_with_no_window_at_this_horizon_says_how_to_choose_one(tmp_path, monkeypatch):
    """SML2010's search at H=96 may choose L=720, which leaves no test window at H=720 (the test recording has
    fewer than 1,440 rows): the cell stops before training and names the per-horizon search that fixes it."""
    import json

    from mamba_forecast.bench import runner

    df = _two_recordings(n1=2400, n2=1300)
    monkeypatch.setattr(runner, "prepare", lambda name, n, data_dir=None: prepare(name, n, frame=df))
    table = tmp_path / "tuned.json"
    table.write_text(json.dumps({"Linear": {"SML2010": [_searched_entry(input_size=720)]}}))
    cell = Cell("SML2010", "Linear", 720, 2023, epochs=1, input_size="searched", tuned_path=str(table))
    with pytest.raises(ValueError, match=r"no window.*--horizon 720 --per-horizon --input-size searched"):
        runner.run_cell(cell, device="cpu", progress=False, log=lambda *_: None)
    # a fixed look-back with no window keeps the plain message
    fixed = Cell("SML2010", "Linear", 720, 2023, epochs=1, input_size=720)
    with pytest.raises(ValueError, match="no window") as err:
        runner.run_cell(fixed, device="cpu", progress=False, log=lambda *_: None)
    assert "per-horizon" not in str(err.value)


def _searched_entry(**settings) -> dict:
    return {
        "input_size": "searched",
        "horizons": "all",
        "protocol": "converge",
        "settings": settings,
        "val_mse": 1.0,
        "trials": 5,
        "seed": 2023,
        "source": "test",
    }


def test_a_searched_cell_the_fixed_look_back_track_already_ran_takes_its_row(tmp_path, monkeypatch):
    """A searched-track cell whose search chose 96, with the L=96 track's settings, seed and test windows, is the
    L=96 cell: the runner takes that row (relabelled) instead of training the same function again. Anything
    different (settings, windows, --no-resume) trains."""
    import json

    from mamba_forecast.bench import runner

    frames = {"ETTh1": synthetic_ett(n_rows=3000), "SML2010": _two_recordings()}
    monkeypatch.setattr(runner, "prepare", lambda name, n, data_dir=None: prepare(name, n, frame=frames[name]))
    table = tmp_path / "tuned.json"
    table.write_text(json.dumps({"Linear": {d: [_searched_entry(input_size=96)] for d in frames}}))
    out = tmp_path / "r.csv"
    quiet = dict(device="cpu", progress=False, log=lambda *_: None)

    def cell(dataset, input_size, path=table):
        return Cell(dataset, "Linear", 96, 2023, epochs=2, input_size=input_size, tuned_path=str(path))

    for d in frames:
        runner.run_cells([cell(d, 96)], out, **quiet)
    fixed = {r["dataset"]: r for r in read_results(out)}
    # what reuse stands on: trained again, the searched cell gives the very same numbers on this device
    trained = runner.run_cell(cell("ETTh1", "searched"), **quiet)
    assert (trained["mse"], trained["val_mse"]) == (fixed["ETTh1"]["mse"], fixed["ETTh1"]["val_mse"])

    calls = []
    real_run_cell = runner.run_cell
    monkeypatch.setattr(runner, "run_cell", lambda c, **kw: calls.append(c.dataset) or real_run_cell(c, **kw))
    [row] = runner.run_cells([cell("ETTh1", "searched")], out, **quiet)
    assert calls == []
    assert (row["lookback"], row["preset"], row["input_size"]) == ("searched", "tuned", "96")
    assert (row["mse"], row["epochs_run"], row["timestamp"]) == (
        fixed["ETTh1"]["mse"],
        fixed["ETTh1"]["epochs_run"],
        fixed["ETTh1"]["timestamp"],
    )
    assert "the L=96 track's row" in row["notes"] and "not rerun" in row["notes"]
    assert runner.row_key(read_results(out)[-1]) == cell("ETTh1", "searched").key()
    assert runner.run_cells([cell("ETTh1", "searched")], out, **quiet) == []  # and a rerun skips it as done

    # SML2010's searched track is scored on fewer windows than its L=96 track: trained
    runner.run_cells([cell("SML2010", "searched")], out, **quiet)
    assert calls == ["SML2010"]
    # other settings than the L=96 cell's: trained
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"Linear": {"ETTh1": [_searched_entry(input_size=96, learning_rate=3e-3)]}}))
    runner.run_cells([cell("ETTh1", 96, other), cell("ETTh1", "searched", other)], tmp_path / "r2.csv", **quiet)
    assert calls == ["SML2010", "ETTh1", "ETTh1"]
    # --no-resume reruns everything
    runner.run_cells([cell("ETTh1", "searched")], out, resume=False, **quiet)
    assert calls == ["SML2010", "ETTh1", "ETTh1", "ETTh1"]
