"""NeuralForecast models: ``NeuralForecast(models=[FMamba(h=96)], freq="h").fit(df)``.

Importing this module registers the models (and their ``Auto`` versions) with ``NeuralForecast.save`` and
``NeuralForecast.load``, which resolve saved models through ``neuralforecast.core.MODEL_FILENAME_DICT``.
When Darts is imported, the models are also registered with Darts' safe loading, for
``darts.models.NeuralForecastModel(model=SMamba, ...)`` save/load.
"""

import sys

from neuralforecast.core import MODEL_FILENAME_DICT

from ._base import MambaForecaster
from .attention_mamba import AttentionMamba
from .auto import AutoAttentionMamba, AutoFMamba, AutoSMamba, AutoTSM2, MambaAuto
from .fmamba import FMamba
from .smamba import SMamba
from .tsm2 import TSM2

__all__ = [
    "SMamba",
    "AttentionMamba",
    "FMamba",
    "TSM2",
    "AutoSMamba",
    "AutoAttentionMamba",
    "AutoFMamba",
    "AutoTSM2",
    "MambaForecaster",
    "MambaAuto",
]

# An Auto model saves the model it selected, so its key loads as the model class (NeuralForecast's convention).
for _auto in (AutoSMamba, AutoAttentionMamba, AutoFMamba, AutoTSM2):
    MODEL_FILENAME_DICT[_auto.model_class.__name__.lower()] = _auto.model_class
    MODEL_FILENAME_DICT[_auto.__name__.lower()] = _auto.model_class


def _register_with_darts() -> None:
    """Allow-list the NF classes for Darts' safe loading (``NeuralForecastModel`` pickles the class it wraps).

    Called at import when Darts is already imported, and by ``mamba_forecast.darts`` when this module was
    imported first; Darts itself is never imported from here."""
    if "darts" not in sys.modules:
        return
    from darts.utils.serialization import add_safe_globals

    add_safe_globals([SMamba, AttentionMamba, FMamba, TSM2])


_register_with_darts()
