"""Readers of the benchmark files and the protocol's split borders."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mamba_forecast.datasets import DATASETS, load_benchmark, n_windows, resolve_data_dir, split_borders

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def needs_data(test):
    """Reads the benchmark files in ../shared/datasets: integration tier (CI runs it with ../shared beside it)."""
    skip = pytest.mark.skipif(not SHARED.is_dir(), reason="benchmark files (../shared/datasets) not present")
    return pytest.mark.integration(skip(test))


EXPECTED = {  # rows, series, last column
    "ETTh1": (17420, 7, "OT"),
    "ETTh2": (17420, 7, "OT"),
    "ETTm1": (69680, 7, "OT"),
    "Weather": (52696, 21, "OT"),
    "Exchange": (7588, 8, "OT"),
    "SML2010": (2764 + 1373, 18, "Temperature_Comedor_Sensor"),
}


@needs_data
@pytest.mark.parametrize("name", list(EXPECTED))
def test_reader_parses_file(name):
    rows, n_series, last = EXPECTED[name]
    df = load_benchmark(name, SHARED)
    assert df.shape == (rows, n_series + 1)
    assert df.columns[0] == "date" and df.columns[-1] == last
    assert pd.api.types.is_datetime64_any_dtype(df["date"])
    assert df["date"].is_monotonic_increasing
    values = df.drop(columns="date").to_numpy()
    assert values.dtype == np.float64 and np.isfinite(values).all()
    assert DATASETS[name].n_series == n_series


@needs_data
def test_weather_quirks_survive():
    df = load_benchmark("weather", SHARED)  # case-insensitive name
    assert "\r" not in "".join(df.columns)  # CRLF stripped
    assert df["date"].duplicated().sum() == 1  # 2020-05-12 06:00 kept twice, as the official loader does
    assert any("\ufffd" in c for c in df.columns)  # the header's U+FFFD characters are read, not fatal


@needs_data
def test_sml2010_concatenates_both_files_in_time():
    df = load_benchmark("SML2010", SHARED)
    assert df["date"].iloc[0] == pd.Timestamp("2012-03-13 11:45")
    assert df["date"].iloc[-1] == pd.Timestamp("2012-05-02 07:30")
    assert "Day_Of_Week" not in df.columns and "Exterior_Entalpic_1" not in df.columns
    assert (df.drop(columns="date").std() > 0).all()


def test_ett_hour_borders_and_window_counts():
    b = split_borders("ETTh1", 17420, input_size=96)
    assert b == {"train": (0, 8640), "val": (8544, 11520), "test": (11424, 14400)}
    # test segment = 2880 target rows + 96 look-back rows; windows = 2880 + 96 - 96 - 96 + 1
    assert n_windows(b["test"], 96, 96) == 2785
    assert n_windows(b["train"], 96, 96) == 8640 - 96 - 96 + 1
    assert n_windows(b["test"], 96, 720) == 2880 + 96 - 96 - 720 + 1


def test_ett_minute_and_ratio_borders():
    assert split_borders("ETTm1", 69680, 96)["test"] == (46080 - 96, 57600)
    b = split_borders("Weather", 52696, 96)
    n_train, n_test = int(52696 * 0.7), int(52696 * 0.2)
    assert b["train"] == (0, n_train)
    assert b["val"] == (n_train - 96, 52696 - n_test)
    assert b["test"] == (52696 - n_test - 96, 52696)
    # every target row after the training segment is scored exactly once
    assert b["val"][1] - b["val"][0] - 96 + b["test"][1] - b["test"][0] - 96 == 52696 - n_train


def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMBA_FORECAST_DATA", str(tmp_path))
    assert resolve_data_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_data_dir(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="ETTh1.csv"):
        load_benchmark("ETTh1", tmp_path)
    with pytest.raises(KeyError, match="known"):
        load_benchmark("nope", tmp_path)


@needs_data
@pytest.mark.parametrize("name", ["Weather", "SML2010"])
def test_gzip_copies_read_the_same(name, tmp_path):
    """A folder of ``.gz`` copies (the small data folder sent to a GPU machine) gives the same frame."""
    import gzip
    import shutil

    for f in DATASETS[name].file_names:
        with open(SHARED / f, "rb") as src, gzip.open(tmp_path / f"{f}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
    pd.testing.assert_frame_equal(load_benchmark(name, tmp_path), load_benchmark(name, SHARED))


# ----------------------------------------------------------------------------------------------------
# the registry


def test_registry_holds_the_standard_sets_with_their_rules():
    from mamba_forecast.datasets import DATASETS, SPLIT_RULES, canonical_name, get_spec

    assert set(DATASETS) == {
        "ETTh1",
        "ETTh2",
        "ETTm1",
        "ETTm2",
        "Weather",
        "Exchange",
        "ECL",
        "Traffic",
        "ILI",
        "Solar-Energy",
        "PEMS03",
        "PEMS04",
        "PEMS07",
        "PEMS08",
        "SML2010",
    }
    for spec in DATASETS.values():
        assert spec.split in SPLIT_RULES and spec.files and spec.n_series > 0 and spec.n_rows > 0
        assert all(f.url and f.url.startswith("https://") for f in spec.files), spec.name
    assert [DATASETS[n].split for n in ("ETTh2", "ETTm2", "ECL", "Solar-Energy", "PEMS07", "SML2010")] == [
        "ett_hour",
        "ett_minute",
        "ratio",
        "ratio_solar",
        "pems",
        "recordings",
    ]
    assert get_spec("electricity").file_names == ("electricity.csv",)
    assert canonical_name("solar") == "Solar-Energy" and canonical_name("national_illness") == "ILI"
    assert DATASETS["PEMS04"].horizons == (12, 24, 48, 96) and not DATASETS["PEMS04"].calendar_tokens


@needs_data
def test_registry_checksums_are_the_verified_ones():
    """Every SHA-256 in the registry is the one of the checked copy (SHA256SUMS); sets without a checked copy
    carry none."""
    from mamba_forecast.datasets import DATASETS

    sums = dict(reversed(line.split()) for line in (SHARED / "SHA256SUMS").read_text().splitlines() if line)
    known = {f.name: f.sha256 for spec in DATASETS.values() for f in spec.files if f.sha256}
    assert known == sums


# ----------------------------------------------------------------------------------------------------
# where the data are


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """No $MAMBA_FORECAST_DATA, an empty user cache."""
    monkeypatch.delenv("MAMBA_FORECAST_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "mamba_forecast"


def test_default_data_dir_is_the_user_cache(clean_env, tmp_path, monkeypatch):
    from mamba_forecast.datasets import default_data_dir

    assert default_data_dir() == clean_env  # $XDG_CACHE_HOME/mamba_forecast
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".cache" / "mamba_forecast"
    monkeypatch.setenv("MAMBA_FORECAST_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path  # the variable wins over the cache
    (tmp_path / "data").mkdir()
    assert resolve_data_dir(tmp_path / "data") == tmp_path / "data"  # and --data-dir over the variable


def test_etth1_is_bundled_and_other_sets_say_how_to_get_them(clean_env):
    df = load_benchmark("ETTh1")  # nothing in the cache: the bundled copy
    assert df.shape == (17420, 8) and df.columns[-1] == "OT"
    with pytest.raises(FileNotFoundError, match="mamba-forecast data download ETTm2"):
        load_benchmark("ETTm2")
    clean_env.mkdir(parents=True)
    ett = _synthetic_ett(200, freq="15min")
    ett.to_csv(clean_env / "ETTm2.csv", index=False)
    assert load_benchmark("etTm2").shape == (200, 8)  # read from the cache


def test_the_library_never_assumes_the_development_layout():
    package = Path(__file__).resolve().parents[1] / "mamba_forecast"
    offenders = [
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if "shared/datasets" in p.read_text() or "shared/reference" in p.read_text()
    ]
    assert offenders == []


# ----------------------------------------------------------------------------------------------------
# readers of the other layouts


def _synthetic_ett(n_rows, freq="h", seed=0):
    rng = np.random.default_rng(seed)
    cols = {"date": pd.date_range("2016-07-01", periods=n_rows, freq=freq)}
    for name in ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"):
        cols[name] = rng.standard_normal(n_rows)
    return pd.DataFrame(cols)


def test_solar_reader_adds_dates_and_splits_as_dataset_solar(tmp_path):
    import gzip

    values = np.arange(30 * 3, dtype=float).reshape(30, 3) / 7
    with gzip.open(tmp_path / "solar_AL.txt.gz", "wt") as fh:  # as downloaded: the gzip is read in place
        fh.write("\n".join(",".join(f"{v:.4f}" for v in row) for row in values) + "\n")
    df = load_benchmark("Solar", tmp_path)
    assert list(df.columns) == ["date", "0", "1", "2"]
    assert df["date"].iloc[1] - df["date"].iloc[0] == pd.Timedelta("10min")
    np.testing.assert_allclose(df[["0", "1", "2"]].to_numpy(), values, atol=1e-4)
    # Dataset_Solar: validation is int(0.1 T) rows after train (7:1:2 by its own arithmetic)
    assert split_borders("Solar-Energy", 35, 4) == {"train": (0, 24), "val": (20, 27), "test": (24, 35)}


def test_pems_reader_takes_the_flow_channel_and_fills_gaps(tmp_path):
    from mamba_forecast.bench import prepare

    data = np.random.default_rng(0).uniform(1, 9, size=(50, 4, 3))
    data[3, 1, 0] = np.nan  # filled forward
    data[0, 2, 0] = np.nan  # first row: filled backward
    np.savez(tmp_path / "PEMS08.npz", data=data)
    df = load_benchmark("pems08", tmp_path)
    assert df.shape == (50, 5) and list(df.columns[1:]) == ["0", "1", "2", "3"]
    assert df["date"].iloc[1] - df["date"].iloc[0] == pd.Timedelta("5min")
    assert df.loc[3, "1"] == data[2, 1, 0] and df.loc[0, "2"] == data[1, 2, 0]
    np.testing.assert_array_equal(df.loc[5:, "0"], data[5:, 0, 0])
    # 6:2:2, each split cut on its own (no look-back borrowed), int((0.6 + 0.2) T) as Dataset_PEMS
    b = split_borders("PEMS08", 50, input_size=8)
    assert b == {"train": (0, 30), "val": (30, 40), "test": (40, 50)}
    assert split_borders("pems", 26209, 96)["test"] == (int(26209 * (0.6 + 0.2)), 26209)
    # the official pipeline feeds no calendar tokens for PEMS
    assert prepare("PEMS08", 8, data_dir=tmp_path).calendar_tokens is False
    assert prepare("ETTh1", 8, frame=_synthetic_ett(100)).calendar_tokens is True


# ----------------------------------------------------------------------------------------------------
# any CSV in the standard layout


def test_csv_file_is_read_target_last_and_split_7_1_2(tmp_path):
    from mamba_forecast.datasets import get_spec, register_csv

    path = tmp_path / "shop.csv"
    pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01", periods=100, freq="D"),
            "sales": np.arange(100.0),
            "price": np.ones(100),
            "visits": np.arange(100) * 2,
        }
    ).to_csv(path, index=False)
    name = register_csv(path, target="sales")
    assert name.startswith("shop.csv@") and get_spec(name).split == "ratio"
    df = load_benchmark(name)
    assert list(df.columns) == ["date", "price", "visits", "sales"] and df["visits"].dtype == np.float64
    assert split_borders(name, 100, 10) == {"train": (0, 70), "val": (60, 80), "test": (70, 100)}
    (tmp_path / "ETTh1").write_text(path.read_text())  # a file named like a registered set never shadows it
    assert register_csv(tmp_path / "ETTh1").startswith("ETTh1@") and get_spec("ETTh1").split == "ett_hour"


def test_two_csv_files_of_the_same_name_are_two_sets(tmp_path):
    """`a/sales.csv` and `b/sales.csv` get different names (the results CSV keys cells by them), a copy of a file
    the same name, and another target another name; the name stays readable."""
    from mamba_forecast.datasets import register_csv

    frame = pd.DataFrame(
        {"date": pd.date_range("2020-01-01", periods=50, freq="D"), "sales": np.arange(50.0), "visits": np.ones(50)}
    )
    for folder, scale in (("a", 1.0), ("b", 2.0), ("copy", 1.0)):
        (tmp_path / folder).mkdir()
        frame.assign(sales=frame["sales"] * scale).to_csv(tmp_path / folder / "sales.csv", index=False)
    a, b, copy = (register_csv(tmp_path / f / "sales.csv") for f in ("a", "b", "copy"))
    assert a != b and a == copy and a.startswith("sales.csv@") and b.startswith("sales.csv@")
    assert load_benchmark(a)["sales"].iloc[-1] == 49 and load_benchmark(b)["sales"].iloc[-1] == 98
    assert register_csv(tmp_path / "a" / "sales.csv", target="sales") not in (a, b)


@pytest.mark.parametrize(
    "content, target, match",
    [
        (None, None, "not found"),
        ("time,a\n2020-01-01,1\n2020-01-02,2\n", None, "no 'date' column"),
        ("date,a,shop\n2020-01-01,1,x\n2020-01-02,2,y\n", None, r"non-numeric columns \['shop'\]"),
        ("date,a,b\n2020-01-01,1,2\n2020-01-02,2,3\n", "c", "--target 'c' is not a column"),
        ("date,a,b\n2020-01-01,1,2\n2020-01-02,,3\n", None, r"NaN values in \['a'\]"),
        ("date,a\n2020-01-01,1\n", None, "1 rows"),
    ],
)
def test_csv_file_errors_name_the_problem(tmp_path, content, target, match):
    from mamba_forecast.datasets import read_csv_file

    path = tmp_path / "x.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        read_csv_file(path, target)


# ----------------------------------------------------------------------------------------------------
# mamba-forecast data download / list, against a local HTTP server (no network)


@pytest.fixture
def http_server(tmp_path):
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _point_registry(monkeypatch, name, *files):
    from dataclasses import replace

    from mamba_forecast.datasets import DATASETS

    monkeypatch.setitem(DATASETS, name, replace(DATASETS[name], files=tuple(files)))


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_download_checks_the_checksum_and_writes_in_place(http_server, tmp_path, monkeypatch, capsys):
    from mamba_forecast.cli import main
    from mamba_forecast.datasets import DataFile

    www, url = http_server
    body = _synthetic_ett(50, freq="15min").to_csv(index=False).encode()
    (www / "ETTm2.csv").write_bytes(body)
    _point_registry(monkeypatch, "ETTm2", DataFile("ETTm2.csv", f"{url}/ETTm2.csv", _sha(body)))
    dest = tmp_path / "data"
    assert main(["data", "download", "ettm2", "--data-dir", str(dest)]) == 0
    assert (dest / "ETTm2.csv").read_bytes() == body
    assert sorted(p.name for p in dest.iterdir()) == ["ETTm2.csv"]  # no temporary file left
    assert "(verified)" in capsys.readouterr().out
    assert load_benchmark("ETTm2", dest).shape == (50, 8)
    assert main(["data", "download", "ETTm2", "--data-dir", str(dest)]) == 0  # present: not fetched again
    assert "already present, checksum ok" in capsys.readouterr().out
    assert main(["data", "list", "--data-dir", str(dest)]) == 0
    listing = capsys.readouterr().out
    assert "ETTm2.csv (present)" in listing and "ETTh2.csv (missing)" in listing


def test_download_with_a_wrong_checksum_keeps_nothing(http_server, tmp_path, monkeypatch, capsys):
    from mamba_forecast.cli import run
    from mamba_forecast.datasets import DataFile, DownloadError, download

    www, url = http_server
    (www / "ETTm2.csv").write_bytes(b"date,OT\n2020-01-01,1\n")
    _point_registry(monkeypatch, "ETTm2", DataFile("ETTm2.csv", f"{url}/ETTm2.csv", "0" * 64))
    dest = tmp_path / "data"
    assert run(["data", "download", "ETTm2", "--data-dir", str(dest)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mamba-forecast: error: ") and "checksum mismatch" in err and "not kept" in err
    assert err.count("\n") == 1
    assert list(dest.iterdir()) == []
    with pytest.raises(DownloadError, match="expected sha256 0000"):
        download("ETTm2", dest, log=lambda *_: None)


def test_download_from_an_unreachable_source_is_one_clear_line(http_server, tmp_path, monkeypatch, capsys):
    import socket

    from mamba_forecast.cli import run
    from mamba_forecast.datasets import DataFile

    _, url = http_server
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _point_registry(monkeypatch, "ECL", DataFile("electricity.csv", f"http://127.0.0.1:{port}/electricity.csv"))
    dest = tmp_path / "data"
    assert run(["data", "download", "ECL", "--data-dir", str(dest), "--timeout", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mamba-forecast: error: ECL: cannot reach http://127.0.0.1:") and "offline" in err
    assert err.count("\n") == 1 and list(dest.iterdir()) == []
    _point_registry(monkeypatch, "ECL", DataFile("electricity.csv", f"{url}/gone.csv"))  # HTTP 404
    assert run(["data", "download", "ECL", "--data-dir", str(dest)]) == 2
    assert "answered HTTP 404" in capsys.readouterr().err and list(dest.iterdir()) == []


def test_data_command_errors_read_like_every_other_command(tmp_path, capsys):
    """`data list` / `data download` refusals are the console script's one `mamba-forecast: error:` line with
    exit status 2, as `bench` and `tune` report theirs."""
    from mamba_forecast.cli import main, run

    missing = tmp_path / "nowhere"
    for argv, message in (
        (["data", "list", "--data-dir", str(missing)], f"data directory {missing} does not exist"),
        (["data", "download", "NoSuchSet", "--data-dir", str(tmp_path)], "unknown benchmark 'NoSuchSet'; known: "),
    ):
        assert run(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"mamba-forecast: error: {message}") and err.count("\n") == 1, err
        with pytest.raises(SystemExit, match=message):  # `main` raises for scripts, as for the other commands
            main(argv)


def test_download_without_a_registry_hash_reports_it_unverified(http_server, tmp_path, monkeypatch, capsys):
    import gzip

    from mamba_forecast.datasets import DataFile, download

    www, url = http_server
    packed = gzip.compress(b"1.0,2.0\n3.0,4.0\n5.0,6.0\n")
    (www / "solar_AL.txt.gz").write_bytes(packed)
    _point_registry(monkeypatch, "Solar-Energy", DataFile("solar_AL.txt", f"{url}/solar_AL.txt.gz", gzip=True))
    (path,) = download("Solar", tmp_path / "data")
    assert path.name == "solar_AL.txt.gz" and path.read_bytes() == packed
    assert f"sha256 {_sha(packed)} (unverified" in capsys.readouterr().out
    assert load_benchmark("Solar-Energy", tmp_path / "data").shape == (3, 3)


def test_download_extracts_both_recordings_from_one_archive(http_server, tmp_path, monkeypatch):
    import zipfile

    from mamba_forecast.datasets import DataFile, download

    www, url = http_server
    members = {"NEW-DATA-1.T15.txt": b"first\n", "NEW-DATA-2.T15.txt": b"second\n"}
    with zipfile.ZipFile(www / "sml2010.zip", "w") as zf:
        for name, data in members.items():
            zf.writestr(f"sml2010/{name}", data)
    _point_registry(
        monkeypatch, "SML2010", *(DataFile(n, f"{url}/sml2010.zip", _sha(d), member=n) for n, d in members.items())
    )
    paths = download("SML2010", tmp_path / "data", log=lambda *_: None)
    assert [p.read_bytes() for p in paths] == list(members.values())
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted(members)
