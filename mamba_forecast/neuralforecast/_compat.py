"""Every place where ``mamba_forecast`` relies on NeuralForecast internals (names starting with ``_``), in one module.

Checked against **neuralforecast 3.3.x** (3.3.0, with pytorch-lightning 2.6 and ray 2.x). The rest of
``mamba_forecast.neuralforecast`` uses only NeuralForecast's public names and what this module exports;
``tests/test_host_fence.py`` enforces it. To move to a new NeuralForecast release, re-check each touchpoint below
against its source (line numbers are those of 3.3.0) and run the test suite (``docs/guides/neuralforecast.md``,
"Testing a newer NeuralForecast").

Touchpoints
-----------
1. ``neuralforecast.common._base_model.BaseModel``: the base class of every NeuralForecast model; NeuralForecast
   has no public path for it (its own models import it from there too).
2. ``neuralforecast.common._base_auto.BaseAuto`` and ``MockTrial``: the base of the ``Auto`` classes, and the
   stand-in trial ``BaseAuto`` passes to an Optuna config function for its dry run.
3. ``BaseAuto._ray_config_to_optuna`` (``_base_auto.py:461``): turns a Ray Tune space into an Optuna config function.
4. ``BaseModel._fit_distributed`` (``_base_model.py:873``): the Spark fit. 3.3.0 builds the workers' Trainer with
   ``use_distributed_sampler=False`` *and* ``**trainer_kwargs``, which for multivariate models already holds that
   key (set in ``BaseModel.__init__``): "got multiple values for keyword argument 'use_distributed_sampler'".
   ``ModelHooks`` leaves the key out for the workers, then calls ``_after_distributed_fit``.
5. ``neuralforecast.tsdataset._DistributedTimeSeriesDataModule``: the datamodule of a Spark worker (imported only
   when a Trainer has a datamodule, i.e. never on the pandas/polars path).
6. ``BaseModel._predict_step_direct_batch`` (``_base_model.py:1901``): the forecast of one batch, in the
   loss's output layout, before it is written out. ``ModelHooks`` passes it through ``_postprocess_prediction``.
7. Where the timestamps of a panel are. A ``TimeSeriesDataset`` holds the values only: ``NeuralForecast`` keeps
   the ids, the timestamps (sorted like the dataset's rows) and ``freq`` beside it, in its ``uids``, ``ds`` and
   ``freq`` attributes (``core.py:919``; NeuralForecast's own TODO at ``core.py:683`` is to make them dataset
   properties), and hands a model's ``fit`` only the dataset. ``panel_index`` reads them, in order, from what
   ``with_panel_index`` attached to the dataset, from the dataset's own ``uids``/``ds``/``freq`` (a later
   NeuralForecast), or from the ``NeuralForecast`` object whose ``fit``/``cross_validation`` is calling the
   model: the ``self`` of a frame up the call stack (``inspect.currentframe``, a few frames, at most
   ``_MAX_FRAMES``), whose ``dataset`` is this very dataset (``core.py:1069`` and ``core.py:2365`` call
   ``model.fit(self.dataset, ...)``). An ``Auto`` model looks it up in its own ``fit``, still inside that call,
   and hands its trials a copy that carries it (``with_panel_index``: ``BaseAuto`` pickles the dataset whole for
   Ray, ``_base_auto.py:360``). A model fit called outside NeuralForecast without ``ds=`` finds nothing; the
   model then checks what the dataset alone shows (equal lengths, finite values, enough rows) and warns that the
   timestamps could not be checked.
"""

from __future__ import annotations

import copy
import inspect
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from neuralforecast.common._base_auto import BaseAuto, MockTrial  # touchpoint 2
from neuralforecast.common._base_model import BaseModel  # touchpoint 1

__all__ = [
    "BaseAuto",
    "BaseModel",
    "MockTrial",
    "ModelHooks",
    "PanelIndex",
    "is_distributed_datamodule",
    "panel_index",
    "ray_config_to_optuna",
    "with_panel_index",
]


class ModelHooks(BaseModel):
    """``BaseModel`` with the private hooks this package needs turned into its own (touchpoints 4 and 6).

    A subclass may implement ``_postprocess_prediction(y_hat)`` (the forecast of one batch, returned changed or
    not) and ``_after_distributed_fit(model)`` (the model a Spark fit trained, before it is returned).
    """

    trainer_kwargs: dict[str, Any]  # set by NeuralForecast's BaseModel.__init__

    def _postprocess_prediction(self, y_hat):
        return y_hat

    def _after_distributed_fit(self, model) -> None:
        pass

    def _predict_step_direct_batch(self, *args, **kwargs):  # touchpoint 6
        return self._postprocess_prediction(super()._predict_step_direct_batch(*args, **kwargs))

    def _fit_distributed(self, distributed_config, datamodule, val_size, test_size):  # touchpoint 4
        configured = self.trainer_kwargs
        self.trainer_kwargs = {k: v for k, v in configured.items() if k != "use_distributed_sampler"}
        try:
            model = super()._fit_distributed(distributed_config, datamodule, val_size, test_size)
        finally:
            self.trainer_kwargs = configured
        self._after_distributed_fit(model)
        return model


def is_distributed_datamodule(datamodule) -> bool:
    """Whether ``datamodule`` is the one NeuralForecast gives a Spark worker (touchpoint 5)."""
    if datamodule is None:
        return False
    from neuralforecast.tsdataset import _DistributedTimeSeriesDataModule

    return isinstance(datamodule, _DistributedTimeSeriesDataModule)


def ray_config_to_optuna(ray_config: dict) -> Callable:
    """An Optuna config function sampling the Ray Tune space ``ray_config`` (touchpoint 3)."""
    return BaseAuto._ray_config_to_optuna(ray_config)


# ----------------------------------------------------------------------------------------------------
# touchpoint 7: the ids, timestamps and frequency of a dataset's panel
# ----------------------------------------------------------------------------------------------------

_ATTACHED = "mamba_forecast_panel_index"


class PanelIndex(NamedTuple):
    """What NeuralForecast knows about a dataset's rows beside the values."""

    uids: Any  # one id per series, in the dataset's order (None when unknown)
    ds: Any  # one timestamp per row of ``dataset.temporal``, sorted like them (None when unknown)
    freq: Any  # NeuralForecast's ``freq`` (None when unknown)


def panel_index(dataset) -> PanelIndex | None:
    """The ids, timestamps and ``freq`` of ``dataset``'s series, or None where nothing records them."""
    attached = getattr(dataset, _ATTACHED, None)
    if isinstance(attached, PanelIndex):
        return attached
    if getattr(dataset, "ds", None) is not None:  # a NeuralForecast whose datasets carry their timestamps
        return PanelIndex(getattr(dataset, "uids", None), dataset.ds, getattr(dataset, "freq", None))
    holder = _neuralforecast_attributes(dataset)
    if holder is None:
        return None
    return PanelIndex(holder.get("uids"), holder.get("ds"), holder.get("freq"))


def with_panel_index(dataset, index: PanelIndex):
    """A shallow copy of ``dataset`` (the same tensors) that carries ``index``, for where it travels without
    its NeuralForecast object: a model's ``fit`` called by ``BaseAuto`` in a Ray worker, or called directly."""
    carrier = copy.copy(dataset)
    setattr(carrier, _ATTACHED, PanelIndex(index.uids, None if index.ds is None else np.asarray(index.ds), index.freq))
    return carrier


_MAX_FRAMES = 32  # NeuralForecast's fit is 1 to 3 frames above the model's; an Auto trial's, a few more


def _neuralforecast_attributes(dataset) -> dict | None:
    """The attributes of the ``NeuralForecast`` object fitting ``dataset`` up the call stack, if there is one."""
    core = sys.modules.get("neuralforecast.core")
    if core is None:
        return None
    frame = inspect.currentframe()
    try:
        for _ in range(_MAX_FRAMES):
            if frame is None:
                break
            if "self" in frame.f_code.co_varnames:  # reading f_locals builds a dict: only where a self can be
                holder = frame.f_locals.get("self")
                if isinstance(holder, core.NeuralForecast) and getattr(holder, "dataset", None) is dataset:
                    return vars(holder)
            frame = frame.f_back
        return None
    finally:
        del frame  # a frame kept in a local would keep every caller's locals alive
