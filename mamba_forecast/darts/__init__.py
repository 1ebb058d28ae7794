"""Darts models: ``SMambaModel``, ``AttentionMambaModel``, ``FMambaModel``, ``TSM2Model``.

Each is a Darts ``MixedCovariatesTorchModel`` (past, future and static covariates, likelihoods, several
series, ``historical_forecasts``, ensembles, ``save``/``load``). Importing this package registers the
classes with Darts' safe loading, so ``XxxModel.load(path)`` works without ``trusted=True``. When the
NeuralForecast adapter is importable, its classes are registered too, for
``darts.models.NeuralForecastModel(model=mamba_forecast.neuralforecast.SMamba, ...)`` save/load.
"""

from darts.utils.serialization import add_safe_globals

from mamba_forecast.darts._base import _MambaForecastModule
from mamba_forecast.darts.attention_mamba_model import AttentionMambaModel
from mamba_forecast.darts.fmamba_model import FMambaModel
from mamba_forecast.darts.smamba_model import SMambaModel
from mamba_forecast.darts.tsm2_model import TSM2Model

__all__ = ["SMambaModel", "AttentionMambaModel", "FMambaModel", "TSM2Model"]

add_safe_globals([SMambaModel, AttentionMambaModel, FMambaModel, TSM2Model, _MambaForecastModule])


def _register_neuralforecast_classes() -> None:
    # NeuralForecastModel pickles the NF model class it wraps, so loading needs that class allow-listed;
    # without NeuralForecast (or without the NF adapter) there is nothing to register
    try:
        from neuralforecast.common._base_model import BaseModel

        from mamba_forecast import neuralforecast as nf_adapter
    except ImportError:
        return
    classes = [getattr(nf_adapter, name, None) for name in getattr(nf_adapter, "__all__", ())]
    add_safe_globals([c for c in classes if isinstance(c, type) and issubclass(c, BaseModel)])


_register_neuralforecast_classes()
