"""The ``bench``, ``tune`` and ``report`` subcommands of ``mamba-forecast`` (see :mod:`mamba_forecast.cli`).

Arguments and handlers only: nothing here imports torch until a handler runs (``mamba-forecast --help`` stays
fast), and ``bench``, ``tune`` and ``report`` write under one results folder (``--results-dir``, else
``$MAMBA_FORECAST_RESULTS``, else ``./mamba_forecast_results``; see :mod:`mamba_forecast.bench.records`), never
inside the installed package.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def _csv_list(text: str, cast=str) -> list:
    return [cast(t.strip()) for t in str(text).split(",") if t.strip()]


def _overrides(items: list[str] | None) -> dict:
    out = {}
    for item in items or []:
        for pair in _csv_list(item):
            key, _, value = pair.partition("=")
            if value.strip().lower() in ("true", "false"):
                out[key.strip()] = value.strip().lower() == "true"
                continue
            for cast in (int, float):
                try:
                    value = cast(value)
                    break
                except ValueError:
                    continue
            out[key.strip()] = value
    return out


# --------------------------------------------------------------------------------------------- data
_CSV_HELP = (
    "a CSV in the standard layout (a 'date' column, then numeric series columns) instead of --dataset; "
    "split 7:1:2 (train / validation / test, as the custom sets of the literature)"
)


def _add_dataset_arguments(p, several: bool) -> None:
    """--dataset / --csv / --target / --data-dir, shared by bench and tune."""
    from .datasets import DATASETS

    names = ", ".join(DATASETS)
    p.add_argument(
        "--dataset",
        default=None,
        help=(f"comma-separated registered sets: {names}" if several else f"a registered set: {names}"),
    )
    p.add_argument("--csv", default=None, metavar="PATH", help=_CSV_HELP)
    p.add_argument(
        "--target",
        default=None,
        metavar="COL",
        help="with --csv: the target column, moved last (default: OT where present, else the last column)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder with the benchmark files (default: $MAMBA_FORECAST_DATA, else the user cache "
        "~/.cache/mamba_forecast, where `mamba-forecast data download` puts them)",
    )


def _datasets(args) -> list[str]:
    """The dataset names of a bench / tune call; checks them (and a --csv file) before anything trains."""
    from .datasets import canonical_name, register_csv

    if (args.dataset is None) == (args.csv is None):
        raise SystemExit("pass either --dataset NAME or --csv PATH (one of them)")
    if args.target is not None and args.csv is None:
        raise SystemExit("--target goes with --csv (a registered set's target is fixed by the registry)")
    if args.csv is not None:
        try:
            return [register_csv(args.csv, args.target)]
        except (FileNotFoundError, ValueError) as exc:
            raise SystemExit(str(exc)) from None
    names = _csv_list(args.dataset)
    try:
        return [canonical_name(n) for n in names]
    except KeyError as exc:
        raise SystemExit(f"--dataset: {exc.args[0]}") from None


def _add_results_dir(p) -> None:
    p.add_argument(
        "--results-dir",
        default=None,
        metavar="DIR",
        help="folder of results and run records that the other paths default to (default: "
        "$MAMBA_FORECAST_RESULTS, else ./mamba_forecast_results)",
    )


def _results_path(args, name: str) -> Path:
    from .bench.records import results_dir

    return results_dir(args.results_dir) / name


def _known_models() -> tuple[str, ...]:
    from .bench.presets import known_models  # imports torch: only when a model name is parsed

    return known_models()


def _model_name(text: str) -> str:
    """``--model`` of ``tune``: one registered model (or the harness's Linear)."""
    name = text.strip()
    if name not in _known_models():
        raise argparse.ArgumentTypeError(f"unknown model {name!r}; choose from {', '.join(_known_models())}")
    return name


def _existing_file(text: str) -> str:
    """A file argument that must exist already (a table to read)."""
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return text


def _lookback(text: str) -> int | str:
    """``--input-size``: a positive number of steps, or ``searched`` (the look-back a tuned search chose)."""
    if text.strip().lower() == "searched":
        return "searched"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of steps or 'searched', got {text!r}")
    return value


def _protocols() -> tuple[str, ...]:
    return ("converge", "official")  # mamba_forecast.bench.train.PROTOCOLS (not imported here: torch)


def _add_compute_arguments(p) -> None:
    """``--precision`` and ``--compile``: how, not what, the harness loop computes."""
    p.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16-mixed"),  # mamba_forecast.bench.train.PRECISIONS (not imported here: torch)
        help="fp32 (default) or bf16-mixed: the forward passes under bf16 autocast, the loss and the scan in "
        "fp32 (a GPU speed-up; slower than fp32 on a CPU); recorded in each row",
    )
    p.add_argument(
        "--compile",
        nargs="?",
        const=True,
        default=False,
        metavar="MODE|BACKEND",
        help="run the model through torch.compile: alone, inductor's default mode; or an inductor mode "
        "(reduce-overhead, max-autotune, ...) or another backend's name (aot_eager, ...)",
    )


def _model_list(text: str) -> str:
    """``--model`` of ``bench``: comma-separated registered models, checked before any data is read."""
    for name in _csv_list(text):
        _model_name(name)
    return text


# ---------------------------------------------------------------------------------------------- bench
def _add_bench(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="train and score models under the standard long-horizon protocol",
        description="Train and score cells (dataset x model x horizon x seed); each finished "
        "cell is appended to the CSV and skipped on a rerun.",
    )
    _add_dataset_arguments(p, several=True)
    p.add_argument(
        "--model",
        required=True,
        type=_model_list,
        help="comma-separated: SMamba,AttentionMamba,FMamba,TSM2 (any registered model), NeuralForecast's "
        "PatchTST,iTransformer,TSMixer,DLinear,NHITS,TimeMixer,SOFTS as baselines; Linear checks "
        "the harness",
    )
    p.add_argument("--horizon", default="96", help="comma-separated horizons (default 96)")
    p.add_argument("--seeds", default="2023", help="comma-separated seeds (default 2023)")
    p.add_argument(
        "--input-size",
        type=_lookback,
        default=None,
        help="look-back (default: the preset's, 96; TSM2 512), or 'searched': the one `tune --input-size "
        "searched` chose",
    )
    p.add_argument(
        "--protocol",
        default=None,
        choices=_protocols(),
        help="training protocol: converge (default: every validation window, up to 100 epochs, patience "
        "5, the rate halved on plateaus) or official (the papers' loop: the preset's epochs, "
        "patience 3, shuffled drop-last validation; the default with --via neuralforecast)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="max epochs (default: the protocol's: 100, or the preset's under official)",
    )
    p.add_argument("--device", default="auto", help="cpu | cuda | auto (default)")
    p.add_argument(
        "--via",
        default="harness",
        choices=["harness", "neuralforecast"],
        help="train with the harness loop or through mamba_forecast.neuralforecast",
    )
    p.add_argument(
        "--preset",
        default="tuned",
        choices=["tuned", "official"],
        help="preset table: tuned (default; the official row where nothing was tuned at this input "
        "size and horizon) or official",
    )
    _add_results_dir(p)
    p.add_argument(
        "--presets-file",
        type=_existing_file,
        default=None,
        help="tuned table that --preset tuned reads over the one shipped in the package (its entries "
        "win), e.g. one `tune --presets-file` wrote (default: <results dir>/tuned_presets.json "
        "where it exists)",
    )
    p.add_argument("--out", default=None, help="results CSV (appended; default: <results dir>/bench_results.csv)")
    p.add_argument(
        "--samples",
        default=None,
        metavar="CSV",
        help="where one test window per cell is saved for the report (default: <out dir>/samples.csv)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override preset fields, e.g. --set d_model=64,batch_size=64 (noted in the CSV)",
    )
    p.add_argument("--max-train-batches", type=int, default=None, help="cap batches per epoch (smoke tests)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    _add_compute_arguments(p)
    p.add_argument("--no-resume", action="store_true", help="rerun cells already in the CSV")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_bench)


def _run_bench(args) -> int:
    import signal

    import torch

    # a terminated sweep still removes its cell lock (the runner's `finally`)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from .bench.records import RESULTS_FILE, SAMPLES_FILE, TUNED_FILE
    from .bench.runner import Cell, run_cells

    datasets = _datasets(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    # NeuralForecast's own loop is set up like the official protocol (bench/via_neuralforecast.py)
    protocol = args.protocol or ("official" if args.via == "neuralforecast" else "converge")
    tuned = args.presets_file
    if tuned is None and _results_path(args, TUNED_FILE).is_file():
        tuned = str(_results_path(args, TUNED_FILE))
    cells = [
        Cell(
            dataset=d,
            model=m,
            horizon=h,
            seed=s,
            input_size=args.input_size,
            epochs=args.epochs,
            via=args.via,
            preset=args.preset,
            tuned_path=tuned,
            protocol=protocol,
            precision=args.precision,
            compile=args.compile,
        )
        for d in datasets
        for m in _csv_list(args.model)
        for h in _csv_list(args.horizon, int)
        for s in _csv_list(args.seeds, int)
    ]
    out = Path(args.out) if args.out else _results_path(args, RESULTS_FILE)
    samples = Path(args.samples) if args.samples else out.parent / SAMPLES_FILE
    run_cells(
        cells,
        out,
        resume=not args.no_resume,
        data_dir=args.data_dir,
        device=args.device,
        overrides=_overrides(args.set),
        max_train_batches=args.max_train_batches,
        progress=not args.no_progress,
        samples=samples,
    )
    return 0


# ----------------------------------------------------------------------------------------------- tune
def _add_tune(sub) -> None:
    p = sub.add_parser(
        "tune",
        help="search a model's hyper-parameters on the validation split (Optuna)",
        description="Search one model's space on one dataset, scored on the validation split only "
        "(the test split is not read); the winner goes to the tuned preset table, keyed "
        "by the model, the dataset, the input size and (with --per-horizon) the horizon.",
    )
    p.add_argument(
        "--model",
        required=True,
        type=_model_name,
        help="SMamba, AttentionMamba, FMamba or TSM2 (any registered model), or a NeuralForecast "
        "baseline (PatchTST, iTransformer, TSMixer, DLinear, NHITS, TimeMixer, SOFTS)",
    )
    _add_dataset_arguments(p, several=False)
    p.add_argument("--horizon", type=int, default=96, help="horizon scored during the search (default 96)")
    p.add_argument(
        "--trials",
        type=int,
        default=20,
        help="number of trials (default 20: the first 5 are the sampler's random start-up draws)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=2023,
        help="seed of the search (each study draws from it and its model, dataset, look-back and "
        "horizon) and of every trial (default 2023)",
    )
    p.add_argument(
        "--input-size",
        type=_lookback,
        default=None,
        help="look-back (default: the preset's), or 'searched': the look-back is one more setting, "
        "chosen from 96, 192, 336, 512, 720 on validation",
    )
    p.add_argument(
        "--protocol",
        default="converge",
        choices=_protocols(),
        help="training protocol of every trial (default converge; see `bench --help`)",
    )
    p.add_argument(
        "--only",
        default=None,
        metavar="SETTINGS",
        help="comma-separated settings to search alone, the others kept as the cell's preset has them; e.g. "
        "`--input-size searched --only input_size` tries each look-back once (default: the whole space)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="max epochs per trial (default: the protocol's: 100, or 10 under official)",
    )
    p.add_argument("--device", default="auto", help="cpu | cuda | auto (default)")
    p.add_argument(
        "--per-horizon",
        action="store_true",
        help="the winner is for --horizon only (default: for every horizon at this input size; an entry "
        "for one horizon wins over one for all)",
    )
    _add_results_dir(p)
    p.add_argument(
        "--presets-file",
        default=None,
        help="tuned table to update (default: <results dir>/tuned_presets.json, which bench reads)",
    )
    p.add_argument(
        "--trials-log",
        default=None,
        help="CSV that every trial is appended to (default: <results dir>/tuning_trials.csv)",
    )
    p.add_argument(
        "--study-file",
        default=None,
        help="Optuna journal that lets a cut-off search resume (default: <results dir>/tuning_studies.journal)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="worker processes sharing the study file (several small models fit one GPU at once); "
        "the study still gets exactly --trials trials (default 1)",
    )
    p.add_argument("--max-train-batches", type=int, default=None, help="cap batches per epoch (smoke tests)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    _add_compute_arguments(p)
    p.set_defaults(func=_run_tune)


def _run_tune(args) -> int:
    import torch

    from .bench.records import STUDY_FILE, TRIALS_FILE, TUNED_FILE
    from .bench.tune import tune

    datasets = _datasets(args)
    if len(datasets) != 1:
        raise SystemExit(f"tune searches one dataset at a time; got --dataset {args.dataset}")
    (dataset,) = datasets
    if args.threads:
        torch.set_num_threads(args.threads)
    tune(
        args.model,
        dataset,
        args.horizon,
        trials=args.trials,
        seed=args.seed,
        data_dir=args.data_dir,
        device=args.device,
        input_size=args.input_size,
        epochs=args.epochs,
        protocol=args.protocol,
        only=tuple(_csv_list(args.only or "")),
        max_train_batches=args.max_train_batches,
        precision=args.precision,
        compile=args.compile,
        per_horizon=args.per_horizon,
        presets_file=args.presets_file or _results_path(args, TUNED_FILE),
        trials_log=args.trials_log or _results_path(args, TRIALS_FILE),
        study_file=args.study_file or _results_path(args, STUDY_FILE),
        jobs=args.jobs,
        log=lambda msg: print(msg, flush=True),
    )
    return 0


# --------------------------------------------------------------------------------------------- report
def _add_report(sub) -> None:
    p = sub.add_parser("report", help="write a markdown page and figures from the results CSV")
    _add_results_dir(p)
    p.add_argument("--results", default=None, help="results CSV (default: <results dir>/bench_results.csv)")
    p.add_argument(
        "--samples",
        default=None,
        metavar="CSV",
        help="test windows for the forecast figures (default: samples.csv beside --results)",
    )
    p.add_argument("--out", default=None, help="markdown file to write (default: <results dir>/benchmarks.md)")
    p.add_argument("--figures", default=None, help="figure folder (default: <out dir>/figures)")
    p.add_argument(
        "--published",
        default=None,
        help="published results CSV: dataset,input_size,horizon,model,mse,mae,source (default: the "
        "table shipped in the package, mamba_forecast/bench/published.csv)",
    )
    p.add_argument("--no-figures", action="store_true")
    p.set_defaults(func=_run_report)


def _run_report(args) -> int:
    from .bench.records import REPORT_FILE, RESULTS_FILE
    from .bench.report import write_report

    results = args.results or _results_path(args, RESULTS_FILE)
    path = write_report(
        results,
        args.out or _results_path(args, REPORT_FILE),
        figures_dir=args.figures,
        published=args.published,
        figures=not args.no_figures,
        samples=args.samples,
        command=shlex.join(["mamba-forecast", *args.argv]),
    )
    print(f"wrote {path}")
    return 0
