"""Write the host classes of every registered model from its spec: ``python tools/host_classes.py``.

For each spec of ``mamba_forecast.models`` (the core file's ``register(ModelSpec(...))``) this writes two ordinary
modules named like the core's (``models/smamba.py`` -> ``smamba.py``):

* ``mamba_forecast/neuralforecast/<module>.py``: ``<name>`` (NeuralForecast's standard multivariate signature, the
  one iTransformer and TSMixer share, with the core's architecture arguments in the middle) and ``Auto<name>``;
* ``mamba_forecast/darts/<module>.py``: ``<name>Model`` (Darts' signature with the same architecture arguments).

The hosts read each class's real ``__init__`` signature: NeuralForecast and Lightning store a model's arguments from
its ``__init__`` frame and ``NeuralForecast.load`` rebuilds the model from them; Darts validates keyword arguments
against it. So every class spells out its arguments, with the core's defaults, and a docstring assembled from the
spec and the shared pieces below (the docs site reads it from the source). The spec stays the one place to edit:
change it (or a template here), run this script and commit the result. ``--check`` only reports stale files
(exit status 1); ``tests/test_host_classes.py`` runs the same check.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mamba_forecast"
HEADER = (
    "Written by tools/host_classes.py from the {name} spec in {source}. Do not edit: change the spec (or the "
    "tool's templates) and run `python tools/host_classes.py`; tests/test_host_classes.py fails while this file "
    "is stale."
)

# ----------------------------------------------------------------------------------------------------
# NeuralForecast: Google-style docstrings, every argument documented as NeuralForecast's own models do
# ----------------------------------------------------------------------------------------------------

# NeuralForecast's multivariate signature around the architecture arguments (iTransformer's, with input_size 96,
# an optional n_series, the "standard" scaler and the spec's learning rate; tests/test_neuralforecast.py pins it
# against iTransformer).
NF_LEADING = """h,
input_size=96,
n_series=None,
futr_exog_list=None,
hist_exog_list=None,
stat_exog_list=None,
exclude_insample_y=False,"""

NF_TRAINING = """loss=MAE(),
valid_loss=None,
max_steps: int = 1000,
learning_rate: float = {learning_rate!r},
num_lr_decays: int = -1,
early_stop_patience_steps: int = -1,
val_monitor: str = "ptl/val_loss",
val_check_steps: int = 100,
batch_size: int = 32,
valid_batch_size: int | None = None,
windows_batch_size=32,
inference_windows_batch_size=32,
start_padding_enabled=False,
training_data_availability_threshold=0.0,
step_size: int = 1,
scaler_type: str = "standard",
random_seed: int = 1,
drop_last_loader: bool = False,
alias: str | None = None,
optimizer=None,
optimizer_kwargs=None,
lr_scheduler=None,
lr_scheduler_kwargs=None,
dataloader_kwargs=None,
**trainer_kwargs,"""

LEADING_ARGS_DOC = """h (int): forecast horizon.
        input_size (int): autoregressive input size (look-back window), y=[1,2,3,4] input_size=2 -> y_[t-2:t]=[1,2].
        n_series (int, optional): number of time series. Optional: when None it is read from the data at `fit`
            (all series go into every batch). Set it only to fix the number of series in advance (Darts'
            `NeuralForecastModel` does); `fit` and `predict` then refuse data with a different number.
        futr_exog_list (str list, optional): future exogenous columns, known over the horizon. Each column of
            each series becomes one extra token embedded from its `input_size + h` values.
        hist_exog_list (str list, optional): historical exogenous columns. Each column of each series becomes
            one extra token embedded from its `input_size` past values.
        stat_exog_list (str list, optional): static exogenous columns (from `static_df`), appended to each
            series' look-back before the embedding.
        exclude_insample_y (bool): if True the model does not see the past target values, only the exogenous
            inputs; the core's instance normalisation (`use_norm`) is then turned off, since there is no
            look-back to normalise by. NeuralForecast's window scaler (`scaler_type`, "standard" by default)
            still scales each window by its look-back's mean and deviation: pass `scaler_type="identity"` too
            for forecasts that do not depend on past target values at all."""

TRAINING_ARGS_DOC = """loss (PyTorch module): instantiated train loss class from [losses collection](https://nixtlaverse.nixtla.io/neuralforecast/losses.pytorch.html).
            Point losses, `MQLoss`/`HuberMQLoss`, `IQLoss` and `DistributionLoss` are supported; the head is
            sized by `loss.outputsize_multiplier`.
        valid_loss (PyTorch module): instantiated valid loss class from [losses collection](https://nixtlaverse.nixtla.io/neuralforecast/losses.pytorch.html).
        max_steps (int): maximum number of training steps.
        learning_rate (float): learning rate between (0, 1).
        num_lr_decays (int): number of learning rate decays, evenly distributed across max_steps.
        early_stop_patience_steps (int): number of validation iterations before early stopping.
        val_monitor (str): metric to monitor for early stopping. Valid options: "ptl/val_loss", "valid_loss",
            "train_loss". Default: "ptl/val_loss".
        val_check_steps (int): number of training steps between every validation loss check.
        batch_size (int): number of different series in each batch; raised to the number of series, since a
            multivariate model sees all series together.
        valid_batch_size (int): number of different series in each validation and test batch, if None uses
            batch_size; raised to the number of series as well.
        windows_batch_size (int): number of windows to sample in each training batch.
        inference_windows_batch_size (int): number of windows to sample in each inference batch, -1 uses all.
        start_padding_enabled (bool): if True, the model will pad the time series with zeros at the beginning,
            by input size.
        training_data_availability_threshold (Union[float, List[float]]): minimum fraction of valid data points
            required for training windows. Single float applies to both insample and outsample; list of two
            floats specifies [insample_fraction, outsample_fraction]. Default 0.0.
        step_size (int): step size between each window of temporal data.
        scaler_type (str): type of scaler for temporal inputs normalization see [temporal scalers](https://github.com/Nixtla/neuralforecast/blob/main/neuralforecast/common/_scalers.py).
            Default "standard" (NeuralForecast's own models default to "identity"): each window of each series is
            standardised before the loss, so series of very different scales weigh alike in training; with
            "identity" a point loss is computed on the raw scale and the largest series dominates.
        random_seed (int): random seed for the pytorch initializer (also of layers built lazily at `fit`) and
            the numpy generators.
        drop_last_loader (bool): if True `TimeSeriesDataLoader` drops last non-full batch.
        alias (str): optional, custom name of the model.
        optimizer (Subclass of 'torch.optim.Optimizer'): optional, user specified optimizer instead of the
            default choice (Adam).
        optimizer_kwargs (dict): optional, list of parameters used by the user specified `optimizer`.
        lr_scheduler (Subclass of 'torch.optim.lr_scheduler.LRScheduler'): optional, user specified
            lr_scheduler instead of the default choice (StepLR).
        lr_scheduler_kwargs (dict): optional, list of parameters used by the user specified `lr_scheduler`.
        dataloader_kwargs (dict): optional, list of parameters passed into the PyTorch Lightning dataloader by
            the `TimeSeriesDataLoader`.
        **trainer_kwargs (int): keyword trainer arguments inherited from [PyTorch Lightning's trainer](https://pytorch-lightning.readthedocs.io/en/stable/api/pytorch_lightning.trainer.trainer.Trainer.html?highlight=trainer).
            Device choice goes here: `accelerator="cpu"` or `"gpu"`, `devices=1`. When CUDA is available and
            these are not given, NeuralForecast trains on the GPU with `devices=-1`, i.e. on every visible GPU
            (the windows, not the series, are split across them); pass `devices=1` (or `devices=[k]`) to use a
            single GPU. On a GPU the fused selective-scan kernels of `mamba-ssm` are used when installed
            (`scan_backend="auto"`), else the Triton scan when `triton` is installed; otherwise (and on CPU)
            the pure PyTorch scan runs."""

AUTO_ARGS_DOC = """h (int): forecast horizon.
        n_series (int, optional): number of time series. Not needed: the models read it from the data at `fit`.
            When given, it is fixed in the search space.
        loss (PyTorch module): instantiated train loss class from [losses collection](https://nixtlaverse.nixtla.io/neuralforecast/losses.pytorch.html).
        valid_loss (PyTorch module): instantiated valid loss class from [losses collection](https://nixtlaverse.nixtla.io/neuralforecast/losses.pytorch.html).
        config (dict or callable): search space: a dict of Ray Tune domains (`backend="ray"`) or a function of
            an Optuna trial returning a dict (`backend="optuna"`). None uses `get_default_config(h, backend)`.
            It must not hold `h`, `loss` or `valid_loss`. Device settings (`accelerator`, `devices`) go here too.
        search_alg (ray.tune.search variant or optuna.sampler): for Ray see https://docs.ray.io/en/latest/tune/api_docs/suggestion.html,
            for Optuna see https://optuna.readthedocs.io/en/stable/reference/samplers/index.html.
        num_samples (int): number of configurations tried.
        time_budget (int, optional): time budget of the search in seconds.
        refit_with_val (bool): whether the refit of the best configuration keeps the validation split.
        cpus (int): no longer supported by NeuralForecast 3.2+; use `ray_options=RayOptions(cpus=...)`.
        gpus (int): no longer supported by NeuralForecast 3.2+; use `ray_options=RayOptions(gpus=...)`.
        verbose (bool): print the progress of the search.
        alias (str, optional): custom name of the model.
        backend (str): "ray" or "optuna".
        callbacks (list of callable, optional): functions called during the search (Ray or Optuna callbacks).
        ray_options (RayOptions, optional): Ray-only options (`run_config`, `scheduler`, `cpus`, `gpus`).
            `cpus`/`gpus` are per trial: Ray runs as many trials at once as the cluster has room for (call
            `ray.init(...)` first; unset, `cpus` is every core of the machine, i.e. one trial at a time).
        optuna_options (OptunaOptions, optional): Optuna-only options (`study_kwargs`, `create_study_kwargs`).
            `study_kwargs={"n_jobs": 2}` runs two trials at a time in threads of this process."""

NF_MODULE = '''{header}"""NeuralForecast classes of {title}: ``{name}`` and ``Auto{name}``."""

from __future__ import annotations

from neuralforecast.losses.pytorch import MAE

from mamba_forecast.models import get_spec
from mamba_forecast.neuralforecast._base import MambaForecaster, model_arguments
from mamba_forecast.neuralforecast.auto import MambaAuto, ray_search_space


class {name}(MambaForecaster):
    {doc}

    spec = get_spec("{name}")
    core_class = spec.core

    def __init__(
        self,
{parameters}
    ):
        super().__init__(**model_arguments(locals()))


class Auto{name}(MambaAuto):
    {auto_doc}

    model_class = {name}
    default_config = ray_search_space({name}.spec)
    derived = dict({name}.spec.derived)
'''


def nf_ordered_arguments(spec) -> list:
    """The architecture arguments in NeuralForecast's order: the model's own first, then the shared ones
    (``dropout``, ``use_norm``, ``scan_backend``), each group in the core's signature order."""
    return sorted(spec.arguments.values(), key=lambda arg: arg.common)


def doc_type(annotation: str) -> str:
    """``"int | None"`` -> ``"int, optional"`` (NeuralForecast's docstring convention)."""
    parts = [p.strip() for p in annotation.split("|")]
    kind = ", ".join(p for p in parts if p != "None") or "object"
    return f"{kind}, optional" if "None" in parts else kind


def nf_docstring(spec) -> str:
    arguments = "\n".join(
        textwrap.fill(
            f"{a.name} ({doc_type(a.annotation)}): {a.doc}", width=112, subsequent_indent="    ", break_on_hyphens=False
        )
        for a in nf_ordered_arguments(spec)
    )
    # a long reference continues on an indented line (the same list item) to keep the module within 120 columns
    references = "\n".join(
        textwrap.fill(
            f"- {ref.markdown()}", width=112, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False
        )
        for ref in spec.references
    )
    about = textwrap.fill(
        f"{spec.title}: {spec.tagline}. {spec.summary} {spec.exogenous} Multivariate: all series are forecast "
        f"together, so they must share their timestamps. Model card: `{spec.card}`.",
        width=112,
        break_on_hyphens=False,
    )
    args = "\n".join((LEADING_ARGS_DOC, textwrap.indent(arguments, " " * 8), " " * 8 + TRAINING_ARGS_DOC))
    return (
        f"{spec.name}\n\n{textwrap.indent(about, '    ')}\n\n    Args:\n        {args.lstrip()}\n\n"
        f"    References:\n{textwrap.indent(references, ' ' * 8)}\n    "
    )


def auto_docstring(spec) -> str:
    about = textwrap.fill(
        f"Hyperparameter search for `{spec.name}`: {spec.auto_summary}", width=112, break_on_hyphens=False
    )
    return f"Auto{spec.name}\n\n{textwrap.indent(about, '    ')}\n\n    Args:\n        {AUTO_ARGS_DOC}\n    "


def neuralforecast_module(spec) -> str:
    """The source of ``mamba_forecast/neuralforecast/<module>.py`` for ``spec``."""
    architecture = [_parameter(a) for a in nf_ordered_arguments(spec)]
    training = NF_TRAINING.format(learning_rate=spec.learning_rate)
    parameters = textwrap.indent("\n".join([NF_LEADING, *architecture, training]), " " * 8)
    return NF_MODULE.format(
        header=_header(spec),
        title=spec.title,
        name=spec.name,
        parameters=parameters,
        doc=_literal(nf_docstring(spec)),
        auto_doc=_literal(auto_docstring(spec)),
    )


# ----------------------------------------------------------------------------------------------------
# Darts: numpydoc docstrings with the TorchForecastingModel arguments every Darts model repeats, and a doctest
# ----------------------------------------------------------------------------------------------------

DARTS_ARGS_DOC = """input_chunk_length
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

COVARIATES_DOC = (
    "In Darts terms, past covariates are the historical exogenous series, future covariates the future ones "
    "(their values over the input and output chunks joined along time) and static covariates the static features "
    "(covariates shared by all target components are given to each). The model supports past, future and static "
    "covariates, several target components and several series, and probabilistic forecasts through a Darts "
    "``likelihood``."
)

RINORM = (
    'T. Kim et al. "Reversible Instance Normalization for Accurate Time-Series Forecasting against Distribution '
    'Shift", ICLR 2022, https://openreview.net/forum?id=cGDAkQo1C0p'
)

EXAMPLE = """>>> import numpy as np
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

DARTS_MODULE = '''{header}"""Darts class of {title}: ``{name}Model``."""

from __future__ import annotations

from mamba_forecast.darts._base import _MambaTorchModel
from mamba_forecast.models import get_spec


class {name}Model(_MambaTorchModel):
    spec = get_spec("{name}")
    _core_cls = spec.core

    def __init__(
        self,
        input_chunk_length: int,
        output_chunk_length: int,
        output_chunk_shift: int = 0,
{parameters}
        use_static_covariates: bool = True,
        **kwargs,
    ) -> None:
        {doc}
        super().__init__()  # splits `model_params` (recorded by Darts) between Darts' model and module
        self._init_architecture()
'''


def rst(text: str) -> str:
    """Markdown inline code (`x`) as reStructuredText literals (``x``)."""
    return re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)


def _paragraph(text: str, width: int = 112) -> str:
    return textwrap.fill(rst(text), width=width, break_on_hyphens=False)


def darts_docstring(spec) -> str:
    model = f"{spec.name}Model"
    arguments = "\n".join(
        f"{arg.name}\n{textwrap.indent(_paragraph(arg.doc[:1].upper() + arg.doc[1:], width=108), '    ')}"
        for arg in spec.arguments.values()
    )
    references = [ref.rst() for ref in spec.references] + [RINORM]
    refs = "\n".join(
        f".. [{i}] " + textwrap.fill(ref, width=104, subsequent_indent="        ", break_on_hyphens=False)
        for i, ref in enumerate(references, 1)
    )
    example = "".join(f"...     {k}={v!r},\n" for k, v in spec.example.items())
    kwargs_doc = TORCH_MODEL_ARGS_DOC.replace("{model}", model).replace("{rin}", str(len(references)))
    doc = "\n\n".join(
        (
            f"{spec.title}: {spec.tagline}, as described in [1]_.",
            _paragraph(spec.summary),
            _paragraph(f"{spec.exogenous} {COVARIATES_DOC}"),
            f"Parameters\n----------\n{DARTS_ARGS_DOC}\n{arguments}\n{kwargs_doc}",
            f"References\n----------\n{refs}",
            "Examples\n--------\n" + EXAMPLE.format(model=model, arguments=example),
        )
    )
    return textwrap.indent(doc, " " * 8).lstrip() + "\n        "


def darts_module(spec) -> str:
    """The source of ``mamba_forecast/darts/<module>.py`` for ``spec``."""
    parameters = "\n".join(" " * 8 + _parameter(a) for a in spec.arguments.values())
    return DARTS_MODULE.format(
        header=_header(spec),
        title=spec.title,
        name=spec.name,
        parameters=parameters,
        doc=_literal(darts_docstring(spec)),
    )


# ----------------------------------------------------------------------------------------------------
# shared pieces and the command line
# ----------------------------------------------------------------------------------------------------


def _parameter(arg) -> str:
    """``name: annotation = default,`` of one architecture argument (the core's default, written as a literal)."""
    default = arg.default
    # double quotes, as in the rest of the signature
    default = f'"{default}"' if isinstance(default, str) and not set(default) & set("\"'\\") else repr(default)
    return f"{arg.name}: {arg.annotation} = {default}," if arg.annotation else f"{arg.name}={default},"


def _literal(doc: str) -> str:
    """``doc`` as a docstring literal whose value is ``doc`` itself (its indentation is already the body's)."""
    if '"""' in doc or "\\" in doc:
        raise ValueError(f"a docstring cannot hold triple quotes or backslashes as a plain literal: {doc[:80]!r}")
    return f'"""{doc}"""'


def _header(spec) -> str:
    text = HEADER.format(name=spec.name, source=spec.core.__module__.replace(".", "/") + ".py")
    return textwrap.fill(text, width=112, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False) + "\n"


def module_stem(spec) -> str:
    """The module name of a model's host classes: its core module's (``mamba_forecast.models.smamba`` -> ``smamba``)."""
    return spec.core.__module__.rpartition(".")[2]


def expected_files() -> dict[Path, str]:
    """Every host module the registered specs call for, with the text it must hold."""
    from mamba_forecast.models import all_specs

    files = {}
    for spec in all_specs():
        files[PACKAGE / "neuralforecast" / f"{module_stem(spec)}.py"] = neuralforecast_module(spec)
        files[PACKAGE / "darts" / f"{module_stem(spec)}.py"] = darts_module(spec)
    return files


def stale_files() -> list[Path]:
    """The host modules that are missing or differ from what the specs call for."""
    return [
        path
        for path, text in expected_files().items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only list stale files (exit status 1 if any)")
    args = parser.parse_args(argv)
    stale = stale_files()
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)}")
        return 1 if stale else 0
    files = expected_files()
    for path in stale:
        path.write_text(files[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # run from a clone: import this checkout's package
    sys.exit(main())
