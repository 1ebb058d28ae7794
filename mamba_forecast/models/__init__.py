"""The forecasters as plain PyTorch modules (torch only; no host library is imported).

Each model module registers its spec (:mod:`mamba_forecast.models.spec`) when it is imported here. The imports
below set the registry's order, which is the order of the CLI, the demo and the tables: a new model's module is
one more import line.
"""

from .base import Forecaster, InvertedForecaster
from .spec import ModelSpec, all_specs, get_spec, model_names, register, unregister

from .smamba import SMamba  # isort: skip
from .attention_mamba import AttentionMamba  # isort: skip
from .fmamba import FMamba  # isort: skip
from .tsm2 import TSM2  # isort: skip

__all__ = [
    "AttentionMamba",
    "FMamba",
    "Forecaster",
    "InvertedForecaster",
    "ModelSpec",
    "SMamba",
    "TSM2",
    "all_specs",
    "get_spec",
    "model_names",
    "register",
    "unregister",
]
