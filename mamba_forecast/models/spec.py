"""One declarative spec per forecaster, and the registry the host classes, the demo and the harness read.

A spec (:class:`ModelSpec`) says everything about a model that is not math: its name, its torch core class, a
one-line doc for each architecture argument, its default ``Auto`` search space (plain data), its demo settings,
what the benchmark harness needs (preset table, calendar tokens, extra tuning space), its references and its
docs card. The architecture arguments themselves and their defaults are read from the core's signature
(:func:`architecture_arguments`), so a default is written once, in the core.

Adding a model is its core file in ``mamba_forecast/models/`` with a ``register(ModelSpec(...))`` at the
bottom, imported by ``mamba_forecast/models/__init__.py``, plus its docs card. The demo, the harness's model list
and the CLI choices read the registry. The host classes (``mamba_forecast.neuralforecast.<name>``, its
``Auto<name>``, ``mamba_forecast.darts.<name>Model``) are ordinary modules that ``tools/host_classes.py`` writes
from the spec. Torch only: nothing here imports a host library."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# Core arguments an adapter sets from the data (window lengths, number of series, outputs per step, exogenous
# widths): every other keyword argument of a core is an architecture argument a user sets.
ADAPTER_ARGS = frozenset(
    {"input_size", "h", "n_series", "n_outputs", "hist_exog_size", "futr_exog_size", "stat_exog_size"}
)

# Docs of the arguments every core inherits from ``Forecaster``; a spec's ``arg_docs`` may override them.
COMMON_ARG_DOCS = {
    "dropout": "dropout rate.",
    "use_norm": "per-window instance normalisation of each series (RevIN without affine weights).",
    "scan_backend": 'selective-scan implementation: "auto" (on a GPU the fused CUDA kernels when `mamba-ssm` is '
    'installed, else Triton when `triton` is, else PyTorch; PyTorch on CPU), "cuda", "triton", "torch" or '
    '"reference".',
}


# ----------------------------------------------------------------------------------------------------
# search-space domains, as plain data (the NeuralForecast adapter turns them into Ray Tune / Optuna domains)
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """One of ``values``, uniformly."""

    values: tuple

    def __init__(self, values):
        object.__setattr__(self, "values", tuple(values))


@dataclass(frozen=True)
class LogUniform:
    """A float between ``low`` and ``high``, uniform in log scale."""

    low: float
    high: float


@dataclass(frozen=True)
class RandInt:
    """An integer in ``[low, high)``."""

    low: int
    high: int


@dataclass(frozen=True)
class SameAs:
    """A derived argument equal to another sampled one (e.g. ``d_ff = d_model``, as the official scripts set)."""

    key: str

    def __call__(self, config: Mapping) -> Any:
        return config[self.key]


# The training part of every default Auto search space. ``input_size`` is sampled as ``h`` times one of these
# multipliers and ``step_size`` as 1 or ``h`` (NeuralForecast's convention).
TRAINING_SPACE: Mapping[str, Any] = MappingProxyType(
    {
        "input_size_multiplier": (1, 2, 3, 4, 5),
        "learning_rate": LogUniform(1e-4, 1e-2),
        "scaler_type": Choice(["identity", "robust", "standard"]),
        "max_steps": Choice([500, 1000, 2000]),
        "windows_batch_size": Choice([16, 32, 64, 128]),
        "random_seed": RandInt(1, 20),
    }
)


# ----------------------------------------------------------------------------------------------------
# the spec
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """A publication: ``authors (year). "title". venue.`` with its URL."""

    authors: str
    year: int
    title: str
    url: str
    venue: str = ""

    def markdown(self) -> str:
        venue = f" {self.venue}." if self.venue else ""
        return f'[{self.authors} ({self.year}). "{self.title}".{venue}]({self.url})'

    def rst(self) -> str:
        venue = f", {self.venue}" if self.venue else ""
        return f'{self.authors} "{self.title}"{venue}, {self.url}'


@dataclass(frozen=True)
class Argument:
    """One architecture argument: its name, default and annotation (from the core) and its one-line doc."""

    name: str
    default: Any
    annotation: str
    doc: str
    common: bool  # inherited from the Forecaster base (dropout, use_norm, scan_backend): listed last by NF


@dataclass(frozen=True)
class BenchHook:
    """What ``mamba_forecast.bench`` needs to know about a model.

    ``preset_table``: the published preset table its rows start from (``"smamba"``: S-Mamba's official scripts,
    the default for a model without published settings; ``"attention_mamba"``; ``"tsm2"``). ``preset_source``:
    the table's source when it is the model's own (None: the rows are borrowed). ``preset_defaults``: preset
    fields and model arguments applied on top of every row. ``calendar_tokens``: whether the model gets the
    protocol's 4 calendar tokens as historical exogenous tokens. ``tune_space``: model-specific choices of
    ``mamba-forecast tune`` (added to the learning-rate/optimiser/schedule space every model gets).
    ``published_name``: the model's name in the published-results table, when it has published numbers.
    """

    preset_table: str = "smamba"
    preset_source: str | None = None
    preset_defaults: Mapping[str, Any] = field(default_factory=dict)
    calendar_tokens: bool = True
    tune_space: Mapping[str, Choice] = field(default_factory=dict)
    published_name: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """Everything about a forecaster that is not math; see the module docstring.

    ``name`` names every class (``<name>`` for NeuralForecast, ``Auto<name>``, ``<name>Model`` for Darts) and
    is what the CLI, the demo and the harness accept. ``title`` is the model's name as its paper writes it.
    ``summary`` (what it computes) and ``exogenous`` (how exogenous inputs enter) are the docstrings' prose,
    written for both hosts. ``arg_docs``: one line per architecture argument (those of ``COMMON_ARG_DOCS`` may
    be left out). ``search_space``: the model's part of the default ``Auto`` space (plain domains), ``derived``:
    arguments computed from a sampled config. ``example``: small architecture settings for docstring examples
    and tests; ``demo``: the demo's settings. ``learning_rate``: the NeuralForecast class's default learning
    rate (NeuralForecast's usual 1e-3 unless measurements on the benchmark sets support another; the Darts
    class keeps Darts' optimiser default).
    """

    name: str
    core: type
    title: str
    tagline: str
    summary: str
    arg_docs: Mapping[str, str]
    references: tuple[Reference, ...]
    card: str
    exogenous: str = (
        "Exogenous series are extra tokens mixed with the series' tokens: a historical one embedded from its "
        "look-back, a future one from its look-back and horizon joined; static features are appended to each "
        "series' look-back before the embedding."
    )
    search_space: Mapping[str, Any] = field(default_factory=dict)
    derived: Mapping[str, Callable[[Mapping], Any]] = field(default_factory=dict)
    auto_summary: str = ""
    example: Mapping[str, Any] = field(default_factory=dict)
    demo: Mapping[str, Any] = field(default_factory=dict)
    bench: BenchHook = field(default_factory=BenchHook)
    learning_rate: float = 1e-3

    @property
    def fixed_n_series(self) -> bool:
        """Whether a layer is sized by the number of series (the model is then tied to it)."""
        return bool(getattr(self.core, "FIXED_N_SERIES", False))

    @property
    def arguments(self) -> dict[str, Argument]:
        """The architecture arguments, in the core's signature order, with defaults and docs."""
        docs = {**COMMON_ARG_DOCS, **self.arg_docs}
        common = set(COMMON_ARG_DOCS)
        return {
            name: Argument(name, default, annotation, docs[name], name in common)
            for name, (default, annotation) in architecture_arguments(self.core).items()
        }

    def defaults(self) -> dict[str, Any]:
        """``{argument: default}`` of the architecture arguments."""
        return {name: arg.default for name, arg in self.arguments.items()}


# ----------------------------------------------------------------------------------------------------
# the one algorithm that finds a core's architecture arguments
# ----------------------------------------------------------------------------------------------------


def architecture_arguments(core: type) -> dict[str, tuple[Any, str]]:
    """``{name: (default, annotation)}`` of the arguments a user sets on ``core``, in signature order.

    Every named parameter of ``core.__init__`` but ``self`` and the sizes an adapter sets (``ADAPTER_ARGS``).
    When ``__init__`` forwards ``**kwargs``, the walk continues with the next ``__init__`` up the MRO (the
    base class receiving them), skipping the arguments a base lists in ``INTERNAL_ARGS`` (those its subclasses
    set, such as ``InvertedForecaster``'s ``token_embedding``). Raises TypeError for an argument without a
    default: an adapter must be able to build the core from the defaults.
    """
    found: dict[str, tuple[Any, str]] = {}
    internal: set[str] = set()
    for klass in inspect.getmro(core):
        internal.update(vars(klass).get("INTERNAL_ARGS", ()))
        if "__init__" not in vars(klass):
            continue
        if klass is object or klass.__module__.startswith("torch."):
            break
        parameters = inspect.signature(vars(klass)["__init__"]).parameters
        for name, p in parameters.items():
            if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or name in ADAPTER_ARGS:
                continue
            if name in internal or name in found:
                continue
            if p.default is p.empty:
                raise TypeError(
                    f"{core.__name__}: architecture argument {name!r} (of {klass.__name__}.__init__) has no default; "
                    f"give it one, or list it in {klass.__name__}.INTERNAL_ARGS if a subclass always sets it."
                )
            annotation = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
            found[name] = (p.default, "" if p.annotation is p.empty else annotation)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            break
    return found


# ----------------------------------------------------------------------------------------------------
# the registry
# ----------------------------------------------------------------------------------------------------

_REGISTRY: dict[str, ModelSpec] = {}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry; returns it.

    Checks, before anything is registered: a class-name-like ``name`` not yet taken, a core with the forecaster
    interface, a default for every architecture argument and a doc for each, and search-space/example keys
    that are architecture arguments. A name is taken by the spec of another core; the same core class re-created
    by a re-import of its module (``importlib.reload``, IPython's autoreload) replaces its entry, in place.
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"register() takes a ModelSpec, got {type(spec).__name__}.")
    if not _NAME.fullmatch(spec.name or ""):
        raise ValueError(f"ModelSpec.name must be a class name such as 'SMamba', got {spec.name!r}.")
    if not (isinstance(spec.core, type) and callable(getattr(spec.core, "forward", None))):
        raise TypeError(f"{spec.name}: ModelSpec.core must be a torch module class, got {spec.core!r}.")
    taken = _REGISTRY.get(spec.name)
    if taken is not None and _core_path(taken) != _core_path(spec):
        raise ValueError(
            f"a model named {spec.name!r} is already registered (core {_core_path(taken)}); pick another name or "
            "unregister() it."
        )
    parameters = inspect.signature(spec.core).parameters
    missing = [a for a in ("input_size", "h", "n_series") if a not in parameters]
    if missing:
        raise TypeError(
            f"{spec.name}: the core {spec.core.__name__} must take input_size, h and n_series (the Forecaster "
            f"interface; subclass mamba_forecast.models.Forecaster); it lacks {', '.join(missing)}."
        )
    arguments = architecture_arguments(spec.core)
    undocumented = [a for a in arguments if a not in spec.arg_docs and a not in COMMON_ARG_DOCS]
    if undocumented:
        raise ValueError(f"{spec.name}: ModelSpec.arg_docs has no doc for {', '.join(undocumented)}.")
    for what, keys in (
        ("arg_docs", spec.arg_docs),
        ("search_space", spec.search_space),
        ("derived", spec.derived),
        ("example", spec.example),
        ("demo", spec.demo),
    ):
        unknown = [k for k in keys if k not in arguments]
        if unknown:
            raise ValueError(
                f"{spec.name}: ModelSpec.{what} names {', '.join(unknown)}, which {spec.core.__name__} does not "
                f"take; its architecture arguments are {', '.join(arguments)}."
            )
    _REGISTRY[spec.name] = spec
    return spec


def _core_path(spec: ModelSpec) -> str:
    return f"{spec.core.__module__}.{spec.core.__qualname__}"


def unregister(name: str) -> ModelSpec:
    """Remove a model from the registry (for tests and experiments)."""
    spec = get_spec(name)
    del _REGISTRY[name]
    return spec


def get_spec(name: str) -> ModelSpec:
    """The spec of model ``name``; KeyError listing the registered names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(_REGISTRY)}") from None


def all_specs() -> tuple[ModelSpec, ...]:
    """Every registered spec, in registration order (the four built-in models first)."""
    return tuple(_REGISTRY.values())


def model_names() -> tuple[str, ...]:
    """The registered model names, in registration order."""
    return tuple(_REGISTRY)
