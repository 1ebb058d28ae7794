"""NeuralForecast models: ``NeuralForecast(models=[FMamba(h=96)], freq="h").fit(df)``.

Importing this module registers the models (and their ``Auto`` versions) with ``NeuralForecast.save`` and
``NeuralForecast.load``, which resolve saved models through ``neuralforecast.core.MODEL_FILENAME_DICT``.
"""

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
