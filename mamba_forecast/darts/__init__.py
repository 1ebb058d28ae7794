"""Darts models: ``SMambaModel``, ``AttentionMambaModel``, ``FMambaModel``, ``TSM2Model``.

Each is a Darts ``MixedCovariatesTorchModel`` (past, future and static covariates, likelihoods, several
series, ``historical_forecasts``, ensembles, ``save``/``load``). Importing this package registers the
classes with Darts' safe loading, so ``XxxModel.load(path)`` works without ``trusted=True``. The
NeuralForecast adapter's classes are registered too, for
``darts.models.NeuralForecastModel(model=mamba_forecast.neuralforecast.SMamba, ...)`` save/load: here when
``mamba_forecast.neuralforecast`` is already imported, otherwise by that module when it is imported after
Darts (NeuralForecast is not imported from here: it would add seconds to every Darts user's import).
"""

import sys

from darts.utils.serialization import add_safe_globals

from mamba_forecast.darts._base import _MambaForecastModule
from mamba_forecast.darts.attention_mamba_model import AttentionMambaModel
from mamba_forecast.darts.fmamba_model import FMambaModel
from mamba_forecast.darts.smamba_model import SMambaModel
from mamba_forecast.darts.tsm2_model import TSM2Model

__all__ = ["SMambaModel", "AttentionMambaModel", "FMambaModel", "TSM2Model"]

add_safe_globals([SMambaModel, AttentionMambaModel, FMambaModel, TSM2Model, _MambaForecastModule])


# an already imported NF adapter registers its classes now; one imported later does it itself
_nf_adapter = sys.modules.get("mamba_forecast.neuralforecast")
if _nf_adapter is not None and hasattr(_nf_adapter, "_register_with_darts"):
    _nf_adapter._register_with_darts()
