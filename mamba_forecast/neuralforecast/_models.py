"""The NeuralForecast model classes, one per registered spec (``mamba_forecast.models.spec``).

:func:`model_class` writes a ``MambaForecaster`` subclass for a spec: NeuralForecast's standard multivariate
signature (the one iTransformer and TSMixer share) with the core's architecture arguments in the middle, their
defaults read from the core, and a Google-style docstring assembled from the spec's one-line argument docs and
the shared pieces of :mod:`._base`. The ``__init__`` is compiled from source, as ``dataclasses`` does, so that
its signature is a real one: NeuralForecast and PyTorch Lightning read a model's arguments from its
``__init__`` frame (``save_hyperparameters``), and ``NeuralForecast.load`` rebuilds the model from them.
"""

from __future__ import annotations

import textwrap
from typing import Optional

from neuralforecast.losses.pytorch import MAE

from ..models.spec import Argument, ModelSpec
from ._base import LEADING_ARGS_DOC, TRAINING_ARGS_DOC, MambaForecaster, model_arguments

MODULE = "mamba_forecast.neuralforecast"

# NeuralForecast's multivariate signature around the architecture arguments (iTransformer's, with input_size 96,
# an optional n_series, the "standard" scaler and the spec's learning rate; tests/test_neuralforecast.py pins it
# against iTransformer).
_LEADING = """h,
input_size=96,
n_series=None,
futr_exog_list=None,
hist_exog_list=None,
stat_exog_list=None,
exclude_insample_y=False,"""

_TRAINING = """loss=MAE(),
valid_loss=None,
max_steps: int = 1000,
learning_rate: float = _learning_rate,
num_lr_decays: int = -1,
early_stop_patience_steps: int = -1,
val_monitor: str = "ptl/val_loss",
val_check_steps: int = 100,
batch_size: int = 32,
valid_batch_size: Optional[int] = None,
windows_batch_size=32,
inference_windows_batch_size=32,
start_padding_enabled=False,
training_data_availability_threshold=0.0,
step_size: int = 1,
scaler_type: str = "standard",
random_seed: int = 1,
drop_last_loader: bool = False,
alias: Optional[str] = None,
optimizer=None,
optimizer_kwargs=None,
lr_scheduler=None,
lr_scheduler_kwargs=None,
dataloader_kwargs=None,
**trainer_kwargs,"""

_SOURCE = """
class {name}(MambaForecaster):
    def __init__(
        self,
{parameters}
    ):
        super().__init__(**model_arguments(locals()))
"""


def ordered_arguments(spec: ModelSpec) -> list[Argument]:
    """The architecture arguments in NeuralForecast's order: the model's own first, then the shared ones
    (``dropout``, ``use_norm``, ``scan_backend``), each group in the core's signature order."""
    return sorted(spec.arguments.values(), key=lambda arg: arg.common)


def doc_type(annotation: str) -> str:
    """``"int | None"`` -> ``"int, optional"`` (NeuralForecast's docstring convention)."""
    parts = [p.strip() for p in annotation.replace("Optional[", "").rstrip("]").split("|")]
    optional = "None" in parts or annotation.startswith("Optional[")
    kind = ", ".join(p for p in parts if p != "None") or "object"
    return f"{kind}, optional" if optional else kind


def google_arg(name: str, kind: str, doc: str) -> str:
    """One ``name (type): doc`` entry of an ``Args:`` section, wrapped for an 8-space indent."""
    return textwrap.fill(f"{name} ({kind}): {doc}", width=112, subsequent_indent="    ", break_on_hyphens=False)


def model_docstring(spec: ModelSpec) -> str:
    arguments = "\n".join(google_arg(a.name, doc_type(a.annotation), a.doc) for a in ordered_arguments(spec))
    references = "\n".join(f"- {ref.markdown()}" for ref in spec.references)
    about = textwrap.fill(
        f"{spec.title}: {spec.tagline}. {spec.summary} {spec.exogenous} Multivariate: all series are forecast "
        f"together, so they must share their timestamps. Model card: `{spec.card}`.",
        width=112, break_on_hyphens=False,
    )
    args = "\n".join((LEADING_ARGS_DOC, textwrap.indent(arguments, " " * 8), " " * 8 + TRAINING_ARGS_DOC))
    return (
        f"{spec.name}\n\n{textwrap.indent(about, '    ')}\n\n    Args:\n        {args.lstrip()}\n\n"
        f"    References:\n{textwrap.indent(references, ' ' * 8)}\n    "
    )


def model_class(spec: ModelSpec) -> type[MambaForecaster]:
    """The NeuralForecast class of ``spec``: ``mamba_forecast.neuralforecast.<spec.name>``."""
    architecture = [
        f"{a.name}: {a.annotation} = _defaults[{a.name!r}]," if a.annotation else f"{a.name}=_defaults[{a.name!r}],"
        for a in ordered_arguments(spec)
    ]
    parameters = textwrap.indent("\n".join([_LEADING, *architecture, _TRAINING]), " " * 8)
    namespace = {
        "MambaForecaster": MambaForecaster, "model_arguments": model_arguments, "MAE": MAE, "Optional": Optional,
        "_defaults": spec.defaults(), "_learning_rate": spec.learning_rate,
    }
    source = _SOURCE.format(name=spec.name, parameters=parameters)
    # (annotations stay strings: this module's `from __future__ import annotations` is inherited by compile)
    exec(compile(source, f"<{MODULE}.{spec.name}>", "exec"), namespace)  # noqa: S102 - our own template
    cls = namespace[spec.name]
    cls.__module__ = cls.__init__.__module__ = MODULE
    cls.__init__.__qualname__ = f"{spec.name}.__init__"
    cls.__doc__ = model_docstring(spec)
    cls.core_class = spec.core
    cls.spec = spec
    return cls
