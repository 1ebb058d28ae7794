"""Every place where ``mamba_forecast`` relies on Darts internals (names starting with ``_``), in one module.

Checked against **darts 0.48.x** (0.48.1, with pytorch-lightning 2.6). The rest of ``mamba_forecast.darts`` uses
only Darts' public names and the hooks defined here; ``tests/test_host_fence.py`` enforces it. To move to a new
Darts release, re-check each touchpoint below against its source (the line numbers are those of 0.48.1's
``darts/models/forecasting/torch_forecasting_model.py``, ``TFM`` below) and run the test suite
(``docs/guides/darts.md``, "Testing a newer Darts").

Touchpoints
-----------
1. ``TFM._create_model(train_sample)`` (abstract): builds the network from one training sample. Every Darts
   model implements it; here it calls ``_build_module``.
2. ``TFM._extract_torch_model_params`` / ``TFM._extract_pl_module_params`` (lines 388, 398): split the
   constructor arguments (``model_params``, recorded by Darts' ``ModelMeta``) between ``TorchForecastingModel``
   and the ``PLForecastingModule``. Every Darts model's ``__init__`` does this; here ``TorchModelHooks.__init__``.
3. ``ForecastingModel._considers_static_covariates`` (``forecasting_model.py:167, 357``): the attribute behind the
   public ``considers_static_covariates``; Darts' own models set it from ``use_static_covariates``.
4. ``TFM._setup_for_fit_from_dataset`` (line 1082): the common entry of ``fit``, ``lr_find`` and
   ``scale_batch_size``, before the encoders and training datasets are built. Here it first calls
   ``_check_fit_inputs``.
5. ``TFM._setup_for_predict_from_dataset`` (line 1833): ``predict`` with user-given series, before the inference
   dataset is built. Here it first calls ``_check_predict_inputs``.
6. ``TFM._setup_for_predict`` (line 2025): where every prediction (``predict``, ``historical_forecasts``,
   ``backtest``) sets up its trainer from ``trainer_params``. Here the trainer parameters can be replaced for the
   prediction by ``_prediction_trainer_params``.
7. The text of Darts' safe-loading refusal (``"... is not allow-listed for safe loading"``,
   ``darts/utils/serialization/base.py:580``, and torch's ``weights_only`` message): ``is_safe_loading_refusal``.

``historical_forecasts`` and ``backtest`` are public; their input check lives in ``_base.py``.
"""

from __future__ import annotations

import pickle
from typing import Any

from darts.models.forecasting.torch_forecasting_model import MixedCovariatesTorchModel


class TorchModelHooks(MixedCovariatesTorchModel):
    """``MixedCovariatesTorchModel`` with the private Darts hooks it needs turned into this package's own.

    A subclass implements ``_build_module(train_sample)`` (touchpoint 1) and may implement
    ``_check_fit_inputs``, ``_check_predict_inputs`` (raise before Darts builds its datasets) and
    ``_prediction_trainer_params`` (trainer parameters for predictions, or None for the configured ones).
    Its ``__init__`` calls ``super().__init__()`` with no arguments: the arguments are read from ``model_params``
    (touchpoint 2).
    """

    trainer_params: dict[str, Any]  # set by Darts' TorchForecastingModel.__init__

    def __init__(self) -> None:
        super().__init__(**self._extract_torch_model_params(**self.model_params))
        self.pl_module_params = self._extract_pl_module_params(**self.model_params)

    # -- hooks for subclasses ------------------------------------------------------------------------------

    def _build_module(self, train_sample):
        raise NotImplementedError

    def _check_fit_inputs(
        self,
        series,
        past_covariates,
        future_covariates,
        val_series,
        val_past_covariates,
        val_future_covariates,
        max_samples_per_ts,
        stride,
    ) -> None:
        """Raise for training inputs the model cannot learn from (called before anything is built)."""

    def _check_predict_inputs(self, series, past_covariates, future_covariates) -> None:
        """Raise for prediction inputs the model would forecast wrongly from (called for ``predict(series=...)``)."""

    def _prediction_trainer_params(self) -> dict[str, Any] | None:
        """Trainer parameters to predict with instead of ``trainer_params``, or None to keep them."""
        return None

    # -- Darts' private hooks --------------------------------------------------------------------------------

    def _create_model(self, train_sample):  # touchpoint 1
        return self._build_module(train_sample)

    def _setup_for_fit_from_dataset(  # touchpoint 4
        self,
        series,
        past_covariates=None,
        future_covariates=None,
        sample_weight=None,
        stride: int = 1,
        val_series=None,
        val_past_covariates=None,
        val_future_covariates=None,
        max_samples_per_ts: int | None = None,
        **kwargs,
    ):
        self._check_fit_inputs(
            series,
            past_covariates,
            future_covariates,
            val_series,
            val_past_covariates,
            val_future_covariates,
            max_samples_per_ts,
            stride,
        )
        return super()._setup_for_fit_from_dataset(
            series=series,
            past_covariates=past_covariates,
            future_covariates=future_covariates,
            sample_weight=sample_weight,
            stride=stride,
            val_series=val_series,
            val_past_covariates=val_past_covariates,
            val_future_covariates=val_future_covariates,
            max_samples_per_ts=max_samples_per_ts,
            **kwargs,
        )

    def _setup_for_predict_from_dataset(self, n: int, series=None, *args, **kwargs):  # touchpoint 5
        if series is not None:
            self._check_predict_inputs(series, kwargs.get("past_covariates"), kwargs.get("future_covariates"))
        return super()._setup_for_predict_from_dataset(n, series, *args, **kwargs)

    def _setup_for_predict(self, *args, trainer=None, **kwargs):  # touchpoint 6
        params = self._prediction_trainer_params() if trainer is None else None
        if params is None:
            return super()._setup_for_predict(*args, trainer=trainer, **kwargs)
        configured, self.trainer_params = self.trainer_params, params
        try:
            return super()._setup_for_predict(*args, trainer=None, **kwargs)
        finally:
            self.trainer_params = configured


def set_considers_static_covariates(model: MixedCovariatesTorchModel, value: bool) -> None:
    """Make ``model.considers_static_covariates`` return ``value`` (touchpoint 3)."""
    model._considers_static_covariates = value


def is_safe_loading_refusal(err: BaseException) -> bool:
    """Whether ``err`` is Darts' (or torch's ``weights_only``) refusal of a class that is not allow-listed for safe
    loading, whose message already says what to do (touchpoint 7)."""
    return isinstance(err, (pickle.UnpicklingError, RuntimeError)) and "allow-listed" in str(err)
