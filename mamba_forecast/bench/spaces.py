"""The search spaces of ``mamba-forecast tune`` (:mod:`mamba_forecast.bench.tune`): the settings every model is
searched over (:func:`common_space`: learning rate, optimiser, schedule), each model's own choices, the look-backs
of a searched track, and how a study seeds its sampler and how many random draws start it."""

from __future__ import annotations

import zlib

from ..models import get_spec
from .baselines import BASELINES, is_baseline
from .presets import LINEAR
from .train import OPTIMIZERS

# the schedules a search chooses from under each protocol (converge: none that decays while the model improves)
SCHEDULES = {"official": ("type1", "cosine"), "converge": ("plateau", "constant")}


COMMON = ("learning_rate", "optimizer", "lradj")


def common_space(trial, protocol: str = "official", keys: tuple[str, ...] = COMMON) -> dict:
    """The settings every model is searched over, those of ``keys`` alone suggested to the trial (a grid sampler
    refuses a setting outside its grid, so a search narrowed by ``only`` must not ask for the others)."""
    suggest = {
        "learning_rate": lambda: trial.suggest_float("learning_rate", 1e-5, 3e-3, log=True),
        "optimizer": lambda: trial.suggest_categorical("optimizer", list(OPTIMIZERS)),
        "lradj": lambda: trial.suggest_categorical("lradj", list(SCHEDULES[protocol])),
    }
    return {k: suggest[k]() for k in COMMON if k in keys}


def model_choices(model: str) -> dict[str, tuple]:
    """The choices of model ``model``'s own part of the search (its spec's ``bench.tune_space``, or a
    NeuralForecast baseline's ``tune_space``)."""
    if model == LINEAR:
        return {}
    if is_baseline(model):
        return dict(BASELINES[model].tune_space)
    return {k: tuple(c.values) for k, c in get_spec(model).bench.tune_space.items()}


def search_space(model: str, protocol: str = "official", lookbacks: tuple[int, ...] = (), only: tuple[str, ...] = ()):
    """Model ``model``'s search under ``protocol``: :func:`common_space` plus :func:`model_choices`, and the look-back
    from ``lookbacks`` when given, as a function of an Optuna trial returning preset fields / model arguments.
    ``only``: search these settings alone (the others stay as the cell's preset has them)."""
    choices = model_choices(model)
    if lookbacks:
        choices = {"input_size": tuple(lookbacks), **choices}
    if only:
        unknown = sorted(set(only) - set(choices) - set(COMMON))
        if unknown:
            raise ValueError(
                f"only: {model} has no setting {', '.join(unknown)} to search; its settings: "
                f"learning_rate, optimizer, lradj, {', '.join(choices)}"
            )

    def space(trial) -> dict:
        common = common_space(trial, protocol, tuple(k for k in COMMON if not only or k in only))
        own = {k: trial.suggest_categorical(k, list(v)) for k, v in choices.items() if not only or k in only}
        return {**common, **own}

    return space


def grid(model: str, protocol: str, lookbacks: tuple[int, ...], only: tuple[str, ...]) -> dict[str, list] | None:
    """The full grid of a search over categorical settings only (``only`` naming neither the learning rate nor a
    continuous setting), for Optuna's grid sampler; None otherwise."""
    choices = {"input_size": tuple(lookbacks), **model_choices(model)} if lookbacks else model_choices(model)
    choices = {**choices, "optimizer": OPTIMIZERS, "lradj": SCHEDULES[protocol]}
    if not only or any(k not in choices for k in only):
        return None
    return {k: list(choices[k]) for k in only}


def startup_trials(trials: int) -> int:
    """How many of a search's ``trials`` are random draws before the sampler models the results: a quarter,
    between 1 and 5 (a 20-trial search learns from 5 draws for 15 trials)."""
    return max(1, min(5, trials // 4))


def study_seed(seed: int, study_name: str) -> int:
    """The sampler's seed of one study: ``seed`` mixed with the study's name, so studies of other datasets,
    models or look-backs draw other random settings first (with one seed for all, every study tried the same
    start-up configurations)."""
    return (seed * 1_000_003 + zlib.crc32(study_name.encode())) % 2**31
