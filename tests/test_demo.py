"""`mamba-forecast demo`: the first thing a new user runs."""

import gzip
import hashlib
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("neuralforecast")
pytest.importorskip("statsforecast")

from mamba_forecast.cli import main  # noqa: E402
from mamba_forecast.demo import load_demo_data, to_long  # noqa: E402

SHARED_ETTH1 = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "ETTh1.csv"


def test_bundled_data_is_etth1():
    df = load_demo_data()
    assert df.shape == (17420, 8)
    assert list(df.columns) == ["date", "HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]


@pytest.mark.skipif(not SHARED_ETTH1.exists(), reason="needs ../shared/datasets")
def test_bundled_data_is_unmodified():
    import importlib.resources as r

    raw = r.files("mamba_forecast.datasets").joinpath("data", "ETTh1.csv.gz").read_bytes()
    assert hashlib.sha256(gzip.decompress(raw)).digest() == hashlib.sha256(SHARED_ETTH1.read_bytes()).digest()


def test_wide_and_long_inputs_give_the_same_frame():
    wide = load_demo_data().tail(50)
    long = to_long(wide)
    assert set(long.columns) == {"unique_id", "ds", "y"} and len(long) == 50 * 7
    again = to_long(long.rename(columns={}))
    pd.testing.assert_frame_equal(long, again)
    with pytest.raises(ValueError, match="date"):
        to_long(pd.DataFrame({"a": [1.0], "b": [2.0]}))


def test_demo_runs_end_to_end_and_ranks_every_model(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["demo", "--max-steps", "3", "--windows", "1", "--history", "300", "--horizon", "12",
                 "--input-size", "48", "--out", str(out)])
    assert code == 0
    table = pd.read_csv(out / "metrics.csv")
    assert set(table["model"]) == {"SeasonalNaive", "AutoETS", "SMamba", "AttentionMamba", "FMamba", "TSM2"}
    assert list(table["rank"]) == list(range(1, 7))
    assert table["mse"].is_monotonic_increasing and (table["mse"] > 0).all()
    assert (out / "forecast.png").stat().st_size > 10_000
    forecasts = pd.read_csv(out / "forecasts.csv")
    assert len(forecasts) == 7 * 12 and forecasts.notna().all().all()
    printed = capsys.readouterr().out
    assert "Held-out MSE / MAE" in printed and "ETTh1" in printed


def test_demo_reads_a_user_csv_and_rejects_a_short_one(tmp_path):
    wide = load_demo_data().tail(400)[["date", "OT", "HUFL"]]
    path = tmp_path / "mine.csv"
    wide.to_csv(path, index=False)
    main(["demo", "--data", str(path), "--models", "SMamba", "--max-steps", "2", "--windows", "1",
          "--history", "200", "--horizon", "8", "--input-size", "24", "--out", str(tmp_path / "o")])
    table = pd.read_csv(tmp_path / "o" / "metrics.csv")
    assert set(table["model"]) == {"SeasonalNaive", "AutoETS", "SMamba"}
    with pytest.raises(SystemExit, match="shortest series"):
        main(["demo", "--data", str(path), "--input-size", "380", "--horizon", "24", "--out", str(tmp_path / "x")])
