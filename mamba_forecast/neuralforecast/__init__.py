"""NeuralForecast models: ``NeuralForecast(models=[FMamba(h=96)], freq="h").fit(df)``.

``SMamba``, ``AttentionMamba``, ``FMamba``, ``TSM2`` and their ``AutoSMamba`` ..., one module per model
(``smamba.py`` ..., written from the model specs by ``tools/host_classes.py``). Importing this package registers
them (``register_model``) with ``NeuralForecast.save``/``NeuralForecast.load``, which resolve saved models
through ``neuralforecast.core.MODEL_FILENAME_DICT``, and, when Darts is imported, with Darts' safe loading, for
``darts.models.NeuralForecastModel(model=SMamba, ...)`` save/load.
"""

import sys

from neuralforecast.core import MODEL_FILENAME_DICT

from ._base import MambaForecaster
from .attention_mamba import AttentionMamba, AutoAttentionMamba
from .auto import MambaAuto
from .fmamba import AutoFMamba, FMamba
from .smamba import AutoSMamba, SMamba
from .tsm2 import TSM2, AutoTSM2

__all__ = [
    "SMamba",
    "AutoSMamba",
    "AttentionMamba",
    "AutoAttentionMamba",
    "FMamba",
    "AutoFMamba",
    "TSM2",
    "AutoTSM2",
    "MambaForecaster",
    "MambaAuto",
    "register_model",
]

# The classes registered so far: allow-listed with Darts when `mamba_forecast.darts` is imported after this package.
_REGISTERED: list[type[MambaForecaster]] = []


def register_model(model: type[MambaForecaster], auto: type[MambaAuto] | None = None) -> None:
    """Register ``model`` and its ``Auto`` class for ``NeuralForecast.save``/``load`` and Darts' safe loading.

    ``NeuralForecast.load`` finds the class of a saved model by its lower-cased class name in
    ``neuralforecast.core.MODEL_FILENAME_DICT``; an Auto model saves the model it selected, so its key loads as
    the model class (NeuralForecast's way). Raises ValueError, before registering anything, when a key already
    belongs to another class, such as one of NeuralForecast's own models (a class named ``iTransformer`` would
    make ``NeuralForecast.load`` rebuild every saved iTransformer with it). The same class again, or its
    re-import (a module reload), replaces the entry.
    """
    keys = {cls.__name__.lower(): cls for cls in (model, auto) if cls is not None}
    for key, cls in keys.items():
        owner = MODEL_FILENAME_DICT.get(key)
        if owner is not None and _path(owner) != _path(model):
            raise ValueError(
                f"{cls.__name__} cannot be registered for NeuralForecast.save/load: NeuralForecast saves it under the "
                f"name {key!r}, which belongs to {_path(owner)}, so NeuralForecast.load would rebuild that model's "
                f"saved checkpoints as {model.__name__}. Give the model another name (its ModelSpec name names its "
                "classes)."
            )
    MODEL_FILENAME_DICT.update(dict.fromkeys(keys, model))
    _REGISTERED[:] = [c for c in _REGISTERED if _path(c) != _path(model)] + [model]
    _register_with_darts([model])


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _register_with_darts(classes: list[type] | None = None) -> None:
    """Allow-list NF classes (all registered ones by default) for Darts' safe loading: ``NeuralForecastModel``
    pickles the class it wraps.

    Called at registration when Darts is already imported, and by ``mamba_forecast.darts`` when this package was
    imported first; Darts itself is never imported from here. A class exported by this package is also
    allow-listed under that path (``mamba_forecast.neuralforecast.SMamba``), which files saved before the classes
    had modules of their own name."""
    if "darts" not in sys.modules:
        return
    from darts.utils.serialization import add_safe_globals

    classes = list(_REGISTERED if classes is None else classes)
    package = sys.modules[__name__]
    exported = [(cls, f"{__name__}.{cls.__name__}") for cls in classes if getattr(package, cls.__name__, None) is cls]
    add_safe_globals([*classes, *exported])


for _model, _auto in (
    (SMamba, AutoSMamba),
    (AttentionMamba, AutoAttentionMamba),
    (FMamba, AutoFMamba),
    (TSM2, AutoTSM2),
):
    register_model(_model, _auto)
