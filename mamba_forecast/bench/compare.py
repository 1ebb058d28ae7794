"""Compare models over seeds: a verdict only where the seed ranges separate.

A difference inside the seed spread is a tie. :func:`summarise` collects, per cell (dataset, look-back track,
horizon, model), the test MSE of every seed run under one protocol and device kind; :func:`verdict` says
``"win"``/``"loss"`` only when one model's worst seed is better than the other's best, and ``"tie"`` otherwise.
Torch-free: it reads result rows (:func:`mamba_forecast.bench.runner.read_results`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field


@dataclass
class Seeds:
    """One model's runs of one cell: test MSE (and MAE) per seed, and how training ended in each run."""

    mse: dict[int, float] = field(default_factory=dict)
    mae: dict[int, float] = field(default_factory=dict)
    epochs: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)  # seed -> (best, run, cap, patience)
    input_size: set[int] = field(default_factory=set)
    windows: set[int] = field(default_factory=set)  # the rows' n_test_windows (where recorded)

    @property
    def n(self) -> int:
        return len(self.mse)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.mse.values()) if self.mse else math.nan

    @property
    def low(self) -> float:
        return min(self.mse.values()) if self.mse else math.nan

    @property
    def high(self) -> float:
        return max(self.mse.values()) if self.mse else math.nan

    @property
    def spread(self) -> float:
        """(max - min) / mean over the seeds, 0 for one seed."""
        return (self.high - self.low) / self.mean if self.n > 1 else 0.0

    def capped_while_improving(self) -> list[int]:
        """Seeds whose run ended at its epoch cap, not by early stopping: the cap came before ``patience`` epochs
        without a new best (the validation loss was still improving, or had improved too recently to tell)."""
        return sorted(
            s for s, (best, run, cap, patience) in self.epochs.items() if run >= cap and run - best < patience
        )


def device_kind(row: dict) -> str:
    return "cuda" if str(row.get("device", "cpu")).startswith("cuda") else "cpu"


def track(row: dict) -> str:
    """A row's look-back track: ``"searched"`` where the tuned search chose it, else the look-back run."""
    return "searched" if row.get("lookback") == "searched" else f"L={row['input_size']}"


def summarise(
    rows: list[dict],
    *,
    protocol: str = "converge",
    device: str = "cpu",
    presets: tuple[str, ...] = ("tuned", "default", "official"),
    precision: str = "fp32",
) -> dict[tuple, dict[str, Seeds]]:
    """``{(dataset, track, horizon): {model: Seeds}}`` of the harness runs under ``protocol`` on ``device`` (the
    kind, "cpu" or "cuda") at ``precision``, without ``--set`` overrides or capped batches. Where one model has
    rows at several preset tables in one cell, the first of ``presets`` that has any wins; where a seed has rows at
    several epoch caps (``--epochs``: rerun past a cap it stopped at), the highest cap's."""
    cells: dict[tuple, dict[str, dict[str, Seeds]]] = {}
    for r in rows:
        if (
            r.get("via", "harness") != "harness"
            or r.get("protocol", "official") != protocol
            or device_kind(r) != device
            or (r.get("precision") or "fp32") != precision
            or "overrides" in r.get("notes", "")
            or "max_train_batches" in r.get("notes", "")
            or r.get("preset") not in presets
        ):
            continue
        key = (r["dataset"], track(r), int(r["horizon"]))
        seeds = cells.setdefault(key, {}).setdefault(r["model"], {}).setdefault(r["preset"], Seeds())
        seed = int(r["seed"])
        if seed in seeds.epochs and int(r["max_epochs"]) < seeds.epochs[seed][2]:
            continue  # this seed was rerun under a higher cap (it had stopped at this one): the rerun counts
        seeds.mse[seed] = float(r["mse"])
        seeds.mae[seed] = float(r["mae"])
        seeds.epochs[seed] = (
            int(r["best_epoch"]),
            int(r["epochs_run"]),
            int(r["max_epochs"]),
            int(r.get("patience") or 3),
        )
        seeds.input_size.add(int(r["input_size"]))
        if r.get("n_test_windows") not in (None, ""):
            seeds.windows.add(int(r["n_test_windows"]))
    return {
        key: {model: next(by[p] for p in presets if p in by) for model, by in models.items()}
        for key, models in cells.items()
    }


def verdict(a: Seeds, b: Seeds) -> str:
    """``a`` against ``b``: ``"win"`` when every seed of ``a`` beats every seed of ``b`` (lower MSE), ``"loss"``
    the other way round, ``"tie"`` when the ranges overlap or either has a single seed."""
    if a.n < 2 or b.n < 2:
        return "tie"
    if a.high < b.low:
        return "win"
    if b.high < a.low:
        return "loss"
    return "tie"


def best(models: dict[str, Seeds], names) -> tuple[str, Seeds] | None:
    """The model of ``names`` with the lowest mean MSE in one cell (None where none ran)."""
    ran = [(name, models[name]) for name in names if name in models and models[name].n]
    return min(ran, key=lambda kv: kv[1].mean) if ran else None
