"""This repository's targets page, ``docs/targets.md``: what only this project asks of its benchmark runs.

    python benchmarks/acceptance.py                     # results/bench_results.csv -> docs/targets.md
    python benchmarks/acceptance.py --published PATH

Each page has one writer. ``mamba-forecast report --results-dir results --out docs/benchmarks.md`` writes the
per-cell table against published values, the figures and the protocol, and passes no verdict (a user's own runs
have no targets); this script writes the project's own targets and notes, from the same results CSV:

* **Acceptance grids**: five datasets x four horizons at seed 2023; SMamba (L = 96) needs 16 of the 20 cells
  within published x 1.03 (S-Mamba paper), TSM2 (L = 512) 15 of 20 within published x 1.05 (MambaMixer table).
  Without a published-results file no cell is compared and no verdict is written.
* **Side by side**: the four models at L = 96 with tuned presets; AttentionMamba, FMamba and TSM2 each aim to be
  within 2% of (or better than) tuned SMamba in 12 of the 20 cells.
* **Notes**: the harness's decisions and deviations from the official pipelines.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np

from mamba_forecast.bench.presets import HORIZONS
from mamba_forecast.bench.report import _f, _fmt, default_published_path, published_names, read_published
from mamba_forecast.bench.runner import read_results

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "python benchmarks/acceptance.py"

ACCEPT_RATIO = 1.03  # our MSE <= published x 1.03 (S-Mamba)
ACCEPT_RATIOS = {"TSM2": 1.05}  # per model where it differs: TSM2's published table is matched within 5%
ACCEPT_SEED = "2023"
GRID_DATASETS = ("ETTh1", "ETTh2", "ETTm1", "Weather", "Exchange")
# model -> (input size, how many of the 20 cells must be within the ratio)
ACCEPTANCE_GRIDS = {"SMamba": (96, 16), "TSM2": (512, 15)}
VIA_TOLERANCE = 3.0  # %: `--via neuralforecast` against the harness, SMamba ETTh1-96
PEERS = ("AttentionMamba", "FMamba", "TSM2")  # compared with tuned SMamba, cell by cell
SIDE_BY_SIDE_DATASETS = ("ETTh1", "ETTh2", "ETTm1", "Exchange", "SML2010")
HELD = 2.0  # %: a peer holds a cell when it is at most this much worse than tuned SMamba
HELD_TARGET = 12  # cells of 20


def plain_harness(rows: list[dict], seed: str | None = ACCEPT_SEED, preset: str = "official") -> dict[tuple, float]:
    """``{(dataset, model, input_size, horizon): mse}`` of the harness runs at one preset table (no overrides)."""
    out = {}
    for r in rows:
        if r.get("via", "harness") != "harness" or "overrides" in r.get("notes", ""):
            continue
        if r.get("protocol", "official") != "official":  # the grids are the papers' protocol
            continue
        if (r.get("precision") or "fp32") != "fp32":  # the grids ran in fp32
            continue
        if seed is not None and r["seed"] != seed:
            continue
        if (r.get("preset") or "official") != preset:
            continue
        out[(r["dataset"], r["model"], int(r["input_size"]), int(r["horizon"]))] = _f(r["mse"])
    return out


def acceptance(rows: list[dict], published: dict) -> list[str]:
    """The acceptance grids with how many cells pass; no verdict without published values."""
    runs = plain_harness(rows)
    names = published_names()
    lines = ["## Acceptance", ""]
    if not published:
        return lines + [
            "No published results file was found (`--published`), so no cell is compared with a "
            "paper and no verdict is given.",
            "",
        ]
    for model, (L, needed) in ACCEPTANCE_GRIDS.items():
        ratio = ACCEPT_RATIOS.get(model, ACCEPT_RATIO)
        measured, passed, missing, failed, unpublished = 0, 0, [], [], []
        for ds in GRID_DATASETS:
            for h in HORIZONS:
                cell = f"{ds}-{h}"
                pub = published.get((ds, L, h, names[model]))
                mse = runs.get((ds, model, L, h))
                if mse is None:
                    missing.append(cell)
                elif pub is None:  # measured, but nothing to compare with: neither a pass nor a miss
                    unpublished.append(cell)
                else:
                    measured += 1
                    if mse <= pub["mse"] * ratio:
                        passed += 1
                    else:
                        failed.append(f"{cell} ({100 * (mse / pub['mse'] - 1):+.1f}%)")
        open_cells = len(missing) + len(unpublished)
        verdict = "met" if passed >= needed else ("not met" if passed + open_cells < needed else "open")
        lines.append(
            f"* **{model}** (L = {L}, seed {ACCEPT_SEED}, MSE ≤ published × {ratio:g}): {passed} of 20 cells "
            f"pass, {measured} measured; needs {needed}: **{verdict}**."
        )
        if failed:
            lines.append(f"  Over the target: {', '.join(failed)}.")
        if unpublished:
            lines.append(f"  No published value to compare with: {', '.join(unpublished)}.")
        if missing:
            lines.append(f"  Not run yet: {', '.join(missing)}.")
    harness = runs.get(("ETTh1", "SMamba", 96, 96))
    via = [
        _f(r["mse"])
        for r in rows
        if r.get("via") == "neuralforecast"
        and r["dataset"] == "ETTh1"
        and r["model"] == "SMamba"
        and int(r["horizon"]) == 96
        and r["seed"] == ACCEPT_SEED
    ]
    if harness is not None and via:
        lines.append(
            f"* **`--via neuralforecast`**, SMamba ETTh1-96: {via[0]:.4f} against the harness's "
            f"{harness:.4f} ({100 * (via[0] / harness - 1):+.1f}%; target within {VIA_TOLERANCE:g}%)."
        )
    return lines + [""]


def _seed_spread(rows: list[dict], ds: str, model: str, preset: str, L: int = 96, h: int = 96) -> list[float]:
    return [
        _f(r["mse"])
        for r in rows
        if r.get("via", "harness") == "harness"
        and r["dataset"] == ds
        and r["model"] == model
        and int(r["input_size"]) == L
        and int(r["horizon"]) == h
        and (r.get("preset") or "official") == preset
        and "overrides" not in r.get("notes", "")
        and r.get("protocol", "official") == "official"
        and (r.get("precision") or "fp32") == "fp32"
    ]


def side_by_side(rows: list[dict], published: dict) -> list[str]:
    """The four models at L = 96 with tuned presets, SMamba's official preset and the S-Mamba paper."""
    tuned = plain_harness(rows, preset="tuned")
    official = plain_harness(rows, preset="official")
    smamba = published_names()["SMamba"]
    if not tuned:
        return []
    lines = [
        "## The four models side by side (L = 96, tuned presets)",
        "",
        "MSE from this harness at seed 2023. *tuned*: the preset table written by `mamba-forecast tune` "
        "(searched on the validation split at H = 96 and reused at every horizon); SMamba is also shown with "
        "its official preset and next to the S-Mamba paper. Δ = model / tuned SMamba − 1 (negative = the "
        f"model wins); a cell counts as held when Δ ≤ +{HELD:g}%.",
        "",
        "| dataset | H | S-Mamba paper | SMamba official | SMamba tuned | "
        + " | ".join(f"{p} | Δ" for p in PEERS)
        + " |",
        "|---|---|---|---|---|" + "---|---|" * len(PEERS),
    ]
    tally = {p: {"held": 0, "lost": [], "run": 0} for p in PEERS}
    missing = 0
    for ds in SIDE_BY_SIDE_DATASETS:
        for h in HORIZONS:
            pub = published.get((ds, 96, h, smamba))
            base = tuned.get((ds, "SMamba", 96, h))
            row = (
                f"| {ds} | {h} | {_fmt(pub['mse'] if pub else math.nan)} | "
                f"{_fmt(official.get((ds, 'SMamba', 96, h)), 4)} | {_fmt(base, 4)} |"
            )
            for p in PEERS:
                v = tuned.get((ds, p, 96, h))
                if v is None:
                    missing += 1
                    row += " – | – |"
                    continue
                if base is None:
                    row += f" {v:.4f} | – |"
                    continue
                rel = 100 * (v / base - 1)
                tally[p]["run"] += 1
                if rel <= HELD:
                    tally[p]["held"] += 1
                else:
                    tally[p]["lost"].append(f"{ds}-{h} ({rel:+.1f}%)")
                row += f" {v:.4f} | {rel:+.1f}% |"
            lines.append(row)
    lines.append("")
    for p, t in tally.items():
        if t["run"]:
            lost = f"; loses {', '.join(t['lost'])}" if t["lost"] else ""
            lines.append(
                f"* {p}: within {HELD:g}% of (or better than) tuned SMamba in {t['held']} of {t['run']} "
                f"cells run (target: {HELD_TARGET} of 20){lost}."
            )
    if missing:
        lines.append(
            f"* {missing} model-cells of the {len(SIDE_BY_SIDE_DATASETS) * len(HORIZONS) * len(PEERS)} are not run yet."
        )
    spread = []
    for ds in SIDE_BY_SIDE_DATASETS:  # the seed cells (ETTh1-96, SML2010-96) and any other cell with seeds
        ref = _seed_spread(rows, ds, "SMamba", "tuned")
        for m in ("SMamba",) + PEERS:
            v = _seed_spread(rows, ds, m, "tuned")
            if len(v) > 1:
                if m == "SMamba" or len(ref) < 2:
                    versus = "– | –"
                else:  # separated: the two models' seed ranges do not overlap
                    separated = "yes, worse" if min(v) > max(ref) else "yes, better" if max(v) < min(ref) else "no"
                    versus = f"{100 * (np.mean(v) / np.mean(ref) - 1):+.1f}% | {separated}"
                spread.append(
                    f"| {ds}-96 | {m} | {len(v)} | {np.mean(v):.4f} | {np.std(v):.4f} | "
                    f"{min(v):.4f} – {max(v):.4f} | {versus} |"
                )
    if spread:
        lines += [
            "",
            "Seeds (tuned presets, H = 96). *Separated*: the model's range of seeds does not overlap tuned SMamba's.",
            "",
            "| cell | model | seeds | mean MSE | std | range | mean vs SMamba | separated |",
            "|---|---|---|---|---|---|---|---|",
        ] + spread
    return lines + [""]


NOTES = """\
## Decisions and deviations

* **Training loop**: a plain PyTorch loop rather than Lightning (a few dozen lines; the harness imports torch,
  numpy and pandas only). Windows are gathered by index (no DataLoader workers). Test batches hold 256 windows
  instead of 1 (same windows, same metric; only float summation order differs).
* **type1 schedule**: implemented as the official code runs it (`adjust_learning_rate(epoch + 1)` *after* each
  epoch), so epochs 1 and 2 both use lr0 and the halving starts at epoch 3.
* **Validation**: shuffled with drop-last and averaged per batch, as the official loader; the test split keeps
  every window.
* **Calendar tokens**: every model gets the 4 calendar tokens, so the four models see the same inputs. The
  official S-Mamba code feeds them and its paper numbers include them. `SMamba` embeds exogenous tokens with
  their own `Linear(L -> D)` (+24,832 parameters at D = 256), where the official code passes the 4 calendar
  tokens through the same embedding as the series; parameter counts therefore read 1,170,528 for ETTh1
  (official 1,150,624 incl. 4,928 dead parameters).
* **SML2010** (FMamba's dataset): `NEW-DATA-1.T15.txt` then `NEW-DATA-2.T15.txt`, concatenated in time order
  (2012-03-13 11:45 to 2012-05-02 07:30, 4,137 rows; the week-long gap between the files, 2012-04-11 to
  2012-04-18, is kept as consecutive rows). Variates: the 18 measured columns 3–18, 22, 23; dropped: Date/Time
  (the `date` column), `Day_Of_Week` (calendar) and `Exterior_Entalpic_1/2/turbo` (constant 0). The dining-room
  temperature `Temperature_Comedor_Sensor` (the usual SML2010 target) is the last column. Split: train and
  validation 7:3 within the first recording (rows `[0, 1934)` and `[1934, 2764)`), test the second recording
  (`[2764, 4137)`); L = 96, horizons 96/192/336/720 (at H = 720: 1,119 / 111 / 558 windows). A 7:1:2 split of
  the joined rows would leave 415 validation rows, no window at H = 720, and 7-39% of training windows
  straddling the week-long gap. No published hyper-parameters: the official table uses each model's Exchange row.
* **Presets without an official source**: FMamba reuses S-Mamba's rows; Attention Mamba uses its Weather row where
  it has no script; TSM2 uses a third-party replication's sizes (d_model 32, 2 layers, d_state 16, d_conv 4,
  expand 2, patch 16 / stride 8, dropout 0.3, batch 128 ETT / 32 Exchange / 64 Weather, lr 1e-4, 10 epochs) at
  L = 512 and, with `--input-size 96`, at L = 96, but trained with the protocol's Adam + type1 + patience 3
  rather than the replication's AdamW + cosine.
* **`--via neuralforecast`**: the same data, splits and scoring, trained by NeuralForecast's loop through
  `mamba_forecast.neuralforecast` (MSE loss, `windows_batch_size` = preset batch, `max_steps` = epochs × steps
  per epoch, `StepLR` halving per epoch, validation once per epoch with patience 3, `scaler_type="identity"`).
  NeuralForecast samples windows randomly per step and does not restore the best weights; its `s/epoch` is the
  whole `cross_validation` call (fit + prediction) divided by the epochs run.
* **CPU runs**: on a CPU shared with other jobs, two torch threads per process oversubscribe the cores
  (seconds per step); the CPU rows here were run with `--threads 1`. `benchmarks/gpu_sweep.sh` groups the
  cells too slow for a CPU (TSM2 at input 512, Weather) into parts for a GPU machine; its header says how.
* **Devices**: each row names its device. The 2-core CPU ran most SMamba, AttentionMamba and FMamba cells. One
  H200 call (`benchmarks/gpu_grid.sh`, 498 s) ran TSM2 at L = 96 and at L = 512, FMamba ETTh1, AttentionMamba
  ETTh2, SMamba Weather-336/720 and the FMamba and TSM2 seeds. Same code and seeds on both; only the order of
  floating-point sums differs. On ETTh1-96, SMamba's and AttentionMamba's seeds ran on the CPU, and FMamba's and
  TSM2's on the GPU.
* **Searches** (`mamba-forecast tune`): 8 trials per model and dataset, TPE with 4 random start-up trials, median
  pruning, 10 epochs at most, scored on the validation split at H = 96. The GPU call split each search's trials
  over 3 or 4 processes sharing the Optuna journal (`tune --jobs`). Each process has its own sampler seed, with the
  "constant liar" for running trials, so a parallel search does not propose the same trials as a sequential one.
  Each process takes the next trial when it frees up (before 2026-11-30 each had a fixed share of the trials, so a
  process whose trials were pruned early sat idle).
  AttentionMamba ETTh2 (3 trials) and FMamba ETTh1 (2 trials) started on the CPU and finished on the GPU.
* **ETTm1 at L = 96, tuned**: all four models' searches and cells ran on the CPU, one core per process. SMamba's
  and FMamba's searches took about 30 minutes each and their cells 4 to 10 minutes. AttentionMamba's search took
  about 70 minutes, its last 7 trials split over both cores (`tune --jobs 2`), and its cells 24 to 33 minutes each.
  TSM2's search took 3.8 hours of core time over two sessions and its cells 30 to 39 minutes each. Two of its
  trials were cut off (one by a restart of the search, one when a session ended) and stay RUNNING in the journal;
  they are not counted, and the resumed search drew new ones in their place. Its ETTm1-96 cell ran while the last
  trial was still going, with the best finished trial's settings (trial 2). That trial stayed the best, so the cell
  used the tuned preset: its validation curve repeats trial 2's, epoch by epoch, to the 5 digits the log prints.
* **TSM2 at L = 512** (the paper's table) with the replication's preset: ETTh1 and ETTh2 were run on the GPU. They are
  8% to 22% above the TSM2 paper, except ETTh2-720. With these sizes the replication does not reach the paper's
  numbers; the paper publishes no per-dataset hyper-parameters to try instead.
"""


def build(results, out, *, published=None) -> Path:
    """Write the targets page ``out`` from the results CSV ``results``."""
    results, out = Path(results), Path(out)
    published_table = read_published(Path(published) if published else default_published_path())
    rows = read_results(results)
    lines = [
        "# Benchmark targets and notes",
        "",
        f"Generated by `{COMMAND}` from `{results.as_posix()}` ({len(rows)} runs); the per-cell results, "
        "figures and protocol are on the [benchmarks page](benchmarks.md).",
        "",
    ]
    if rows:
        lines += acceptance(rows, published_table) + side_by_side(rows, published_table)
    else:
        lines += ["No results yet.", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join([*lines, NOTES]))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(ROOT / "results" / "bench_results.csv"), help="results CSV")
    parser.add_argument("--out", default=str(ROOT / "docs" / "targets.md"), help="markdown file to write")
    parser.add_argument(
        "--published", default=None, help="published-results CSV (default: the one `mamba-forecast report` uses)"
    )
    args = parser.parse_args(argv)
    results, out = Path(args.results).resolve(), Path(args.out).resolve()
    published = Path(args.published).resolve() if args.published else None
    if results.is_relative_to(ROOT):  # the page names its CSV relative to the repository root
        results = results.relative_to(ROOT)
        os.chdir(ROOT)
    path = build(results, out, published=published)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
