"""The one table of benchmark hyper-parameters (per model, dataset and horizon).

Sources (the official repositories, cited by URL; none of their files is in this one):

* SMamba: the shell scripts (folder scripts/multivariate_forecasting) of S-Mamba's official repository,
  https://github.com/wzhwzhwzh0921/S-D-Mamba, with the ``d_conv=2, expand=1`` its model hard-codes. Defaults
  where a script sets nothing (the repository's run script): d_state 32, batch 32, 10 epochs, lr 1e-4.
* AttentionMamba: the scripts of its official repository (https://github.com/SuperBearcafedo/AttentionMamba) for
  ECL / Weather / Solar. For the other datasets there is no official script; we use the Weather row (1 layer,
  D=d_ff=256, d_state 64, lr 1e-5, batch 32, 20 epochs) [our choice].
* FMamba: no published hyper-parameters (the paper, arXiv 2407.14814, gives none and its code is not public); we
  reuse S-Mamba's table row for row (same d_conv 2 / expand 1).
* TSM2: no official scripts (MambaMixer, arXiv 2403.19888v1). Input 512 with the configuration of a third-party
  replication (https://github.com/n8thantran/mambamixer-replication): d_model 32, 2 layers, d_state 16, d_conv 4,
  expand 2, patch 16 / stride 8, lr 1e-4, dropout 0.3, batch 128 (ETT) / 32 (Exchange) / 64 (Weather) / 8 (ECL) /
  4 (Traffic), 10 epochs. The harness keeps the protocol's optimiser (Adam, type1 halving, patience 3) instead
  of the replication's AdamW + cosine. The same configuration is used at input 96 (``--input-size 96``).
* NeuralForecast's forecasters (``bench --model PatchTST`` ...; :mod:`.baselines`): NeuralForecast 3.3's class
  defaults (architecture and learning rate), batch 32, Adam; the protocol sets epochs, patience and schedule.
* SML2010 has no published setting for any of the four models; every model uses its Exchange row
  [our choice: the closest in size, 18 variates and ~4k rows]. Any other set without a row of its own (ILI, a
  ``--csv`` file) uses the row of its registry stand-in (``DatasetSpec.preset_like``; Exchange for a CSV file).

Two preset tables: ``"official"`` (the rows above) and ``"tuned"`` (written by ``mamba-forecast tune``: a search
scored on the validation split whose winning settings are applied on top of the official row). A tuned entry
holds the look-back it was tuned at (``input_size``: a number, or ``"searched"`` when the look-back was one of the
searched settings, then in ``settings``), the training protocol its trials ran under (``protocol``; entries
without one ran under ``"official"``), the horizon scored (``tuned_horizon``) and the horizons it applies to
(``horizons``: ``"all"``, or a list); it counts only for a cell at that look-back and protocol, and one for the
cell's horizon wins over one for all horizons. The package ships a table beside this file
(``tuned_presets.json``, read-only); a user's table (``tune --presets-file``, by default in the results folder)
is read first, so its entries win. A dataset without an entry of its own takes the model's default entry (dataset
``"*"``: the settings that did best on validation across the datasets searched, :func:`mamba_forecast.bench.tune.
choose_default`) where one fits; ``get_preset(..., preset="tuned")`` falls back to the official row where no entry
fits. The returned ``Preset.table`` says which was used: ``tuned``, ``default`` or ``official``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..datasets import preset_stand_in
from ..models import get_spec, model_names
from .baselines import baseline_names, default_learning_rate, is_baseline, network_arguments

HORIZONS = (96, 192, 336, 720)


@dataclass(frozen=True)
class Preset:
    e_layers: int
    d_model: int
    d_ff: int
    d_state: int
    learning_rate: float
    batch_size: int
    epochs: int
    d_conv: int = 2
    expand: int = 1
    dropout: float = 0.1
    use_norm: bool = True
    # our models' calendar tokens, where the dataset's official pipeline feeds them (False: the series alone, as
    # a NeuralForecast user's model sees them without exogenous columns)
    calendar_tokens: bool = True
    input_size: int = 96
    patience: int = 3
    optimizer: str = "adam"  # adam | adamw (weight decay 0.01)
    lradj: str = "type1"  # type1 (official halving) | cosine | constant
    extra: dict = field(default_factory=dict)  # model-specific constructor arguments
    # a NeuralForecast baseline's network arguments: settings of these names go to ``extra`` even where a preset
    # field has the name (its ``dropout`` or ``e_layers`` are NeuralForecast's, not ours)
    network: tuple = ()
    source: str = ""
    table: str = "official"  # which preset table the row comes from: official | tuned

    def as_dict(self) -> dict:
        return asdict(self)


def _p(e, d, ds, lr, bs, ep, **kw) -> Preset:
    return Preset(e_layers=e, d_model=d, d_ff=d, d_state=ds, learning_rate=lr, batch_size=bs, epochs=ep, **kw)


# S-Mamba, spec section 3.2: {dataset: {horizon: Preset}}
_SMAMBA: dict[str, dict[int, Preset]] = {
    "ETTh1": {
        96: _p(2, 256, 2, 7e-5, 32, 10),
        192: _p(2, 256, 2, 7e-5, 32, 10),
        336: _p(2, 256, 2, 5e-5, 32, 10),
        720: _p(2, 256, 2, 5e-5, 32, 10),
    },
    "ETTh2": {
        96: _p(2, 256, 2, 4e-5, 32, 10),
        192: _p(2, 256, 2, 4e-5, 32, 10),
        336: _p(2, 256, 2, 3e-5, 32, 10),
        720: _p(2, 256, 2, 7e-5, 32, 10),
    },
    "ETTm1": {
        96: _p(2, 256, 2, 5e-5, 32, 10),
        192: _p(2, 128, 2, 5e-5, 32, 10),
        336: _p(2, 128, 2, 5e-5, 32, 10),
        720: _p(2, 128, 2, 5e-5, 32, 10),
    },
    "ETTm2": {
        96: _p(2, 256, 2, 5e-5, 32, 10),
        192: _p(2, 128, 2, 5e-5, 32, 10),
        336: _p(2, 128, 2, 3e-5, 32, 10),
        720: _p(2, 128, 2, 5e-5, 32, 10),
    },
    "Exchange": {
        96: _p(2, 128, 32, 1e-4, 16, 10),
        192: _p(2, 128, 32, 1e-4, 32, 10),
        336: _p(2, 128, 32, 5e-5, 32, 10),
        720: _p(2, 128, 32, 5e-5, 32, 10),
    },
    "Weather": {h: _p(3, 512, 2, 5e-5, 32, 5) for h in HORIZONS},
    "ECL": {96: _p(3, 512, 16, 1e-3, 16, 5), **{h: _p(3, 512, 32, 5e-4, 16, 5) for h in (192, 336, 720)}},
    "Traffic": {
        96: _p(4, 512, 32, 1e-3, 16, 10),
        192: _p(4, 512, 32, 1e-3, 16, 10),
        336: _p(4, 512, 32, 2e-3, 16, 10),
        720: _p(4, 512, 32, 8e-4, 16, 10),
    },
    "Solar-Energy": {h: _p(2, 512, 32, 1e-4, 32, 10) for h in HORIZONS},
    # PEMS: horizons 12 / 24 / 48 / 96; the scripts turn the model-level normalisation off for PEMS04 and 07
    "PEMS03": {
        12: _p(4, 512, 32, 1e-3, 32, 5),
        24: _p(4, 512, 32, 1e-3, 32, 10),
        48: _p(5, 512, 32, 1e-4, 32, 10),
        96: _p(4, 512, 32, 1.5e-3, 32, 10),
    },
    "PEMS04": {h: _p(4, 1024, 32, 3e-4, 32, 10, use_norm=False) for h in (12, 24, 48, 96)},
    "PEMS07": {
        12: _p(2, 512, 32, 7e-4, 16, 10, use_norm=False),
        24: _p(2, 512, 32, 7e-4, 32, 10, use_norm=False),
        48: _p(4, 512, 32, 5e-4, 32, 10, use_norm=False),
        96: _p(4, 512, 32, 5e-4, 16, 10, use_norm=False),
    },
    "PEMS08": {
        12: _p(2, 512, 32, 1e-3, 32, 10),
        24: _p(2, 512, 32, 7e-4, 32, 10),
        48: _p(4, 256, 32, 1e-3, 16, 10),
        96: _p(4, 256, 32, 1e-3, 16, 10),
    },
}

# Attention Mamba, spec section 4.3 (official rows: ECL, Weather, Solar).
_AM_KW = dict(d_conv=2, expand=1)
_ATTENTION_MAMBA: dict[str, Preset] = {
    "ECL": _p(1, 512, 64, 1e-5, 16, 20, **_AM_KW),
    "Weather": _p(1, 256, 64, 1e-5, 32, 20, **_AM_KW),
    "Solar-Energy": _p(1, 512, 128, 1e-5, 32, 20, **_AM_KW),
}
_ATTENTION_MAMBA_FALLBACK = "Weather"

# TSM2, spec section 6.4 (third-party replication configuration).
_TSM2_BATCH = {
    "ETTh1": 128,
    "ETTh2": 128,
    "ETTm1": 128,
    "ETTm2": 128,
    "Exchange": 32,
    "Weather": 64,
    "ECL": 8,
    "Traffic": 4,
    "SML2010": 32,
}
_TSM2_DROPOUT = {"ECL": 0.2, "Traffic": 0.2}


def _tsm2_rows(model: str, dataset: str, horizon: int, source: str | None) -> Preset:
    return Preset(
        e_layers=2,
        d_model=32,
        d_ff=32,
        d_state=16,
        learning_rate=1e-4,
        batch_size=_TSM2_BATCH.get(dataset, 32),
        epochs=10,
        d_conv=4,
        expand=1 if dataset == "Traffic" else 2,
        dropout=_TSM2_DROPOUT.get(dataset, 0.3),
        input_size=512,
        extra={"patch_len": 16, "stride": 8},
        source=source or "no published setting: TSM2's third-party replication config",
    )


def _attention_mamba_rows(model: str, dataset: str, horizon: int, source: str | None) -> Preset:
    if dataset in _ATTENTION_MAMBA:
        return replace(_ATTENTION_MAMBA[dataset], source=source or "no published setting: AttentionMamba's row")
    return replace(
        _ATTENTION_MAMBA[_ATTENTION_MAMBA_FALLBACK],
        source=f"no official script for {dataset}: AttentionMamba Weather row",
    )


def _smamba_rows(model: str, dataset: str, horizon: int, source: str | None) -> Preset:
    sm_dataset = dataset if dataset in _SMAMBA else preset_stand_in(dataset)
    rows = _SMAMBA.get(sm_dataset)
    if rows is None:
        raise KeyError(f"no preset for {model} on {dataset}")
    preset = rows[horizon] if horizon in rows else rows[min(rows, key=lambda h: abs(h - horizon))]
    if source is None:
        source = "no published setting: S-Mamba's official row"
    elif sm_dataset != dataset:
        source = f"no official script for {dataset}: S-Mamba {sm_dataset} row"
    return replace(preset, source=source)


# The published tables a model spec's ``bench.preset_table`` may name (``mamba_forecast.models.spec.BenchHook``):
# each builds the official row of (model, dataset, horizon), given the spec's ``preset_source`` (None when the
# model borrows the table).
PRESET_TABLE_BUILDERS = {"smamba": _smamba_rows, "attention_mamba": _attention_mamba_rows, "tsm2": _tsm2_rows}


# A tiny per-variate linear model used to check the harness itself (not one of the four forecasters).
LINEAR = "Linear"
_LINEAR = _p(1, 1, 1, 1e-3, 32, 10, source="harness smoke-test baseline")


def known_models() -> tuple[str, ...]:
    """The models the harness runs: every registered model spec, NeuralForecast's baselines, then its Linear check
    model."""
    return (*model_names(), *baseline_names(), LINEAR)


SEARCHED = "searched"  # the look-back of a tuned entry whose search chose it (the chosen one is in its settings)


def _baseline_row(model: str) -> Preset:
    """A NeuralForecast baseline's row: the class's default learning rate, batch 32; no architecture fields of
    ours (its network arguments are NeuralForecast's defaults, :func:`.baselines.network_arguments`)."""
    return Preset(
        e_layers=0,
        d_model=0,
        d_ff=0,
        d_state=0,
        learning_rate=default_learning_rate(model),
        batch_size=32,
        epochs=10,
        network=tuple(network_arguments(model)),
        source="NeuralForecast 3.3 defaults (mamba_forecast/bench/baselines.py)",
    )


PRESET_TABLES = ("official", "tuned")  # what a cell asks for; ``Preset.table`` may also say "default"
TUNED_PRESETS_FILE = Path(__file__).with_name("tuned_presets.json")  # shipped with the package: read-only
_PRESET_FIELDS = {f.name for f in fields(Preset)}


def _entries(value, where: str) -> list[dict]:
    """The entries of one (model, dataset), checked; a table written before entries were keyed by look-back and
    horizon held one entry, tuned at its ``input_size`` and ``horizon`` and applied to every horizon."""
    if isinstance(value, dict):
        if "input_size" not in value:
            raise ValueError(
                f"{where}: the entry has no 'input_size' (the look-back it was tuned at); add it, or tune again"
            )
        old = {k: v for k, v in value.items() if k != "horizon"}
        value = [{**old, "tuned_horizon": value.get("horizon"), "horizons": "all"}]
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list of entries, got {type(value).__name__}")
    for entry in value:
        entry.setdefault("protocol", "official")  # entries from before the converge protocol
        horizons = entry.get("horizons")
        if not (isinstance(entry.get("input_size"), int) or entry.get("input_size") == SEARCHED) or not (
            horizons == "all" or (isinstance(horizons, list) and all(isinstance(h, int) for h in horizons))
        ):
            raise ValueError(
                f"{where}: each entry needs an integer (or \"searched\") 'input_size' and 'horizons' (\"all\" or a "
                f"list of integers); got input_size={entry.get('input_size')!r}, horizons={horizons!r}"
            )
    return value


def read_tuned(path: str | Path | None = None) -> dict:
    """A tuned table, ``{model: {dataset: [entry, ...]}}`` (default: the package's). An entry holds ``settings``
    (preset fields and model arguments), ``input_size``, ``tuned_horizon``, ``horizons`` (``"all"`` or a list),
    ``val_mse``, ``trials``, ``seed`` and ``source``. A table in the older one-entry-per-dataset form is read as
    entries for all horizons at their ``input_size``."""
    path = Path(path) if path is not None else TUNED_PRESETS_FILE
    if not path.exists():
        return {}
    with open(path) as fh:
        table = json.load(fh)
    return {
        model: {ds: _entries(v, f"{path} [{model}][{ds}]") for ds, v in per.items()} for model, per in table.items()
    }


def entry_slot(entry: dict) -> tuple:
    """What an entry was tuned for: (look-back, horizons, protocol); a table holds one entry per slot."""
    horizons = entry["horizons"]
    return entry["input_size"], horizons if horizons == "all" else tuple(sorted(horizons)), entry["protocol"]


DEFAULT = "*"  # the tuned table's "dataset" of a model's default entry: for datasets without an entry of their own


def tuned_entry(
    model: str,
    dataset: str,
    input_size: int | str,
    horizon: int,
    tuned_path: str | Path | None = None,
    protocol: str = "official",
) -> dict | None:
    """The tuned entry of one cell, or ``None``: the table at ``tuned_path`` first, then the package's; in each,
    only entries tuned at ``input_size`` (a number or ``"searched"``) under ``protocol``, one listing ``horizon``
    before one for all horizons. Where no table has an entry for ``dataset``, the model's default entry
    (:data:`DEFAULT`, chosen by :func:`mamba_forecast.bench.tune.choose_default`) at ``input_size`` and
    ``protocol``."""
    tables = [read_tuned(tuned_path)] if tuned_path is not None else []
    tables.append(read_tuned(TUNED_PRESETS_FILE))
    for name in (dataset, DEFAULT):
        for table in tables:
            entries = [
                e
                for e in table.get(model, {}).get(name, [])
                if e["input_size"] == input_size and e["protocol"] == protocol
            ]
            for entry in sorted(entries, key=lambda e: e["horizons"] == "all"):
                if entry["horizons"] == "all" or horizon in entry["horizons"]:
                    return entry
    return None


def apply_settings(preset: Preset, settings: Mapping[str, Any], **changes) -> Preset:
    """``preset`` with ``settings`` applied: preset fields replace theirs, anything else (and a baseline's network
    arguments, :attr:`Preset.network`) goes to ``extra``."""
    own = {k: v for k, v in settings.items() if k in _PRESET_FIELDS and k not in preset.network}
    extra = {**preset.extra, **{k: v for k, v in settings.items() if k not in own}}
    return replace(preset, **own, extra=extra, **changes)


def get_preset(
    model: str,
    dataset: str,
    horizon: int,
    preset: str = "official",
    tuned_path: str | Path | None = None,
    input_size: int | str | None = None,
    protocol: str = "official",
) -> Preset:
    """The preset of one benchmark cell; raises ``KeyError`` for an unknown model.

    ``preset="tuned"`` applies the settings of the cell's tuned entry (:func:`tuned_entry`, at ``input_size``,
    default the official row's look-back, and ``protocol``) to the official row of this horizon, and returns the
    official row (``table="official"``) where no entry fits. ``input_size="searched"`` takes the entry whose
    search chose the look-back (the preset's ``input_size`` is the chosen one); without such an entry it is an
    error, since no look-back was chosen.
    """
    if preset not in PRESET_TABLES:
        raise ValueError(f"preset must be one of {PRESET_TABLES}, got {preset!r}")
    official = _official_preset(model, dataset, horizon)
    if preset == "tuned" or input_size == SEARCHED:
        entry = tuned_entry(model, dataset, input_size or official.input_size, horizon, tuned_path, protocol)
        if entry is not None:
            table = "default" if entry.get("default") else "tuned"
            return apply_settings(official, entry["settings"], source=entry["source"], table=table)
    if input_size == SEARCHED:
        raise ValueError(
            f"input_size='searched': no tuned entry of {model} on {dataset} chose a look-back (under "
            f"the {protocol} protocol, horizon {horizon}); run `mamba-forecast tune --model {model} "
            f"--dataset {dataset} --input-size searched` first, or give a number"
        )
    return official


def _official_preset(model: str, dataset: str, horizon: int) -> Preset:
    if model == LINEAR:
        return _LINEAR
    if is_baseline(model):
        return _baseline_row(model)
    if model not in model_names():
        raise KeyError(f"unknown model {model!r}; known: {', '.join(known_models())}")
    hook = get_spec(model).bench
    preset = PRESET_TABLE_BUILDERS[hook.preset_table](model, dataset, horizon, hook.preset_source)
    return apply_settings(preset, hook.preset_defaults) if hook.preset_defaults else preset
