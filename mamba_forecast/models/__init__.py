"""The forecasters as plain PyTorch modules (torch only; no host library is imported).

Every module of this folder is imported here, so a new core file with its ``register(ModelSpec(...))`` joins
the registry (:mod:`mamba_forecast.models.spec`) without an edit anywhere else.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from .base import Forecaster, InvertedForecaster
from .spec import ModelSpec, all_specs, get_spec, model_names, register, unregister
from .smamba import SMamba  # isort: skip
from .attention_mamba import AttentionMamba  # isort: skip
from .fmamba import FMamba  # isort: skip
from .tsm2 import TSM2  # isort: skip

# The four built-in models register in this order (the order of the CLI, the demo and the tables); any other
# module of the folder after them, alphabetically.
for _module in sorted(m.name for m in _pkgutil.iter_modules(__path__)):
    _importlib.import_module(f"{__name__}.{_module}")

__all__ = [
    "AttentionMamba", "FMamba", "Forecaster", "InvertedForecaster", "ModelSpec", "SMamba", "TSM2", "all_specs",
    "get_spec", "model_names", "register", "unregister",
]
