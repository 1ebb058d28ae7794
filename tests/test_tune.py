"""Issue #13's protocol fixes and the validation-only tuner (fast, CPU)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import MODEL_NAMES, synthetic_ett
from mamba_forecast.bench import get_preset, prepare
from mamba_forecast.bench.models import LinearBaseline, build_model, forward, uses_calendar_tokens
from mamba_forecast.bench.protocol import ProtocolData
from mamba_forecast.bench.records import append_csv_row, read_rows
from mamba_forecast.bench.runner import COLUMNS, SAMPLE_COLUMNS, append_row, read_results
from mamba_forecast.bench.train import epoch_lr, fit_and_test, train
from mamba_forecast.bench_commands import _overrides
from mamba_forecast.datasets import recording_break, split_borders

optuna = pytest.importorskip("optuna")


def two_recordings(n1=700, n2=400, n_series=3, gap_days=7) -> pd.DataFrame:
    """A 15-minute frame of two recordings with a gap between them, like SML2010's two files."""
    first = pd.date_range("2012-03-13", periods=n1, freq="15min")
    second = pd.date_range(first[-1] + pd.Timedelta(days=gap_days), periods=n2, freq="15min")
    rng = np.random.default_rng(0)
    cols = {"date": first.append(second)}
    for j in range(n_series):
        cols[f"s{j}"] = rng.standard_normal(n1 + n2).cumsum()
    return pd.DataFrame(cols)


def test_recordings_split_never_puts_the_gap_inside_a_segment():
    df = two_recordings()
    start = recording_break(df["date"])
    assert start == 700
    b = split_borders("SML2010", len(df), 96, recording_start=start)
    assert b["train"] == (0, 490) and b["val"] == (490 - 96, 700) and b["test"] == (700, 1100)
    for lo, hi in b.values():
        assert not (lo < start < hi), "a segment straddles the join of the two recordings"
    steps = df["date"].diff().dt.total_seconds().to_numpy()
    data = prepare("SML2010", 96, frame=df)
    assert data.borders == b
    for lo, hi in data.borders.values():  # every consecutive pair inside a segment is 15 minutes apart
        assert set(steps[lo + 1 : hi]) == {900.0}
    with pytest.raises(ValueError, match="recording_start"):
        split_borders("SML2010", len(df), 96)


@pytest.mark.integration  # reads the SML2010 files from the benchmark data folder
def test_sml2010_has_windows_in_every_split_at_every_horizon():
    root = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
    if not (root / "NEW-DATA-1.T15.txt").exists():
        pytest.skip("SML2010 files not found")
    data = prepare("SML2010", 96, data_dir=root)
    for h in (96, 192, 336, 720):
        data.check_windows(h)  # raises on an empty split
        assert data.n_windows("val", h) > 0
    assert data.borders["test"][0] == 2764  # the second file


def test_empty_validation_split_is_a_clear_error_before_training():
    data = prepare(
        "Exchange", 24, frame=synthetic_ett(n_rows=400).assign(date=pd.date_range("1990-01-01", periods=400, freq="D"))
    )
    assert data.n_windows("val", 60) == 0 < data.n_windows("train", 60)
    calls = []

    def fwd(m, x, xm):
        calls.append(1)
        return forward(m, x, xm, False)

    with pytest.raises(
        ValueError,
        match=r"Exchange: the val split has no window .*horizon=60 \(train 280 rows .*val 64 rows \(0 windows\)",
    ):
        fit_and_test(
            LinearBaseline(24, 60),
            data,
            60,
            forward_fn=fwd,
            epochs=1,
            batch_size=8,
            learning_rate=1e-3,
            progress=False,
            log=lambda *_: None,
        )
    assert calls == []


def test_every_model_gets_the_calendar_tokens():
    assert not uses_calendar_tokens("Linear")
    for name in MODEL_NAMES:
        assert uses_calendar_tokens(name)
        preset = get_preset(name, "ETTh1", 96)
        net = build_model(
            name,
            preset.__class__(**{**preset.as_dict(), "d_model": 16, "d_ff": 16, "d_state": 2, "input_size": 32}),
            3,
            32,
            8,
        )
        assert net.hist_exog_size == 4
        out = net(torch.randn(2, 32, 3), torch.rand(2, 32, 4) - 0.5, None, None)
        assert out.shape == (2, 8, 3)


def test_cosine_schedule_and_adamw_run():
    assert epoch_lr(1e-3, 1, 10, "cosine") == pytest.approx(1e-3)
    assert epoch_lr(1e-3, 6, 10, "cosine") == pytest.approx(5e-4)
    assert epoch_lr(1e-3, 7, 10, "constant") == 1e-3
    with pytest.raises(ValueError, match="lradj"):
        epoch_lr(1e-3, 1, 10, "step")
    data = prepare("ETTh1", 24, frame=synthetic_ett())
    res = train(
        LinearBaseline(24, 12),
        data,
        12,
        forward_fn=lambda m, x, xm: forward(m, x, xm, False),
        epochs=2,
        batch_size=32,
        learning_rate=1e-2,
        optimizer="adamw",
        lradj="cosine",
        progress=False,
        log=lambda *_: None,
    )
    assert [h["lr"] for h in res.history] == [pytest.approx(1e-2), pytest.approx(5e-3)]


def test_tune_never_reads_the_test_split_and_writes_a_sourced_preset(tmp_path, monkeypatch):
    from mamba_forecast.bench.tune import tune

    read = []
    original = ProtocolData.segment

    def guarded(self, split):
        read.append(split)
        if split == "test":
            raise AssertionError("the search read the test split")
        return original(self, split)

    monkeypatch.setattr(ProtocolData, "segment", guarded)
    presets = tmp_path / "tuned.json"
    log = tmp_path / "trials.csv"
    entry = tune(
        "Linear",
        "ETTh1",
        12,
        trials=3,
        seed=7,
        frame=synthetic_ett(),
        input_size=24,
        epochs=2,
        presets_file=presets,
        trials_log=log,
        protocol="official",
        log=lambda *_: None,
    )
    assert set(read) == {"train", "val"}
    table = json.loads(presets.read_text())
    (saved,) = table["Linear"]["ETTh1"]
    assert saved == json.loads(json.dumps(entry))
    assert (saved["input_size"], saved["tuned_horizon"], saved["horizons"]) == (24, 12, "all")
    assert saved["source"].startswith("tuned on validation, 3 trials, seed 7")
    assert saved["trials"] == 3 and saved["completed"] + saved["pruned"] == 3
    assert 0 < saved["val_mse"] < 2 and 1e-5 <= saved["settings"]["learning_rate"] <= 3e-3
    trials = pd.read_csv(log)
    assert len(trials) == 3 and trials["val_mse"].min() == pytest.approx(saved["val_mse"], rel=1e-5)
    # the tuned table feeds get_preset at the look-back it was tuned at; the official table stays available
    tuned = get_preset("Linear", "ETTh1", 96, "tuned", tuned_path=presets, input_size=24)
    assert tuned.table == "tuned" and tuned.learning_rate == saved["settings"]["learning_rate"]
    assert tuned.epochs == 2 and tuned.source == saved["source"]
    official = get_preset("Linear", "ETTh1", 96, "official", tuned_path=presets, input_size=24)
    assert official.table == "official" and official.learning_rate == 1e-3
    assert get_preset("SMamba", "ETTh1", 96, "tuned", tuned_path=presets, input_size=24).table == "official"


def test_tuned_model_arguments_reach_the_network(tmp_path):
    presets = tmp_path / "tuned.json"
    presets.write_text(
        json.dumps(
            {
                "FMamba": {
                    "ETTh1": [
                        {
                            "settings": {
                                "learning_rate": 3e-4,
                                "position": "none",
                                "kernel": "performer",
                                "epochs": 10,
                            },
                            "input_size": 96,
                            "tuned_horizon": 96,
                            "horizons": "all",
                            "source": "tuned on validation, 8 trials, seed 2023",
                            "val_mse": 0.5,
                        }
                    ]
                }
            }
        )
    )
    p = get_preset("FMamba", "ETTh1", 336, "tuned", tuned_path=presets)
    assert p.extra == {"position": "none", "kernel": "performer"} and p.learning_rate == 3e-4
    assert p.d_model == get_preset("FMamba", "ETTh1", 336).d_model  # sizes from the horizon's official row
    net = build_model("FMamba", p, 7, 96, 336)
    assert net.position == "none" and net.kernel == "performer"


def test_tune_rejects_bad_arguments():
    from mamba_forecast.bench.tune import tune

    with pytest.raises(ValueError, match="model must be one of"):
        tune("Prophet", "ETTh1", trials=1, presets_file=None)
    with pytest.raises(ValueError, match="trials must be a positive integer"):
        tune("SMamba", "ETTh1", trials=0, presets_file=None)


def test_tune_refuses_an_unwritable_output_before_training(tmp_path, monkeypatch):
    import mamba_forecast.bench.tune as tune_module

    read_only = tmp_path / "site-packages"
    read_only.mkdir()

    def access(path, mode):  # the tests may run as root, which chmod cannot stop
        return not Path(path).is_relative_to(read_only)

    def no_training(*args, **kwargs):
        raise AssertionError("the search started before its outputs were checked")

    monkeypatch.setattr(tune_module.os, "access", access)
    monkeypatch.setattr(tune_module, "prepare", no_training)
    with pytest.raises(ValueError, match=r"presets_file \(--presets-file\): cannot write .*pass --presets-file"):
        tune_module.tune("Linear", "ETTh1", trials=1, presets_file=read_only / "tuned.json")
    with pytest.raises(ValueError, match=r"trials_log \(--trials-log\)"):  # a folder still to be made: its parent
        tune_module.tune("Linear", "ETTh1", trials=1, presets_file=None, trials_log=read_only / "new" / "t.csv")
    with pytest.raises(AssertionError, match="before its outputs were checked"):  # writable: the search goes on
        tune_module.tune(
            "Linear",
            "ETTh1",
            trials=1,
            presets_file=tmp_path / "tuned.json",
            trials_log=tmp_path / "new" / "t.csv",
            study_file=tmp_path / "s.journal",
        )


def test_set_overrides_parse_booleans_and_numbers():
    assert _overrides(["use_norm=False,d_model=64", "learning_rate=1e-4,lradj=cosine"]) == {
        "use_norm": False,
        "d_model": 64,
        "learning_rate": 1e-4,
        "lradj": "cosine",
    }


def test_results_csv_gains_new_columns_without_misaligning_old_rows(tmp_path):
    path = tmp_path / "r.csv"
    old = ["dataset", "model", "mse"]
    path.write_text(",".join(old) + "\nETTh1,SMamba,0.39\n")
    append_row(path, {"dataset": "ETTh2", "model": "FMamba", "mse": "0.30", "preset": "tuned"})
    rows = read_results(path)
    assert path.read_text().splitlines()[0].split(",") == COLUMNS
    assert [(r["dataset"], r["mse"], r["preset"]) for r in rows] == [
        ("ETTh1", "0.39", "official"),
        ("ETTh2", "0.30", "tuned"),
    ]


def test_tune_logs_pruned_trials_and_resumes_a_cut_off_search(tmp_path, monkeypatch):
    from mamba_forecast.bench.tune import tune

    calls = {"n": 0}

    def prune_every_other(self):  # trials 1, 3, ... are pruned after their first epoch
        calls["n"] += 1
        return self.number % 2 == 1

    monkeypatch.setattr(optuna.trial.Trial, "should_prune", prune_every_other)
    kw = dict(
        frame=synthetic_ett(),
        input_size=24,
        epochs=2,
        presets_file=tmp_path / "t.json",
        trials_log=tmp_path / "trials.csv",
        study_file=tmp_path / "study.journal",
        log=lambda *_: None,
    )
    first = tune("Linear", "ETTh1", 12, trials=2, seed=3, **kw)
    assert (first["completed"], first["pruned"], first["trials"]) == (1, 1, 2)
    log = pd.read_csv(tmp_path / "trials.csv")
    assert list(log["state"]) == ["complete", "pruned"] and log["epochs_run"].tolist() == [2, 1]
    assert log["input_size"].tolist() == [24, 24]  # the look-back is logged: searches at two L stay apart
    # asking for 4 trials on the same study runs only the 2 missing ones
    second = tune("Linear", "ETTh1", 12, trials=4, seed=3, **kw)
    assert (second["completed"], second["pruned"], second["trials"]) == (2, 2, 4)
    log = pd.read_csv(tmp_path / "trials.csv")
    assert log["trial"].tolist() == [0, 1, 2, 3]
    assert log["settings"].nunique() == 4  # the resumed search did not repeat the first proposals
    assert second["source"].startswith("tuned on validation, 4 trials, seed 3")


def test_bench_runs_tuned_and_official_presets_as_separate_cells(tmp_path, monkeypatch):
    from mamba_forecast.bench import presets
    from mamba_forecast.cli import main

    data = tmp_path / "data"
    data.mkdir()
    synthetic_ett().to_csv(data / "ETTh1.csv", index=False)
    table = tmp_path / "tuned.json"
    table.write_text(
        json.dumps(
            {
                "Linear": {
                    "ETTh1": [
                        {
                            "settings": {"learning_rate": 5e-3, "optimizer": "adamw", "lradj": "cosine"},
                            "input_size": 24,
                            "tuned_horizon": 12,
                            "horizons": "all",
                            "source": "tuned on validation, 8 trials, seed 2023",
                            "val_mse": 0.5,
                        }
                    ]
                }
            }
        )
    )
    monkeypatch.setattr(presets, "TUNED_PRESETS_FILE", table)
    out = tmp_path / "results.csv"
    args = [
        "bench",
        "--dataset",
        "ETTh1",
        "--model",
        "Linear",
        "--horizon",
        "12",
        "--input-size",
        "24",
        "--epochs",
        "1",
        "--data-dir",
        str(data),
        "--out",
        str(out),
        "--no-progress",
        "--protocol",
        "official",
    ]
    main(args)  # default: tuned
    main(args + ["--preset", "official"])
    main(args)  # the tuned cell is done: skipped
    rows = read_results(out)
    assert [(r["preset"], r["learning_rate"], r["optimizer"], r["lradj"]) for r in rows] == [
        ("tuned", "0.005", "adamw", "cosine"),
        ("official", "0.001", "adam", "type1"),
    ]
    assert all(float(r["val_mse"]) > 0 for r in rows)
    assert [r["preset"] for r in read_rows(tmp_path / "samples.csv")] == ["tuned", "official"]  # kept apart


def test_bench_reads_the_tuned_table_that_tune_wrote_elsewhere(tmp_path, capsys):
    from mamba_forecast.cli import main

    data = tmp_path / "data"
    data.mkdir()
    synthetic_ett().to_csv(data / "ETTh1.csv", index=False)
    mine = tmp_path / "mine" / "tuned.json"
    common = [
        "--dataset",
        "ETTh1",
        "--model",
        "Linear",
        "--horizon",
        "12",
        "--input-size",
        "24",
        "--epochs",
        "1",
        "--data-dir",
        str(data),
    ]
    main(
        [
            "tune",
            *common,
            "--trials",
            "2",
            "--presets-file",
            str(mine),
            "--trials-log",
            str(tmp_path / "t.csv"),
            "--study-file",
            str(tmp_path / "s.journal"),
            "--device",
            "cpu",
        ]
    )
    tuned_lr = json.loads(mine.read_text())["Linear"]["ETTh1"][0]["settings"]["learning_rate"]
    out = tmp_path / "results.csv"
    main(["bench", *common, "--presets-file", str(mine), "--out", str(out), "--no-progress"])
    (row,) = read_results(out)
    assert row["preset"] == "tuned" and float(row["learning_rate"]) == pytest.approx(tuned_lr)
    with pytest.raises(SystemExit):  # a mistyped table is refused, not read as empty
        main(["bench", *common, "--presets-file", str(tmp_path / "typo.json"), "--out", str(out)])
    assert "--presets-file: no such file" in capsys.readouterr().err


def test_tune_jobs_split_the_trials_between_processes_sharing_the_study(tmp_path):
    from mamba_forecast.bench.tune import tune

    kw = dict(
        frame=synthetic_ett(),
        input_size=24,
        epochs=1,
        presets_file=tmp_path / "t.json",
        trials_log=tmp_path / "trials.csv",
        study_file=tmp_path / "study.journal",
        log=lambda *_: None,
    )
    with pytest.raises(ValueError, match="jobs > 1 needs study_file"):
        tune("Linear", "ETTh1", 12, trials=3, jobs=2, **{**kw, "study_file": None})
    entry = tune("Linear", "ETTh1", 12, trials=3, seed=5, jobs=2, **kw)
    assert entry["trials"] == 3 and entry["source"].startswith("tuned on validation, 3 trials, seed 5")
    log = pd.read_csv(tmp_path / "trials.csv")
    assert len(log) == 3 and log["settings"].nunique() == 3  # the two workers did not propose the same settings
    table = json.loads((tmp_path / "t.json").read_text())
    assert table["Linear"]["ETTh1"][0]["val_mse"] == pytest.approx(log["val_mse"].min(), abs=1e-6)
    # a second call finds the study complete: nothing runs again
    again = tune("Linear", "ETTh1", 12, trials=3, seed=5, jobs=2, **kw)
    assert again["trials"] == 3 and len(pd.read_csv(tmp_path / "trials.csv")) == 3


def test_a_tune_worker_claims_trials_until_the_study_has_enough(tmp_path):
    """Workers take trials one at a time from the shared study, not a fixed share each: a worker left alone runs
    all that remain, a trial another worker is running counts, and one left RUNNING by a killed search does not."""
    from mamba_forecast.bench.tune import tune

    journal = tmp_path / "study.journal"
    kw = dict(
        frame=synthetic_ett(),
        input_size=24,
        epochs=1,
        presets_file=None,
        study_file=journal,
        seed=5,
        protocol="official",
        log=lambda *_: None,
    )
    study = optuna.create_study(
        study_name="Linear-ETTh1-L24-H12-s5-e1",
        direction="minimize",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal))),
    )
    running = study.ask()  # another worker's trial in progress (or a killed one's)

    def finished():
        return sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))

    tune("Linear", "ETTh1", 12, trials=3, _worker=(0, 0, frozenset()), **kw)  # the running trial counts
    assert finished() == 2
    tune("Linear", "ETTh1", 12, trials=4, _worker=(1, 2, frozenset({running.number})), **kw)  # stale: not counted
    assert finished() == 4 and study.trials[running.number].state == optuna.trial.TrialState.RUNNING


def test_merge_results_adds_only_what_is_new(tmp_path):
    """benchmarks/merge_results.py: cells and their test windows by key, newer tuned entries, journals."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "merge_results.py"
    spec = importlib.util.spec_from_file_location("merge_results", path)
    mr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mr)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    root, src = tmp_path / "root", tmp_path / "src"
    (root / "results").mkdir(parents=True)
    src.mkdir()
    cell = dict(
        dataset="ETTh1",
        model="SMamba",
        input_size=96,
        horizon=96,
        seed=2023,
        via="harness",
        max_epochs=10,
        preset="tuned",
        mse="0.39",
    )
    append_row(root / "results" / "bench_results.csv", cell)
    append_row(src / "bench_results.csv", {**cell, "mse": "0.50"})  # same cell measured elsewhere: kept as is
    append_row(src / "bench_results.csv", {**cell, "horizon": 192, "mse": "0.44"})
    # a run of the cell under --set is another run, merged beside the plain one
    append_row(src / "bench_results.csv", {**cell, "mse": "0.41", "notes": "overrides learning_rate=3e-05"})
    window = dict(variate="OT", history="0.1 0.2", truth="0.3", forecast="0.25")
    append_csv_row(root / "results" / "samples.csv", {**cell, **window}, SAMPLE_COLUMNS)
    append_csv_row(src / "samples.csv", {**cell, **window, "forecast": "0.9"}, SAMPLE_COLUMNS)
    append_csv_row(src / "samples.csv", {**cell, **window, "horizon": 192}, SAMPLE_COLUMNS)
    other = {**cell, **window, "dataset": "ETTh2", "model": "TSMixer", "forecast": "0.5"}
    append_csv_row(src / "samples.csv", other, SAMPLE_COLUMNS)
    assert mr.main([str(src), "--root", str(root)]) == 0  # into the tree's results/
    rows = read_results(root / "results" / "bench_results.csv")
    assert [(r["horizon"], r["mse"]) for r in rows] == [("96", "0.39"), ("192", "0.44"), ("96", "0.41")]
    # the repository keeps the windows the report draws, one per dataset (the one already here where as good)
    samples = read_rows(root / "results" / "samples.csv")
    assert [(r["dataset"], r["horizon"], r["forecast"]) for r in samples] == [
        ("ETTh1", "96", "0.25"),
        ("ETTh2", "96", "0.5"),
    ]

    slot = {"input_size": 96, "tuned_horizon": 96, "horizons": "all"}
    old = {"settings": {"learning_rate": 1e-3}, "val_mse": 0.7, "timestamp": "2026-01-01T00:00:00+00:00", **slot}
    new = {**old, "val_mse": 0.6, "timestamp": "2026-02-01T00:00:00+00:00"}
    (root / "t.json").write_text(json.dumps({"SMamba": {"ETTh1": [new]}}))
    (src / "t.json").write_text(json.dumps({"SMamba": {"ETTh1": [old, {**old, "input_size": 512}], "ETTh2": [old]}}))
    # the older ETTh1 entry at L=96 loses; the one at L=512 is another slot, kept beside it
    assert mr.merge_tuned(src / "t.json", root / "t.json") == [
        "SMamba/ETTh1/L512/all/official",
        "SMamba/ETTh2/L96/all/official",
    ]
    merged = json.loads((root / "t.json").read_text())["SMamba"]["ETTh1"]
    assert [(e["input_size"], e["val_mse"]) for e in merged] == [(96, 0.6), (512, 0.7)]
    # a table in the older form (one entry per dataset) is read as an entry for all horizons at its look-back
    (src / "old.json").write_text(
        json.dumps(
            {
                "SMamba": {
                    "ETTh1": {
                        "settings": {"learning_rate": 2e-3},
                        "input_size": 96,
                        "horizon": 96,
                        "val_mse": 0.5,
                        "timestamp": "2026-03-01T00:00:00+00:00",
                    }
                }
            }
        )
    )
    assert mr.merge_tuned(src / "old.json", root / "t.json") == ["SMamba/ETTh1/L96/all/official"]
    merged = json.loads((root / "t.json").read_text())["SMamba"]["ETTh1"]
    assert (merged[0]["val_mse"], merged[0]["tuned_horizon"], merged[0]["horizons"]) == (0.5, 96, "all")

    def study(path, name, values):
        s = optuna.create_study(
            study_name=name, storage=JournalStorage(JournalFileBackend(str(path))), load_if_exists=True
        )
        for v in values:
            s.enqueue_trial({"x": v})
        s.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=len(values))

    mine, theirs = root / "j.journal", src / "j.journal"
    study(mine, "a", [0.1])
    theirs.write_bytes(mine.read_bytes())
    study(theirs, "a", [0.2])  # the same study, carried on elsewhere: the journal is extended
    assert mr.merge_journal(theirs, mine) == ["(journal extended)"] and mine.read_bytes() == theirs.read_bytes()
    other = tmp_path / "other.journal"
    study(other, "b", [0.3])
    study(other, "a", [0.9])  # a different history of study "a": reported, not merged
    notes = mr.merge_journal(other, mine)
    assert "copied b" in notes and any(n.startswith("NOT merged") and n.endswith(": a") for n in notes)
    loaded = optuna.load_study(study_name="b", storage=JournalStorage(JournalFileBackend(str(mine))))
    assert [t.params["x"] for t in loaded.trials] == [0.3]
    study(other, "b", [0.4])  # study "b" carried on where it came from: the copy here catches up
    assert "updated b" in mr.merge_journal(other, mine)
    loaded = optuna.load_study(study_name="b", storage=JournalStorage(JournalFileBackend(str(mine))))
    assert [t.params["x"] for t in loaded.trials] == [0.3, 0.4]


@pytest.mark.integration  # about two minutes on a 2-core CPU: spawned tune workers, six bench processes
def test_gpu_grid_script_runs_a_chain_end_to_end_on_a_cpu(tmp_path):
    """benchmarks/gpu_grid.sh in a copy of the tree: one chain (a 2-trial search split over 2 processes, then the
    four horizons and two extra seeds), everything packed into grid.tar.gz."""
    import os
    import shutil
    import subprocess
    import sys
    import tarfile

    repo = Path(__file__).resolve().parents[1]
    data = repo.parent / "shared" / "datasets"
    if not (data / "NEW-DATA-1.T15.txt").exists():
        pytest.skip("SML2010 files not found")
    tree = tmp_path / "tree"
    shutil.copytree(
        repo / "mamba_forecast", tree / "mamba_forecast", ignore=shutil.ignore_patterns("__pycache__", "*.lock")
    )
    shutil.copytree(repo / "benchmarks", tree / "benchmarks", ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "results").mkdir()
    for name in ("bench_results.csv", "tuning_trials.csv", "tuning_studies.journal"):
        shutil.copy(repo / "results" / name, tree / "results" / name)
    out = tmp_path / "out"
    env = {
        **os.environ,
        "DEVICE": "cpu",
        "BUDGET_S": "500",
        "TRIALS": "2",
        "GPU_TESTS": "0",
        "OUT": str(out),
        "EXTRA": "--max-train-batches 2 --epochs 1",
        "MAMBA_FORECAST_DATA": str(data),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_grid.sh", "tsm2-SML2010"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "chain tsm2-SML2010 done (rc 0)" in proc.stdout
    unpacked = tmp_path / "unpacked"
    with tarfile.open(out / "grid.tar.gz") as tar:
        tar.extractall(unpacked)
    new = [
        r
        for r in read_results(unpacked / "bench_results.csv")
        if r["model"] == "TSM2" and r["dataset"] == "SML2010" and r["max_epochs"] == "1"
    ]
    assert sorted((int(r["horizon"]), int(r["seed"])) for r in new) == [
        (96, 2023),
        (96, 2024),
        (96, 2025),
        (192, 2023),
        (336, 2023),
        (720, 2023),
    ]
    assert all(r["preset"] == "tuned" and r["input_size"] == "96" for r in new)
    (entry,) = [
        e
        for e in json.loads((unpacked / "tuned_presets.json").read_text())["TSM2"]["SML2010"]
        if e["settings"]["epochs"] == 1
    ]
    assert entry["trials"] == 2 and (entry["input_size"], entry["horizons"]) == (96, "all")
    windows = [r for r in read_rows(unpacked / "samples.csv") if r["max_epochs"] == "1"]
    assert sorted((int(r["horizon"]), int(r["seed"])) for r in windows) == sorted(
        (int(r["horizon"]), int(r["seed"])) for r in new
    )


def test_a_search_at_another_input_size_keeps_the_entry_tuned_at_the_first(tmp_path):
    """`tune` at L=48 adds an entry beside the one tuned at L=24 (it used to overwrite it, keyed by model and
    dataset only), and `--per-horizon` adds one for its horizon only, which wins there over the all-horizons one."""
    from mamba_forecast.cli import main

    data = tmp_path / "data"
    data.mkdir()
    synthetic_ett().to_csv(data / "ETTh1.csv", index=False)
    table = tmp_path / "tuned.json"
    common = [
        "--dataset",
        "ETTh1",
        "--model",
        "Linear",
        "--horizon",
        "12",
        "--epochs",
        "1",
        "--trials",
        "1",
        "--data-dir",
        str(data),
        "--device",
        "cpu",
        "--presets-file",
        str(table),
        "--protocol",
        "official",
        "--trials-log",
        str(tmp_path / "t.csv"),
        "--study-file",
        str(tmp_path / "s.journal"),
    ]
    main(["tune", *common, "--input-size", "24", "--seed", "1"])
    main(["tune", *common, "--input-size", "48", "--seed", "2"])
    entries = json.loads(table.read_text())["Linear"]["ETTh1"]
    assert [(e["input_size"], e["seed"], e["horizons"]) for e in entries] == [(24, 1, "all"), (48, 2, "all")]
    main(["tune", *common, "--input-size", "24", "--seed", "3", "--per-horizon"])
    entries = json.loads(table.read_text())["Linear"]["ETTh1"]
    assert [(e["input_size"], e["seed"], e["horizons"]) for e in entries] == [
        (24, 1, "all"),
        (24, 3, [12]),
        (48, 2, "all"),
    ]
    lr = {e["seed"]: e["settings"]["learning_rate"] for e in entries}
    at = {h: get_preset("Linear", "ETTh1", h, "tuned", tuned_path=table, input_size=24) for h in (12, 24)}
    assert at[12].learning_rate == lr[3] and at[24].learning_rate == lr[1]  # the per-horizon entry wins at H=12
    assert get_preset("Linear", "ETTh1", 12, "tuned", tuned_path=table, input_size=48).learning_rate == lr[2]


def test_bench_at_an_input_size_nothing_was_tuned_at_runs_the_official_row(tmp_path):
    """A table tuned at L=24 (in the older one-entry form, as the package shipped it): `bench --input-size 48`
    runs the official row and says so in the preset column; at L=24 the tuned entry applies."""
    from mamba_forecast.cli import main

    data = tmp_path / "data"
    data.mkdir()
    synthetic_ett().to_csv(data / "ETTh1.csv", index=False)
    table = tmp_path / "tuned.json"
    table.write_text(
        json.dumps(
            {
                "Linear": {
                    "ETTh1": {
                        "settings": {"learning_rate": 5e-3, "optimizer": "adamw", "lradj": "cosine"},
                        "input_size": 24,
                        "horizon": 12,
                        "source": "tuned on validation, 8 trials, seed 2023",
                        "val_mse": 0.5,
                    }
                }
            }
        )
    )
    out = tmp_path / "r.csv"
    for input_size in ("48", "24"):
        main(
            [
                "bench",
                "--dataset",
                "ETTh1",
                "--model",
                "Linear",
                "--horizon",
                "12",
                "--input-size",
                input_size,
                "--epochs",
                "1",
                "--data-dir",
                str(data),
                "--presets-file",
                str(table),
                "--out",
                str(out),
                "--no-progress",
                "--device",
                "cpu",
                "--protocol",
                "official",
            ]
        )
    assert [(r["input_size"], r["preset"], r["learning_rate"]) for r in read_results(out)] == [
        ("48", "official", "0.001"),
        ("24", "tuned", "0.005"),
    ]


def test_the_shipped_table_says_what_each_entry_was_tuned_for():
    """Every shipped entry of the official protocol was tuned at L=96, H=96 and is applied at every horizon of L=96
    only: TSM2's default look-back (512) gets the official row. Those of the converge protocol are the searched
    look-back track's: keyed "searched", each chose its look-back from LOOKBACKS on validation, one trial per
    look-back, at H=96 for every horizon, or at the one horizon where the H=96 choice has no window."""
    from mamba_forecast.bench.presets import TUNED_PRESETS_FILE, read_tuned
    from mamba_forecast.bench.protocol import LOOKBACKS

    raw = json.loads(TUNED_PRESETS_FILE.read_text())
    assert all(isinstance(v, list) for per in raw.values() for v in per.values())  # stored in the keyed form
    entries = [e for per in read_tuned().values() for ds, v in per.items() for e in v if ds != "*"]
    official = [e for e in entries if e["protocol"] == "official"]
    assert len(official) == 20
    assert {(e["input_size"], e["tuned_horizon"], e["horizons"]) for e in official} == {(96, 96, "all")}
    searched = [e for e in entries if e["protocol"] == "converge"]
    assert len(official) + len(searched) == len(entries)
    for e in searched:
        assert e["settings"]["input_size"] in LOOKBACKS and 1 <= e["trials"] <= len(LOOKBACKS)
        assert e["input_size"] == "searched"
        assert (e["tuned_horizon"], e["horizons"]) in [(96, "all"), (e["tuned_horizon"], [e["tuned_horizon"]])]
    # a per-horizon look-back only where the one chosen at H=96 leaves no window at that horizon (SML2010, H=720)
    keyed = {
        (m, ds, str(e["horizons"])): e
        for m, per in read_tuned().items()
        for ds, v in per.items()
        for e in v
        if e["protocol"] == "converge"
    }
    for m, ds, horizons in [k for k in keyed if k[2] != "all"]:
        chosen = keyed[(m, ds, "all")]["settings"]["input_size"]
        horizon = keyed[(m, ds, horizons)]["tuned_horizon"]
        assert (ds, chosen, horizon) == ("SML2010", 720, 720)
    defaults = [e for per in read_tuned().values() for e in per.get("*", [])]  # one per model and protocol
    assert sorted((e["protocol"], e["input_size"]) for e in defaults) == [("converge", 96)] * 4 + [("official", 96)] * 4
    assert get_preset("TSM2", "ETTh1", 96, "tuned").table == "official"  # TSM2's default L = 512
    assert get_preset("TSM2", "ETTh1", 336, "tuned", input_size=96).table == "tuned"
