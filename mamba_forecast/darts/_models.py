"""The Darts model classes, one per registered spec (``mamba_forecast.models.spec``).

:func:`model_class` writes a ``_MambaTorchModel`` subclass ``<name>Model`` for a spec: Darts' signature
(``input_chunk_length``, ``output_chunk_length``, ``output_chunk_shift``), then the core's architecture
arguments with the core's defaults, then ``use_static_covariates`` and ``**kwargs``, and a numpydoc docstring
assembled from the spec and the TorchForecastingModel arguments below, written once for every model. The
``__init__`` is compiled from source so that its signature is a real one: Darts stores a model's creation
arguments from the ``__init__`` signature and validates keyword arguments against it.
"""

from __future__ import annotations

import re
import textwrap

from ..models.spec import ModelSpec
from ._base import _MambaTorchModel

MODULE = "mamba_forecast.darts"

_DARTS_ARGS_DOC = """input_chunk_length
    Number of past time steps fed to the model (the look-back window of every token).
output_chunk_length
    Number of time steps predicted at once by the model; also the number of future values of the future
    covariates it reads. Forecasts with ``n > output_chunk_length`` are produced auto-regressively.
output_chunk_shift
    Optionally, the number of steps between the end of the input chunk and the start of the output chunk.
    Forecasts then start ``output_chunk_shift`` steps after the end of the target series, and
    ``n > output_chunk_length`` is not possible. The future covariates of the skipped steps are not used."""

# The arguments every Darts torch model takes through ``**kwargs`` ({model} and {rin} are filled per class).
TORCH_MODEL_ARGS_DOC = """use_static_covariates
    Whether the model uses the static covariates of the target series, if they have any. If ``True``,
    all target series passed to ``fit()`` and ``predict()`` must have static covariates of the same
    dimensions.
**kwargs
    Optional arguments of Darts' :class:`TorchForecastingModel`, of the PyTorch Lightning module and of
    its trainer:

loss_fn
    PyTorch loss used for training when no ``likelihood`` is given. Default: ``torch.nn.MSELoss()``.
likelihood
    A Darts :class:`TorchLikelihood <darts.utils.likelihood_models.torch.TorchLikelihood>` (e.g.
    ``QuantileRegression``, ``GaussianLikelihood``) for probabilistic forecasts; the model then outputs
    the likelihood's parameters and is trained on its loss. Default: ``None``.
torch_metrics
    A ``torchmetrics.Metric`` or ``MetricCollection`` evaluated during training and validation.
    Default: ``None``.
optimizer_cls
    PyTorch optimizer class. Default: ``torch.optim.Adam``.
optimizer_kwargs
    Keyword arguments of the optimizer, e.g. ``{"lr": 1e-3}``. Default: ``None`` (the optimizer's own
    defaults).
lr_scheduler_cls
    Optionally, a PyTorch learning-rate scheduler class. Default: ``None`` (constant learning rate).
lr_scheduler_kwargs
    Keyword arguments of the learning-rate scheduler. Default: ``None``.
use_reversible_instance_norm
    Whether to apply Darts' reversible instance normalisation ``RINorm`` [{rin}]_ to the target input and
    invert it on the output (covariates are not normalised). ``True`` uses the default settings; a dict
    sets them (``{"affine": bool, "eps": float}``). Default: ``False``.
batch_size
    Number of samples (input and output windows) per training batch. Default: ``32``.
n_epochs
    Number of training epochs. Default: ``100``.
model_name
    Name of the model, used for its checkpoint and log folders. Default: a name made of the creation
    time and the process id, e.g. ``"2024-05-01_10_00_00_torch_model_run_1234"``.
work_dir
    Folder where checkpoints and logs are written. Default: the current working directory.
log_tensorboard
    Whether to log the training to TensorBoard under ``"{work_dir}/darts_logs/{model_name}/logs/"``.
    Default: ``False``.
nr_epochs_val_period
    Number of epochs between two evaluations of the validation loss (when ``fit()`` gets a
    ``val_series``). Default: ``1``.
force_reset
    Whether to delete the checkpoints of an earlier model with the same name. Default: ``False``.
save_checkpoints
    Whether to save the untrained model and the checkpoints of training automatically; reload them with
    ``{model}.load_from_checkpoint()``. Models can always be saved by hand with ``save()``.
    Default: ``False``.
add_encoders
    Covariates generated from the time index (``"cyclic"``, ``"datetime_attribute"``, ``"position"``,
    ``"custom"``, with an optional ``"transformer"`` and ``"tz"``), e.g.
    ``{"cyclic": {"future": ["month"]}, "datetime_attribute": {"past": ["hour"]}}``. See
    :class:`SequentialEncoder <darts.dataprocessing.encoders.SequentialEncoder>`. Default: ``None``.
random_state
    Seed of the weight initialisation and of sampling at prediction: the same seed gives the same
    forecasts. Default: ``None``.
pl_trainer_kwargs
    Keyword arguments of the PyTorch Lightning ``Trainer`` used for training and prediction, e.g.
    ``{"accelerator": "gpu", "devices": [0]}`` to train on one GPU, ``{"accelerator": "cpu"}`` to
    stay on the CPU, or ``{"callbacks": [EarlyStopping(monitor="val_loss", patience=5)]}``. A custom
    trainer can also be passed to ``fit()`` and ``predict()``. Default: ``None``.
show_warnings
    Whether to show the warnings of PyTorch Lightning. Default: ``False``.
enable_finetuning
    Controls which weights a further ``fit()`` trains: ``True`` all, ``False`` none,
    ``{"unfreeze": [patterns]}`` only the matching parameters, ``{"freeze": [patterns]}`` all but the
    matching ones. Default: ``None``."""

_COVARIATES_DOC = (
    "In Darts terms, past covariates are the historical exogenous series, future covariates the future ones "
    "(their values over the input and output chunks joined along time) and static covariates the static features "
    "(covariates shared by all target components are given to each). The model supports past, future and static "
    "covariates, several target components and several series, and probabilistic forecasts through a Darts "
    "``likelihood``."
)

_RINORM = (
    'T. Kim et al. "Reversible Instance Normalization for Accurate Time-Series Forecasting against Distribution '
    'Shift", ICLR 2022, https://openreview.net/forum?id=cGDAkQo1C0p'
)

_EXAMPLE = """>>> import numpy as np
>>> from darts.utils.timeseries_generation import datetime_attribute_timeseries, sine_timeseries
>>> from mamba_forecast.darts import {model}
>>> # two daily sine waves as the target, the day of the week as a future covariate
>>> target = sine_timeseries(length=120, value_frequency=1 / 7, start="2024-01-01", column_name="a")
>>> target = target.stack(sine_timeseries(length=120, value_frequency=1 / 14, start="2024-01-01"))
>>> future_cov = datetime_attribute_timeseries(target, "weekday", one_hot=False, add_length=7)
>>> model = {model}(
...     input_chunk_length=28,
...     output_chunk_length=7,
{arguments}...     n_epochs=2,
...     random_state=42,
...     pl_trainer_kwargs={{"accelerator": "cpu", "enable_progress_bar": False, "logger": False,
...                        "enable_model_summary": False}},
... )
>>> model = model.fit(target.astype(np.float32), future_covariates=future_cov.astype(np.float32))
>>> pred = model.predict(7)
>>> pred.shape, pred.components.tolist()
((7, 2, 1), ['a', 'sine'])
>>> str(pred.start_time().date())
'2024-04-30'"""

_SOURCE = """
class {model}(_MambaTorchModel):
    _core_cls = _core

    def __init__(
        self,
        input_chunk_length: int,
        output_chunk_length: int,
        output_chunk_shift: int = 0,
{parameters}
        use_static_covariates: bool = True,
        **kwargs,
    ) -> None:
        super().__init__()  # Darts' arguments are read from `model_params` (see `_compat.TorchModelHooks`)
        self._init_architecture()
"""


def rst(text: str) -> str:
    """Markdown inline code (`x`) as reStructuredText literals (``x``)."""
    return re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)


def _paragraph(text: str) -> str:
    return textwrap.fill(rst(text), width=112, break_on_hyphens=False)


def model_docstring(spec: ModelSpec) -> str:
    model = f"{spec.name}Model"
    arguments = "\n".join(
        f"{arg.name}\n{textwrap.indent(_paragraph(arg.doc[:1].upper() + arg.doc[1:]), '    ')}"
        for arg in spec.arguments.values()
    )
    references = [ref.rst() for ref in spec.references] + [_RINORM]
    refs = "\n".join(
        f".. [{i}] " + textwrap.fill(ref, width=104, subsequent_indent="        ", break_on_hyphens=False)
        for i, ref in enumerate(references, 1)
    )
    example = "".join(f"...     {k}={v!r},\n" for k, v in spec.example.items())
    kwargs_doc = TORCH_MODEL_ARGS_DOC.replace("{model}", model).replace("{rin}", str(len(references)))
    doc = "\n\n".join((
        f"{spec.title}: {spec.tagline}, as described in [1]_.",
        _paragraph(spec.summary),
        _paragraph(f"{spec.exogenous} {_COVARIATES_DOC}"),
        f"Parameters\n----------\n{_DARTS_ARGS_DOC}\n{arguments}\n{kwargs_doc}",
        f"References\n----------\n{refs}",
        "Examples\n--------\n" + _EXAMPLE.format(model=model, arguments=example),
    ))
    return textwrap.indent(doc, " " * 8).lstrip() + "\n        "


def model_class(spec: ModelSpec) -> type[_MambaTorchModel]:
    """The Darts class of ``spec``: ``mamba_forecast.darts.<spec.name>Model``."""
    model = f"{spec.name}Model"
    parameters = "\n".join(
        f"        {a.name}: {a.annotation} = _defaults[{a.name!r}]," if a.annotation
        else f"        {a.name}=_defaults[{a.name!r}],"
        for a in spec.arguments.values()
    )
    namespace = {"_MambaTorchModel": _MambaTorchModel, "_core": spec.core, "_defaults": spec.defaults(),
                 "__name__": MODULE}
    # (annotations stay strings: this module's `from __future__ import annotations` is inherited by compile)
    source = _SOURCE.format(model=model, parameters=parameters)
    exec(compile(source, f"<{MODULE}.{model}>", "exec"), namespace)  # noqa: S102 - our own template
    cls = namespace[model]
    cls.__module__ = cls.__init__.__module__ = MODULE
    cls.__init__.__doc__ = model_docstring(spec)
    cls.spec = spec
    return cls
