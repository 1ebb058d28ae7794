"""Darts models: ``SMambaModel``, ``AttentionMambaModel``, ``FMambaModel``, ``TSM2Model``.

One class per registered model spec (``mamba_forecast.models.spec``; a model registered later gets its class
here at registration). Each is a Darts ``MixedCovariatesTorchModel`` (past, future and static covariates,
likelihoods, several series, ``historical_forecasts``, ensembles, ``save``/``load``). Importing this package
registers the classes with Darts' safe loading, so ``XxxModel.load(path)`` works without ``trusted=True``. The
NeuralForecast adapter's classes are registered too, for
``darts.models.NeuralForecastModel(model=mamba_forecast.neuralforecast.SMamba, ...)`` save/load: here when
``mamba_forecast.neuralforecast`` is already imported, otherwise by that module when it is imported after
Darts (NeuralForecast is not imported from here: it would add seconds to every Darts user's import).
"""

import sys

from darts.utils.serialization import add_safe_globals

from mamba_forecast.darts._base import _CORE_MODELS, _MambaForecastModule
from mamba_forecast.darts._models import model_class
from mamba_forecast.models.spec import ModelSpec, all_specs, subscribe

__all__ = []


def _add(spec: ModelSpec) -> None:
    cls = model_class(spec)
    setattr(sys.modules[__name__], cls.__name__, cls)
    __all__.append(cls.__name__)
    add_safe_globals([cls])


def _remove(spec: ModelSpec) -> None:
    name = f"{spec.name}Model"
    if hasattr(sys.modules[__name__], name):
        delattr(sys.modules[__name__], name)
        __all__.remove(name)
    _CORE_MODELS.pop(spec.core.__name__, None)


def _on_registry(event: str, spec: ModelSpec) -> None:
    (_add if event == "register" else _remove)(spec)


add_safe_globals([_MambaForecastModule])
for _spec in all_specs():
    _add(_spec)
subscribe(_on_registry)

# an already imported NF adapter registers its classes now; one imported later does it itself
_nf_adapter = sys.modules.get("mamba_forecast.neuralforecast")
if _nf_adapter is not None and hasattr(_nf_adapter, "_register_with_darts"):
    _nf_adapter._register_with_darts()
