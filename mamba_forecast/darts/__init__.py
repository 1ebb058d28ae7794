"""Darts models: ``SMambaModel``, ``AttentionMambaModel``, ``FMambaModel``, ``TSM2Model``.

One module per model (``smamba.py`` ..., written from the model specs by ``tools/host_classes.py``). Each class is
a Darts ``MixedCovariatesTorchModel`` (past, future and static covariates, likelihoods, several series,
``historical_forecasts``, ensembles, ``save``/``load``). Importing this package registers the classes with Darts'
safe loading, so ``XxxModel.load(path)`` works without ``trusted=True``. The NeuralForecast adapter's classes are
registered too, for ``darts.models.NeuralForecastModel(model=mamba_forecast.neuralforecast.SMamba, ...)``
save/load: here when ``mamba_forecast.neuralforecast`` is already imported, otherwise by that package when it is
imported after Darts (NeuralForecast is not imported from here: it would add seconds to every Darts user's import).
"""

import sys

from darts.utils.serialization import add_safe_globals

from ._base import _MambaForecastModule
from .attention_mamba import AttentionMambaModel
from .fmamba import FMambaModel
from .smamba import SMambaModel
from .tsm2 import TSM2Model

__all__ = ["SMambaModel", "AttentionMambaModel", "FMambaModel", "TSM2Model"]

_MODELS = [SMambaModel, AttentionMambaModel, FMambaModel, TSM2Model]
# Each class also under the path this package exports it by (``mamba_forecast.darts.SMambaModel``), which files
# saved before the classes had modules of their own name.
add_safe_globals([_MambaForecastModule, *_MODELS, *((cls, f"{__name__}.{cls.__name__}") for cls in _MODELS)])

# an already imported NF adapter registers its classes now; one imported later does it itself
_nf_adapter = sys.modules.get("mamba_forecast.neuralforecast")
if _nf_adapter is not None and hasattr(_nf_adapter, "_register_with_darts"):
    _nf_adapter._register_with_darts()
