"""Hyperparameter search for the NeuralForecast models, with Ray Tune or Optuna (NeuralForecast's ``BaseAuto``).

The search spaces never contain ``n_series``: the models read it from the data at ``fit``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from neuralforecast.losses.pytorch import MAE
from ray import tune
from ray.tune.search.basic_variant import BasicVariantGenerator

from ..models.spec import TRAINING_SPACE, Choice, LogUniform, ModelSpec, RandInt
from ._base import MambaForecaster
from ._compat import BaseAuto, MockTrial, panel_index, ray_config_to_optuna, with_panel_index


class MambaAuto(BaseAuto):
    """Base of the ``Auto`` classes: NeuralForecast's ``BaseAuto`` with a default space for either backend.

    A subclass (``AutoSMamba`` ..., one per model, next to its model class) sets ``model_class``,
    ``default_config`` (Ray Tune domains, with ``input_size_multiplier`` as in NeuralForecast: see
    :func:`ray_search_space`) and ``derived``: arguments computed from the sampled ones (e.g. ``d_ff = d_model``),
    added with ``tune.sample_from`` for Ray and after sampling for Optuna.
    """

    model_class: ClassVar[type[MambaForecaster]]
    default_config: ClassVar[dict]
    derived: ClassVar[dict[str, Callable[[dict], object]]] = {}

    def __init__(
        self,
        h,
        n_series=None,
        loss=MAE(),
        valid_loss=None,
        config=None,
        search_alg=BasicVariantGenerator(random_state=1),  # noqa: B008 - as NeuralForecast's; fit deep-copies it
        num_samples=10,
        time_budget=None,
        refit_with_val=False,
        cpus=None,
        gpus=None,
        verbose=False,
        alias=None,
        backend="ray",
        callbacks=None,
        ray_options=None,
        optuna_options=None,
    ):
        if config is None:
            config = self.get_default_config(h=h, backend=backend, n_series=n_series)
        elif n_series is not None and isinstance(config, dict):
            config = {**config, "n_series": n_series}
        elif n_series is not None and callable(config):  # an Optuna config function: add n_series to its dict
            config = _with_n_series(config, n_series)
        super().__init__(
            cls_model=self.model_class,
            h=h,
            loss=loss,
            valid_loss=valid_loss,
            config=config,
            search_alg=search_alg,
            num_samples=num_samples,
            time_budget=time_budget,
            refit_with_val=refit_with_val,
            cpus=cpus,
            gpus=gpus,
            verbose=verbose,
            alias=alias,
            backend=backend,
            callbacks=callbacks,
            ray_options=ray_options,
            optuna_options=optuna_options,
        )

    def fit(self, dataset, val_size=0, test_size=0, random_seed=None, distributed_config=None):
        """``BaseAuto.fit``, with the dataset's ids and timestamps (kept by ``NeuralForecast``) handed to every trial,
        so that each trial's model checks its panel as ``NeuralForecast.fit`` would, in a Ray worker too."""
        index = panel_index(dataset)
        if index is not None:
            dataset = with_panel_index(dataset, index)
        return super().fit(
            dataset,
            val_size=val_size,
            test_size=test_size,
            random_seed=random_seed,
            distributed_config=distributed_config,
        )

    @classmethod
    def get_default_config(cls, h, backend, n_series=None):
        """The default search space for horizon ``h``: a Ray dict (``backend="ray"``) or an Optuna function."""
        config = dict(cls.default_config)
        config["input_size"] = tune.choice([h * x for x in config.pop("input_size_multiplier")])
        config["step_size"] = tune.choice([1, h])
        if n_series is not None:
            config["n_series"] = n_series
        derived = cls.derived
        if backend == "ray":
            return {**config, **{k: tune.sample_from(f) for k, f in derived.items()}}
        sample = ray_config_to_optuna(config)

        def optuna_config(trial):
            values = sample(trial)
            if isinstance(trial, MockTrial):  # BaseAuto's dry run: choices come back as lists, nothing to derive
                return values
            return {**values, **{k: f(values) for k, f in derived.items()}}

        return optuna_config


def ray_domain(domain):
    """A plain search-space domain of a spec (``mamba_forecast.models.spec``) as a Ray Tune domain."""
    if isinstance(domain, Choice):
        return tune.choice(list(domain.values))
    if isinstance(domain, LogUniform):
        return tune.loguniform(domain.low, domain.high)
    if isinstance(domain, RandInt):
        return tune.randint(domain.low, domain.high)
    return domain  # a constant


def ray_search_space(spec: ModelSpec) -> dict:
    """The default ``Auto`` search space of ``spec`` as Ray Tune domains: the model's part (``spec.search_space``)
    over the training part every model shares, with NeuralForecast's ``input_size_multiplier``."""
    config = {k: ray_domain(v) for k, v in {**TRAINING_SPACE, **spec.search_space}.items()}
    config["input_size_multiplier"] = list(TRAINING_SPACE["input_size_multiplier"])
    return config


def _with_n_series(config, n_series: int):
    """An Optuna config function that returns ``config(trial)`` with ``n_series`` set."""

    def config_with_n_series(trial):
        return {**config(trial), "n_series": n_series}

    return config_with_n_series
