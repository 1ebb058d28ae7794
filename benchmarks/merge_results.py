"""Merge benchmark results produced elsewhere (a GPU call's ``grid.tar.gz``, another worktree) into this tree.

    python benchmarks/merge_results.py SOURCE_DIR [--root TREE]

SOURCE_DIR holds any of ``bench_results.csv``, ``samples.csv``, ``tuning_trials.csv``, ``tuning_studies.journal``
and ``tuned_presets.json`` (the names ``benchmarks/gpu_grid.sh`` packs; a results folder has the same names).
They go to this project's records, ``results/``, and its shipped tuned table,
``mamba_forecast/bench/tuned_presets.json``. What is merged:

- result cells whose key (dataset, model, input, horizon, seed, via, epochs, preset) is not in
  ``results/bench_results.csv`` yet (a cell already here is kept as it is); ``results/samples.csv`` keeps only the
  test windows the report draws, one per dataset;
- trial-log rows not in ``results/tuning_trials.csv`` yet;
- tuned-table entries that are new, or newer (their timestamp) than the entry here for the same model, dataset,
  look-back and horizons;
- Optuna studies: when this tree's journal is a prefix of the incoming one (the call started from this tree), the
  incoming journal replaces it; otherwise each study this journal lacks is copied in (``optuna.copy_study``), a
  study whose trials here already include the incoming ones is left alone, one the incoming journal has carried
  on is replaced by the incoming copy, and any other study both hold is reported, not merged.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mamba_forecast.bench import records  # noqa: E402
from mamba_forecast.bench.presets import TUNED_PRESETS_FILE, entry_slot, read_tuned  # noqa: E402
from mamba_forecast.bench.records import read_rows  # noqa: E402
from mamba_forecast.bench.report import figure_windows  # noqa: E402
from mamba_forecast.bench.runner import (  # noqa: E402
    COLUMNS,
    SAMPLE_COLUMNS,
    append_row,
    done_keys,
    read_results,
    row_key,
    run_id,
)
from mamba_forecast.bench.tune import TRIAL_COLUMNS, write_tuned  # noqa: E402


def merge_cells(src: Path, dst: Path) -> int:
    have = done_keys(dst)
    added = 0
    for row in read_results(src):
        key = run_id(row)
        if key not in have:
            append_row(dst, row, COLUMNS)
            have.add(key)
            added += 1
    return added


def merge_samples(src: Path, dst: Path) -> int:
    """Keep in ``dst`` the test windows the report draws (one per dataset, :func:`figure_windows`) among those of
    both files; the number of windows that changed. Every cell's window stays in the results folder ``bench``
    wrote it to: here, one per cell would outgrow the 1 MiB a tracked file may have."""
    have = read_rows(dst)
    drawn = figure_windows(have + read_rows(src))
    if sorted(map(row_key, have)) == sorted(map(row_key, drawn.values())):
        return 0
    records.write_rows(dst, [drawn[d] for d in sorted(drawn)], SAMPLE_COLUMNS)
    return len({row_key(r) for r in drawn.values()} - {row_key(r) for r in have})


def merge_trials(src: Path, dst: Path) -> int:
    ident = ("dataset", "model", "horizon", "seed", "trial", "timestamp")
    have = {tuple(r.get(k, "") for k in ident) for r in read_rows(dst)}
    added = 0
    for row in read_rows(src):
        key = tuple(row.get(k, "") for k in ident)
        if key not in have:
            append_row(dst, row, TRIAL_COLUMNS)
            have.add(key)
            added += 1
    return added


def merge_tuned(src: Path, dst: Path) -> list[str]:
    mine, theirs = read_tuned(dst), read_tuned(src)
    changed = []
    for model, per in theirs.items():
        for dataset, entries in per.items():
            here = {entry_slot(e): e for e in mine.get(model, {}).get(dataset, [])}
            for entry in entries:
                old = here.get(entry_slot(entry))
                if old is None or entry.get("timestamp", "") > old.get("timestamp", ""):
                    write_tuned(dst, model, dataset, entry)
                    input_size, horizons, protocol = entry_slot(entry)
                    changed.append(
                        f"{model}/{dataset}/L{input_size}/"
                        + ("all" if horizons == "all" else ",".join(f"H{h}" for h in horizons))
                        + f"/{protocol}"
                    )
    return changed


def merge_journal(src: Path, dst: Path) -> list[str]:
    mine = dst.read_bytes() if dst.exists() else b""
    theirs = src.read_bytes()
    if theirs.startswith(mine):
        if len(theirs) > len(mine):
            shutil.copyfile(src, dst)
            return ["(journal extended)"]
        return []
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    a = JournalStorage(JournalFileBackend(str(dst)))
    b = JournalStorage(JournalFileBackend(str(src)))
    here = {s.study_name: s for s in optuna.get_all_study_summaries(a)}
    notes = []
    for s in optuna.get_all_study_summaries(b):
        if s.study_name not in here:
            optuna.copy_study(from_study_name=s.study_name, from_storage=b, to_storage=a)
            notes.append(f"copied {s.study_name}")
        else:
            ours = [(t.params, t.value, t.state) for t in optuna.load_study(study_name=s.study_name, storage=a).trials]
            other = [(t.params, t.value, t.state) for t in optuna.load_study(study_name=s.study_name, storage=b).trials]
            running = optuna.trial.TrialState.RUNNING
            carried_on = (
                len(other) >= len(ours)
                and other != ours
                and all(o[2] == running or o == t for o, t in zip(ours, other, strict=False))
            )
            if carried_on:
                # the same study carried on elsewhere (a trial running then may have finished since): take it whole
                optuna.delete_study(study_name=s.study_name, storage=a)
                optuna.copy_study(from_study_name=s.study_name, from_storage=b, to_storage=a)
                notes.append(f"updated {s.study_name}")
            elif ours[: len(other)] != other:
                notes.append(f"NOT merged (both hold different trials): {s.study_name}")
    return notes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("--root", type=Path, default=ROOT, help="tree to merge into (default: this repository)")
    args = ap.parse_args(argv)
    src, root = args.source, args.root
    res = root / "results"
    if (src / records.RESULTS_FILE).exists():
        print("cells added:", merge_cells(src / records.RESULTS_FILE, res / records.RESULTS_FILE))
    if (src / records.SAMPLES_FILE).exists():
        print("samples added:", merge_samples(src / records.SAMPLES_FILE, res / records.SAMPLES_FILE))
    if (src / records.TRIALS_FILE).exists():
        print("trial rows added:", merge_trials(src / records.TRIALS_FILE, res / records.TRIALS_FILE))
    if (src / records.TUNED_FILE).exists():
        tuned = root / TUNED_PRESETS_FILE.relative_to(ROOT)
        print("tuned entries:", ", ".join(merge_tuned(src / records.TUNED_FILE, tuned)) or "none")
    if (src / records.STUDY_FILE).exists():
        print("studies:", "; ".join(merge_journal(src / records.STUDY_FILE, res / records.STUDY_FILE)) or "nothing new")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
