"""`mamba-forecast demo`: the first thing a new user runs."""

import gzip
import hashlib

import pandas as pd
import pytest

pytest.importorskip("neuralforecast")
pytest.importorskip("statsforecast")

from conftest import MODEL_NAMES
from mamba_forecast.cli import main
from mamba_forecast.datasets import load_demo_data, to_long
from mamba_forecast.demo import season_for

# SHA-256 of ETTh1.csv as published in the ETDataset repository (the benchmark copy the harness reads)
ETTH1_SHA256 = "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066"


def test_bundled_data_is_etth1():
    df = load_demo_data()
    assert df.shape == (17420, 8)
    assert list(df.columns) == ["date", "HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]


def test_bundled_data_is_unmodified():
    import importlib.resources as r

    raw = r.files("mamba_forecast.datasets").joinpath("data", "ETTh1.csv.gz").read_bytes()
    assert hashlib.sha256(gzip.decompress(raw)).hexdigest() == ETTH1_SHA256


def test_wide_and_long_inputs_give_the_same_frame():
    wide = load_demo_data().tail(50)
    long = to_long(wide)
    assert set(long.columns) == {"unique_id", "ds", "y"} and len(long) == 50 * 7
    again = to_long(long.rename(columns={}))
    pd.testing.assert_frame_equal(long, again)
    with pytest.raises(ValueError, match="date"):
        to_long(pd.DataFrame({"a": [1.0], "b": [2.0]}))


def test_demo_runs_end_to_end_and_ranks_every_model(tmp_path, capfd, monkeypatch):
    import logging

    # the test session quiets Lightning's loggers (conftest); here they start as a user's session has them
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.INFO)
    out = tmp_path / "out"
    code = main(
        [
            "demo",
            "--max-steps",
            "3",
            "--windows",
            "1",
            "--history",
            "300",
            "--horizon",
            "12",
            "--input-size",
            "48",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    table = pd.read_csv(out / "metrics.csv")
    assert set(table["model"]) == {"SeasonalNaive", "AutoETS", *MODEL_NAMES}
    assert list(table["rank"]) == list(range(1, len(MODEL_NAMES) + 3))
    assert table["mse"].is_monotonic_increasing and (table["mse"] > 0).all()
    assert (out / "forecast.png").stat().st_size > 10_000
    forecasts = pd.read_csv(out / "forecasts.csv")
    assert len(forecasts) == 7 * 12 and forecasts.notna().all().all()
    printed, errors = capfd.readouterr()
    assert "Held-out MSE / MAE" in printed and "ETTh1" in printed and "season 24 from the frequency" in printed
    # only the demo's own lines: no progress bars, seeds, GPU/TPU lines, model summaries or warnings
    assert errors == ""
    for noise in ("Seed set", "GPU available", "TPU", "max_steps", "Trainer", "| Name", "Warning", "it/s", "Epoch"):
        assert noise not in printed, noise
    assert len(printed.splitlines()) <= 25


@pytest.mark.parametrize(
    "freq, season",
    [("h", 24), ("15min", 96), ("D", 7), ("B", 5), ("W-SUN", 52), ("MS", 12), ("QE", 4), ("YE", 1), ("min", 60)],
)
def test_season_follows_the_frequency(freq, season):
    assert season_for(freq) == season


def test_demo_derives_the_season_of_weekly_data_unless_given(tmp_path, capsys):
    rows = 300
    weeks = pd.DataFrame(
        {
            "date": pd.date_range("2015-01-04", periods=rows, freq="W"),
            "a": load_demo_data()["OT"].to_numpy()[:rows],
            "b": load_demo_data()["HUFL"].to_numpy()[:rows],
        }
    )
    path = tmp_path / "weekly.csv"
    weeks.to_csv(path, index=False)
    args = [
        "demo",
        "--data",
        str(path),
        "--models",
        "SMamba",
        "--max-steps",
        "2",
        "--windows",
        "1",
        "--history",
        "200",
        "--horizon",
        "8",
        "--input-size",
        "16",
        "--out",
        str(tmp_path / "o"),
    ]
    main(args)
    assert "(freq W-SUN, season 52 from the frequency)" in capsys.readouterr().out
    main(args + ["--season", "4"])
    assert "(freq W-SUN, season 4)" in capsys.readouterr().out


def test_demo_reads_a_user_csv_and_rejects_a_short_one(tmp_path):
    wide = load_demo_data().tail(400)[["date", "OT", "HUFL"]]
    path = tmp_path / "mine.csv"
    wide.to_csv(path, index=False)
    main(
        [
            "demo",
            "--data",
            str(path),
            "--models",
            "SMamba",
            "--max-steps",
            "2",
            "--windows",
            "1",
            "--history",
            "200",
            "--horizon",
            "8",
            "--input-size",
            "24",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    table = pd.read_csv(tmp_path / "o" / "metrics.csv")
    assert set(table["model"]) == {"SeasonalNaive", "AutoETS", "SMamba"}
    with pytest.raises(SystemExit, match="shortest series"):
        main(["demo", "--data", str(path), "--input-size", "380", "--horizon", "24", "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()  # refused before the output folder is made
    with pytest.raises(SystemExit, match=r"^--data .*missing\.csv: .*No such file"):
        main(["demo", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "x")])
    (tmp_path / "bad.csv").write_text("when,value\n1,2\n")
    with pytest.raises(SystemExit, match=r"^--data .*bad\.csv: "):
        main(["demo", "--data", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


def test_demo_device_is_one_lightning_knows_never_silently_the_cpu(capsys):
    from mamba_forecast.cli import build_parser
    from mamba_forecast.demo import _ACCELERATORS

    assert build_parser().parse_args(["demo", "--device", "mps"]).device == "mps"
    assert _ACCELERATORS["mps"] == "mps" and _ACCELERATORS["cuda"] == "gpu"
    with pytest.raises(SystemExit, match="^2$"):  # argparse's usage error
        build_parser().parse_args(["demo", "--device", "tpu"])
    assert "invalid choice: 'tpu'" in capsys.readouterr().err
