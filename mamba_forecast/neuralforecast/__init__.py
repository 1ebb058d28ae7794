"""NeuralForecast models: ``NeuralForecast(models=[FMamba(h=96)], freq="h").fit(df)``.

One class and one ``Auto`` class per registered model spec (``mamba_forecast.models.spec``): ``SMamba``,
``AttentionMamba``, ``FMamba``, ``TSM2`` and their ``AutoSMamba`` ... (and a model registered later gets its
classes here at registration). Each is registered with ``NeuralForecast.save``/``NeuralForecast.load``, which
resolve saved models through ``neuralforecast.core.MODEL_FILENAME_DICT``, and, when Darts is imported, with
Darts' safe loading, for ``darts.models.NeuralForecastModel(model=SMamba, ...)`` save/load.
"""

import sys

from neuralforecast.core import MODEL_FILENAME_DICT

from ..models.spec import ModelSpec, all_specs, subscribe
from ._base import MambaForecaster
from ._models import model_class
from .auto import MambaAuto, auto_class

__all__ = ["MambaForecaster", "MambaAuto"]


def _add(spec: ModelSpec) -> None:
    """Write the spec's model and Auto classes into this module and register them for save/load."""
    module = sys.modules[__name__]
    model = model_class(spec)
    auto = auto_class(spec, model)
    for cls in (model, auto):
        setattr(module, cls.__name__, cls)
        # An Auto model saves the model it selected, so its key loads as the model class (NeuralForecast's way).
        MODEL_FILENAME_DICT[cls.__name__.lower()] = model
    __all__[-2:-2] = [model.__name__, auto.__name__]
    _register_with_darts([model])


def _remove(spec: ModelSpec) -> None:
    module = sys.modules[__name__]
    for name in (spec.name, f"Auto{spec.name}"):
        if getattr(module, name, None) is not None:
            delattr(module, name)
            MODEL_FILENAME_DICT.pop(name.lower(), None)
            __all__.remove(name)


def _on_registry(event: str, spec: ModelSpec) -> None:
    (_add if event == "register" else _remove)(spec)


def _register_with_darts(classes=None) -> None:
    """Allow-list the NF classes for Darts' safe loading (``NeuralForecastModel`` pickles the class it wraps).

    Called at import when Darts is already imported, and by ``mamba_forecast.darts`` when this module was
    imported first; Darts itself is never imported from here."""
    if "darts" not in sys.modules:
        return
    from darts.utils.serialization import add_safe_globals

    module = sys.modules[__name__]
    add_safe_globals(classes if classes is not None else [getattr(module, s.name) for s in all_specs()])


for _spec in all_specs():
    _add(_spec)
subscribe(_on_registry)
