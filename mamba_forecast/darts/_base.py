"""The generic Darts adapter shared by every Mamba forecaster.

``_MambaForecastModule`` is the only ``PLForecastingModule``: it wraps any core model of
:mod:`mamba_forecast.models` and maps Darts' named tensors onto the core's ``forward``.
``_MambaTorchModel`` is the ``MixedCovariatesTorchModel`` base: it validates the hyper-parameters at
construction, checks the user's series before training and builds the module from a training sample.
The public ``XxxModel`` classes (``smamba.py`` ...) only name their spec and core and list the architecture
arguments (Darts validates constructor kwargs against the ``__init__`` signature); ``tools/host_classes.py``
writes them from the model specs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from darts import TimeSeries
from darts.models.forecasting.pl_forecasting_module import PLForecastingModule, io_processor
from darts.models.forecasting.torch_forecasting_model import TorchForecastingModel
from darts.utils.data.torch_datasets.utils import PLModuleInput, PLModuleOutput, TorchTrainingSample
from darts.utils.likelihood_models.torch import QuantileRegression
from torch import nn

from ..models.spec import ModelSpec, architecture_arguments
from ._compat import TorchModelHooks, is_safe_loading_refusal, set_considers_static_covariates

# core class name -> core class; filled by ``_MambaTorchModel.__init_subclass__`` so that a checkpoint names its
# architecture by a string (safe to load) and only the registered classes can be resolved from it.
_CORE_MODELS: dict[str, type[nn.Module]] = {}


class _MambaForecastModule(PLForecastingModule):
    def __init__(
        self,
        architecture: str,
        model_kwargs: dict[str, Any],
        n_past_covariates: int,
        n_future_covariates: int,
        n_static_covariates: int,
        nr_params: int,
        **kwargs,
    ) -> None:
        """Lightning module running one core Mamba forecaster inside Darts.

        Parameters
        ----------
        architecture
            Name of the core class in :mod:`mamba_forecast.models` (e.g. ``"SMamba"``).
        model_kwargs
            Architecture arguments of the core model (``d_model``, ``e_layers``, ...).
        n_past_covariates
            Number of past covariate components X; each becomes a history token.
        n_future_covariates
            Number of future covariate components F; each becomes a token spanning history and horizon.
        n_static_covariates
            Number of static covariates S per target component.
        nr_params
            Number of likelihood parameters per forecast value (1 without a likelihood).
        **kwargs
            Arguments of :class:`darts.models.forecasting.pl_forecasting_module.PLForecastingModule`.
        """
        super().__init__(**kwargs)
        if architecture not in _CORE_MODELS:
            raise ValueError(
                f"Unknown architecture {architecture!r}; expected one of {sorted(_CORE_MODELS)}. "
                "Import `mamba_forecast.darts` before loading a saved model."
            )
        self.nr_params = nr_params
        self.model = _CORE_MODELS[architecture](
            input_size=self.input_chunk_length,
            h=self.output_chunk_length,
            n_series=self.n_targets,
            n_outputs=nr_params,
            hist_exog_size=n_past_covariates,
            futr_exog_size=n_future_covariates,
            stat_exog_size=n_static_covariates,
            **model_kwargs,
        )

    def forward(self, x_in: PLModuleInput) -> PLModuleOutput:
        out = self._forward(x_in)
        if not self.training and isinstance(self.likelihood, QuantileRegression):
            # Quantile regression trains one output per quantile with nothing tying them together, so a short
            # training can leave the 10% output above the 50% one. Sorting them at prediction (after Darts'
            # reversible instance norm, whose inverse could flip the order) removes every crossing and never
            # increases the quantile loss (monotone rearrangement); `likelihood.quantiles` is sorted by Darts.
            out = out.replace(prediction=torch.sort(out.prediction, dim=-1).values)
        return out

    @io_processor
    def _forward(self, x_in: PLModuleInput) -> PLModuleOutput:
        # B batch, L input chunk, T output chunk, C targets, X past covs, F future covs, S static covs, P params
        x = x_in.past_target  # [B, L, C]
        hist_exog = x_in.past_covariates  # [B, L, X] | None
        # history and horizon of the future covariates form one token each: [B, L + T, F]
        futr_exog = x_in.concatenate_future_along_time() if x_in.future_covariates is not None else None
        stat_exog = x_in.static_covariates  # [B, C or 1, S] | None
        if stat_exog is not None and stat_exog.shape[1] != x.shape[2]:
            # covariates shared by all components arrive once: give every target token a copy
            stat_exog = stat_exog.expand(-1, x.shape[2], -1)  # [B, C, S]
        y = self.model(x, hist_exog, futr_exog, stat_exog)  # [B, T, C] or [B, T, C, P]
        if self.nr_params == 1:
            y = y.unsqueeze(-1)  # [B, T, C, 1]
        return PLModuleOutput(prediction=y)


class _MambaTorchModel(TorchModelHooks):
    """Shared behaviour of the Darts Mamba models; subclasses set ``spec`` (their ``ModelSpec``) and ``_core_cls``
    (its core) and list the core's architecture arguments.

    A Darts ``MixedCovariatesTorchModel`` through ``_compat.TorchModelHooks``, which holds every use of Darts'
    private hooks: a subclass's ``__init__`` calls ``super().__init__()`` and then ``self._init_architecture()``.
    """

    spec: ClassVar[ModelSpec]
    _core_cls: ClassVar[type[nn.Module]]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        core = getattr(cls, "_core_cls", None)  # None on an intermediate class without a core
        if core is not None:
            _CORE_MODELS[core.__name__] = core

    def _init_architecture(self) -> None:
        """Collect the core arguments from ``model_params`` and reject invalid ones now, before any training.

        Call at the end of the subclass ``__init__``, after ``super().__init__()`` (which hands ``model_params`` to
        Darts' model and module).
        """
        name = self.__class__.__name__
        params = self.model_params
        self._core_kwargs = {k: params[k] for k in architecture_arguments(self._core_cls) if k in params}

        for key in ("input_chunk_length", "output_chunk_length"):
            value = params.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}: `{key}` must be a positive integer, got {value!r}.")
        shift = params.get("output_chunk_shift", 0)
        if isinstance(shift, bool) or not isinstance(shift, (int, np.integer)) or shift < 0:
            raise ValueError(f"{name}: `output_chunk_shift` must be a non-negative integer, got {shift!r}.")
        # `n_epochs=-1` would train forever and 0 not at all; `batch_size=0` fails only inside the data loader
        for key, example in (("n_epochs", 100), ("batch_size", 32)):
            value = params.get(key, example)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(
                    f"{name}: `{key}` must be a positive integer, got {value!r}; pass e.g. {key}={example}."
                )
        use_static = params.get("use_static_covariates", True)
        if not isinstance(use_static, bool):
            raise ValueError(f"{name}: `use_static_covariates` must be a bool, got {use_static!r}.")
        set_considers_static_covariates(self, use_static)

        # build the core once with placeholder sizes: its own argument checks run at construction time, here,
        # instead of at the first `fit`. The RNG is forked so construction does not shift any random stream.
        with torch.random.fork_rng(devices=[]):
            try:
                self._core_cls(
                    input_size=int(params["input_chunk_length"]),
                    h=int(params["output_chunk_length"]),
                    n_series=1,
                    **self._core_kwargs,
                )
            except (ValueError, TypeError, AssertionError) as err:
                raise ValueError(f"{name}: invalid hyper-parameters: {err}") from err

    def _build_module(self, train_sample: TorchTrainingSample) -> PLForecastingModule:
        """Size the core from one training sample: past/historic arrays are ``(input_chunk_length, width)``,
        future ones ``(output_chunk_length, width)``, static covariates ``(C or 1, S)``."""

        def width(arr):
            return 0 if arr is None else arr.shape[1]

        return _MambaForecastModule(
            architecture=self._core_cls.__name__,
            model_kwargs=dict(self._core_kwargs),
            n_past_covariates=width(train_sample.past_covariates),
            n_future_covariates=width(train_sample.future_covariates),
            n_static_covariates=width(train_sample.static_covariates),
            nr_params=1 if self.likelihood is None else self.likelihood.num_parameters,
            **self.pl_module_params,
        )

    @property
    def supports_static_covariates(self) -> bool:
        return True

    @classmethod
    def load(cls, path: str, pl_trainer_kwargs: dict | None = None, trusted: bool = False, **kwargs):
        """Darts' ``TorchForecastingModel.load``, refusing files that do not hold this model.

        A truncated or foreign file (Darts' own errors for it are an ``AttributeError`` or an ``OSError``) raises
        a ``ValueError`` naming the file; a saved model of another class (``TSM2Model.save`` read by
        ``SMambaModel.load``), or a ``.ckpt`` beside the ``.pt`` holding another architecture, a ``TypeError``.
        Missing files, Darts' own argument errors and its safe-loading refusal (``UnpicklingError``) pass unchanged.
        """
        name = cls.__name__
        try:
            model = TorchForecastingModel.load(path, pl_trainer_kwargs=pl_trainer_kwargs, trusted=trusted, **kwargs)
        except (FileNotFoundError, PermissionError, IsADirectoryError, ValueError, TypeError):
            raise  # a missing file, or Darts' own argument errors (e.g. `weights_only`)
        except Exception as err:  # whatever a corrupted file makes torch.load raise
            if is_safe_loading_refusal(err):
                raise  # safe loading refused a class: Darts' message says what to do
            raise _unreadable(name, path, err) from err
        if not isinstance(model, cls):
            found = type(model).__name__
            raise TypeError(
                f"{name}.load: {path!r} holds a {found}, not a {name}; load it with {found}.load(path) "
                "(or darts' TorchForecastingModel.load(path))."
            )
        module, expected = model.model, getattr(type(model), "_core_cls", None)
        core = getattr(module, "model", None)
        if module is not None and expected is not None and not isinstance(core, expected):
            found = type(core).__name__ if isinstance(module, _MambaForecastModule) else type(module).__name__
            raise TypeError(
                f"{name}.load: the checkpoint {path + '.ckpt'!r} holds a {found} network, not "
                f"{type(model).__name__}'s {expected.__name__}: the .ckpt file does not belong to {path!r}. "
                "Save the model again with `model.save(path)`, which writes both files together."
            )
        return model

    # ----------------------------------------------------------------------------------------------------------
    # input checks: clear errors before any training starts; the user's series are only read, never modified

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
        # the common entry of `fit`, `lr_find` and `scale_batch_size`, before encoders and datasets are built
        self._check_training_inputs(series, past_covariates, future_covariates, "", max_samples_per_ts, stride)
        if val_series is not None:
            self._check_training_inputs(
                val_series, val_past_covariates, val_future_covariates, "val_", max_samples_per_ts, stride
            )

    def _check_predict_inputs(self, series, past_covariates, future_covariates) -> None:
        # `predict` with user-given series; the training series were checked by `fit`
        covariates = {"past_covariates": past_covariates, "future_covariates": future_covariates}
        if series is not None:
            for i, ts in enumerate(_as_list(series)):
                if not isinstance(ts, TimeSeries):
                    continue
                window = ts.all_values(copy=False)[-self.input_chunk_length :]
                if not np.isfinite(window).all():
                    raise ValueError(
                        f"{self.__class__.__name__}: `series`{_at(i, series)} has {_non_finite_kind(window)} "
                        f"values in its last {self.input_chunk_length} points (the model input); replace them "
                        "first, e.g. with `darts.utils.missing_values.fill_missing_values`."
                    )
                # covariates are read from the start of that input window on (the horizon included)
                input_start = ts.time_index[max(len(ts) - self.input_chunk_length, 0)]
                for kind in ("past_covariates", "future_covariates"):
                    covs = covariates[kind]
                    cov_list = None if covs is None else _as_list(covs)
                    if (
                        cov_list is None
                        or len(cov_list) != len(_as_list(series))
                        or not isinstance(cov_list[i], TimeSeries)
                    ):
                        continue  # Darts reports missing covariates and count mismatches itself
                    cov = cov_list[i]
                    if cov.end_time() < input_start:
                        continue  # Darts reports covariates that end too early itself
                    read = cov.slice(input_start, cov.end_time()) if cov.start_time() < input_start else cov
                    values = read.all_values(copy=False)
                    if not np.isfinite(values).all():
                        raise ValueError(
                            f"{self.__class__.__name__}: `{kind}`{_at(i, covs)} have {_non_finite_kind(values)} "
                            f"values from {input_start} on (the model input and horizon); replace them first, "
                            "e.g. with `darts.utils.missing_values.fill_missing_values`."
                        )

    def historical_forecasts(self, series, past_covariates=None, future_covariates=None, *args, **kwargs):
        """Darts' ``historical_forecasts``, after the same finite-values check ``predict`` and ``fit`` make.

        Without retraining, Darts reads the model inputs from the given series through its own dataset, past
        ``predict``'s checks: a NaN there gave NaN forecasts with no error. Every series and covariate passed here
        must be finite (each forecast reads a window that may lie anywhere in them).
        """
        name = self.__class__.__name__
        for kind, given in (
            ("series", series),
            ("past_covariates", past_covariates),
            ("future_covariates", future_covariates),
        ):
            if given is None:
                continue
            for i, ts in enumerate(_as_list(given)):
                if not isinstance(ts, TimeSeries):
                    continue  # Darts reports the wrong type itself
                values = ts.all_values(copy=False)
                if not np.isfinite(values).all():
                    raise ValueError(
                        f"{name}: `{kind}`{_at(i, given)} has {_non_finite_kind(values)} values; historical "
                        "forecasts read model inputs from anywhere in it. Replace them first, e.g. with "
                        "`darts.utils.missing_values.fill_missing_values`, or pass only the finite part."
                    )
        return super().historical_forecasts(series, past_covariates, future_covariates, *args, **kwargs)

    def _prediction_trainer_params(self) -> dict | None:
        # Every prediction (predict, historical_forecasts, backtest) without a trainer of the user's sets up its
        # trainer from these. Under DDP, Lightning would give each rank only its share of the series, and
        # `predict` on rank 0 would silently return part of the forecasts; as NeuralForecast does for several
        # GPUs, predict on one device instead.
        return _one_device_trainer_params(self.trainer_params)

    def _check_training_inputs(self, series, past_covariates, future_covariates, prefix, max_samples, stride):
        name = self.__class__.__name__
        targets = _as_list(series)
        # Darts' own errors for these are a KeyError (a DataFrame) or an IndexError (an empty list)
        for kind, given in (
            ("series", series),
            ("past_covariates", past_covariates),
            ("future_covariates", future_covariates),
        ):
            if given is None and kind != "series":
                continue
            items = _as_list(given)
            if not items or not all(isinstance(ts, TimeSeries) for ts in items):
                what = "an empty sequence" if not items else f"a {type(given).__name__}"
                raise (ValueError if not items else TypeError)(
                    f"{name}: `{prefix}{kind}` must be a darts TimeSeries or a non-empty list of TimeSeries, got "
                    f"{what}; build one with e.g. `TimeSeries.from_dataframe(df, time_col=..., value_cols=...)`."
                )
        icl, ocl = self.input_chunk_length, self.output_chunk_length
        shift = self.output_chunk_shift
        min_len = icl + ocl + shift
        for i, ts in enumerate(targets):
            where = f"`{prefix}series`{_at(i, series)}"
            if len(ts) < min_len:
                raise ValueError(
                    f"{name}: {where} has {len(ts)} points, too short to train on: one training sample needs "
                    f"input_chunk_length + output_chunk_length + output_chunk_shift = {icl} + {ocl} + {shift} "
                    f"= {min_len} points."
                )
            _reject_nan(name, where, ts)
            static = ts.static_covariates
            if self.considers_static_covariates and static is not None:
                numeric = static.select_dtypes(include=np.number).to_numpy(dtype=float)
                if not np.isfinite(numeric).all():
                    raise ValueError(
                        f"{name}: the static covariates of {where} have {_non_finite_kind(numeric)} values; "
                        "replace them, or pass "
                        "`use_static_covariates=False` to ignore static covariates."
                    )

        for kind, covs in (("past_covariates", past_covariates), ("future_covariates", future_covariates)):
            if covs is None:
                continue
            cov_list = _as_list(covs)
            if len(cov_list) != len(targets) or not all(isinstance(c, TimeSeries) for c in cov_list):
                continue  # Darts reports count and type mismatches itself
            for i, (ts, cov) in enumerate(zip(targets, cov_list, strict=True)):
                where = f"`{prefix}{kind}`{_at(i, covs)}"
                _reject_nan(name, where, cov)
                if cov.freq != ts.freq:
                    continue  # Darts reports the frequency mismatch itself
                # the samples Darts draws: output windows end at the series end, every `stride` steps back
                n_samples = (len(ts) - min_len) // stride + 1
                if max_samples is not None:
                    n_samples = min(n_samples, max_samples)
                first_input = len(ts) - min_len - (n_samples - 1) * stride
                need_start = ts.time_index[first_input]
                # past covariates end with the last input window, future ones with the last output window
                need_end = ts.time_index[-1 - ocl - shift] if kind == "past_covariates" else ts.end_time()
                if cov.start_time() > need_start or cov.end_time() < need_end:
                    raise ValueError(
                        f"{name}: {where} span {cov.start_time()} to {cov.end_time()}, but training on "
                        f"`{prefix}series`{_at(i, series)} needs values from {need_start} to {need_end}."
                    )


def _one_device_trainer_params(params: dict) -> dict | None:
    """Trainer parameters for prediction on a single device, or None when ``params`` already use one.

    Several devices means a multi-process strategy (``ddp``, ``fsdp``, ...) or ``devices`` naming more than
    one device (``2``, ``[0, 1]``, ``"0,1"``, or ``-1``/``"auto"`` with several GPUs visible).
    """
    devices = params.get("devices", "auto")
    strategy = params.get("strategy", "auto")
    strategy_name = strategy if isinstance(strategy, str) else type(strategy).__name__.lower()
    if isinstance(devices, str) and "," in devices:
        devices = [int(d) for d in devices.split(",") if d.strip()]
    if isinstance(devices, (list, tuple)):
        count = len(devices)
    elif devices in (-1, "-1", "auto"):
        gpu = params.get("accelerator", "auto") in ("gpu", "cuda", "auto")
        count = torch.cuda.device_count() if gpu else 1
    else:
        count = int(devices)
    several = count > 1 or any(name in strategy_name for name in ("ddp", "fsdp", "deepspeed"))
    if not several:
        return None
    first = list(devices)[:1] if isinstance(devices, (list, tuple)) and devices else 1
    return {**params, "devices": first, "strategy": "auto"}


def _unreadable(name: str, path: str, err: Exception) -> ValueError:
    return ValueError(
        f"{name}.load could not read {path!r} (or its checkpoint {os.path.basename(path) + '.ckpt'!r}): the file is "
        f"truncated, corrupted or not a model saved by Darts ({type(err).__name__}: {err}). Save the model again "
        f"with `model.save(path)`."
    )


def _as_list(series) -> list:
    return [series] if isinstance(series, TimeSeries) else list(series) if isinstance(series, Sequence) else [series]


def _at(i: int, container) -> str:
    return "" if isinstance(container, TimeSeries) else f" at index {i}"


def _non_finite_kind(values: np.ndarray) -> str:
    """'NaN', 'infinite' or 'NaN and infinite': what the non-finite entries of ``values`` are."""
    nan, inf = bool(np.isnan(values).any()), bool(np.isinf(values).any())
    return "NaN and infinite" if nan and inf else "NaN" if nan else "infinite"


def _reject_nan(model_name: str, where: str, ts: TimeSeries) -> None:
    """Raise ValueError when ``ts`` has NaN or infinite values (training on them gives NaN weights)."""
    values = ts.all_values(copy=False)
    bad_rows = ~np.isfinite(values).all(axis=(1, 2))
    if bad_rows.any():
        first = ts.time_index[int(np.argmax(bad_rows))]
        empty_rows = np.isnan(values).all(axis=(1, 2))
        if empty_rows.sum() > len(ts) / 2:
            # most dates hold nothing: the usual cause is a TimeSeries built with a freq finer than the data's
            # (from_dataframe(..., freq="D") on weekly rows fills the 6 days in between with NaN)
            raise ValueError(
                f"{model_name}: {where} is NaN in every component at {int(empty_rows.sum())} of its {len(ts)} "
                f"time steps (first at {first}): its freq ({ts.freq_str}) is probably finer than the data's, and "
                "the dates in between were filled with NaN. Build the TimeSeries with the data's frequency (e.g. "
                "`TimeSeries.from_dataframe(df, time_col=..., freq=None)` infers it), not a finer one."
            )
        raise ValueError(
            f"{model_name}: {where} has {_non_finite_kind(values)} values at {int(bad_rows.sum())} time steps "
            f"(first at {first}); replace or drop them before training, e.g. with "
            "`darts.utils.missing_values.fill_missing_values`. Missing dates filled with NaN "
            "(`fill_missing_dates=True`) show up here too."
        )
