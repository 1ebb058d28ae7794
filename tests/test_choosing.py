"""Verdicts beyond the seed noise (mamba_forecast.bench.compare) and the choosing page (benchmarks/choosing.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from conftest import bench_row
from mamba_forecast.bench.compare import Seeds, summarise, verdict
from mamba_forecast.bench.runner import append_row

ROOT = Path(__file__).resolve().parents[1]


def seeds(*mse):
    return Seeds(mse={2023 + i: m for i, m in enumerate(mse)})


def test_a_verdict_needs_separated_seed_ranges():
    assert verdict(seeds(0.40, 0.41, 0.42), seeds(0.43, 0.44, 0.45)) == "win"
    assert verdict(seeds(0.43, 0.44, 0.45), seeds(0.40, 0.41, 0.42)) == "loss"
    assert verdict(seeds(0.40, 0.44), seeds(0.42, 0.45)) == "tie"  # means differ, ranges overlap
    assert verdict(seeds(0.30), seeds(0.40, 0.41)) == "tie"  # one seed says nothing about the spread


def row(model, seed, mse, h=96, **extra):
    base = bench_row("ETTh1", model, h, mse, preset="default", seed=seed)
    return {**base, "protocol": "converge", "patience": 5, "max_epochs": 100, "device": "cpu", **extra}


def test_summarise_keeps_one_protocol_and_device_kind_and_no_overridden_runs():
    rows = [
        row("SMamba", 2023, 0.40),
        row("SMamba", 2024, 0.41),
        row("SMamba", 2025, 0.30, protocol="official"),  # another protocol
        row("SMamba", 2026, 0.30, device="cuda:0"),  # another device kind
        row("SMamba", 2027, 0.30, notes="overrides d_model=8"),
        row("PatchTST", 2023, 0.45, preset="official"),
    ]
    cells = summarise(rows)
    models = cells[("ETTh1", "L=96", 96)]
    assert sorted(models["SMamba"].mse) == [2023, 2024] and list(models["PatchTST"].mse) == [2023]
    assert summarise(rows, protocol="official")[("ETTh1", "L=96", 96)]["SMamba"].mse == {2025: 0.30}


def test_a_bf16_run_is_never_another_seed_of_the_fp32_cell(tmp_path):
    from mamba_forecast.bench.report import aggregate
    from mamba_forecast.bench.runner import read_results

    results = tmp_path / "bench_results.csv"
    for r in (row("SMamba", 2023, 0.40), row("SMamba", 2024, 0.42), row("SMamba", 2023, 0.90, precision="bf16-mixed")):
        append_row(results, r)
    rows = read_results(results)
    assert summarise(rows)[("ETTh1", "L=96", 96)]["SMamba"].mse == {2023: 0.40, 2024: 0.42}
    assert summarise(rows, precision="bf16-mixed")[("ETTh1", "L=96", 96)]["SMamba"].mse == {2023: 0.90}
    entries = {e["preset"]: e for e in aggregate(rows, {})}
    assert set(entries) == {"default (converge)", "default (converge, bf16-mixed)"}
    assert entries["default (converge)"]["n_seeds"] == 2


def test_a_run_that_hit_its_cap_before_early_stopping_is_flagged():
    s = Seeds(
        mse={1: 0.4, 2: 0.4, 3: 0.4, 4: 0.4},
        epochs={1: (98, 100, 100, 5), 2: (12, 17, 100, 5), 3: (96, 100, 100, 5), 4: (95, 100, 100, 5)},
    )
    assert s.capped_while_improving() == [1, 3]


def test_a_seed_rerun_under_a_higher_epoch_cap_replaces_its_capped_run():
    capped = dict(max_epochs=100, epochs_run=100, best_epoch=100)
    rows = [
        row("DLinear", 2023, 0.50, max_epochs=300, epochs_run=160, best_epoch=155),  # the rerun, whatever the order
        row("DLinear", 2023, 0.60, **capped),
        row("DLinear", 2024, 0.61, **capped),  # not rerun: still shown, and still flagged
    ]
    s = summarise(rows)[("ETTh1", "L=96", 96)]["DLinear"]
    assert s.mse == {2023: 0.50, 2024: 0.61}
    assert s.epochs[2023][:3] == (155, 160, 300)
    assert s.capped_while_improving() == [2024]


@pytest.fixture()
def choosing():
    spec = importlib.util.spec_from_file_location("choosing", ROOT / "benchmarks" / "choosing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_page_compares_the_best_of_ours_with_the_best_baseline(choosing, tmp_path):
    results = tmp_path / "bench_results.csv"
    for h in (96, 192, 336, 720):
        for seed, (ours, theirs, other) in enumerate([(0.40, 0.45, 0.50), (0.41, 0.46, 0.52), (0.42, 0.47, 0.51)]):
            append_row(results, row("FMamba", 2023 + seed, ours + h / 1e4, h=h))
            append_row(results, row("PatchTST", 2023 + seed, theirs + h / 1e4, h=h, preset="official"))
            append_row(results, row("DLinear", 2023 + seed, other + h / 1e4, h=h, preset="official"))
    append_row(results, row("SMamba", 2023, 0.30, h=96, best_epoch=100, epochs_run=100))  # one seed, capped
    text = choosing.build(results, tmp_path / "choosing.md").read_text()
    assert text.startswith("# Choosing a forecaster: our four next to NeuralForecast's")
    assert "### ETTh1, L=96, H = 192" in text
    # H = 96: SMamba's single seed is the lowest mean, and one seed gives no verdict
    assert (
        "Best of ours **SMamba** 0.3000 against the best baseline **PatchTST** 0.4696 (-36.1%): **tie** "
        "(one seed: no verdict)." in text
    )
    assert "Best of ours **FMamba** 0.4292 against the best baseline **PatchTST** 0.4792 (-10.4%): **win**." in text
    assert "* **L=96**: the best of our four wins on 1 of 1 datasets with all four horizons run (ETTh1: win)." in text
    assert "* ETTh1 L=96 H=96 SMamba (seeds 2023)" in text  # stopped at its cap while still improving
    assert "| FMamba | ours | 3 | 0.4196 | 0.4096-0.4296 |" in text
    # each of ours against the best baseline of every cell it ran in, for the model cards
    fmamba = text.split("### FMamba against the best baseline")[1].split("###")[0]
    assert (
        "| ETTh1 | L=96 | 96 | 3 | 0.4196 | 0.4096-0.4296 | PatchTST | 0.4696 | 0.4596-0.4796 | -10.6% | win |"
        in fmamba
    )
    assert fmamba.count("| ETTh1 |") == 4  # one row per horizon
    smamba = text.split("### SMamba against the best baseline")[1].split("###")[0]
    assert "| ETTh1 | L=96 | 96 | 1 | 0.3000 | one seed | PatchTST |" in smamba and "tie (one seed)" in smamba
    tsm2 = text.split("### TSM2 against the best baseline")[1].split("##")[0]
    assert "Not compared with a NeuralForecast model yet." in tsm2
    assert "## Experiments beside the grid" not in text  # none beside these results
    # an experiment's folder beside the results CSV is listed by its title and path
    (tmp_path / "experiments" / "lr_ladder").mkdir(parents=True)
    (tmp_path / "experiments" / "lr_ladder" / "README.md").write_text("# Experiment: a lower learning rate\n\ntext")
    text = choosing.build(results, tmp_path / "docs" / "choosing.md").read_text()
    readme = (tmp_path / "experiments" / "lr_ladder" / "README.md").as_posix()
    assert f"* a lower learning rate: `{readme}`" in text.split("## Experiments beside")[1]


def test_a_verdict_on_two_seeds_is_marked_provisional_and_not_counted_as_a_win(choosing, tmp_path):
    """A decision row has three seeds: while a run is cut short at two, its verdict says so, on the page, in the
    model's own table and in the tally, where it is not counted as a win."""
    results = tmp_path / "bench_results.csv"
    for h in (96, 192, 336, 720):
        for seed, (ours, theirs) in enumerate([(0.40, 0.45), (0.41, 0.46), (0.42, 0.47)]):
            append_row(results, row("PatchTST", 2023 + seed, theirs + h / 1e4, h=h, preset="official"))
            if seed < 2:  # the third seed of ours has not run
                append_row(results, row("FMamba", 2023 + seed, ours + h / 1e4, h=h))
    text = choosing.build(results, tmp_path / "choosing.md").read_text()
    assert (
        "Best of ours **FMamba** 0.4146 against the best baseline **PatchTST** 0.4696 (-11.7%): **win** "
        "(two seeds: provisional until three run)." in text
    )
    fmamba = text.split("### FMamba against the best baseline")[1].split("###")[0]
    assert "| PatchTST | 0.4696 | 0.4596-0.4796 | -11.7% | win (two seeds) |" in fmamba
    assert "wins on 0 of 1 datasets with all four horizons run (ETTh1: win (two seeds))." in text
    append_row(results, row("FMamba", 2025, 0.42 + 96 / 1e4, h=96))
    text = choosing.build(results, tmp_path / "choosing.md").read_text()
    assert "Best of ours **FMamba** 0.4196 against the best baseline **PatchTST** 0.4696 (-10.6%): **win**." in text


def test_a_model_card_gives_no_verdict_on_one_seed_and_marks_two_seeds_provisional(choosing):
    """The card's line for a cell lists each baseline as ahead, behind or tied only where both sides have two
    seeds or more; a single seed of ours (or theirs) is set beside the baselines with no verdict, and a verdict on
    two seeds says it is provisional, as the choosing page does."""
    rows = [row("TSM2", 2023, 0.30)]  # one seed, below every baseline
    for i, seed in enumerate((2023, 2024, 2025)):
        rows += [row("PatchTST", seed, 0.40 + i / 100, preset="official")]
        rows += [row("DLinear", seed, 0.50 + i / 100, preset="official", h=192)]
        rows += [row("TSM2", seed, 0.40 + i / 100, h=192)] if seed < 2025 else []  # two seeds at H = 192
    rows += [row("NHITS", 2023, 0.35, preset="official")]  # one seed of a baseline
    section = choosing.card_section(summarise(rows), "TSM2")
    line96 = next(x for x in section.splitlines() if x.startswith("* ETTh1, L=96, H = 96 "))
    assert "tied with" not in line96 and "ahead of" not in line96
    assert "beside, with no verdict on one seed, NHITS, PatchTST" in line96
    line192 = next(x for x in section.splitlines() if x.startswith("* ETTh1, L=96, H = 192 "))
    assert "ahead of DLinear; provisional against DLinear until three seeds run" in line192
    rows.append(row("TSM2", 2025, 0.42, h=192))
    line192 = next(x for x in choosing.card_section(summarise(rows), "TSM2").splitlines() if "H = 192" in x)
    assert "ahead of DLinear (best baseline" in line192 and "provisional" not in line192
    rows += [row("TSM2", seed, 0.31) for seed in (2024, 2025)]
    line96 = next(x for x in choosing.card_section(summarise(rows), "TSM2").splitlines() if "H = 96 " in x)
    assert "ahead of PatchTST; beside, with no verdict on one seed, NHITS" in line96


def test_the_searched_track_names_the_models_without_a_look_back_study(choosing, tmp_path):
    """A model with all four horizons at L=96 but no searched rows is named under the searched track with its L=96
    mean; where such a baseline already beats the searched track's best baseline on the same test windows (every
    row of both tracks has one window count at each horizon), the searched verdict is called provisional."""

    def grid(windows_shared: bool, tuned=tmp_path / "no_table.json") -> str:
        results = tmp_path / f"shared_{windows_shared}" / "bench_results.csv"
        at96, searched_windows = 2000, 2000 if windows_shared else 1500  # SML2010's case: fewer windows at L=720
        for h in (96, 192, 336, 720):
            for i, seed in enumerate((2023, 2024, 2025)):
                e = i / 1000
                fm = 0.40 + e
                append_row(results, row("FMamba", seed, fm, h=h, n_test_windows=at96))
                # FMamba chose L=96 and scores alike on both tracks even on other windows: only the counts tell
                append_row(
                    results,
                    row("FMamba", seed, fm, h=h, lookback="searched", n_test_windows=searched_windows),
                )
                append_row(results, row("PatchTST", seed, 0.38 + e, h=h, preset="official", n_test_windows=at96))
                append_row(
                    results,
                    row(
                        "DLinear",
                        seed,
                        0.41 + e,
                        h=h,
                        preset="official",
                        lookback="searched",
                        input_size=192,
                        n_test_windows=searched_windows,
                    ),
                )
        return choosing.build(results, results.parent / "choosing.md", tuned=tuned).read_text()

    text = grid(windows_shared=True)
    searched = text.split("### ETTh1, searched, mean over H = 96, 192, 336, 720")[1].split("##")[0]
    assert "Best of ours **FMamba** 0.4010 against the best baseline **DLinear** 0.4110" in searched
    assert (
        "Not on this track at all four horizons yet (look-back study or seeds not run): PatchTST (L=96: 0.3810)."
        in searched
    )
    assert "PatchTST at L=96 alone already scores below this track's best baseline (DLinear 0.4110)" in searched
    assert "the verdict above is provisional until PatchTST's look-back study runs." in searched
    # once its study has run (a searched entry in the tuned table) the line names the look-back it chose
    from mamba_forecast.bench.tune import write_tuned

    table = tmp_path / "tuned.json"
    entry = {"settings": {"input_size": 512}, "input_size": "searched", "protocol": "converge", "horizons": "all"}
    write_tuned(table, "PatchTST", "ETTh1", {**entry, "source": "a look-back study"})
    write_tuned(table, "PatchTST", "ETTh2", {**entry, "settings": {"input_size": 192}, "source": "another dataset"})
    searched = grid(windows_shared=True, tuned=table).split("### ETTh1, searched, mean over H = 96, 192, 336, 720")
    searched = searched[1].split("##")[0]
    assert "PatchTST (L=96: 0.3810; its study chose L=512)." in searched
    assert "the verdict above is provisional until PatchTST's seeds at L=512 run." in searched
    # where the tracks are scored on different windows (SML2010's case) the L=96 means are listed, no verdict doubted
    text = grid(windows_shared=False)
    searched = text.split("### ETTh1, searched, mean over H = 96, 192, 336, 720")[1].split("##")[0]
    assert "PatchTST (L=96: 0.3810)." in searched and "provisional" not in searched
    assert "Not on this track" not in text.split("### ETTh1, L=96, mean over")[1].split("### ETTh1, searched")[0]
