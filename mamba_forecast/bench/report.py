"""``mamba-forecast report``: results CSV + published values -> a markdown page and PNG figures.

The page holds one row per cell (dataset, model, input size, horizon, preset, ...): the mean MSE/MAE over seeds
and, where a published-results file has the same cell, the published value and the relative difference. It
passes no verdict: what counts as close enough is the reader's call (this repository's own targets are a page
of their own, written by ``benchmarks/acceptance.py``).
"""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..models import all_specs
from .records import SAMPLES_FILE, read_rows
from .runner import read_results


def published_names() -> dict[str, str]:
    """Our model name -> its name in the published-results table (each registered spec's
    ``bench.published_name``), read at call time so that a model registered later counts."""
    return {spec.name: spec.bench.published_name for spec in all_specs() if spec.bench.published_name}


# The published MSE / MAE of the models implemented here, shipped with the package (regenerate it with
# benchmarks/make_published.py from the full table of published results).
PUBLISHED_FILE = Path(__file__).with_name("published.csv")


def default_published_path() -> Path | None:
    """The package's published-results table (``--published`` overrides it); ``None`` if it is missing."""
    return PUBLISHED_FILE if PUBLISHED_FILE.exists() else None


def read_published(path) -> dict[tuple, dict]:
    """``{(dataset, input_size, horizon, model): {"mse", "mae", "source"}}`` from published_results.csv."""
    if path is None or not Path(path).exists():
        return {}
    table = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            key = (r["dataset"], int(r["input_size"]), int(r["horizon"]), r["model"])
            table[key] = {"mse": _f(r.get("mse")), "mae": _f(r.get("mae")), "source": r.get("source", "")}
    return table


def _f(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _fmt(v, digits=3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "–" if v is None or math.isnan(v) else f"{v:+.1f}%"


def aggregate(rows: list[dict], published: dict) -> list[dict]:
    """One entry per (dataset, model, input, horizon, via, max_epochs): mean/std over seeds + published."""
    names = published_names()
    groups = defaultdict(list)
    for r in rows:
        preset = r.get("preset") or "official"
        protocol = r.get("protocol") or "official"  # the papers' loop; shown where another protocol ran
        if (r.get("precision") or "fp32") != "fp32":  # a bf16-mixed run is its own row, never another seed
            protocol = f"{protocol}, {r['precision']}"
        key = (
            r["dataset"],
            r["model"],
            int(r["input_size"]),
            int(r["horizon"]),
            r.get("via", "harness"),
            r.get("max_epochs", ""),
            preset if protocol == "official" else f"{preset} ({protocol})",
            r.get("notes", ""),
        )
        groups[key].append(r)
    out = []
    for (ds, model, L, H, via, max_ep, preset, notes), rs in sorted(groups.items(), key=lambda kv: kv[0][:7]):
        mse = np.array([_f(r["mse"]) for r in rs])
        mae = np.array([_f(r["mae"]) for r in rs])
        pub_name = names.get(model, model)
        pub = published.get((ds, L, H, pub_name))
        pub_note = ""
        if pub is None:  # e.g. TSM2 run at L=96: show the paper's L=512 value, flagged
            alt = [(k, v) for k, v in published.items() if k[0] == ds and k[2] == H and k[3] == pub_name]
            if alt:
                (_, pL, _, _), pub = alt[0]
                pub_note = f"published at L={pL}"
        p_mse = pub["mse"] if pub else math.nan
        p_mae = pub["mae"] if pub else math.nan
        entry = dict(
            dataset=ds,
            model=model,
            input_size=L,
            horizon=H,
            via=via,
            max_epochs=max_ep,
            notes=notes,
            preset=preset,
            n_seeds=len(rs),
            seeds=",".join(r["seed"] for r in rs),
            mse=float(mse.mean()),
            mse_std=float(mse.std()) if len(rs) > 1 else math.nan,
            mae=float(mae.mean()),
            mae_std=float(mae.std()) if len(rs) > 1 else math.nan,
            pub_mse=p_mse,
            pub_mae=p_mae,
            pub_note=pub_note,
            pub_source=pub.get("source", "") if pub else "",
            # a value published at another input size is shown, never compared
            rel_mse=100 * (mse.mean() / p_mse - 1) if p_mse == p_mse and not pub_note else math.nan,
            rel_mae=100 * (mae.mean() / p_mae - 1) if p_mae == p_mae and not pub_note else math.nan,
            epochs=",".join(
                f"{r['epochs_run']}/{r.get('max_epochs', '?')} ({r.get('best_epoch') or '?'})".replace("(0)", "(?)")
                for r in rs
            ),
            sec_per_epoch=float(np.mean([_f(r["sec_per_epoch"]) for r in rs])),
            peak_mem_mb=float(np.max([_f(r["peak_mem_mb"]) for r in rs])),
            params=rs[0].get("params", ""),
            device=rs[0].get("device", ""),
            machine=rs[0].get("machine", ""),
        )
        out.append(entry)
    return out


def _results_table(entries: list[dict]) -> list[str]:
    lines = [
        "| dataset | model | L | H | preset | via | seeds | MSE | published | Δ MSE | MAE | published | Δ MAE | "
        "epochs run/max (best) | s/epoch | peak MiB | params | device |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        mse = _fmt(e["mse"], 4) + (f" ± {e['mse_std']:.4f}" if e["mse_std"] == e["mse_std"] else "")
        mae = _fmt(e["mae"], 4) + (f" ± {e['mae_std']:.4f}" if e["mae_std"] == e["mae_std"] else "")
        pub_mse = _fmt(e["pub_mse"]) + (f" ({e['pub_note']})" if e["pub_note"] else "")
        via = e["via"] + (f" ({e['notes']})" if e["notes"] and "overrides" in e["notes"] else "")
        lines.append(
            f"| {e['dataset']} | {e['model']} | {e['input_size']} | {e['horizon']} | {e['preset']} | {via} | "
            f"{e['seeds']} | {mse} | {pub_mse} | {_pct(e['rel_mse'])} | {mae} | {_fmt(e['pub_mae'])} | "
            f"{_pct(e['rel_mae'])} | {e['epochs']} | {e['sec_per_epoch']:.1f} | {e['peak_mem_mb']:.0f} | "
            f"{e['params']} | {e['device']} |"
        )
    return lines


def figure_windows(rows: list[dict]) -> dict[str, dict]:
    """The test window the report draws for each dataset, among the samples CSV's ``rows``: SMamba's at H = 96
    through the harness, the official preset, the first seed and the shortest look-back, where there is one."""
    by_dataset: dict[str, tuple] = {}
    for r in rows:
        rank = (
            r["model"] != "SMamba",
            r["horizon"] != "96",
            r["via"] != "harness",
            (r["preset"] or "official") != "official",
            _f(r["seed"]),
            _f(r["input_size"]),
        )
        if r["dataset"] not in by_dataset or rank < by_dataset[r["dataset"]][0]:
            by_dataset[r["dataset"]] = (rank, r)
    return {ds: r for ds, (_, r) in by_dataset.items()}


def _plot_forecasts(samples: Path, figures_dir: Path) -> list[tuple[str, str]]:
    """One PNG per dataset from the samples CSV: the look-back, the truth and the forecast of one test window
    (last variate)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    for ds, r in sorted(figure_windows(read_rows(samples)).items()):
        hist, truth, fc = (np.array([float(v) for v in r[k].split()]) for k in ("history", "truth", "forecast"))
        step = np.arange(-len(hist), len(truth))
        nan_h, nan_f = np.full(len(truth), np.nan), np.full(len(hist), np.nan)
        hist, truth, fc = np.concatenate([hist, nan_h]), np.concatenate([nan_f, truth]), np.concatenate([nan_f, fc])
        variate, model = r["variate"], r["model"]
        fig, ax = plt.subplots(figsize=(8, 3.6))
        ax.plot(step, hist, color="0.4", lw=1, label="look-back")
        ax.plot(step, truth, color="C0", lw=1.2, label="truth")
        ax.plot(step, fc, color="C3", lw=1.2, label="forecast")
        ax.axvline(-0.5, color="0.7", ls="--", lw=0.8)
        ax.set_title(f"{ds}: {model}, first test window, variate {variate} (z-scored)")
        ax.set_xlabel("step relative to the forecast origin")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, fontsize=8, frameon=False)
        fig.tight_layout()
        out = figures_dir / f"forecast_{ds}.png"
        fig.savefig(out, dpi=110)
        plt.close(fig)
        made.append((ds, out.name))
    return made


def _plot_relative(entries: list[dict], figures_dir: Path) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    es = [e for e in entries if e["rel_mse"] == e["rel_mse"] and e["via"] == "harness"]
    if not es:
        return None
    labels = [f"{e['dataset']}-{e['horizon']}\n{e['model']} L{e['input_size']}" for e in es]
    x = np.arange(len(es))
    fig, ax = plt.subplots(figsize=(max(6.5, 0.9 * len(es) + 2), 3.8))
    ax.bar(x - 0.2, [e["rel_mse"] for e in es], 0.4, label="MSE", color="C0")
    ax.bar(x + 0.2, [e["rel_mae"] for e in es], 0.4, label="MAE (where published)", color="C1")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("ours vs published (%)")
    ax.set_title("MSE / MAE vs published (positive = worse)")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    out = figures_dir / "relative_difference.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out.name


PROTOCOL_TEXT = """\
## Reproduce

```bash
# data: --data-dir, or $MAMBA_FORECAST_DATA, or ~/.cache/mamba_forecast (`mamba-forecast data download ETTh2`)
mamba-forecast tune --model FMamba --dataset ETTh1 --trials 8                    # search on validation -> tuned preset
mamba-forecast bench --dataset ETTh1 --model FMamba --horizon 96,192,336,720       # tuned preset (official where none)
mamba-forecast bench --dataset ETTh1 --model SMamba --horizon 96 --preset official # preset of the official script
mamba-forecast bench --dataset ETTh1,ETTh2 --model SMamba --horizon 96,192,336,720 --seeds 2023,2024,2025 --device cuda
mamba-forecast bench --dataset ETTh1 --model TSM2 --horizon 96 --input-size 96    # TSM2 defaults to L = 512
mamba-forecast bench --dataset ETTh1 --model SMamba --horizon 96 --via neuralforecast
mamba-forecast report                                                             # a page like this one + figures
```

Every command writes under one results folder: `--results-dir DIR`, else `$MAMBA_FORECAST_RESULTS`, else
`./mamba_forecast_results`. Each finished cell is appended to its `bench_results.csv` (`bench --out`) and one
test window per cell to its `samples.csv`; a rerun skips cells already there, and a lock file per running cell
lets several sweeps share one CSV. `--epochs`, `--input-size` and `--set KEY=VALUE` (preset overrides, recorded in
the `notes` column) change a cell; `--threads 1` helps on shared CPUs.

## Protocol

The harness (`mamba_forecast.bench`) reimplements the iTransformer / S-Mamba long-horizon pipeline:

* **Splits**: ETT files use fixed 12/4/4-month borders (ETTh: train `[0, 8640)`, val `[8640-L, 11520)`,
  test `[11520-L, 14400)`; ETTm ×4); the other files use 7:1:2 (`n_train = int(0.7T)`, `n_test = int(0.2T)`,
  the rest validation). Val and test borrow `L` rows of look-back so every target row is scored once.
  SML2010 is two recordings a week apart: train and validation split the first 7:3, the test segment is the
  whole second recording (its first `L` rows are look-back only), so no window crosses the gap. A split with no
  window for a horizon is an error, never a silent score.
* **Scaling**: each variate is z-scored with the mean and (population) std of the training segment;
  **MSE and MAE are on that scale**, over every test window × horizon × variate.
* **Windows**: stride 1, `len(segment) - L - H + 1` per segment; **every test window is scored** (no drop-last;
  ETTh1 L=96 H=96: 2,785 test windows).
* **Calendar tokens** (every model): HourOfDay, DayOfWeek, DayOfMonth, DayOfYear in [-0.5, 0.5]
  (`timeF` with freq `'h'` for every dataset, as the official scripts), fed as `hist_exog` tokens.
* **Training**: Adam, MSE loss, `type1` LR schedule (`adjust_learning_rate(epoch + 1)` after each epoch: epochs 1 and
  2 at lr0, then halved every epoch), early stopping on validation MSE (patience 3, best weights restored);
  training and validation windows shuffled with drop-last, as the official loaders. Plain PyTorch loop
  (no Lightning), windows gathered by index.
* **Presets**: `mamba_forecast/bench/presets.py`. *official*: one table from the official scripts (S-Mamba;
  Attention Mamba's where they exist; FMamba reuses S-Mamba's; TSM2 the sizes of a third-party
  replication). *tuned*: written by `mamba-forecast tune` (`tuned_presets.json` in the results folder, read over
  the table shipped in the package, `mamba_forecast/bench/tuned_presets.json`): an Optuna search (TPE, median
  pruning after each epoch) scored on the **validation** split only, at H = 96, 10 epochs per trial, over the
  learning rate (1e-5 to 3e-3), Adam + type1 vs AdamW + cosine schedules, and per model: FMamba's position
  encoding (token index or none) and attention kernel (Gaussian or Performer), TSM2's d_state (8, 16) and expand
  (1, 2). An entry counts only at the look-back it was tuned at; the winner is applied to the official row of
  every horizon (or, with `tune --per-horizon`, of the horizon searched); each entry names its trials, seed and
  validation MSE. A cell with no entry for its look-back and horizon runs the official row (its `preset` column
  says `official`). Every trial is logged in `tuning_trials.csv` in the results folder.
* `s/epoch` is the wall time of one training epoch plus its validation pass; `peak MiB` is
  `torch.cuda.max_memory_allocated` on CUDA and the peak RSS on CPU (includes Python, torch and the data). A CPU
  row whose `notes` say `the cell's peak RSS` holds that cell's own peak (Linux: the kernel's high-water mark is
  reset when the cell starts); one that says `process peak RSS` (rows written before that reset) or
  `process-lifetime peak RSS` (where it is not available) holds the process's peak so far, which includes any
  cell the same process ran before it.
"""


def write_report(
    results,
    out,
    *,
    figures_dir=None,
    published=None,
    figures: bool = True,
    samples=None,
    sections=(),
    appendix=(),
    command: str = "mamba-forecast report",
) -> Path:
    """Write the results page ``out`` (markdown) and, with ``figures``, its PNG figures.

    Args:
        results: the results CSV that ``mamba-forecast bench`` appends to.
        out: the markdown file to write (overwritten).
        figures_dir: where the figures go (default: ``<out dir>/figures``).
        published: a published-results CSV (``dataset,input_size,horizon,model,mse,mae,source``); default:
            ``default_published_path()``. Without one, no cell is compared with anything.
        samples: the CSV of test windows ``bench`` saved (default: ``samples.csv`` beside ``results``).
        sections: markdown lines inserted after the results table (e.g. a project's own tallies).
        appendix: markdown lines added at the end of the page.
        command: the command named in the page's first line as the one that regenerates it.
    """
    results, out = Path(results), Path(out)
    figures_dir = Path(figures_dir) if figures_dir else out.parent / "figures"
    samples = Path(samples) if samples else results.parent / SAMPLES_FILE
    published_path = Path(published) if published else default_published_path()
    rows = read_results(results)
    published_table = read_published(published_path)
    entries = aggregate(rows, published_table)
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{command}` from `{results.as_posix()}` ({len(rows)} runs); rerun "
        f"`mamba-forecast bench ...` then `{command}` to refresh.",
        "",
    ]
    lines += ["## Results", ""]
    if not published_table:
        lines += [
            "No published-results file was given (`--published`) or found, so no cell is compared with a "
            "published value.",
            "",
        ]
    else:
        sources = sorted({e["pub_source"] for e in entries if e["pub_source"]})
        lines += [
            "Δ = ours / published − 1 (positive = worse), on the cells the published-results file "
            f"(`{published_path.name if published_path else ''}`) has; a value published at another input size L "
            "is shown, flagged, and not compared. "
            + (f"Sources: {'; '.join(sources)}." if sources else "No cell here has a published value."),
            "",
        ]
    lines += ["Epochs: run / max (best; `?` = not reported by NeuralForecast).", ""]
    lines += _results_table(entries) if entries else ["No results yet."]
    lines.append("")
    lines += list(sections)
    machines = sorted({r.get("machine", "") for r in rows if r.get("machine")})
    if machines:
        lines += ["## Machines", ""] + [f"* {m}" for m in machines] + [""]
    if figures:
        figures_dir.mkdir(parents=True, exist_ok=True)
        rel = _plot_relative(entries, figures_dir)
        fc = _plot_forecasts(samples, figures_dir)
        fig_rel = os.path.relpath(figures_dir, out.parent).replace(os.sep, "/")
        if rel or fc:
            lines += ["## Figures", ""]
        if rel:
            lines += [f"![relative difference]({fig_rel}/{rel})", ""]
        for ds, name in fc:
            lines += [f"![{ds} forecast]({fig_rel}/{name})", ""]
    lines += [PROTOCOL_TEXT, *appendix]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    return out
