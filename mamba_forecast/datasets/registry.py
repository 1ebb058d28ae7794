"""The registry of the standard long-horizon benchmark sets: files, split rule, frequency, layout, source, SHA-256.

One :class:`DatasetSpec` per set. The readers (:func:`~mamba_forecast.datasets.load_benchmark`), the protocol's
split borders (:func:`~mamba_forecast.datasets.split_borders`), ``mamba-forecast bench`` / ``tune`` and
``mamba-forecast data download`` all take their rules from here, so a set is added in one place.

Split rules (``DatasetSpec.split``), all from the official loaders of the iTransformer / S-Mamba pipeline:

* ``"ett_hour"`` / ``"ett_minute"``: fixed 12/4/4 months of 30 days (hourly or 15-minute rows); rows after
  month 20 are unused.
* ``"ratio"``: 7:1:2 (``Dataset_Custom``): ``n_train = int(0.7 T)``, ``n_test = int(0.2 T)``, the rest validation.
* ``"ratio_solar"``: 7:1:2 as ``Dataset_Solar`` cuts it: validation is ``int(0.1 T)`` rows after train.
* ``"pems"``: 6:2:2 (``Dataset_PEMS``), each split cut on its own: no look-back borrowed from the split before.
* ``"recordings"``: SML2010's two recordings: train / validation 7:3 within the first, test = the second.

SHA-256 values are given only where they were checked against a copy of the file (ETTh1, ETTh2, ETTm1, Weather,
Exchange, SML2010); the others are ``None``, and ``mamba-forecast data download`` then prints the hash it computed
and says that it is unverified.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SPLIT_RULES = ("ett_hour", "ett_minute", "ratio", "ratio_solar", "pems", "recordings")
LAYOUTS = ("csv", "solar_txt", "pems_npz", "sml2010")


@dataclass(frozen=True)
class DataFile:
    """One file of a set: its name in the data folder, where to fetch it, and its SHA-256 when known.

    ``url`` may point at a ``.zip`` archive holding the file (``member`` names it there) or at a gzip of it
    (``gzip=True``: kept as ``<name>.gz``, which the readers decompress on the fly). ``sha256`` is the hash of
    the file as it lies in the data folder (the member after extraction; the ``.gz`` itself for ``gzip``).
    """

    name: str
    url: str | None = None
    sha256: str | None = None
    member: str | None = None
    gzip: bool = False

    @property
    def stored_name(self) -> str:
        return f"{self.name}.gz" if self.gzip else self.name


@dataclass(frozen=True)
class DatasetSpec:
    """How to read one benchmark set and how the protocol splits it.

    Attributes:
        name: the canonical name (as in the published result tables).
        files: the file(s) in the data folder, with their source and hash.
        split: the split rule (see the module docstring).
        freq: the data's own step as a pandas frequency (the calendar tokens always use ``timeF`` with freq 'h',
            as the official scripts do).
        n_series: number of series (columns besides ``date``).
        n_rows: number of rows of the standard file.
        layout: ``"csv"`` (a ``date`` column then the series, the target last), ``"solar_txt"`` (comma-separated
            values, no header, no dates), ``"pems_npz"`` (``data[:, :, 0]``, the flow channel, no dates) or
            ``"sml2010"`` (UCI's two space-separated recordings).
        target: the target column, last in the frame (``None``: every series is a target, columns by number).
        horizons: the horizons of the published tables.
        start: first timestamp, for the layouts whose files carry no dates (the calendar tokens need some).
        calendar_tokens: whether the official pipeline feeds the 4 calendar tokens (not for Solar and PEMS).
        preset_like: the set whose official hyper-parameters a model uses when it has none for this one.
        aliases: other accepted names (case-insensitive).
        source: where the data come from, its citation and licence.
    """

    name: str
    files: tuple[DataFile, ...]
    split: str
    freq: str
    n_series: int
    n_rows: int
    layout: str = "csv"
    target: str | None = "OT"
    horizons: tuple[int, ...] = (96, 192, 336, 720)
    start: str | None = None
    calendar_tokens: bool = True
    preset_like: str | None = None
    aliases: tuple[str, ...] = field(default=())
    source: str = ""

    def __post_init__(self):
        if self.split not in SPLIT_RULES:
            raise ValueError(f"{self.name}: split must be one of {SPLIT_RULES}, got {self.split!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"{self.name}: layout must be one of {LAYOUTS}, got {self.layout!r}")

    @property
    def file_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.files)


_ETT = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/"
_ETT_SOURCE = "ETDataset (Zhou et al., Informer, AAAI 2021), CC BY-ND 4.0"
# The Autoformer collection ("all_six_datasets", Wu et al., NeurIPS 2021) is distributed through Google Drive,
# which a plain HTTP client cannot fetch; these are public copies of it on the Hugging Face hub. Weather and
# Exchange come from a copy with the original CRLF line endings, whose bytes match the hashes below (the
# AutonLab copy has LF endings); ECL, Traffic and ILI from the AutonLab Time-series Pile (MOMENT, ICML 2024).
_HF_CRLF = "https://huggingface.co/datasets/pkr7098/time-series-forecasting-datasets/resolve/main/"
_HF_PILE = "https://huggingface.co/datasets/AutonLab/Timeseries-PILE/resolve/main/forecasting/autoformer/"
_AUTOFORMER = "Autoformer collection (Wu et al., NeurIPS 2021)"
_LAI = "https://raw.githubusercontent.com/laiguokun/multivariate-time-series-data/master/"
_PEMS = "https://raw.githubusercontent.com/Jimmy-7664/STD-MAE/main/datasets/raw_data/"
_PEMS_SOURCE = "Caltrans PeMS via ASTGCN / STSGCN (Guo et al., AAAI 2019; Song et al., AAAI 2020)"


def _pems(n: str, n_series: int, n_rows: int, start: str) -> DatasetSpec:
    return DatasetSpec(
        f"PEMS{n}",
        (DataFile(f"PEMS{n}.npz", _PEMS + f"PEMS{n}/PEMS{n}.npz"),),
        "pems",
        "5min",
        n_series,
        n_rows,
        layout="pems_npz",
        target=None,
        horizons=(12, 24, 48, 96),
        start=start,
        calendar_tokens=False,
        source=_PEMS_SOURCE,
    )


DATASETS: dict[str, DatasetSpec] = {
    s.name: s
    for s in [
        DatasetSpec(
            "ETTh1",
            (
                DataFile(
                    "ETTh1.csv", _ETT + "ETTh1.csv", "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066"
                ),
            ),
            "ett_hour",
            "h",
            7,
            17420,
            source=_ETT_SOURCE,
        ),
        DatasetSpec(
            "ETTh2",
            (
                DataFile(
                    "ETTh2.csv", _ETT + "ETTh2.csv", "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b"
                ),
            ),
            "ett_hour",
            "h",
            7,
            17420,
            source=_ETT_SOURCE,
        ),
        DatasetSpec(
            "ETTm1",
            (
                DataFile(
                    "ETTm1.csv", _ETT + "ETTm1.csv", "6ce1759b1a18e3328421d5d75fadcb316c449fcd7cec32820c8dafda71986c9e"
                ),
            ),
            "ett_minute",
            "15min",
            7,
            69680,
            source=_ETT_SOURCE,
        ),
        DatasetSpec(
            "ETTm2", (DataFile("ETTm2.csv", _ETT + "ETTm2.csv"),), "ett_minute", "15min", 7, 69680, source=_ETT_SOURCE
        ),
        DatasetSpec(
            "Weather",
            (
                DataFile(
                    "weather.csv",
                    _HF_CRLF + "weather.csv",
                    "34ee981d07313e51da2a50bb600072c8ae4a69cb4b0651f4cb93a069d7a2ba63",
                ),
            ),
            "ratio",
            "10min",
            21,
            52696,
            source=f"Max Planck Institute for Biogeochemistry weather station, 2020; {_AUTOFORMER}",
        ),
        DatasetSpec(
            "Exchange",
            (
                DataFile(
                    "exchange_rate.csv",
                    _HF_CRLF + "exchange_rate.csv",
                    "48b4d9d3d508f5104162e85b9a6042e3557fde11aa9f2944eba8c0d0efc89842",
                ),
            ),
            "ratio",
            "D",
            8,
            7588,
            aliases=("exchange_rate",),
            source=f"Lai et al., LSTNet (SIGIR 2018), with Autoformer's dates; {_AUTOFORMER}",
        ),
        DatasetSpec(
            "ECL",
            (DataFile("electricity.csv", _HF_PILE + "electricity.csv"),),
            "ratio",
            "h",
            321,
            26304,
            aliases=("electricity",),
            source=f"UCI ElectricityLoadDiagrams20112014 (321 clients, hourly); {_AUTOFORMER}",
        ),
        DatasetSpec(
            "Traffic",
            (DataFile("traffic.csv", _HF_PILE + "traffic.csv"),),
            "ratio",
            "h",
            862,
            17544,
            source=f"Caltrans PeMS road occupancy, 862 sensors, hourly 2015-2016; {_AUTOFORMER}",
        ),
        DatasetSpec(
            "ILI",
            (DataFile("national_illness.csv", _HF_PILE + "national_illness.csv"),),
            "ratio",
            "W",
            7,
            966,
            horizons=(24, 36, 48, 60),
            preset_like="Exchange",
            aliases=("national_illness", "illness"),
            source=f"US CDC ILINet, weekly influenza-like illness 2002-2020; {_AUTOFORMER}",
        ),
        DatasetSpec(
            "Solar-Energy",
            (DataFile("solar_AL.txt", _LAI + "solar-energy/solar_AL.txt.gz", gzip=True),),
            "ratio_solar",
            "10min",
            137,
            52560,
            layout="solar_txt",
            target=None,
            start="2006-01-01 00:00",
            calendar_tokens=False,
            aliases=("Solar", "solar_AL"),
            source="NREL Solar Power Data, 137 PV plants in Alabama, 2006 (Lai et al., LSTNet, SIGIR 2018)",
        ),
        _pems("03", 358, 26209, "2018-09-01 00:00"),
        _pems("04", 307, 16992, "2018-01-01 00:00"),
        _pems("07", 883, 28224, "2017-05-01 00:00"),
        _pems("08", 170, 17856, "2016-07-01 00:00"),
        DatasetSpec(
            "SML2010",
            tuple(
                DataFile(name, "https://archive.ics.uci.edu/static/public/274/sml2010.zip", sha, member=name)
                for name, sha in [
                    ("NEW-DATA-1.T15.txt", "f9756a22bf5c9d17ecf8938545de7bde5bd2d236cb956f131b3220bf29c34679"),
                    ("NEW-DATA-2.T15.txt", "50166fec01e7f20b0f0ac2ba2d16a4ad8428ae7edcb621b3623f7887bfd87cb7"),
                ]
            ),
            "recordings",
            "15min",
            18,
            2764 + 1373,
            layout="sml2010",
            target="Temperature_Comedor_Sensor",
            preset_like="Exchange",
            aliases=("sml",),
            source="UCI SML2010 (Zamora-Martinez et al., 2014), CC BY 4.0",
        ),
    ]
}
_CUSTOM: dict[str, DatasetSpec] = {}  # CSV files registered by `register_csv` (named after the file)


def canonical_name(name: str) -> str:
    """``"etth1"`` -> ``"ETTh1"``, ``"electricity"`` -> ``"ECL"``; raises ``KeyError`` listing the known names."""
    if name in _CUSTOM:
        return name
    for spec in DATASETS.values():
        if name.lower() in (n.lower() for n in (spec.name, *spec.aliases)):
            return spec.name
    raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(DATASETS)} (or pass a CSV file with --csv)")


def get_spec(name: str | DatasetSpec) -> DatasetSpec:
    """The spec of a registered set (any accepted name) or of a CSV registered with ``register_csv``."""
    if isinstance(name, DatasetSpec):
        return name
    key = canonical_name(name)
    return _CUSTOM.get(key) or DATASETS[key]


def preset_stand_in(name: str) -> str:
    """The set whose official hyper-parameter rows a model uses for ``name`` when it has none of its own:
    the spec's ``preset_like``, ``"Exchange"`` for a CSV file (a small set: 8 series, 7,588 rows), else ``name``."""
    spec = get_spec(name)
    if spec.preset_like:
        return spec.preset_like
    return "Exchange" if spec.name in _CUSTOM else spec.name
