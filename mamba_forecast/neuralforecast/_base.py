"""The one NeuralForecast adapter every forecaster of ``mamba_forecast.models`` goes through.

:class:`MambaForecaster` turns a torch core (``mamba_forecast.models.SMamba`` ...) into a NeuralForecast
``BaseModel``: it infers ``n_series`` at ``fit``, maps NeuralForecast's multivariate batches onto the core's
token inputs, lays the output out the way the configured loss reads it, and checks the panel before training.
It holds no math. The model classes (``SMamba`` in ``smamba.py`` ...) only name their spec and core and declare
NeuralForecast's signature; ``tools/host_classes.py`` writes them from the model specs.
"""

from __future__ import annotations

import inspect
import math
import numbers
import pickle
import warnings
from typing import ClassVar

import pytorch_lightning as pl
import torch

from ..models.base import Forecaster, check_int
from ..models.spec import ModelSpec, all_specs, architecture_arguments
from ._checks import check_panel
from ._compat import BaseModel, ModelHooks, PanelIndex, is_distributed_datamodule, panel_index

_BASE_MODEL_ARGS = frozenset(inspect.signature(BaseModel.__init__).parameters) - {"self", "trainer_kwargs"}
_TRAINER_ARGS = frozenset(inspect.signature(pl.Trainer.__init__).parameters) - {"self"}


def model_arguments(local_vars: dict) -> dict:
    """A model class's ``__init__`` arguments (from its ``locals()``), trainer keyword arguments inlined."""
    arguments = {k: v for k, v in local_vars.items() if k not in ("self", "__class__", "trainer_kwargs")}
    return {**arguments, **local_vars.get("trainer_kwargs", {})}


class MambaForecaster(ModelHooks):
    """Base of the NeuralForecast models: a ``mamba_forecast.models`` core behind NeuralForecast's interface.

    A subclass (one per model spec) sets ``spec`` to its ``ModelSpec`` and ``core_class`` to the spec's torch
    module class, and has NeuralForecast's standard signature with the core's architecture arguments (same names)
    in the middle; its ``__init__`` is ``super().__init__(**model_arguments(locals()))``. Everything else lives
    here:

    * ``n_series`` is optional. The core is built at construction when its size is known (``n_series``
      given, or a core whose layers do not depend on it and no temporal exogenous inputs); otherwise at
      the first ``fit``, from ``dataset.n_groups``. Either way from ``random_seed``, so the weights do not
      depend on when the core was built. ``fit`` stores the number of series in ``hparams`` so that
      checkpoints rebuild the same core, and raises the batch sizes to it.
    * Inputs: ``insample_y [B, L, N]`` goes to the core as is; ``hist_exog [B, X, L, N]`` becomes
      ``[B, L, X*N]``, ``futr_exog [B, F, L+h, N]`` ``[B, L+h, F*N]`` (one token per column and series) and
      ``stat_exog [N, S]`` is repeated over the batch.
    * Output: ``[B, h, N*m]`` with ``m = loss.outputsize_multiplier``, series-major (``n*m + k``) for point and
      quantile losses and parameter-major (``k*N + n``) for distribution losses, the layouts their
      ``domain_map`` reads.
    * ``fit`` refuses, before training, panels a multivariate model cannot learn from correctly: series of
      different lengths or on different timestamps, non-finite values, series too short for one training
      window after the validation and test splits. ``fit``/``predict`` refuse a number of series other than
      the one the model was built for. The timestamps come from ``NeuralForecast`` (a ``TimeSeriesDataset``
      holds none); a direct ``model.fit(dataset)`` takes them as ``ds=``/``uids=``/``freq=``.

    NeuralForecast's private hooks are reached only through ``_compat.ModelHooks``.
    """

    EXOGENOUS_FUTR = True
    EXOGENOUS_HIST = True
    EXOGENOUS_STAT = True
    EXOGENOUS_CAT = False
    MULTIVARIATE = True
    RECURRENT = False

    spec: ClassVar[ModelSpec]
    core_class: ClassVar[type[Forecaster]]

    def __init__(self, **arguments):
        name = type(self).__name__
        architecture = {k: arguments.pop(k) for k in self.architecture_names() if k in arguments}
        unknown = set(arguments) - _BASE_MODEL_ARGS - _TRAINER_ARGS
        if unknown:
            raise TypeError(
                f"{name} got unexpected keyword argument(s) {', '.join(sorted(unknown))}: they are neither "
                f"{name} arguments nor PyTorch Lightning Trainer arguments."
            )
        n_series = arguments.pop("n_series", None)
        if n_series is not None:
            n_series = check_int("n_series", n_series)
        check_training_arguments(arguments)
        if arguments.get("exclude_insample_y"):
            architecture["use_norm"] = False  # a zeroed look-back has no scale to normalise by
        # BaseModel insists on n_series for multivariate models; 1 stands in until the data says otherwise.
        super().__init__(n_series=n_series or 1, **arguments)
        self._architecture = architecture
        self.n_series = None
        self.core: Forecaster | None = None
        if n_series is not None or not (self.core_class.FIXED_N_SERIES or self.hist_exog_size or self.futr_exog_size):
            self._build_core(n_series)
        else:
            # Nothing to build yet: construct a throwaway core to raise bad hyperparameters now, not at fit.
            with torch.random.fork_rng(devices=[]):
                self.core_class(**self._core_arguments(1))

    @classmethod
    def architecture_names(cls) -> list[str]:
        """The core's architecture arguments, which the model class exposes under the same names (all but the
        sizes the adapter sets; followed up the MRO when the core forwards ``**kwargs``)."""
        return list(architecture_arguments(cls.core_class))

    @classmethod
    def load(cls, path, *args, **kwargs):
        """NeuralForecast's ``BaseModel.load`` (also what ``NeuralForecast.load`` calls for each model file), with a
        ``ValueError`` naming the file for a truncated or corrupted checkpoint, where NeuralForecast lets the
        safetensors reader's own error (``SafetensorError: incomplete metadata``) through."""
        try:
            return super().load(path, *args, **kwargs)
        except (ValueError, TypeError, OSError, pickle.UnpicklingError):
            raise  # NeuralForecast's own clear errors (foreign class, not a checkpoint, refused pickle), missing files
        except Exception as err:  # whatever the reader raises on damaged bytes
            raise ValueError(
                f"{cls.__name__}.load could not read {path!r}: the checkpoint is truncated or corrupted "
                f"({type(err).__name__}: {err}). Save the model again (NeuralForecast.save or model.save) or "
                f"re-copy the file from the source."
            ) from err

    # -- building -----------------------------------------------------------------------------------------

    def _core_arguments(self, n_series: int | None) -> dict:
        per_series = 1 if n_series is None else n_series
        return dict(
            input_size=self.input_size,
            h=self.h,
            n_series=n_series,
            n_outputs=self.loss.outputsize_multiplier,
            hist_exog_size=self.hist_exog_size * per_series,
            futr_exog_size=self.futr_exog_size * per_series,
            stat_exog_size=self.stat_exog_size,
            **self._architecture,
        )

    def _build_core(self, n_series: int | None) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_seed)
            self.core = self.core_class(**self._core_arguments(n_series))
        if n_series is not None:
            self._set_n_series(n_series)

    def _set_n_series(self, n_series: int) -> None:
        self.n_series = n_series
        self.hparams["n_series"] = n_series
        self.batch_size = max(self.hparams["batch_size"], n_series)
        self.valid_batch_size = max(self.hparams["valid_batch_size"] or self.hparams["batch_size"], n_series)

    def _check_n_series(self, dataset) -> int | None:
        """The dataset's number of series, after checking it against the one the model was built for."""
        n = getattr(dataset, "n_groups", None)
        name = type(self).__name__
        if n is None and self.n_series is None and self.core is None:
            raise ValueError(f"{name} cannot read the number of series from this dataset; pass n_series.")
        if n is not None and self.n_series is not None and n != self.n_series:
            raise ValueError(
                f"{name} was built for {self.n_series} series but the data has {n}. A multivariate model "
                f"forecasts the panel it was trained on: pass the same {self.n_series} series, or train a new "
                f"model (NeuralForecast.fit(..., use_init_models=True), or a new {name} without n_series)."
            )
        return n

    # -- NeuralForecast entry points ------------------------------------------------------------------

    def fit(
        self,
        dataset,
        val_size=0,
        test_size=0,
        random_seed=None,
        distributed_config=None,
        *,
        ds=None,
        uids=None,
        freq=None,
    ):
        """NeuralForecast's ``BaseModel.fit``, after the panel checks.

        ``NeuralForecast.fit``/``cross_validation`` call it with their ``TimeSeriesDataset``, whose timestamps the
        checks read from the ``NeuralForecast`` object. A direct call passes them: ``ds`` (one timestamp per row of
        the dataset) and ``uids`` (one id per series), as ``TimeSeriesDataset.from_df`` returns them, and
        ``freq``; without ``ds`` the checks that the series share consecutive timestamps cannot run, and a
        warning says so.
        """
        if distributed_config is not None:
            self._check_distributed()
        n = self._check_n_series(dataset)
        index = PanelIndex(uids, ds, freq) if ds is not None else panel_index(dataset)
        check_panel(self, dataset, val_size=val_size or 0, test_size=test_size or 0, training=True, index=index)
        if index is None and getattr(dataset, "indptr", None) is not None:
            warnings.warn(
                f"{type(self).__name__}.fit got a TimeSeriesDataset without its timestamps (it was not passed by "
                "NeuralForecast.fit), so it could not check that all series share the same consecutive timestamps: "
                "a multivariate model takes the series' rows at the same position for the same time. Pass "
                "ds=..., uids=... as returned by TimeSeriesDataset.from_df (and freq=...), or fit through "
                "NeuralForecast(models=[...], freq=...).fit(df).",
                UserWarning,
                stacklevel=2,
            )
        if self.core is None:
            self._build_core(n)
        elif self.n_series is None and n is not None:
            self._set_n_series(n)
        return super().fit(
            dataset,
            val_size=val_size,
            test_size=test_size,
            random_seed=random_seed,
            distributed_config=distributed_config,
        )

    def _check_distributed(self) -> None:
        """Refuse a distributed (Spark) fit the core cannot take, before any worker starts.

        NeuralForecast's distributed fit gives each worker the series of its own partition only, so a worker
        sees a sub-panel whose size depends on the partitioning. Only a core whose layers are not sized by the
        number of series can train on that.
        """
        name = type(self).__name__
        if self.core_class.FIXED_N_SERIES:
            why = "a layer sized by the number of series"
        elif self.hist_exog_size or self.futr_exog_size:
            why = "historical/future exogenous inputs (their embedding is sized by the number of series)"
        else:
            return
        raise ValueError(
            f"{name} has {why}, but NeuralForecast's distributed fit gives each worker only the series of its "
            f"own partition. Fit {name} on a pandas or polars DataFrame instead, or use {_untied_models()} "
            f"without hist_exog_list/futr_exog_list for a distributed fit."
        )

    def _after_distributed_fit(self, model) -> None:
        # The trained model comes back from rank 0 sized for its partition (see on_fit_start); it is tied to
        # the number of series the user gave, if any, not to that partition.
        model.n_series = self.n_series

    def on_fit_start(self):
        super().on_fit_start()
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and is_distributed_datamodule(datamodule):
            # A worker of a distributed (Spark) fit: it trains on the series of its own partition, all of them
            # in every batch, whatever batch_size the driver set. Its rows have no timestamps to check.
            dataset = datamodule.dataset
            check_panel(
                self, dataset, val_size=self.val_size or 0, test_size=self.test_size or 0, training=True, index=None
            )
            self.n_series = dataset.n_groups
            datamodule.batch_size = max(datamodule.batch_size, dataset.n_groups)
            datamodule.valid_batch_size = max(datamodule.valid_batch_size or 0, dataset.n_groups)

    def predict(self, dataset, *args, **kwargs):
        n = self._check_n_series(dataset)
        check_panel(self, dataset, training=False)
        if self.n_series is not None or n is None:
            return super().predict(dataset, *args, **kwargs)
        # Only after a distributed fit without n_series: the core is not tied to a number of series, so it
        # forecasts the panel it is given, all series in one batch.
        saved = self.n_series, self.valid_batch_size
        self.n_series, self.valid_batch_size = n, max(self.valid_batch_size, n)
        try:
            return super().predict(dataset, *args, **kwargs)
        finally:
            self.n_series, self.valid_batch_size = saved

    def _postprocess_prediction(self, y_hat):
        return sort_quantiles(y_hat, self.loss)

    def forward(self, windows_batch):
        x = windows_batch["insample_y"]  # [B, L, N]
        batch, _, n = x.shape
        hist_exog = windows_batch.get("hist_exog")  # [B, X, L, N] | None
        futr_exog = windows_batch.get("futr_exog")  # [B, F, L + h, N] | None
        stat_exog = windows_batch.get("stat_exog")  # [N, S] | None
        if hist_exog is not None:
            hist_exog = hist_exog.permute(0, 2, 1, 3).reshape(batch, hist_exog.shape[2], -1)  # [B, L, X*N]
        if futr_exog is not None:
            futr_exog = futr_exog.permute(0, 2, 1, 3).reshape(batch, futr_exog.shape[2], -1)  # [B, L + h, F*N]
        if stat_exog is not None:
            stat_exog = stat_exog.unsqueeze(0).expand(batch, -1, -1)  # [B, N, S]
        assert self.core is not None  # built at construction, or at fit when n_series was left to the data
        y = self.core(x, hist_exog, futr_exog, stat_exog).reshape(batch, self.h, n, -1)  # [B, h, N, m]
        if self.loss.is_distribution_output:
            y = y.transpose(2, 3)  # [B, h, m, N]: DistributionLoss splits the last axis into m blocks of N
        return y.reshape(batch, self.h, -1)  # [B, h, N*m]


def _untied_models() -> str:
    """'SMamba, FMamba or TSM2': the registered models whose layers are not sized by the number of series."""
    names = [spec.name for spec in all_specs() if not spec.fixed_n_series]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


def sort_quantiles(y_hat: torch.Tensor, loss) -> torch.Tensor:
    """Rearrange the quantile outputs of a multi-quantile loss so that they never cross.

    ``MQLoss``/``HuberMQLoss`` train one output per quantile, and nothing ties them together: a short training can
    leave the 10% output above the 50% one. Sorting each forecast's values and handing them out in quantile
    order (the monotone rearrangement of Chernozhukov, Fernandez-Val and Galichon, 2010) removes every crossing
    and never increases the quantile loss. ``y_hat`` is ``[..., Q]`` in the order of ``loss.quantiles`` (which
    puts the median first). Other losses pass unchanged: a distribution's quantiles come from one set of samples
    and NeuralForecast already takes ``IQLoss`` quantiles as quantiles of one grid of forecasts.
    """
    quantiles = getattr(loss, "quantiles", None)
    if (
        getattr(loss, "is_distribution_output", False)
        or not isinstance(quantiles, torch.Tensor)
        or quantiles.ndim != 1
        or len(quantiles) < 2
        or y_hat.shape[-1] != len(quantiles)
    ):
        return y_hat
    order = torch.argsort(quantiles.detach().to(y_hat.device))  # positions of the quantiles, lowest first
    rearranged = torch.empty_like(y_hat)
    rearranged[..., order] = torch.sort(y_hat, dim=-1).values
    return rearranged


def check_training_arguments(arguments: dict) -> None:
    """Raise for training arguments NeuralForecast would accept and then silently replace, ignore or hang on.

    ``input_size < 1`` is replaced by ``3 * h`` with only a warning, ``max_steps=0`` trains nothing and a
    negative one never stops, and a batch size of 0 or a non-positive learning rate fail (or diverge) only once
    the Trainer runs. Called with the model's keyword arguments, before ``BaseModel.__init__``.
    """
    if "input_size" in arguments:
        check_int("input_size", arguments["input_size"], hint="It is the look-back length; pass e.g. input_size=96.")
    for key, hint in (
        ("max_steps", "It is the number of training steps; pass e.g. max_steps=1000."),
        ("batch_size", "Pass e.g. batch_size=32 (it is raised to the number of series anyway)."),
        ("windows_batch_size", "It is the number of windows per training step; pass e.g. windows_batch_size=32."),
        ("val_check_steps", "Pass e.g. val_check_steps=100."),
        ("step_size", "It is the step between windows; pass e.g. step_size=1."),
    ):
        if key in arguments:
            check_int(key, arguments[key], hint=hint)
    if arguments.get("valid_batch_size") is not None:
        check_int(
            "valid_batch_size", arguments["valid_batch_size"], hint="Pass e.g. valid_batch_size=None (batch_size)."
        )
    inference = arguments.get("inference_windows_batch_size")
    if inference is not None and inference != -1:
        check_int(
            "inference_windows_batch_size",
            inference,
            hint="Pass e.g. inference_windows_batch_size=32, or -1 for all windows at once.",
        )
    if "learning_rate" in arguments:
        lr = arguments["learning_rate"]
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
            raise TypeError(f"learning_rate must be a positive float, got {lr!r}; pass e.g. learning_rate=1e-3.")
        if not (math.isfinite(lr) and float(lr) > 0):
            raise ValueError(f"learning_rate must be a positive finite float, got {lr}; pass e.g. learning_rate=1e-3.")


# ----------------------------------------------------------------------------------------------------
# panel checks
# ----------------------------------------------------------------------------------------------------
