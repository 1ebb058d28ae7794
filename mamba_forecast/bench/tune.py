"""``mamba-forecast tune``: a hyper-parameter search scored on the validation split only.

Each trial trains one model with the protocol's loop (:func:`~mamba_forecast.bench.train.train`: train split,
validation each epoch, early stopping, best epoch restored) and returns the best validation criterion. The
test split is never read: ``train`` touches only the train and validation segments, and no score of the test
split exists during the search. Optuna's TPE sampler proposes the settings and its median pruner stops a trial
whose validation loss after an epoch is worse than the median of earlier trials at that epoch.

The search space is :func:`~mamba_forecast.bench.spaces.search_space`: the model's own choices (its spec's
``bench.tune_space``, or a NeuralForecast baseline's ``tune_space``) on top of the shared ones (learning rate,
optimiser and schedule), so
every model, ours and NeuralForecast's, gets the same kind of search and the same budget; with
``input_size="searched"`` the look-back is one more choice (:data:`~mamba_forecast.bench.protocol.LOOKBACKS`; all
of them score the same
validation windows). Every trial trains under one protocol (:data:`~mamba_forecast.bench.train.PROTOCOLS`:
``converge`` by default, up to 100 epochs ended by early stopping; ``official`` with :data:`TUNE_EPOCHS`
epochs) on top of the cell's official preset (sizes and batch stay the official ones). The sampler's seed is
drawn from ``seed`` and the study's name (model, dataset, look-back, horizon, protocol), so two studies do not
try the same random settings first, and its first
:func:`~mamba_forecast.bench.spaces.startup_trials` trials are random draws. The winner is
written to a tuned table (``presets_file``; the CLI's default is ``tuned_presets.json`` in the results folder)
with its source, validation MSE, trial counts and seed, keyed by the look-back it was tuned at, the protocol and
the horizons it is for (every horizon, or with ``per_horizon`` only the one scored), and every trial is appended
to a CSV log. With a study file (an Optuna journal) a search
that was cut off resumes where it stopped: finished trials count towards ``trials`` and are not run again. With
``jobs`` > 1 that journal is shared by as many worker processes (one GPU runs several small models at once); the
trials are split between them, so the study still has exactly ``trials`` finished trials, and the winner is
written once, after they have all ended.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path

from ..datasets import canonical_name
from .models import build_model, forward, uses_calendar_tokens
from .presets import SEARCHED, Preset, apply_settings, entry_slot, get_preset, known_models, read_tuned
from .protocol import LOOKBACKS, prepare
from .records import locked, read_rows
from .runner import append_row, resolve_device, set_seed
from .spaces import grid, search_space, startup_trials, study_seed
from .train import DEFAULT_PROTOCOL, get_protocol, train

TUNE_EPOCHS = 10  # epochs of a trial under the official protocol (its papers' 10-epoch budget)
TRIAL_COLUMNS = [
    "dataset",
    "model",
    "input_size",
    "horizon",
    "seed",
    "trial",
    "state",
    "val_mse",
    "epochs_run",
    "best_epoch",
    "sec",
    "settings",
    "timestamp",
    "protocol",
    "lookback",
    "precision",
]


def write_tuned(path: Path, model: str, dataset: str, entry: dict) -> None:
    """Put one entry in the tuned table at ``path``, replacing the entry for the same look-back and horizons
    (:func:`~mamba_forecast.bench.presets.entry_slot`) and keeping the others; keys and entries sorted so diffs
    stay small. The read and the write hold the table's lock, so searches of other cells finishing at the same
    moment keep each other's entries."""
    path = Path(path)
    with locked(path):
        table = read_tuned(path)
        entries = [e for e in table.setdefault(model, {}).get(dataset, []) if entry_slot(e) != entry_slot(entry)]
        table[model][dataset] = sorted(
            entries + [entry],
            key=lambda e: (e["protocol"], str(e["input_size"]).zfill(8), e["horizons"] != "all", str(entry_slot(e)[1])),
        )
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        with open(tmp, "w") as fh:
            json.dump(table, fh, indent=1, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)


def _check_writable(name: str, flag: str, path) -> None:
    """Raise, before any training, when ``path`` cannot be written: a search that ends after an hour must not
    fail on saving (a folder of the installed package, say, may be read-only)."""
    if path is None:
        return
    path = Path(path)
    target = path if path.exists() else next(p for p in path.absolute().parents if p.exists())
    if not os.access(target, os.W_OK):
        raise ValueError(
            f"{name} ({flag}): cannot write {path} ({target} is read-only); pass {flag} with a path you can write to"
        )


def tune(
    model: str,
    dataset: str,
    horizon: int = 96,
    *,
    trials: int = 8,
    seed: int = 2023,
    data_dir=None,
    frame=None,
    device: str | None = None,
    input_size: int | str | None = None,
    epochs: int | None = None,
    protocol: str = DEFAULT_PROTOCOL,
    only: tuple[str, ...] = (),
    max_train_batches: int | None = None,
    precision: str = "fp32",
    compile: bool | str = False,
    presets_file: str | Path | None = None,
    per_horizon: bool = False,
    trials_log: str | Path | None = None,
    study_file: str | Path | None = None,
    progress: bool = False,
    jobs: int = 1,
    log=print,
    _worker: tuple[int, int, frozenset] | None = None,
) -> dict | None:
    """Search ``model``'s space on ``dataset`` at ``horizon``; return (and write to ``presets_file`` unless it is
    None) the tuned entry: ``settings``, ``val_mse``, ``trials``, ``completed``, ``pruned``, ``seed``, ``source``,
    ``input_size`` and ``tuned_horizon``, and ``horizons``: ``"all"`` (the winner is applied at every horizon of
    this look-back), or with ``per_horizon`` ``[horizon]`` (only at this one; such an entry wins over an
    all-horizons one).

    ``input_size="searched"`` makes the look-back a setting of the search (:data:`LOOKBACKS`, those with windows
    in every split at ``horizon``); the entry is then keyed ``"searched"`` and its settings hold the look-back.
    ``protocol``: how every trial trains (``epochs``: its cap, default the protocol's, :data:`TUNE_EPOCHS` under
    ``official``); the entry counts only for cells under the same protocol. ``only``: search these settings alone,
    from the cell's preset (its tuned or default entry under ``protocol``, at the official look-back, read from
    ``presets_file`` and the package's table), whose settings the entry keeps; when they are all categorical
    (``("input_size",)`` with a searched look-back, say) every combination is tried once, without pruning, and
    ``trials`` is at most their number.

    ``precision`` and ``compile``: how every trial computes (:func:`~mamba_forecast.bench.train.train`); the
    trials log records the precision.

    ``jobs`` > 1 runs the trials in that many processes sharing ``study_file`` (required then); each proposes
    from its own sampler seed, so the search is no longer reproducible trial by trial, but the study has exactly
    ``trials`` finished trials (a grid keeps one order in every process: each combination is still tried once)."""
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("`mamba-forecast tune` needs Optuna: pip install optuna") from exc
    if model not in known_models():
        raise ValueError(f"model must be one of {', '.join(known_models())}, got {model!r}")
    if not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a positive integer, got {trials!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if jobs > 1 and study_file is None:
        raise ValueError(
            "jobs > 1 needs study_file: the worker processes share their trials through an Optuna "
            "journal (the CLI's --study-file)"
        )
    for name, flag, path in (
        ("presets_file", "--presets-file", presets_file),
        ("trials_log", "--trials-log", trials_log),
        ("study_file", "--study-file", study_file),
    ):
        _check_writable(name, flag, path)
    rules = get_protocol(protocol)
    dataset = canonical_name(dataset)
    official: Preset = get_preset(model, dataset, horizon, "official")
    carried: dict = {}  # with ``only``: the cell's settings that the search leaves alone, kept in the entry
    if only:
        start = get_preset(model, dataset, horizon, "tuned", presets_file, protocol=protocol)
        carried = {
            "learning_rate": start.learning_rate,
            "optimizer": start.optimizer,
            "lradj": start.lradj,
            **start.extra,
        }
        official = apply_settings(official, carried)
    searched = input_size == SEARCHED
    if epochs is None:
        epochs = TUNE_EPOCHS if protocol == "official" else rules.epochs(official.epochs)
    base = replace(
        official, epochs=epochs, input_size=int(input_size) if input_size and not searched else official.input_size
    )
    lookback = SEARCHED if searched else base.input_size
    tag = f"[tune {model} {dataset} L={lookback} H={horizon} {protocol}]"
    datas: dict[int, object] = {}

    def data_for(length: int):
        if length not in datas:
            datas[length] = prepare(dataset, length, data_dir=data_dir, frame=frame)
        return datas[length]

    lookbacks: tuple[int, ...] = ()
    if searched:
        lookbacks = data_for(base.input_size).lookbacks_with_windows(horizon, LOOKBACKS)
        if not lookbacks:
            raise ValueError(
                f"input_size='searched': {dataset} has no window in every split for any look-back of "
                f"{LOOKBACKS} at horizon {horizon}; give a shorter --input-size"
            )
    data = data_for(base.input_size if not searched else lookbacks[0])
    data.check_windows(horizon)
    dev = resolve_device(device)
    use_marks = uses_calendar_tokens(model, base) and data.calendar_tokens
    space = search_space(model, protocol, lookbacks, only)
    combos = grid(model, protocol, lookbacks, only)
    if combos is not None:
        trials = min(trials, math.prod(len(v) for v in combos.values()))
    log_path = Path(trials_log) if trials_log else None

    def objective(trial):
        settings = space(trial)
        preset = apply_settings(base, settings)
        training = rules.settings(preset)
        trial_data = data_for(preset.input_size)
        set_seed(seed)
        net = build_model(model, preset, trial_data.n_series, preset.input_size, horizon, use_marks, seed=seed)
        seen = []  # validation loss of each epoch run

        def report(epoch, val_loss):
            seen.append(val_loss)
            trial.report(val_loss, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch} (val {val_loss:.5f})")

        t0 = time.time()
        state, result = "complete", None
        try:
            result = train(
                net,
                trial_data,
                horizon,
                forward_fn=lambda m, x, xm: forward(m, x, xm, use_marks),
                epochs=epochs,
                batch_size=preset.batch_size,
                learning_rate=preset.learning_rate,
                patience=training["patience"],
                optimizer=preset.optimizer,
                lradj=training["lradj"],
                validation=rules.validation,
                device=dev,
                seed=seed,
                max_train_batches=max_train_batches,
                precision=precision,
                compile=compile,
                progress=progress,
                log=lambda *_: None,
                on_epoch=report,
            )
        except optuna.TrialPruned:
            state = "pruned"
            raise
        except Exception:
            state = "failed"
            raise
        finally:
            value = result.best_val_loss if result is not None else min(seen, default=float("nan"))
            log(f"{tag} trial {trial.number}: {state}, val {value:.5f}, {time.time() - t0:.0f}s, {settings}")
            if log_path is not None:
                append_row(
                    log_path,
                    columns=TRIAL_COLUMNS,
                    row=dict(
                        dataset=dataset,
                        model=model,
                        input_size=preset.input_size,
                        horizon=horizon,
                        seed=seed,
                        protocol=protocol,
                        lookback=lookback,
                        precision=precision,
                        trial=trial.number,
                        state=state,
                        val_mse=f"{value:.6f}",
                        epochs_run=len(seen),
                        best_epoch=result.best_epoch if result is not None else "",
                        sec=f"{time.time() - t0:.1f}",
                        settings=json.dumps(settings, sort_keys=True),
                        timestamp=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                    ),
                )
        return result.best_val_loss

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = None
    if study_file is not None:  # a journal file: a study cut off (a killed process, a session's end) resumes
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        Path(study_file).parent.mkdir(parents=True, exist_ok=True)
        storage = JournalStorage(JournalFileBackend(str(study_file)))
    # (studies of the official protocol keep the names they had before there were two protocols)
    study_name = f"{model}-{dataset}-L{lookback}-H{horizon}-s{seed}-e{epochs}"
    if protocol != "official":
        study_name += f"-{protocol}"
    if only:
        study_name += "-only-" + "+".join(only)
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        load_if_exists=True,
        direction="minimize",
        pruner=optuna.pruners.NopPruner()
        if combos is not None
        else optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = sum(t.state in finished for t in study.trials)
    # TPE: a resumed search draws new proposals (seed + finished trials), not the first ones again; a parallel
    # worker draws from its own seed and counts the others' running trials as bad ("constant liar")
    first = study_seed(seed, study_name)
    if _worker is None:
        sampler_seed, parallel = first + done, False
    else:
        sampler_seed, parallel = first + _worker[1] + 7919 * _worker[0], True
    study.sampler = (
        # one shuffle of the grid for every resume and worker: the grid ids the journal records index into it
        optuna.samplers.GridSampler(combos, seed=first)
        if combos is not None
        else optuna.samplers.TPESampler(
            seed=sampler_seed, constant_liar=parallel, n_startup_trials=startup_trials(trials)
        )
    )
    remaining = max(0, trials - done)
    if _worker is not None:
        assert study_file is not None  # a worker shares the study file (required with jobs > 1, checked above)
        _claim_trials(study, objective, trials, Path(study_file), stale=_worker[2])
        return None
    if done:
        log(f"{tag} resuming: {done} of {trials} trials already finished")
    if jobs > 1 and remaining > 1:
        n = min(jobs, remaining)
        stale = frozenset(t.number for t in study.trials if t.state == optuna.trial.TrialState.RUNNING)
        _run_workers(
            [(i, done, stale) for i in range(n)],
            dict(
                model=model,
                dataset=dataset,
                horizon=horizon,
                trials=trials,
                seed=seed,
                data_dir=data_dir,
                frame=frame,
                device=device,
                input_size=input_size,
                epochs=epochs,
                protocol=protocol,
                only=only,
                max_train_batches=max_train_batches,
                precision=precision,
                compile=compile,
                trials_log=trials_log,
                study_file=study_file,
            ),
        )
        assert storage is not None  # jobs > 1 needs study_file, checked above
        study = optuna.load_study(study_name=study.study_name, storage=storage)
    elif remaining:
        study.optimize(objective, n_trials=remaining)
    states = [t.state for t in study.trials if t.state in finished]
    completed = sum(s == optuna.trial.TrialState.COMPLETE for s in states)
    pruned = sum(s == optuna.trial.TrialState.PRUNED for s in states)
    best = study.best_trial
    best_value = best.value if best.value is not None else math.nan  # a complete trial has its value
    settings = {**carried, **best.params, "epochs": epochs}
    chosen = f" (chose {settings['input_size']})" if searched else ""
    narrowed = ", only {} searched".format("+".join(only)) if only else ""
    entry = {
        "settings": settings,
        "val_mse": round(float(best_value), 6),
        "trials": len(states),
        "completed": completed,
        "pruned": pruned,
        "seed": seed,
        "input_size": lookback,
        "protocol": protocol,
        "tuned_horizon": horizon,
        "horizons": [horizon] if per_horizon else "all",
        "source": f"tuned on validation, {len(states)} trials, seed {seed}, {protocol} protocol ({dataset} "
        f"L={lookback}{chosen}{narrowed} "
        f"H={horizon}, for {f'H={horizon} only' if per_horizon else 'every horizon'}; "
        f"val MSE {best.value:.4f})",
        "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    log(f"{tag} best trial {best.number}: val {best.value:.5f} {settings} ({completed} complete, {pruned} pruned)")
    if presets_file is not None:
        write_tuned(Path(presets_file), model, dataset, entry)
    return entry


def _claim_trials(study, objective, trials: int, study_file: Path, stale: frozenset) -> None:
    """One worker's loop: while the study has fewer than ``trials`` trials finished or running (``stale``: trials
    left RUNNING by a process killed before this search started, not counted), claim the next one and run it.
    Claiming holds a lock on the study file, so the workers together run exactly ``trials``, and a worker whose
    trials end early (pruned) takes the next one instead of idling while another works through a fixed share."""
    import optuna

    TrialState = optuna.trial.TrialState
    while True:
        with locked(study_file.with_name(study_file.name + ".claim")):  # not <journal>.lock: Optuna's own
            claimed = sum(
                t.state in (TrialState.COMPLETE, TrialState.PRUNED)
                or (t.state == TrialState.RUNNING and t.number not in stale)
                for t in study.get_trials(deepcopy=False)
            )
            if claimed >= trials:
                return
            trial = study.ask()
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)
            raise
        else:
            study.tell(trial, value)


def _worker_main(share: tuple[int, int, frozenset], kwargs: dict) -> None:
    tune(**kwargs, presets_file=None, log=lambda msg: print(f"[worker {share[0]}] {msg}", flush=True), _worker=share)


def _run_workers(shares: list[tuple[int, int, frozenset]], kwargs: dict) -> None:
    """Run the remaining trials in processes that share the study's journal, ``(index, trials finished before,
    stale running trials)`` each; raise if one fails."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # a fresh interpreter per worker: no forked CUDA or thread state
    procs = [ctx.Process(target=_worker_main, args=(share, kwargs), daemon=False) for share in shares]
    n = len(procs)
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [i for i, p in enumerate(procs) if p.exitcode != 0]
    if failed:
        raise RuntimeError(
            f"tune: worker(s) {failed} of {n} failed (exit codes "
            f"{[procs[i].exitcode for i in failed]}); finished trials are kept in the study file "
            f"and a rerun resumes them"
        )


def choose_default(
    trials_log: str | Path, model: str, *, protocol: str = "official", input_size: int = 96, min_datasets: int = 3
) -> dict | None:
    """The default entry of ``model`` for datasets it was not tuned on, chosen on validation from the searches in
    ``trials_log``: among the settings whose trials completed on the most datasets (all but one at least, and
    ``min_datasets``), the one whose validation MSE is closest to each dataset's best, on average (relative gap).
    Uses only validation scores (the log holds no test score) of fp32 trials; ``None`` where too few datasets were
    searched.

    The entry (dataset ``"*"`` in a tuned table: :data:`~mamba_forecast.bench.presets.DEFAULT`) holds the
    settings, the datasets, each gap and its mean, and says how it was chosen in ``source``."""
    rows = [
        r
        for r in read_rows(trials_log)
        if r["model"] == model
        and r["state"] == "complete"
        and (r.get("protocol") or "official") == protocol
        and (r.get("precision") or "fp32") == "fp32"
        and str(r["input_size"]) == str(input_size)
    ]
    best: dict[str, float] = {}
    for r in rows:
        best[r["dataset"]] = min(best.get(r["dataset"], math.inf), float(r["val_mse"]))
    gaps: dict[str, dict[str, float]] = {}  # settings -> dataset -> relative gap to that dataset's best
    for r in rows:
        settings = {k: v for k, v in json.loads(r["settings"]).items() if k != "epochs"}
        key = json.dumps(settings, sort_keys=True)
        gap = float(r["val_mse"]) / best[r["dataset"]] - 1.0
        gaps.setdefault(key, {})[r["dataset"]] = min(gap, gaps.get(key, {}).get(r["dataset"], math.inf))
    need = max(min_datasets, len(best) - 1)
    candidates = {k: g for k, g in gaps.items() if len(g) >= need}
    if not candidates:
        return None
    key, chosen = min(candidates.items(), key=lambda kv: (sum(kv[1].values()) / len(kv[1]), kv[0]))
    mean_gap = sum(chosen.values()) / len(chosen)
    datasets = sorted(chosen)
    return {
        "settings": json.loads(key),
        "default": True,
        "datasets": datasets,
        "val_gaps": {d: round(chosen[d], 5) for d in datasets},
        "input_size": input_size,
        "protocol": protocol,
        "tuned_horizon": 96,
        "horizons": "all",
        "source": f"default for a dataset without a tuned entry: the settings closest to each search's best on "
        f"validation ({mean_gap:.2%} on average over {', '.join(datasets)}; {protocol} protocol, "
        f"L={input_size})",
        "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
